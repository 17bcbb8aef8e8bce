"""Scoring on the real gold answers of ../shared in the forms models write them (no model needed)."""
import pytest

from mathcode.evaluate import benchmarks as B
from mathcode.evaluate.harness import score


def _forms(gold: str) -> list[str]:
    """Ways a completion states a gold answer: boxed, Minerva, 'The answer is', GSM8K '####'."""
    return [f"So we get $\\boxed{{{gold}}}$.",
            f"Final Answer: The final answer is ${gold}$. I hope it is correct.",
            f"Putting it together, the answer is ${gold}$.",
            f"#### {gold}"]


def test_gsm8k_golds_in_every_form(benchmarks_dir):
    items = B.load_benchmark("gsm8k", limit=150)
    for it in items:
        for text in _forms(it.answer) + [f"The answer is 2 * 3 = {it.answer}.", f"The answer is ${it.answer}."]:
            assert score(it, text)["correct"], (it.id, text)
        assert not score(it, f"The answer is {float(it.answer) + 1:g}.")["correct"]


def test_math_golds_in_every_form(benchmarks_dir):
    items = B.load_benchmark("math", limit=400)
    bad = [(it.id, t) for it in items for t in _forms(it.answer) if not score(it, t)["correct"]]
    assert len(bad) <= 0.02 * 4 * len(items), bad[:10]
    dot = [it for it in B.load_benchmark("math") if it.answer.rstrip().endswith(".")]
    assert dot and all(score(it, it.solution)["correct"] for it in dot)          # its own solution scores


def test_percent_and_text_golds(benchmarks_dir):
    by_id = {it.id: it for it in B.load_benchmark("math")}
    it = by_id["geometry/1032"]
    assert it.answer == "7.2\\%"
    assert score(it, "Final Answer: The final answer is $7.2\\%$. I hope it is correct.")["correct"]
    assert score(it, "The answer is 7.2%.")["correct"]


def test_ocw_golds_with_tolerance(benchmarks_dir):
    items = B.load_benchmark("ocw")
    ok = sum(score(it, f"The final answer is ${it.answer}$.", ocw_rel_tol=0.01)["correct"] for it in items)
    assert ok >= 0.95 * len(items)


@pytest.mark.parametrize("name", ["sat_math", "mmlu_math"])
def test_choice_golds_by_letter_and_by_text(benchmarks_dir, name):
    items = B.load_benchmark(name, limit=200)
    for it in items:
        assert score(it, f"The answer is ({it.answer}).")["correct"]
        assert score(it, f"Answer: {it.answer}")["correct"]
    by_text = [score(it, f"The answer is {it.choices['ABCD'.index(it.answer)]}.") for it in items]
    wrong = [i for i, s in enumerate(by_text) if s["extracted"] not in (None, items[i].answer)]
    assert not wrong, [(items[i].id, by_text[i]) for i in wrong[:5]]      # never the wrong option
    assert sum(s["correct"] for s in by_text) >= 0.8 * len(items)
