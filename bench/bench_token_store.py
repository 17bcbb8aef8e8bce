"""Phase 3 data preparation at growing corpus size: the kit's token store against 🤗 datasets ``map`` tokenization.

Each measurement is its own process under GNU time (wall seconds and peak RSS of the process), on the same
synthetic corpus file, interleaved (kit, peer, kit, peer, ...), repeated where the size allows:

- ``store``: ``token_store.build_part`` (datatrove's tokenizer step, one task) + ``token_store.splits`` + reading
  every training block once through ``BlockDataset`` (what training does over one epoch), on a fresh store folder.
- ``store-reuse``: the same call when the store exists (a resumed run, the next ablation arm, another rank).
- ``datasets``: the peer as 🤗's own language-modeling recipe does it (``run_clm.py``): ``load_dataset("json")``,
  ``map(tokenize, batched=True, num_proc=2)``, ``map(group_texts, batched=True, num_proc=2)``, then every block read
  once; a fresh cache folder.
- ``datasets-reuse``: the same with its Arrow cache in place.
- ``in-memory``: the previous in-memory packer (``packing.build``), only up to 10M tokens (it needs ~85 MB per
  million tokens).

Synthetic corpus: paragraphs of sympy docstrings (real math text with LaTeX and code), drawn with a fixed seed into
documents of 1-6 paragraphs, each document tagged with a random number so no two are equal.

    python bench/bench_token_store.py --sizes 1e6 1e7 1e8 --repeat 2 --out /tmp/bench_tokens
    python bench/bench_token_store.py --cli --out /tmp/bench_tokens   # phase 3 from the CLI, ~2M vs ~20M tokens
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMBEDDED = "embedded:smollm2-135m-instruct"
BLOCK = 2048


def pool() -> list[str]:
    import inspect
    import sympy
    paras = []
    for name in sorted(dir(sympy)):
        d = inspect.getdoc(getattr(sympy, name, None)) or ""
        paras += [p for p in d.split("\n\n") if len(p) > 80]
    return paras


def make_corpus(path: Path, tokens: int, chars_per_token: float = 2.9, seed: int = 0) -> None:
    """About ``tokens`` tokens of synthetic documents (the exact count is what the store reports)."""
    if path.exists():
        return
    ps = pool()
    rng = random.Random(seed)
    goal = tokens * chars_per_token
    n = 0
    i = 0
    tmp = path.with_suffix(".partial")
    with open(tmp, "w") as fh:
        while n < goal:
            text = f"Exercise {rng.randrange(10 ** 9)}.\n\n" + "\n\n".join(rng.choice(ps) for _ in range(rng.randint(1, 6)))
            fh.write(json.dumps({"id": f"s{i}", "text": text}) + "\n")
            n += len(text)
            i += 1
    os.replace(tmp, path)


# --- one measurement per process ------------------------------------------------------------------------------

def run_store(corpus: str, work: str) -> dict:
    import numpy as np
    from mathcode import models
    from mathcode.train import packing, token_store as ts
    tok = models.load_tokenizer(EMBEDDED, padding_side="right")
    t0 = time.perf_counter()
    st = ts.build_part(corpus, "bench", tok, work, progress=False)
    s = ts.splits([st], BLOCK, heldout_fraction=0.01, seed=0)
    ds = packing.BlockDataset(s.train, block_ids=True)
    chk = 0
    for i in range(len(ds)):
        chk += int(ds[i]["input_ids"][-1])
    return {"seconds": time.perf_counter() - t0, "tokens": st.n_tokens, "blocks": len(ds), "reused": st.reused,
            "check": chk, "resident_index_mb": st.resident_bytes() / 2 ** 20, "np": np.__version__}


def run_datasets(corpus: str, work: str) -> dict:
    from datasets import disable_progress_bars, load_dataset
    from mathcode import models
    disable_progress_bars()
    tok = models.load_tokenizer(EMBEDDED, padding_side="right")
    eos = tok.eos_token_id
    t0 = time.perf_counter()
    raw = load_dataset("json", data_files=corpus, split="train", cache_dir=work)

    def tokenize(batch):
        return {"input_ids": [x + [eos] for x in tok(batch["text"], add_special_tokens=False)["input_ids"]]}

    def group(batch):
        flat = [t for x in batch["input_ids"] for t in x]
        n = len(flat) // BLOCK * BLOCK
        return {"input_ids": [flat[i:i + BLOCK] for i in range(0, n, BLOCK)]}

    toks = raw.map(tokenize, batched=True, num_proc=2, remove_columns=raw.column_names)
    blocks = toks.map(group, batched=True, num_proc=2)
    blocks = blocks.with_format("numpy")
    chk = 0
    for i in range(len(blocks)):
        chk += int(blocks[i]["input_ids"][-1])
    return {"seconds": time.perf_counter() - t0, "tokens": int(sum(len(x) for x in toks["input_ids"]))
            if len(toks) < 50_000 else None, "blocks": len(blocks), "check": chk}


def run_memory(corpus: str, work: str) -> dict:
    from mathcode import models
    from mathcode.train import input_files, packing
    tok = models.load_tokenizer(EMBEDDED, padding_side="right")
    t0 = time.perf_counter()
    docs = input_files.load_docs([(Path(corpus), "bench")], warn=False)
    s = packing.build(docs, tok, BLOCK, heldout_fraction=0.01, seed=0)
    return {"seconds": time.perf_counter() - t0, "tokens": s.train.n_tokens + s.heldout.n_tokens,
            "blocks": s.train.n_blocks}


RUNNERS = {"store": run_store, "store-reuse": run_store, "datasets": run_datasets, "datasets-reuse": run_datasets,
           "in-memory": run_memory}


def measure(kind: str, corpus: Path, work: Path) -> dict:
    out = work.parent / f"{work.name}.{kind}.json"
    cmd = ["/usr/bin/time", "-f", "%e %M", sys.executable, __file__, "--one", kind, str(corpus), str(work), str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "TOKENIZERS_PARALLELISM": "true"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        raise RuntimeError(f"{kind} failed: {r.stderr[-3000:]}")
    wall, kb = r.stderr.strip().splitlines()[-1].split()
    res = json.loads(out.read_text())
    res.update(kind=kind, wall_s=float(wall), peak_rss_mb=int(kb) / 1024)
    return res


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def scaling(sizes: list[int], repeat: int, out: Path, peer_max: int = 10 ** 12) -> list[dict]:
    rows = []
    for size in sizes:
        corpus = out / f"corpus_{size}.jsonl"
        make_corpus(corpus, size)
        kinds = ["store"] + (["datasets"] if size <= peer_max else []) + (["in-memory"] if size <= 10_000_000 else [])
        for rep in range(repeat if size <= 10_000_000 else 1):
            for kind in kinds:                                       # interleaved: kit, peer, kit, peer
                work = out / f"work_{size}_{kind}_{rep}"
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir(parents=True)
                r = measure(kind, corpus, work)
                r.update(size=size, rep=rep, load=load())
                rows.append(r)
                print(json.dumps(r), flush=True)
                if kind in ("store", "datasets"):                      # the second run finds its cache
                    r2 = measure(f"{kind}-reuse", corpus, work)
                    r2.update(size=size, rep=rep, load=load())
                    rows.append(r2)
                    print(json.dumps(r2), flush=True)
                shutil.rmtree(work, ignore_errors=True)
    return rows


def cli(out: Path, sizes=(2_000_000, 20_000_000)) -> list[dict]:
    """Phase 3 from the CLI, one optimizer step on an explicit corpus, peak RSS of the whole tree (GNU time %M is
    the largest single process: the papermill kernel is a child, so the tree is summed by sampling, see below)."""
    rows = []
    for size in sizes:
        corpus = out / f"corpus_{size}.jsonl"
        make_corpus(corpus, size)
    for size in sizes:
        corpus = out / f"corpus_{size}.jsonl"
        run = out / f"cli_run_{size}"
        store = out / f"cli_store_{size}"
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
        cmd = [sys.executable, "-m", "mathcode", "run", "--config", "configs/smoke.yaml", "--run-dir", str(run),
               "--phases", "pretraining", "--quiet", "-p", f"pretraining.corpus_files=[{corpus}]",
               "-p", "pretraining.max_steps=1", "-p", f"pretraining.token_store={store}",
               "-p", "pretraining.eval_steps=0", "-p", "pretraining.max_heldout_blocks=2"]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
        t0 = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%e %M", *cmd], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        tree_peak = sample_tree(p.pid)
        so, se = p.communicate()
        if p.returncode:
            raise RuntimeError(f"CLI run failed: {se[-3000:]}")
        wall, kb = se.strip().splitlines()[-1].split()
        meta = json.loads((run / "03_pretraining" / "phase.json").read_text())
        r = {"size": size, "wall_s": float(wall), "gnu_time_max_rss_mb": int(kb) / 1024,
             "tree_peak_rss_mb": tree_peak, "tokens": sum(v["tokens"] for v in
                                                          meta["metrics"]["token_stores"].values()),
             "seconds": time.perf_counter() - t0, "load": load()}
        rows.append(r)
        print(json.dumps(r), flush=True)
    return rows


def sample_tree(pid: int, every: float = 0.2) -> float:
    """Peak over time of the summed RSS of ``pid`` and all its descendants (MB)."""
    import psutil
    peak = 0.0
    try:
        root = psutil.Process(pid)
        while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
            tot = 0
            for q in [root, *root.children(recursive=True)]:
                try:
                    tot += q.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, tot / 2 ** 20)
            time.sleep(every)
    except psutil.Error:
        pass
    return peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="*", type=float, default=[1e6, 1e7, 1e8])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default="/tmp/bench_tokens")
    ap.add_argument("--peer-max", type=float, default=1e12, help="run the datasets peer only up to this size")
    ap.add_argument("--cli", action="store_true", help="phase 3 from the CLI on ~2M vs ~20M tokens instead")
    ap.add_argument("--one", nargs=4, metavar=("KIND", "CORPUS", "WORK", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        kind, corpus, work, out = a.one
        Path(out).write_text(json.dumps(RUNNERS[kind](corpus, work)))
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = cli(out) if a.cli else scaling([int(s) for s in a.sizes], a.repeat, out, int(a.peer_max))
    (out / ("cli.json" if a.cli else "scaling.json")).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
