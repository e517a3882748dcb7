#!/usr/bin/env python3
"""Several cascade instances sharing state through one redis-server, against a loopback upstream.

Starts a private redis-server, instances_upstream and 1-3 instances_instance processes on free 127.0.0.1
ports, starts the instances' load at one moment, changes the world during the run (a 429 on a key, a
Cloudflare 1010 block, Redis killed or stopped), then checks from the upstream's log and the instances'
reports what the instances did. Each subcommand prints what it measured and exits 1 when its check
fails (2 when the harness itself could not run).

  block429    after 1 s test-key-1 answers 429: no request on it may arrive > 50 ms after the first 429 was sent
  block1010   after 1 s every key answers 1010: no request may arrive > 50 ms after the first 1010 was sent
  budget      1 key, 6,000 tokens a minute, 3 instances: tokens received <= budget x (1 + t/60) + in-flight
  redis-kill  Redis SIGKILLed at 1 s: every request answered, the slowest below --max-delay-ms
  redis-stop  Redis SIGSTOPped at 1 s (SIGCONT at the end): the same
  bench       local vs shared state, 1 instance: req/s, CPU us/request, Redis commands/request (not a test)

Usage: python3 run.py <subcommand> --bin-dir build/tests/instances [--max-delay-ms 500]
Python 3 standard library only; every child is killed on any exit.
"""

import argparse
import atexit
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CHILDREN = []


class HarnessError(Exception):
    """The harness could not run the scenario (not a failed check)."""


def cleanup():
    for p in reversed(CHILDREN):
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGCONT)  # a stopped redis-server must be able to die
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
    CHILDREN.clear()


def on_signal(signum, _frame):
    cleanup()
    sys.exit(128 + signum)


atexit.register(cleanup)
signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGHUP, on_signal)


def spawn(args, **kw):
    p = subprocess.Popen(args, **kw)
    CHILDREN.append(p)
    return p


