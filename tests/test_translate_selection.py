"""Passage selection that prefers translatable steps (``passage_selection="translatable"``), on real passages.

The passages below are copied verbatim from the kit's embedded corpora (``rg_gsm_symbolic`` worked solutions and
``champ_solutions``, as ``bench/bench_translate.py`` draws them with ``--per-source 60 --seed 0``) and labelled by hand:
*translatable* = one computation on plain numbers whose stated result the expression gives, so a correct one-line
program can print it and verify; *not* = modular/power chains, identities in unknowns, a repeating decimal the
translator must retype, an unknown in the expression.
"""
from __future__ import annotations

import pytest

from mathcode.translate import passages as PS
from mathcode.translate import steps as W
from mathcode.translate.translate import select_docs

TRANSLATABLE = [   # (passage body, why a person calls it translatable)
    ("Solution: Liam hides 4 x 12 = 48 eggs.", "one product, 'x' as times, result stated"),
    ("Solution: Her cousin ate 3 + 10 = 13 slices.", "one sum"),
    ("Solution: Combining Wednesday and Monday, Thomas has 183 apples + 59 apples = 242 apples.", "units between"),
    ("Solution: For the green balls, 12 balls * €11/ball = €132.", "a price per unit"),
    ("There are 100 questions x 20/100 = 20 chemistry questions.", "a fraction of a count"),
    ("So far, this is a total of 96 + 16 = 112 letters.", "one sum"),
    ("In a day, they process 252 orders/day + 84 orders/day = 336 orders together.", "rates added"),
    ("7. Thus, the last person left is $300*2+1=601$.", "LaTeX, but plain numbers"),
    ("6. We have $23000*4=92000$ which contradicts $e=8$.", "LaTeX product with its result"),
]
NOT_TRANSLATABLE = [
    ("7. To verify that both are indeed possible, we can find $1^2+2*3^2 mod 8=19 mod 8=3$ and "
     "$3^2+2*2^2 mod 8=17 mod 8=1$.", "powers, mod, a chain and two computations"),
    ("2. $18^1980 mod 13=(5^4 mod 13)^(1980/4) mod 13=1$.", "modular powers"),
    ("3. Thus, $x_1^2+x_2^2+x_3^2=(x_1+x_2+x_3)^2-2(x_1*x_2+x_2*x_3+x_1*x_3)=(-3)^2-2*(-7)=23$.",
     "an identity in unknowns first"),
    ("After buying the tube of balls, Isabella has 71 + 45 + 24 + T = 140 + T = 196 toys for her collection.",
     "an unknown T in the expression"),
    ("4. Thus, $10^991-10 mod 991=10(10^990-1) mod 991=0$.", "Fermat's little theorem, not arithmetic"),
    ("7. We have $2^4=16$, so $(27)^(1/4)>2$, and $x_n=2/5*(27)^(1/4)>4/5$.", "powers (Python's ^ is XOR) and bounds"),
    ("2. We further have $3y^2 mod 3=0$ and $17 mod 3=2$.", "mod, an unknown"),
]


@pytest.mark.parametrize("text,why", TRANSLATABLE)
def test_translatable_passages_score_high(text, why):
    score, have = PS.translatable_score(text)
    assert score >= 0.8, (why, have)


@pytest.mark.parametrize("text,why", NOT_TRANSLATABLE)
def test_untranslatable_passages_score_low(text, why):
    score, have = PS.translatable_score(text)
    assert score < 0.8, (why, have)


def test_borderline_steps_rank_below_clean_ones():
    # a repeating decimal to retype: the labelled set has one such block correct ("48 * 0.3333333333333333 = 16")
    # and one incorrect ("18 x 0.6666666666666666 = 12.0"), so it is kept at the default threshold but ranked last
    clean = PS.translatable_score("Solution: Liam hides 4 x 12 = 48 eggs.")[0]
    for text in ("Solution: There are 18 x 0.6666666666666666 = 12.0 liters of water from the 18 liters apple drink.",
                 "It costs 3 x 4 = 13 dollars."):
        assert 0.8 <= PS.translatable_score(text)[0] < clean


def test_score_features_are_the_ones_documented():
    score, have = PS.translatable_score("Solution: Liam hides 4 x 12 = 48 eggs.")
    assert score == 1.0 and have == list(PS.SCORE_FEATURES)
    score, have = PS.translatable_score("It costs 3 x 4 = 13 dollars.")          # wrong stated result
    assert "result_checks" not in have and score == 0.8
    assert PS.translatable_score("Nothing to compute in this sentence.") == (0.0, [])


def test_context_is_not_scored():
    ctx = "We have $2^4 mod 5=1$ before."
    assert PS.translatable_score(ctx + "\n\nHe pays 3 * 4 = 12 dollars.", ctx)[0] == 1.0


def test_evaluate_only_arithmetic():
    assert PS._evaluate("£195/day * 12") == 2340
    assert PS._evaluate("(139+178)*2") == 634
    assert PS._evaluate("\\frac{3}{4} \\times 8") == 6
    assert PS._evaluate("__import__('os')") is None and PS._evaluate("2**10") is None and PS._evaluate("12") is None


@pytest.fixture(scope="module")
def embedded_docs():
    from mathcode.embedded import iter_embedded
    docs = []
    for s in ("champ_solutions", "rg_gsm_symbolic"):
        docs += [dict(d, source=d.get("source", s)) for d in iter_embedded(s, max_docs=40, seed=0)]
    return docs


def _cfg(selection, per_doc=1):
    return W.configure(max_passages_per_doc=per_doc, max_passage_chars=200, context_chars=300, passage_unit="line",
                       max_blocks=1, block_tokens=200, passage_selection=selection)


def test_selection_on_embedded_corpus_keeps_only_high_scores_with_stable_ids(embedded_docs):
    order, trans = _cfg("order", per_doc=50), _cfg("translatable", per_doc=50)
    n_all = n_kept = 0
    for d in embedded_docs:
        every = {p.id: p for p in order.split(d)}
        kept = trans.split(d)
        n_all, n_kept = n_all + len(every), n_kept + len(kept)
        for p in kept:
            assert p.id in every and every[p.id].text == p.text              # same ids and text as unselected
            assert PS.translatable_score(p.text, p.context)[0] >= 0.8
    assert 0 < n_kept < n_all


def test_select_docs_prefers_translatable_passages(embedded_docs):
    n = 12
    mean = {}
    for sel in ("order", "translatable"):
        cfg = _cfg(sel)
        chosen, info = select_docs(embedded_docs, n, cfg)
        assert info["passage_selection"] == sel and info["passages_selected"] == n
        ps = [p for d in chosen for p in cfg.split(d)]
        mean[sel] = sum(PS.translatable_score(p.text, p.context)[0] for p in ps) / len(ps)
        if sel == "translatable":
            assert min(PS.translatable_score(p.text, p.context)[0] for p in ps) >= 0.8
            assert len({p.source for p in ps}) == 2                              # round-robin over sources kept
    assert mean["translatable"] > mean["order"]


def test_bad_selection_parameters_are_refused():
    with pytest.raises(ValueError, match="passage_selection"):
        _cfg("best")
    with pytest.raises(ValueError, match="min_passage_score"):
        W.configure(passage_selection="translatable", min_passage_score=1.5)
