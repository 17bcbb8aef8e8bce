"""The verifier against REAL translator replies labelled by hand (tests/fixtures/verify_labelled.jsonl; how they
were made and read: bench/README.md, "Verifier: precision and recall"). Every block goes through the kit's path
(parse -> real sandbox -> block_row -> verify.judge); the kept data must stay clean and the good data kept."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathcode.translate import parse as PA
from mathcode.translate.execution import Sandbox
from mathcode.translate.translate import TranslateConfig, block_row

FIXTURE = Path(__file__).parent / "fixtures" / "verify_labelled.jsonl"
CASES = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def judged():
    rows = []
    with Sandbox(workers=2) as box:
        for c in CASES:
            blocks, err = PA.parse_reply(c["reply"])
            todo = [] if err else blocks[: c["max_blocks"]]
            runs = iter(box.run_many([b.code for b in todo if not b.parse_error]))
            cfg = TranslateConfig(max_blocks=c["max_blocks"])
            for k, label in enumerate(c["labels"]):
                if k >= len(todo):
                    rows.append((c, label, "unparsable"))
                    continue
                b = todo[k]
                row = block_row(c["passage"], b, None if b.parse_error else next(runs), cfg, box)
                rows.append((c, label, row["outcome"]))
    return rows


def test_the_labelled_set_is_real_and_labelled():
    assert len(CASES) >= 60 and all(c["labels"] and c["note"] for c in CASES)
    assert {c["model"] for c in CASES} >= {"qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"}
    labels = [lab for c in CASES for lab in c["labels"]]
    assert set(labels) == {"correct", "incorrect"} and labels.count("correct") >= 15


def test_precision_and_recall_on_real_replies(judged):
    tp = [c["passage"]["id"] for c, lab, o in judged if lab == "correct" and o == "verified"]
    fp = [(c["passage"]["id"], c["note"]) for c, lab, o in judged if lab != "correct" and o == "verified"]
    fn = [(c["passage"]["id"], o, c["note"]) for c, lab, o in judged if lab == "correct" and o != "verified"]
    precision = len(tp) / max(1, len(tp) + len(fp))
    recall = len(tp) / max(1, len(tp) + len(fn))
    assert precision >= 0.98, fp
    assert recall >= 0.90, fn
