#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.cpp, clang++-14, ASan + UBSan) and runs each for a bounded
# time over a copy of its seed corpus (tests/fuzz/corpus/<name>/: the committed corpus never grows).
# Prints one line per target (name, executions, result), then `N passed, M failed`; exits non-zero if
# any target crashed, leaked, timed out or ran out of memory. A crashing input is kept in
# build/fuzz/artifacts/<name>/ with the command that reproduces it.
#
#   ./scripts/fuzz.sh                 # every target, 30 s each (or $CASCADE_FUZZ_SECONDS)
#   ./scripts/fuzz.sh 600             # a longer local run
#   ./scripts/fuzz.sh 60 sse url      # some targets only (fuzz_sse, fuzz_url)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-${CASCADE_FUZZ_SECONDS:-30}}
[ $# -gt 0 ] && shift
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: seconds must be a whole number, not '$seconds'" >&2; exit 2 ;; esac
jobs=${JOBS:-2}
build=${CASCADE_FUZZ_BUILD:-$root/build/fuzz}

"$root/scripts/install-deps.sh" fuzz

targets=()
if [ $# -gt 0 ]; then
  for t in "$@"; do targets+=("fuzz_${t#fuzz_}"); done
else
  for src in "$root"/tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi
for t in "${targets[@]}"; do
  [ -f "$root/tests/fuzz/$t.cpp" ] || { echo "fuzz.sh: no tests/fuzz/$t.cpp" >&2; exit 2; }
done

cmake -S "$root/tests/fuzz" -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
if [ $# -gt 0 ]; then
  cmake --build "$build" -j"$jobs" --target "${targets[@]}"
else
  cmake --build "$build" -j"$jobs"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cascade-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$build/logs"
passed=0 failed=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  corpus="$work/$name"
  mkdir -p "$corpus"
  if [ -d "$root/tests/fuzz/corpus/$name" ]; then cp -R "$root/tests/fuzz/corpus/$name/." "$corpus/"; fi
  artifacts="$build/artifacts/$name"
  mkdir -p "$artifacts"
  log="$build/logs/$name.log"
  # -timeout: one input past 10 s is a hang; -rss_limit_mb also caps a single allocation (malloc_limit_mb).
  # The outer timeout only guards against libFuzzer itself not stopping.
  rc=0
  timeout --signal=KILL $((seconds * 2 + 120)) \
    "$build/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  [ -n "$runs" ] || runs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  [ -n "$runs" ] || runs=0
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    printf '%-22s %12s runs  ok\n' "$t" "$runs"
  else
    failed=$((failed + 1))
    # The first of: the invariant a target names, UB, a sanitizer's or libFuzzer's verdict.
    what=$(grep -m1 -o 'invariant failed: .*' "$log" || grep -m1 -o 'runtime error: .*' "$log" ||
           grep -m1 -oE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer): [a-zA-Z -]+' "$log" || echo "exit $rc")
    input=$(grep -m1 -o "Test unit written to .*" "$log" | sed 's/Test unit written to //' || true)
    printf '%-22s %12s runs  FAILED (%s)\n' "$t" "$runs" "$what"
    echo "  log: $log"
    [ -n "$input" ] && echo "  reproduce: $build/$t $input"
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
