"""The llama.cpp backend on a real GGUF (the embedded SmolLM2-135M, 98 MB), and its parity with transformers."""
from __future__ import annotations

import pytest

from mathcode import models
from mathcode.generation import GenConfig, make_generator

pytestmark = pytest.mark.slow
SPEC = "embedded:smollm2-135m-instruct"
CONVS = [[{"role": "user", "content": "What is 2 + 3? Answer with a number."}],
         [{"role": "user", "content": "Name the capital of France."}],
         [{"role": "user", "content": "Write a Python function that returns the square of x."}]]


@pytest.fixture(scope="module")
def lc():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
    g = make_generator("llamacpp", SPEC, n_parallel=3, threads=1, n_ctx=512)
    yield g
    g.close()


def test_parallel_slots_are_deterministic_and_finish_every_prompt(lc):
    cfg = GenConfig(max_new_tokens=24)
    first = lc.chat(CONVS, cfg)
    assert [c.text for c in lc.chat(CONVS, cfg)] == [c.text for c in first]      # greedy: same text every run
    assert all(c.text.strip() and 0 < c.completion_tokens <= 24 for c in first)
    assert all(c.prompt_tokens > 10 for c in first)
    more = lc.chat(CONVS * 3, cfg)                             # more prompts than slots: queued, order kept
    assert [c.prompt_tokens for c in more] == [c.prompt_tokens for c in first] * 3
    assert all(c.text.strip() for c in more)
    assert lc.info()["backend"] == "llamacpp" and lc.tokens_per_second > 0


def test_stop_strings_and_finish_reasons(lc):
    conv = [{"role": "user", "content": "Count from one to ten in words, separated by commas."}]
    full = lc.chat([conv], GenConfig(max_new_tokens=40))[0]
    assert len(full.text) > 12
    stop = full.text[len(full.text) // 2:len(full.text) // 2 + 3]          # a string the model does write
    cut = lc.chat([conv], GenConfig(max_new_tokens=40, stop=[stop]))[0]
    assert cut.text == full.text[:full.text.find(stop)] and cut.finish_reason == "stop"
    assert cut.completion_tokens < full.completion_tokens                  # generation stopped there, not later
    short = lc.chat([conv], GenConfig(max_new_tokens=3))[0]
    assert short.completion_tokens == 3 and short.finish_reason == "length"


def test_chat_template_comes_from_the_gguf_and_matches_transformers(lc, embedded_model_dir):
    tok = models.load_tokenizer(SPEC)
    for conv in CONVS:
        assert lc.render_chat(conv) == tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)


def test_bos_is_never_doubled(lc, monkeypatch):
    assert lc.add_bos is False                                # SmolLM2's GGUF asks for no BOS
    assert lc.encode("hi")[0] != lc.bos_id
    monkeypatch.setattr(lc, "add_bos", True)                  # a Llama-3-like vocabulary
    ids = lc.encode("hi")
    assert ids[0] == lc.bos_id and lc.encode(lc.bos_text + "hi") == ids


def test_too_long_prompt_is_refused_before_decoding(lc):
    with pytest.raises(ValueError, match="n_ctx"):
        lc.complete(["word " * 600], GenConfig(max_new_tokens=8))


