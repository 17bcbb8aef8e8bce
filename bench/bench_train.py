"""Phase 3 bench: the kit's QLoRA trainer vs. TRL ``SFTTrainer(packing=True)`` and the plain PEFT recipe —
same model, same documents, same NF4 double-quantized base, same compute dtype, LoRA r=16 on all linear layers,
gradient checkpointing, same tokens per optimizer step.

    .venv/bin/python bench/bench_train.py                          # CPU, SmolLM2-135M from the kit's cache
    .venv/bin/python bench/bench_train.py --repeats 3 --steps 6 --dtype bfloat16
    .venv/bin/python bench/bench_train.py --recipes mathcode,mathcode_docmask   # cost of document masking
    python bench/bench_train.py --gpu                              # CUDA: Llama-3-8B-shaped random model, seq 2048

Recipes (each run in its own subprocess, so peak memory is its own; the order rotates every repeat, so the
repeats are interleaved and a load change hits every recipe alike):
  mathcode          ``mathcode.train``: pre-packed EOS-joined blocks, default collator, its Trainer settings;
  mathcode_docmask  the same with ``document_mask`` (per-document position_ids, no attention across documents);
  trl               TRL ``SFTTrainer`` with ``SFTConfig(packing=True, max_length=block)`` on the pre-tokenized
                    documents, as TRL's docs recommend (best-fit-decreasing packing, padding-free batches);
                    its default strategy "bfd" truncates every document to ``max_length`` before packing:
                    ``kept`` reports the share of the documents' tokens that reach training;
  trl_split         the same with ``packing_strategy="bfd_split"`` (overflow split into further sequences,
                    nothing dropped) — what continued pretraining on long documents needs;
  plain             the PEFT documentation's QLoRA recipe: ``prepare_model_for_kbit_training``, ``Trainer`` with
                    ``DataCollatorForLanguageModeling(mlm=False)`` on concatenated-and-chunked tokens.
tokens/s counts optimizer steps after the first (warm-up) step, model load excluded; CPU-s/token uses the
process CPU time of the same steps (fairer on a loaded machine than wall time). Held-out loss: every recipe starts
from the same base (LoRA B = 0), trains the same steps on the same documents, and is then measured the same way
(``heldout_loss``, token-mean cross-entropy written out) on 16 blocks of documents none of them trains on: equal work
must give equal loss within the run-to-run spread, and a faster recipe that learns less is not faster.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

EMBEDDED = "embedded:smollm2-135m-instruct"
RECIPES = ("mathcode", "mathcode_docmask", "trl", "trl_split", "plain")


def cpu_documents(tok, n=160, corpus="sympy") -> list[list[int]]:
    """Token ids of real math text: sympy docstrings (long, very different lengths: median ~280 tokens), or
    reasoning-gym gsm_symbolic problems with worked solutions (short: many document boundaries per block)."""
    if corpus == "gsm_symbolic":
        from mathcode.embedded import iter_embedded
        return [tok(d["text"], add_special_tokens=False)["input_ids"]
                for d in iter_embedded("rg_gsm_symbolic", max_docs=n, seed=0)]
    import sympy
    out = []
    for k in sorted(dir(sympy)):
        d = inspect.getdoc(getattr(sympy, k))
        if d and len(d) > 200:
            out.append(tok(d, add_special_tokens=False)["input_ids"])
        if len(out) == n:
            break
    return out


def heldout_blocks(tok, block: int, n_blocks: int = 16, corpus="sympy"):
    """Blocks of documents no recipe trains on (the documents after the training ones), for the held-out loss."""
    import numpy as np
    skip = 160
    if corpus == "gsm_symbolic":
        from mathcode.embedded import iter_embedded
        docs = [tok(d["text"], add_special_tokens=False)["input_ids"]
                for d in iter_embedded("rg_gsm_symbolic", max_docs=skip + 80, seed=0)][skip:]
    else:
        import sympy
        docs = []
        for k in sorted(dir(sympy)):
            d = inspect.getdoc(getattr(sympy, k))
            if d and len(d) > 200:
                docs.append(tok(d, add_special_tokens=False)["input_ids"])
        docs = docs[skip:skip + 80]
    stream = [t for d in docs for t in d + [tok.eos_token_id]]
    n = min(n_blocks, len(stream) // block)
    return np.asarray(stream[: n * block], dtype=np.int64).reshape(n, block)


def heldout_loss(model, blocks, device) -> float:
    """Token-mean cross-entropy on held-out blocks, written out (the same measurement for every recipe)."""
    import torch
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for row in blocks:
            ids = torch.as_tensor(row, device=device)[None]
            logits = model(input_ids=ids).logits[0, :-1].float()
            total += float(torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum"))
            count += ids.shape[1] - 1
    return total / count


def gpu_documents(vocab: int, n=400, seed=0) -> list[list[int]]:
    """Random-token documents with a web-text-like length spread (weights and tokens do not matter for speed)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    lens = np.clip(rng.lognormal(6.5, 0.9, n).astype(int), 32, 8000)
    return [rng.integers(10, vocab - 10, int(k)).tolist() for k in lens]


