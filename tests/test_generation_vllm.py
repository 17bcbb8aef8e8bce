"""The vLLM backend serves a PEFT adapter through LoRARequest (GPU only; skipped on CPU machines)."""
from __future__ import annotations

import json

import pytest

from mathcode.generation import GenConfig, make_generator
from mathcode.generation.vllm import lora_settings
from mathcode.models import ModelSpecError


def test_lora_settings_fit_the_adapter_rank(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 24, "peft_type": "LORA"}))
    assert lora_settings(tmp_path) == {"enable_lora": True, "max_lora_rank": 32, "max_loras": 1}
    with pytest.raises(ModelSpecError, match="adapter_config.json"):
        lora_settings(tmp_path / "missing")


@pytest.mark.gpu
def test_vllm_applies_the_adapter_like_transformers(tmp_path, embedded_model_dir):
    """A LoRA with non-zero weights on the embedded model: vLLM with the adapter writes what transformers with the
    same adapter writes (greedy), and differs from the base model."""
    pytest.importorskip("vllm")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    prompts = ["The capital of France is", "def add(a, b):"]
    cfg = GenConfig(max_new_tokens=8)
    hf = make_generator("hf", str(embedded_model_dir), device="cuda", adapter=adapter)
    want = [c.text for c in hf.complete(prompts, cfg)]
    hf.close()
    del hf
    torch.cuda.empty_cache()
    v = make_generator("vllm", str(embedded_model_dir), adapter=adapter, gpu_memory_utilization=0.3, dtype="float32")
    got = [c.text for c in v.complete(prompts, cfg)]
    assert got == want
    v._lora = None                                                 # same engine, no adapter
    assert [c.text for c in v.complete(prompts, cfg)] != got
