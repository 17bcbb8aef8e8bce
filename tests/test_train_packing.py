"""Packing and mixture selection for phase 3, on real text (sympy docstrings) and the real tokenizer."""
from __future__ import annotations

import inspect
import json

import pytest

from mathcode.train import input_files as mix, packing

EMBEDDED = "embedded:smollm2-135m-instruct"


def sympy_docs(n: int) -> list[str]:
    import sympy
    out = []
    for name in sorted(dir(sympy)):
        doc = inspect.getdoc(getattr(sympy, name))
        if doc and len(doc) > 300 and name[0].isupper():
            out.append(doc)
        if len(out) == n:
            break
    return out


def write_corpus(path, texts, prefix="d", doc_ids=None):
    with open(path, "w") as fh:
        for i, t in enumerate(texts):
            row = {"id": f"{prefix}{i}", "text": t, "source": "sympy", "meta": {}}
            if doc_ids:
                row["doc_id"] = doc_ids[i]
            fh.write(json.dumps(row) + "\n")
    return path


@pytest.fixture(scope="module")
def tok():
    from mathcode import models
    return models.load_tokenizer(EMBEDDED, padding_side="right")


def test_blocks_are_the_eos_joined_stream_without_padding(tok):
    texts = sympy_docs(12)
    docs = [mix.Doc(t, f"g{i}", "basic", f"d{i}") for i, t in enumerate(texts)]
    toks = packing.tokenize(texts, tok)
    p = packing.pack(toks, 64, tok.eos_token_id)
    stream = [t for doc in toks for t in doc + [tok.eos_token_id]]
    assert p.blocks.shape == (len(stream) // 64, 64)
    # blocks are consecutive, non-overlapping slices of the stream: nothing invented, nothing repeated
    assert p.blocks.reshape(-1).tolist() == stream[: p.n_blocks * 64]
    assert p.dropped_tail == len(stream) % 64
    # no padding: every position is a real token; the only EOS are the document joins
    if tok.pad_token_id != tok.eos_token_id:
        assert not (p.blocks == tok.pad_token_id).any()
    assert int((p.blocks == tok.eos_token_id).sum()) == sum(
        1 for i, d in enumerate(toks) if sum(len(x) + 1 for x in toks[: i + 1]) <= p.n_blocks * 64)
    ds = packing.BlockDataset(p)
    row = ds[0]
    assert row["labels"].tolist() == row["input_ids"].tolist() and int(row["attention_mask"].sum()) == 64
    assert len(docs) == 12


def test_tokens_per_part_add_up_to_the_training_set(tok):
    """The per-part counts (the translated-tokens bar, the report's translated share) describe the blocks trained
    on: they add up to blocks x block size, and a part whose documents fell into the dropped tail counts only what
    made it into a block."""
    texts = sympy_docs(9)
    toks = packing.tokenize(texts, tok)
    parts = ["basic"] * 6 + ["translated"] * 3
    p = packing.pack(toks, 64, tok.eos_token_id, parts)
    assert p.dropped_tail > 0
    assert sum(p.part_tokens.values()) == p.n_blocks * 64 == p.n_tokens - p.dropped_tail
    # recount from the blocks themselves: token i of the stream belongs to the document that wrote it
    owner = [parts[i] for i, d in enumerate(toks) for _ in range(len(d) + 1)][: p.n_blocks * 64]
    assert p.part_tokens == {k: owner.count(k) for k in dict.fromkeys(parts)}
    # a tail that swallows the last document whole leaves it at 0, not at its full length
    tiny = packing.pack([[5] * 60, [6] * 10], 64, tok.eos_token_id, ["basic", "translated"])
    assert tiny.part_tokens == {"basic": 61, "translated": 3}


def test_heldout_split_is_by_document_group(tok):
    texts = sympy_docs(20)
    # translated rows share doc_id with their source: the pair must land on one side
    docs = [mix.Doc(t, f"g{i // 2}", "basic" if i % 2 == 0 else "translated", f"d{i}") for i, t in enumerate(texts)]
    lengths = [len(x) for x in packing.tokenize(texts, tok)]
    held = packing.split_heldout([d.group for d in docs], lengths, 0.2, 64, seed=3)
    for i in range(0, 20, 2):
        assert held[i] == held[i + 1]
    assert any(held) and not all(held)
    assert held == packing.split_heldout([d.group for d in docs], lengths, 0.2, 64, seed=3)   # deterministic
    s = packing.build(docs, tok, 64, heldout_fraction=0.2, seed=3)
    st = s.stats()
    assert st["train_blocks"] > 0 and st["heldout_blocks"] > 0
    assert set(st["train_tokens_by_part"]) <= {"basic", "translated"}


def test_empty_and_too_short_corpus_errors(tok, tmp_path):
    with pytest.raises(packing.PackingError, match="empty"):
        packing.build([], tok, 64)
    short = [mix.Doc("x = 1", "a", "basic", "a"), mix.Doc("y = 2", "b", "basic", "b")]
    with pytest.raises(packing.PackingError, match=r"block_size=256 needs at least 512"):
        packing.build(short, tok, 256)
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"id": "1", "text": "   "}) + "\n")
    with pytest.raises(mix.CorpusError, match="no non-empty 'text' rows"):
        mix.load_docs([(empty, "basic")])
    # an empty translated part (a small model verified nothing) trains on the basic part, with a warning
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps({"id": "1", "text": "$2+2=4$"}) + "\n")
    with pytest.warns(UserWarning, match="'translated' part of the mixture contributes nothing"):
        docs = mix.load_docs([(ok, "basic"), (empty, "translated")])
    assert [d.part for d in docs] == ["basic"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1", "text": "fine"}) + "\n" + json.dumps({"id": "2", "body": "x"}) + "\n")
    with pytest.raises(mix.CorpusError, match=r"bad.jsonl:2: row has no string 'text'"):
        mix.load_docs([(bad, "basic")])


def test_mixture_ablation_reads_phase_outputs(tmp_path):
    from mathcode import phase as ph
    run = tmp_path / "run"
    texts = sympy_docs(4)
    for name, fname, rows in (("data", "corpus.jsonl", texts), ("translation", "translated.jsonl", texts[:2])):
        d = ph.Phase(name, str(run))
        write_corpus(d.path(fname), rows, prefix=name, doc_ids=["data0", "data1"] if name == "translation" else None)
        d.finish()
    P = ph.Phase("pretraining", str(run))
    basic = mix.load_docs(mix.mixture_inputs(P, "basic"))
    both = mix.load_docs(mix.mixture_inputs(P, "basic+translated"))
    assert mix.summary(basic) == {"basic": {"documents": 4, "characters": sum(map(len, texts))}}
    assert mix.summary(both)["translated"]["documents"] == 2
    assert [d.group for d in both if d.part == "translated"] == ["data0", "data1"]
    with pytest.raises(mix.CorpusError, match="mixture='code' is not known"):
        mix.mixture_inputs(P, "code")
    explicit = mix.mixture_inputs(P, "basic", [str(write_corpus(tmp_path / "mine.jsonl", texts))])
    assert explicit == [(tmp_path / "mine.jsonl", "mine")]
    with pytest.raises(mix.CorpusError, match="does not exist"):
        mix.mixture_inputs(P, "basic", [str(tmp_path / "nope.jsonl")])


def test_missing_phase2_output_is_a_clear_error(tmp_path):
    from mathcode import phase as ph
    run = tmp_path / "run"
    d = ph.Phase("data", str(run))
    write_corpus(d.path("corpus.jsonl"), sympy_docs(2))
    d.finish()
    P = ph.Phase("pretraining", str(run))
    with pytest.raises(ph.MissingInputError, match="translated.jsonl"):
        mix.mixture_inputs(P, "basic+translated")
    assert len(mix.mixture_inputs(P, "basic")) == 1
