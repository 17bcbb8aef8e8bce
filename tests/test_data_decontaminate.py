"""Decontamination against the real benchmark test files in ../shared/data/benchmarks."""
import json
import random

import pytest

from mathcode import paths
from mathcode.data import decontaminate as D
from mathcode.data.sources import load_sources

BENCH = paths.benchmarks_dir()
needs_bench = pytest.mark.skipif(BENCH is None, reason="../shared/data/benchmarks is absent (real test sets needed)")


@pytest.fixture(scope="module")
def decon():
    return D.Decontaminator(D.load_benchmarks(str(BENCH)), n=13)


@needs_bench
def test_gsm_symbolic_items_are_flagged_against_gsm8k_test(decon):
    docs = load_sources(["embedded:rg_gsm_symbolic"], max_docs=60, seed=0)
    kept, rep = decon.apply(docs)
    hits = [r for r in rep.removed if r["benchmark"] == "gsm8k"]
    assert len(hits) >= 10, "gsm_symbolic comes from GSM8K test templates: 13-gram hits expected"
    assert all(len(h["ngram"].split()) == 13 and h["benchmark_id"] for h in hits)


@needs_bench
def test_planted_math_problem_is_flagged_and_clean_prose_is_not(decon):
    rows = [json.loads(l) for l in open(BENCH / "math_test.jsonl")]
    item = random.Random(1).choice([r for r in rows if len(r["problem"].split()) > 25])
    planted = {"id": "planted", "source": "blog", "meta": {},
               "text": "Here is a nice exercise I found.\n\n" + item["problem"] + "\n\nTry it before reading on."}
    prose = load_sources(["embedded:stdlib_prose"], max_docs=300, seed=0)
    kept, rep = decon.apply([planted] + prose)
    assert [r["id"] for r in rep.removed] == ["planted"]
    assert rep.removed[0]["benchmark"] == "math" and rep.removed[0]["benchmark_id"] == str(item["id"])


@needs_bench
def test_exact_match_catches_short_problems(decon):
    rows = [json.loads(l) for l in open(BENCH / "math_test.jsonl")]
    short = next(r for r in rows if 3 < len(r["problem"].split()) < 13)
    m = decon.match(short["problem"].upper())
    assert m and m["reason"] == "exact_match" and m["benchmark"] == "math"


def test_unknown_layout_names_file_and_line(tmp_path):
    f = tmp_path / "weird_test.jsonl"
    f.write_text('{"prompt": "2+2?", "target": "4"}\n')
    with pytest.raises(D.BenchmarkLayoutError, match=r"weird_test\.jsonl:1: unknown benchmark layout.*prompt"):
        D.load_benchmarks([str(f)])


def test_no_benchmarks_means_explicitly_empty():
    assert len(D.load_benchmarks("none")) == 0


def test_default_without_shared_and_offline_indexes_the_eval_proxy(monkeypatch, tmp_path):
    # offline, the only benchmark is phase 4's gsm_symbolic proxy (questions and solutions; eval-owned behaviour)
    monkeypatch.setenv("MATHCODE_SHARED", str(tmp_path / "absent"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert paths.benchmarks_dir() is None
    b = D.load_benchmarks("default")
    assert list(b.items) == ["gsm_symbolic_proxy"] and len(b) > 0
