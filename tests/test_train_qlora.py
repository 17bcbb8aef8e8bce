"""Real 4-bit QLoRA training on CPU with the embedded model: loss falls, the adapter reloads to the same
logits, no loss crosses packed rows, LoRA targets are checked, and an interrupted run resumes on schedule."""
from __future__ import annotations

import inspect
import json
import math

import pytest
import torch

from mathcode import models
from mathcode.train import packing, qlora, trainer as tr

EMBEDDED = "embedded:smollm2-135m-instruct"
BLOCK = 32
pytestmark = pytest.mark.slow


def sympy_text(n_docs: int = 8) -> list[str]:
    import sympy
    out = [inspect.getdoc(getattr(sympy, k)) for k in ("integrate", "diff", "solve", "limit", "series", "Matrix",
                                                         "factor", "simplify", "expand", "Rational")]
    return [d for d in out if d][:n_docs]


@pytest.fixture(scope="module")
def tok():
    return models.load_tokenizer(EMBEDDED, padding_side="right")


@pytest.fixture(scope="module")
def blocks(tok):
    p = packing.pack(packing.tokenize(sympy_text(), tok), BLOCK, tok.eos_token_id)
    assert p.n_blocks >= 8
    return p


@pytest.fixture(scope="module")
def peft_model():
    base = qlora.load_base(EMBEDDED, quantize="nf4", device="cpu")
    import bitsandbytes as bnb
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in base.modules()), "base is not really 4-bit"
    with pytest.raises(qlora.LoraTargetError, match=r"available: down_proj, gate_proj, k_proj, o_proj, q_proj"):
        qlora.check_targets(base, ["q_proj", "attention.query"])
    torch.manual_seed(0)
    return qlora.attach_lora(base, qlora.LoraSettings(r=8, alpha=16, dropout=0.0), gradient_checkpointing=True)


def _settings(**kw):
    base = dict(max_steps=6, per_device_batch_size=2, grad_accum=1, learning_rate=2e-3, warmup=1, eval_steps=0,
                save_steps=100, seed=0)
    base.update(kw)
    return tr.TrainSettings(**base)


def test_loss_falls_and_adapter_reloads_to_same_logits(peft_model, tok, blocks, tmp_path):
    one = packing.Packed(blocks.blocks[:2], 2, 2 * BLOCK, 0, tok.eos_token_id)       # a repeated batch
    ds = packing.BlockDataset(one)
    args = tr.training_arguments(tmp_path / "ckpt", _settings(), "cpu")
    cb = tr.MetricsCallback(tmp_path / "m.jsonl", "cpu", tokens_per_step=2 * BLOCK)
    t = tr.build_trainer(peft_model, tok, ds, None, args, callbacks=[cb])
    t.train()
    losses = [r["loss"] for r in cb.rows if "loss" in r]
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.2, losses
    assert cb.tokens_per_second > 0 and cb.rows[-1]["peak_mem_mb"] > 100
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == len(cb.rows)

    adapter = tr.save_adapter(peft_model, tok, tmp_path / "adapter", base_model=EMBEDDED, args=args)
    for f in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_args.json",
              "mathcode_adapter.json"):
        assert (adapter / f).exists(), f
    assert json.loads((adapter / "mathcode_adapter.json").read_text())["base_model"] == EMBEDDED

    batch = torch.from_numpy(blocks.blocks[2:4].copy())
    peft_model.eval()
    with torch.no_grad():
        trained = peft_model(input_ids=batch).logits
        # no leakage between packed rows: the batch loss is the mean of the rows' own losses
        both = peft_model(input_ids=batch, labels=batch).loss
        rows = [peft_model(input_ids=batch[i:i + 1], labels=batch[i:i + 1]).loss for i in range(2)]
    # leakage across rows would move the loss by tenths; the bar is bf16 rounding: the 4-bit layers of a model that
    # trains compute in bf16 on this path for every batch shape, and a batch of 2 rounds its matmuls differently from
    # a batch of 1 (seen ~1e-3 here; fp32 compute agrees to 1e-4)
    tol = 1e-4 if qlora.choose_compute_dtype("auto", "cpu")[0] == "float32" else 5e-3
    assert torch.allclose(both, torch.stack(rows).mean(), atol=tol), (both, torch.stack(rows).mean())

    reloaded = models.apply_adapter(qlora.load_base(EMBEDDED, quantize="nf4", device="cpu"), adapter,
                                    base_spec=EMBEDDED).eval()
    qlora.keep_autograd_layout(reloaded)         # the same 4-bit kernel the trained model evaluates with (training's)
    with torch.no_grad():
        again = reloaded(input_ids=batch).logits
    assert torch.allclose(trained, again, atol=1e-3), (trained - again).abs().max()
    with pytest.raises(models.ModelSpecError, match="was trained on"):
        models.apply_adapter(reloaded.get_base_model(), adapter, base_spec="some/other-model")


