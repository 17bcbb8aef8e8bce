"""Value rules for notebook parameters: enums, ranges, list members — the part of the schema that types alone
cannot say (``quantize: nf8``, ``heldout_fraction: 2``, ``max_steps: -1`` all have the right type).

Why a table and not checks spread over the library: the runner must refuse a bad recipe *before* any work starts,
and the notebook's first cell must refuse a bad ``papermill -p`` the same way; both call ``check``. A rule applies
only when the phase notebook has that parameter, so a renamed parameter never makes a stale rule refuse a recipe.
Every message names the key and what to write instead.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass


class RuleError(ValueError):
    """A parameter value outside its allowed set or range."""


@dataclass(frozen=True)
class Choice:
    values: tuple
    why: str = ""

    def check(self, key: str, v):
        vals = self.values() if callable(self.values) else self.values
        if v not in vals:
            near = [x for x in vals if isinstance(x, str) and isinstance(v, str) and x[:2] == v[:2]]
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise RuleError(f"{key}: {v!r} is not allowed{hint}; write one of {', '.join(map(repr, vals))}"
                            + (f" ({self.why})" if self.why else ""))


@dataclass(frozen=True)
class Num:
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    why: str = ""

    def check(self, key: str, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return                                            # types are checked elsewhere
        if isinstance(v, float) and not math.isfinite(v):
            raise RuleError(f"{key}: {v!r} is not a finite number; write a number")
        bad = ((self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)))
               or (self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi))))
        if bad:
            lo = "" if self.lo is None else ("(" if self.lo_open else "[") + f"{self.lo:g}"
            hi = "" if self.hi is None else f"{self.hi:g}" + (")" if self.hi_open else "]")
            rng = f"in {lo or '(-inf'}, {hi or 'inf)'}"
            raise RuleError(f"{key}: {v!r} is out of range; write a value {rng}" + (f" — {self.why}" if self.why else ""))


@dataclass(frozen=True)
class Members:
    values: tuple
    nonempty: bool = False
    why: str = ""

    def check(self, key: str, v):
        if not isinstance(v, (list, tuple)):
            return
        vals = self.values() if callable(self.values) else self.values
        if self.nonempty and not v:
            raise RuleError(f"{key}: the list is empty; write at least one of {', '.join(map(repr, vals))}"
                            + (f" ({self.why})" if self.why else ""))
        bad = [x for x in v if x not in vals]
        if bad:
            raise RuleError(f"{key}: {', '.join(map(repr, bad))} not allowed; write a list of {', '.join(map(repr, vals))}")


@dataclass(frozen=True)
class NonEmpty:
    why: str = ""

    def check(self, key: str, v):
        if isinstance(v, (list, tuple, dict, str)) and not v:
            raise RuleError(f"{key}: must not be empty — {self.why}")


@dataclass(frozen=True)
class Weights:
    """{name: number >= 0} (weights or token budgets)."""
    integer: bool = False

    def check(self, key: str, v):
        if not isinstance(v, dict):
            return
        for k, x in v.items():
            ok = isinstance(x, (int, float)) and not isinstance(x, bool) and x >= 0 and math.isfinite(x)
            if self.integer and ok:
                ok = float(x).is_integer()
            if not ok:
                what = "a whole number of tokens >= 0" if self.integer else "a number >= 0 (0 drops the source)"
                raise RuleError(f"{key}.{k}: {x!r} is not allowed; write {what}")


def _backends() -> tuple:
    """Generation backends known to the installed kit (its registry when it has one)."""
    try:
        from . import generation
        for attr in ("BACKENDS", "REGISTRY", "backends"):
            reg = getattr(generation, attr, None)
            if reg:
                names = reg() if callable(reg) else reg
                return tuple(sorted(set(names)))
    except Exception:                                         # an optional backend's import must not break validation
        pass
    return ("hf", "llamacpp", "openai", "vllm")


def _translation_backends() -> tuple:
    """Translation also takes ``auto``: llama.cpp for a GGUF translator on CPU when installed, else transformers."""
    return ("auto",) + _backends()


def _schedulers() -> tuple:
    try:
        from transformers import SchedulerType
        return tuple(s.value for s in SchedulerType)
    except Exception:
        return ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup")


def _optimizers() -> tuple:
    try:
        from transformers.training_args import OptimizerNames
        return ("auto",) + tuple(o.value for o in OptimizerNames)
    except Exception:
        return ("auto", "adamw_torch", "paged_adamw_8bit", "adamw_8bit", "sgd")


def _benchmarks() -> tuple:
    try:
        from .evaluate.benchmarks import KNOWN
        return tuple(KNOWN)
    except Exception:
        return ("gsm8k", "math", "sat_math", "ocw", "mmlu_math", "gsm_symbolic_proxy")


def _protocols() -> tuple:
    from .evaluate.protocols import PROTOCOLS
    return tuple(PROTOCOLS)


def _passage_units() -> tuple:
    from .translate.passages import UNITS
    return tuple(UNITS)


FRACTION = Num(0, 1)
POS = Num(1)
NONNEG = Num(0)

RULES: dict[str, dict] = {
    "*": {
        "device": None,                                       # checked at the recipe's top level (cuda:N allowed)
        "seed": NONNEG,
    },
    "data": {
        "sources": NonEmpty("phase 1 needs at least one source, e.g. ['embedded:champ_solutions'] or "
                            "['jsonl:data/my.jsonl#text']"),
        "max_docs_per_source": Num(1, why="at least one document per source"),
        "max_negatives": NONNEG,
        "classifier_threshold": FRACTION, "confident_threshold": FRACTION,
        "classifier_holdout": Num(0, 1, lo_open=True, hi_open=True, why="a share of the seed documents"),
        "classifier_epochs": POS,
        "quality_filters": Members(("length", "symbols", "repetition")),
        "min_chars": NONNEG, "max_chars": POS,
        "min_symbol_ratio": FRACTION, "max_symbol_ratio": FRACTION, "max_dup_lines": FRACTION,
        "max_top_trigram": FRACTION,
        "dedup_threshold": Num(0, 1, lo_open=True, why="a Jaccard similarity"),
        "dedup_num_perm": Num(2), "dedup_shingle": POS, "decontam_ngram": POS,
        "token_budget": Num(0, why="0 keeps everything"),
        "source_weights": Weights(), "source_budgets": Weights(integer=True),
    },
    "translation": {
        "max_passages": Num(0, why="0 translates every passage, a positive number caps them"),
        "max_passages_per_doc": POS, "max_passage_chars": Num(20), "context_chars": NONNEG,
        "backend": Choice(_translation_backends),
        "concurrency": POS, "request_timeout": Num(0, lo_open=True),
        "quantize": Choice(("", "none", "nf4")),
        "passage_unit": Choice(_passage_units),
        "max_new_tokens": POS, "temperature": Num(0, 2), "batch_size": POS, "cpu_threads": NONNEG,
        "max_blocks": POS, "output_format": Choice(("paper", "interleaved")), "tolerance": NONNEG,
        "match_rule": Choice(("precision", "paper"), "precision: at the result's written precision; paper: |diff| <= tolerance"),
        "isolation": Choice(("auto", "bwrap", "process")), "sandbox_workers": POS,
        "snippet_timeout": Num(0, lo_open=True), "snippet_memory_mb": Num(32),
        "docs_per_chunk": POS, "shard_index": NONNEG, "num_shards": POS,
        "passage_selection": Choice(("order", "translatable"),
                                    "order: every passage in document order; translatable: passages likely to verify, best first"),
        "min_passage_score": Num(0, 1, why="the lowest translatable score kept (0-1; 0.8 = four of five features)"),
    },
    "pretraining": {
        "mixture": Choice(("basic", "basic+translated", "translated"),
                          "the paper's ablation: basic vs. basic+translated; corpus_files overrides it"),
        "max_documents": Num(0, why="0 uses every document"),
        "block_size": Num(8),
        "heldout_fraction": Num(0, 1, lo_open=True, hi_open=True,
                                why="held-out documents measure perplexity before/after; e.g. 0.1"),
        "max_heldout_blocks": Num(0, why="0 evaluates every held-out block"),
        "quantize": Choice(("nf4", "none"), "nf4 is QLoRA (4-bit base), none is plain LoRA on a 16/32-bit base"),
        "lora_r": POS, "lora_alpha": Num(0, lo_open=True), "lora_dropout": Num(0, 1, hi_open=True),
        "max_steps": Num(1, why="a number of optimizer steps; -1 (epochs) is not supported: it would silently "
                                "train 3 epochs"),
        "per_device_batch_size": POS, "grad_accum": POS,
        "learning_rate": Num(0, 1, lo_open=True, why="e.g. 1.0e-4 (QLoRA) or 2.0e-4"),
        "warmup": Num(0, why="< 1: a fraction of max_steps, >= 1: a number of steps"),
        "scheduler": Choice(_schedulers), "optimizer": Choice(_optimizers),
        "save_steps": POS, "eval_steps": Num(0, why="0 turns periodic held-out evaluation off"),
        "compute_dtype": Choice(("auto", "float32", "bfloat16")),
        "report_to": Choice(("none", "tensorboard", "wandb")),
    },
    "evaluation": {
        "benchmarks": Members(_benchmarks, nonempty=True, why="phase 4 evaluates at least one benchmark"),
        "limit": Num(-1, why="-1 takes every item"),
        "sample": Choice(("first", "random")), "source": Choice(("local", "hub")),
        "custom_kind": Choice(("auto", "number", "math", "choice")),
        "n_shots": Num(0, 8), "max_new_tokens": POS, "batch_size": POS, "backend": Choice(_backends),
        "ocw_rel_tol": NONNEG, "nll_limit": NONNEG, "pal_limit": NONNEG,
        "protocol": Choice(_protocols), "quantize": Choice(("auto", "nf4", "none", ""),
                                                           "auto evaluates the base as the adapter was trained"),
        "math_levels": Members((1, 2, 3, 4, 5), why="MATH difficulty levels"),
    },
}

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def coerce_number_text(default, value):
    """YAML 1.1 reads ``1e-4`` (no dot) as text; for a float parameter such text is the number the user meant."""
    if isinstance(default, float) and isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        return float(value)
    return value


def check(phase: str, key: str, value, label: str | None = None) -> None:
    """Raise RuleError (message: the key, the bad value, what to write) when ``value`` breaks a rule."""
    rule = RULES.get(phase, {}).get(key) or RULES["*"].get(key)
    if rule is not None:
        rule.check(label or key, value)


def check_together(phase: str, values: dict, prefix: str = "") -> None:
    """Rules between keys of one phase."""
    if phase == "translation" and "shard_index" in values and "num_shards" in values:
        if isinstance(values["shard_index"], int) and isinstance(values["num_shards"], int) \
                and values["shard_index"] >= values["num_shards"]:
            raise RuleError(f"{prefix}shard_index: {values['shard_index']} must be below num_shards "
                            f"({values['num_shards']}); write 0 … {values['num_shards'] - 1}")
    if phase == "evaluation" and values.get("limit") == 0:
        raise RuleError(f"{prefix}limit: 0 would evaluate no item; write -1 for every item or a positive number")
    if phase == "data":
        lo, hi = values.get("min_chars"), values.get("max_chars")
        if isinstance(lo, int) and isinstance(hi, int) and lo >= hi:
            raise RuleError(f"{prefix}max_chars: {hi} must be above min_chars ({lo}), or every document is dropped")
