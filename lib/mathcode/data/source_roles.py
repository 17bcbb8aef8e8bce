"""Which source plays which role in phase 1: corpus, classifier positives / negatives, classifier pool, mixture
weights — resolved and cross-checked before any document is read.

Why: the keys refer to each other by name (``source_weights`` and ``classify_sources`` name entries of
``sources``). A mismatch used to surface at the last step, after streaming and classifying everything. The
notebook defaults are written for the embedded sources; when a user brings a corpus through ``sources`` alone,
those defaults are narrowed to the sources given (equal weights, no classifier pool) instead of failing. Values
the user wrote are never narrowed: a name that matches no source is an error naming the key.
"""
from __future__ import annotations

from mathcode.data.sources import SourceError, load_sources, parse_spec


class DataPlanError(ValueError):
    """Phase-1 keys that disagree; the message names the key and what to write."""


def _defaults() -> dict:
    from mathcode.data.settings import DataSettings
    return DataSettings.defaults()


def resolve_data_keys(values: dict, explicit: set | None = None, prefix: str = "phases.data.") -> dict:
    """Return ``classify_sources``, ``source_weights`` and ``source_budgets`` resolved against ``sources``.

    ``explicit``: keys the user set (a recipe's block); default: keys whose value differs from the notebook default.
    """
    d = _defaults()
    v = {**d, **values}
    if explicit is None:
        explicit = {k for k in values if k not in d or values[k] != d[k]}
    if "sources" not in v:              # a data notebook without a `sources` parameter has no source plan to check
        return {}
    sources = list(v.get("sources") or [])
    if not sources:
        raise DataPlanError(f"{prefix}sources: empty; write at least one source, e.g. ['jsonl:data/my.jsonl#text'] "
                            f"or ['embedded:champ_solutions']")
    names = []
    for s in sources:
        try:
            names.append(parse_spec(s).name)
        except SourceError as e:
            raise DataPlanError(f"{prefix}sources: {e}") from None
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataPlanError(f"{prefix}sources: {', '.join(dup)} appear more than once; list each source once")
    known = set(names) | set(sources)
    out = {}
    pool = list(v.get("classify_sources") or [])
    outside = [s for s in pool if s not in known and _name(s) not in known]
    if outside and "classify_sources" in explicit:
        raise DataPlanError(f"{prefix}classify_sources: {', '.join(map(repr, outside))} not among sources "
                            f"({', '.join(sources)}); the pool is a subset of sources — add them to sources, "
                            f"or write classify_sources: [] to skip the classifier")
    out["classify_sources"] = [s for s in pool if s not in outside]
    for key in ("source_weights", "source_budgets"):
        table = dict(v.get(key) or {})
        unknown = sorted(k for k in table if k not in names)
        if unknown and key in explicit:
            raise DataPlanError(f"{prefix}{key}: {', '.join(map(repr, unknown))} name no source; keys are source "
                                f"names: {', '.join(names)} (hub:OWNER/NAME is named hub:NAME, jsonl:path/x.jsonl is "
                                f"named jsonl:x)")
        out[key] = {k: x for k, x in table.items() if k in names}
    w = out["source_weights"]
    if w and len(w) == len(names) and all(x == 0 for x in w.values()):
        raise DataPlanError(f"{prefix}source_weights: every weight is 0, so the corpus would be empty; give at least "
                            f"one source a weight above 0")
    b = out["source_budgets"]
    if b and len(b) == len(names) and all(x == 0 for x in b.values()):
        raise DataPlanError(f"{prefix}source_budgets: every budget is 0, so the corpus would be empty")
    if out["classify_sources"]:
        if not v.get("classifier_model") and not v.get("classifier_positives"):
            raise DataPlanError(f"{prefix}classifier_positives: empty while classify_sources is set; the classifier "
                                f"needs trusted math sources as positives (e.g. ['embedded:champ_solutions'])")
        if not v.get("classifier_model") and not v.get("classifier_negatives"):
            raise DataPlanError(f"{prefix}classifier_negatives: empty while classify_sources is set; the classifier "
                                f"needs non-math negatives (e.g. ['embedded:stdlib_prose'])")
    return out


def _name(spec: str) -> str:
    try:
        return parse_spec(spec).name
    except SourceError:
        return spec


def classifier_inputs(docs: list[dict], *, sources: list, positives: list, negatives: list, classify_sources: list,
                      max_docs: int, max_negatives: int, seed: int = 0) -> tuple[list, list, list, set]:
    """(positive docs, negative docs, pool docs, pool source names) for the two-round classifier.

    Positives are taken from the filtered corpus when they are corpus sources, else loaded on their own (trusted
    seed math that is not part of the corpus); negatives are always loaded on their own and never enter the corpus.
    An empty ``classify_sources`` (or a pool emptied by the filters) gives an empty pool: no classifier step.
    """
    pos_names = {_name(p) for p in positives}
    pos = [d for d in docs if d["source"] in pos_names]
    extra = [p for p in positives if p not in sources and _name(p) not in {_name(s) for s in sources}]
    pool_names = {_name(s) for s in classify_sources}
    pool = [d for d in docs if d["source"] in pool_names]
    if not pool:
        return pos, [], [], pool_names
    if extra:
        pos += load_sources(extra, max_docs=max_docs, seed=seed)
    neg = load_sources(list(negatives), max_docs=max_negatives, seed=seed) if negatives and max_negatives else []
    return pos, neg, pool, pool_names