def test_resume_continues_from_saved_step_with_same_learning_rate(peft_model, tok, blocks, tmp_path):
    from transformers import TrainerCallback, get_cosine_schedule_with_warmup

    ds = packing.BlockDataset(blocks)
    s = _settings(max_steps=5, warmup=2, save_steps=2, learning_rate=1e-3)
    ckpt = tmp_path / "ckpt"
    settings = {"s": s.as_dict()}
    assert tr.resume_point(ckpt, settings, resume=True) is None

    class Crash(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if state.global_step == 3 and "loss" in (logs or {}):
                raise KeyboardInterrupt("simulated interruption after step 3 (checkpoint at step 2)")

    cb1 = tr.MetricsCallback(tmp_path / "m.jsonl", "cpu", 2 * BLOCK)
    t1 = tr.build_trainer(peft_model, tok, ds, None, tr.training_arguments(ckpt, s, "cpu"), [cb1, Crash()])
    with pytest.raises(KeyboardInterrupt):
        t1.train()
    start = tr.resume_point(ckpt, settings, resume=True)
    assert start is not None and start.endswith("checkpoint-2")

    logged = [json.loads(x)["step"] for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3]                      # step 3 was logged, then the run died (checkpoint at step 2)
    cb2 = tr.MetricsCallback(tmp_path / "m.jsonl", "cpu", 2 * BLOCK, resume_from=start)
    t2 = tr.build_trainer(peft_model, tok, ds, None, tr.training_arguments(ckpt, s, "cpu"), [cb2])
    out = t2.train(resume_from_checkpoint=start)
    assert out.global_step == 5
    steps = [r["step"] for r in cb2.rows if "loss" in r]
    assert steps == [3, 4, 5]                       # continues after the saved step, does not restart
    logged = [json.loads(x)["step"] for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5]                # the file: each step once, step 3 from the resumed run
    # the reference schedule, computed independently: lr used at step k is the scheduler value after k-1 steps
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = get_cosine_schedule_with_warmup(opt, 2, 5)
    ref = []
    for _ in range(5):
        ref.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    got = {r["step"]: r["learning_rate"] for r in cb2.rows if "loss" in r}
    for k in (3, 4, 5):
        assert math.isclose(got[k], ref[k - 1], rel_tol=1e-6), (k, got[k], ref[k - 1])
    first = {r["step"]: r["learning_rate"] for r in cb1.rows if "loss" in r}
    assert math.isclose(first[3], got[3], rel_tol=1e-6)    # the interrupted run had used the same lr at step 3

    with pytest.raises(tr.ResumeError, match="max_steps|s differ"):
        tr.resume_point(ckpt, {"s": _settings(max_steps=9).as_dict()}, resume=True)
    assert tr.resume_point(ckpt, settings, resume=False) is None and not list(ckpt.glob("checkpoint-*"))
