"""The plan ``python -m mathcode validate`` prints: what each phase will do, on which sources, with which token
budget, how much memory training needs and roughly how long each phase takes — before any work starts.

Times are rough estimates from per-unit rates (stated next to each figure), not measured on the machine that will run it;
the memory figure is ``train.memory.estimate`` (±25 %). Both exist so a recipe that cannot finish in the time or
memory you have is noticed in a second, not after hours.
"""
from __future__ import annotations

from mathcode.run import params

# Rough per-unit rates behind the time estimates (labelled as estimates wherever they are printed).
RATES = {
    "data_docs_per_s": 800.0,                 # plain route, 2-core CPU, bench/README.md phase 1 (20k-80k docs)
    "translate_tokens_per_s": {"cpu": 8.0, "cuda": 2500.0},   # llama.cpp 0.5B 1 thread; vLLM 7B batched (assumed)
    # llama.cpp, Qwen2.5-Coder-0.5B, one block per passage, 2 busy cores: 13-22 s per passage in the throughput
    # entries of bench/README.md (50 passages in 780 s; 16 in 205-352 s): ~80 generated tokens + ~150 new prompt
    # tokens per passage (the shared instruction is computed once) — closer to measurement than passages x
    # max_new_tokens / tokens/s, which assumes every reply runs to its token cap
    "translate_s_per_block_cpu": 16.0,
    "train_tokens_per_s": {"cpu": 50.0, "cuda": 1500.0},      # 135M QLoRA on CPU (bench); 8B QLoRA on one GPU (assumed)
    "eval_tokens_per_s": {"cpu": 15.0, "cuda": 3000.0},
}


def _fmt_s(s: float) -> str:
    if s < 90:
        return f"~{s:.0f} s"
    if s < 5400:
        return f"~{s / 60:.0f} min"
    return f"~{s / 3600:.1f} h"


def _device(recipe) -> str:
    if recipe.device.startswith("cuda"):
        return "cuda"
    if recipe.device == "cpu":
        return "cpu"
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def phase_values(recipe, phase: str) -> dict:
    return {**params.defaults(phase), **recipe.phase_params(phase)}


def describe(recipe) -> list[str]:
    """Lines of the plan (one block per phase). A block that cannot be planned says so instead of failing."""
    dev = _device(recipe)
    out = [f"plan for recipe {recipe.name!r}: model {recipe.model}, device {recipe.device} (plans for {dev}), "
           f"run_dir {recipe.run_dir}"]
    for block in (_data, _translation, _pretraining, _evaluation):
        try:
            out += block(recipe, dev)
        except Exception as e:                              # a plan is advice; validation already passed
            out.append(f"  {block.__name__[1:]}: no plan ({type(e).__name__}: {e})")
    return out


def _data(recipe, dev) -> list[str]:
    out = []
    d = phase_values(recipe, "data")
    n_src = len(d["sources"])
    docs = n_src * d["max_docs_per_source"]
    w = d["source_weights"] or {}
    from mathcode.data.sources import parse_spec
    names = [parse_spec(s).name for s in d["sources"]]
    tot_w = sum(float(w.get(n, 1.0)) for n in names) or 1.0
    pool = {parse_spec(s).name for s in d["classify_sources"]}
    out.append(f"  data: {n_src} sources, at most {d['max_docs_per_source']} documents each; token budget "
               f"{d['token_budget'] or 'all'}; classifier pool: {', '.join(sorted(pool)) or 'none'}")
    for n in names:
        share = float(w.get(n, 1.0)) / tot_w
        tok = f" ≈ {int(share * d['token_budget']):,} tokens" if d["token_budget"] and not d["source_budgets"] else ""
        out.append(f"      {n:32s} weight share {share:6.1%}{tok}" + ("  [classified]" if n in pool else ""))
    out.append(f"      rough time (estimate, {RATES['data_docs_per_s']:.0f} docs/s): "
               f"{_fmt_s(docs / RATES['data_docs_per_s'])} + source download time")
    return out


def _translation(recipe, dev) -> list[str]:
    out = []
    d = phase_values(recipe, "data")
    docs = len(d["sources"]) * d["max_docs_per_source"]
    t = phase_values(recipe, "translation")
    counted = _count_passages(d, t)
    cap = t["max_passages"] or docs * t["max_passages_per_doc"]
    passages = min(cap, counted[0]) if counted else cap
    out.append(f"  translation: backend {t['backend']}, translator {t['translator_model'] or recipe.model}, "
               f"{'≤ ' if t['max_passages'] else 'up to '}{passages:,} passages × ≤ {t['max_new_tokens']} new tokens")
    if counted:
        out.append(f"      the local sources hold {counted[0]:,} passages in {counted[1]:,} of {counted[2]:,} documents "
                   f"(before phase 1's filters; max_passages_per_doc {t['max_passages_per_doc']}, passage_selection "
                   f"{t['passage_selection']})")
    if dev == "cpu" and t["backend"] in ("auto", "llamacpp"):
        per = RATES["translate_s_per_block_cpu"] * t["max_blocks"]
        out.append(f"      rough time (estimate, ~{per:g} s per passage of {t['max_blocks']} block(s), as measured with "
                   f"Qwen2.5-Coder-0.5B on llama.cpp on 2 busy cores): "
                   f"{_fmt_s(passages * per)}")
    else:
        tr_rate = RATES["translate_tokens_per_s"][dev]
        out.append(f"      rough time (estimate, {tr_rate:g} generated tokens/s, every reply at its cap): "
                   f"{_fmt_s(passages * t['max_new_tokens'] / tr_rate)}")
    return out


