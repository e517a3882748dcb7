#!/usr/bin/env python3
"""Runs two builds of a Google Benchmark binary alternately, pinned to one core, and prints the median CPU
time of each benchmark over the rounds: a side-by-side comparison on a machine whose speed drifts.

    benchmarks/compare.py OLD_BINARY NEW_BINARY ROUNDS [FILTER]

e.g. the chain before and after a change (a worktree of the old commit, built the same way):
    benchmarks/compare.py /tmp/old/build/bench/benchmarks/bench_chain build/bench/benchmarks/bench_chain 10
"""
import subprocess, re, statistics, sys, collections
old, new, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
flt = sys.argv[4] if len(sys.argv) > 4 else '.'
res = {'old': collections.defaultdict(list), 'new': collections.defaultdict(list)}
allocs = {}
for r in range(rounds):
    for tag, binary in (('old', old), ('new', new)) if r % 2 == 0 else (('new', new), ('old', old)):
        out = subprocess.run(['taskset', '-c', '1', binary, '--benchmark_filter=' + flt, '--benchmark_min_time=0.3'], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.match(r'(BM_\S+)\s+([\d.]+) ns\s+([\d.]+) ns\s+\d+(.*)', line)
            if m:
                res[tag][m.group(1)].append(float(m.group(3)))
                allocs[(tag, m.group(1))] = m.group(4).strip()
names = sorted(set(res['old']) | set(res['new']), key=lambda n: list(res['new']).index(n) if n in res['new'] else 99)
print(f"{'benchmark':45s} {'old ns':>9s} {'new ns':>9s}   allocs old / new   (median CPU time of {rounds} alternating runs)")
for n in names:
    o = statistics.median(res['old'][n]) if res['old'][n] else float('nan')
    w = statistics.median(res['new'][n]) if res['new'][n] else float('nan')
    print(f"{n:45s} {o:9.0f} {w:9.0f}   {allocs.get(('old', n), '-'):>18s} / {allocs.get(('new', n), '-')}")