def test_same_greedy_text_as_transformers_on_the_same_gguf(lc):
    """Parity: transformers on the same GGUF dequantized to fp32 writes the same greedy reply on a short prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = models.gguf_path(SPEC)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    hf = make_generator("hf", SPEC, model_obj=model, tokenizer=tok, device="cpu")
    cfg = GenConfig(max_new_tokens=12)
    conv = CONVS[:1]
    assert hf.render_chat(conv[0]) == lc.render_chat(conv[0])
    a, b = lc.chat(conv, cfg)[0], hf.chat(conv, cfg)[0]
    assert a.text == b.text and a.text.strip()
    assert a.prompt_tokens == b.prompt_tokens


# --- throughput features: they must not change what greedy decoding writes ----------------------------
COPY = [[{"role": "user", "content": "Repeat this line exactly, then stop: The values are 12, 7, 84 and 42; "
                                     "12 x 7 = 84 and 14 x 9 - 84 = 42."}],
        [{"role": "user", "content": "Write Python that sets length = 12 and width = 7 and prints length * width."}],
        [{"role": "user", "content": "Write a Python program that prints the sum of the list [3, 5, 8, 13]."}]]


def test_prompt_lookup_and_prefix_cache_keep_the_greedy_text():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
    # one slot each: with several slots the batch shape (how many slots, how many drafts) already changes float
    # sums and can flip a near-tie token of this 135M model, as a different n_parallel does (module docstring)
    plain = make_generator("llamacpp", SPEC, n_parallel=1, threads=1, n_ctx=512, keep_prefix=False, lookup_tokens=0)
    fast = make_generator("llamacpp", SPEC, n_parallel=1, threads=1, n_ctx=512, keep_prefix=True, lookup_tokens=6)
    try:
        cfg = GenConfig(max_new_tokens=40)
        a = plain.chat(COPY, cfg)
        b = fast.chat(COPY, cfg)
        assert [c.text for c in a] == [c.text for c in b]
        assert [c.completion_tokens for c in a] == [c.completion_tokens for c in b]
        st = fast.info()
        assert st["draft_tokens"] > 0 and 0 < st["draft_accepted"] <= st["draft_tokens"]   # copies were drafted
        assert st["decode_steps"] < plain.info()["decode_steps"]                        # ... and saved steps
        # a second call reuses the cached common prefix (the chat template's system turn) instead of recomputing it
        computed = st["prefix_tokens_computed"]
        c2 = fast.chat(COPY, cfg)
        assert [c.text for c in c2] == [c.text for c in a]
        st2 = fast.info()
        assert st2["prefix_tokens_reused"] > 0 and st2["prefix_tokens_computed"] == computed
        # stop strings and the token budget hold with drafts in flight
        cut = fast.chat(COPY[:1], GenConfig(max_new_tokens=40, stop=["84"]))[0]
        ref = plain.chat(COPY[:1], GenConfig(max_new_tokens=40, stop=["84"]))[0]
        assert cut.text == ref.text and cut.finish_reason == ref.finish_reason
        short = fast.chat(COPY[2:], GenConfig(max_new_tokens=5))[0]
        assert short.completion_tokens == 5 and short.finish_reason == "length"
        # sampling never drafts (prompt lookup is a greedy-only shortcut)
        before = fast.info()["draft_tokens"]
        fast.chat(COPY[:1], GenConfig(max_new_tokens=10, temperature=0.8, seed=1))
        assert fast.info()["draft_tokens"] == before
    finally:
        plain.close()
        fast.close()


def test_idle_cores_is_at_least_one_and_says_how_it_was_measured():
    from mathcode import cpu
    n, why = cpu.idle_cores(0.1)
    assert 1 <= n <= (__import__("os").cpu_count() or 1) and "idle" in why


def test_llamacpp_scores_text_like_transformers_on_the_same_gguf(lc):
    """Generator.nll on llama.cpp: same tokens scored as hf on the dequantized GGUF, NLL within quantized-arithmetic
    noise; a long text keeps its last tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = models.gguf_path(SPEC)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    hf = make_generator("hf", SPEC, model_obj=model, tokenizer=tok, device="cpu")
    entries = [("Question: What is 2 plus 3?\nAnswer:", " 2 + 3 = 5. The answer is 5."),
               "The derivative of x^2 is 2x.", ("Question: 1+1?\nAnswer:", " 2")]
    assert lc.can_score
    a, b = lc.nll(entries), hf.nll(entries, dtype="fp32")
    assert [r["tokens"] for r in a] == [r["tokens"] for r in b]
    for x, y in zip(a, b):
        assert abs(x["nll_mean"] - y["nll_mean"]) < 0.05 * max(1.0, y["nll_mean"]), (x, y)
    long = lc.nll(["word " * 700])[0]
    assert long["tokens"] == lc.n_ctx - 1
    assert lc.chat(CONVS[:1], GenConfig(max_new_tokens=8))[0].text.strip()      # generation unaffected afterwards



def test_idle_threads_are_measured_again_at_every_call_and_keep_the_greedy_text(monkeypatch):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
    from mathcode import cpu
    seen = iter([(2, "2 idle (test)"), (1, "1 idle (test)"), (2, "2 idle (test)"), (2, "2 idle (test)")])
    monkeypatch.setattr(cpu, "idle_cores", lambda sample_s=0.5: next(seen))
    g = make_generator("llamacpp", SPEC, n_parallel=1, threads="idle", n_ctx=512)
    fixed = make_generator("llamacpp", SPEC, n_parallel=1, threads=1, n_ctx=512)
    try:
        assert g.info()["adaptive_threads"] and not fixed.info()["adaptive_threads"]
        cfg = GenConfig(max_new_tokens=16)
        ref = [c.text for c in fixed.chat(CONVS[:1], cfg)]
        assert [c.text for c in g.chat(CONVS[:1], cfg)] == ref          # 1 thread (measured at this call)
        assert [c.text for c in g.chat(CONVS[:1], cfg)] == ref          # 2 threads: same greedy text
        info = g.info()
        assert info["threads_per_call"] == {1: 1, 2: 1} and info["thread_changes"] == 2
        assert fixed.info()["threads_per_call"] == {1: 1} and fixed.info()["thread_changes"] == 0
    finally:
        g.close()
        fixed.close()
