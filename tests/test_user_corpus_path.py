"""A new user's own corpus, end to end through the cheap parts: ``validate`` refuses a missing file or a wrong
``#field`` before any work (naming the file, the line and what to write), phase 1 writes every removal with its
reason and the report explains each, the selection log says what the corpus contains and which setting limited
the selection, phase 2's rows carry the user's own document ids, and the plan counts the passages it will
translate."""
from __future__ import annotations

import json

import pytest
import yaml

from mathcode import cli
from mathcode.data import steps as data_steps
from mathcode.data.sources import iter_source
from mathcode.run import config, plan, report_story
from mathcode.translate import steps as tsteps, translate as T

MODEL = "embedded:smollm2-135m-instruct"

# worked examples as a textbook's LaTeX source writes them (several computations each, a display per step)
EXAMPLES = [
    ("ex-area", "Find the area of a rectangle 3 by 4.\n\nThe area is $3 \\cdot 4 = 12$.\n\n"
                "Its perimeter is $2 \\cdot 3 + 2 \\cdot 4 = 14$."),
    ("ex-det", "Find $\\det(A)$.\n\nWe have $\\det(A) = 2\\cdot 6 - 4\\cdot(-1) = 12 + 4 = 16$."),
    ("ex-proof", "Show that the function is continuous.\n\nThis follows from the definition; no computation."),
    ("ex-sum", "Add the numbers.\n\nWe get $17 + 25 = 42$.\n\nThen $42 \\cdot 2 = 84$.\n\nAnd $84 - 4 = 80$."),
]


def _write_corpus(path, rows=EXAMPLES, field="text"):
    path.write_text("".join(json.dumps({"id": i, field: t}) + "\n" for i, t in rows))
    return path


def _recipe(tmp_path, sources, **data):
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump({"name": "mine", "model": MODEL, "phases": {"data": {"sources": sources, **data}}}))
    return f


