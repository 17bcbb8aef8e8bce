"""The notebook's steps as functions: choose items, choose models (and the adapter), run them, collect tables.

The steps notebook 04 calls take the ``Phase`` (``P``) and the checked ``EvaluationSettings`` (``S``) and read every
setting from ``S``: ``select_items(P, S)``, ``choose_models(P, S)``, ``run_models(P, S, eval_models, items,
proto)``. Each delegates to a function with the same work under explicit arguments (``benchmark_items``,
``models_to_evaluate``, ``evaluate_models``), which tests and other callers use without a phase.

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

from mathcode import paths
from mathcode.models import ModelSpecError
from mathcode.evaluate import benchmarks as B
from mathcode.evaluate.custom import CustomBenchmark, load_custom_benchmark, resolve_user_path
from mathcode.evaluate.fewshot import family
from mathcode.evaluate.harness import EvalModel


def select_items(P, S) -> tuple[list[B.Item], list[str]]:
    """The items of ``benchmarks`` and the custom benchmarks (``limit``/``limits``, ``sample``, MATH filters), and
    the notes for the reader; the notes are logged and the selection written to ``selected_items.jsonl``."""
    from mathcode.util import write_jsonl
    items, notes = benchmark_items(S.benchmarks, limit=S.limit, limits=S.limits, sample=S.sample, seed=S.seed,
                                   source=S.source, data_dir=S.data_dir, math_levels=S.math_levels,
                                   math_subjects=S.math_subjects, custom_benchmarks=S.custom_benchmarks,
                                   custom_file=S.custom_file, custom_fields=S.custom_fields,
                                   custom_name=S.custom_name, custom_kind=S.custom_kind)
    P.log(selection_notes=notes)
    write_jsonl(P.path("selected_items.jsonl"), [it.to_dict() for it in items])
    return items, notes


def benchmark_items(benchmarks: list[str], *, limit: int, limits: dict | None = None, sample: str = "first",
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
    # rows are resumed and paired by (benchmark, item id): two items under one id would be mixed up
    B.require_unique_ids([(it.benchmark, str(it.id)) for it in items], "evaluation items")
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


def choose_models(P, S) -> list[EvalModel]:
    """The models to evaluate: ``adapter`` resolved (phase 3's of this run when empty, read through ``P.require``),
    the base quantized as the adapter was trained (``quantize``), ``merged_dir`` and the extra ``models``."""
    adapter_dir = resolve_adapter(S.adapter, require=P.require)
    return models_to_evaluate(S.model, adapter_dir=adapter_dir, models=S.models, include_base=S.include_base,
                              quantize=eval_quantize(S.quantize, adapter_dir, S.backend), merged_dir=S.merged_dir)


def models_to_evaluate(model: str, *, adapter_dir: str | None, models: list[str], include_base: bool = True,
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
    """Constructor arguments of a generation backend from the notebook's parameters: the settings that backend
    declares (``generation.registry.SETTINGS``, the one mapping shared with translation), the rest dropped."""
    from mathcode.generation import registry
    try:
        return registry.backend_settings(backend, base_url=base_url, api_key_env=api_key_env, **extra)[1]
    except registry.UnknownBackendError:
        raise ModelSpecError(f"parameter backend={backend!r}: use one of "
                             + ", ".join(repr(b) for b in [*registry.BACKENDS, "auto"])) from None


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


def _more_items(first: B.Item, want: int) -> list[B.Item]:
    """Further items of ``first``'s benchmark from the same source, for the NLL probe: the local file it came from
    (file order) or, for the offline proxy, a larger draw of the same seed. [] when the source is unknown (Hub,
    custom files: the probe then uses the selection only)."""
    f = first.meta.get("file")
    if first.meta.get("proxy"):
        return B.load_benchmark("gsm_symbolic_proxy", limit=want, seed=int(first.meta.get("seed", 0)))
    name = next((k for k in B.KNOWN if k == first.benchmark), None)
    if f and name and Path(f).is_file():
        return B._load_local(name, Path(f))
    return []


def _filter_like(pool: list[B.Item], chosen: list[B.Item]) -> list[B.Item]:
    """Keep pool items whose MATH level/subject occur among the chosen ones (a level/subject filter of the
    selection stays in force for the top-up)."""
    out = pool
    for key in ("level", "subject"):
        seen = {it.meta.get(key) for it in chosen}
        if None not in seen and seen:
            out = [it for it in out if it.meta.get(key) in seen]
    return out


def training_texts(run_dir) -> list[str]:
    """The texts this run's models were trained on or derive from: phase 1's corpus and phase 2's translated
    rows (the token-matched arm repeats corpus rows; phase 3's own corpus_files are recorded in its manifest)."""
    from mathcode.util import read_jsonl
    run_dir = Path(run_dir)
    files = [paths.phase_dir(run_dir, "data") / "corpus.jsonl",
             paths.phase_dir(run_dir, "translation") / "translated.jsonl"]
    m = paths.phase_dir(run_dir, "pretraining") / "manifest.json"
    if m.is_file():
        try:
            extra = (json.loads(m.read_text()).get("parameters") or {}).get("corpus_files") or []
        except (json.JSONDecodeError, AttributeError):
            extra = []
        files += [Path(x) if Path(x).is_absolute() else paths.resolve_path(x) for x in extra]
    out = []
    for f in dict.fromkeys(files):
        if f and Path(f).is_file():
            out += [r.get("text", "") for r in read_jsonl(f)]
    return out


def contaminated(items: list[B.Item], texts: list[str], n: int = 13) -> dict[tuple[str, str], str]:
    """Items whose question or reference solution shares an ``n``-word sequence with any of ``texts`` (the
    training corpus), or equals one: {(benchmark, id): the first shared n-gram}. The same normalisation as phase
    1's decontamination (``data.textnorm.words``); n-grams of numbers only are not counted."""
    from mathcode.textnorm import words
    grams: dict[str, list] = {}
    exact: dict[str, list] = {}
    for it in items:
        key = (it.benchmark, str(it.id))
        for t in (it.question, it.solution or ""):
            w = words(t)
            if not w:
                continue
            exact.setdefault(" ".join(w), []).append(key)
            for i in range(len(w) - n + 1):
                g = w[i:i + n]
                if not all(x.isdigit() for x in g):
                    grams.setdefault(" ".join(g), []).append(key)
    hit: dict = {}
    for t in texts:
        w = words(t)
        for k in exact.get(" ".join(w), []):
            hit.setdefault(k, " ".join(w)[:120])
        for i in range(len(w) - n + 1):
            g = " ".join(w[i:i + n])
            for k in grams.get(g, ()):
                hit.setdefault(k, g)
    return hit


def nll_selection(items: list[B.Item], n: int, *, run_dir=None, texts: list[str] | None = None
                  ) -> tuple[list[B.Item], dict]:
    """The NLL probe's items: per benchmark, ``n`` items with a reference solution — the selected (accuracy)
    items first, then further items of the same benchmark file when ``n`` exceeds them (scoring a solution is
    one forward pass, generating an answer is hundreds: the probe can afford far more items), with any item
    that shares a 13-gram with the training corpus (``training_texts(run_dir)`` or ``texts``) left out.

    Deterministic: the same selection, files and corpus give the same items in the same order (every arm of an
    ablation is scored on identical items). Returns (items, record per benchmark)."""
    texts = training_texts(run_dir) if texts is None and run_dir is not None else (texts or [])
    by_bench: dict[str, list[B.Item]] = {}
    for it in items:
        by_bench.setdefault(it.benchmark, []).append(it)
    out, record = [], {}
    for bench, chosen in by_bench.items():
        cands = [it for it in chosen if it.solution]
        extra = 0
        if len(cands) < n:
            seen = {str(it.id) for it in cands}
            pool = _filter_like(_more_items(chosen[0], 2 * n), chosen)
            more = [it for it in pool if it.solution and str(it.id) not in seen][:2 * n - len(cands)]
            extra = len(more)
            cands += more
        B.require_unique_ids([(it.benchmark, str(it.id)) for it in cands], f"NLL probe items of {bench}")
        dirty = contaminated(cands[:2 * n], texts) if texts else {}
        clean = [it for it in cands if (it.benchmark, str(it.id)) not in dirty][:n]
        out += clean
        record[bench] = {"items": len(clean), "from_selection": sum(1 for it in clean if it in chosen),
                         "topped_up": sum(1 for it in clean if it not in chosen), "candidates": len(cands),
                         "contaminated_left_out": sorted(k[1] for k in dirty)[:50],
                         "n_contaminated": len(dirty), "training_texts_checked": len(texts)}
    return out, record


@dataclass
class RunResults:
    rows: list = field(default_factory=list)
    nll_rows: list = field(default_factory=list)
    pal_rows: list = field(default_factory=list)
    speed: list = field(default_factory=list)
    notes: list = field(default_factory=list)          # e.g. a model whose backend cannot score (no NLL rows)


def run_models(P, S, eval_models: list[EvalModel], items: list[B.Item], proto) -> RunResults:
    """Every model on every item under ``proto`` with the decoding, backend, NLL-probe and PAL settings of ``S``;
    rows resume from ``items.jsonl`` in the phase folder, the per-model speed goes to the ``speed`` table."""
    res = evaluate_models(eval_models, items, out_dir=P.dir, backend=S.backend, device=S.device,
                          backend_args=backend_kwargs(S.backend, base_url=S.base_url, api_key_env=S.api_key_env),
                          nll_probe=S.nll_probe, nll_limit=S.nll_limit, pal=S.pal, pal_limit=S.pal_limit,
                          protocol=proto, max_new_tokens=S.max_new_tokens, temperature=S.temperature, top_p=S.top_p,
                          n_samples=S.n_samples, seed=S.seed, chat=S.chat, batch_size=S.batch_size,
                          ocw_rel_tol=S.ocw_rel_tol)
    P.save_table(pd.DataFrame(res.speed), "speed")
    return res


def evaluate_models(eval_models: list[EvalModel], items: list[B.Item], *, out_dir, backend: str = "hf",
                    device: str = "auto", backend_args: dict | None = None, nll_probe: bool = True, nll_limit: int = 4,
                    pal: bool = False, pal_limit: int = 4, pal_sandbox_factory=None, protocol="paper",
                    n_shots: int | None = None, fewshot_file: str | None = None, max_new_tokens: int = 256,
                    temperature: float = 0.0, top_p: float = 1.0, n_samples: int = 1, seed: int = 0, chat: bool = False,
                    batch_size: int = 8, ocw_rel_tol: float = 0.0, progress: bool = True) -> RunResults:
    """Each model in turn: load, generate + score every item under ``protocol`` (resumable rows in
    ``out_dir/items.jsonl``), the gold-solution NLL probe (backends that can score, ``Generator.can_score``; the
    others get a note in ``RunResults.notes``) and PAL mode, then free the model before the next one.

    Every setting that shapes a score is a named parameter (no ``**kwargs``), so a caller cannot drop the protocol
    or a sampling setting without it showing in the call."""
    from mathcode.evaluate import harness, nll
    out_dir = Path(out_dir)
    res = RunResults()
    nll_items, nll_record = nll_selection(items, nll_limit, run_dir=out_dir.parent) if nll_probe else ([], {})
    if nll_probe:
        from mathcode.util import write_json
        write_json(out_dir / "nll_items.json", {"nll_limit": nll_limit, "benchmarks": nll_record,
                                                 "items": [[it.benchmark, str(it.id)] for it in nll_items]})
    pal_items = per_benchmark(items, pal_limit) if pal else []
    # vLLM: one engine for every model on the same base (base, base + adapter), LoRA enabled at the largest
    # adapter's rank, instead of loading the base again per model (minutes for an 8B model; GPU memory for two)
    share = backend == "vllm" and len(eval_models) > 1 and len({m.spec for m in eval_models}) == 1
    adapters = [m.adapter for m in eval_models if m.adapter]
    widest = max(adapters, key=_lora_rank) if share and adapters else None
    owner = None
    for m in eval_models:
        t0 = time.time()
        shared = {"engine": owner.llm} if owner is not None else ({"lora_for": widest} if widest else {})
        gen = harness.load_generator(m, backend=backend, device=device, **(backend_args or {}),
                                     **(shared if share else {}))
        try:
            res.rows += harness.evaluate(gen, items, model=m, out_path=out_dir / "items.jsonl", protocol=protocol,
                                         n_shots=n_shots, fewshot_file=fewshot_file, max_new_tokens=max_new_tokens,
                                         temperature=temperature, top_p=top_p, n_samples=n_samples, seed=seed,
                                         chat=chat, batch_size=batch_size, ocw_rel_tol=ocw_rel_tol,
                                         progress=progress)
            res.speed.append({**gen.info(), "model": m.label, "model_spec": m.spec, "items": len(items),
                              "seconds": round(time.time() - t0, 1)})
            if nll_items and getattr(gen, "can_score", False):
                res.nll_rows += [{"model": m.label, **x} for x in
                                 nll.probe(gen, nll_items, batch_size=batch_size)]
            elif nll_items:
                res.notes.append(note := nll.cannot_score_note(gen, m.label))
                print(f"NOTE: {note}")
            if pal_items:
                from mathcode.evaluate import pal as pal_mode
                res.pal_rows += pal_mode.evaluate_pal(
                    gen, pal_items, model=m, out_path=out_dir / "items_pal.jsonl",
                    max_new_tokens=max_new_tokens, batch_size=batch_size, ocw_rel_tol=ocw_rel_tol, progress=progress,
                    sandbox=pal_sandbox_factory() if pal_sandbox_factory else None)
        finally:
            if share and owner is None:
                owner = gen                          # its engine serves the next models; released after the last
            elif gen is not owner:
                release(gen)
    if owner is not None:
        release(owner)
    return res


def _lora_rank(adapter) -> int:
    from mathcode.generation.vllm import lora_settings
    return lora_settings(adapter)["max_lora_rank"]


def summary(acc: pd.DataFrame, nll_df: pd.DataFrame | None = None) -> dict:
    """Flat metrics for phase.json: acc_<model>_<benchmark> and nll_<model>_<benchmark>."""
    out = {f"acc_{r.model}_{r.benchmark}": round(float(r.accuracy), 4) for r in acc.itertuples()}
    if nll_df is not None and len(nll_df):
        out.update({f"nll_{r.model}_{r.benchmark}": round(float(r.nll_per_token), 4) for r in nll_df.itertuples()})
    return out


def release(gen) -> None:
    """Free a generator's model before loading the next (a small machine or GPU holds one model at a time)."""
    try:
        gen.close()
    finally:
        if hasattr(gen, "model"):
            gen.model = None
        gc.collect()
