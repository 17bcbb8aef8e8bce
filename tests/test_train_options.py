"""Training options users rely on: the CPU compute dtype follows the CPU's capability, document-masked packing
really stops attention at document boundaries, report_to reaches the Trainer, and a resumed run's metrics file
has no repeated step (nor a second step-0 held-out row)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mathcode.train import packing, qlora, trainer as tr

EMBEDDED = "embedded:smollm2-135m-instruct"


def test_compute_dtype_follows_the_cpu_flags_and_the_parameter():
    amx = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    avx2 = "processor\t: 0\nflags\t\t: fpu sse avx2 fma\n"
    assert qlora.cpu_has_fast_bf16(amx) and not qlora.cpu_has_fast_bf16(avx2)
    assert qlora.choose_compute_dtype("auto", "cuda:0")[0] == "bfloat16"
    assert qlora.choose_compute_dtype("float32", "cuda")[0] == "float32"
    name, why = qlora.choose_compute_dtype("auto", "cpu")
    assert name == ("bfloat16" if qlora.cpu_has_fast_bf16() else "float32") and "auto" in why
    with pytest.raises(ValueError, match="compute_dtype='fp16'"):
        qlora.choose_compute_dtype("fp16", "cpu")


def test_document_positions_and_labels():
    eos = 0
    block = np.array([5, 6, eos, 7, 8, 9, eos, 4], dtype=np.int64)
    assert packing.document_positions(block, eos).tolist() == [0, 1, 2, 0, 1, 2, 3, 0]
    p = packing.Packed(block[None, :], 3, 8, 0, eos)
    row = packing.BlockDataset(p, packing="document_masked")[0]
    assert "attention_mask" not in row
    assert row["labels"].tolist() == [5, 6, 0, -100, 8, 9, 0, -100]
    assert packing.BlockDataset(p)[0]["labels"].tolist() == block.tolist()
    with pytest.raises(packing.PackingError, match="document_masked"):
        packing.BlockDataset(p, packing="masked")


@pytest.fixture(scope="module")
def small_model():
    from mathcode import models
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(models.resolve(EMBEDDED).path, dtype=torch.float32)
    return m.eval()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_document_masking_stops_attention_at_the_document_boundary(small_model, attn):
    small_model.config._attn_implementation = attn
    small_model.set_attn_implementation(attn)
    eos = 2
    doc2 = torch.tensor([400, 401, 402, 403, 404, 405])
    logits = []
    for doc1 in (torch.tensor([100, 101, 102, 103]), torch.tensor([900, 901, 902, 903])):
        block = torch.cat([doc1, torch.tensor([eos]), doc2]).numpy()
        ds = packing.BlockDataset(packing.Packed(block[None, :], 2, len(block), 0, eos), packing="document_masked")
        row = ds[0]
        with torch.no_grad():
            out = small_model(input_ids=row["input_ids"][None], position_ids=row["position_ids"][None],
                              use_cache=False)    # as in training: a KV cache turns the packed-sequence mask off
        logits.append(out.logits[0, 5:])
    assert torch.allclose(logits[0], logits[1], atol=1e-4), "a token's logits depend on the previous document"
    # and without masking they do depend on it (the test can fail)
    plain = []
    for doc1 in (torch.tensor([100, 101, 102, 103]), torch.tensor([900, 901, 902, 903])):
        ids = torch.cat([doc1, torch.tensor([eos]), doc2])[None]
        with torch.no_grad():
            plain.append(small_model(input_ids=ids).logits[0, 5:])
    assert not torch.allclose(plain[0], plain[1], atol=1e-3)


def test_report_to_reaches_the_trainer_and_progress_is_shown(tmp_path):
    s = tr.TrainSettings(max_steps=2)
    a = tr.training_arguments(tmp_path, s, "cpu", report_to="tensorboard")
    assert a.report_to == ["tensorboard"] and not a.disable_tqdm
    assert tr.training_arguments(tmp_path, s, "cpu").report_to in ([], "none", ["none"])
    with pytest.raises(ValueError, match="report_to='mlflow'"):
        tr.training_arguments(tmp_path, s, "cpu", report_to="mlflow")


def _log(cb, step, **logs):
    state = SimpleNamespace(global_step=step, is_world_process_zero=True)
    cb.on_log(None, state, None, logs=logs)


def test_resumed_metrics_have_no_duplicate_rows(tmp_path):
    f = tmp_path / "train_metrics.jsonl"
    cb = tr.MetricsCallback(f, "cpu", tokens_per_step=8)
    _log(cb, 0, eval_loss=3.0)                                      # held-out before training
    for step in range(1, 6):
        _log(cb, step, loss=3.0 - step / 10)
    _log(cb, 4, eval_loss=2.5)
    # interrupted after step 5; the last checkpoint is step 4: steps 5.. are trained again
    cb2 = tr.MetricsCallback(f, "cpu", tokens_per_step=8, resume_from=str(tmp_path / "checkpoint-4"))
    _log(cb2, 0, eval_loss=3.0)                                     # the notebook measures "before" again
    for step in range(5, 8):
        _log(cb2, step, loss=2.0)
    rows = [json.loads(x) for x in f.read_text().splitlines()]
    keys = [(r["step"], "eval" if "eval_loss" in r else "train") for r in rows]
    assert len(keys) == len(set(keys)), keys
    assert [k for k in keys if k[1] == "train"] == [(s, "train") for s in range(1, 8)]
    assert keys.count((0, "eval")) == 1
    tr.MetricsCallback(f, "cpu", tokens_per_step=8)                 # a fresh start removes the old rows
    assert not f.exists()
