#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then builds with
# -Wall -Wextra -Wpedantic -Werror and runs every test, then again under AddressSanitizer + UBSan.
#
#   ./scripts/test.sh            # both builds
#   CASCADE_SKIP_SANITIZE=1 ./scripts/test.sh   # the first build only
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${JOBS:-2}
"$root/scripts/install-deps.sh"

build="$root/build/test"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCASCADE_WARNINGS_AS_ERRORS=ON \
      -DCASCADE_BUILD_BENCHMARKS=ON -DCASCADE_BUILD_EXAMPLES=ON
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" -j"$jobs" --output-on-failure

if [ -z "${CASCADE_SKIP_SANITIZE:-}" ]; then
  asan="$root/build/asan"
  cmake -S "$root" -B "$asan" -DCMAKE_BUILD_TYPE=Debug -DCASCADE_WARNINGS_AS_ERRORS=ON -DCASCADE_SANITIZE=ON \
        -DCASCADE_BUILD_EXAMPLES=OFF
  cmake --build "$asan" -j"$jobs"
  # Packaging and compile-fail tests check the build, not the code at run time: the first build ran them.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$asan" -j"$jobs" --output-on-failure -LE "package|compile"
fi
