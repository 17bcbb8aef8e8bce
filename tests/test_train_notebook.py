"""Notebook 03 end to end by papermill at smoke scale, and a bad corpus failing before anything is marked complete."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mathcode import paths

pytestmark = pytest.mark.slow
NB = paths.project_root() / "notebooks" / "03_qlora_pretraining.ipynb"
SMOKE = {"max_documents": 40, "block_size": 32, "per_device_batch_size": 2, "max_steps": 4, "save_steps": 4,
         "eval_steps": 4, "max_heldout_blocks": 2, "learning_rate": 0.003}


def corpus(path: Path, n: int = 40, min_len: int = 300) -> Path:
    import sympy
    rows = []
    for k in sorted(dir(sympy)):
        d = inspect.getdoc(getattr(sympy, k))
        if d and len(d) > min_len:
            rows.append({"id": f"sympy:{k}", "text": d, "source": "sympy", "meta": {}})
        if len(rows) == n:
            break
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def papermill(out_nb: Path, run_dir: Path, params: dict):
    import yaml
    cmd = [str(Path(sys.executable).with_name("papermill")), str(NB), str(out_nb), "-p", "run_dir", str(run_dir),
           "-y", yaml.safe_dump(params)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def test_notebook_trains_and_writes_the_adapter_contract(tmp_path):
    run = tmp_path / "run"
    r = papermill(tmp_path / "out.ipynb", run, {**SMOKE, "corpus_files": [str(corpus(tmp_path / "c.jsonl"))]})
    assert r.returncode == 0, r.stderr[-3000:]
    d = run / "03_pretraining"
    status = json.loads((d / "phase.json").read_text())
    assert status["status"] == "complete"
    m = status["metrics"]
    assert m["steps"] == 4 and m["heldout_ppl_after"] < m["heldout_ppl_before"]
    assert m["compute_dtype"] in ("float32", "bfloat16") and m["compute_dtype_reason"]   # recorded in the manifest
    assert m["tokens_per_s"] > 0 and m["peak_memory_mb"] > 0 and m["train_loss_first"] > 0
    meta = json.loads((d / "adapter" / "mathcode_adapter.json").read_text())
    assert meta["base_model"] == "embedded:smollm2-135m-instruct"
    for f in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_args.json"):
        assert (d / "adapter" / f).exists()
    figs = {f["file"] for f in json.loads((d / "figures" / "index.json").read_text())}
    assert {"loss_curves.png", "perplexity.png", "throughput_memory.png"} <= figs
    rows = [json.loads(x) for x in (d / "train_metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in rows if "loss" in x] == [1, 2, 3, 4]


def test_corpus_shorter_than_a_block_fails_clearly_and_is_not_complete(tmp_path):
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text(json.dumps({"id": "a", "text": "Let x = 2. Then x^2 = 4."}) + "\n")
    run = tmp_path / "run"
    r = papermill(tmp_path / "out.ipynb", run, {**SMOKE, "corpus_files": [str(tiny)], "block_size": 256})
    assert r.returncode != 0
    assert "PackingError" in r.stderr and "lower block_size or add documents" in r.stderr
    assert json.loads((run / "03_pretraining" / "phase.json").read_text())["status"] != "complete"


def test_missing_upstream_phase_fails_clearly(tmp_path):
    r = papermill(tmp_path / "out.ipynb", tmp_path / "run", {**SMOKE, "mixture": "basic"})
    assert r.returncode != 0 and "MissingInputError" in r.stderr and "corpus.jsonl" in r.stderr
