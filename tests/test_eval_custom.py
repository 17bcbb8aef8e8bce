"""Custom benchmarks in the layouts public math sets ship in (no model needed)."""
import json

import pytest

from mathcode.evaluate.custom import load_custom
from mathcode.evaluate import benchmarks as B, steps as pipeline
from mathcode.evaluate.custom import CustomBenchmark, load_custom_benchmark, parse_options
from mathcode.evaluate.fewshot import family
from mathcode.evaluate.harness import score


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_svamp_layout_json_list_with_template_and_float_answers(tmp_path):
    f = tmp_path / "SVAMP.json"
    f.write_text(json.dumps([
        {"ID": "chal-1", "Body": "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack",
         "Question": "How much do you have to pay to buy each pack?", "Equation": "( 76.0 - 25.0 )", "Answer": 51.0},
        {"ID": "chal-2", "Body": "Dan had $ 3 left with him after he bought a candy bar. If he had a total of $ 4 at the start",
         "Question": "How much did the candy bar cost?", "Equation": "( 4.0 - 3.0 )", "Answer": 1.0}], indent=2))
    items = load_custom(f, name="svamp")                                   # fields guessed: Body + Question
    assert [it.id for it in items] == ["chal-1", "chal-2"] and items[0].answer == "51"
    assert items[0].question.endswith("each pack? ".strip()) and items[0].question.startswith("Each pack")
    assert {it.kind for it in items} == {"number"} and {family(it) for it in items} == {"gsm8k"}
    assert score(items[0], "The answer is 76 - 25 = 51.")["correct"]


def test_aqua_layout_jsonl_options_with_prefixes(tmp_path):
    f = _jsonl(tmp_path / "aqua.json", [                                     # JSONL although named .json
        {"question": "A car travels 60 km in 1.5 hours. Its speed in km/h is", "options": ["A)30", "B)40", "C)45", "D)90",
         "E)None"], "rationale": "60 / 1.5 = 40", "correct": "B"},
        {"question": "What is 2 + 2?", "options": ["A)3", "B)4", "C)5", "D)6", "E)7"], "rationale": "", "correct": "B"}])
    items = load_custom(f, name="aqua")
    assert items[0].choices == ["30", "40", "45", "90", "None"] and items[0].answer == "B"
    assert items[0].kind == "choice" and family(items[0]) == "choice"
    assert score(items[0], "The answer is 40.")["correct"] and score(items[0], "The answer is (B)")["correct"]


def test_mathqa_layout_option_string_and_lowercase_letter(tmp_path):
    f = tmp_path / "mathqa.json"
    f.write_text(json.dumps([{"Problem": "the banker ' s gain on a sum due 3 years hence at 10 % per annum is rs . 36 .",
                              "options": "a ) rs . 400 , b ) rs . 300 , c ) rs . 500 , d ) rs . 350 , e ) none",
                              "correct": "a", "Rationale": "..."}]))
    (it,) = load_custom(f)
    assert it.choices == ["rs . 400", "rs . 300", "rs . 500", "rs . 350", "none"] and it.answer == "A"


def test_choices_parsed_from_question_text(tmp_path):
    f = _jsonl(tmp_path / "mc.jsonl", [{"input": "Which is prime? (A) 4 (B) 6 (C) 7 (D) 9", "target": "(C)"}])
    (it,) = load_custom_benchmark(CustomBenchmark(str(f), "mc", kind="choice"))
    assert it.question == "Which is prime?" and it.choices == ["4", "6", "7", "9"] and it.answer == "C"
    assert parse_options("a plain sentence (a) with an aside") is None


def test_list_answers_hashes_boxed_and_csv(tmp_path):
    mawps = _jsonl(tmp_path / "mawps.jsonl", [{"sQuestion": "Tom has 3 apples and gets 2 more. How many?",
                                               "lSolutions": [5.0]}])
    assert load_custom(mawps)[0].answer == "5"
    sets = _jsonl(tmp_path / "roots.jsonl", [{"problem": "Roots of x^2-1?", "answer": ["-1", "1"]}])
    assert load_custom(sets)[0].answer == "-1, 1"
    hub = _jsonl(tmp_path / "gsm_hub.jsonl", [{"question": "2+3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"}])
    (it,) = load_custom(hub)
    assert it.answer == "5" and it.kind == "number" and "<<2+3=5>>" in it.solution
    boxed = _jsonl(tmp_path / "boxed.jsonl", [{"problem": "Half of 1?", "solution": "It is $\\boxed{\\frac12}$."}])
    (it,) = load_custom(boxed, {"answer": "solution"})
    assert it.answer == "\\frac12" and it.kind == "math"
    csvf = tmp_path / "set.csv"
    csvf.write_text('question,answer\n"What is 1,000 + 1?","1,001"\nWhat is 2*3?,6\n')
    items = load_custom(csvf)
    assert [it.answer for it in items] == ["1001", "6"] and items[0].meta["line"] == 2


