"""Sandbox throughput: trivial verified snippets per second, warm pre-forked pool vs one subprocess per snippet.

Run: .venv/bin/python bench/bench_sandbox.py [--n 400] [--workers 2]
Prints a markdown table. Each executor runs the same snippets ("print(i * i)") and every output is
checked against the expected value, so the rate counts verified executions only.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from mathcode.translate.sandbox import Limits, Sandbox, detect_isolation, run_naive
from mathcode.translate.verify import compare


def measure(label, run_batch, codes, expected):
    t0 = time.perf_counter()
    results = run_batch(codes)
    dt = time.perf_counter() - t0
    ok = sum(r.status == "ok" and compare(e, r.stdout)[0] for r, e in zip(results, expected))
    return {"executor": label, "snippets": len(codes), "verified": ok, "seconds": round(dt, 2),
            "verified_per_s": round(ok / dt, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--naive-n", type=int, default=60)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    levels = ["process"] + (["bwrap"] if detect_isolation()[0] == "bwrap" else [])
    lim = Limits(timeout=10)
    rows = []
    for level in levels:
        codes = [f"print({i} * {i})" for i in range(a.n)]
        exp = [str(i * i) for i in range(a.n)]
        with Sandbox(workers=a.workers, isolation=level, limits=lim) as sb:
            sb.run_many(codes[:20])                                       # warm-up
            rows.append(measure(f"pre-forked pool ({level}, {a.workers} workers)", sb.run_many, codes, exp))
        codes_n, exp_n = codes[: a.naive_n], exp[: a.naive_n]
        with ThreadPoolExecutor(a.workers) as ex:
            rows.append(measure(f"naive: one `python -I -c` per snippet ({level}, {a.workers} parallel)",
                                lambda cs: list(ex.map(lambda c: run_naive(c, lim, isolation=level), cs)),
                                codes_n, exp_n))
    print(f"\nSandbox throughput on {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} "
          f"(python {sys.version.split()[0]})\n")
    print("| executor | snippets | verified | seconds | verified snippets/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['executor']} | {r['snippets']} | {r['verified']} | {r['seconds']} | {r['verified_per_s']} |")
    for level in levels:
        pool = next(r for r in rows if r["executor"].startswith("pre-forked") and level in r["executor"])
        naive = next(r for r in rows if r["executor"].startswith("naive") and f"({level}" in r["executor"])
        print(f"\nratio pool/naive ({level}): {pool['verified_per_s'] / max(naive['verified_per_s'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
