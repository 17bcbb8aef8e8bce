"""Quieting what model loading prints and a reader does not need — an explicit call (``phase.start`` and the
loaders make it), never a side effect of resolving a spec."""
from __future__ import annotations

import warnings


_QUIET = {"on": False}


def quiet_weight_loading() -> bool:
    """Turn off transformers' per-load "Loading weights" bar, keep every other progress bar.

    transformers 5 draws that bar on stderr for every ``from_pretrained``; a phase notebook loads models several
    times, which left ~70 bar lines (pink stderr boxes) in the executed notebooks 03 and 04 and says nothing a reader
    needs (the 135M model loads in ~2 s). Also drops one harmless bitsandbytes import message
    (``_drop_kernel_hub_warning``). It goes through ``transformers.utils.logging.set_tqdm_hook``, so only bars
    labelled "Loading weights" are disabled. Called explicitly by ``phase.start`` and by the
    loaders (``load_model``, ``load_tokenizer``, the GGUF conversion); idempotent. False where this transformers has no hook (then nothing changes)."""
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