def test_kind_tolerance_and_family_per_benchmark_not_per_item(tmp_path):
    f = _jsonl(tmp_path / "mixed.jsonl", [{"q": "2+2?", "a": "4"}, {"q": "Factor x^2-1", "a": "(x-1)(x+1)"}])
    items = load_custom(f, {"question": "q", "answer": "a"}, rel_tol=0.05)
    assert {it.kind for it in items} == {"math"} and {family(it) for it in items} == {"math"}
    assert score(items[0], "The answer is 4.1.")["correct"]                   # its own tolerance
    items = load_custom(f, {"question": "q", "answer": "a"}, family="ocw")
    assert {family(it) for it in items} == {"ocw"} and not score(items[0], "The answer is 4.1.")["correct"]


def test_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"q": "a", "a": "1"}) + "\n\n" + '{"q": "b", "a": \n')
    with pytest.raises(B.BenchmarkError, match=r"bad.jsonl:3: malformed JSON"):
        load_custom(bad, {"question": "q", "answer": "a"})
    missing = _jsonl(tmp_path / "missing.jsonl", [{"q": "a", "a": "1"}, {"q": "b"}])
    with pytest.raises(B.BenchmarkError, match=r"missing.jsonl:2: field 'a' \(mapped to answer\)"):
        load_custom(missing, {"question": "q", "answer": "a"})
    arr = tmp_path / "arr.json"
    arr.write_text('[\n {"q": "a", "a": "1"},\n {"q": "b", "a": 2},\n {"q": "c" "a": 3}\n]\n')
    with pytest.raises(B.BenchmarkError, match=r"arr.json:4: not valid JSON"):
        load_custom(arr, {"question": "q", "answer": "a"})
    arr.write_text('[\n {"q": "a", "a": "1"},\n {"q": "b"}\n]\n')
    with pytest.raises(B.BenchmarkError, match=r"arr.json:3: field 'a'"):
        load_custom(arr, {"question": "q", "answer": "a"})
    nofield = _jsonl(tmp_path / "x.jsonl", [{"zzz": "a"}])
    with pytest.raises(B.BenchmarkError, match=r"x.jsonl:1: no field for 'question'"):
        load_custom(nofield)
    with pytest.raises(B.BenchmarkError, match="not found"):
        load_custom(tmp_path / "nope.jsonl")


def test_relative_path_from_working_directory_and_several_customs(tmp_path, monkeypatch):
    _jsonl(tmp_path / "one.jsonl", [{"question": "1+1?", "answer": "2"}])
    _jsonl(tmp_path / "two.jsonl", [{"problem": "Which? A) x B) y", "answer": "B"}])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MATHCODE_SHARED", str(tmp_path / "absent"))
    items, notes = pipeline.benchmark_items([], limit=5, custom_benchmarks=[
        "one.jsonl", {"file": "two.jsonl", "name": "two", "kind": "choice"}])
    assert [(it.benchmark, it.kind) for it in items] == [("one", "number"), ("two", "choice")]
    assert items[1].choices == ["x", "y"]
    with pytest.raises(B.BenchmarkError, match="unknown keys"):
        pipeline.benchmark_items([], limit=5, custom_benchmarks=[{"file": "one.jsonl", "colour": "red"}])


def test_parquet_layout(tmp_path):
    import pandas as pd
    f = tmp_path / "hub_export.parquet"
    pd.DataFrame({"problem": ["What is 3*3?", "Roots of x^2=4?"], "answer": ["9", "\\pm 2"],
                  "choices": [None, None]}).to_parquet(f)
    items = load_custom(f)
    assert [it.answer for it in items] == ["9", "\\pm 2"] and {it.kind for it in items} == {"math"}
