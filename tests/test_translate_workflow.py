"""The library functions notebook 02 calls (configure, source table, translator dispatch, the run with its
sandbox lifecycle) and the phase figures/tables, on real small data."""
from __future__ import annotations

import json

import pytest

from mathcode.translate import figures as RP, steps as W
from mathcode.translate.generate import HEADER, add_round


def test_configure_names_the_bad_parameter(tmp_path):
    cfg = W.configure(max_blocks=1, block_tokens=200, max_new_tokens=64, run_dir="x", unrelated=3)
    assert cfg.max_blocks == 1 and cfg.block_tokens == 200 and cfg.gen.max_new_tokens == 64
    with pytest.raises(ValueError, match="output_format"):
        W.configure(output_format="markdown")
    with pytest.raises(ValueError, match="max_blocks"):
        W.configure(max_blocks=0)
    with pytest.raises(FileNotFoundError, match="prompt_file"):
        W.configure(prompt_file=str(tmp_path / "missing.txt"))


def test_source_table_counts_documents_with_computations():
    cfg = W.configure()
    docs = [{"id": "a", "source": "drills", "text": "Each crate has 6 bottles.\n\nFive crates hold 6*5 = 30 bottles."},
            {"id": "b", "source": "drills", "text": "No numbers to compute with here."},
            {"id": "c", "source": "latex", "text": "With $x = 3$ we get $3^2 + 1 = 10$."}]
    t = W.source_table(docs, cfg).set_index("source")
    assert t.loc["drills", "documents"] == 2 and t.loc["drills", "with_passages"] == 1
    assert t.loc["latex", "with_passages"] == 1
    assert "6*5 = 30" in W.first_passage(docs[:1], cfg)["text"]
    assert W.first_passage([], cfg)["text"].startswith("A rectangular garden")


def test_open_translator_dispatch():
    with pytest.raises(ValueError, match="backend='nope'"):
        W.open_translator("nope", "embedded:smollm2-135m-instruct")
    assert W.open_translator("hf", "embedded:smollm2-135m-instruct", needed=False) is None


def test_run_without_passages_writes_valid_empty_outputs(tmp_path):
    res = W.translate_passages([], None, tmp_path, W.configure(), sandbox_workers=1)
    assert res["counts"]["passages"] == 0 and res["sandbox"]["isolation"] in ("bwrap", "process")
    for name in ("translated.jsonl", "blocks.jsonl", "rejected.jsonl", "passages.jsonl", "replies.jsonl"):
        assert (tmp_path / name).exists() and (tmp_path / name).read_text() == ""
    assert json.loads((tmp_path / "sandbox.json").read_text())["isolation"] == res["sandbox"]["isolation"]


def test_rounds_stop_after_complete_blocks_only():
    done = "\nThe garden is 12 m by 7 m.\n\n**Computation Expression:**\n$12 \\times 7$\n\n**Computation Result:**\n84\n\n" \
           "**Python Code Snippet:**\n```python\nprint(12 * 7)\n```\n\n**"
    reply, more = add_round(HEADER, done, 0, "stop")
    assert more and reply.endswith("```") and not reply.endswith("**")
    cut = "\nx\n\n**Python Code Snippet:**\n```python\nprint(12 *"
    assert add_round(HEADER, cut, 0, "length")[1] is False          # cut by the budget: no further round
    assert add_round(reply, "  \n", 1, "stop") == (reply, False)    # nothing more to say
    two, _ = add_round(reply, done, 1, "stop")
    assert two.count(HEADER) == 2


def _rows():
    passages = [{"id": "p1", "source": "s", "text": "The garden is 12 m by 7 m. Its area is 84 square metres."},
                {"id": "p2", "source": "s", "text": "A trip of 150 km at 60 km/h takes 2.5 hours."}]
    ok = {"checks": {"output_matches": True, "grounded": True, "computed": True, "consistent": True}}
    blocks = [{"id": "p1#b0", "passage_id": "p1", "source": "s", "outcome": "verified", "result": "84",
               "code": "print(12 * 7)", "stdout": "84\n", "exit_status": "ok", **ok},
              {"id": "p1#b1", "passage_id": "p1", "source": "s", "outcome": "hardcoded", "result": "84", "got": "84",
               "code": "print(84)", "exit_status": "ok", "reason": "typed in",
               "checks": {**ok["checks"], "computed": False}},
              {"id": "p2#b0", "passage_id": "p2", "source": "s", "outcome": "ungrounded", "result": "9000",
               "code": "print(150 * 60)", "exit_status": "ok", "checks": {**ok["checks"], "grounded": False}},
              {"id": "p2#reply", "passage_id": "p2", "source": "s", "outcome": "unparsable", "reply_level": True}]
    replies = [{"passage_id": "p1", "text": "x"}, {"passage_id": "p2", "text": "y"}]
    return passages, replies, blocks


def test_funnel_rule_removals_spot_check_and_examples():
    passages, replies, blocks = _rows()
    f = RP.funnel(passages, replies, blocks).set_index("source")
    assert f.loc["all", "parsed blocks"] == 3 and f.loc["all", "output matches"] == 3
    assert f.loc["all", "verified"] == 1 and f.loc["all", "share of passages verified"] == 0.5
    r = RP.rule_removals(blocks).set_index("rule")
    assert r.loc["hardcoded", "removes"] == 1 and r.loc["ungrounded", "removes"] == 1 and r.loc["inconsistent", "fails"] == 0
    spot = RP.spot_check(passages, blocks)
    assert list(spot["passage sentence"]) == ["Its area is 84 square metres."] and spot["output"][0] == "84"
    ex = RP.rejected_examples(blocks)
    assert list(ex["outcome"]) == ["hardcoded", "ungrounded", "unparsable"]
    out = RP.outcomes(blocks)
    assert int(out["hardcoded"].sum()) == 1 and "verified" in out.columns


def test_prompt_points_at_the_computation_after_the_context():
    from mathcode.translate import prompt as PR
    cfg = W.configure(passage_unit="line", max_passage_chars=80, context_chars=200)
    doc = {"id": "g", "source": "s", "text": "Question: Ava eats 4 pieces, Emma twice as many.\n"
                                              "Solution: Emma eats 4 x 2 = 8 pieces a day.\nSo 60/12 = 5 days."}
    p = W.first_passage([doc], cfg)
    assert p["context"].startswith("Question") and PR.focus_of(p).startswith("Solution: Emma eats 4 x 2 = 8")
    last = PR.build_messages(p["text"], focus=PR.focus_of(p))[-1]["content"]
    assert last.endswith(PR.focus_of(p)) and "this part of the text" in last
    assert "this part" not in PR.build_messages("Compute 3*4 = 12.", focus="Compute 3*4 = 12.")[-1]["content"]
    assert "this part" in W.show_prompt(None, cfg, p)


def test_selection_summary_says_what_to_do_without_passages():
    assert W.selection_summary({"passages_selected": 0}).startswith("No passages found")
    s = W.selection_summary({"documents": 5, "documents_with_passages": 2, "documents_selected": 2, "passages_selected": 2})
    assert s.startswith("2 of 5 documents")
