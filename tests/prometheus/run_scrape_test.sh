#!/usr/bin/env bash
# A real Prometheus server scrapes examples/metrics_server.cpp and answers a query for the answers-by-label
# counter with the number the example printed. Registered with CTest by examples/CMakeLists.txt.
#
#   run_scrape_test.sh <example_metrics_server> <work folder>
#
# Exit 77 (CTest's SKIP_RETURN_CODE) when prometheus, promtool or curl is missing. Everything binds to
# 127.0.0.1 only; Prometheus gets a free port of its own (never :9090, which a packaged service may hold).
set -u

server_bin=$1
work=$2
skip=77

for tool in prometheus promtool curl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIPPED: $tool not found (Debian: apt-get install prometheus curl python3; scripts/install-deps.sh)"
    exit $skip
  fi
done

rm -rf "$work"
mkdir -p "$work/tsdb" || exit 1
cd "$work" || exit 1

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
}
trap cleanup EXIT

# Waits for "listening on <port>" in file $1 (the process $2 writes it) and prints the port.
port_of() {
  for _ in $(seq 1 200); do
    local port
    port=$(sed -n 's/^listening on \([0-9][0-9]*\)$/\1/p' "$1" | head -n 1)
    if [ -n "$port" ]; then
      echo "$port"
      return 0
    fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

"$server_bin" 0 >server.out 2>server.err &
pids+=($!)
if ! port=$(port_of server.out $!); then
  echo "the example server did not start:"; cat server.out server.err
  exit 1
fi
label=local1
expected=$(sed -n "s/^answered $label \([0-9][0-9]*\)$/\1/p" server.out)
if [ -z "$expected" ] || [ "$expected" -eq 0 ]; then
  echo "the example answered nothing with $label:"; cat server.out
  exit 1
fi
echo "example server on $port; it answered $expected with $label"

# promtool checks what the server serves before Prometheus reads it.
curl -fsS "http://127.0.0.1:$port/metrics" >metrics.txt || { echo "GET /metrics failed"; exit 1; }
if ! promtool check metrics <metrics.txt; then
  echo "promtool check metrics refused the exposition:"; cat metrics.txt
  exit 1
fi

# A free port for Prometheus on 127.0.0.1 (asked of the kernel, then released for Prometheus to bind).
prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat >prometheus.yml <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: cascade
    static_configs:
      - targets: ["127.0.0.1:$port"]
YML
promtool check config prometheus.yml || exit 1

prometheus --config.file=prometheus.yml --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >prometheus.log 2>&1 &
pids+=($!)
prom_pid=$!
echo "prometheus on $prom_port"

# Poll the HTTP API until the counter has been scraped (at most about 60 s).
api="http://127.0.0.1:$prom_port/api/v1/query"
value=""
for _ in $(seq 1 120); do
  if ! kill -0 "$prom_pid" 2>/dev/null; then
    echo "prometheus exited:"; tail -n 30 prometheus.log
    exit 1
  fi
  if curl -fsS -G "$api" --data-urlencode 'query=cascade_answers_total' >query.json 2>/dev/null; then
    value=$(python3 - "$label" <<'PY'
import json, sys
label = sys.argv[1]
d = json.load(open("query.json"))
if d.get("status") != "success":
    sys.exit(0)
for r in d["data"]["result"]:
    if r["metric"].get("label") == label and r["metric"].get("job") == "cascade":
        print(r["value"][1])
PY
)
    [ -n "$value" ] && break
  fi
  sleep 0.5
done
if [ -z "$value" ]; then
  echo "prometheus never returned cascade_answers_total{label=\"$label\"}:"
  cat query.json 2>/dev/null; echo; tail -n 30 prometheus.log
  exit 1
fi
echo "prometheus: cascade_answers_total{label=\"$label\"} = $value"
cat query.json; echo
if [ "$value" != "$expected" ]; then
  echo "FAIL: prometheus says $value, the example answered $expected with $label"
  exit 1
fi

# The scrape target is up, and a query by label with rate() and the histogram parse too.
up=$(curl -fsS -G "$api" --data-urlencode 'query=up{job="cascade"}')
echo "$up" | grep -q '"1"' || { echo "FAIL: target not up: $up"; exit 1; }
hist=$(curl -fsS -G "$api" --data-urlencode 'query=cascade_attempt_duration_seconds_count{tier="local"}')
echo "$hist" | grep -q '"5"' || { echo "FAIL: histogram count of tier local is not 5: $hist"; exit 1; }
echo "PASS"
