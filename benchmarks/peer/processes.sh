# Sourced by run.sh and quick.sh: the processes a benchmark starts, and the CPU they use. Needs OUT (a
# directory for their output).

PIDS=()
# stop_all: kills every process `start` started, and waits for them.
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2> /dev/null || true; done; wait 2> /dev/null || true; }

# start NAME CMD...: starts CMD (stdout in $OUT/NAME.out, stderr in STDERR_TO or $OUT/NAME.err), sets PID,
# waits for "listening on <port>", sets PORT.
start() {
  local name=$1; shift
  "$@" > "$OUT/$name.out" 2> "${STDERR_TO:-$OUT/$name.err}" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do
    PORT=$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$OUT/$name.out")
    [[ -n $PORT ]] && return 0
    sleep 0.05
  done
  echo "$name did not start: $(cat "$OUT/$name.out" "$OUT/$name.err" 2> /dev/null)" >&2; exit 1
}

# cpu_ticks PID: the process's user and system time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
