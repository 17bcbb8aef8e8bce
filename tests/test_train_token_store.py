"""Phase 3's token store on real text (sympy docstrings) and the real tokenizer: the blocks cut lazily from the
memory-mapped store equal the in-memory packer's (the reference), the store is keyed by its inputs and reused,
the held-out split stays by document and leak-free, per-part repetition counts in tokens, a killed-and-resumed run
trains on exactly the blocks of an uninterrupted one, and trained embeddings get their own learning rate and move."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mathcode.train import input_files as mix, packing, qlora, token_store as ts, trainer as tr
from tests.test_train_packing import EMBEDDED, sympy_docs, write_corpus


@pytest.fixture(scope="module")
def tok():
    from mathcode import models
    return models.load_tokenizer(EMBEDDED, padding_side="right")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A basic part and a translated part whose rows share ``doc_id`` with their source (as phase 2 writes them)."""
    d = tmp_path_factory.mktemp("corpus")
    texts = sympy_docs(40)
    basic = write_corpus(d / "basic.jsonl", texts[:30], prefix="b")
    translated = write_corpus(d / "translated.jsonl", [t[:400] + "\n```python\nprint(1)\n```" for t in texts[:12]],
                              prefix="t", doc_ids=[f"b{i}" for i in range(12)])
    return [(basic, "basic"), (translated, "translated")]


@pytest.fixture(scope="module")
def stores(tok, corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    return [ts.build_part(p, label, tok, root, progress=False) for p, label in corpus]


@pytest.mark.parametrize("block,fraction,seed,max_docs", [(64, 0.2, 3, 0), (128, 0.1, 0, 0), (48, 0.3, 7, 35)])
def test_stored_blocks_equal_the_in_memory_packer(tok, corpus, stores, block, fraction, seed, max_docs):
    docs = mix.load_docs(corpus, max_documents=max_docs, warn=False)
    old = packing.build(docs, tok, block, heldout_fraction=fraction, seed=seed)
    new = ts.splits(stores, block, heldout_fraction=fraction, seed=seed, max_documents=max_docs)
    assert new.stats() == old.stats()
    assert np.array_equal(new.train.blocks, old.train.blocks)
    assert np.array_equal(new.heldout.blocks, old.heldout.blocks)
    for mode in packing.PACKING:                       # document-masked rows too, read lazily one block at a time
        a, b = packing.BlockDataset(old.train, packing=mode), packing.BlockDataset(new.train, packing=mode)
        for i in (0, len(a) // 2, len(a) - 1):
            assert all(torch.equal(a[i][k], b[i][k]) for k in a[i])
    held = ts.split_heldout(np.array([d.group for d in docs]), np.array([len(t) for t in
                            packing.tokenize([d.text for d in docs], tok, progress=False)]), fraction, block, seed)
    assert held.tolist() == packing.split_heldout([d.group for d in docs], [len(t) for t in packing.tokenize(
        [d.text for d in docs], tok, progress=False)], fraction, block, seed)


def test_heldout_is_whole_groups_and_never_trained(stores):
    s = ts.splits(stores, 64, heldout_fraction=0.25, seed=1)
    held_groups, train_groups = set(), set()
    for k, st in enumerate(stores):
        starts = np.concatenate([[0], st.ends[:-1]])
        for lo, hi, g in zip(starts, st.ends, st.groups):
            in_held = any(src == k and a <= lo and hi <= b for src, a, b in s.heldout.segments)
            in_train = any(src == k and a <= lo and hi <= b for src, a, b in s.train.segments)
            assert in_held != in_train, "every document is on exactly one side"
            (held_groups if in_held else train_groups).add(str(g))
    assert held_groups and train_groups and not held_groups & train_groups
    # a translated row sits on its source's side: the groups of the translated part are basic ids
    assert {str(g) for g in stores[1].groups} <= {f"b{i}" for i in range(30)}


def test_store_is_keyed_by_input_and_reused(tok, tmp_path):
    texts = sympy_docs(6)
    f = write_corpus(tmp_path / "c.jsonl", texts)
    a = ts.build_part(f, "c", tok, tmp_path / "s", progress=False)
    b = ts.build_part(f, "c", tok, tmp_path / "s", progress=False)
    assert not a.reused and b.reused and a.path == b.path
    assert a.tokens.tolist() == [t for x in packing.tokenize(texts, tok, progress=False) for t in x + [tok.eos_token_id]]
    assert isinstance(b.tokens, np.memmap) and b.tokens.dtype == np.uint16     # 49,152 ids fit 16 bits
    write_corpus(f, texts[:5] + [texts[5] + " changed"])
    c = ts.build_part(f, "c", tok, tmp_path / "s", progress=False)
    assert not c.reused and c.path != a.path
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted([a.path.name, c.path.name])  # no .partial
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "1", "text": "fine"}) + "\n" + json.dumps({"id": "2", "body": "x"}) + "\n")
    with pytest.raises(mix.CorpusError, match=r"bad.jsonl:2: row has no string 'text'"):
        ts.build_part(bad, "bad", tok, tmp_path / "s", progress=False)
    assert not any(p.name.startswith(".") for p in (tmp_path / "s").iterdir()), "a failed store leaves nothing"
    with pytest.raises(ts.StoreError, match="waited"):            # a rank that must not tokenize waits, then says so
        ts.build_part(bad, "bad", tok, tmp_path / "s", wait=True, wait_timeout_s=0.5)


