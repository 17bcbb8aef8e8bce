"""Greedy translation that repeats itself: with ``batch_invariant`` the embedded Qwen2.5-Coder-0.5B on llama.cpp gives
a passage the same reply whether it is decoded alone, beside other passages, or in another order — the way phase 2's
chunks batch it. The real translator on three real LaTeX passages, one short block each (cost: ~1 min on one thread).
"""
from __future__ import annotations

import pytest

from mathcode.translate import prompt as P, steps
from mathcode.translate.generate import generate_replies

SPEC = "embedded:qwen2.5-coder-0.5b-instruct"

# worked-example steps as textbooks write them (APEX Calculus / Lyryx linear algebra style), not the demo's corpora
PASSAGES = [
    "At $(0,1)$, the slope is $y' = \\frac{2-2\\cdot 0\\cdot 1^4}{3\\cdot 1^2+4\\cdot 0^2\\cdot 1^3} = 2/3$.",
    "We have $\\det(A) = 2\\cdot 6 - 4\\cdot(-1) = 12 + 4 = 16$.",
    "The area is $\\int_0^2 (4-x^2)\\,dx = 8 - 8/3 = 16/3 \\approx 5.33$ square units.",
]


@pytest.fixture(scope="module")
def invariant():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install -e '.[llamacpp]')")
    from mathcode.generation import from_settings
    g = from_settings("llamacpp", SPEC, threads=1, batch_invariant=True)
    yield g
    g.close()


def _replies(gen, texts, block_tokens=48):
    cfg = steps.configure(max_blocks=1, block_tokens=block_tokens, max_new_tokens=block_tokens, batch_invariant=True)
    convs = [P.build_messages(t, cfg.instruction, worked_example=True, max_blocks=1) for t in texts]
    return [c.text for c in generate_replies(gen, convs, cfg.gen, 1, cfg.block_tokens)]


@pytest.mark.slow
def test_a_passage_gets_the_same_greedy_reply_alone_beside_others_and_reordered(invariant):
    together = _replies(invariant, PASSAGES)
    alone = [_replies(invariant, [t])[0] for t in PASSAGES]
    reordered = _replies(invariant, PASSAGES[::-1])[::-1]
    assert together == alone == reordered
    assert all(r.startswith("**Conditions Needed:**") and len(r) > 40 for r in together)   # real replies, not empty
    info = invariant.info()
    assert info["batch_invariant"] and info["lookup_tokens"] == 0 and not info["share_prefix"]


def test_batch_invariant_is_a_validated_translation_setting():
    from mathcode.settings import SettingsError
    from mathcode.translate.settings import TranslationSettings
    assert steps.configure(batch_invariant=True).gen.batch_size == 1           # hf: one passage per batch
    with pytest.raises(SettingsError, match="batch_invariant: backend 'openai' batches requests on the server"):
        TranslationSettings.build({"batch_invariant": True, "backend": "openai"})
