#!/usr/bin/env bash
# The peer benchmark: the OpenAI-compatible cascade server (examples/server) against Portkey's AI gateway
# 1.15.2, both in front of one loopback mock upstream (peer_mock_upstream), measured with wrk.
#
#   cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DCASCADE_BUILD_EXAMPLES=ON \
#         -DCASCADE_BUILD_BENCHMARKS=ON -DCASCADE_BUILD_TESTS=OFF
#   cmake --build build/bench -j2 --target example_server peer_mock_upstream
#   benchmarks/peer/run.sh
#
# Scenarios, each at 64 connections (wrk -t2) and 1 connection (wrk -t1), cascade and Portkey interleaved:
#   direct  wrk -> mock (the floor: what the mock and wrk cost alone)
#   single  wrk -> gateway -> mock 200
#   429     wrk -> gateway -> first target 429 (retry-after: 60) -> second target 200
#   1010    wrk -> gateway -> first target 403 "error code: 1010" -> second target 200
# Cascade: one server per scenario (CASCADE_EXAMPLE_UPSTREAM, CASCADE_EXAMPLE_BACKUP_UPSTREAM). Portkey: one
# gateway, the scenario in its x-portkey-config header (fallback on [429, 403]).
# Everything listens on and talks to 127.0.0.1 only. Environment: BUILD (build/bench), WORK (build/peer),
# DURATION (10 s per run), ROUNDS (3; the table shows each cell's median), CONNS ("64 1"), CASCADE_THREADS (1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/bench}
WORK=${WORK:-$ROOT/build/peer}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-"64 1"}
PORTKEY_VERSION=1.15.2
SERVER=$BUILD/examples/example_server
MOCK=$BUILD/benchmarks/peer_mock_upstream

for bin in "$SERVER" "$MOCK"; do
  [[ -x $bin ]] || { echo "missing $bin; build example_server and peer_mock_upstream (see the top of $0)" >&2; exit 2; }
done
for tool in wrk node npm curl python3 ss; do
  command -v "$tool" > /dev/null || { echo "$tool is needed" >&2; exit 2; }
done

mkdir -p "$WORK/portkey"
OUT=$WORK/out
rm -rf "$OUT" && mkdir -p "$OUT"
GATEWAY=$WORK/portkey/node_modules/@portkey-ai/gateway
if ! grep -q "\"version\": \"$PORTKEY_VERSION\"" "$GATEWAY/package.json" 2> /dev/null; then
  echo "installing @portkey-ai/gateway@$PORTKEY_VERSION in $WORK/portkey"
  (cd "$WORK/portkey" && { [[ -f package.json ]] || npm init -y > /dev/null; } &&
    npm install --no-audit --no-fund "@portkey-ai/gateway@$PORTKEY_VERSION" > npm.log 2>&1) ||
    { echo "npm install failed: $WORK/portkey/npm.log" >&2; exit 2; }
fi

source "$HERE/processes.sh"
trap stop_all EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start mock "$MOCK" 0
MOCK_PID=$PID; M=$PORT
OK=http://127.0.0.1:$M/ok/v1
R429=http://127.0.0.1:$M/429/v1
R1010=http://127.0.0.1:$M/1010/v1

declare -A CASCADE_PID CASCADE_PORT
# No line per answer (CASCADE_EXAMPLE_LOG=none), as Portkey runs --headless; one thread (CASCADE_THREADS, 1),
# the server's default: Node runs Portkey's JavaScript on one thread too.
export CASCADE_EXAMPLE_LOG=none CASCADE_EXAMPLE_THREADS=${CASCADE_THREADS:-1}
STDERR_TO=/dev/null CASCADE_EXAMPLE_UPSTREAM=$OK start cascade-single "$SERVER" 0
CASCADE_PID[single]=$PID; CASCADE_PORT[single]=$PORT
STDERR_TO=/dev/null CASCADE_EXAMPLE_UPSTREAM=$R429 CASCADE_EXAMPLE_BACKUP_UPSTREAM=$OK start cascade-429 "$SERVER" 0
CASCADE_PID[429]=$PID; CASCADE_PORT[429]=$PORT
STDERR_TO=/dev/null CASCADE_EXAMPLE_UPSTREAM=$R1010 CASCADE_EXAMPLE_BACKUP_UPSTREAM=$OK start cascade-1010 "$SERVER" 0
CASCADE_PID[1010]=$PID; CASCADE_PORT[1010]=$PORT

P=$(free_port)
node --require "$HERE/loopback.cjs" "$GATEWAY/build/start-server.js" --port="$P" --headless > "$OUT/portkey.out" 2> "$OUT/portkey.err" &
PORTKEY_PID=$!
PIDS+=("$PORTKEY_PID")
for _ in $(seq 200); do
  curl -s -o /dev/null "http://127.0.0.1:$P/" && break
  sleep 0.1
done

