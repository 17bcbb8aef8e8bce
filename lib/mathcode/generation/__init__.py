"""Text generation behind one small interface, shared by translation (phase 2) and evaluation (phase 4).

Backends (``make_generator(backend=...)`` from code, ``from_settings(backend, model, **settings)`` from a phase's
settings; registry in ``registry.py``, where each backend declares the settings it takes):
  ``hf``        local transformers model, batched with left padding (CPU or CUDA, optional 4-bit / adapter);
  ``llamacpp``  llama.cpp in-process on a GGUF (the CPU default for GGUF translators): parallel slots, greedy;
  ``openai``    any OpenAI-compatible HTTP server (vLLM serve, TGI, llama.cpp server, ``transformers serve``);
  ``vllm``      vLLM's offline engine (GPU, or its CPU build that ``make install`` adds), LoRA adapters, scores;
  ``auto``      llamacpp for GGUF specs on CPU when installed, else hf.
"""
from mathcode.generation.base import Completion, GenConfig, Generator, config_dict, truncate_at_stop
from mathcode.generation.registry import (BACKENDS, SETTINGS, UnknownBackendError, UnsupportedSettingError,
                                          backend_class, backend_settings, choose_backend, from_params, from_settings,
                                          make_generator, register_backend)

__all__ = ["GenConfig", "Completion", "Generator", "truncate_at_stop", "config_dict", "make_generator", "from_settings",
           "from_params", "backend_settings", "register_backend", "backend_class", "choose_backend", "BACKENDS",
           "SETTINGS", "UnknownBackendError", "UnsupportedSettingError"]


def __getattr__(name):          # the backend classes, imported on first use (keeps `import mathcode.generation` light)
    lazy = {"HFGenerator": "hf", "OpenAIGenerator": "openai", "VLLMGenerator": "vllm", "LlamaCppGenerator": "llamacpp"}
    if name in lazy:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{lazy[name]}"), name)
    raise AttributeError(name)
