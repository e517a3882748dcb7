#!/usr/bin/env bash
# cascade-ask against a fake OpenAI-compatible upstream on 127.0.0.1 (fake_upstream.py): answers and their
# stderr line, --json, stdin, the Groq 1010 block and a 429 moving on, every tier failing (exit 3), the
# deadline, bad usage (exit 2), and no key in any output. Prints each check; exits 1 on any mismatch.
#   ask_test.sh CASCADE_ASK FAKE_UPSTREAM_PY
set -uo pipefail
bin=$1
fake=$2
command -v python3 > /dev/null || { echo "SKIP: python3 is needed for the fake upstream"; exit 77; }

tmp=$(mktemp -d)
fake_pid=
cleanup() {
  [ -n "$fake_pid" ] && kill "$fake_pid" 2> /dev/null && wait "$fake_pid" 2> /dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# Only the fake keys below: a developer's real keys and credentials must not be used (nor leak) here.
for v in $(compgen -e); do
  case $v in GROQ_* | DEEPSEEK_* | GOOGLE_APPLICATION_CREDENTIALS) unset "$v" ;; esac
done
export GROQ_API_KEY_1=gsk_test_secret_1 GROQ_API_KEY_2=gsk_test_secret_2 DEEPSEEK_API_KEY=sk_test_deepseek_secret
secrets=(gsk_test_secret_1 gsk_test_secret_2 sk_test_deepseek_secret test_secret)

python3 "$fake" "$tmp/requests.log" > "$tmp/fake.out" 2> "$tmp/fake.err" &
fake_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/^port \([0-9][0-9]*\)$/\1/p' "$tmp/fake.out")
  [ -n "$port" ] && break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "FAIL: the fake upstream did not start: $(cat "$tmp/fake.err")"
  exit 1
fi
base="http://127.0.0.1:$port"
touch "$tmp/requests.log"
echo "fake upstream on $base"

answer=$'Paris is the capital of France.\nIt has been since 987.'
printf '%s\n' "$answer" > "$tmp/answer.txt"
printf 'What is the capital of France?\n' > "$tmp/prompt.md"
printf 'Answer in two short lines.\n' > "$tmp/system.md"
: > "$tmp/empty.md"
printf ' \n\t\n' > "$tmp/blank.md"
: > "$tmp/all_output"
line_re='^\[tokens: [0-9]+/[0-9]+, cost (\$[0-9]+(\.[0-9]+)?|unknown), via [a-z0-9/-]+, [0-9]+ ms\]$'

# ask GROQ_MODE DEEPSEEK_MODE ARGS...: runs cascade-ask with Groq and DeepSeek pointed at those behaviours of
# the fake upstream; stdout in $tmp/out, stderr in $tmp/err, the exit status in $rc. Stdin: the caller's.
ask() {
  local groq=$1 deepseek=$2
  shift 2
  GROQ_BASE_URL="$base/$groq/v1" DEEPSEEK_BASE_URL="$base/$deepseek/v1" "$bin" "$@" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  cat "$tmp/out" "$tmp/err" >> "$tmp/all_output"
}
requests() { wc -l < "$tmp/requests.log"; }
# last_request PYTHON_EXPR: evaluates EXPR over the last logged request `r` (path, key, body); true if truthy.
last_request() {
  python3 -c 'import json,sys; r=json.loads(open(sys.argv[1]).read().splitlines()[-1]); sys.exit(0 if eval(sys.argv[2]) else 1)' \
    "$tmp/requests.log" "$1"
}
# expect_answer NAME LABEL COST_RE: exit 0, stdout is the answer, the stderr line names LABEL.
expect_answer() {
  local name=$1 label=$2 cost_re=$3
  local last
  last=$(tail -n 1 "$tmp/err")
  if [ "$rc" -ne 0 ]; then bad "$name: exit $rc (want 0), stderr: $(cat "$tmp/err")"; return; fi
  if ! cmp -s "$tmp/out" "$tmp/answer.txt"; then bad "$name: stdout is not the answer: $(cat "$tmp/out")"; return; fi
  if ! [[ $last =~ $line_re ]]; then bad "$name: stderr's last line '$last' is not [tokens: IN/OUT, cost \$X, via LABEL, N ms]"; return; fi
  if ! [[ $last =~ ^\[tokens:\ 42/17,\ cost\ $cost_re,\ via\ $label,\ [0-9]+\ ms\]$ ]]; then
    bad "$name: stderr's last line '$last' (want tokens 42/17, cost $cost_re, via $label)"; return
  fi
  ok "$name: exit 0, the answer on stdout, '$last'"
}
# expect_usage NAME REASON ARGS...: exit 2, REASON and the usage line on stderr, nothing on stdout.
expect_usage() {
  local name=$1 reason=$2
  shift 2
  ask ok ok "$@" < /dev/null
  if [ "$rc" -ne 2 ] || ! grep -qF -- "$reason" "$tmp/err" || ! grep -q '^usage: cascade-ask' "$tmp/err" || [ -s "$tmp/out" ]; then
    bad "$name: cascade-ask $* -> exit $rc (want 2), stderr: $(cat "$tmp/err") (want: $reason, and the usage line)"
  else
    ok "$name: exit 2, '$(head -n 1 "$tmp/err")'"
  fi
}

