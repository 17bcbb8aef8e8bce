"""The offline GSM8K proxy shares no text with any training source (by construction: held-out templates)."""
import re

import pytest

from mathcode import embedded as E
from mathcode.data.sources import SourceError
from mathcode.data.decontaminate import Benchmarks, Decontaminator, load_benchmarks
from mathcode.evaluate import benchmarks as B


def _proxy_index(items):
    rows = [(it.id, it.question) for it in items] + [(it.id + "#solution", it.solution) for it in items if it.solution]
    return Decontaminator(Benchmarks(items={"proxy": rows}, origin={"proxy": "test"}))


def test_proxy_templates_are_never_used_for_training():
    proxy = B.load_benchmark("gsm_symbolic_proxy", limit=60, seed=0)
    assert len(proxy) == 60 and all(it.meta["proxy"] and it.solution for it in proxy)
    assert {it.meta["template"] for it in proxy} <= E.GSM_SYMBOLIC_HELDOUT
    train = list(E.iter_embedded("rg_gsm_symbolic", max_docs=300, seed=0))
    assert len(train) == 300 and not {d["meta"]["template"] for d in train} & E.GSM_SYMBOLIC_HELDOUT


@pytest.mark.slow
def test_no_training_source_overlaps_the_proxy():
    """13-gram decontamination of every embedded training source against proxy questions AND solutions."""
    proxy = B.load_benchmark("gsm_symbolic_proxy", limit=100, seed=0) + B.load_benchmark("gsm_symbolic_proxy", limit=40, seed=7)
    dec = _proxy_index(proxy)
    assert dec.match(proxy[0].question) and dec.match("Some text. " + proxy[3].solution)    # the check can fire
    checked = []
    for name in E.EMBEDDED:
        try:
            docs = list(E.iter_embedded(name, max_docs=150, seed=0))
        except SourceError:              # a source that cannot be built here cannot be in a training corpus either
            continue
        hits = [d["id"] for d in docs if dec.match(d["text"])]
        assert not hits, (name, hits[:3])
        checked.append(name)
    assert {"rg_gsm_symbolic", "rg_math_drills", "champ_solutions"} <= set(checked)


def test_decontamination_indexes_solutions_and_uses_the_proxy_offline(tmp_path, monkeypatch, benchmarks_dir):
    b = load_benchmarks(str(benchmarks_dir / "gsm8k_test.jsonl"))
    ids = [i for i, _ in b.items["gsm8k"]]
    assert any(i.endswith("#solution") for i in ids)
    item = B.load_benchmark("gsm8k", limit=1)[0]
    dec = Decontaminator(b)
    doc = "A worked example: " + re.sub(r"<<[^>]*>>", "", item.solution)
    assert dec.match(doc)
    questions_only = Benchmarks(items={"gsm8k": [r for r in b.items["gsm8k"] if not r[0].endswith("#solution")]},
                                origin={"gsm8k": "test"})
    assert Decontaminator(questions_only).match(doc) is None              # it is the solution index that fires
    monkeypatch.setenv("MATHCODE_SHARED", str(tmp_path / "absent"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    off = load_benchmarks("default")
    assert "gsm_symbolic_proxy" in off.items and len(off) > 200
