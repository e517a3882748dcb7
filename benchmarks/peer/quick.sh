#!/usr/bin/env bash
# The cascade side of the peer benchmark alone, for measuring a change in a minute: the mock upstream and
# one cascade server (one target), wrk at 64 connections and at 1, the mock measured alone first.
# Prints req/s, p50 and CPU per request (the process's utime+stime / requests answered) for each.
#
#   cmake --build build/bench -j2 --target example_server peer_mock_upstream
#   benchmarks/peer/quick.sh            # BUILD (build/bench), DURATION (5 s a cell), CASCADE_THREADS (1)
#
# Everything listens on and talks to 127.0.0.1 only. run.sh is the whole comparison with Portkey.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/bench}
DURATION=${DURATION:-5}
SERVER=$BUILD/examples/example_server
MOCK=$BUILD/benchmarks/peer_mock_upstream
for bin in "$SERVER" "$MOCK"; do
  [[ -x $bin ]] || { echo "missing $bin; build example_server and peer_mock_upstream (see the top of $0)" >&2; exit 2; }
done
command -v wrk > /dev/null || { echo "wrk is needed" >&2; exit 2; }

OUT=$(mktemp -d)
source "$HERE/processes.sh"
trap 'stop_all; rm -rf "$OUT"' EXIT

start mock "$MOCK" 0
MOCK_PID=$PID; M=$PORT
CASCADE_EXAMPLE_LOG=none CASCADE_EXAMPLE_THREADS=${CASCADE_THREADS:-1} CASCADE_EXAMPLE_UPSTREAM=http://127.0.0.1:$M/ok/v1 start cascade "$SERVER" 0
SERVER_PID=$PID; S=$PORT

wrk -t2 -c64 -d2s -s "$HERE/post.lua" "http://127.0.0.1:$S/v1/chat/completions" > /dev/null  # warm-up
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the start; $DURATION s a cell"
for conns in 64 1; do
  threads=2; [[ $conns == 1 ]] && threads=1
  for who in mock cascade; do
    if [[ $who == mock ]]; then url=http://127.0.0.1:$M/ok/v1/chat/completions; pid=$MOCK_PID
    else url=http://127.0.0.1:$S/v1/chat/completions; pid=$SERVER_PID; fi
    t0=$(cpu_ticks "$pid")
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency -s "$HERE/post.lua" "$url" > "$OUT/wrk.txt"
    t1=$(cpu_ticks "$pid")
    n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$OUT/wrk.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$OUT/wrk.txt")
    awk -v who="$who" -v c="$conns" -v n="$n" -v s="$DURATION" -v p50="$p50" -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
      'BEGIN { printf "%-8s %2d conn(s)  %8d req/s  p50 %-9s CPU %5.1f us a request\n", who, c, n / s, p50, t * 1e6 / hz / n }'
  done
done
