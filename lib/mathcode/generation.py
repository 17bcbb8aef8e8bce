"""Text generation behind one small interface, shared by translation (phase 2) and evaluation (phase 4).

Backends (``make_generator(backend=...)``):
  ``hf``      local transformers model, batched with left padding (CPU or CUDA, optional 4-bit / adapter);
  ``openai``  any OpenAI-compatible HTTP server (vLLM serve, TGI, llama.cpp, ``transformers serve``);
  ``vllm``    vLLM's offline engine, when installed (GPU).

Two calls: ``chat(conversations)`` applies the model's chat template (instruction-following use, as in
translation); ``complete(prompts)`` continues raw text (few-shot evaluation of base models).
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, asdict


@dataclass
class GenConfig:
    max_new_tokens: int = 256
    temperature: float = 0.0          # 0 = greedy
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    batch_size: int = 8
    seed: int = 0


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "length"     # "stop" | "length" | "error"
    error: str | None = None


def truncate_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; True when one was found."""
    cut = min((i for i in (text.find(s) for s in stop or []) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class Generator(ABC):
    """A backend. Subclasses implement ``_generate`` for raw prompts and ``render_chat``."""
    backend = "abstract"

    def __init__(self, model: str):
        self.model_spec = model
        self.stats = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}

    def complete(self, prompts: list[str], cfg: GenConfig | None = None) -> list[Completion]:
        return self._timed(self._generate, list(prompts), cfg or GenConfig())

    def chat(self, conversations: list[list[dict]], cfg: GenConfig | None = None) -> list[Completion]:
        return self._timed(self._chat, list(conversations), cfg or GenConfig())

    def _chat(self, conversations, cfg):
        return self._generate([self.render_chat(c) for c in conversations], cfg)

    @abstractmethod
    def _generate(self, prompts: list[str], cfg: GenConfig) -> list[Completion]: ...

    @abstractmethod
    def render_chat(self, messages: list[dict]) -> str:
        """The exact text the model sees for a conversation (for printing prompts)."""

    def _timed(self, fn, items, cfg):
        t0 = time.perf_counter()
        out = fn(items, cfg)
        self.stats["seconds"] += time.perf_counter() - t0
        self.stats["requests"] += len(items)
        self.stats["prompt_tokens"] += sum(c.prompt_tokens for c in out)
        self.stats["completion_tokens"] += sum(c.completion_tokens for c in out)
        return out

    @property
    def tokens_per_second(self) -> float:
        s = self.stats["seconds"]
        return self.stats["completion_tokens"] / s if s else 0.0

    def info(self) -> dict:
        return {"backend": self.backend, "model": self.model_spec, **self.stats,
                "completion_tokens_per_s": round(self.tokens_per_second, 2)}

    def close(self):
        pass


class HFGenerator(Generator):
    """Local transformers model; batches sorted by length, left-padded, stop strings honoured."""
    backend = "hf"

    def __init__(self, model: str, *, device: str = "auto", quantize: str | None = None, adapter=None,
                 cache_dir=None, model_obj=None, tokenizer=None):
        super().__init__(model)
        from . import models
        self.tokenizer = tokenizer or models.load_tokenizer(model, cache_dir, padding_side="left")
        self.model = model_obj if model_obj is not None else models.load_model(
            model, quantize=quantize, device=device, cache_dir=cache_dir, adapter=adapter)
        self.device = next(self.model.parameters()).device

    def render_chat(self, messages):
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _generate(self, prompts, cfg):
        import torch
        tok = self.tokenizer
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        out: list[Completion | None] = [None] * len(prompts)
        eos = [t for t in {tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)}
               if t is not None]
        eos_ids = sorted({e for t in eos for e in (t if isinstance(t, list) else [t])})
        for b in range(0, len(order), max(1, cfg.batch_size)):
            idx = order[b:b + cfg.batch_size]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True,
                      add_special_tokens=False).to(self.device)
            kw = dict(max_new_tokens=cfg.max_new_tokens, pad_token_id=tok.pad_token_id, eos_token_id=eos_ids)
            if cfg.temperature and cfg.temperature > 0:
                torch.manual_seed(cfg.seed + b)
                kw.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p)
            else:
                kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if cfg.stop:
                kw.update(stop_strings=list(cfg.stop), tokenizer=tok)
            with torch.no_grad():
                gen = self.model.generate(**enc, **kw)
            new = gen[:, enc["input_ids"].shape[1]:]
            for row, i in enumerate(idx):
                ids = new[row].tolist()
                n = len(ids)
                while n and ids[n - 1] == tok.pad_token_id:        # drop right padding of finished rows
                    n -= 1
                hit_eos = n < len(ids) or (n and ids[n - 1] in eos_ids)
                text = tok.decode(ids[:n], skip_special_tokens=True)
                text, hit_stop = truncate_at_stop(text, cfg.stop)
                out[i] = Completion(text=text, prompt_tokens=int(enc["attention_mask"][row].sum()),
                                    completion_tokens=n,
                                    finish_reason="stop" if (hit_stop or hit_eos) else "length")
        return out


def make_generator(backend: str = "hf", model: str | None = None, **kw) -> Generator:
    """Build a backend by name. ``model`` is a model spec (hf/vllm) or the served model name (openai)."""
    from .models import DEFAULT_MODEL
    model = model or DEFAULT_MODEL
    if backend == "hf":
        return HFGenerator(model, **kw)
    if backend == "openai":
        from .generation_openai import OpenAIGenerator
        return OpenAIGenerator(model, **kw)
    if backend == "vllm":
        from .generation_vllm import VLLMGenerator
        return VLLMGenerator(model, **kw)
    raise ValueError(f"unknown generation backend {backend!r}; use 'hf', 'openai' or 'vllm'")


def config_dict(cfg: GenConfig) -> dict:
    return asdict(cfg)