target() { printf '{"provider":"openai","api_key":"sk-mock","custom_host":"%s"}' "$1"; }
declare -A PORTKEY_CONFIG
PORTKEY_CONFIG[single]=$(target "$OK")
PORTKEY_CONFIG[429]=$(printf '{"strategy":{"mode":"fallback","on_status_codes":[429,403]},"targets":[%s,%s]}' "$(target "$R429")" "$(target "$OK")")
PORTKEY_CONFIG[1010]=$(printf '{"strategy":{"mode":"fallback","on_status_codes":[429,403]},"targets":[%s,%s]}' "$(target "$R1010")" "$(target "$OK")")
BODY='{"model":"cascade-default","messages":[{"role":"user","content":"Hello"}]}'

# Every listener on loopback, nothing else.
LISTEN=$(ss -ltnpH 2> /dev/null | grep -E "pid=($MOCK_PID|${CASCADE_PID[single]}|${CASCADE_PID[429]}|${CASCADE_PID[1010]}|$PORTKEY_PID)," || true)
if [[ -z $LISTEN ]] || echo "$LISTEN" | awk '{print $4}' | grep -v '^127\.0\.0\.1:' > /dev/null; then
  echo "a listener is not on 127.0.0.1 only:" >&2; echo "$LISTEN" >&2; exit 1
fi

# Each answers, and the fallbacks answer from the second target.
fail() { echo "check failed: $*" >&2; exit 1; }
check() {  # check NAME URL EXPECTED-HEADER-REGEX [curl args]
  local name=$1 url=$2 want=$3; shift 3
  local h; h=$(curl -s -D - -o "$OUT/check-$name.body" -H 'content-type: application/json' -d "$BODY" "$@" "$url") || fail "$name: no answer"
  grep -q '"chat.completion"' "$OUT/check-$name.body" || fail "$name: $(head -c 300 "$OUT/check-$name.body")"
  echo "$h" | grep -qiE "$want" || fail "$name: no header matching $want in: $h"
  printf '  %-16s ok (%s)\n' "$name" "$(echo "$h" | grep -iE "$want" | tr -d '\r')"
}
echo "checks:"
check direct "$OK/chat/completions" '^HTTP/1.1 200'
for s in single 429 1010; do
  want='^x-cascade-label: upstream'; [[ $s != single ]] && want='^x-cascade-label: backup'
  check "cascade-$s" "http://127.0.0.1:${CASCADE_PORT[$s]}/v1/chat/completions" "$want"
  want='^x-portkey-last-used-option-index: .*0'; [[ $s != single ]] && want='^x-portkey-last-used-option-index: .*1'
  [[ $s == single ]] && want='^HTTP/1.1 200'
  check "portkey-$s" "http://127.0.0.1:$P/v1/chat/completions" "$want" -H "x-portkey-config: ${PORTKEY_CONFIG[$s]}"
done

rss_kb() { awk -v f="$2" '$1 == f":" {print $2}' "/proc/$1/status"; }

# run SCENARIO TARGET CONNS ROUND SECONDS: one wrk run; its output and the process's CPU and RSS in $OUT.
run() {
  local scenario=$1 who=$2 conns=$3 round=$4 secs=$5 url pid threads=2
  local -a extra=()
  [[ $conns == 1 ]] && threads=1
  case $who in
    mock) url=$OK/chat/completions; pid=$MOCK_PID ;;
    cascade) url=http://127.0.0.1:${CASCADE_PORT[$scenario]}/v1/chat/completions; pid=${CASCADE_PID[$scenario]} ;;
    portkey) url=http://127.0.0.1:$P/v1/chat/completions; pid=$PORTKEY_PID
      extra=(-H "x-portkey-config: ${PORTKEY_CONFIG[$scenario]}") ;;
  esac
  local f=$OUT/$scenario.$who.c$conns.r$round
  local t0; t0=$(cpu_ticks "$pid")
  wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$HERE/post.lua" "${extra[@]}" "$url" > "$f.wrk"
  local t1; t1=$(cpu_ticks "$pid")
  echo "cpu_ticks $((t1 - t0)) clk_tck $(getconf CLK_TCK) vmrss_kb $(rss_kb "$pid" VmRSS) vmhwm_kb $(rss_kb "$pid" VmHWM)" > "$f.proc"
}

echo
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -sr)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the start; other jobs on this machine share its cores"
echo "runs:    wrk ${DURATION} s each, ${ROUNDS} round(s), connections: $CONNS; portkey $PORTKEY_VERSION, node $(node --version)"
echo "warming up..."
for s in single 429 1010; do
  for who in cascade portkey; do run "$s" "$who" 64 0 2; done
done
for round in $(seq "$ROUNDS"); do
  for conns in $CONNS; do
    echo "round $round/$ROUNDS, $conns connection(s)"
    run direct mock "$conns" "$round" "$DURATION"
    for s in single 429 1010; do
      for who in cascade portkey; do run "$s" "$who" "$conns" "$round" "$DURATION"; done
    done
  done
done
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end"
echo
python3 "$HERE/summarize.py" "$OUT" "$CONNS"
