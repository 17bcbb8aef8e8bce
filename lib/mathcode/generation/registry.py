"""Backend registry: a name in a recipe (``backend: llamacpp``) → the class that implements it.

Backends are registered as ``"module:Class"`` strings and imported only when built, so a missing optional
engine (vLLM, llama.cpp) costs nothing until it is asked for, and backend modules never import each other.

Each backend also declares the run settings it takes (``SETTINGS``: names of its constructor keywords, as
recipes and notebooks spell them). ``backend_settings`` is the ONE mapping from a phase's flat settings to a
backend's constructor keywords, used by translation (``translate.steps.open_translator``) and evaluation
(``evaluate.steps.backend_kwargs`` / ``harness.load_generator``); ``from_settings`` builds with it. Settings a
backend does not take are dropped (``base_url`` means nothing to ``hf``), except the ones that change the model
under test (``MUST_HONOUR``: an adapter), which a backend that cannot apply them refuses.
"""
from __future__ import annotations

import importlib
import importlib.util

from mathcode.generation import base as _base
from mathcode.generation.base import Generator

BACKENDS: dict[str, str] = {
    "hf": "mathcode.generation.hf:HFGenerator",
    "openai": "mathcode.generation.openai:OpenAIGenerator",
    "vllm": "mathcode.generation.vllm:VLLMGenerator",
    "llamacpp": "mathcode.generation.llamacpp:LlamaCppGenerator",
}


# the run settings each backend takes (constructor keywords); "auto" takes those of the backends it can pick
SETTINGS: dict[str, tuple[str, ...]] = {
    "hf": ("device", "quantize", "adapter", "threads", "cache_dir"),
    "openai": ("base_url", "api_key_env", "concurrency", "timeout", "retries", "serve", "serve_args",
               "continue_final_message"),
    "vllm": ("device", "adapter", "cache_dir", "gpu_memory_utilization", "max_model_len", "tensor_parallel_size",
             "dtype"),
    "llamacpp": ("device", "threads", "cache_dir", "n_parallel", "n_ctx", "n_batch", "n_gpu_layers",
                 "lookup_tokens", "step_tokens", "batch_invariant"),
}
AUTO_CHOICES = ("hf", "llamacpp", "openai")
# what ``auto`` gives the openai backend when it picks it: a vLLM server the kit starts (and stops) for the model, on
# a free port, eager (vLLM's CPU build otherwise compiles the model at start, minutes on 2 cores), 16 requests in
# flight, a context that holds translation's prompts
AUTO_SERVED = {"serve": "vllm", "base_url": "http://127.0.0.1:0/v1", "concurrency": 16,
               "serve_args": "--max-model-len 4096 --enforce-eager"}
# ``auto`` starts that server only for a phase with at least this many prompts (passages): below it, llama.cpp's
# immediate start wins. The break-even on an idle machine, from the side-by-side figures in bench/README.md (2026-12-07
# translation routes; the server's start against the per-passage gain); under load the server pays back sooner.
AUTO_SERVED_MIN_PROMPTS = 48
MUST_HONOUR = ("adapter",)          # settings that change the model: refused, never dropped, where not taken


class UnknownBackendError(ValueError):
    """A backend name that is not registered; the message lists the registered ones."""


class UnsupportedSettingError(ValueError):
    """A setting that changes the model under test (e.g. an adapter) given to a backend that cannot apply it."""


def register_backend(name: str, target: str | type, settings: tuple[str, ...] | None = None) -> None:
    """Add (or replace) a backend: ``target`` is a Generator subclass or a ``"module:Class"`` string; ``settings``
    the run settings it takes (default: its constructor's keyword arguments)."""
    if not isinstance(target, str) and not (isinstance(target, type) and issubclass(target, Generator)):
        raise TypeError(f"backend {name!r} must be a Generator subclass or 'module:Class', got {target!r}")
    BACKENDS[name] = target
    if settings is not None:
        SETTINGS[name] = tuple(settings)
    else:
        SETTINGS.pop(name, None)


def _unknown(name: str) -> UnknownBackendError:
    return UnknownBackendError(f"unknown generation backend {name!r} (backend={name!r}); registered: "
                               + ", ".join(repr(k) for k in [*BACKENDS, "auto"]))