# --- answers ---
ask ok ok -f "$tmp/prompt.md"
expect_answer "groq answers" groq1 '\$0'
if last_request 'r["key"] == "1" and r["body"]["max_tokens"] == 3000 and r["body"]["messages"] == [{"role": "user", "content": "What is the capital of France?\n"}]'; then
  ok "groq answers: groq1 was sent the prompt alone, max_tokens 3000"
else
  bad "groq answers: the request was $(tail -n 1 "$tmp/requests.log")"
fi

ask ok ok -f "$tmp/prompt.md" --system "$tmp/system.md" --max 123
expect_answer "--system and --max" groq1 '\$0'
if last_request 'r["body"]["max_tokens"] == 123 and r["body"]["messages"][0] == {"role": "system", "content": "Answer in two short lines.\n"} and r["body"]["messages"][1]["role"] == "user"'; then
  ok "--system and --max: a system message, then the prompt; max_tokens 123"
else
  bad "--system and --max: the request was $(tail -n 1 "$tmp/requests.log")"
fi

printf 'Which river runs through Paris?' | ask ok ok -f -
expect_answer "-f - reads stdin" groq1 '\$0'
if last_request 'r["body"]["messages"] == [{"role": "user", "content": "Which river runs through Paris?"}]'; then
  ok "-f - reads stdin: the piped prompt was sent"
else
  bad "-f - reads stdin: the request was $(tail -n 1 "$tmp/requests.log")"
fi

before=$(requests)
ask blocked ok -f "$tmp/prompt.md"
expect_answer "groq blocked by Cloudflare 1010" deepseek '\$0\.[0-9]+'
if [ $(($(requests) - before)) -eq 2 ]; then
  ok "groq blocked by Cloudflare 1010: one request to groq (its second key not tried), one to deepseek"
else
  bad "groq blocked by Cloudflare 1010: $(($(requests) - before)) requests (want 2: groq1, deepseek)"
fi

ask limitfirst ok -f "$tmp/prompt.md"
expect_answer "groq1 rate-limited (429)" groq2 '\$0'

before=$(requests)
ask ok ok -f "$tmp/prompt.md" --chain deepseek
expect_answer "--chain deepseek" deepseek '\$0\.[0-9]+'
if [ $(($(requests) - before)) -eq 1 ] && last_request 'r["key"] == "deepseek"'; then
  ok "--chain deepseek: groq was not called"
else
  bad "--chain deepseek: $(($(requests) - before)) requests, the last $(tail -n 1 "$tmp/requests.log")"
fi

ask ok ok -f "$tmp/prompt.md" --chain vertex,deepseek,groq
expect_answer "--chain keeps the chain's order" groq1 '\$0'

ask ok ok -f "$tmp/prompt.md" --max=77 --timeout=30 --chain=groq
expect_answer "--opt=value" groq1 '\$0'
last_request 'r["body"]["max_tokens"] == 77' && ok "--opt=value: max_tokens 77" || bad "--opt=value: the request was $(tail -n 1 "$tmp/requests.log")"

# --- --json ---
json_check() {
  python3 -c '
import json, sys
o = json.load(open(sys.argv[1]))
want = sys.argv[2]
assert set(o) >= {"text", "label", "model", "usage", "cost_usd", "cost_known", "latency_ms", "trail"}, sorted(o)
assert o["text"] == "Paris is the capital of France.\nIt has been since 987.", o["text"]
assert o["model"] == "fake-model-1", o["model"]
assert o["usage"]["prompt_tokens"] == 42 and o["usage"]["completion_tokens"] == 17, o["usage"]
assert isinstance(o["latency_ms"], int) and o["latency_ms"] >= 0
assert o["cost_known"] is True
for a in o["trail"]:
    assert set(a) >= {"label", "fault", "http_status"}, a
if want == "groq":
    assert o["label"] == "groq1" and o["cost_usd"] == 0 and o["trail"] == [], o
else:
    assert o["label"] == "deepseek" and o["cost_usd"] > 0, o
    assert [(a["label"], a["fault"], a["http_status"]) for a in o["trail"]] == [("groq1", "blocked", 403)], o["trail"]
' "$tmp/out" "$1"
}
ask ok ok -f "$tmp/prompt.md" --json
if [ "$rc" -eq 0 ] && json_check groq && [[ $(tail -n 1 "$tmp/err") =~ $line_re ]]; then
  ok "--json: one object with text, label, model, usage, cost_usd, cost_known, latency_ms, trail; the stderr line too"
else
  bad "--json: exit $rc, stdout: $(cat "$tmp/out"), stderr: $(cat "$tmp/err")"