def test_building_a_store_prints_no_datatrove_log_and_leaves_its_logging_on(tok, tmp_path, capfd):
    """Notebook 03 shows whatever reaches stderr as a red box: the first build of a part must print none of datatrove's
    task log, and datatrove's own routes (phases 1 and 2 on a cluster) must still log afterwards."""
    from loguru import logger
    f = write_corpus(tmp_path / "c.jsonl", sympy_docs(4))
    capfd.readouterr()
    assert not ts.build_part(f, "c", tok, tmp_path / "s", progress=False).reused
    out, err = capfd.readouterr()
    assert "datatrove" not in err + out and "Launching pipeline" not in err + out, err
    sink = []
    handle = logger.add(sink.append, level="INFO")
    try:
        from datatrove.utils.logging import log_pipeline
        log_pipeline([])                                   # an INFO record from inside datatrove's own module
    finally:
        logger.remove(handle)
    assert any("PIPELINE" in m for m in sink)


def test_repeats_are_counted_in_tokens(stores):
    once = ts.splits(stores, 64, heldout_fraction=0.2, seed=3)
    twice = ts.splits(stores, 64, heldout_fraction=0.2, seed=3, repeats={"translated": 2})
    half = ts.splits(stores, 64, heldout_fraction=0.2, seed=3, repeats={"basic": 0.5})
    t1, t2 = once.train.part_tokens, twice.train.part_tokens
    # twice the translated tokens, up to the tail that fills no block (< one block, cut in either run)
    assert abs(t2["translated"] - 2 * t1["translated"]) < 2 * 64 and t2["basic"] == t1["basic"]
    assert sum(t2.values()) % 64 == 0 and sum(t1.values()) % 64 == 0, "parts add up to whole blocks"
    assert twice.heldout.n_tokens == once.heldout.n_tokens, "held-out text is never repeated"
    assert 0.4 * t1["basic"] < half.train.part_tokens["basic"] <= 0.5 * t1["basic"]
    rows = {r["part"]: r for r in twice.parts}
    assert rows["translated"]["repeats"] == 2 and rows["translated"]["train_tokens"] == t2["translated"]
    assert abs(sum(r["share"] for r in twice.parts) - 1) < 1e-3


# --- training: exact resume and the embedding learning rate ---------------------------------------------------

def tiny_llama(vocab: int, tie: bool = False):
    """A real Llama architecture at toy width (weights do not matter for which blocks are read)."""
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                      tie_word_embeddings=tie)
    return LlamaForCausalLM(cfg)


