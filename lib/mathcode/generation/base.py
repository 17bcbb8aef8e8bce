"""The interface every generation backend implements (no backend code here, so backends import only this).

Two calls: ``chat(conversations)`` applies the model's chat template (instruction-following use, as in
translation); ``complete(prompts)`` continues raw text (few-shot evaluation of base models), with the special
tokens the model's tokenizer adds by itself (e.g. BOS for Llama-3) and never a doubled BOS.

A backend that can read token log-probabilities of given text says so with ``can_score = True`` and implements
``nll(entries)``: the negative log-likelihood of texts, or of continuations given their contexts (the
evaluation's gold-solution probe). The others refuse with ``ScoringUnsupported``, which names the backends that
can.
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


# set by the registry (which imports this module, so this module cannot import it): the backends that can score
_scoring_backends = None


class ScoringUnsupported(NotImplementedError):
    """``nll`` on a backend that cannot score text (``can_score`` is False)."""


ScoreEntry = "str | tuple[str, str]"     # a text, or a (context, continuation) pair


def split_entry(entry) -> tuple[str, str]:
    """(context, continuation) of an ``nll`` entry: a plain text is a continuation with an empty context."""
    if isinstance(entry, str):
        return "", entry
    ctx, cont = entry
    return str(ctx), str(cont)


def truncate_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` at the earliest stop string; True when one was found."""
    cut = min((i for i in (text.find(s) for s in stop or []) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class Generator(ABC):
    """A backend. Subclasses implement ``_generate`` for raw prompts and ``render_chat``; a backend that can score
    text sets ``can_score`` and implements ``nll``."""
    backend = "abstract"
    can_score = False              # True: nll() returns log-likelihoods of given text

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

    def nll(self, entries: list, *, batch_size: int = 8, max_tokens: int = 768, dtype: str = "auto") -> list[dict]:
        """Per entry, in order: ``{"tokens", "nll_sum", "nll_mean"}`` (nats; mean per scored token). An entry is a
        text (every token after the first is scored) or a ``(context, continuation)`` pair (only the
        continuation's tokens are scored; the two are tokenized apart, the model's own prefix such as BOS first).
        Longer sequences keep their last ``max_tokens`` tokens (and the first one). ``dtype``: see the backend."""
        can = ", ".join(_scoring_backends()) if _scoring_backends else "see mathcode.generation.registry"
        raise ScoringUnsupported(f"backend {self.backend!r} cannot score text (it exposes no token "
                                 f"log-probabilities); backends that can: {can}")

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


def config_dict(cfg: GenConfig) -> dict:
    return asdict(cfg)
