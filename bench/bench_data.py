"""Phase 1 throughput: classify + near-dedup + decontaminate, plain streaming path vs the datatrove pipeline.

    .venv/bin/python bench/bench_data.py [--sizes 5000 20000 80000] [--tasks 1]

Each measurement runs in a fresh subprocess (peak RSS is that process's own). Both routes read the same JSONL
input and write JSONL output; both build the decontamination index (five benchmark test sets) inside the
timed region; the classifier is trained once beforehand (not timed). Documents are embedded ones: 50%
reasoning-gym gsm_symbolic, 40% fast reasoning-gym drills, 10% champ / package docstrings / stdlib prose
(capped at what exists; the rest filled with gsm_symbolic). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAST_DRILLS = ["basic_arithmetic", "gcd", "lcm", "fraction_simplification", "prime_factorization",
               "complex_arithmetic", "decimal_arithmetic", "count_primes"]


def build_corpus(n: int, folder: Path, seed: int = 0) -> Path:
    import random

    import reasoning_gym as rg

    from mathcode.data.sources import doc_id, load_sources
    from mathcode.util import write_jsonl
    other = load_sources(["embedded:champ_solutions", "embedded:champ_concepts", "embedded:math_docstrings_seed",
                          "embedded:math_package_docstrings", "embedded:stdlib_prose"], seed=seed)
    random.Random(seed).shuffle(other)
    other = other[: n // 10]
    n_drill = int(n * 0.4)
    per = -(-n_drill // len(FAST_DRILLS))
    drills = []
    for g in FAST_DRILLS:
        ds = rg.create_dataset(g, size=per, seed=seed)
        drills += [{"id": doc_id("rg_math_drills", f"{g}-{i}"), "source": "rg_math_drills", "meta": {"generator": g},
                    "text": f"Problem: {ds[i]['question']}\nAnswer: {ds[i]['answer']}"} for i in range(per)]
    drills = drills[:n_drill]
    gsm = load_sources(["embedded:rg_gsm_symbolic"], max_docs=n - len(other) - len(drills), seed=seed)
    docs = other + drills + gsm
    random.Random(seed + 1).shuffle(docs)
    f = folder / "in" / "part0.jsonl"
    write_jsonl(f, docs)
    return f


def train_classifier(path: Path) -> None:
    from mathcode.data.classifier import MathClassifier
    from mathcode.data.sources import load_sources
    pos = load_sources(["embedded:champ_solutions", "embedded:rg_gsm_symbolic", "embedded:math_docstrings_seed"],
                       max_docs=300)
    neg = load_sources(["embedded:stdlib_prose"])
    MathClassifier.train([d["text"] for d in pos], [d["text"] for d in neg]).save(path)


def one(route: str, folder: Path, clf: Path, tasks: int) -> dict:
    """Runs in a subprocess: one route over folder/in, timed end to end (read → 3 steps → write)."""
    t0 = time.perf_counter()
    out = folder / f"out_{route}"
    if route == "plain":
        from mathcode.data import pipeline
        from mathcode.data.classifier import MathClassifier
        from mathcode.data.decontaminate import load_benchmarks
        from mathcode.util import iter_jsonl
        steps = pipeline.filter_steps(quality=[], classifier=MathClassifier.load(clf), classifier_threshold=0.5,
                                      dedup=True, benchmarks=load_benchmarks("default"))
        out.mkdir(parents=True, exist_ok=True)
        n, reps = pipeline.run_streaming(iter_jsonl(folder / "in" / "part0.jsonl"), steps, out / "out.jsonl",
                                         shard_size=1000)
        n_in = reps[0].n_in
        removed = {r.step: r.n_removed for r in reps}
    else:
        from mathcode.data import datatrove_route as R
        R.run_local(str(folder / "in"), str(out), str(folder / f"work_{tasks}"),
                    filters=[("classifier", {"path": str(clf), "threshold": 0.5})],
                    decontam={"benchmarks": "default"}, dedup={"num_perm": 128, "shingle": 5, "threshold": 0.8},
                    tasks=tasks, workers=tasks)
        n = R.count_rows(str(out))
        n_in = sum(1 for _ in open(folder / "in" / "part0.jsonl"))
        removed = {}
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + \
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"route": route, "docs": n_in, "kept": n, "seconds": round(dt, 2), "docs_per_s": round(n_in / dt, 1),
            "peak_rss_mb": round(rss), "removed": removed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 80000])
    ap.add_argument("--tasks", type=int, default=1, help="datatrove tasks/workers (plain path is one process)")
    ap.add_argument("--one", nargs=3, metavar=("ROUTE", "FOLDER", "CLF"))
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one[0], Path(a.one[1]), Path(a.one[2]), a.tasks)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        clf = tmp / "clf.bin"
        train_classifier(clf)
        rows = []
        for n in a.sizes:
            folder = tmp / str(n)
            build_corpus(n, folder)
            for route in ("plain", "datatrove"):
                r = subprocess.run([sys.executable, __file__, "--tasks", str(a.tasks), "--one", route, str(folder),
                                    str(clf)], capture_output=True, text=True)
                if r.returncode:
                    raise SystemExit(r.stderr[-3000:])
                rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
                print(rows[-1], file=sys.stderr, flush=True)
            shutil.rmtree(folder, ignore_errors=True)
        print(f"\nclassify + near-dedup + decontaminate, {os.cpu_count()} cores, datatrove tasks={a.tasks}\n")
        print("| docs | plain docs/s | plain s | plain kept | plain peak RSS MB | datatrove docs/s | datatrove s | "
              "datatrove kept | datatrove peak RSS MB | datatrove / plain time |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for n in a.sizes:
            p = next(r for r in rows if r["docs"] == n and r["route"] == "plain")
            d = next(r for r in rows if r["docs"] == n and r["route"] == "datatrove")
            print(f"| {n} | {p['docs_per_s']} | {p['seconds']} | {p['kept']} | {p['peak_rss_mb']} | {d['docs_per_s']} | "
                  f"{d['seconds']} | {d['kept']} | {d['peak_rss_mb']} | {d['seconds'] / p['seconds']:.2f} |")
        print("\nscaling (seconds per 1k docs, plain / datatrove): " + ", ".join(
            f"{n}: {next(r for r in rows if r['docs'] == n and r['route'] == 'plain')['seconds'] / n * 1000:.2f} / "
            f"{next(r for r in rows if r['docs'] == n and r['route'] == 'datatrove')['seconds'] / n * 1000:.2f}"
            for n in a.sizes))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
