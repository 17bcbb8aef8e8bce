"""``vllm`` backend: vLLM's offline engine (GPU), for large translation or evaluation runs without a server.

vLLM is imported only when this backend is built, so the kit installs and runs without it. A PEFT adapter
(``adapter=``, e.g. phase 3's ``adapter/`` folder) is served through vLLM's LoRA support (``enable_lora`` +
``LoRARequest``), so the evaluated model is base + the trained adapter, as with the ``hf`` backend. Prompts are
passed as token ids built with the same BOS rule as ``hf`` (the tokenizer's own prefix, never doubled).
"""
from __future__ import annotations

import json

from mathcode.generation.base import Completion, GenConfig, Generator, truncate_at_stop
from mathcode.generation.hf import encode_prompt, special_prefix

_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_settings(adapter) -> dict:
    """vLLM engine keywords for serving ``adapter``: ``enable_lora`` and a ``max_lora_rank`` that fits its rank."""
    from mathcode import paths
    from mathcode.models import ModelSpecError
    a = paths.resolve_path(adapter)
    cfg = a / "adapter_config.json" if a else None
    if cfg is None or not cfg.is_file():
        raise ModelSpecError(f"adapter folder {a} has no adapter_config.json; point to phase 3's adapter/ folder")
    r = int(json.loads(cfg.read_text()).get("r") or 16)
    rank = next((x for x in _LORA_RANKS if x >= r), r)
    return {"enable_lora": True, "max_lora_rank": rank, "max_loras": 1}


class VLLMGenerator(Generator):
    backend = "vllm"

    def __init__(self, model: str, *, device: str = "auto", cache_dir=None, adapter=None,
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, dtype: str = "auto", **_ignored):
        super().__init__(model)
        lora_kw = lora_settings(adapter) if adapter else {}          # refuse a bad adapter before loading vLLM
        try:
            import vllm
        except ImportError as e:
            raise ImportError("generation backend 'vllm' needs the vllm package on a CUDA machine: "
                              "pip install vllm (or pip install 'mathcode[vllm]'); on CPU use backend='hf' or "
                              "'llamacpp', or backend='openai' against a running `vllm serve`") from e
        from mathcode.models import resolve
        self._vllm = vllm
        path = resolve(model, cache_dir).path
        kw = dict(model=path, gpu_memory_utilization=gpu_memory_utilization,
                  tensor_parallel_size=tensor_parallel_size, dtype=dtype, **lora_kw)
        if max_model_len:
            kw["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kw)
        self.tokenizer = self.llm.get_tokenizer()
        self._prefix = special_prefix(self.tokenizer)
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest
            from mathcode import paths
            self._lora = LoRARequest("adapter", 1, str(paths.resolve_path(adapter)))

    def info(self) -> dict:
        return {**super().info(), "adapter": self._lora.lora_path if self._lora else None}

    def render_chat(self, messages):
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _generate(self, prompts, cfg: GenConfig):
        sp = self._vllm.SamplingParams(max_tokens=cfg.max_new_tokens, temperature=float(cfg.temperature),
                                       top_p=cfg.top_p if cfg.temperature else 1.0, stop=list(cfg.stop) or None,
                                       seed=cfg.seed)
        inputs = [{"prompt_token_ids": encode_prompt(self.tokenizer, p, self._prefix)} for p in prompts]
        outs = self.llm.generate(inputs, sp, lora_request=self._lora)
        res = []
        for o in outs:
            c = o.outputs[0]
            text, hit = truncate_at_stop(c.text, cfg.stop)
            res.append(Completion(text=text, prompt_tokens=len(o.prompt_token_ids or []),
                                  completion_tokens=len(c.token_ids),
                                  finish_reason="length" if c.finish_reason == "length" and not hit else "stop"))
        return res