class Kill(tr._callback_base()):
    """Stops the process's training the way a crash does: after step ``at``, without saving anything more."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.at:
            raise KeyboardInterrupt(f"killed after step {self.at}")


def _train(tmp, tok, ds, *, max_steps, kill=None, resume=None, log):
    model = qlora.attach_lora(tiny_llama(len(tok)), qlora.LoraSettings(r=2, alpha=4, dropout=0.0),
                              gradient_checkpointing=False)
    s = tr.TrainSettings(max_steps=max_steps, per_device_batch_size=2, grad_accum=2, learning_rate=1e-3, warmup=0,
                         eval_steps=0, save_steps=2, seed=5)
    args = tr.training_arguments(tmp, s, "cpu")
    args.disable_tqdm = True
    tr.trim_block_log(log, resume)
    t = tr.build_trainer(model, tok, ds, None, args, callbacks=[Kill(kill)] if kill else [], block_log=log)
    t.train(resume_from_checkpoint=resume)


def test_killed_and_resumed_run_trains_exactly_the_uninterrupted_blocks(tok, stores, tmp_path):
    s = ts.splits(stores, 64, heldout_fraction=0.2, seed=3)
    ds = packing.BlockDataset(s.train, limit=20, block_ids=True)            # 20 blocks: 5 steps per epoch
    steps = 12                                                               # crosses two epoch boundaries
    _train(tmp_path / "a", tok, ds, max_steps=steps, log=tmp_path / "a.jsonl")
    full = tr.read_block_log(tmp_path / "a.jsonl")
    assert sorted(full) == list(range(1, steps + 1)) and all(len(v) == 4 for v in full.values())
    assert sorted(full[1] + full[2] + full[3] + full[4] + full[5]) == list(range(20)), "an epoch is a permutation"
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "b", tok, ds, max_steps=steps, kill=7, log=tmp_path / "b.jsonl")
    assert max(tr.read_block_log(tmp_path / "b.jsonl")) == 7
    ckpt = tr.last_checkpoint(tmp_path / "b")
    assert ckpt.endswith("checkpoint-6")
    _train(tmp_path / "b", tok, ds, max_steps=steps, resume=ckpt, log=tmp_path / "b.jsonl")
    resumed = tr.read_block_log(tmp_path / "b.jsonl")
    assert resumed == full, "same blocks, same order, none twice, none skipped"


@pytest.mark.parametrize("tie", [False, True])
def test_trained_embeddings_move_with_their_own_learning_rate(tok, stores, tmp_path, tie):
    s = ts.splits(stores, 32, heldout_fraction=0.2, seed=0)
    ds = packing.BlockDataset(s.train, limit=8, block_ids=True)
    model = qlora.attach_lora(tiny_llama(len(tok), tie=tie), qlora.LoraSettings(r=2, alpha=4, dropout=0.0,
                              train_embeddings=True), gradient_checkpointing=False)
    emb = model.get_input_embeddings()
    head = model.get_output_embeddings()
    before = {"emb": emb.weight.detach().clone(), "head": head.weight.detach().clone()}
    trained = [n for n, p in model.named_parameters() if p.requires_grad and "modules_to_save" in n]
    assert any("embed_tokens" in n for n in trained) and (tie or any("lm_head" in n for n in trained))
    st = tr.TrainSettings(max_steps=3, per_device_batch_size=2, grad_accum=1, learning_rate=1e-3, warmup=0,
                          eval_steps=0, save_steps=100, seed=0, scheduler="constant")
    args = tr.training_arguments(tmp_path, st, "cpu")
    t = tr.build_trainer(model, tok, ds, None, args, embedding_learning_rate=5e-2)
    t.train()
    lrs = sorted(g["lr"] for g in t.optimizer.param_groups)
    assert lrs == [1e-3, 5e-2]
    emb_group = next(g for g in t.optimizer.param_groups if g["lr"] == 5e-2)
    assert {id(p) for p in emb_group["params"]} == {id(p) for n, p in model.named_parameters()
                                                   if p.requires_grad and "modules_to_save" in n}
    moved = {k: float((w.weight.detach() - before[k]).abs().max()) for k, w in (("emb", model.get_input_embeddings()),
                                                                                ("head", model.get_output_embeddings()))}
    assert moved["emb"] > 1e-2 and moved["head"] > 1e-2, moved        # Adam moves ~lr per step: 3 steps of 5e-2
    if tie:
        assert torch.equal(model.get_input_embeddings().weight, model.get_output_embeddings().weight)


def test_settings_refuse_what_would_silently_do_nothing():
    from mathcode.settings import SettingsError
    from mathcode.train.settings import PretrainingSettings
    with pytest.raises(SettingsError, match="part_repeats names 'code', not a part of this mixture"):
        PretrainingSettings.build({"part_repeats": {"code": 2}})
    with pytest.raises(SettingsError, match=r"'part_repeats'.translated: -1 is not allowed"):
        PretrainingSettings.build({"part_repeats": {"translated": -1}})
    with pytest.raises(SettingsError, match="embedding_learning_rate: 2e-05 has no effect without train_embeddings"):
        PretrainingSettings.build({"embedding_learning_rate": 2e-5})
    s = PretrainingSettings.build({"part_repeats": {"translated": 2}, "train_embeddings": True,
                                   "embedding_learning_rate": 2e-5})
    assert s.part_repeats == {"translated": 2} and s.embedding_learning_rate == 2e-5
    assert "token_store" not in tr.run_signature(s.as_dict()), "where the store lives does not shape the run"


def test_plan_reads_exact_tokens_from_an_existing_store(stores, corpus):
    root = stores[0].path.parent
    rows = ts.plan_parts(corpus + [(corpus[0][0].parent / "missing.jsonl", "x")], stores[0].meta["tokenizer"], root,
                         {"translated": 2})
    by = {r["part"]: r for r in rows}
    assert by["basic"]["exact"] and by["basic"]["tokens"] == stores[0].n_tokens
    assert by["translated"]["train_tokens"] == 2 * stores[1].n_tokens
    assert by["x"]["tokens"] is None
    est = ts.plan_parts(corpus[:1], "another-tokenizer", root)[0]
    assert not est["exact"] and 0.5 < est["tokens"] / stores[0].n_tokens < 2, "an estimate of the right size"
