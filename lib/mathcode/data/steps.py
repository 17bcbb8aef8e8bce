"""Phase 1's protocol steps at notebook granularity, over an in-memory corpus (demo to mid scale).

Each step of ``notebooks/01_data_sampling.ipynb`` — load, quality, classifier, near-dedup, decontamination,
mixture — is a function ``step(P, S, <documents from earlier cells>)``: it reads its settings from the checked
``DataSettings`` (``S``), writes its table through the ``Phase`` (``P``), appends its ``StepReport`` to ``reports``
(the funnel reads them) and returns the documents kept plus the tables the notebook shows. Each delegates to a
function with the same work under explicit arguments (``load_documents``, ``quality_filter``, ``classify_pool``,
``near_dedup_docs``, ``decontaminate_docs``, ``select_mixture``), which tests and other callers use without a phase.

Why here and not in the notebook: the choices (which sources are positives, which are the pool, what happens when
the pool is empty) are logic that needs unit tests; the notebook keeps the parameters, the figures and what to look
at. The same step objects stream at cluster scale through ``pipeline.run_streaming`` / ``datatrove_route``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
from mathcode.progress import bar

from mathcode.data import classifier as clf_mod, decontaminate as dc_mod, mixture, pipeline, source_roles
from mathcode.data.sources import iter_source, SourceError
from mathcode.data.records import REMOVAL_WORDS, StepReport, by_source, funnel, removal_file  # noqa: F401


def load_and_count(P, S) -> tuple[list, pd.DataFrame, pd.DataFrame]:
    """Every source read (``sources``, at most ``max_docs_per_source`` each) and counted in ``model``'s tokens; the
    per-source table is saved as ``sources_loaded``."""
    docs, table, samples = load_documents(S.sources, S.model, S.max_docs_per_source, S.seed)
    P.save_table(table, "sources_loaded")
    return docs, table, samples


def load_documents(sources: list, model: str, max_docs: int, seed: int = 0) -> tuple[list, pd.DataFrame, pd.DataFrame]:
    """(documents with ``meta.n_tokens`` in the target tokenizer, per-source table, one sample per source)."""
    docs, seen = [], set()
    # one bar over sources (a nested per-source bar sized max_docs froze at "1/300" for sources that end early)
    with bar(list(sources), desc="sources", unit="source") as sources_bar:
        for spec in sources_bar:
            sources_bar.set_postfix_str(f"{spec[:40]}; {len(docs)} documents so far", refresh=False)
            for d in iter_source(spec, max_docs=max_docs, seed=seed):
                if d["id"] in seen:
                    raise SourceError(f"source {spec!r}: duplicate document id {d['id']!r}; give rows unique 'id's")
                seen.add(d["id"])
                docs.append(d)
    mixture.count_tokens(docs, mixture.token_counter(model))
    loaded = pd.DataFrame([{"source": d["source"], "tokens": d["meta"]["n_tokens"], "chars": len(d["text"])}
                           for d in docs], columns=["source", "tokens", "chars"])
    table = loaded.groupby("source").agg(docs=("tokens", "size"), tokens=("tokens", "sum"),
                                         mean_chars=("chars", "mean")).reset_index()
    samples = pd.DataFrame([{"source": s, "sample": g[0]["text"][:300]} for s, g in by_source(docs).items()])
    return docs, table, samples


def apply_quality(P, S, docs: list, reports: list) -> tuple[list, pd.DataFrame, pd.DataFrame]:
    """The quality heuristics of ``quality_filters``, in order, with their thresholds from ``S``."""
    return quality_filter(docs, reports, quality=S.quality_filters, min_chars=S.min_chars, max_chars=S.max_chars,
                          min_symbol_ratio=S.min_symbol_ratio, max_symbol_ratio=S.max_symbol_ratio,
                          max_dup_lines=S.max_dup_lines, max_top_trigram=S.max_top_trigram)


def quality_filter(docs: list, reports: list, *, quality=("length", "symbols", "repetition"), min_chars: int = 50,
                   max_chars: int = 100_000, min_symbol_ratio: float = 0.0, max_symbol_ratio: float = 0.8,
                   max_dup_lines: float = 0.3, max_top_trigram: float = 0.3) -> tuple[list, pd.DataFrame, pd.DataFrame]:
    """Quality heuristics (``pipeline.filter_steps``, dedup off): kept docs, per-step table, examples."""
    rows, examples = [], []
    for step in pipeline.filter_steps(quality=list(quality), min_chars=min_chars, max_chars=max_chars,
                                      min_symbol_ratio=min_symbol_ratio, max_symbol_ratio=max_symbol_ratio,
                                      max_dup_lines=max_dup_lines, max_top_trigram=max_top_trigram, dedup=False):
        docs, rep = step.apply(docs)
        reports.append(rep)
        rows.append(rep.summary())
        examples.append(rep.examples_frame(3).assign(step=rep.step))
    table = pd.DataFrame(rows).fillna(0) if rows else pd.DataFrame(columns=["step", "docs_in", "docs_out", "removed"])
    return docs, table, (pd.concat(examples, ignore_index=True) if examples else pd.DataFrame())


@dataclass
class ClassifierOutcome:
    note: str
    result: clf_mod.TwoRoundResult | None = None
    classifier: clf_mod.MathClassifier | None = None
    pool: list = field(default_factory=list)
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    recalled: pd.DataFrame = field(default_factory=pd.DataFrame)
    removed: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def auc(self) -> tuple:
        return tuple(m["auc"] for m in self.result.metrics) if self.result else (None, None)


def classify(P, S, docs: list, reports: list) -> tuple[list, ClassifierOutcome]:
    """The classifier step on the pool (``classify_sources`` as resolved against ``sources``); both rounds' models
    go to ``classifier/``, the held-out metrics to the ``classifier_metrics`` table."""
    roles = source_roles.resolve_data_keys(P.values)
    kept, out = classify_pool(docs, reports, sources=S.sources, positives=S.classifier_positives,
                              negatives=S.classifier_negatives, classify_sources=roles["classify_sources"],
                              classifier_model=S.classifier_model, max_docs=S.max_docs_per_source,
                              max_negatives=S.max_negatives, threshold=S.classifier_threshold,
                              confident=S.confident_threshold, holdout=S.classifier_holdout,
                              epochs=S.classifier_epochs, seed=S.seed, out_dir=P.dir / "classifier")
    P.save_table(out.metrics, "classifier_metrics")
    return kept, out


def classify_pool(docs: list, reports: list, *, sources, positives, negatives, classify_sources, classifier_model="",
             max_docs: int = 300, max_negatives: int = 800, threshold: float = 0.5, confident: float = 0.9,
             holdout: float = 0.2, epochs: int = 15, seed: int = 0, out_dir=None) -> tuple[list, ClassifierOutcome]:
    """The paper's two-round fastText recall on the pool sources (or a saved classifier). No pool — none
    configured, or every pool document already filtered out — means no classifier step, said in ``note``."""
    pos, neg, pool, pool_names = source_roles.classifier_inputs(
        docs, sources=list(sources), positives=list(positives), negatives=list(negatives),
        classify_sources=list(classify_sources), max_docs=max_docs, max_negatives=max_negatives, seed=seed)
    if not pool:
        why = "classify_sources is empty" if not pool_names else f"no documents of {sorted(pool_names)} are left"
        return docs, ClassifierOutcome(note=f"no classifier step: {why}")
    if classifier_model:
        out = ClassifierOutcome(note=f"reusing classifier {classifier_model}",
                                classifier=clf_mod.MathClassifier.load(classifier_model), pool=pool)
    else:
        if not pos or not neg:
            raise ValueError(f"the classifier needs positives and negatives, got {len(pos)} positive and {len(neg)} "
                             f"negative documents; check classifier_positives / classifier_negatives / max_negatives")
        res = clf_mod.two_round(pos, neg, pool, threshold=threshold, confident=confident, holdout=holdout, seed=seed,
                                out_dir=out_dir, epoch=epochs)
        out = ClassifierOutcome(
            note=f"{len(res.recalled)} pool documents recalled as new positives after round 1 (P >= {confident})",
            result=res, classifier=res.round2, pool=pool, metrics=pd.DataFrame(res.metrics),
            recalled=pd.DataFrame([{"id": d["id"], "score_r1": round(d["score_r1"], 3), "text": d["text"][:160]}
                                   for d in res.recalled[:8]], columns=["id", "score_r1", "text"]))
    kept, rep = clf_mod.ClassifierFilter(out.classifier, threshold, pool_names).apply(docs)
    reports.append(rep)
    out.removed = rep.examples_frame(5)
    out.note += f"; the classifier removed {rep.n_removed} of {len(pool)} pool documents"
    return kept, out


@dataclass
class DedupOutcome:
    removed: int = 0
    sizes: dict = field(default_factory=dict)
    sizes_table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["cluster_size", "clusters"]))
    examples: pd.DataFrame = field(default_factory=pd.DataFrame)


def near_dedup(P, S, docs: list, reports: list) -> tuple[list, DedupOutcome]:
    """Near-dedup with ``dedup_*`` from ``S`` (none when ``dedup`` is False); cluster sizes to ``dedup_cluster_sizes``."""
    kept, out = near_dedup_docs(docs, reports, enabled=S.dedup, threshold=S.dedup_threshold,
                                num_perm=S.dedup_num_perm, shingle=S.dedup_shingle, seed=S.seed)
    P.save_table(out.sizes_table, "dedup_cluster_sizes")
    return kept, out


def near_dedup_docs(docs: list, reports: list, *, enabled: bool = True, threshold: float = 0.8, num_perm: int = 128,
               shingle: int = 5, seed: int = 0) -> tuple[list, DedupOutcome]:
    """MinHash-LSH near-dedup; each removed example is shown beside the document it duplicates."""
    if not enabled:
        return docs, DedupOutcome(examples=pd.DataFrame([{"note": "dedup=False: no near-dedup step"}]))
    step = pipeline.filter_steps(quality=[], dedup=True, dedup_threshold=threshold, dedup_num_perm=num_perm,
                                 dedup_shingle=shingle, seed=seed)[0]
    by_id = {d["id"]: d for d in docs}
    kept, rep = step.apply(docs)
    reports.append(rep)
    sizes = step.cluster_sizes()
    ex = [{"removed": e["text"][:150], "kept": by_id[e["duplicate_of"]]["text"][:150], "jaccard_est": e["jaccard_est"]}
          for e in rep.examples]
    return kept, DedupOutcome(rep.n_removed, sizes, pd.DataFrame(sorted(sizes.items()), columns=["cluster_size", "clusters"]),
                              pd.DataFrame(ex) if ex else rep.examples_frame())


@dataclass
class DecontamOutcome:
    note: str
    removed: int = 0
    hits: pd.DataFrame = field(default_factory=pd.DataFrame)
    hits_table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["benchmark", "source", "docs"]))
    checked: dict = field(default_factory=dict)     # documents per source that went through decontamination
    ngram: int = 13

    def figure(self):
        from mathcode.data.figures import decontamination_figure
        return decontamination_figure(self.checked, self.hits_table, self.note)

    def sentence(self) -> str:
        """What happened, in words (the notebook prints it; nothing is promised in advance)."""
        n = sum(self.checked.values())
        if self.note.startswith("NOT"):
            return self.note
        if not self.removed:
            return f"{self.note}: none of the {n} documents shares a {self.ngram}-gram with a test item; nothing removed."
        by = self.hits_table.groupby("benchmark")["docs"].sum().to_dict() if len(self.hits_table) else {}
        return (f"{self.note}: {self.removed} of {n} documents removed (" +
                ", ".join(f"{k}: {v}" for k, v in by.items()) + ").")


def decontaminate(P, S, docs: list, reports: list) -> tuple[list, DecontamOutcome]:
    """Decontamination against ``decontam_benchmarks`` at ``decontam_ngram``; every removed document with its
    matching benchmark item goes to ``removed_decontaminated.jsonl``, the counts to ``decontamination_hits``."""
    kept, out = decontaminate_docs(docs, reports, benchmarks=S.decontam_benchmarks, ngram=S.decontam_ngram,
                                   removed_path=P.path(removal_file("decontaminate")))
    P.save_table(out.hits_table, "decontamination_hits")
    return kept, out


def decontaminate_docs(docs: list, reports: list, *, benchmarks="default", ngram: int = 13,
                  removed_path=None) -> tuple[list, DecontamOutcome]:
    """Exact + n-gram decontamination against the benchmarks' test sets; removed rows go to ``removed_path``."""
    checked = dict(Counter(d["source"] for d in docs))
    bench = dc_mod.load_benchmarks(benchmarks if benchmarks != "none" else None)
    if not len(bench):
        note = "NOT decontaminated: no benchmark test sets available (../shared absent and Hub offline, or 'none')"
        rows = []
    else:
        note = "decontaminated against " + ", ".join(f"{r['benchmark']} ({r['items']})" for r in bench.summary())
        docs, rep = dc_mod.Decontaminator(bench, ngram).apply(docs)
        reports.append(rep)
        rows = rep.removed
    if removed_path is not None:
        pipeline.write_jsonl_stream(removed_path, rows)
    hits = pd.DataFrame(rows, columns=["id", "source", "reason", "benchmark", "benchmark_id", "ngram", "text"])
    table = (hits.groupby(["benchmark", "source"]).size().reset_index(name="docs") if len(hits)
             else pd.DataFrame(columns=["benchmark", "source", "docs"]))
    return docs, DecontamOutcome(note, len(rows), hits[["source", "benchmark", "benchmark_id", "ngram"]].head(8), table,
                                 checked, ngram)