fi
ask blocked ok -f "$tmp/prompt.md" --json
if [ "$rc" -eq 0 ] && json_check deepseek; then
  ok "--json: the trail of a fallback is [groq1 blocked 403], the label deepseek"
else
  bad "--json after a block: exit $rc, stdout: $(cat "$tmp/out"), stderr: $(cat "$tmp/err")"
fi

# --- no answer: exit 3 ---
ask ratelimit error500 -f "$tmp/prompt.md"
if [ "$rc" -eq 3 ] && [ ! -s "$tmp/out" ] && grep -q '^cascade-ask: every tier failed' "$tmp/err" &&
   grep -qF 'groq1: rate_limited (HTTP 429)' "$tmp/err" && grep -qF 'groq2: rate_limited (HTTP 429)' "$tmp/err" &&
   grep -qF 'deepseek: server_error (HTTP 500)' "$tmp/err" && grep -qF 'vertex-pro: unconfigured' "$tmp/err"; then
  ok "every tier fails: exit 3, '$(cat "$tmp/err")'"
else
  bad "every tier fails: exit $rc (want 3), stdout: $(cat "$tmp/out"), stderr: $(cat "$tmp/err")"
fi

ask ok ok -f "$tmp/prompt.md" --chain vertex --json
if [ "$rc" -eq 3 ] && [ ! -s "$tmp/out" ] && grep -qF 'vertex-pro: unconfigured' "$tmp/err" && grep -qF 'groq: unconfigured' "$tmp/err"; then
  ok "--chain vertex without credentials: exit 3, '$(cat "$tmp/err")'"
else
  bad "--chain vertex without credentials: exit $rc (want 3), stderr: $(cat "$tmp/err")"
fi

start=$(date +%s)
ask slow slow -f "$tmp/prompt.md" --chain groq --timeout 1
took=$(($(date +%s) - start))
if [ "$rc" -eq 3 ] && [ "$took" -le 8 ] && grep -q '^cascade-ask: no answer within 1 s' "$tmp/err"; then
  ok "--timeout 1 against an upstream that waits 30 s: exit 3 after ${took} s, '$(cat "$tmp/err")'"
else
  bad "--timeout 1: exit $rc (want 3) after ${took} s, stderr: $(cat "$tmp/err")"
fi

# --- bad usage: exit 2, and nothing is sent ---
before=$(requests)
expect_usage "no -f" "no prompt: -f FILE"
expect_usage "unknown option" "unknown option --fast" -f "$tmp/prompt.md" --fast
expect_usage "stray argument" "unexpected argument 'extra'" -f "$tmp/prompt.md" extra
expect_usage "-f without a file" "-f needs a value" -f
expect_usage "two prompt files" "one prompt file at a time" -f "$tmp/prompt.md" -f "$tmp/prompt.md"
expect_usage "missing prompt file" "cannot read the prompt file" -f "$tmp/no-such-file.md"
expect_usage "a directory as prompt" "cannot read the prompt file" -f "$tmp"
expect_usage "missing system file" "cannot read the system prompt file" -f "$tmp/prompt.md" --system "$tmp/no-such-file.md"
expect_usage "empty prompt" "is empty" -f "$tmp/empty.md"
expect_usage "blank prompt" "is empty" -f "$tmp/blank.md"
expect_usage "empty stdin" "is empty" -f -
for m in 0 -5 abc 12x 1.5 99999999999 ''; do
  expect_usage "--max '$m'" "--max must be a positive whole number" -f "$tmp/prompt.md" --max "$m"
done
expect_usage "--max without a value" "--max needs a value" -f "$tmp/prompt.md" --max
expect_usage "--timeout 0" "--timeout must be a positive whole number" -f "$tmp/prompt.md" --timeout 0
expect_usage "unknown tier" "unknown tier 'openai'" -f "$tmp/prompt.md" --chain groq,openai
expect_usage "empty tier name" "unknown tier ''" -f "$tmp/prompt.md" --chain groq,
if [ "$(requests)" -eq "$before" ]; then ok "bad usage sent nothing upstream"; else bad "bad usage sent $(($(requests) - before)) requests"; fi

"$bin" --help > "$tmp/out" 2> "$tmp/err"
rc=$?
cat "$tmp/out" "$tmp/err" >> "$tmp/all_output"
if [ "$rc" -eq 0 ] && grep -q '^usage: cascade-ask' "$tmp/out"; then ok "--help: exit 0, usage on stdout"; else bad "--help: exit $rc"; fi

# --- no key anywhere (the 500 above echoed the key it was sent) ---
leaked=0
for s in "${secrets[@]}"; do
  if grep -qF -- "$s" "$tmp/all_output"; then bad "a key ($s) appears in cascade-ask's output"; leaked=1; fi
done
[ "$leaked" -eq 0 ] && ok "no key in any stdout or stderr ($(wc -l < "$tmp/all_output") lines checked)"

if [ "$fail" -ne 0 ]; then echo "cascade-ask: some checks FAILED"; else echo "cascade-ask: all checks passed"; fi
exit $fail
