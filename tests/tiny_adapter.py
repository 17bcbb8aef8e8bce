"""Test fixture (moved out of the library): a real, tiny phase-3-shaped adapter for the evaluation tests.

Why: evaluation must be testable on its own. This trains LoRA (r=8, attention projections) on the
embedded model for a couple of optimizer steps on a few math sentences and writes the folder layout
phase 3 writes (PEFT adapter + tokenizer + training_args.json + mathcode_adapter.json) and a complete
``03_pretraining/phase.json``. The weights really change (loss is recorded); it is not a trained model.
"""
from __future__ import annotations

import time

from mathcode import paths
from mathcode.util import write_json

TEXTS = [
    "To add fractions, write them over a common denominator: 1/2 + 1/3 = 3/6 + 2/6 = 5/6.",
    "def area(r):\n    import math\n    return math.pi * r ** 2\nprint(area(2))  # 12.566370614359172",
    "The derivative of x^2 is 2x, so the tangent slope of y = x^2 at x = 3 is 6.",
    "If 3 apples cost 6 dollars, one apple costs 6 / 3 = 2 dollars, and 5 apples cost 10 dollars.",
]


def make_tiny_adapter(run_dir, model: str = "embedded:smollm2-135m-instruct", steps: int = 2,
                      seed: int = 0, quantize: str | None = None, lr: float = 1e-3):
    """Write ``run_dir/03_pretraining/adapter/`` and mark phase 3 complete; returns the adapter folder.
    ``quantize='nf4'`` trains on the 4-bit NF4 base, as phase 3's QLoRA does; a larger ``lr`` moves the weights far
    enough to change greedy text (what an adapter-vs-base comparison needs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from mathcode import models
    torch.manual_seed(seed)
    d = paths.phase_dir(run_dir, "pretraining")
    out = d / "adapter"
    out.mkdir(parents=True, exist_ok=True)
    tok = models.load_tokenizer(model, padding_side="right")
    base = models.load_model(model, device="cpu", dtype=torch.float32, quantize=quantize)
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type="CAUSAL_LM",
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    peft_model.train()
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=lr)
    enc = tok(TEXTS, return_tensors="pt", padding=True)
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    losses = []
    for _ in range(steps):
        loss = peft_model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(round(loss.item(), 4))
    peft_model.save_pretrained(out)
    tok.save_pretrained(out)
    write_json(out / "training_args.json", {"steps": steps, "lr": lr, "lora_r": 8, "seed": seed,
                                            "purpose": "tiny test adapter (tests/tiny_adapter.py)"})
    write_json(out / "mathcode_adapter.json", {"base_model": model, "losses": losses, "quantize": quantize or "none",
                                               "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    write_json(d / "phase.json", {"phase": "pretraining", "status": "complete",
                                  "metrics": {"losses": losses}, "note": "tiny test adapter"})
    return out
