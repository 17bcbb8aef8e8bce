"""The notebook's steps as functions: choose items, choose models (and the adapter), run them, collect tables.

Why here and not in the notebook: the runner, the tests and the notebook all need the same choices
(which benchmarks, what happens when ``../shared`` is absent, which adapter on which base, which backend
arguments), so they live in one place and are unit-tested; notebook 04 reads as a protocol.
"""
from __future__ import annotations

import gc
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import paths
from ..models import ModelSpecError
from . import benchmarks as B
from .custom import CustomBenchmark, load_custom_benchmark, resolve_user_path
from .fewshot import family
from .harness import EvalModel


def select_items(benchmarks: list[str], *, limit: int, limits: dict | None = None, sample: str = "first",
                 seed: int = 0, source: str = "local", data_dir: str = "", math_levels=None, math_subjects=None,
                 custom_benchmarks: list | None = None, custom_file: str = "", custom_fields: dict | None = None,
                 custom_name: str = "custom", custom_kind: str = "auto",
                 proxy_when_absent: bool = True) -> tuple[list[B.Item], list[str]]:
    """Items of every requested benchmark and of every custom benchmark, and notes to show the reader.

    ``custom_benchmarks``: a list of file paths or ``{file, name, fields, kind, rel_tol, family, limit}``
    (``custom_file``/``custom_fields``/... are the one-file shorthand). When the real test sets are absent and
    no ``data_dir`` is given, GSM8K is replaced by the offline gsm_symbolic proxy (held-out templates, labelled
    so) and the other local benchmarks are skipped with a note."""
    if sample not in ("first", "random"):
        raise B.BenchmarkError(f"parameter sample={sample!r}: use 'first' (first N, as lm-eval --limit) or 'random'")
    unknown = [b for b in benchmarks if b not in B.KNOWN]
    if unknown:
        raise B.BenchmarkError(f"parameter benchmarks: unknown {unknown}; known: {', '.join(B.KNOWN)} "
                               f"(add your own with custom_benchmarks)")
    customs = [CustomBenchmark.from_param(c) for c in (custom_benchmarks or [])]
    if custom_file:
        customs.append(CustomBenchmark(custom_file, custom_name, dict(custom_fields or {}), custom_kind))
    names = [c.name for c in customs]
    if len(set(names)) != len(names) or set(names) & set(B.KNOWN):
        raise B.BenchmarkError(f"custom benchmark names must be unique and differ from known ones; got {names}")
    limits = limits or {}
    bad = [k for k in limits if k not in B.KNOWN and k not in names]
    if bad:
        raise B.BenchmarkError(f"parameter limits: unknown benchmark(s) {bad}; keys must be among "
                               f"{list(benchmarks) + names}")
    notes, items = [], []
    absent = source == "local" and not data_dir and paths.benchmarks_dir() is None
    rs = seed if sample == "random" else None
    for name in benchmarks:
        n = int(limits.get(name, limit))
        if absent and name != "gsm_symbolic_proxy":
            if name == "gsm8k" and proxy_when_absent:
                notes.append(f"{paths.shared_dir()}/data/benchmarks is absent: GSM8K replaced by {n} offline "
                             f"reasoning-gym gsm_symbolic problems from templates never used for training, reported "
                             f"as '{B.PROXY_NAME}', NOT as GSM8K")
                items += B.load_benchmark("gsm_symbolic_proxy", limit=n, seed=seed)
            else:
                notes.append(f"{name}: skipped, its test set is not available offline (no ../shared, no data_dir)")
            continue
        items += B.load_benchmark(name, source=source, data_dir=data_dir or None, limit=n, seed=rs,
                                  levels=math_levels if name == "math" else None,
                                  subjects=math_subjects if name == "math" else None)
    for c in customs:
        c.limit = c.limit if c.limit is not None else int(limits.get(c.name, limit))
        got = load_custom_benchmark(c, seed=rs)
        notes.append(f"custom benchmark {c.name!r}: {len(got)} items, kind {got[0].kind}, exemplars "
                     f"{got[0].meta['family']}, rel_tol {c.rel_tol:g} ({got[0].meta['file']})")
        items += got
    if not items:
        raise B.BenchmarkError("no items selected: check benchmarks, limit/limits and custom_benchmarks")
    c = Counter(it.benchmark for it in items)
    notes.append("items: " + ", ".join(f"{k}={v}" for k, v in c.items()))
    return items, notes


