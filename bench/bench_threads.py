"""CPU threads for torch: 1 vs. 2 (vs. N) on a short generation and a short LoRA training step.

Why: ``mathcode.phase.start`` picks each phase's torch thread count (1 on machines with 1–2 cores, cores − 1
above). This measures that choice on the machine at hand, with whatever load it has — say what the load was.

    .venv/bin/python bench/bench_threads.py --threads 1 2 --repeats 3

Each measurement runs in its own subprocess (torch's thread pool is fixed at first use), thread counts are
interleaved within each repeat, and the load average is printed next to every row. The model is the embedded
SmolLM2-135M (fp32, as phases 2–4 run it on CPU); weights only matter for realism, not for speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WORKER = r"""
import json, os, sys, time
n, task, new_tokens = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import torch
torch.set_num_threads(n)
from mathcode import models
tok = models.load_tokenizer("embedded:smollm2-135m-instruct")
model = models.load_model("embedded:smollm2-135m-instruct", device="cpu", dtype=torch.float32)
text = "Question: A train travels 120 km in 1.5 hours. What is its average speed in km/h?\nAnswer:" * 3
if task == "generate":
    enc = tok([text], return_tensors="pt")
    model.generate(**enc, max_new_tokens=4, do_sample=False)            # warm-up
    t0 = time.perf_counter()
    out = model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "tokens": int(out.shape[1] - enc["input_ids"].shape[1])}))
else:
    from peft import LoraConfig, get_peft_model
    m = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    ids = tok([text] * 4, return_tensors="pt", truncation=True, max_length=128)["input_ids"]
    def step():
        loss = m(input_ids=ids, labels=ids).loss
        loss.backward(); opt.step(); opt.zero_grad()
    step()                                                                # warm-up
    t0 = time.perf_counter()
    for _ in range(2):
        step()
    print(json.dumps({"seconds": (time.perf_counter() - t0) / 2, "tokens": int(ids.numel())}))
"""


def measure(n: int, task: str, new_tokens: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}
    r = subprocess.run([sys.executable, "-c", WORKER, str(n), task, str(new_tokens)], capture_output=True, text=True,
                       env=env, timeout=3600)
    if r.returncode:
        raise SystemExit(f"worker failed ({task}, {n} threads):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--tasks", nargs="+", default=["generate", "train"])
    a = ap.parse_args(argv)
    rows = []
    for rep in range(a.repeats):
        for task in a.tasks:
            for n in (a.threads if rep % 2 == 0 else list(reversed(a.threads))):   # interleaved, order alternates
                load = os.getloadavg()[0]
                r = measure(n, task, a.new_tokens)
                rows.append({"repeat": rep, "task": task, "threads": n, "load1": round(load, 2), **r})
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} CPUs · median seconds (and ratio to 1 thread):")
    for task in a.tasks:
        med = {n: statistics.median(r["seconds"] for r in rows if r["task"] == task and r["threads"] == n)
               for n in a.threads}
        base = med[a.threads[0]]
        print(f"  {task:9s} " + "  ".join(f"{n} thr: {s:7.2f} s ({s / base:4.2f}x)" for n, s in med.items()))
    loads = [r["load1"] for r in rows]
    print(f"  load average (1 min) during the runs: {min(loads)}–{max(loads)}")


if __name__ == "__main__":
    main()
