"""Mixture: per-source token budgets (given directly, or as weights of a total), counted with the target
model's tokenizer, so "50M tokens of web math" means the same thing to the data and the trainer.

Selection is a seeded shuffle per source, then greedy filling: a document that would overshoot the budget is
skipped and smaller ones are tried, so each source lands within one short document of its budget. A source
with fewer tokens than its budget is taken whole and the shortfall is reported (no upsampling).
"""
from __future__ import annotations

import random

from mathcode.data.records import n_tokens


def token_counter(model_spec: str, cache_dir=None):
    """A function ``list[str] -> list[int]`` counting the target model's tokens (no special tokens).

    Uses the model folder's ``tokenizer.json`` through ``tokenizers`` directly when present: measured 0.24 s
    to load against 8.5 s for ``AutoTokenizer`` on the embedded model, with identical counts; otherwise the
    shared ``models.load_tokenizer``."""
    from pathlib import Path

    from mathcode import models
    folder = Path(models.resolve(model_spec, cache_dir).path)
    if (folder / "tokenizer.json").exists():
        import tokenizers
        tk = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        return lambda texts: [len(e.ids) for e in tk.encode_batch(list(texts), add_special_tokens=False)]
    tok = models.load_tokenizer(model_spec, cache_dir)
    return lambda texts: [len(x) for x in tok(list(texts), add_special_tokens=False)["input_ids"]]


def count_tokens(docs: list[dict], counter, batch: int = 256) -> None:
    """Write ``meta.n_tokens`` (from ``token_counter``) into every document."""
    for i in range(0, len(docs), batch):
        chunk = docs[i:i + batch]
        for d, n in zip(chunk, counter([d["text"] for d in chunk])):
            d.setdefault("meta", {})["n_tokens"] = int(n)


def budgets(docs: list[dict], *, token_budget: int = 0, weights: dict | None = None,
            source_budgets: dict | None = None, configured: list | tuple = ()) -> dict:
    """Tokens to take per source. ``source_budgets`` wins; else ``token_budget`` split by ``weights`` (missing
    sources weigh 1; weight 0 drops a source); ``token_budget`` 0 means keep everything (weights then only
    drop sources weighted 0). ``configured``: source names the recipe lists; a weight for one of them whose
    documents were all filtered out is ignored (its row shows 0), any other unknown name is an error."""
    avail: dict[str, int] = {}
    for d in docs:
        avail[d["source"]] = avail.get(d["source"], 0) + n_tokens(d)
    if not avail:
        raise ValueError("no documents are left for the mixture: every document was filtered out; loosen the "
                         "filters or add sources")
    weights = {k: x for k, x in (weights or {}).items() if k in avail or k not in configured}
    source_budgets = {k: x for k, x in (source_budgets or {}).items() if k in avail or k not in configured}
    for name, table in (("source_weights", weights or {}), ("source_budgets", source_budgets or {})):
        unknown = sorted(set(table) - set(avail))
        if unknown:
            raise ValueError(f"{name} names sources that are not in the corpus: {', '.join(unknown)}; "
                             f"sources present: {', '.join(sorted(avail))}")
    if source_budgets:
        return {s: int(source_budgets.get(s, avail[s])) for s in avail}
    w = {s: float((weights or {}).get(s, 1.0)) for s in avail}
    if any(v < 0 for v in w.values()):
        raise ValueError(f"source_weights must be >= 0, got {weights}")
    if not token_budget:
        return {s: (avail[s] if w[s] > 0 else 0) for s in avail}
    tot = sum(w.values())
    if tot <= 0:
        raise ValueError("all source_weights are 0: nothing would be selected")
    return {s: int(round(token_budget * w[s] / tot)) for s in avail}


def select(docs: list[dict], plan: dict, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(selected docs, per-source rows {source, budget, available, selected, docs}) for a budget plan."""
    from mathcode.data.records import by_source
    groups = by_source(docs)
    chosen, rows = [], []
    for s in sorted(groups):
        ds = list(groups[s])
        random.Random(f"{seed}-{s}").shuffle(ds)
        budget, got, picked = plan.get(s, 0), 0, []
        for d in ds:
            t = n_tokens(d)
            if got + t <= budget:
                picked.append(d)
                got += t
        chosen.extend(picked)
        avail = sum(n_tokens(d) for d in ds)
        rows.append({"source": s, "budget_tokens": budget, "available_tokens": avail, "selected_tokens": got,
                     "selected_docs": len(picked), "fill": round(got / budget, 4) if budget else None,
                     "shortfall": max(0, budget - avail)})
    return chosen, rows