def items_overview(items: list[B.Item]) -> pd.DataFrame:
    """Per benchmark: kind, exemplar family, item count and how many have a reference solution."""
    df = pd.DataFrame([{"benchmark": it.benchmark, "kind": it.kind, "prompt_family": family(it),
                        "has_solution": bool(it.solution)} for it in items])
    return (df.groupby(["benchmark", "kind", "prompt_family"], sort=False)
            .agg(items=("has_solution", "size"), with_solution=("has_solution", "sum")).reset_index())


def prompt_text(proto, items: list[B.Item], index: int, chat: bool = False) -> str:
    """The exact prompt of ``items[index]`` under ``proto`` (chat turns rendered as role: text), for reading."""
    if not 0 <= index < len(items):
        return "(no prompt shown: show_prompt is outside the selection)"
    it = items[index]
    head = f"--- protocol {proto.name}, {proto.n_shots} shots ({proto.exemplar_source}); item {it.benchmark}/{it.id} ---\n"
    if chat:
        return head + "\n".join(f"[{m['role']}] {m['content']}" for m in proto.build_chat(it, family(it), index))
    return head + proto.build(it, family(it), index)


def resolve_adapter(adapter: str, *, require=None, run_dir: str | None = None) -> str | None:
    """The adapter to evaluate: ``"none"`` -> None; a path -> that folder; ``""`` -> phase 3's ``adapter/`` of
    this run (``require`` is the phase's ``P.require``, which explains how to produce a missing one)."""
    if adapter == "none":
        return None
    if adapter:
        p = Path(adapter).expanduser()
        if not p.is_absolute():
            p = resolve_user_path(Path(adapter) / "adapter_config.json").parent
        if not (p / "adapter_config.json").exists():
            raise ModelSpecError(f"parameter adapter={adapter!r}: {p} has no adapter_config.json; point to phase 3's "
                                 f"adapter/ folder, leave it empty for this run's, or write 'none'")
        return str(p)
    if require is not None:
        return str(require("pretraining", "adapter/adapter_config.json").parent)
    f = paths.phase_dir(run_dir, "pretraining") / "adapter" / "adapter_config.json"
    if not f.exists():
        raise ModelSpecError(f"{f} does not exist: run phase 'pretraining' first or set adapter=")
    return str(f.parent)


def adapter_meta(adapter_dir) -> dict:
    f = Path(adapter_dir) / "mathcode_adapter.json" if adapter_dir else None
    return json.loads(f.read_text()) if f and f.exists() else {}


def eval_quantize(quantize: str, adapter_dir, backend: str = "hf") -> str | None:
    """Quantization of the base under evaluation. 'auto': as the adapter was trained (phase 3 records it in
    mathcode_adapter.json; QLoRA trains on NF4), else unquantized. Only the hf backend quantizes here."""
    if quantize not in ("auto", "nf4", "none", "", None):
        raise ModelSpecError(f"parameter quantize={quantize!r}: use 'auto' (as trained), 'nf4' or 'none'")
    if backend != "hf":
        return None
    if quantize == "auto":
        q = adapter_meta(adapter_dir).get("quantize")
        return "nf4" if q in ("nf4", "4bit") else None
    return "nf4" if quantize == "nf4" else None


def check_adapter_base(adapter_dir, model: str) -> None:
    """Refuse early (before any generation) an adapter trained on another base model."""
    base = adapter_meta(adapter_dir).get("base_model")
    if base and base != model:
        raise ModelSpecError(f"adapter {adapter_dir} was trained on {base!r}, but model={model!r}; "
                             f"set model={base!r} or pass the adapter of a run on {model!r}")


def choose_models(model: str, *, adapter_dir: str | None, models: list[str], include_base: bool = True,
                  quantize: str | None = None, merged_dir: str | None = None) -> list[EvalModel]:
    """Base model, base + adapter (on the same base quantization), the merged export when given, and any extra
    specs ('label=spec' or 'spec', optional '@adapter')."""
    if adapter_dir:
        check_adapter_base(adapter_dir, model)
    out = []
    if include_base:
        out.append(EvalModel("base", model, quantize=quantize))
    if adapter_dir:
        out.append(EvalModel("base+adapter", model, str(adapter_dir), quantize=quantize))
    if merged_dir:
        out.append(EvalModel("merged", str(merged_dir)))
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


