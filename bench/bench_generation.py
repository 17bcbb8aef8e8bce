"""Generation throughput of the local transformers backend: batched (left padding) vs one prompt at a time.

Run: .venv/bin/python bench/bench_generation.py [--n 8] [--max-new-tokens 48] [--threads 1]
Uses the embedded SmolLM2-135M-Instruct on CPU and real translation prompts (passages of the demo corpus
built from reasoning-gym). Prints a markdown table with completion tokens per second.
"""
from __future__ import annotations

import argparse
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--prompts", choices=["translation", "short"], default="translation",
                    help="translation: real ~300-token translation prompts (prefill-heavy); short: one-line "
                         "requests that make the model write long answers (decode-heavy)")
    a = ap.parse_args()
    import torch
    if a.threads:
        torch.set_num_threads(a.threads)
    import reasoning_gym as rg
    from mathcode.generation import GenConfig, make_generator
    from mathcode.translate import passages as PS, prompt as PR

    data = rg.create_dataset("gsm_symbolic", size=a.n, seed=3)
    docs = [{"id": str(i), "source": "gsm", "text": x["question"] + "\n\n" + x["metadata"]["answer_cot"]}
            for i, x in enumerate(data)]
    passages = [PS.split_document(d, max_chars=600, context_chars=200, max_passages=1) for d in docs]
    convs = [PR.build_messages(p[0].text, worked_example=False) for p in passages if p]
    if a.prompts == "short":
        convs = [[{"role": "user", "content": f"Write a Python program that prints the first {10 + i} prime numbers, "
                                              f"and explain every line."}] for i in range(a.n)]
    g = make_generator("hf", device="cpu")
    g.chat(convs[:1], GenConfig(max_new_tokens=4))                     # warm-up
    rows = []
    for bs in (1, a.batch_size):
        g.stats.update(requests=0, prompt_tokens=0, completion_tokens=0, seconds=0.0)
        t0 = time.perf_counter()
        out = g.chat(convs, GenConfig(max_new_tokens=a.max_new_tokens, batch_size=bs))
        dt = time.perf_counter() - t0
        toks = sum(c.completion_tokens for c in out)
        rows.append({"batch_size": bs, "prompts": len(convs), "completion_tokens": toks, "seconds": round(dt, 1),
                     "tokens_per_s": round(toks / dt, 2)})
    print(f"\nHF backend, embedded SmolLM2-135M-Instruct, CPU ({os.cpu_count()} cores, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}), greedy, max_new_tokens={a.max_new_tokens}, {a.prompts} prompts\n")
    print("| batch size | prompts | completion tokens | seconds | tokens/s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch_size']} | {r['prompts']} | {r['completion_tokens']} | {r['seconds']} | {r['tokens_per_s']} |")
    print(f"\nratio batched/unbatched: {rows[1]['tokens_per_s'] / max(rows[0]['tokens_per_s'], 1e-9):.1f}x")


if __name__ == "__main__":
    main()
