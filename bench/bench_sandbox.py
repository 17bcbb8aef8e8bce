"""Sandbox throughput: verified short math snippets per second, mathcode's sandbox vs the executors harnesses use.

Run: .venv/bin/python bench/bench_sandbox.py [--n 300] [--slow-n 40] [--repeats 3] [--workers 2]

Executors, each given the same snippets; a snippet counts only when its stdout equals the expected output:
  * mathcode Sandbox, bubblewrap level and fallback level (warm workers, fork per snippet, all guards on);
  * fork per sample, human-eval style: ``multiprocessing.Process`` per sample, a ``Manager().list()`` for the
    result, resource limits + disabled destructive functions (a "reliability guard") in the child,
    ``join(timeout)`` then kill, run from a ThreadPoolExecutor like human-eval's evaluate loop;
  * warm process pool with timeouts, pebble style (MathCoder2 / Qwen2.5-Math ``python_executor``):
    ``pebble.ProcessPool(max_workers).map(execute, snippets, timeout=...)``, exec with redirected stdout;
  * one ``python -I -c`` per snippet (plain, and inside bubblewrap).
Repeats are interleaved (every executor once per round, rounds repeated); the table gives the median rate and
its ratio to mathcode's bubblewrap level. Prints a markdown table with machine, load and date.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import multiprocessing
import os
import platform
import statistics
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

from mathcode.sandbox import Limits, Sandbox, detect_isolation, run_naive

TEMPLATES = [
    "from fractions import Fraction\nx = Fraction({a}, {b}) + Fraction({c}, {d})\nprint(x)",
    "import math\nprint(math.comb({a} + 10, {c} % 7 + 2))",
    "total = 0\nfor k in range(1, {a} + 1):\n    total += k * k\nprint(total)",
    "import math\nprint(math.gcd({a} * {b}, {c} * {d}), math.lcm({a}, {d}))",
    "def f(n):\n    return n * (n + 1) // 2\nprint(f({a}) - f({b}))",
    "price = {a}.5\nqty = {b}\ndiscount = 0.{c}\nprint(round(price * qty * (1 - discount), 2))",
    "xs = [{a}, {b}, {c}, {d}]\nprint(sum(xs) / len(xs), max(xs) - min(xs))",
    "primes = [p for p in range(2, {a} + 30) if all(p % q for q in range(2, int(p ** 0.5) + 1))]\nprint(len(primes))",
]


def snippets(n):
    out = []
    for i in range(n):
        a, b, c, d = 11 + i % 37, 3 + i % 13, 2 + i % 9, 5 + i % 11
        code = TEMPLATES[i % len(TEMPLATES)].format(a=a, b=b, c=c, d=d)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(code, {"__name__": "__main__"})
        out.append((code, buf.getvalue()))
    return out


# ---------------------------------------------------------------- fork per sample (human-eval style)
def _reliability_guard(mem_bytes):
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    resource.setrlimit(resource.RLIMIT_DATA, (mem_bytes, mem_bytes))
    import builtins
    import shutil
    import subprocess
    builtins.exit = builtins.quit = None
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
                 "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown",
                 "chmod", "chown", "chroot", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None


def _unsafe_execute(code, result, timeout):
    import shutil
    import signal
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        rmtree, rmdir, chdir = shutil.rmtree, os.rmdir, os.chdir     # restored for the clean-up, as the harness does
        _reliability_guard(1 << 30)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(code, {"__name__": "__main__"})
            result.append(("ok", buf.getvalue()))
        except BaseException as e:          # noqa: BLE001 - recorded like the harness does
            result.append(("error", repr(e)))
        signal.setitimer(signal.ITIMER_REAL, 0)
        shutil.rmtree, os.rmdir, os.chdir = rmtree, rmdir, chdir
        os.chdir("/")

def fork_per_sample(code, timeout=5.0):
    with multiprocessing.Manager() as manager:
        result = manager.list()
        p = multiprocessing.Process(target=_unsafe_execute, args=(code, result, timeout))
        p.start()
        p.join(timeout + 1)
        if p.is_alive():
            p.kill()
        return tuple(result[0]) if result else ("timeout", "")


# ---------------------------------------------------------------- warm pool with timeouts (pebble style)
def _pebble_execute(code):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(code, {"__name__": "__main__"})
    return buf.getvalue()


def pebble_pool(pool, codes, timeout=5.0):
    fut = pool.map(_pebble_execute, codes, timeout=timeout)
    it, out = fut.result(), []
    while True:
        try:
            out.append(("ok", next(it)))
        except StopIteration:
            return out
        except Exception as e:              # noqa: BLE001 - TimeoutError / snippet errors, as the harnesses do
            out.append(("error", repr(e)))


def _tree_cpu_s(sb):
    """CPU seconds used so far by a Sandbox's workers and their reaped children (the snippets)."""
    from mathcode.sandbox.pool import _descendants
    tck, total = os.sysconf("SC_CLK_TCK"), 0
    for pool in sb.pools.values():
        for w in list(pool.live):
            for p in [w.proc.pid] + _descendants(w.proc.pid):
                try:
                    with open(f"/proc/{p}/stat") as fh:
                        total += sum(int(x) for x in fh.read().rsplit(")", 1)[1].split()[11:15])
                except OSError:
                    pass
    return total / tck


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="snippets per round for the fast executors")
    ap.add_argument("--slow-n", type=int, default=40, help="snippets per round for one-process-per-snippet ones")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    import pebble
    fast, slow = snippets(a.n), snippets(a.slow_n)
    lim = Limits(timeout=10)
    levels = (["bwrap"] if detect_isolation()[0] == "bwrap" else []) + ["process"]
    warnings.simplefilter("ignore", RuntimeWarning)
    boxes = {lvl: Sandbox(workers=a.workers, isolation=lvl, limits=lim) for lvl in levels}
    for sb in boxes.values():
        sb.run_many([c for c, _ in fast[:20]])                               # warm-up
    pool = pebble.ProcessPool(max_workers=a.workers)
    pebble_pool(pool, [c for c, _ in fast[:20]])
    tp = ThreadPoolExecutor(a.workers)

    def sandbox_exec(lvl):
        return lambda items: [(r.status, r.stdout) for r in boxes[lvl].run_many([c for c, _ in items])]
    executors = [(f"mathcode Sandbox, {lvl} level ({a.workers} workers)", fast, sandbox_exec(lvl)) for lvl in levels]
    executors += [
        (f"warm pool with timeouts, pebble ProcessPool ({a.workers} workers)", fast,
         lambda items: pebble_pool(pool, [c for c, _ in items])),
        (f"fork per sample, human-eval style ({a.workers} threads)", slow,
         lambda items: list(tp.map(lambda it: fork_per_sample(it[0]), items))),
        (f"`python -I -c` per snippet ({a.workers} parallel)", slow,
         lambda items: [(r.status, r.stdout) for r in tp.map(lambda it: run_naive(it[0], lim), items)]),
    ]
    if "bwrap" in levels:
        executors.append((f"`bwrap python -I -c` per snippet ({a.workers} parallel)", slow,
                          lambda items: [(r.status, r.stdout) for r in
                                         tp.map(lambda it: run_naive(it[0], lim, "bwrap"), items)]))
    rates = {name: [] for name, _, _ in executors}
    cpu_ms = {name: [] for name, _, _ in executors}
    loads = []
    for _ in range(a.repeats):                                               # interleaved rounds
        for name, items, fn in executors:
            loads.append(os.getloadavg()[0])
            box = next((boxes[lvl] for lvl in levels if name.startswith(f"mathcode Sandbox, {lvl} ")), None)
            c0 = (_tree_cpu_s(box), os.times()) if box else None
            t0 = time.perf_counter()
            res = fn(items)
            dt = time.perf_counter() - t0
            if box:     # CPU time per snippet barely depends on the load, unlike the rate
                h = os.times()
                cpu = _tree_cpu_s(box) - c0[0] + (h.user + h.system) - (c0[1].user + c0[1].system)
                cpu_ms[name].append(1e3 * cpu / len(items))
            ok = sum(st == "ok" and out == exp for (st, out), (_, exp) in zip(res, items))
            rates[name].append(ok / dt)
            if ok != len(items):
                print(f"warning: {name}: {ok}/{len(items)} verified", file=sys.stderr)
    pool.close()
    pool.join()
    for sb in boxes.values():
        sb.close()
    ref = statistics.median(rates[executors[0][0]])
    print(f"\n{datetime.date.today()} · {platform.node()} · {os.cpu_count()} CPU cores · "
          f"{platform.processor() or platform.machine()} · python {sys.version.split()[0]} · load average during "
          f"the runs {min(loads):.1f}–{max(loads):.1f} · {a.repeats} interleaved rounds\n")
    print("| executor | snippets per round | verified snippets/s (median) | min–max | mathcode bwrap / this | "
          "CPU ms per snippet (host + workers + snippets) |")
    print("|---|---|---|---|---|---|")
    for name, items, _ in executors:
        r = rates[name]
        cpu = f"{statistics.median(cpu_ms[name]):.2f}" if cpu_ms[name] else "–"
        print(f"| {name} | {len(items)} | {statistics.median(r):.1f} | {min(r):.1f}–{max(r):.1f} | "
              f"{ref / statistics.median(r):.2f}× | {cpu} |")


if __name__ == "__main__":
    main()