def backend_kwargs(backend: str, *, base_url: str = "", api_key_env: str = "OPENAI_API_KEY", **extra) -> dict:
    """Constructor arguments of a generation backend from the notebook's parameters (one place, not per cell)."""
    if backend == "openai":
        return {"base_url": base_url, "api_key_env": api_key_env, **extra}
    if backend in ("hf", "vllm", "llamacpp"):
        return dict(extra)
    raise ModelSpecError(f"parameter backend={backend!r}: use 'hf', 'openai', 'vllm' or 'llamacpp'")


def per_benchmark(items: list[B.Item], n: int, need_solution: bool = False) -> list[B.Item]:
    """The first ``n`` items of each benchmark (optionally only those with a reference solution)."""
    seen: Counter = Counter()
    out = []
    for it in items:
        if need_solution and not it.solution:
            continue
        if seen[it.benchmark] < n:
            out.append(it)
            seen[it.benchmark] += 1
    return out


@dataclass
class RunResults:
    rows: list = field(default_factory=list)
    nll_rows: list = field(default_factory=list)
    pal_rows: list = field(default_factory=list)
    speed: list = field(default_factory=list)


def run_models(eval_models: list[EvalModel], items: list[B.Item], *, out_dir, backend: str = "hf",
               device: str = "auto", backend_args: dict | None = None, nll_probe: bool = True, nll_limit: int = 4,
               pal: bool = False, pal_limit: int = 4, pal_sandbox_factory=None, **eval_kw) -> RunResults:
    """Each model in turn: load, generate + score every item (resumable rows in ``out_dir/items.jsonl``),
    the gold-solution NLL probe (hf backend) and PAL mode, then free the model before the next one."""
    from . import harness, nll
    out_dir = Path(out_dir)
    res = RunResults()
    nll_items = per_benchmark(items, nll_limit, need_solution=True) if nll_probe else []
    pal_items = per_benchmark(items, pal_limit) if pal else []
    for m in eval_models:
        t0 = time.time()
        gen = harness.load_generator(m, backend=backend, device=device, **(backend_args or {}))
        try:
            res.rows += harness.evaluate(gen, items, model=m, out_path=out_dir / "items.jsonl", **eval_kw)
            res.speed.append({**gen.info(), "model": m.label, "model_spec": m.spec, "items": len(items),
                              "seconds": round(time.time() - t0, 1)})
            if nll_items and hasattr(gen, "model") and hasattr(gen, "tokenizer") and backend == "hf":
                res.nll_rows += [{"model": m.label, **x} for x in
                                 nll.solution_nll(gen.model, gen.tokenizer, nll_items,
                                                  batch_size=eval_kw.get("batch_size", 8))]
            if pal_items:
                from . import pal as pal_mode
                res.pal_rows += pal_mode.evaluate_pal(
                    gen, pal_items, model=m, out_path=out_dir / "items_pal.jsonl",
                    max_new_tokens=eval_kw.get("max_new_tokens", 256), batch_size=eval_kw.get("batch_size", 8),
                    ocw_rel_tol=eval_kw.get("ocw_rel_tol", 0.0),
                    sandbox=pal_sandbox_factory() if pal_sandbox_factory else None)
        finally:
            release(gen)
    return res


def summary(acc: pd.DataFrame, nll_df: pd.DataFrame | None = None) -> dict:
    """Flat metrics for phase.json: acc_<model>_<benchmark> and nll_<model>_<benchmark>."""
    out = {f"acc_{r.model}_{r.benchmark}": round(float(r.accuracy), 4) for r in acc.itertuples()}
    if nll_df is not None and len(nll_df):
        out.update({f"nll_{r.model}_{r.benchmark}": round(float(r.nll_per_token), 4) for r in nll_df.itertuples()})
    return out


def release(gen) -> None:
    """Free a generator's model before loading the next (2-core / small-GPU machines)."""
    try:
        gen.close()
    finally:
        if hasattr(gen, "model"):
            gen.model = None
        gc.collect()