def takes(name: str) -> tuple[str, ...]:
    """The run settings backend ``name`` takes (for ``auto``: those of every backend it can pick)."""
    if name == "auto":
        return tuple(dict.fromkeys(k for b in AUTO_CHOICES for k in takes(b)))
    if name not in BACKENDS:
        raise _unknown(name)
    if name in SETTINGS:
        return SETTINGS[name]
    import inspect                   # a backend registered without a declaration: its constructor's keywords
    params = inspect.signature(backend_class(name).__init__).parameters
    return tuple(k for k, p in params.items()
                 if k not in ("self", "model") and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def backends_taking(setting: str) -> list[str]:
    return [b for b in BACKENDS if setting in takes(b)]


def backend_settings(backend: str, model: str | None = None, **settings) -> tuple[str, dict]:
    """(backend name, constructor keywords) from a phase's flat settings: ``auto`` is resolved when ``model`` is
    given (else kept, with the settings of every backend it can pick); settings the backend does not take and
    unset ones (None) are dropped; an adapter (``MUST_HONOUR``) for a backend that cannot apply it is refused."""
    expected = settings.pop("expected_prompts", None)
    name = choose_backend(backend, model, settings.get("device") or "auto", expected_prompts=expected) \
        if model else backend
    if backend == "auto" and name == "openai":
        settings = {**settings, **AUTO_SERVED}
    accepted = takes(name)
    for k in MUST_HONOUR:
        if settings.get(k) not in (None, "") and k not in accepted:
            raise UnsupportedSettingError(
                f"backend {name!r} cannot apply {k}={settings[k]!r}; backends that can: "
                + ", ".join(repr(b) for b in backends_taking(k)))
    return name, {k: v for k, v in settings.items() if k in accepted and v is not None}


def from_settings(backend: str, model: str | None = None, **settings) -> Generator:
    """Build a backend from a phase's flat settings (``backend_settings`` picks what it takes)."""
    from mathcode.models import DEFAULT_MODEL
    model = model or DEFAULT_MODEL
    name, kw = backend_settings(backend, model, **settings)
    return make_generator(name, model, **kw)


from_params = from_settings          # the earlier name


def backend_class(name: str) -> type[Generator]:
    target = BACKENDS.get(name)
    if target is None:
        raise _unknown(name)
    if isinstance(target, type):
        return target
    mod, _, cls = target.partition(":")
    return getattr(importlib.import_module(mod), cls)


def scoring_backends() -> list[str]:
    """The registered backends whose class can score text (``Generator.can_score``)."""
    out = []
    for name in BACKENDS:
        try:
            if getattr(backend_class(name), "can_score", False):
                out.append(name)
        except ImportError:
            pass
    return out


_base._scoring_backends = scoring_backends          # for the message of Generator.nll on a backend that cannot


def llamacpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_backend(backend: str, model: str | None, device: str = "auto", *,
                   expected_prompts: int | None = None) -> str:
    """``auto``, for a GGUF translator on CPU: vLLM's server started by the kit (``openai`` with ``AUTO_SERVED``)
    where vLLM is installed and the phase has at least ``AUTO_SERVED_MIN_PROMPTS`` prompts (``expected_prompts``;
    unknown counts as many), else llama.cpp where it is installed, else transformers; on a GPU, or for other
    models, transformers. Any other name is returned unchanged.

    Why this order: the kit-managed vLLM server translates several times faster than llama.cpp once started, and
    its start (minutes on a small CPU) is repaid from ``AUTO_SERVED_MIN_PROMPTS`` passages on; transformers is the
    slowest of the three (measurements: bench/README.md, 2026-12-07 translation routes). vLLM costs ~2 GB more
    install and a transformers below 5.20; where it is not installed nothing changes: auto keeps
    llama.cpp. The server rather than the offline engine: faster in the same bench entry, its own process (its memory is returned
    when translation ends, and a notebook kernel needs no ``__main__`` guard for vLLM's spawned engine)."""
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
    if on_cpu and is_gguf_spec(model or ""):
        many = expected_prompts is None or expected_prompts >= AUTO_SERVED_MIN_PROMPTS
        if many and vllm_available():
            return "openai"
        if llamacpp_available():
            return "llamacpp"
    return "hf"


def make_generator(backend: str = "hf", model: str | None = None, **kw) -> Generator:
    """Build a backend by name. ``model`` is a model spec (hf/vllm/llamacpp) or the served model name (openai)."""
    from mathcode.models import DEFAULT_MODEL
    model = model or DEFAULT_MODEL
    name = choose_backend(backend, model, kw.get("device", "auto"), expected_prompts=kw.pop("expected_prompts", None))
    if backend == "auto" and name == "openai":
        kw = {**{k: v for k, v in kw.items() if k in takes("openai")}, **AUTO_SERVED}
    cls = backend_class(name)
    if name == "llamacpp":          # engine-specific keywords of other backends are harmless here
        for k in ("quantize", "model_obj", "tokenizer"):
            if kw.get(k) not in (None, "", "none"):
                raise ValueError(f"backend 'llamacpp' runs the GGUF as is; {k}= is not supported (use backend='hf')")
    return cls(model, **kw)
