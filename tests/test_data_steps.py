"""The phase-1 steps the notebook calls, on real embedded sources and a user's own JSONL file: roles of sources,
an empty classifier pool (no crash, a note and a figure that says so), mixture weights defaulting to the sources
given, an emptied corpus refused."""
from __future__ import annotations

import json

import matplotlib
import pytest

from mathcode.data import figures, steps, source_roles

matplotlib.use("Agg")
MODEL = "embedded:smollm2-135m-instruct"


@pytest.fixture(scope="module")
def own_corpus(tmp_path_factory):
    f = tmp_path_factory.mktemp("byo") / "lecture_notes.jsonl"
    rows = [{"id": f"n{i}", "text": f"Lemma {i}. For every integer n > {i}, n^2 - {i}^2 = (n - {i})(n + {i}). "
                                    f"Proof: expand the right-hand side; the cross terms {i}n and -{i}n cancel."}
            for i in range(30)]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def test_notebook_defaults_are_narrowed_to_the_sources_given_but_user_values_are_not(own_corpus):
    d = source_roles._defaults()
    mine = [f"jsonl:{own_corpus}"]
    r = source_roles.resolve_data_keys({**d, "sources": mine})      # the rest left at the notebook defaults
    assert r == {"classify_sources": [], "source_weights": {}, "source_budgets": {}}
    with pytest.raises(source_roles.DataPlanError, match=r"source_weights: 'champ_solutions' name no source"):
        source_roles.resolve_data_keys({"sources": mine, "source_weights": {"champ_solutions": 1}})


def test_bring_your_own_corpus_runs_load_to_mixture_without_classifier(own_corpus, tmp_path):
    sources = [f"jsonl:{own_corpus}"]
    docs, table, samples = steps.load_documents(sources, MODEL, max_docs=100)
    assert table["docs"].tolist() == [30] and table["tokens"].iloc[0] > 30 * 20
    reports = []
    cur, qtab, _ = steps.quality_filter(docs, reports, quality=["length"], min_chars=20)
    cur, clf = steps.classify_pool(cur, reports, sources=sources, positives=["embedded:champ_solutions"],
                                   negatives=["embedded:stdlib_prose"], classify_sources=[], max_docs=50)
    assert clf.result is None and "classify_sources is empty" in clf.note and len(cur) == 30
    figures.classifier_pool(clf, 0.5)                        # a figure that says why, not a seaborn crash
    figures.classifier_heldout(clf, 0.5)
    cur, dd = steps.near_dedup_docs(cur, reports, enabled=False)
    corpus, mix = steps.select_mixture(cur, reports, sources=sources, token_budget=0,
                                       weights=source_roles._defaults()["source_weights"], seed=0)
    assert len(corpus) == 30 and mix["source"].tolist() == ["jsonl:lecture_notes"]
    fun, pivot, steps_tbl = steps.funnel_tables(docs, reports)
    assert list(steps_tbl["step"]) == ["quality:length", "mixture"]
    m = steps.summary_metrics(docs, corpus, reports, clf, steps.DecontamOutcome(note="none"))
    assert m["docs_final"] == 30 and m["classifier_auc_round1"] is None


def test_pool_emptied_by_filters_skips_the_classifier_and_says_why(tmp_path):
    sources = ["embedded:champ_solutions", "embedded:math_package_docstrings"]
    docs, _, _ = steps.load_documents(sources, MODEL, max_docs=40)
    reports = []
    cur, _, _ = steps.quality_filter(docs, reports, quality=["length"], min_chars=10 ** 6, max_chars=10 ** 7)
    assert cur == []
    cur, clf = steps.classify_pool(cur, reports, sources=sources, positives=["embedded:champ_solutions"],
                                   negatives=["embedded:stdlib_prose"], classify_sources=["embedded:math_package_docstrings"],
                                   max_docs=40)
    assert clf.result is None and "no documents of ['math_package_docstrings'] are left" in clf.note
    with pytest.raises(ValueError, match="every document was filtered out"):
        steps.select_mixture(cur, reports, sources=sources, token_budget=1000)


def test_two_round_classifier_on_a_pool_filters_only_the_pool(tmp_path):
    sources = ["embedded:champ_solutions", "embedded:math_package_docstrings"]
    docs, _, _ = steps.load_documents(sources, MODEL, max_docs=60)
    reports = []
    cur, clf = steps.classify_pool(docs, reports, sources=sources, positives=["embedded:champ_solutions",
                                                                              "embedded:rg_gsm_symbolic"],
                                   negatives=["embedded:stdlib_prose"], classify_sources=["embedded:math_package_docstrings"],
                                   max_docs=60, max_negatives=120, epochs=5, out_dir=tmp_path)
    assert clf.result is not None and len(clf.metrics) == 2 and (tmp_path / "classifier_round2.bin").exists()
    champ = [d for d in cur if d["source"] == "champ_solutions"]
    assert len(champ) == 60, "positives that are corpus sources are never judged"
    assert reports[-1].step == "math_classifier" and set(reports[-1].docs_in) == {"champ_solutions",
                                                                                  "math_package_docstrings"}
    figures.classifier_pool(clf, 0.5)
