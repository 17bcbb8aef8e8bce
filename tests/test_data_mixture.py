"""Mixture budgets are honoured within a few percent, counted with the target model's tokenizer."""
import pytest

from mathcode.data import mixture
from mathcode.data.sources import load_sources


@pytest.fixture(scope="module")
def docs():
    d = load_sources(["embedded:champ_solutions", "embedded:rg_gsm_symbolic", "embedded:champ_concepts"],
                     max_docs=200, seed=0)
    mixture.count_tokens(d, mixture.token_counter("embedded:smollm2-135m-instruct"))
    return d


def test_weighted_budget_is_met_within_three_percent(docs):
    plan = mixture.budgets(docs, token_budget=30000, weights={"champ_solutions": 2, "rg_gsm_symbolic": 1,
                                                              "champ_concepts": 0.5})
    assert plan["champ_solutions"] == pytest.approx(30000 * 2 / 3.5, abs=1)
    chosen, rows = mixture.select(docs, plan, seed=0)
    for r in rows:
        assert r["shortfall"] == 0
        assert abs(r["selected_tokens"] - r["budget_tokens"]) <= 0.03 * r["budget_tokens"], r
    assert sum(d["meta"]["n_tokens"] for d in chosen) == pytest.approx(30000, rel=0.03)


def test_explicit_budgets_shortfall_and_zero_weight(docs):
    avail = sum(d["meta"]["n_tokens"] for d in docs if d["source"] == "champ_concepts")
    plan = mixture.budgets(docs, source_budgets={"champ_concepts": avail * 3, "rg_gsm_symbolic": 5000})
    chosen, rows = mixture.select(docs, plan)
    by = {r["source"]: r for r in rows}
    assert by["champ_concepts"]["selected_tokens"] == avail and by["champ_concepts"]["shortfall"] == 2 * avail
    assert abs(by["rg_gsm_symbolic"]["selected_tokens"] - 5000) <= 150
    plan = mixture.budgets(docs, weights={"champ_concepts": 0})
    assert plan["champ_concepts"] == 0 and plan["champ_solutions"] > 0


def test_unknown_source_in_weights_is_named(docs):
    with pytest.raises(ValueError, match="source_weights names sources.*champ_soluton"):
        mixture.budgets(docs, token_budget=100, weights={"champ_soluton": 1})


def test_token_counts_are_the_model_tokenizer(docs):
    count = mixture.token_counter("embedded:smollm2-135m-instruct")
    assert count(["hello world"]) == [2]
    assert all(d["meta"]["n_tokens"] > 0 for d in docs)
