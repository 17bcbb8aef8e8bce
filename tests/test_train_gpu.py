"""The GPU path of phase 3 (skipped without CUDA): bf16 compute in the 4-bit layers, paged 8-bit AdamW really used,
and the memory estimate within its stated band of what CUDA measures. Randomly initialised Llama-shaped models
(weights do not matter for dtypes, optimizers or memory), so no download is needed."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from mathcode.train import memory, packing, qlora, trainer as tr

pytestmark = pytest.mark.gpu


def llama_folder(tmp_path, hidden=512, layers=4, inter=1536, vocab=32000):
    from tokenizers import Tokenizer, models as tm
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=8,
                      num_key_value_heads=4, vocab_size=vocab, max_position_embeddings=4096, tie_word_embeddings=False)
    AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16).save_pretrained(tmp_path)
    vocab_map = {f"t{i}": i for i in range(vocab)}
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer(tm.WordLevel(vocab_map, unk_token="t0")), eos_token="t1",
                            unk_token="t0", pad_token="t2").save_pretrained(tmp_path)
    return str(tmp_path)


def random_blocks(n, block, vocab, eos=1):
    b = np.random.default_rng(0).integers(3, vocab, (n, block))
    b[:, block // 2] = eos
    return packing.Packed(b, n, b.size, 0, eos)


def train(model_dir, tmp_path, steps=3, batch=1, block=512, vocab=32000):
    import transformers
    base = qlora.load_base(model_dir, quantize="nf4", device="cuda")
    model = qlora.attach_lora(base, qlora.LoraSettings(r=16, alpha=32), gradient_checkpointing=True)
    s = tr.TrainSettings(max_steps=steps, per_device_batch_size=batch, grad_accum=1, eval_steps=0, save_steps=10 ** 6)
    args = tr.training_arguments(tmp_path / "ckpt", s, "cuda:0")
    tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    t = tr.build_trainer(model, tok, packing.BlockDataset(random_blocks(steps * batch, block, vocab)), None, args)
    torch.cuda.reset_peak_memory_stats()
    t.train()
    return base, t


def test_bf16_compute_in_the_4bit_layers(tmp_path):
    import bitsandbytes as bnb
    d = llama_folder(tmp_path)
    assert qlora.choose_compute_dtype("auto", "cuda:0")[0] == "bfloat16"
    base = qlora.load_base(d, quantize="nf4", device="cuda")
    layers = [m for m in base.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.compute_dtype == torch.bfloat16 for m in layers)
    with torch.no_grad():
        out = base(input_ids=torch.randint(3, 32000, (1, 64), device="cuda"))
    assert torch.isfinite(out.logits).all()


def test_paged_8bit_adamw_is_the_optimizer_and_loss_is_finite(tmp_path):
    import bitsandbytes as bnb
    _, t = train(llama_folder(tmp_path), tmp_path, steps=3)
    assert t.args.optim.value == "paged_adamw_8bit"
    opt = t.optimizer.optimizer if hasattr(t.optimizer, "optimizer") else t.optimizer
    assert isinstance(opt, bnb.optim.PagedAdamW8bit)
    losses = [h["loss"] for h in t.state.log_history if "loss" in h]
    assert losses and all(np.isfinite(losses))


def test_memory_estimate_is_within_its_band_of_the_measured_peak(tmp_path):
    d = llama_folder(tmp_path, hidden=1024, layers=8, inter=3584, vocab=32000)
    _, t = train(d, tmp_path, steps=2, batch=1, block=1024)
    measured = torch.cuda.max_memory_allocated()
    est = memory.estimate(memory._config(d), quantize="nf4", device="cuda", lora_r=16, batch_size=1, seq_len=1024)
    # the estimate includes ~0.5 GiB of CUDA context that max_memory_allocated does not see
    predicted = est.total_bytes - est.overhead_bytes
    assert 0.6 * measured <= predicted <= 1.6 * measured, (predicted / 2 ** 30, measured / 2 ** 30)
