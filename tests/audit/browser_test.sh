#!/usr/bin/env bash
# Headless Chromium (Debian's chromium, driven by puppeteer-core from npm) against the audit server, whose
# Groq tier answers from a fake upstream with <script> and <img onerror> in its Markdown (tests/audit/browser).
#   browser_test.sh <cascade-audit> <questionnaire.json> <work dir>
# Exit 77 (skipped) without node, npm or chromium, or when npm cannot install the pinned puppeteer-core.
set -u
server_bin=$1 questions=$2 work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
skip=77
for tool in node npm python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIPPED: $tool not found, the browser test needs it"; exit $skip; }
done
chromium=${CHROMIUM:-$(command -v chromium || true)}
[ -n "$chromium" ] || { echo "SKIPPED: chromium not found (apt-get install chromium)"; exit $skip; }

mkdir -p "$work"
cp "$here"/browser/package.json "$here"/browser/package-lock.json "$here"/browser/check.mjs "$work"/ || exit 1
cd "$work" || exit 1
pinned=$(node -p "require('./package.json').dependencies['puppeteer-core']")
installed=$(node -p "try { require('./node_modules/puppeteer-core/package.json').version } catch { '' }" 2>/dev/null)
if [ "$installed" != "$pinned" ]; then
  if ! PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000 >npm.log 2>&1; then
    tail -n 20 npm.log
    echo "SKIPPED: npm ci failed (no registry?), the browser test needs puppeteer-core@$pinned"
    exit $skip
  fi
fi

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT
port_of() {  # waits for "listening on <port>" in file $1 written by process $2
  for _ in $(seq 1 200); do
    local port; port=$(sed -n 's/^listening on \([0-9][0-9]*\)$/\1/p' "$1" | head -n 1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

python3 "$here/upstream.py" > upstream.out 2>&1 & pids+=($!)
up=$(port_of upstream.out "${pids[-1]}") || { echo "FAIL: the fake upstream did not start"; cat upstream.out; exit 1; }
curl -s -X POST -d '{"groq": "xss"}' "http://127.0.0.1:$up/control" > /dev/null
rm -f audit.db audit.db-wal audit.db-shm
env -u GOOGLE_APPLICATION_CREDENTIALS AUDIT_PORT=0 AUDIT_DB="$work/audit.db" AUDIT_SECRET=browser-test-secret-0123456789 \
    AUDIT_QUESTIONS="$questions" GROQ_API_KEY=gsk_browser_test GROQ_BASE_URL="http://127.0.0.1:$up/groq" \
    "$server_bin" > server.out 2> server.err & pids+=($!)
port=$(port_of server.out "${pids[-1]}") || { echo "FAIL: the audit server did not start"; cat server.err; exit 1; }
CHROMIUM="$chromium" node check.mjs "http://127.0.0.1:$port" "$work/report.png"
