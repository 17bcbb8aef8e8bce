"""Loaders on the real ../shared test sets, custom files by field mapping, selection, statistics."""
import json

import pytest

from mathcode.evaluate.custom import load_custom
from mathcode.evaluate import benchmarks as B, compare, steps as pipeline
from mathcode.evaluate.equivalence import is_equivalent
from mathcode.evaluate.extract import extract_answer


@pytest.mark.parametrize("name,count", [("gsm8k", 1319), ("math", 5000), ("sat_math", 32), ("ocw", 272),
                                        ("mmlu_math", 964)])
def test_counts_match_readme(benchmarks_dir, name, count):
    items = B.load_benchmark(name)
    assert len(items) == count
    assert len({it.id for it in items}) == count
    assert all(it.question and it.answer for it in items)


def test_fields_per_benchmark(benchmarks_dir):
    g = B.load_benchmark("gsm8k", limit=3)
    assert [it.answer for it in g] == ["18", "3", "70000"] and "<<" in g[0].solution
    m = B.load_benchmark("math", levels=[5], subjects=["Geometry"])
    assert m and all(it.meta["level"] == "Level 5" and it.meta["subject"] == "Geometry" for it in m)
    sat = B.load_benchmark("sat_math")
    assert all(len(it.choices) == 4 and it.answer in "ABCD" for it in sat)
    mm = B.load_benchmark("mmlu_math")
    assert {it.meta["subject"] for it in mm} == set(B.MMLU_MATH_TOPICS)


def test_every_math_gold_scores_against_its_own_solution(benchmarks_dir):
    """The gold (last boxed) must round-trip through extraction + equivalence for the scorer to be fair."""
    items = B.load_benchmark("math", limit=300)
    bad = [it.id for it in items if not is_equivalent(extract_answer(it.solution, "math")[0], it.answer, "math")]
    assert len(bad) <= 3, bad


def test_subset_first_and_random(benchmarks_dir):
    first = B.load_benchmark("gsm8k", limit=5)
    assert [it.id for it in first] == [f"gsm8k-test-{i}" for i in range(5)]
    r1 = B.load_benchmark("gsm8k", limit=5, seed=1)
    assert [it.id for it in r1] == [it.id for it in B.load_benchmark("gsm8k", limit=5, seed=1)]
    assert [it.id for it in r1] != [it.id for it in first]


def test_unknown_benchmark_lists_known():
    with pytest.raises(B.BenchmarkError, match="known: gsm8k, math, sat_math, ocw, mmlu_math"):
        B.load_benchmark("gsm9k")


def test_custom_jsonl_mapping_and_errors(tmp_path):
    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"q": "What is 6*7?", "meta": {"ans": "42"}}) + "\n"
                 + json.dumps({"q": "Pick the prime.", "opts": ["4", "6", "7", "9"], "meta": {"ans": 2}}) + "\n")
    items = load_custom(f, {"question": "q", "answer": "meta.ans", "choices": "opts"}, name="mine")
    assert [it.kind for it in items] == ["number", "choice"]
    assert items[1].answer == "C" and items[0].answer == "42"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"q": "a", "a": "1"}) + "\n" + json.dumps({"q": "b"}) + "\n")
    with pytest.raises(B.BenchmarkError, match=r"bad.jsonl:2: field 'a' \(mapped to answer\) is missing"):
        load_custom(bad, {"question": "q", "answer": "a"})
    with pytest.raises(B.BenchmarkError, match=r"bad.jsonl:1: no field for 'answer'"):
        load_custom(bad, {"question": "q"})
    with pytest.raises(B.BenchmarkError, match="are not roles"):
        load_custom(bad, {"question": "q", "answer": "a", "anwser": "a"})


def test_custom_json_list(tmp_path):
    f = tmp_path / "set.json"
    f.write_text(json.dumps({"data": [{"problem": "Simplify 2/4.", "sol": "\\boxed{\\frac12}", "a": "\\frac{1}{2}"}]}))
    (it,) = load_custom(f, {"question": "problem", "answer": "a", "solution": "sol"})
    assert it.kind == "math" and it.solution


def test_proxy_when_shared_is_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("MATHCODE_SHARED", str(tmp_path / "nothing"))
    items, notes = pipeline.benchmark_items(["gsm8k", "math"], limit=3)
    assert len(items) == 3 and all(it.benchmark == B.PROXY_NAME and it.meta["proxy"] for it in items)
    assert any("NOT as GSM8K" in n for n in notes) and any(n.startswith("math: skipped") for n in notes)
    with pytest.raises(B.BenchmarkError, match="is absent"):
        B.load_benchmark("gsm8k")


def test_choose_models_and_adapter_base_check(tmp_path):
    ms = pipeline.models_to_evaluate("embedded:smollm2-135m-instruct", adapter_dir="/a", models=["big=org/m@/ad"])
    assert [(m.label, m.adapter) for m in ms] == [("base", None), ("base+adapter", "/a"), ("big", "/ad")]
    (tmp_path / "mathcode_adapter.json").write_text(json.dumps({"base_model": "embedded:other"}))
    from mathcode.models import ModelSpecError
    with pytest.raises(ModelSpecError, match="trained on 'embedded:other'"):
        pipeline.check_adapter_base(tmp_path, "embedded:smollm2-135m-instruct")


def test_wilson_and_the_paired_difference():
    lo, hi = compare.wilson(0, 10)
    assert lo == 0 and 0.25 < hi < 0.35
    lo, hi = compare.wilson(5, 10)
    assert lo < 0.5 < hi
    d, lo, hi = compare.paired_difference([0, 0, 0, 0], [1, 1, 1, 1])
    assert d == hi == 1 and 0 < lo < 1
    rows = [{"model": m, "benchmark": "b", "item_id": str(i), "correct": c, "gold": "1", "extracted": "1",
             "completion": ""} for m, cs in (("base", [1, 0, 0, 1]), ("new", [1, 1, 0, 0])) for i, c in enumerate(cs)]
    diff = compare.differences(rows, "base")
    assert diff.loc[0, "wrong_to_right"] == 1 and diff.loc[0, "right_to_wrong"] == 1 and diff.loc[0, "diff"] == 0
    fl = compare.flipped(rows, "base", "new")
    assert sorted(fl.direction) == ["right→wrong", "wrong→right"]
