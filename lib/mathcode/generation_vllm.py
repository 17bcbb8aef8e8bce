"""vLLM's offline engine (GPU), for large translation or evaluation runs without a server.

vLLM is imported only when this backend is built, so the kit installs and runs without it.
"""
from __future__ import annotations

from .generation import Completion, GenConfig, Generator, truncate_at_stop


class VLLMGenerator(Generator):
    backend = "vllm"

    def __init__(self, model: str, *, device: str = "auto", cache_dir=None, adapter=None,
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, dtype: str = "auto", **_ignored):
        super().__init__(model)
        try:
            import vllm
        except ImportError as e:
            raise ImportError("generation backend 'vllm' needs the vllm package on a CUDA machine: "
                              "pip install vllm (or pip install 'mathcode[vllm]'); on CPU use backend='hf', "
                              "or backend='openai' against a running `vllm serve`") from e
        from .models import resolve
        self._vllm = vllm
        path = resolve(model, cache_dir).path
        kw = dict(model=path, gpu_memory_utilization=gpu_memory_utilization,
                  tensor_parallel_size=tensor_parallel_size, dtype=dtype, enable_lora=bool(adapter))
        if max_model_len:
            kw["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**kw)
        self.tokenizer = self.llm.get_tokenizer()
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest
            from . import paths
            self._lora = LoRARequest("adapter", 1, str(paths.resolve_path(adapter)))

    def render_chat(self, messages):
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _generate(self, prompts, cfg: GenConfig):
        sp = self._vllm.SamplingParams(max_tokens=cfg.max_new_tokens, temperature=float(cfg.temperature),
                                       top_p=cfg.top_p if cfg.temperature else 1.0, stop=list(cfg.stop) or None,
                                       seed=cfg.seed)
        outs = self.llm.generate(prompts, sp, lora_request=self._lora)
        res = []
        for o in outs:
            c = o.outputs[0]
            text, hit = truncate_at_stop(c.text, cfg.stop)
            res.append(Completion(text=text, prompt_tokens=len(o.prompt_token_ids or []),
                                  completion_tokens=len(c.token_ids),
                                  finish_reason="length" if c.finish_reason == "length" and not hit else "stop"))
        return res