def say(*a):
    print(*a, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise HarnessError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Redis:
    def __init__(self):
        if not shutil.which("redis-server"):
            raise HarnessError("redis-server is not installed (scripts/install-deps.sh)")
        self.port = free_port()
        self.proc = spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--loglevel", "warning"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, 10)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=5)

    def stop(self):
        self.proc.send_signal(signal.SIGSTOP)

    def cont(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def command(self, *args):
        """One command's reply as text: through redis-cli when it is installed, else a bare RESP exchange."""
        if shutil.which("redis-cli"):
            r = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10)
            return r.stdout
        req = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(req.encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if data.startswith((b"+", b"-", b":")) and data.endswith(b"\r\n"):
                    break
                if data.startswith(b"$"):
                    n = int(data[1:data.index(b"\r\n")])
                    if len(data) >= data.index(b"\r\n") + 2 + n + 2:
                        break
            return data.decode(errors="replace")

    def cpu_seconds(self):
        """Redis's own CPU time so far (user + system, INFO cpu)."""
        total = 0.0
        for line in self.command("INFO", "cpu").splitlines():
            name, _, value = line.partition(":")
            if name in ("used_cpu_user", "used_cpu_sys"):
                total += float(value)
        return total

    def commands_called(self):
        """Commands served since the last CONFIG RESETSTAT, leaving out the harness's own CONFIG and INFO."""
        total = 0
        for line in self.command("INFO", "commandstats").splitlines():
            if not line.startswith("cmdstat_"):
                continue
            name, _, fields = line.partition(":")
            if name in ("cmdstat_config", "cmdstat_info"):
                continue
            for f in fields.split(","):
                if f.startswith("calls="):
                    total += int(f[len("calls="):])
        return total


class Upstream:
    def __init__(self, bin_dir, tokens=100, delay_ms=0):
        self.proc = spawn([os.path.join(bin_dir, "instances_upstream"), "0", "--tokens", str(tokens),
                           "--delay-ms", str(delay_ms)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            raise HarnessError(f"instances_upstream did not start: {line!r}")
        self.port = int(line.split()[2])
        self.base = f"http://127.0.0.1:{self.port}"

    def call(self, method, path):
        req = urllib.request.Request(self.base + path, method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def control(self, path):
        self.call("POST", path)

    def log(self, since=0):
        return json.loads(self.call("GET", f"/control/log?since={since}"))


def run_instances(bin_dir, count, args, seconds, at=None, label="", before_start=None):
    """Starts `count` instances, releases their load at one moment, runs `at = (offset_s, action)` at that
    offset, and returns each instance's report (the JSON line it printed). `before_start` runs once all
    are ready, just before the load is released."""
    tmp = tempfile.mkdtemp(prefix="cascade-instances-")
    start = os.path.join(tmp, "start")
    procs = []
    try:
        for i in range(count):
            err = open(os.path.join(tmp, f"err-{i}"), "w")
            cmd = [os.path.join(bin_dir, "instances_instance"), *args, "--seconds", str(seconds),
                   "--wait-start", start, "--ready-file", os.path.join(tmp, f"ready-{i}")]
            procs.append(spawn(cmd, stdout=subprocess.PIPE, stderr=err, text=True))
            err.close()
        deadline = time.monotonic() + 20
        while not all(os.path.exists(os.path.join(tmp, f"ready-{i}")) for i in range(count)):
            for i, p in enumerate(procs):
                if p.poll() is not None:
                    raise HarnessError(f"instance {i} exited before its load started:\n" + tail(tmp, i))
            if time.monotonic() > deadline:
                raise HarnessError("instances not ready after 20 s")
            time.sleep(0.01)
        if label:
            say(f"  [{label}] {count} instance(s): {' '.join(args)}, {seconds} s")
        if before_start:
            before_start()
        open(start, "w").close()
        t0 = time.monotonic()
        if at:
            offset, action = at
            time.sleep(max(0.0, t0 + offset - time.monotonic()))  # when to act, not a measurement
            action()
        reports = []
        for i, p in enumerate(procs):
            try:
                out, _ = p.communicate(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                raise HarnessError(f"instance {i} still running {seconds + 60} s after its load started:\n" + tail(tmp, i))
            lines = [l for l in out.splitlines() if l.startswith("{")]
            if p.returncode != 0 or not lines:
                raise HarnessError(f"instance {i} exited {p.returncode} without a report:\n" + tail(tmp, i))
            r = json.loads(lines[-1])
            r["stderr"] = tail(tmp, i)
            reports.append(r)
        return reports
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def tail(tmp, i, n=6):
    try:
        with open(os.path.join(tmp, f"err-{i}")) as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + l for l in lines[-n:])


def show(reports):
    for i, r in enumerate(reports):
        lat = r["lat_us"]
        say(f"  instance {i}: {r['requests']} requests, by label {json.dumps(r['by_label'], sort_keys=True)}, "
            f"failed {r['failed']}, latency p50 {lat['p50'] / 1000:.1f} ms p99 {lat['p99'] / 1000:.1f} ms "
            f"max {lat['max'] / 1000:.1f} ms, {r['req_per_s']:.0f} req/s")
        if "lat_us_after_split" in r:
            s = r["lat_us_after_split"]
            say(f"    requests started after the event: {s['n']}, latency p50 {s['p50'] / 1000:.1f} ms "
                f"p99 {s['p99'] / 1000:.1f} ms max {s['max'] / 1000:.1f} ms")
        if r["stderr"]:
            say("    its stderr (last lines):\n" + r["stderr"])


def check(ok, what):
    say(f"  {'PASS' if ok else 'FAIL'}: {what}")
    return ok


# --- Subcommands ---------------------------------------------------------------------------------------

LATE_US = 50_000


def blocked(a, mode):
    """block429 / block1010: after 1 s the upstream refuses; who still sends to the refused key(s), and when."""
    redis = Redis()
    up = Upstream(a.bin_dir)
    if mode == "429":
        action, refused, scope = (lambda: up.control("/control/429/test-key-1")), 429, {"test-key-1"}
    else:
        action, refused, scope = (lambda: up.control("/control/1010")), 403, None
    args = ["--upstream", up.base + "/v1", "--redis-port", str(redis.port), "--keys", "3", "--concurrency", "8"]
    reports = run_instances(a.bin_dir, 3, args, 3, at=(1.0, action), label=f"block{mode}")
    show(reports)
    log = up.log()
    on = [e for e in log if scope is None or e["key"] in scope]
    refusals = [e for e in on if e["status"] == refused and e["sent_us"] > 0]
    if not refusals:
        return check(False, f"the upstream sent no {refused}: nothing was measured")
    first = min(e["sent_us"] for e in refusals)
    after = [e for e in on if e["t_us"] > first]
    late = [e for e in after if e["t_us"] > first + LATE_US]
    last = max((e["t_us"] - first for e in after), default=0)
    keys = "test-key-1" if scope else "any key"
    say(f"  upstream: {len(log)} requests in all; first {refused} sent at {first / 1e6:.3f} s; on {keys} after it: "
        f"{len(after)} requests ({len(refusals)} refused in all), the last arriving {last / 1000:.1f} ms after it; "
        f"{len(late)} later than {LATE_US // 1000} ms")
    ok = check(not late, f"no request on {keys} arrives later than {LATE_US // 1000} ms after the first {refused} was sent")
    failed = sum(r["failed"] for r in reports)
    ok &= check(failed == 0, f"every request answered (failed: {failed})")
    return ok


def estimate(max_tokens):
    """Request::estimated_tokens() of the instance's requests: one user message of 64 characters
    ((chars + 16 per message + 3) / 4) plus max_tokens."""
    return (64 + 16 + 3) // 4 + max_tokens


def budget(a):
    tpm, instances, concurrency, seconds, max_tokens = 6000, 3, 8, 5, 180
    est = estimate(max_tokens)  # 200: 30 requests fill the minute
    results = {}
    for mode in ("shared", "local"):
        redis = Redis()
        # The upstream reports the estimate as the usage total, so what the chain records equals what it reserved.
        up = Upstream(a.bin_dir, tokens=est)
        args = ["--upstream", up.base + "/v1", "--keys", "1", "--tpm", str(tpm), "--concurrency", str(concurrency),
                "--max-tokens", str(max_tokens)]
        args += ["--local"] if mode == "local" else ["--redis-port", str(redis.port)]
        wall0 = time.time()
        reports = run_instances(a.bin_dir, instances, args, seconds, label=f"budget {mode}")
        wall1 = time.time()
        show(reports)
        if int(wall0 // 60) != int(wall1 // 60):
            say("  (this run crossed a wall-clock minute boundary: a per-minute counter starts afresh there)")
        for r in reports:
            if r["estimated_tokens"] != est:
                raise HarnessError(f"the instance estimates {r['estimated_tokens']} tokens a request, the driver {est}")
        ok200 = [e for e in up.log() if e["status"] == 200]
        received = est * len(ok200)
        # The load phase, to the last answer: what the budget may refill over.
        span = max(r["elapsed_s"] for r in reports)
        # Every instance together may reserve a bucket of the budget's size, refilled at its rate: what the
        # provider's own limiter lets through. Requests are sent only after their tokens were reserved.
        bound = tpm * (1 + span / 60)
        results[mode] = (received, bound, span, len(ok200))
        say(f"  {mode}: the key received {len(ok200)} requests x {est} = {received} tokens over {span:.2f} s; "
            f"bound {tpm} x (1 + {span:.2f}/60) = {bound:.0f}")
    received, bound, _, _ = results["shared"]
    say(f"  local state would send {results['local'][0]} tokens ({results['local'][0] / tpm:.2f} x the minute's budget); "
        f"shared sent {received} ({received / tpm:.2f} x)")
    return check(received <= bound, f"shared: tokens received {received} <= {bound:.0f} "
                                    f"(over by {max(0, received - bound):.0f}, {received / bound:.2f} x the bound)")


def redis_outage(a, how):
    redis = Redis()
    up = Upstream(a.bin_dir)
    # A budget far above the load, leased one request at a time (--lease-share 0): every request reserves in
    # Redis, the worst case of a budgeted deployment, so the outage meets every request's path.
    args = ["--upstream", up.base + "/v1", "--redis-port", str(redis.port), "--keys", "3", "--concurrency", "8",
            "--tpm", "1000000000", "--lease-share", "0", "--split-at", "1", "--redis-timeout-ms", str(a.timeout_ms)]
    action = redis.kill if how == "kill" else redis.stop
    try:
        reports = run_instances(a.bin_dir, 2, args, 4, at=(1.0, action), label=f"redis-{how}")
    finally:
        redis.cont()
    show(reports)
    failed = sum(r["failed"] for r in reports)
    worst = max(r["lat_us"]["max"] for r in reports)
    ok = check(failed == 0, f"every request answered (failed: {failed})")
    ok &= check(worst < a.max_delay_ms * 1000,
                f"slowest request {worst / 1000:.1f} ms < {a.max_delay_ms} ms (Redis {'killed' if how == 'kill' else 'stopped'} at 1 s)")
    # The delay is paid once: after the outage began, most requests do not wait on Redis at all.
    after = [r["lat_us_after_split"]["p99"] for r in reports if "lat_us_after_split" in r]
    ok &= check(bool(after) and max(after) < a.timeout_ms * 1000,
                f"p99 of requests started after the outage began {max(after or [0]) / 1000:.1f} ms < "
                f"the {a.timeout_ms} ms command timeout (no request waits on Redis but the first)")
    return ok


def bench(a):
    redis = Redis()
    up = Upstream(a.bin_dir)
    base = ["--upstream", up.base + "/v1", "--keys", "3", "--concurrency", "32", "--threads", "1"]
    runs = [("local (`--local`)", ["--local"]),
            ("RedisState, no limits", ["--redis-port", str(redis.port)]),
            ("RedisState, budgets leased (`--tpm 1000000000`)", ["--redis-port", str(redis.port), "--tpm", "1000000000"]),
            ("RedisState, a reservation per request (`--tpm 1000000000 --lease-share 0`)",
             ["--redis-port", str(redis.port), "--tpm", "1000000000", "--lease-share", "0"])]
    rows = []
    for name, extra in runs:
        cpu_before = [0.0]

        def reset():
            redis.command("CONFIG", "RESETSTAT")
            cpu_before[0] = redis.cpu_seconds()
        reports = run_instances(a.bin_dir, 1, base + extra, 5, label=name, before_start=reset)
        show(reports)
        r = reports[0]
        n = r["requests"] or 1
        cmds = redis.commands_called() if "--local" not in extra else 0
        redis_cpu = (redis.cpu_seconds() - cpu_before[0]) * 1e6 / n if "--local" not in extra else 0.0
        rows.append((name, r["req_per_s"], r["cpu_us_per_request"], cmds / n, redis_cpu, r["lat_us"]["p50"], r["failed"]))
    say("\n| state | req/s | CPU µs/request | Redis commands/request | Redis CPU µs/request | p50 latency | failed |")
    say("|---|---:|---:|---:|---:|---:|---:|")
    for name, rps, cpu, cmds, rcpu, p50, failed in rows:
        say(f"| {name} | {rps:.0f} | {cpu:.1f} | {cmds:.3f} | {rcpu:.1f} | {p50 / 1000:.2f} ms | {failed} |")
    say("\n1 instance, 1 io thread, 32 requests in flight for 5 s, 3 keys, loopback upstream answering at once.")
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("subcommand", choices=["block429", "block1010", "budget", "redis-kill", "redis-stop", "bench"])
    p.add_argument("--bin-dir", required=True, help="where instances_upstream and instances_instance are")
    p.add_argument("--max-delay-ms", type=int, default=500,
                   help="redis-kill/-stop: bound on the slowest request (one 100 ms command timeout, plus room for a slow machine)")
    p.add_argument("--timeout-ms", type=int, default=100, help="the instances' redis command timeout")
    a = p.parse_args()
    a.bin_dir = os.path.abspath(a.bin_dir)
    for exe in ("instances_upstream", "instances_instance"):
        if not os.access(os.path.join(a.bin_dir, exe), os.X_OK):
            say(f"no {exe} in {a.bin_dir}: build it first")
            return 2
    say(f"{a.subcommand}:")
    try:
        if a.subcommand == "block429":
            ok = blocked(a, "429")
        elif a.subcommand == "block1010":
            ok = blocked(a, "1010")
        elif a.subcommand == "budget":
            ok = budget(a)
        elif a.subcommand in ("redis-kill", "redis-stop"):
            ok = redis_outage(a, a.subcommand.split("-")[1])
        else:
            ok = bench(a)
    except HarnessError as e:
        say(f"  harness error: {e}")
        return 2
    finally:
        cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
