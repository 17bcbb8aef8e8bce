"""Passages, prompt, parsing and verification on real text (no model needed)."""
from __future__ import annotations

import json

import pytest

from mathcode.translate import parse as PA, passages as PS, prompt as PR, verify as V
from mathcode.translate.translate import block_text, load_corpus, passage_text, shard_of


# --- passages ----------------------------------------------------------------------------------------
def test_passages_find_latex_arithmetic_and_calculator_marks_with_context():
    text = ("A shop sells pens for 3 dollars each.\n\nAnna buys 4 pens, so she pays 3*4 = 12 dollars.\n\n"
            "Nothing to compute here at all.\n\nThe area is $\\pi r^2$ with $r = 2$, i.e. \\[A = \\pi \\cdot 2^2 = 12.57\\].\n\n"
            "Only symbols here: $x$, $r = 2$ and $x^2-y^2=(x+y)(x-y)$.\n\n"
            "Tom had <<5+7=12>>12 apples.")
    ps = PS.split_document({"id": "d", "text": text, "source": "s"}, max_passage_chars=60, max_passages=5)
    assert [p.id for p in ps] == ["d#p0", "d#p1", "d#p2"]
    assert "arithmetic" in ps[0].kinds and ps[0].context.startswith("A shop sells pens")
    assert {"latex_inline", "latex_display"} <= set(ps[1].kinds)
    assert "calculator" in ps[2].kinds


def test_prose_without_computations_yields_no_passage():
    doc = {"id": "p", "text": "The logging module writes records.\n\nHandlers send them to files.", "source": "x"}
    ps, counts = PS.split_corpus([doc])
    assert ps == [] and counts == {"documents": 1, "documents_with_passages": 0, "passages": 0}


def test_real_benchmark_solutions_yield_passages(benchmarks_dir):
    rows = [json.loads(line) for line in open(benchmarks_dir / "math_test.jsonl")][:30]
    docs = [{"id": r["id"] if "id" in r else str(i), "text": r["problem"] + "\n\n" + r["solution"], "source": r["type"]}
            for i, r in enumerate(rows)]
    ps, counts = PS.split_corpus(docs)
    # MATH solutions are full of LaTeX, but only about half carry out a numeric computation (42\cdot 56 = 2352);
    # the rest are symbolic manipulations and equations in unknowns, which give the verifier nothing to check
    assert 10 <= counts["documents_with_passages"] <= 25, counts
    assert all(PS.find_computations(p.text) for p in ps)


# --- prompt ------------------------------------------------------------------------------------------
def test_prompt_has_four_fields_and_optional_worked_example(tmp_path):
    m = PR.build_messages("Compute $2+2=4$.", worked_example=True)
    assert [x["role"] for x in m] == ["user", "assistant", "user"]
    for f in PR.FIELDS:
        assert f in m[0]["content"] and f in m[1]["content"]
    assert "Compute $2+2=4$." in m[-1]["content"]
    assert len(PR.build_messages("x", worked_example=False)) == 1
    bad = tmp_path / "p.txt"
    bad.write_text("no placeholder")
    with pytest.raises(ValueError, match="passage"):
        PR.load_instruction(str(bad))
    with pytest.raises(FileNotFoundError, match="prompt_file"):
        PR.load_instruction(str(tmp_path / "missing.txt"))


# --- parsing -----------------------------------------------------------------------------------------
def test_parse_worked_example_reply():
    blocks, err = PA.parse_reply(PR.EXAMPLE_REPLY)
    assert err == "" and [b.result for b in blocks] == ["84", "42"]
    assert all(not b.parse_error for b in blocks) and "print(length * width)" in blocks[0].code


def test_parse_tolerates_numbering_missing_fences_and_result_in_expression():
    reply = ("1. Conditions Needed: a = 3\n2. Computation Expression: $3 \\times 4 = 12$\n"
             "3. Python Code Snippet:\na = 3\nprint(a * 4)\n\n"
             "### Conditions\nnone\n### Computation Result\n$\\frac{1}{2}$\n```python\n# Result: not a header\nprint(1/2)\n```")
    blocks, err = PA.parse_reply(reply)
    assert err == "" and len(blocks) == 2
    assert blocks[0].result == "12" and blocks[0].result_from_expression and blocks[0].code == "a = 3\nprint(a * 4)"
    assert blocks[1].result == "\\frac{1}{2}" and "# Result: not a header" in blocks[1].code


