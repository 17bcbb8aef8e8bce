"""Generation throughput on CPU.

  --mode engines (default): llama.cpp (``llamacpp`` backend, the GGUF as is) vs transformers (``hf`` backend, the
      same GGUF dequantized to fp32) on the demo's real translation prompts (passages of the embedded math sources
      through ``translate.prompt.build_messages``), same model, greedy, same max_new_tokens; repeats interleaved
      (the engine order alternates); every output pair compared for equality.
  --mode batching: the hf backend batched (left padding) vs one prompt at a time (embedded SmolLM2-135M);
      --prompts short gives decode-heavy requests instead of translation prompts.

Run: .venv/bin/python bench/bench_generation.py [--model embedded:qwen2.5-coder-0.5b-instruct] [--n 6]
     [--max-new-tokens 128] [--threads 1] [--parallel 4] [--repeats 2]
Prints markdown tables (tokens/s per engine per repeat, ratio, output agreement) plus machine, load and date.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time


def translation_prompts(n: int, sources=("champ_solutions", "rg_gsm_symbolic", "rg_math_drills",
                                         "math_package_docstrings"), seed: int = 0) -> list[list[dict]]:
    """``n`` real translation conversations: passages of the embedded sources, round-robin over sources."""
    from mathcode.embedded import iter_embedded
    from mathcode.translate import passages as PS, prompt as PR
    per_source = []
    for s in sources:
        ps = []
        for doc in iter_embedded(s, max_docs=4 * n, seed=seed):
            ps += PS.split_document(doc, max_passages=1)
            if len(ps) >= n:
                break
        per_source.append(ps)
    chosen = [p for group in zip(*per_source) for p in group][:n]
    return [PR.build_messages(p.text) for p in chosen]


def _run(gen, convs, cfg):
    t0 = time.perf_counter()
    out = gen.chat(convs, cfg)
    dt = time.perf_counter() - t0
    toks = sum(c.completion_tokens for c in out)
    return out, {"tokens": toks, "prompt_tokens": sum(c.prompt_tokens for c in out), "seconds": dt,
                 "tokens_per_s": toks / dt}


def engines(a):
    import torch
    from mathcode.generation import GenConfig, make_generator
    torch.set_num_threads(a.threads)
    convs = translation_prompts(a.n)
    cfg = GenConfig(max_new_tokens=a.max_new_tokens, batch_size=a.parallel, temperature=0.0)
    t0 = time.perf_counter()
    lc = make_generator("llamacpp", a.model, n_parallel=a.parallel, threads=a.threads, n_ctx=a.n_ctx)
    load = {"llamacpp": time.perf_counter() - t0}
    t0 = time.perf_counter()
    hf = make_generator("hf", a.model, device="cpu")            # first use converts the GGUF once (cached)
    load["hf"] = time.perf_counter() - t0
    assert lc.render_chat(convs[0]) == hf.render_chat(convs[0]), "the two engines must see the same prompt text"
    engines_ = [("llamacpp", lc, True), ("hf", hf, None)]
    if a.unshared:                   # the same llama.cpp engine without the shared-prefix KV reuse
        engines_.insert(1, ("llamacpp-noshare", lc, False))
    rows, outs = [], {}
    for r in range(a.repeats):
        order = engines_ if r % 2 == 0 else engines_[::-1]
        for name, g, share in order:
            if share is not None:
                g.share_prefix = share
            out, m = _run(g, convs, cfg)
            outs.setdefault(name, out)
            rows.append({"repeat": r + 1, "engine": name, **m, "load": os.getloadavg()[0]})
            print(f"  repeat {r + 1} {name}: {m['tokens']} tokens in {m['seconds']:.1f} s "
                  f"({m['tokens_per_s']:.2f} tok/s)", flush=True)
    same = sum(x.text == y.text for x, y in zip(outs["llamacpp"], outs["hf"]))
    if "llamacpp-noshare" in outs:
        print("llama.cpp shared vs unshared prefix, identical outputs: "
              f"{sum(x.text == y.text for x, y in zip(outs['llamacpp'], outs['llamacpp-noshare']))}/{len(convs)}")
    prefix = []
    for x, y in zip(outs["llamacpp"], outs["hf"]):
        k = next((i for i, (u, v) in enumerate(zip(x.text, y.text)) if u != v), min(len(x.text), len(y.text)))
        prefix.append(k)
    print(f"\n{a.model}, greedy, max_new_tokens={a.max_new_tokens}, {len(convs)} translation prompts "
          f"(mean {statistics.mean(c.prompt_tokens for c in outs['hf']):.0f} prompt tokens), "
          f"threads={a.threads}, llama.cpp n_parallel={a.parallel}, hf batch_size={a.parallel}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"date {datetime.date.today()}, load average during runs "
          f"{min(r['load'] for r in rows):.1f}–{max(r['load'] for r in rows):.1f}\n")
    print("| repeat | engine | prompt tokens | completion tokens | seconds | completion tokens/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['repeat']} | {r['engine']} | {r['prompt_tokens']} | {r['tokens']} | {r['seconds']:.1f} | "
              f"{r['tokens_per_s']:.2f} |")
    ratios = [next(x["tokens_per_s"] for x in rows if x["repeat"] == k and x["engine"] == "llamacpp")
              / next(x["tokens_per_s"] for x in rows if x["repeat"] == k and x["engine"] == "hf")
              for k in range(1, a.repeats + 1)]
    print(f"\nratio llama.cpp / transformers tokens/s per repeat: {', '.join(f'{x:.1f}x' for x in ratios)}")
    print(f"load: llama.cpp {load['llamacpp']:.1f} s, transformers {load['hf']:.1f} s (includes the one-time "
          f"GGUF conversion when the cache was empty)")
    print(f"identical greedy outputs: {same}/{len(convs)}; common prefix chars per prompt: {prefix}")
    if a.show:
        for x, y in zip(outs["llamacpp"], outs["hf"]):
            print("---- llamacpp\n" + x.text + "\n---- hf\n" + y.text)


def batching(a):
    import torch
    from mathcode.generation import GenConfig, make_generator
    torch.set_num_threads(a.threads)
    convs = translation_prompts(a.n)
    if a.prompts == "short":         # decode-heavy: one-line requests that make the model write long answers
        convs = [[{"role": "user", "content": f"Write a Python program that prints the first {10 + i} prime "
                                              f"numbers, and explain every line."}] for i in range(a.n)]
    g = make_generator("hf", "embedded:smollm2-135m-instruct", device="cpu")
    g.chat(convs[:1], GenConfig(max_new_tokens=4))                     # warm-up
    print("| batch size | prompts | completion tokens | seconds | tokens/s |")
    print("|---|---|---|---|---|")
    for bs in (1, a.parallel):
        _, m = _run(g, convs, GenConfig(max_new_tokens=a.max_new_tokens, batch_size=bs))
        print(f"| {bs} | {len(convs)} | {m['tokens']} | {m['seconds']:.1f} | {m['tokens_per_s']:.2f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["engines", "batching"], default="engines")
    ap.add_argument("--model", default="embedded:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--n", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=4, help="llama.cpp slots and hf batch size")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--show", action="store_true", help="print both engines' outputs")
    ap.add_argument("--prompts", choices=["translation", "short"], default="translation", help="batching mode")
    ap.add_argument("--unshared", action="store_true", help="also run llama.cpp without shared-prefix reuse")
    a = ap.parse_args()
    (engines if a.mode == "engines" else batching)(a)


if __name__ == "__main__":
    main()
