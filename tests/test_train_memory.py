"""Memory estimate before loading: real model shapes (Llama-3-8B config, the embedded model), no weights."""
from __future__ import annotations

import pytest

from mathcode.train import memory

GIB = 1024 ** 3


def llama3_8b_config():
    from transformers import LlamaConfig
    return LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False)


def test_llama3_8b_qlora_estimate_has_the_real_shapes():
    e = memory.estimate(llama3_8b_config(), quantize="nf4", device="cuda", lora_r=16, batch_size=1, seq_len=2048)
    assert 8.0e9 < e.total_params < 8.1e9                    # Llama-3-8B has 8.03 B parameters
    assert 6.9e9 < e.quantized_params < 7.0e9                # the decoder's linear layers
    assert e.other_params == 2 * 128256 * 4096 + 65 * 4096   # embeddings + LM head + RMSNorm weights
    assert 41e6 < e.lora_params < 43e6                       # r=16 on q,k,v,o,gate,up,down: 41.9 M
    # 4-bit weights ~3.6 GB + bf16 embeddings/head 2.1 GB: far below the bf16 model's 16 GB
    assert 5.0 * GIB < e.weights_bytes < 6.0 * GIB
    full = memory.estimate(llama3_8b_config(), quantize="none", device="cuda", lora_r=16, batch_size=1, seq_len=2048)
    assert full.weights_bytes > 2.5 * e.weights_bytes


def test_too_large_for_detected_memory_is_refused_before_loading():
    e = memory.estimate(llama3_8b_config(), quantize="nf4", device="cpu", batch_size=1, seq_len=2048)
    with pytest.raises(memory.MemoryBudgetError, match=r"exceeds the 4.0 GiB available on cpu"):
        memory.check_fits(e, available=4 * GIB, name="llama3-8b")
    ok = memory.check_fits(e, available=200 * GIB)
    assert ok["available_gib"] == 200.0 and ok["total_gib"] < 200


def test_embedded_model_fits_this_machine():
    e = memory.estimate("embedded:smollm2-135m-instruct", quantize="nf4", device="cpu", batch_size=4, seq_len=128)
    assert 130e6 < e.total_params < 140e6
    d = memory.check_fits(e)                                 # the real available RAM
    assert d["total_gib"] < 3
