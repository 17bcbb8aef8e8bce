"""Multi-process phase 3 through the real entry point: two CPU processes (torchrun, gloo) train one 4-bit QLoRA
run at tiny scale and rank 0 writes the phase artefacts once."""
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
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(paths.project_root() / "lib")}
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29533",
           str(paths.project_root() / "scripts" / "pretrain_distributed.py"), "--config", "configs/smoke.yaml",
           "--run-dir", str(run), "-p", f"corpus_files=[{corpus}]", "-p", "max_steps=2", "-p", "block_size=32",
           "-p", "per_device_batch_size=1", "-p", "save_steps=2", "-p", "eval_steps=0", "-p", "compute_dtype=float32"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=paths.project_root())
    assert r.returncode == 0, r.stderr[-4000:]
    d = run / "03_pretraining"
    status = json.loads((d / "phase.json").read_text())
    assert status["status"] == "complete"
    assert status["metrics"]["world_size"] == 2 and status["metrics"]["steps"] == 2
    rows = [json.loads(x) for x in (d / "train_metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "loss" in x] == [1, 2], "one row per step, written by rank 0 only"
    assert (d / "adapter" / "adapter_model.safetensors").exists()
