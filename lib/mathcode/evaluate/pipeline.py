"""The notebook's steps as functions: choose items, choose models, run them, collect tables.

Why here and not in the notebook: the runner, the tests and the notebook all need the same choices
(which benchmarks, what happens when ``../shared`` is absent, which adapter), so they live in one place.
"""
from __future__ import annotations

import gc
from collections import Counter

from .. import paths
from ..models import ModelSpecError
from . import benchmarks as B
from .harness import EvalModel


def select_items(benchmarks: list[str], *, limit: int, limits: dict | None = None, sample: str = "first",
                 seed: int = 0, source: str = "local", data_dir: str = "", math_levels=None, math_subjects=None,
                 custom_file: str = "", custom_fields: dict | None = None, custom_name: str = "custom",
                 custom_kind: str = "auto", proxy_when_absent: bool = True) -> tuple[list[B.Item], list[str]]:
    """Items of every requested benchmark (+ the custom file), and notes to show the reader.

    When the real test sets are absent and no ``data_dir`` is given, GSM8K is replaced by the offline
    gsm_symbolic proxy (labelled so) and the other local benchmarks are skipped with a note."""
    if sample not in ("first", "random"):
        raise B.BenchmarkError(f"parameter sample={sample!r}: use 'first' (first N, as lm-eval --limit) or 'random'")
    unknown = [b for b in benchmarks if b not in B.KNOWN]
    if unknown:
        raise B.BenchmarkError(f"parameter benchmarks: unknown {unknown}; known: {', '.join(B.KNOWN)} "
                               f"(add your own with custom_file + custom_fields)")
    limits = limits or {}
    bad = [k for k in limits if k not in B.KNOWN and k != custom_name]
    if bad:
        raise B.BenchmarkError(f"parameter limits: unknown benchmark(s) {bad}; keys must be among {benchmarks}")
    notes, items = [], []
    absent = source == "local" and not data_dir and paths.benchmarks_dir() is None
    rs = seed if sample == "random" else None
    for name in benchmarks:
        n = int(limits.get(name, limit))
        if absent and name != "gsm_symbolic_proxy":
            if name == "gsm8k" and proxy_when_absent:
                notes.append(f"{paths.shared_dir()}/data/benchmarks is absent: GSM8K replaced by {n} offline "
                             f"reasoning-gym gsm_symbolic problems, reported as '{B.PROXY_NAME}', NOT as GSM8K")
                items += B.load_benchmark("gsm_symbolic_proxy", limit=n, seed=seed)
            else:
                notes.append(f"{name}: skipped, its test set is not available offline (no ../shared, no data_dir)")
            continue
        got = B.load_benchmark(name, source=source, data_dir=data_dir or None, limit=n, seed=rs,
                               levels=math_levels if name == "math" else None,
                               subjects=math_subjects if name == "math" else None)
        items += got
    if custom_file:
        if not custom_fields:
            raise B.BenchmarkError("parameter custom_file is set but custom_fields is empty; map at least "
                                   "{'question': <key>, 'answer': <key>}")
        items += B.load_custom(custom_file, custom_fields, name=custom_name, kind=custom_kind,
                               limit=int(limits.get(custom_name, limit)), seed=rs)
    if not items:
        raise B.BenchmarkError("no items selected: check benchmarks, limit/limits and custom_file")
    c = Counter(it.benchmark for it in items)
    notes.append("items: " + ", ".join(f"{k}={v}" for k, v in c.items()))
    return items, notes


def choose_models(model: str, *, adapter_dir: str | None, models: list[str], include_base: bool = True
                  ) -> list[EvalModel]:
    """Base model, base + adapter, and any extra specs ('label=spec' or 'spec', optional '@adapter')."""
    out = []
    if include_base:
        out.append(EvalModel("base", model))
    if adapter_dir:
        out.append(EvalModel("base+adapter", model, str(adapter_dir)))
    for s in models:
        if not isinstance(s, str) or not s.strip():
            raise ModelSpecError(f"parameter models: entries must be non-empty strings, got {s!r}")
        label, _, spec = s.partition("=") if "=" in s else (s, "", s)
        spec, _, ad = spec.partition("@")
        out.append(EvalModel(label.strip(), spec.strip(), ad.strip() or None))
    labels = [m.label for m in out]
    if len(set(labels)) != len(labels):
        raise ModelSpecError(f"model labels must be unique, got {labels}; name them with 'label=spec'")
    if not out:
        raise ModelSpecError("nothing to evaluate: include_base is False, no adapter and models = []")
    return out


def check_adapter_base(adapter_dir, model: str) -> None:
    """Refuse early (before any generation) an adapter trained on another base model."""
    import json
    from pathlib import Path
    meta = Path(adapter_dir) / "mathcode_adapter.json"
    if meta.exists():
        base = json.loads(meta.read_text()).get("base_model")
        if base and base != model:
            raise ModelSpecError(f"adapter {adapter_dir} was trained on {base!r}, but model={model!r}; "
                                 f"set model={base!r} or pass the adapter of a run on {model!r}")


def release(gen) -> None:
    """Free a generator's model before loading the next (2-core / small-GPU machines)."""
    try:
        gen.close()
    finally:
        gen.model = None
        gc.collect()
