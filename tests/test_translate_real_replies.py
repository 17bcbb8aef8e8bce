"""Verification on REAL translator replies captured from Qwen2.5-Coder-0.5B-Instruct and SmolLM2-135M-Instruct
(llama.cpp, greedy, the kit's prompt) on demo/benchmark passages: parsed, run in the real sandbox, judged.

The expected outcome of every block was checked by hand when the fixture was captured
(tests/fixtures/translate_replies.jsonl: model, passage, reply, expected outcomes, and a note on why)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mathcode.translate import parse as PA
from mathcode.translate.execution import Sandbox
from mathcode.translate.translate import TranslateConfig, block_row

FIXTURE = Path(__file__).parent / "fixtures" / "translate_replies.jsonl"
CASES = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=1) as box:
        yield box


def _judge(case, box):
    blocks, err = PA.parse_reply(case["reply"])
    if err:
        return ["unparsable"], []
    cfg = TranslateConfig(max_blocks=case.get("max_blocks", 2))
    todo = blocks[: cfg.max_blocks]
    runs = iter(box.run_many([b.code for b in todo if not b.parse_error]))
    rows = [block_row(case["passage"], b, None if b.parse_error else next(runs), cfg) for b in todo]
    return [r["outcome"] for r in rows], rows


@pytest.mark.parametrize("case", CASES, ids=[f"{c['model']}:{c['passage']['id']}" for c in CASES])
def test_real_reply_gets_its_checked_outcome(case, sandbox):
    outcomes, rows = _judge(case, sandbox)
    assert outcomes == case["expect"], (case.get("note"), [(r.get("reason"), r.get("got")) for r in rows])


def test_fixtures_cover_every_new_rule_and_both_models():
    seen = {o for c in CASES for o in c["expect"]}
    assert {"verified", "wrong_result"} <= seen
    assert {c["model"] for c in CASES} >= {"qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"}


def _case(model, pid, expect):
    return next(c for c in CASES if c["model"] == model and c["passage"]["id"] == pid and c["expect"] == expect)


def test_hand_checked_real_cases(sandbox):
    # Qwen typed the gum price in (cost_gum = 0.65; print(cost_gum)): output matches, passage states it — still
    # rejected: the re-run with the passage's numbers in the code changed prints the same value
    c = _case("qwen2.5-coder-0.5b-instruct", "rg_gsm_symbolic-cad07832ce33#p0", ["hardcoded"])
    _, rows = _judge(c, sandbox)
    assert rows[0]["checks"]["output_matches"] and rows[0]["checks"]["grounded"] and "typed in" in rows[0]["reason"]
    # Qwen reproduced the worked example's garden instead of the passage
    assert _judge(_case("qwen2.5-coder-0.5b-instruct", "algebra/1424#p0", ["copied"]), sandbox)[0] == ["copied"]


def test_the_same_real_reply_is_ungrounded_when_the_passage_does_not_state_its_result(sandbox):
    c = dict(_case("qwen2.5-coder-0.5b-instruct", "gsm8k-test-102#p0", ["verified"]))
    assert "20" in c["passage"]["text"]
    c["passage"] = dict(c["passage"], text=c["passage"]["text"].replace("20", "twenty"))
    outcomes, rows = _judge(c, sandbox)
    assert outcomes == ["ungrounded"] and rows[0]["checks"]["output_matches"]
