"""Converting an embedded GGUF once into a Hugging Face folder (bf16/fp32 safetensors + tokenizer), cached and
process-safe, so that transformers and bitsandbytes load it like any Hub model."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from mathcode import paths
from mathcode.models.provision import _file_lock, gguf_path
from mathcode.models.quiet import quiet_weight_loading
from mathcode.models.specs import _known


def embedded_folder(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Convert the embedded GGUF once to a Hugging Face folder and return it (cached, process-safe)."""
    info = _known(name)
    root = paths.cache_dir(cache_dir) / "models"
    out = root / name
    if (out / "mathcode_model.json").exists():
        return out
    gguf = gguf_path(f"embedded:{name}", cache_dir)
    with _file_lock(root / f".{name}.lock"):
        if (out / "mathcode_model.json").exists():          # another process finished meanwhile
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        t0 = time.time()
        quiet_weight_loading()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        dequant = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = dequant.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        dtype = getattr(torch, info.get("hf_dtype", "bfloat16"))
        fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)
        fresh.load_state_dict({k: v.to(dtype) for k, v in dequant.state_dict().items()})
        fresh.generation_config = dequant.generation_config
        tmp = root / f".{name}.{os.getpid()}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            fresh.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            (tmp / "mathcode_model.json").write_text(json.dumps({
                "spec": f"embedded:{name}", "source_gguf": str(gguf), "upstream": info["upstream"],
                "license": info["license"], "converted_in_s": round(time.time() - t0, 1),
                "note": f"dequantized from the GGUF, stored as {info.get('hf_dtype', 'bfloat16')}; "
                        f"weights carry the GGUF quantization's rounding"}, indent=1))
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out
