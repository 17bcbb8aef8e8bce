"""Multi-process phase 3 through the real entry point: two CPU processes (torchrun, gloo) train one 4-bit QLoRA
run at tiny scale and rank 0 writes the phase artefacts once; both ranks read the same token store (which neither
tokenizes again) and train on disjoint blocks, in the order every rank computes alike."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from mathcode import paths

pytestmark = pytest.mark.slow


def test_two_cpu_processes_train_one_run(tmp_path):
    import sympy
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    assert torchrun, "torchrun ships with torch"
    corpus = tmp_path / "c.jsonl"
    docs = [sympy.integrate.__doc__, sympy.diff.__doc__, sympy.solve.__doc__, sympy.limit.__doc__,
            sympy.series.__doc__, sympy.factor.__doc__]
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs) if t))
    run = tmp_path / "run"
    from mathcode import models
    from mathcode.train import token_store, trainer as tr
    store_root = tmp_path / "store"                      # tokenized before launch: the ranks must only read it
    tok = models.load_tokenizer("embedded:smollm2-135m-instruct", padding_side="right")
    store = token_store.build_part(corpus, "c", tok, store_root, progress=False)
    made = {p.name: (p / "meta.json").stat().st_mtime_ns for p in store_root.iterdir()}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(paths.project_root() / "lib")}
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29533",
           str(paths.project_root() / "scripts" / "pretrain_distributed.py"), "--config", "configs/smoke.yaml",
           "--run-dir", str(run), "-p", f"corpus_files=[{corpus}]", "-p", "max_steps=2", "-p", "block_size=32",
           "-p", "per_device_batch_size=1", "-p", "save_steps=2", "-p", "eval_steps=0", "-p", "compute_dtype=float32",
           "-p", f"token_store={store_root}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=paths.project_root())
    assert r.returncode == 0, r.stderr[-4000:]
    d = run / "03_pretraining"
    status = json.loads((d / "phase.json").read_text())
    assert status["status"] == "complete"
    assert status["metrics"]["world_size"] == 2 and status["metrics"]["steps"] == 2
    rows = [json.loads(x) for x in (d / "train_metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "loss" in x] == [1, 2], "one row per step, written by rank 0 only"
    assert (d / "adapter" / "adapter_model.safetensors").exists()
    # one store, untouched, reused by both ranks
    assert {p.name: (p / "meta.json").stat().st_mtime_ns for p in store_root.iterdir()} == made
    assert r.stdout.count(f"token store [c]: reused {store.path}") == 2, r.stdout[-3000:]
    assert status["metrics"]["token_stores"]["c"]["reused"] is True
    # disjoint blocks: batch k of the shared order goes to rank k % 2
    logs = [tr.read_block_log(d / f"trained_blocks.rank{k}.jsonl") for k in (0, 1)]
    assert all(sorted(x) == [1, 2] and all(len(b) == 1 for b in x.values()) for x in logs), logs
    n_train = status["metrics"]["train_blocks"]
    order = tr.BlockOrder(n_train, 0).order(0)
    assert [logs[0][1][0], logs[1][1][0], logs[0][2][0], logs[1][2][0]] == order[:4]
    assert not set(logs[0][1] + logs[0][2]) & set(logs[1][1] + logs[1][2])
