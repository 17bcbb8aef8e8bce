"""Resolving a model spec to a local folder (or a Hub id transformers will fetch), failing early with a remedy."""
from __future__ import annotations

import json
import os
from pathlib import Path

from mathcode import paths
from mathcode.models.convert import embedded_folder
from mathcode.models.specs import DEFAULT_MODEL, ModelSpecError, ResolvedModel


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