def build_mixture(P, S, docs: list, reports: list) -> tuple[list, pd.DataFrame]:
    """The token-budgeted mixture (``token_budget`` split by ``source_weights``, or ``source_budgets``) as resolved
    against ``sources``; the per-source table is saved as ``mixture``."""
    roles = source_roles.resolve_data_keys(P.values)
    corpus, table = select_mixture(docs, reports, sources=S.sources, token_budget=S.token_budget,
                                   weights=roles["source_weights"], source_budgets=roles["source_budgets"], seed=S.seed)
    P.save_table(table, "mixture")
    return corpus, table


def select_mixture(docs: list, reports: list, *, sources, token_budget: int = 0, weights=None, source_budgets=None,
                  seed: int = 0) -> tuple[list, pd.DataFrame]:
    """Token-budgeted selection per source. Weights/budgets are resolved against ``sources`` first (defaults
    written for other sources are dropped, names the user wrote must exist); an empty result is an error."""
    roles = source_roles.resolve_data_keys({"sources": list(sources), "source_weights": dict(weights or {}),
                                            "source_budgets": dict(source_budgets or {}), "classify_sources": []},
                                           explicit=set())
    names = [source_roles._name(s) for s in sources]
    plan = mixture.budgets(docs, token_budget=token_budget, weights=roles["source_weights"],
                           source_budgets=roles["source_budgets"], configured=names)
    corpus, rows = mixture.select(docs, plan, seed=seed)
    rep = StepReport("mixture")
    chosen = {d["id"] for d in corpus}
    for d in docs:
        rep.add(d, d["id"] in chosen, {"reason": "over_budget"}, False)
    reports.append(rep)
    pipeline.check_corpus(corpus)
    return corpus, pd.DataFrame(rows)