def _count_passages(d: dict, t: dict, max_chars: int = 20_000_000) -> tuple[int, int, int] | None:
    """(passages, documents with passages, documents) of the recipe's local sources (jsonl, folder) as phase 2
    would cut them, or None when a source is not local (embedded corpora are generated, Hub ones streamed).
    Reading stops after ``max_chars`` of text, so validation stays fast on a large corpus."""
    from mathcode.data.sources import iter_source, parse_spec
    from mathcode.translate.steps import configure
    specs = [parse_spec(s) for s in d["sources"]]
    if not specs or any(s.kind not in ("jsonl", "folder") for s in specs):
        return None
    cfg = configure(**t)
    n_p = n_with = n_docs = seen = 0
    for s in specs:
        for doc in iter_source(s, max_docs=d["max_docs_per_source"]):
            ps = cfg.split(doc)
            n_docs, n_p, n_with = n_docs + 1, n_p + len(ps), n_with + bool(ps)
            seen += len(doc["text"])
            if seen > max_chars:
                return n_p, n_with, n_docs
    return n_p, n_with, n_docs


def _pretraining(recipe, dev) -> list[str]:
    out = []
    p = phase_values(recipe, "pretraining")
    tokens = p["max_steps"] * p["per_device_batch_size"] * p["grad_accum"] * p["block_size"]
    out.append(f"  pretraining: mixture {p['mixture'] if not p['corpus_files'] else p['corpus_files']}, quantize "
               f"{p['quantize']}, LoRA r={p['lora_r']}, {p['max_steps']} steps × {p['per_device_batch_size']} × "
               f"{p['grad_accum']} × {p['block_size']} tokens = {tokens:,} training tokens")
    out += part_lines(recipe, p)
    out.append("      memory estimate: " + memory_line(recipe.model, p, dev))
    rate = RATES["train_tokens_per_s"][dev]
    out.append(f"      rough time (estimate, {rate:g} tokens/s): {_fmt_s(tokens / rate)}")
    return out


def _evaluation(recipe, dev) -> list[str]:
    out = []
    e = phase_values(recipe, "evaluation")
    per = e["limit"] if e["limit"] >= 0 else 500
    items = sum(int((e.get("limits") or {}).get(b, per)) for b in e["benchmarks"])
    runs = 1 + bool(e.get("include_base", True)) + len(e.get("models") or [])
    ev_rate = RATES["eval_tokens_per_s"][dev]
    out.append(f"  evaluation: {', '.join(e['benchmarks'])}, {e['n_shots']}-shot, ~{items} items"
               f"{' (limit -1: all items, ~500 per benchmark assumed)' if e['limit'] < 0 else ''} × {runs} models")
    out.append(f"      rough time (estimate, {ev_rate:g} generated tokens/s): "
               f"{_fmt_s(items * runs * e['max_new_tokens'] / ev_rate)}")
    return out


def part_lines(recipe, p: dict) -> list[str]:
    """Per mixture part: tokens, repeats, training tokens and share, host memory (token store)."""
    from mathcode import models, paths
    from mathcode.train import token_store
    from mathcode.train.input_files import MIXTURES
    if p["corpus_files"]:
        inputs = [(paths.resolve_path(f), paths.resolve_path(f).stem) for f in p["corpus_files"]]
    else:
        inputs = [(paths.phase_dir(recipe.run_dir, ph) / fname, label) for ph, fname, label in MIXTURES[p["mixture"]]]
    try:
        name = models.resolve(recipe.model).path
    except Exception:                                        # an offline Hub id: no store can match, estimate only
        name = recipe.model
    out = []
    for r in token_store.plan_parts(inputs, str(name), p.get("token_store") or None, p.get("part_repeats")):
        if r["tokens"] is None:
            out.append(f"      part {r['part']:12s} not produced yet ({r['file']}); repeats {r['repeats']:g}")
            continue
        how = f"store {r['store']}" if r["exact"] else "estimate from the file size, not tokenized yet"
        out.append(f"      part {r['part']:12s} {r['tokens']:>13,} tokens × {r['repeats']:g} = {r['train_tokens']:,} "
                   f"training tokens ({r['share']:.1%}); host memory: {r['mapped_mb']:,.1f} MB memory-mapped, "
                   f"~{r['resident_mb']:,.2f} MB resident ({how})")
    return out


def memory_line(model: str, p: dict, dev: str) -> str:
    from mathcode.train import memory, qlora
    try:
        dtype = qlora.choose_compute_dtype(p.get("compute_dtype", "auto"), dev)[0]
        est = memory.estimate(model, quantize=p["quantize"], device=dev, lora_r=p["lora_r"],
                              lora_targets=list(p["lora_targets"]), batch_size=p["per_device_batch_size"],
                              seq_len=p["block_size"], gradient_checkpointing=p["gradient_checkpointing"],
                              train_embeddings=p["train_embeddings"], compute_dtype=dtype)
    except Exception as e:                    # offline Hub id without a known shape: say so, do not fail validation
        return f"unknown ({type(e).__name__}: the model's config.json is not available here)"
    g = memory.GIB
    return (f"{est.total_bytes / g:.1f} GiB on {dev}, {dtype} compute (weights {est.weights_bytes / g:.1f}, LoRA+optimizer "
            f"{est.trainable_state_bytes / g:.2f}, activations {est.activation_bytes / g:.2f}, logits "
            f"{est.logits_bytes / g:.2f}; an estimate, ±25 %)")
