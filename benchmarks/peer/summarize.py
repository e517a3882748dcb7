#!/usr/bin/env python3
"""Summarises benchmarks/peer/run.sh's wrk and /proc files as a markdown table (medians over rounds).

usage: summarize.py OUT_DIR "64 1"
"""
import glob
import os
import re
import statistics
import sys

UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}
SCENARIOS = [("direct", "wrk -> mock"), ("single", "one target"), ("429", "429 then fallback"), ("1010", "1010 then fallback")]


def micros(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse(prefix):
    wrk = open(prefix + ".wrk").read()
    proc = dict(zip(*[iter(open(prefix + ".proc").read().split())] * 2))
    requests = int(re.search(r"(\d+) requests in", wrk).group(1))
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wrk)
    if m:
        errors += sum(int(g) for g in m.groups())
    cpu_s = int(proc["cpu_ticks"]) / int(proc["clk_tck"])
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1)),
        "p50": micros(re.search(r"^\s+50%\s+(\S+)", wrk, re.M).group(1)),
        "p99": micros(re.search(r"^\s+99%\s+(\S+)", wrk, re.M).group(1)),
        "cpu": cpu_s * 1e6 / max(requests, 1),
        "hwm": int(proc["vmhwm_kb"]) / 1024,
        "rss": int(proc["vmrss_kb"]) / 1024,
        "errors": errors,
    }


def cell(out, scenario, who, conns):
    runs = [parse(f[:-4]) for f in sorted(glob.glob(os.path.join(out, f"{scenario}.{who}.c{conns}.r[1-9]*.wrk")))]
    if not runs:
        return None
    med = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "cpu")}
    med.update(hwm=max(r["hwm"] for r in runs), rss=runs[-1]["rss"], errors=sum(r["errors"] for r in runs), n=len(runs))
    return med


def lat(us):
    return f"{us:.0f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def main():
    out, conns_list = sys.argv[1], sys.argv[2].split()
    cells = {}
    print("| scenario | conns | side | req/s | p50 | p99 | CPU / request | RSS peak (now) | non-2xx + socket errors |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for conns in conns_list:
        for scenario, what in SCENARIOS:
            for who in (["mock"] if scenario == "direct" else ["cascade", "portkey"]):
                c = cell(out, scenario, who, conns)
                if not c:
                    continue
                cells[scenario, who, conns] = c
                print(f"| {scenario} ({what}) | {conns} | {who} | {c['rps']:,.0f} | {lat(c['p50'])} | {lat(c['p99'])} | "
                      f"{c['cpu']:,.1f} µs | {c['hwm']:.1f} MB ({c['rss']:.1f}) | {c['errors']} |")
    n = max((c["n"] for c in cells.values()), default=0)
    print(f"\nMedians of {n} run(s) a cell. CPU: the process's utime+stime over the run / requests answered "
          "(the mock's own for direct). RSS: VmHWM (VmRSS at the end); Portkey is one process for every scenario.")

    print("\n| scenario | conns | cascade / portkey req/s | cascade p99 / portkey p99 | added p50 at 1 conn, cascade | portkey |")
    print("|---|---:|---:|---:|---:|---:|")
    for conns in conns_list:
        direct = cells.get(("direct", "mock", conns))
        for scenario, what in SCENARIOS[1:]:
            c, p = cells.get((scenario, "cascade", conns)), cells.get((scenario, "portkey", conns))
            if not (c and p):
                continue
            added = ("-", "-")
            if conns == "1" and direct:
                added = (lat(c["p50"] - direct["p50"]), lat(p["p50"] - direct["p50"]))
            print(f"| {scenario} | {conns} | {c['rps'] / p['rps']:.1f}x | {c['p99'] / p['p99']:.3f} | {added[0]} | {added[1]} |")


if __name__ == "__main__":
    main()