def funnel_tables(initial: list, reports: list) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(long funnel table, its source × stage token pivot, one summary row per step)."""
    fun = funnel(initial, reports)
    pivot = fun.pivot_table(index="source", columns="stage", values="tokens", sort=False)
    return fun, pivot, pd.DataFrame([r.summary() for r in reports]).fillna(0)


def write_removals(docs: list, reports: list, out_dir) -> pd.DataFrame:
    """Every document a step removed, written with its reason to ``out_dir/removed_<step>.jsonl`` (id, the user's
    original id, source, step, reason and the measured value that decided it, and the text), and one table row per
    (step, reason): nothing leaves the corpus silently. ``docs``: the documents as loaded (the text is taken from
    them). Decontamination's file is written by ``decontaminate`` with the matching benchmark item."""
    from pathlib import Path
    text = {d["id"]: d["text"] for d in docs}
    rows = []
    for rep in reports:
        if rep.step != "decontaminate":
            pipeline.write_jsonl_stream(Path(out_dir) / removal_file(rep.step),
                                        [{**r, "text": text.get(r["id"], "")} for r in rep.dropped])
        for reason, n in Counter(r["reason"] for r in rep.dropped).items():
            rows.append({"step": rep.step, "reason": reason, "documents": n, "file": removal_file(rep.step)})
    return pd.DataFrame(rows, columns=["step", "reason", "documents", "file"])


def summary_metrics(docs: list, corpus: list, reports: list, clf: ClassifierOutcome, dc: DecontamOutcome) -> dict:
    """Key numbers for ``P.finish`` (the manifest and the report)."""
    auc1, auc2 = clf.auc
    return dict(docs_loaded=len(docs), docs_final=len(corpus),
                tokens_final=int(sum(d["meta"]["n_tokens"] for d in corpus)),
                classifier_auc_round1=auc1, classifier_auc_round2=auc2, classifier=clf.note,
                near_duplicates_removed=sum(r.n_removed for r in reports if r.step == "near_dedup"),
                decontaminated=dc.removed, decontamination=dc.note,
                removed_by_step={r.step: dict(Counter(x["reason"] for x in r.dropped)) for r in reports if r.dropped})
