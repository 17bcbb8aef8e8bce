"""Merged export: dequantized base + adapter in one ordinary Hugging Face folder (bf16 safetensors).

Why dequantize the *4-bit* base instead of loading the original bf16 weights: the adapter was trained
against the NF4-rounded weights, so merging into the dequantized NF4 weights reproduces exactly the model
that was trained (the original weights differ from what the adapter saw by the quantization error). vLLM or
plain ``AutoModelForCausalLM.from_pretrained`` can then load the folder without peft or bitsandbytes.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from mathcode import paths
from mathcode.util import write_json


def merged_export(base_model: str, adapter_dir, out_dir, *, device: str = "cpu", cache_dir=None) -> Path:
    """Load the base in NF4, dequantize to bf16, apply and merge the adapter, save model + tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from mathcode.train import qlora

    adapter_dir = paths.resolve_path(adapter_dir)
    base = qlora.load_base(base_model, quantize="nf4", device=device, cache_dir=cache_dir)
    base = base.dequantize(dtype=torch.bfloat16)
    if hasattr(base.config, "quantization_config"):
        delattr(base.config, "quantization_config")
    model = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    model.config.use_cache = True
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(str(tmp))
    write_json(tmp / "mathcode_model.json", {"spec": str(out), "merged_from": {"base_model": base_model,
                                            "adapter": str(adapter_dir)}, "dtype": "bfloat16",
                                            "note": "NF4 base dequantized, LoRA merged"})
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out
