"""Phase 3 bench: mathcode's QLoRA trainer vs the plain Hugging Face PEFT recipe, same model, data and steps.

    .venv/bin/python bench/bench_train.py                 # CPU, embedded SmolLM2-135M (prints a markdown table)
    .venv/bin/python bench/bench_train.py --steps 4 --batch 4 --block 128
    python bench/bench_train.py --gpu                     # CUDA: Llama-3-8B-shaped random model, seq 2048

Each recipe runs in its own subprocess so peak memory (RSS on CPU, CUDA max allocated on GPU) is its own.
tokens/s is measured over optimizer steps after the first (warm-up) step, excluding model load.

"Plain recipe" = the PEFT documentation's QLoRA recipe: BitsAndBytesConfig(nf4, double quant, bf16 compute),
``prepare_model_for_kbit_training``, LoRA on all linear layers, ``Trainer`` with
``DataCollatorForLanguageModeling(mlm=False)`` on concatenated-and-chunked text (the HF ``group_texts`` recipe).
mathcode differs in: fp32 compute on CPU (no fast bf16 GEMM on AVX2 CPUs), only norms upcast on CUDA
(embeddings/LM head stay bf16), pre-packed tensors (no collator copies).
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

EMBEDDED = "embedded:smollm2-135m-instruct"


def texts(n=120):
    import sympy
    out = []
    for k in sorted(dir(sympy)):
        d = inspect.getdoc(getattr(sympy, k))
        if d and len(d) > 300:
            out.append(d)
        if len(out) == n:
            break
    return out


class StepTimer:
    def __init__(self):
        from transformers import TrainerCallback

        class CB(TrainerCallback):
            def __init__(s):
                s.times = []
                s.t = None

            def on_step_begin(s, *a, **k):
                s.t = time.perf_counter()

            def on_step_end(s, *a, **k):
                s.times.append(time.perf_counter() - s.t)
        self.cb = CB()


def peak_mb(device):
    if device.startswith("cuda"):
        import torch
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(a):
    import torch
    from transformers import AutoTokenizer, Trainer, TrainingArguments, DataCollatorForLanguageModeling
    torch.manual_seed(0)
    device = "cuda" if a.gpu else "cpu"
    model_path = a.model_path
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    n_blocks = a.batch * a.steps
    timer = StepTimer()
    common = dict(output_dir=tempfile.mkdtemp(), max_steps=a.steps, per_device_train_batch_size=a.batch,
                  learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=1, logging_steps=1, save_strategy="no",
                  report_to=[], disable_tqdm=True, use_cpu=not a.gpu, bf16=a.gpu, remove_unused_columns=False)
    if a.gpu:
        import numpy as np
        blocks = np.random.default_rng(0).integers(0, tok.vocab_size, (n_blocks, a.block))
    else:
        ids = tok("\n".join(texts()), add_special_tokens=False)["input_ids"]
        import numpy as np
        need = n_blocks * a.block
        ids = (ids * (need // len(ids) + 1))[:need]
        blocks = np.asarray(ids).reshape(n_blocks, a.block)
    if a.recipe == "mathcode":
        from mathcode.train import packing, qlora, trainer as tr
        model = qlora.load_base(model_path, quantize="nf4", device=device)
        model = qlora.attach_lora(model, qlora.LoraSettings(r=16, alpha=32, dropout=0.05), gradient_checkpointing=True)
        ds = packing.BlockDataset(packing.Packed(blocks, n_blocks, blocks.size, 0, tok.eos_token_id))
        s = tr.TrainSettings(max_steps=a.steps, per_device_batch_size=a.batch, grad_accum=1, warmup=1, eval_steps=0,
                             save_steps=10 ** 6)
        args = tr.training_arguments(tempfile.mkdtemp(), s, device)
        trainer = tr.build_trainer(model, tok, ds, None, args, [timer.cb])
    else:
        from datasets import Dataset
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=q, dtype=torch.bfloat16,
                                                     device_map={"": 0 if a.gpu else "cpu"})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
        ds = Dataset.from_dict({"input_ids": blocks.tolist()})
        args = TrainingArguments(**common, optim="paged_adamw_8bit" if a.gpu else "adamw_torch")
        trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[timer.cb],
                          data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    trainer.train()
    timed = timer.cb.times[1:] or timer.cb.times
    print(json.dumps({"recipe": a.recipe, "device": device, "steps": a.steps, "batch": a.batch, "block": a.block,
                      "tokens_per_s": a.batch * a.block * len(timed) / sum(timed),
                      "step_s": sum(timed) / len(timed), "peak_mb": peak_mb(device)}))


def random_8b_folder():
    """A Llama-3-8B-shaped model with random weights, saved once (weights do not matter for speed/memory)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    d = os.path.join(tempfile.gettempdir(), "llama3-8b-shape")
    if os.path.exists(os.path.join(d, "config.json")):
        return d
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
                      tie_word_embeddings=False)
    m = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    m.save_pretrained(d)
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models as tm
    t = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(tm.WordLevel({"<unk>": 0, "</s>": 1}, unk_token="<unk>")),
                                eos_token="</s>", unk_token="<unk>")
    t.save_pretrained(d)
    return d


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--block", type=int, default=64)
    p.add_argument("--gpu", action="store_true", help="Llama-3-8B-shaped random model at --block (default 2048 on GPU)")
    p.add_argument("--recipes", default="mathcode,plain")
    p.add_argument("--worker", choices=["mathcode", "plain"])
    p.add_argument("--model-path")
    a = p.parse_args()
    if a.worker:
        a.recipe = a.worker
        return run_worker(a)
    if a.gpu:
        a.block = a.block if a.block != 64 else 2048
        a.batch = 1 if a.batch == 2 else a.batch
        path = random_8b_folder()
    else:
        from mathcode import models
        path = models.resolve(EMBEDDED).path
    rows = []
    for r in a.recipes.split(","):
        cmd = [sys.executable, __file__, "--worker", r, "--model-path", path, "--steps", str(a.steps),
               "--batch", str(a.batch), "--block", str(a.block)] + (["--gpu"] if a.gpu else [])
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if out.returncode or not line:
            print(f"recipe {r} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(line[-1]))
    print(f"| recipe | device | batch x block | steps (timed) | tokens/s | s/step | peak memory MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['recipe']} | {r['device']} | {r['batch']}x{r['block']} | {r['steps']} ({r['steps'] - 1}) "
              f"| {r['tokens_per_s']:.1f} | {r['step_s']:.2f} | {r['peak_mb']:.0f} |")
    if len(rows) == 2:
        m, pl = rows
        print(f"\nthroughput ratio mathcode/plain: {m['tokens_per_s'] / pl['tokens_per_s']:.2f}x, "
              f"peak memory ratio: {m['peak_mb'] / pl['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
