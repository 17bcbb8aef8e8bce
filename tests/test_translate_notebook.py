"""Notebook 02 runs headlessly by papermill on a custom JSONL, on a corpus without computations, and
fails clearly without its input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mathcode import paths

pytestmark = pytest.mark.slow
NB = paths.project_root() / "notebooks" / "02_translation.ipynb"
SMALL = dict(max_passages=2, max_new_tokens=24, cpu_threads=1, sandbox_workers=1, docs_per_chunk=4)


def _run(tmp_path, **params):
    import papermill as pm
    return pm.execute_notebook(str(NB), str(tmp_path / "out.ipynb"), parameters=params, kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path))


def _rows(p: Path):
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def test_notebook_on_custom_jsonl(tmp_path):
    corpus = tmp_path / "mine.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "source": "drills", "text": "Each crate has 6 bottles.\n\nFive crates hold 6*5 = 30 bottles."},
        {"id": "b", "source": "latex", "text": "Let $x = 3$.\n\nThen $3^2 + 1 = 10$."},
        {"id": "c", "source": "prose", "text": "This paragraph has no computation in it."}]))
    run = tmp_path / "run"
    _run(tmp_path, run_dir=str(run), corpus_file=str(corpus), **SMALL)
    d = run / "02_translation"
    status = json.loads((d / "phase.json").read_text())
    assert status["status"] == "complete"
    m = status["metrics"]
    assert m["documents"] == 3 and m["documents_with_passages"] == 2 and m["passages"] == 2
    assert m["isolation"] in ("bwrap", "process") and 0.0 <= m["yield_verified_per_passage"] <= 3
    blocks = _rows(d / "blocks.jsonl")
    for b in blocks:
        assert {"id", "passage_id", "doc_id", "source", "outcome", "reason"} <= set(b)
    for t in _rows(d / "translated.jsonl"):
        assert {"id", "doc_id", "source", "text", "meta"} <= set(t) and "```python" in t["text"]
    assert len(_rows(d / "rejected.jsonl")) == sum(b["outcome"] != "verified" for b in blocks)
    assert (d / "figures" / "yield_funnel.png").exists() and (d / "tables" / "yield_funnel.csv").exists()
    sandbox = json.loads((d / "sandbox.json").read_text())
    assert sandbox["isolation"] == m["isolation"] and sandbox["description"]


def test_no_passages_gives_empty_valid_outputs(tmp_path):
    corpus = tmp_path / "prose.jsonl"
    corpus.write_text(json.dumps({"id": "p", "text": "Handlers send log records to files.", "source": "s"}) + "\n")
    run = tmp_path / "run"
    nb = _run(tmp_path, run_dir=str(run), corpus_file=str(corpus), **SMALL)
    d = run / "02_translation"
    assert json.loads((d / "phase.json").read_text())["status"] == "complete"
    for name in ("translated.jsonl", "blocks.jsonl", "rejected.jsonl"):
        assert (d / name).exists() and (d / name).read_text() == ""
    text = json.dumps(nb["cells"])
    assert "No passages found" in text


def test_missing_phase1_corpus_is_a_clear_error(tmp_path):
    import papermill as pm
    run = tmp_path / "fresh"
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run(tmp_path, run_dir=str(run), **SMALL)
    assert "corpus.jsonl" in str(e.value) and "run phase 'data' first" in str(e.value)
    assert json.loads((run / "02_translation" / "phase.json").read_text())["status"] != "complete"


def test_unreachable_server_fails_naming_the_url_and_nothing_is_complete(tmp_path):
    import socket
    import papermill as pm
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "Five crates hold 6*5 = 30 bottles.", "source": "s"}) + "\n")
    run = tmp_path / "run"
    with pytest.raises(pm.PapermillExecutionError) as e:
        _run(tmp_path, run_dir=str(run), corpus_file=str(corpus), backend="openai", base_url=url,
             model="served-model", **SMALL)
    assert url in str(e.value)
    d = run / "02_translation"
    assert json.loads((d / "phase.json").read_text())["status"] == "running"
    assert not (d / "translated.jsonl").exists()
