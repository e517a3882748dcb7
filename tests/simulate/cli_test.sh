#!/usr/bin/env bash
# cascade-simulate's command line: exit 0 with a report, 2 with a clear message for bad usage or a bad scenario.
#   cli_test.sh CASCADE_SIMULATE SCENARIOS_DIR
set -uo pipefail
bin=$1
scen=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect STATUS STDERR_SUBSTRING ARGS...
expect() {
  local want=$1 msg=$2
  shift 2
  "$bin" "$@" > "$tmp/out" 2> "$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ] || ! grep -qF -- "$msg" "$tmp/err"; then
    echo "FAIL: cascade-simulate $* -> exit $got (want $want), stderr: $(cat "$tmp/err") (want it to contain: $msg)"
    fail=1
  else
    echo "ok: cascade-simulate $* -> $got"
  fi
}

expect 2 "no scenario given"
expect 2 "cannot read" "$tmp/missing.json"
expect 2 "unknown option --fast" "$scen/seed-40-runs.json" --fast
expect 2 "--set needs PATH=VALUE" "$scen/seed-40-runs.json" --set
expect 2 "tiers[7] does not exist" "$scen/seed-40-runs.json" --set 'tiers[7].keys=2'
expect 2 "tiers[0].limits.tokens_per_day: expected a whole number" "$scen/seed-40-runs.json" --set 'tiers[0].limits.tokens_per_day="lots"'
echo '{"name": "x", ' > "$tmp/broken.json"
expect 2 "not valid JSON" "$tmp/broken.json"
expect 2 "cannot write" "$scen/seed-40-runs.json" --svg "$tmp/no/such/dir/plot.svg"

# A good run: the table on stdout, the JSON parses, the plot is well-formed.
if "$bin" "$scen/seed-40-runs.json" --svg "$tmp/plot.svg" > "$tmp/table.txt" 2> "$tmp/err" &&
   grep -q "answered by" "$tmp/table.txt" && grep -q "cost per month" "$tmp/table.txt" && [ ! -s "$tmp/err" ]; then
  echo "ok: table"
else
  echo "FAIL: the table run: $(cat "$tmp/err")"; fail=1
fi
if command -v xmllint > /dev/null && ! xmllint --noout "$tmp/plot.svg"; then echo "FAIL: plot is not well-formed"; fail=1; fi
if "$bin" "$scen/seed-40-runs.json" --json | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["requests"] == 40, r; assert sum(s["answers"] for s in r["series"]) == 40'; then
  echo "ok: json"
else
  echo "FAIL: --json"; fail=1
fi
exit $fail