def test_validate_refuses_a_missing_source_file_naming_it_and_what_to_write(tmp_path, capsys):
    _write_corpus(tmp_path / "book.jsonl")
    f = _recipe(tmp_path, [f"jsonl:{tmp_path / 'missing.jsonl'}#text"])
    assert cli.main(["validate", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert "phases.data.sources[0]" in err and "missing.jsonl does not exist" in err
    assert "write jsonl:PATH#FIELD" in err and "that folder has book.jsonl" in err
    with pytest.raises(config.ConfigError, match=r"folder .*nowhere does not exist"):
        config.load(_recipe(tmp_path, [f"folder:{tmp_path / 'nowhere'}"]))


def test_validate_refuses_a_wrong_field_naming_file_line_and_the_field_to_write(tmp_path, capsys):
    corpus = tmp_path / "book.jsonl"
    corpus.write_text("\n" + json.dumps({"id": "a", "body": "1 + 1 = 2"}) + "\n")       # a blank first line
    f = _recipe(tmp_path, [f"jsonl:{corpus}#text"])
    assert cli.main(["validate", "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{corpus}:2: no field 'text' (fields: id, body)" in err and f"'jsonl:{corpus}#body'" in err
    corpus.write_text(json.dumps({"id": "a", "problem": "x"}) + "\n")
    with pytest.raises(config.ConfigError, match=r"fields: id, problem\); write 'jsonl:.*#FIELD' naming the text"):
        config.load(f)
    corpus.write_text("{not json\n")
    with pytest.raises(config.ConfigError, match=r"book\.jsonl:1: malformed JSON"):
        config.load(f)
    _write_corpus(corpus)
    assert config.load(f).phases["data"]["sources"] == [f"jsonl:{corpus}#text"]   # the right one passes


def test_every_phase1_removal_is_written_with_its_reason_and_the_report_explains_it(tmp_path):
    rows = list(EXAMPLES) + [("ex-tiny", "1+1=2"),                                      # too short
                             ("ex-rep", "\n".join(["$a_1 = 0$ is the row."] * 12))]     # the same line 12 times
    corpus = _write_corpus(tmp_path / "book.jsonl", rows)
    docs, _, _ = data_steps.load_documents([f"jsonl:{corpus}"], MODEL, 100)
    reports = []
    kept, _, _ = data_steps.quality_filter(docs, reports, quality=["length", "symbols", "repetition"], min_chars=20,
                                           max_chars=20000, max_dup_lines=0.3, max_top_trigram=0.3)
    tab = data_steps.write_removals(docs, reports, tmp_path)
    assert set(zip(tab.step, tab.reason, tab.documents)) == {("quality:length", "too_short", 1),
                                                             ("quality:repetition", "duplicate_lines", 1)}
    rep = [json.loads(x) for x in (tmp_path / "removed_repetition.jsonl").read_text().splitlines()]
    assert [(r["original_id"], r["reason"]) for r in rep] == [("ex-rep", "duplicate_lines")]
    assert rep[0]["dup_line_fraction"] > 0.3 and rep[0]["text"].startswith("$a_1 = 0$")
    assert (tmp_path / "removed_symbols.jsonl").read_text() == ""        # a step that removed nothing: empty file
    assert len(kept) == len(docs) - 2
    m1 = {"removed_by_step": {r.step: dict(__import__("collections").Counter(x["reason"] for x in r.dropped))
                              for r in reports if r.dropped}}
    s = report_story.removals_sentence(m1)
    assert "the length filter removed 1 document (1 too short), listed in removed_length.jsonl" in s.lower()
    assert "the repetition filter removed 1 document (1 duplicate lines), listed in removed_repetition.jsonl" \
        in s.lower()


def _phase1_corpus(tmp_path):
    """corpus.jsonl rows as phase 1 writes them: hashed ids, the user's id in meta.original_id."""
    src = _write_corpus(tmp_path / "book.jsonl")
    return [{**d, "meta": {k: v for k, v in d["meta"].items()}} for d in iter_source(f"jsonl:{src}")]


def test_selection_log_counts_what_the_corpus_contains_and_names_the_limit(tmp_path):
    docs = _phase1_corpus(tmp_path)
    cfg = tsteps.configure(max_passages_per_doc=1, passage_unit="paragraph", max_passage_chars=40)
    sel_docs, sel = T.select_docs(docs, 0, cfg)
    assert sel["documents_with_computations"] == 3 and sel["passages_in_corpus"] == 6      # ex-proof has none
    assert sel["passages_selected"] == 3 and sel["limited_by"] == ["max_passages_per_doc"]
    assert sel["documents_capped_per_doc"] == 2                                            # ex-area and ex-sum
    text = tsteps.selection_summary(sel)
    assert "3 of 4 documents contain computations (6 passages in all)" in text
    assert "limited by max_passages_per_doc 1: 2 documents hold more passages" in text
    _, capped = T.select_docs(docs, 2, cfg)
    assert capped["limited_by"] == ["max_passages_per_doc", "max_passages"] and capped["passages_selected"] == 2
    cfg_t = tsteps.configure(max_passages_per_doc=3, passage_selection="translatable", min_passage_score=0.8,
                             max_passage_chars=40)
    _, sel_t = T.select_docs(docs, 0, cfg_t)
    # "contain" is what the corpus holds; "passed the score" is what the selection lets through
    assert sel_t["documents_with_computations"] == 3 and sel_t["documents_with_passages"] <= 3
    assert "passed the translatable score" in tsteps.selection_summary(sel_t)
    _, everything = T.select_docs(docs, 0, tsteps.configure(max_passages_per_doc=5, max_passage_chars=40))
    assert everything["limited_by"] == [] and "nothing limited the selection" in tsteps.selection_summary(everything)


def test_phase2_rows_carry_the_users_document_id(tmp_path):
    docs = _phase1_corpus(tmp_path)
    assert docs[0]["id"] != "ex-area" and docs[0]["meta"]["original_id"] == "ex-area"
    assert T.original_id(docs[0]) == "ex-area"
    assert T.original_id({"id": "row-7", "text": "", "meta": {}}) == "row-7"     # a corpus_file row: its own id
    cfg = tsteps.configure(max_passages_per_doc=2, max_passage_chars=40)
    p = {**cfg.split(docs[0])[0].to_dict(), "original_id": T.original_id(docs[0])}
    assert T.reply_level_row(p, "no block")["original_id"] == "ex-area"


def test_plan_counts_the_passages_of_local_sources_and_estimates_per_passage(tmp_path):
    corpus = _write_corpus(tmp_path / "book.jsonl")
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump({"name": "mine", "model": MODEL, "device": "cpu", "phases": {
        "data": {"sources": [f"jsonl:{corpus}#text"]},
        "translation": {"max_passages": 30, "max_passages_per_doc": 1, "max_passage_chars": 40, "max_blocks": 1}}}))
    lines = "\n".join(plan.describe(config.load(f)))
    assert "≤ 3 passages" in lines, lines                     # 3 documents carry one passage each, not 30
    assert "the local sources hold 3 passages in 3 of 4 documents" in lines
    assert "~16 s per passage of 1 block(s)" in lines and "~48 s" in lines
