"""Backend registry: a name in a recipe (``backend: llamacpp``) → the class that implements it.

Backends are registered as ``"module:Class"`` strings and imported only when built, so a missing optional
engine (vLLM, llama.cpp) costs nothing until it is asked for, and backend modules never import each other.
"""
from __future__ import annotations

import importlib
import importlib.util

from mathcode.generation.base import Generator

BACKENDS: dict[str, str] = {
    "hf": "mathcode.generation.hf:HFGenerator",
    "openai": "mathcode.generation.openai:OpenAIGenerator",
    "vllm": "mathcode.generation.vllm:VLLMGenerator",
    "llamacpp": "mathcode.generation.llamacpp:LlamaCppGenerator",
}


class UnknownBackendError(ValueError):
    """A backend name that is not registered; the message lists the registered ones."""


def register_backend(name: str, target: str | type) -> None:
    """Add (or replace) a backend: ``target`` is a Generator subclass or a ``"module:Class"`` string."""
    if not isinstance(target, str) and not (isinstance(target, type) and issubclass(target, Generator)):
        raise TypeError(f"backend {name!r} must be a Generator subclass or 'module:Class', got {target!r}")
    BACKENDS[name] = target


def backend_class(name: str) -> type[Generator]:
    target = BACKENDS.get(name)
    if target is None:
        raise UnknownBackendError(f"unknown generation backend {name!r}; registered: "
                                  + ", ".join(repr(k) for k in [*BACKENDS, "auto"]))
    if isinstance(target, type):
        return target
    mod, _, cls = target.partition(":")
    return getattr(importlib.import_module(mod), cls)


def llamacpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def choose_backend(backend: str, model: str | None, device: str = "auto") -> str:
    """``auto``: llama.cpp for GGUF specs on CPU when it is installed (measured faster, bench/README.md),
    transformers otherwise. Any other name is returned unchanged."""
    if backend != "auto":
        return backend
    from mathcode.models import is_gguf_spec
    on_cpu = device == "cpu"
    if device in (None, "", "auto"):
        try:
            import torch
            on_cpu = not torch.cuda.is_available()
        except ImportError:
            on_cpu = True
    return "llamacpp" if on_cpu and is_gguf_spec(model or "") and llamacpp_available() else "hf"


def make_generator(backend: str = "hf", model: str | None = None, **kw) -> Generator:
    """Build a backend by name. ``model`` is a model spec (hf/vllm/llamacpp) or the served model name (openai)."""
    from mathcode.models import DEFAULT_MODEL
    model = model or DEFAULT_MODEL
    name = choose_backend(backend, model, kw.get("device", "auto"))
    cls = backend_class(name)
    if name == "llamacpp":          # engine-specific keywords of other backends are harmless here
        for k in ("quantize", "model_obj", "tokenizer"):
            if kw.get(k) not in (None, "", "none"):
                raise ValueError(f"backend 'llamacpp' runs the GGUF as is; {k}= is not supported (use backend='hf')")
    return cls(model, **kw)


def from_params(backend: str, model: str | None = None, **params) -> Generator:
    """``make_generator`` for a notebook's flat parameters: keywords the chosen backend does not take are dropped
    (e.g. ``base_url`` for ``llamacpp``), so one call serves every backend without per-backend dispatch."""
    import inspect
    from mathcode.models import DEFAULT_MODEL
    name = choose_backend(backend, model or DEFAULT_MODEL, params.get("device", "auto"))
    accepted = inspect.signature(backend_class(name).__init__).parameters
    kw = {k: v for k, v in params.items() if k in accepted and k not in ("self", "model")}
    return make_generator(name, model, **kw)