def test_unparsable_replies_keep_their_reason():
    assert PA.parse_reply("")[1] == "empty reply"
    assert "no field headers" in PA.parse_reply("The answer is 22.")[1]
    blocks, _ = PA.parse_reply("**Computation Result:** 5\n")
    assert blocks[0].parse_error == "missing code"


# --- verification ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stated,printed", [
    ("84", "84\n"), ("84 square metres", "84.0"), ("2,340", "2340"), ("\\frac{3}{4}", "0.75"),
    ("3.14", "3.14159"), ("\\frac{\\sqrt{3}}{2}", "0.8660254037844386"), ("\\frac{\\sqrt{3}}{2}", "sqrt(3)/2"),
    ("2\\sqrt{2}", "2*sqrt(2)"), ("x^2+1", "x**2 + 1"), ("(1, 2)", "(1, 2)"), ("\\$28,080", "The total is 28080"),
])
def test_equivalent_results_verify(stated, printed):
    ok, method, _ = V.compare(stated, printed)
    assert ok, (stated, printed, method)


@pytest.mark.parametrize("stated,printed", [("84", "85"), ("3.14", "3.16"), ("x^2+1", "x**2"), ("12", "")])
def test_different_results_do_not_verify(stated, printed):
    assert not V.compare(stated, printed)[0]


def test_judge_maps_runs_to_outcomes():
    from mathcode.translate.execution import RunResult
    b = PA.Block(index=0, result="12", code="print(3 * 4)")
    assert V.judge(b, RunResult("ok", "12\n"))["outcome"] == "verified"
    assert V.judge(PA.Block(index=0, result="12", code="print(12)"), RunResult("ok", "12\n"))["outcome"] == "hardcoded"
    assert V.judge(b, RunResult("ok", "13\n"))["outcome"] == "wrong_result"
    assert V.judge(b, RunResult("ok", ""))["outcome"] == "no_output"
    assert V.judge(b, RunResult("timeout"))["outcome"] == "timeout"
    assert V.judge(b, RunResult("error", "", "Traceback\nEOFError: EOF"))["reason"] == "EOFError: EOF"
    assert V.judge(PA.Block(index=0, parse_error="missing code"), None)["outcome"] == "unparsable"


# --- output formats, corpus loading, sharding ----------------------------------------------------------
def test_output_formats():
    b = {"conditions": "12 m by 7 m", "expression": "12 \\times 7", "result": "84", "code": "print(12 * 7)"}
    t = block_text(b)
    assert t.splitlines()[:3] == ["12 m by 7 m", "$$12 \\times 7$$", "result: 84"] and "```python\nprint(12 * 7)\n```" in t
    assert passage_text({"text": "PASSAGE"}, [b], "interleaved").startswith("PASSAGE\n\n12 m by 7 m")
    assert passage_text({"text": "PASSAGE"}, [b], "paper") == t


def test_corpus_errors_name_file_and_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(ValueError, match=r"c.jsonl:2: duplicate id"):
        load_corpus(f)
    f.write_text('{"id": "a"}\n')
    with pytest.raises(ValueError, match=r"c.jsonl:1: .*'text'"):
        load_corpus(f)
    with pytest.raises(FileNotFoundError, match="corpus_file"):
        load_corpus(tmp_path / "none.jsonl")


def test_shards_partition_ids():
    ids = [f"doc-{i}" for i in range(200)]
    parts = [{i for i in ids if shard_of(i, 3) == k} for k in range(3)]
    assert set().union(*parts) == set(ids) and sum(map(len, parts)) == len(ids) and all(parts)


def test_vllm_backend_says_how_to_install_when_missing():
    import importlib.util
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here; the missing-package message cannot be observed")
    from mathcode.generation import make_generator
    with pytest.raises(ImportError, match="pip install vllm"):
        make_generator("vllm", model="embedded:smollm2-135m-instruct")
