#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then builds with
# -Wall -Wextra -Wpedantic -Werror and runs every test (the fault soak included), then again under
# AddressSanitizer + UBSan, then the multi-threaded tests and the soak under ThreadSanitizer, then every
# fuzz target for a short, bounded time.
#
#   ./scripts/test.sh                           # everything
#   CASCADE_SKIP_SANITIZE=1 ./scripts/test.sh   # the first build only (also skips TSan and fuzzing)
#   CASCADE_SKIP_TSAN=1 / CASCADE_SKIP_FUZZ=1   # leave out one stage
#   CASCADE_FUZZ_SECONDS=600 ./scripts/fuzz.sh  # fuzz longer, on its own
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
  # The soak at 4,000 requests: the Debug build ran the full 10,000; here it looks for memory errors.
  CASCADE_SOAK_REQUESTS=${CASCADE_ASAN_SOAK_REQUESTS:-4000} \
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$asan" -j"$jobs" --output-on-failure -LE "package|compile"
fi

if [ -z "${CASCADE_SKIP_SANITIZE:-}" ] && [ -z "${CASCADE_SKIP_TSAN:-}" ]; then
  # The tests that run on two threads (the Redis client's strand among them), and the soak (fewer
  # requests: TSan is slow), under ThreadSanitizer.
  tsan="$root/build/tsan"
  cmake -S "$root" -B "$tsan" -DCMAKE_BUILD_TYPE=Debug -DCASCADE_WARNINGS_AS_ERRORS=ON -DCASCADE_SANITIZE_THREAD=ON \
        -DCASCADE_BUILD_EXAMPLES=OFF
  cmake --build "$tsan" -j"$jobs" --target test_net test_chain test_providers test_stream test_soak test_redis
  CASCADE_SOAK_REQUESTS=${CASCADE_TSAN_SOAK_REQUESTS:-2000} TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir "$tsan" -j"$jobs" --output-on-failure -R "^test_(net|chain|providers|stream|soak|redis):"
fi

if [ -z "${CASCADE_SKIP_SANITIZE:-}" ] && [ -z "${CASCADE_SKIP_FUZZ:-}" ]; then
  "$root/scripts/fuzz.sh" "${CASCADE_FUZZ_SECONDS:-20}"
fi