def peak_mb(device):
    if device.startswith("cuda"):
        import torch
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_timer():
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def __init__(self):
            self.wall, self.cpu, self.losses = [], [], []

        def on_step_begin(self, *a, **k):
            self._w, self._c = time.perf_counter(), time.process_time()

        def on_step_end(self, *a, **k):
            self.wall.append(time.perf_counter() - self._w)
            self.cpu.append(time.process_time() - self._c)

        def on_log(self, args, state, control, logs=None, **k):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))
    return Timer()


def run_worker(a):
    import numpy as np
    import torch
    from transformers import AutoTokenizer
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    device = "cuda" if a.gpu else "cpu"
    dtype = getattr(torch, a.dtype)
    tok = AutoTokenizer.from_pretrained(a.model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    eos = tok.eos_token_id
    docs = gpu_documents(len(tok) if len(tok) > 1000 else 128256) if a.gpu else cpu_documents(tok, corpus=a.corpus)
    n_blocks = a.batch * a.steps
    stream = [t for d in docs for t in d + [eos]]
    need = n_blocks * a.block
    stream = (stream * (need // len(stream) + 1))[:need]       # the same tokens for the block-based recipes
    blocks = np.asarray(stream, dtype=np.int64).reshape(n_blocks, a.block)
    timer = step_timer()
    out_dir = tempfile.mkdtemp()
    optim = "paged_adamw_8bit" if a.gpu else "adamw_torch"
    kept = 1.0
    if a.recipe.startswith("mathcode"):
        from mathcode.train import packing, qlora, trainer as tr
        model = qlora.load_base(a.model_path, quantize="nf4", device=device, compute_dtype=a.dtype)
        model = qlora.attach_lora(model, qlora.LoraSettings(r=16, alpha=32, dropout=0.05), gradient_checkpointing=True)
        mode = "document_masked" if a.recipe.endswith("docmask") else "concatenate"
        ds = packing.BlockDataset(packing.Packed(blocks, n_blocks, blocks.size, 0, eos), packing=mode)
        s = tr.TrainSettings(max_steps=a.steps, per_device_batch_size=a.batch, grad_accum=1, warmup=1, eval_steps=0,
                             save_steps=10 ** 6, optimizer=optim)
        trainer = tr.build_trainer(model, tok, ds, None, tr.training_arguments(out_dir, s, device), [timer])
        trainer.args.disable_tqdm = True
    else:
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=dtype)
        model = AutoModelForCausalLM.from_pretrained(a.model_path, quantization_config=q, dtype=dtype,
                                                     device_map={"": 0 if a.gpu else "cpu"})
        lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
        common = dict(output_dir=out_dir, max_steps=a.steps, per_device_train_batch_size=a.batch, learning_rate=2e-4,
                      lr_scheduler_type="cosine", warmup_steps=1, logging_steps=1, save_strategy="no", report_to=[],
                      disable_tqdm=True, use_cpu=not a.gpu, bf16=a.gpu, optim=optim,
                      gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False})
        from datasets import Dataset
        if a.recipe.startswith("trl"):
            from trl import SFTConfig, SFTTrainer
            ds = Dataset.from_dict({"input_ids": docs})
            strategy = {"packing_strategy": "bfd_split"} if a.recipe == "trl_split" else {}     # default: "bfd"
            cfg = SFTConfig(**common, packing=True, max_length=a.block, dataset_num_proc=1, **strategy)
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                    gradient_checkpointing_kwargs={"use_reentrant": False})
            trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, peft_config=lcfg,
                                 callbacks=[timer])
            packed_tokens = sum(len(r["input_ids"]) for r in trainer.train_dataset)
            kept = packed_tokens / sum(len(d) for d in docs)
        else:
            from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                    gradient_checkpointing_kwargs={"use_reentrant": False})
            model = get_peft_model(model, lcfg)
            trainer = Trainer(model=model, args=TrainingArguments(**common), callbacks=[timer],
                              train_dataset=Dataset.from_dict({"input_ids": blocks.tolist()}),
                              data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    held = None if a.gpu else heldout_blocks(tok, a.block, corpus=a.corpus)
    before = heldout_loss(model, held, device) if held is not None and a.recipe.startswith("mathcode") else None
    trainer.train()
    after = heldout_loss(model, held, device) if held is not None else None
    wall, cpu = timer.wall[1:] or timer.wall, timer.cpu[1:] or timer.cpu
    toks = a.batch * a.block * len(wall)
    bounds = int((blocks == eos).sum())
    print(json.dumps({"recipe": a.recipe, "device": device, "doc_boundaries_per_block": bounds / n_blocks, "dtype": a.dtype, "steps": a.steps, "batch": a.batch,
                      "block": a.block, "tokens_per_s": toks / sum(wall), "cpu_s_per_1k_tokens": 1000 * sum(cpu) / toks,
                      "peak_mb": peak_mb(device), "loss_first": timer.losses[0] if timer.losses else None,
                      "loss_last": timer.losses[-1] if timer.losses else None, "kept": kept,
                      "heldout_before": before, "heldout_after": after}))


def random_8b_folder():
    """The real Llama-3-8B config (``mathcode.train.memory.LLAMA3_8B``) with random bf16 weights, saved once."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models as tm
    from mathcode.train.memory import known_config
    d = os.path.join(tempfile.gettempdir(), "llama3-8b-shape")
    if os.path.exists(os.path.join(d, "config.json")):
        return d
    m = AutoModelForCausalLM.from_config(known_config("meta-llama/Meta-Llama-3-8B"), dtype=torch.bfloat16)
    m.save_pretrained(d)
    vocab = {f"t{i}": i for i in range(128256)}
    t = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(tm.WordLevel(vocab, unk_token="t0")),
                                eos_token="t1", unk_token="t0", pad_token="t2")
    t.save_pretrained(d)
    return d


def held_cell(rs) -> str:
    vals = [r["heldout_after"] for r in rs if r.get("heldout_after") is not None]
    if not vals:
        return "-"
    return f"{statistics.median(vals):.4f} (" + ", ".join(f"{v:.4f}" for v in vals) + ")"


def summarize(rows):
    by = {}
    for r in rows:
        by.setdefault(r["recipe"], []).append(r)
    print("| recipe | device | dtype | batch x block | runs | tokens/s (median) | CPU-s / 1k tokens | peak MB | loss first → last | held-out loss after (each run) | text kept |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    med = {}
    for k, rs in by.items():
        med[k] = {f: statistics.median(r[f] for r in rs) for f in ("tokens_per_s", "cpu_s_per_1k_tokens", "peak_mb")}
        r0 = rs[0]
        each = ", ".join(f"{r['tokens_per_s']:.1f}" for r in rs)
        lf = statistics.median(r["loss_first"] for r in rs if r["loss_first"] is not None) if r0["loss_first"] else 0
        ll = statistics.median(r["loss_last"] for r in rs if r["loss_last"] is not None) if r0["loss_last"] else 0
        print(f"| {k} | {r0['device']} | {r0['dtype']} | {r0['batch']}x{r0['block']} | {len(rs)} | "
              f"{med[k]['tokens_per_s']:.1f} ({each}) | "
              f"{med[k]['cpu_s_per_1k_tokens']:.2f} | {med[k]['peak_mb']:.0f} | {lf:.3f} → {ll:.3f} | "
              f"{held_cell(rs)} | {r0['kept']:.0%} |")
    befores = [r["heldout_before"] for r in rows if r.get("heldout_before") is not None]
    if befores:
        print(f"held-out loss of the common start (base + zero LoRA, measured in the kit's runs): {befores[0]:.4f}")
    ref = next(iter(med), None)
    if ref:
        m = med[ref]
        for k, o in med.items():
            if k != ref:
                print(f"{ref} / {k}: tokens/s {m['tokens_per_s'] / o['tokens_per_s']:.2f}x, per CPU-second "
                      f"{o['cpu_s_per_1k_tokens'] / m['cpu_s_per_1k_tokens']:.2f}x, peak memory "
                      f"{m['peak_mb'] / o['peak_mb']:.2f}x")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="auto",
                   help="compute dtype for every recipe: auto (the kit's choice for this machine), float32, bfloat16, "
                        "or a comma list to compare dtypes (e.g. float32,bfloat16 with --recipes mathcode)")
    p.add_argument("--gpu", action="store_true", help="Llama-3-8B-shaped random model, seq 2048, batch 1")
    p.add_argument("--recipes", default="mathcode,trl,plain")
    p.add_argument("--corpus", default="sympy", choices=["sympy", "gsm_symbolic"],
                   help="CPU documents: long sympy docstrings or short gsm_symbolic problems (document boundaries)")
    p.add_argument("--worker", choices=RECIPES)
    p.add_argument("--model-path")
    a = p.parse_args()
    if a.worker:
        a.recipe = a.worker
        return run_worker(a)
    from mathcode.train.qlora import choose_compute_dtype
    dtypes = [choose_compute_dtype(d, "cuda" if a.gpu else "cpu")[0] for d in a.dtype.split(",")]
    if a.gpu:
        a.block, a.batch = (2048 if a.block == 128 else a.block), (1 if a.batch == 2 else a.batch)
        path = random_8b_folder()
    else:
        from mathcode import models
        path = models.resolve(EMBEDDED).path
    recipes = [(r, d) for r in a.recipes.split(",") for d in dtypes]
    rows = []
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MKL_NUM_THREADS": str(a.threads)}
    for rep in range(a.repeats):
        order = recipes[rep % len(recipes):] + recipes[:rep % len(recipes)]       # rotate: interleaved repeats
        for r, dt in order:
            cmd = [sys.executable, __file__, "--worker", r, "--model-path", path, "--steps", str(a.steps),
                   "--batch", str(a.batch), "--block", str(a.block), "--dtype", dt,
                   "--threads", str(a.threads), "--corpus", a.corpus] + (["--gpu"] if a.gpu else [])
            t0 = time.time()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if out.returncode or not line:
                print(f"recipe {r} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                continue
            rows.append(json.loads(line[-1]))
            if len(dtypes) > 1:
                rows[-1]["recipe"] += f"[{dt}]"
            print(f"# repeat {rep + 1} {rows[-1]['recipe']}: {rows[-1]['tokens_per_s']:.1f} tokens/s ({time.time() - t0:.0f} s, "
                  f"load average {os.getloadavg()[0]:.1f})", flush=True)
    summarize(rows)
    return 0


if __name__ == "__main__":
    main()
