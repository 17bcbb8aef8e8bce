"""Loading tokenizers and causal LMs from a spec: device, dtype, real bitsandbytes NF4, a PEFT adapter on top."""
from __future__ import annotations

import json
import os
import warnings

from mathcode import paths
from mathcode.models.quiet import quiet_weight_loading
from mathcode.models.resolution import resolve
from mathcode.models.specs import ModelSpecError


def pick_device(device: str = "auto") -> str:
    """'cuda' when present (or asked for), else 'cpu'."""
    import torch
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but no CUDA GPU is visible; use device='auto' or 'cpu'")
    return device


def compute_dtype(device: str):
    """bf16 on CUDA (as the paper's hardware), fp32 on CPU."""
    import torch
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def load_tokenizer(spec: str, cache_dir=None, padding_side: str = "left"):
    from transformers import AutoTokenizer
    quiet_weight_loading()
    r = resolve(spec, cache_dir)
    tok = AutoTokenizer.from_pretrained(r.path)
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def bnb_config(device: str):
    """4-bit NF4 with double quantization. Compute dtype: bf16 on CUDA (as QLoRA); fp32 on CPU, because CPUs
    without native bf16 (AVX2 only) ran a bf16 576x1536 matmul 35x slower than fp32 (bench/README.md, phase 3)."""
    import torch
    from transformers import BitsAndBytesConfig
    compute = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


def load_model(spec: str, *, quantize: str | None = None, device: str = "auto", cache_dir=None,
               adapter: str | os.PathLike | None = None, dtype=None):
    """Load a causal LM from a spec. ``quantize='nf4'`` gives real bitsandbytes 4-bit layers.

    ``adapter``: a PEFT adapter folder to apply on top (checked against the base model it was trained on).
    """
    import torch
    from transformers import AutoModelForCausalLM

    quiet_weight_loading()
    r = resolve(spec, cache_dir)
    dev = pick_device(device)
    kw = {}
    if quantize in ("nf4", "4bit"):
        kw["quantization_config"] = bnb_config(dev)
        kw["dtype"] = torch.bfloat16 if dev.startswith("cuda") else torch.float32
        kw["device_map"] = {"": dev if dev != "cuda" else 0}
    elif quantize not in (None, "", "none"):
        raise ModelSpecError(f"quantize={quantize!r} is not supported; use 'nf4' or None")
    else:
        kw["dtype"] = dtype or compute_dtype(dev)
    try:
        model = AutoModelForCausalLM.from_pretrained(r.path, **kw)
    except OSError as e:
        raise ModelSpecError(f"could not load model {spec!r} from {r.path}: {e}") from e
    if not quantize:
        model.to(dev)
    if adapter:
        model = apply_adapter(model, adapter, base_spec=spec)
    model.eval()
    return model


def apply_adapter(model, adapter, base_spec: str | None = None):
    """Wrap ``model`` with a PEFT adapter, refusing one trained for a different architecture/base."""
    from peft import PeftModel
    a = paths.resolve_path(adapter)
    cfg_file = a / "adapter_config.json"
    if not cfg_file.exists():
        raise ModelSpecError(f"adapter folder {a} has no adapter_config.json; point to phase 3's adapter/ folder")
    meta_file = a / "mathcode_adapter.json"
    if meta_file.exists() and base_spec:
        meta = json.loads(meta_file.read_text())
        if meta.get("base_model") and meta["base_model"] != base_spec:
            raise ModelSpecError(f"adapter {a} was trained on {meta['base_model']!r}, not {base_spec!r}; "
                                 f"evaluate it with model={meta['base_model']!r}")
    try:
        with warnings.catch_warnings():
            # peft 0.21 reads transformers' old property name ``is_gradient_checkpointing`` while wrapping the model;
            # transformers 5 answers correctly and warns that the name will go in v6: a note for peft, not for the
            # reader of an evaluation notebook. Only that one FutureWarning is silenced, only here.
            warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            return PeftModel.from_pretrained(model, str(a))
    except (RuntimeError, ValueError, KeyError) as e:
        raise ModelSpecError(f"adapter {a} does not fit base model {base_spec!r}: {str(e).splitlines()[0]}") from e
