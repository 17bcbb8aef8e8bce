"""The GPU check: one script for the day a CUDA GPU is lent, at most 9 minutes in one go, nothing downloaded at run
time, writing one JSON. Three parts, each in its own subprocess (its own CUDA context and peak memory, its own time
box, and a failure in one does not lose the others):

  gradients  the GPU recipe's training step (NF4 base, bf16 compute, paged 8-bit AdamW, gradient checkpointing, an
             evaluation first) against plain PyTorch: the same random Llama-shaped model in fp32 on the CPU with the
             *dequantized* NF4 weights and hand-written LoRA, token-mean cross-entropy written out (the method of
             tests/test_train_reference_gradients.py, on a random model because the kit's converted model does not
             fit the 64 MiB that travels); pass: relative error <= 5% and every large tensor at cosine >= 0.99 (the
             bf16 bar, reasoned there)
  speed      Llama-3-8B-shaped random model (the real config, random bf16 weights), sequence length 2048, batch 1,
             LoRA r=16 on all linear layers, gradient checkpointing, paged 8-bit AdamW: the kit's trainer and TRL
             ``SFTTrainer(packing=True)`` configured as TRL's docs recommend, one after the other on the same
             tokens; tokens/s after a warm-up step and CUDA peak memory
  vllm_lora  vLLM's offline engine with a LoRA adapter (non-zero random weights) against transformers + PEFT with
             the same adapter, fp32, greedy, on token-id prompts: generated tokens equal, and different from the base

  --cpu-smoke   the same three parts on tiny shapes on the CPU (AdamW instead of the paged 8-bit one, which needs
                CUDA), so the script is known to execute where no GPU is lent; its figures mean nothing.

Run on the GPU machine (carry ``.whl`` with bitsandbytes 0.50.2 and TRL; see ../shared/NOTES.md and the device
README for the download line; vLLM does not fit in what travels, so vllm_lora runs only where the image has vLLM,
and the JSON says so where it does not):

  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:lib
  PYTHONUNBUFFERED=1 python3 bench/gpu_check.py --out $OUT/gpu_check.json

Here: PYTHONPATH=lib python bench/gpu_check.py --cpu-smoke --out /tmp/gpu_check_smoke.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ("gradients", "speed", "vllm_lora")
BUDGET_S = {"gradients": 120, "speed": 330, "vllm_lora": 150}          # sums to 10 min of hard caps; typical < 9
SMOKE_BUDGET_S = {"gradients": 300, "speed": 400, "vllm_lora": 600}
R, ALPHA = 8, 16


# --- shared helpers -----------------------------------------------------------------------------------------------

def tiny_llama_folder(folder: Path, *, hidden=256, layers=2, inter=688, heads=4, kv=2, vocab=2048, seed=0,
                      dtype="bfloat16") -> str:
    """A random Llama of the given shape with a word-level tokenizer (t0 … tN), saved as a model folder."""
    import torch
    from tokenizers import Tokenizer, models as tm
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast
    if (folder / "config.json").exists():
        return str(folder)
    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=kv, vocab_size=vocab, max_position_embeddings=4096,
                      tie_word_embeddings=False, bos_token_id=0, eos_token_id=1, pad_token_id=2)
    m = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    m.save_pretrained(folder)
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(tm.WordLevel({f"t{i}": i for i in range(vocab)},
                                                                          unk_token="t3")),
                                  bos_token="t0", eos_token="t1", pad_token="t2", unk_token="t3")
    tok.save_pretrained(folder)
    return str(folder)


def peak_mb(device: str) -> float:
    import resource
    import torch
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- part 1: reference gradients ----------------------------------------------------------------------------------

def part_gradients(device: str, smoke: bool, work: Path) -> dict:
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import bitsandbytes.functional as bf
    from mathcode.train import packing, qlora, trainer as tr
    folder = tiny_llama_folder(work / "grad-model", hidden=256 if smoke else 512, layers=2 if smoke else 4,
                               inter=688 if smoke else 1376, vocab=2048)
    tok = AutoTokenizer.from_pretrained(folder, padding_side="right")
    block, eos = 48, tok.eos_token_id
    rng = np.random.default_rng(0)
    rows = rng.integers(4, 2048, (2, block))
    rows[:, [15, 31]] = eos                                   # document boundaries inside each block
    blocks = packing.Packed(rows, 2, rows.size, 0, eos)
    # the kit's path, on `device`, with an evaluation before training (the notebook's order)
    torch.manual_seed(0)
    base = qlora.load_base(folder, quantize="nf4", device=device, compute_dtype="bfloat16")
    model = qlora.attach_lora(base, qlora.LoraSettings(r=R, alpha=ALPHA, dropout=0.0), gradient_checkpointing=True)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.copy_((torch.randn(p.shape, generator=g) * 0.02).to(p.device, p.dtype))
    ds = packing.BlockDataset(blocks, packing="concatenate")
    s = tr.TrainSettings(max_steps=1, per_device_batch_size=2, grad_accum=1, learning_rate=5e-3, warmup=0,
                         eval_steps=0, save_steps=100, seed=0, max_grad_norm=0.0)
    args = tr.training_arguments(work / "ckpt", s, device)
    captured = {}

    class Capture(tr._callback_base()):
        def on_pre_optimizer_step(self, args, state, control, **kw):
            for n, p in model.named_parameters():
                if p.requires_grad and "lora_" in n:
                    captured[n] = (p.grad.detach().float().cpu().clone(), p.detach().float().cpu().clone())

    trainer = tr.build_trainer(model, tok, ds, ds, args, callbacks=[Capture()])
    tr.heldout_perplexity(trainer)
    trainer.train()
    opt = trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer
    optimizer = type(opt).__name__
    # the reference: fp32 on the CPU, NF4 weights dequantized from a separate load, LoRA written out
    qbase = qlora.load_base(folder, quantize="nf4", device="cpu", compute_dtype="float32")
    deq = {}
    for n, m in qbase.named_modules():
        if n.endswith("_proj"):
            w = m.weight
            deq[n] = bf.dequantize_4bit(w.data, w.quant_state).float() if getattr(w, "quant_state", None) is not None \
                else w.detach().float()
    ref = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    ref.config.use_cache = False
    for p in ref.parameters():
        p.requires_grad_(False)

    class RefLoRA(torch.nn.Module):
        def __init__(self, weight, bias):
            super().__init__()
            self.weight, self.bias = weight, bias
            self.A = torch.nn.Parameter(torch.zeros(R, weight.shape[1]))
            self.B = torch.nn.Parameter(torch.zeros(weight.shape[0], R))

        def forward(self, x):
            return torch.nn.functional.linear(x, self.weight, self.bias) + (x @ self.A.t()) @ self.B.t() * (ALPHA / R)

    for n, w in deq.items():
        parent, child = n.rsplit(".", 1)
        setattr(ref.get_submodule(parent), child, RefLoRA(w, getattr(ref.get_submodule(parent), child).bias))
    names = {}
    for n, (_, val) in captured.items():
        head, rest = n.split(".lora_")
        mod, which = head.removeprefix("base_model.model."), rest[0]
        getattr(ref.get_submodule(mod), which).data.copy_(val)
        names[n] = (mod, which)
    total, count = torch.zeros(()), 0
    for row in rows:
        ids = torch.as_tensor(row)
        logits = ref(input_ids=ids[None]).logits[0]
        logp = torch.log_softmax(logits[:-1].float(), -1)
        total = total - logp.gather(-1, ids[1:, None]).sum()
        count += len(ids) - 1
    (total / count).backward()
    refg = {n: getattr(ref.get_submodule(m), w).grad for n, (m, w) in names.items()}
    k = torch.cat([captured[n][0].flatten() for n in sorted(refg)])
    r = torch.cat([refg[n].flatten() for n in sorted(refg)])
    norm = r.norm()
    cos = {n: float(torch.nn.functional.cosine_similarity(captured[n][0].flatten(), refg[n].flatten(), dim=0))
           for n in refg if refg[n].norm() >= 0.01 * norm}
    rel = float((k - r).norm() / norm)
    worst = min(cos.values())
    return {"device": device, "optimizer": optimizer, "compute_dtype": "bfloat16", "lora_tensors": len(refg),
            "rel_err": rel, "worst_cos": worst, "norm_ratio": float(k.norm() / norm),
            "pass": rel <= 0.05 and worst >= 0.99, "bar": "rel_err <= 0.05 and cosine >= 0.99"}


# --- part 2: 8B-shaped speed and memory against TRL ---------------------------------------------------------------

def speed_worker(recipe: str, folder: str, device: str, block: int, steps: int) -> dict:
    import numpy as np
    import torch
    from transformers import AutoTokenizer
    sys.path.insert(0, str(HERE))
    from bench_train import gpu_documents, step_timer
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(folder)
    vocab, eos = len(tok), tok.eos_token_id
    docs = [[t % vocab for t in d] for d in gpu_documents(vocab, n=64)]
    stream = [t for d in docs for t in d + [eos]]
    need = steps * block
    stream = (stream * (need // len(stream) + 1))[:need]
    blocks = np.asarray(stream, dtype=np.int64).reshape(steps, block)
    optim = "paged_adamw_8bit" if device.startswith("cuda") else "adamw_torch"
    timer, out = step_timer(), tempfile.mkdtemp()
    if recipe == "mathcode":
        from mathcode.train import packing, qlora, trainer as tr
        model = qlora.load_base(folder, quantize="nf4", device=device, compute_dtype="bfloat16")
        model = qlora.attach_lora(model, qlora.LoraSettings(r=16, alpha=32, dropout=0.05), gradient_checkpointing=True)
        ds = packing.BlockDataset(packing.Packed(blocks, steps, blocks.size, 0, eos), packing="concatenate")
        s = tr.TrainSettings(max_steps=steps, per_device_batch_size=1, grad_accum=1, warmup=1, eval_steps=0,
                             save_steps=10 ** 6, optimizer=optim)
        trainer = tr.build_trainer(model, tok, ds, None, tr.training_arguments(out, s, device), [timer])
    else:
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        from trl import SFTConfig, SFTTrainer
        q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=q, dtype=torch.bfloat16,
                                                     device_map={"": 0 if device.startswith("cuda") else "cpu"})
        cfg = SFTConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=1, learning_rate=2e-4,
                        warmup_steps=1, logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True,
                        use_cpu=not device.startswith("cuda"), bf16=device.startswith("cuda"), optim=optim,
                        gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False},
                        packing=True, max_length=block, packing_strategy="bfd_split", dataset_num_proc=1)
        lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_dict({"input_ids": blocks.tolist()}),
                             processing_class=tok, peft_config=lcfg, callbacks=[timer])
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    wall = timer.wall[1:] or timer.wall
    return {"recipe": recipe, "tokens_per_s": block * len(wall) / sum(wall), "timed_steps": len(wall),
            "peak_mb": peak_mb(device), "loss_first": timer.losses[0] if timer.losses else None,
            "loss_last": timer.losses[-1] if timer.losses else None}


def part_speed(device: str, smoke: bool, work: Path, budget: float) -> dict:
    import torch
    t0 = time.time()
    if smoke:
        folder, block, steps = tiny_llama_folder(work / "speed-model", vocab=2048), 256, 3
        shape = "tiny Llama (hidden 256, 2 layers)"
    else:
        from transformers import AutoModelForCausalLM
        from mathcode.train.memory import known_config
        folder = work / "llama3-8b-shape"
        if not (folder / "config.json").exists():
            with torch.device("cuda"):                           # random init on the GPU: seconds, not minutes
                m = AutoModelForCausalLM.from_config(known_config("meta-llama/Meta-Llama-3-8B"), dtype=torch.bfloat16)
            m.save_pretrained(folder)
            del m
            torch.cuda.empty_cache()
            tiny_llama_folder(folder / "tok-only", vocab=128256, layers=1, hidden=64, inter=128, heads=2, kv=1)
            for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
                if (folder / "tok-only" / f).exists():
                    (folder / f).write_bytes((folder / "tok-only" / f).read_bytes())
        folder, block, steps = str(folder), 2048, 5
        shape = "Llama-3-8B config, random bf16 weights"
    out = {"shape": shape, "seq_len": block, "batch": 1, "lora_r": 16, "prepare_s": round(time.time() - t0, 1),
           "recipes": {}}
    for recipe in ("mathcode", "trl"):
        left = budget - (time.time() - t0)
        if left < 30:
            out["recipes"][recipe] = {"skipped": f"time box: {left:.0f} s left"}
            continue
        res = subprocess.run([sys.executable, __file__, "--speed-worker", recipe, "--model", str(folder), "--device",
                              device, "--block", str(block), "--steps", str(steps)], capture_output=True, text=True,
                             timeout=left)
        line = [x for x in res.stdout.splitlines() if x.startswith("{")]
        out["recipes"][recipe] = json.loads(line[-1]) if res.returncode == 0 and line else \
            {"error": f"exit {res.returncode}", "stderr_tail": res.stderr[-1500:]}
    m, t = out["recipes"].get("mathcode", {}), out["recipes"].get("trl", {})
    if "tokens_per_s" in m and "tokens_per_s" in t:
        out["mathcode_over_trl"] = {"tokens_per_s": m["tokens_per_s"] / t["tokens_per_s"],
                                    "peak_memory": m["peak_mb"] / t["peak_mb"]}
    return out


# --- part 3: vLLM + LoRA against transformers + PEFT --------------------------------------------------------------

def part_vllm_lora(device: str, smoke: bool, work: Path) -> dict:
    import importlib.util
    if importlib.util.find_spec("vllm") is None:
        return {"skipped": "vLLM is not importable on this machine (it does not fit in what travels); install it "
                           "there and rerun this part: python bench/gpu_check.py --parts vllm_lora"}
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    folder = tiny_llama_folder(work / "lora-model", hidden=256, layers=2, inter=688, vocab=2048, dtype="float32")
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(base, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))
    adapter = work / "adapter"
    peft_model.save_pretrained(adapter)
    prompts = [[0, 11, 57, 309, 1021], [0, 400, 401, 402], [0, 7, 7, 7, 7, 7, 1500]]
    n_new = 12
    dev = "cuda" if device.startswith("cuda") else "cpu"
    peft_model.to(dev).eval()

    def hf_greedy(m):
        outs = []
        for p in prompts:
            ids = torch.tensor([p], device=dev)
            with torch.no_grad():
                g = m.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_new,
                               do_sample=False, eos_token_id=None, pad_token_id=2)
            outs.append(g[0, len(p):].tolist())
        return outs

    hf_lora = hf_greedy(peft_model)
    with peft_model.disable_adapter():
        hf_base = hf_greedy(peft_model)
    del peft_model, base
    if dev == "cuda":
        torch.cuda.empty_cache()
    import vllm
    from vllm.lora.request import LoRARequest
    kw = dict(gpu_memory_utilization=0.3) if dev == "cuda" else {}
    llm = vllm.LLM(model=folder, dtype="float32", enable_lora=True, max_lora_rank=8, max_loras=1, max_model_len=512,
                   enforce_eager=True, seed=0, **kw)
    sp = vllm.SamplingParams(max_tokens=n_new, temperature=0.0, ignore_eos=True)
    inputs = [{"prompt_token_ids": p} for p in prompts]
    v_lora = [list(o.outputs[0].token_ids) for o in llm.generate(inputs, sp, lora_request=LoRARequest("a", 1, str(adapter)))]
    v_base = [list(o.outputs[0].token_ids) for o in llm.generate(inputs, sp)]
    return {"vllm": vllm.__version__, "device": dev, "dtype": "float32", "prompts": len(prompts), "new_tokens": n_new,
            "lora_equal_hf_lora": sum(a == b for a, b in zip(v_lora, hf_lora)),
            "base_equal_hf_base": sum(a == b for a, b in zip(v_base, hf_base)),
            "lora_differs_from_base": sum(a != b for a, b in zip(v_lora, v_base)),
            "pass": v_lora == hf_lora and v_base == hf_base and v_lora != v_base,
            "tokens": {"vllm_lora": v_lora, "hf_lora": hf_lora, "vllm_base": v_base, "hf_base": hf_base}}


# --- driver -------------------------------------------------------------------------------------------------------

def part_main(part: str, device: str, smoke: bool, work: Path, budget: float) -> dict:
    if part == "gradients":
        return part_gradients(device, smoke, work)
    if part == "speed":
        return part_speed(device, smoke, work, budget)
    return part_vllm_lora(device, smoke, work)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU: checks that every part runs")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--budget", type=float, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--speed-worker", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    ap.add_argument("--block", type=int, default=2048, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.speed_worker:
        print(json.dumps(speed_worker(a.speed_worker, a.model, a.device, a.block, a.steps)))
        return
    if a.part:
        print(json.dumps(part_main(a.part, a.device, a.cpu_smoke, Path(a.work), a.budget)))
        return
    import torch
    device = "cpu" if a.cpu_smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here; run with --cpu-smoke to check that the script executes")
    budgets = SMOKE_BUDGET_S if a.cpu_smoke else BUDGET_S
    t_all = time.time()
    report = {"started_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "mode": "cpu-smoke (tiny shapes; figures mean nothing)" if a.cpu_smoke else "gpu",
              "machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "torch": torch.__version__, "cuda": torch.version.cuda,
                          "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
                          "cpus": os.cpu_count(), "load_before": os.getloadavg()}, "parts": {}}
    for name in ("transformers", "peft", "bitsandbytes", "trl", "vllm"):
        try:
            report["machine"][name] = __import__(name).__version__
        except Exception as e:                                  # noqa: BLE001 - recorded, the part says more
            report["machine"][name] = f"not importable ({type(e).__name__})"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "lib"), os.environ.get("PYTHONPATH", "")]),
               HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    with tempfile.TemporaryDirectory() as tmp:
        for part in [p for p in a.parts.split(",") if p]:
            t0 = time.time()
            cmd = [sys.executable, __file__, "--part", part, "--device", device, "--work", tmp,
                   "--budget", str(budgets[part] - 10)] + (["--cpu-smoke"] if a.cpu_smoke else [])
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=budgets[part], env=env)
                line = [x for x in res.stdout.splitlines() if x.startswith("{")]
                out = json.loads(line[-1]) if res.returncode == 0 and line else \
                    {"error": f"exit {res.returncode}", "stderr_tail": res.stderr[-2500:]}
            except subprocess.TimeoutExpired:
                out = {"error": f"time box of {budgets[part]} s reached"}
            out["seconds"] = round(time.time() - t0, 1)
            report["parts"][part] = out
            print(f"{part}: {json.dumps({k: v for k, v in out.items() if k not in ('tokens', 'stderr_tail')})}",
                  flush=True)
            Path(a.out).write_text(json.dumps(report, indent=1))       # what is done so far survives a kill
    report["seconds"] = round(time.time() - t_all, 1)
    report["machine"]["load_after"] = os.getloadavg()
    Path(a.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {a.out} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
