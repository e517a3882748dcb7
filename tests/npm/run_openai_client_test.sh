#!/usr/bin/env bash
# The official openai npm client against examples/server (example_server), which calls a fake upstream on
# 127.0.0.1 (upstream.mjs): stream_check.mjs (streaming), then server_check.mjs (the whole API: models,
# chains, forwarded fields, errors, metrics). Registered with CTest by examples/CMakeLists.txt.
#
#   run_openai_client_test.sh <example_server> <this folder> <work folder>
#
# Exit 77 (CTest's SKIP_RETURN_CODE) when node or npm is missing or the client cannot be installed (no
# network); nothing but npm's registry is reached, and only for the install.
set -u

server_bin=$1
source_dir=$2
work=$3
skip=77

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIPPED: node/npm not found, the openai client test needs them"
  exit $skip
fi

mkdir -p "$work"
cp "$source_dir"/package.json "$source_dir"/package-lock.json "$source_dir"/*.mjs "$work"/ || exit 1
cd "$work" || exit 1

# Install the pinned client once; a later run reuses it (and then needs no network).
pinned=$(node -p "require('./package.json').dependencies.openai")
installed=$(node -p "try { require('./node_modules/openai/package.json').version } catch { '' }" 2>/dev/null)
if [ "$installed" != "$pinned" ]; then
  echo "installing openai@$pinned with npm ci"
  if ! npm ci --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000 >npm.log 2>&1; then
    tail -n 20 npm.log
    echo "SKIPPED: npm ci failed (no network or no registry?), the openai client test needs openai@$pinned"
    exit $skip
  fi
fi

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

# Quotes, a newline, Cyrillic, an emoji, a backslash: everything the escaping must carry.
text=$'Revenue grew "12%" in Q3.\nЧистая прибыль выросла 📈 \\ done.'

node upstream.mjs "$text" >upstream.out 2>upstream.err &
pids+=($!)
if ! up_port=$(port_of upstream.out $!); then
  echo "the fake upstream did not start:"; cat upstream.err
  exit 1
fi

# Keyless (no key of the caller's environment is picked up), and a model per chain the checks can tell apart.
for v in $(compgen -e | grep -E '^CASCADE_EXAMPLE_(API_KEY|HOST)'); do unset "$v"; done
CASCADE_EXAMPLE_UPSTREAM="http://127.0.0.1:$up_port/v1" \
  CASCADE_EXAMPLE_MODEL=upstream-default-model CASCADE_EXAMPLE_CHEAP_MODEL=upstream-cheap-model \
  "$server_bin" 0 >server.out 2>server.err &
pids+=($!)
if ! port=$(port_of server.out $!); then
  echo "the example server did not start:"; cat server.out server.err
  exit 1
fi
echo "upstream on $up_port, example server on $port"

rc=0
node stream_check.mjs "http://127.0.0.1:$port/v1" "$text" || rc=1
node server_check.mjs "http://127.0.0.1:$port/v1" "$text" upstream-default-model upstream-cheap-model || rc=1
if [ $rc -ne 0 ]; then
  echo "--- example server stderr"; cat server.err
  echo "--- upstream stderr"; cat upstream.err
fi
exit $rc
