"""Does a passage get the same greedy reply however it is batched? Measured with the kit's translation path.

For the first ``--n`` passages of a corpus (cut as phase 2 cuts them), the translator writes one block per passage
(``translate.generate.generate_replies``: prefilled header, stop strings, the code round) three ways, in one loaded
model per decoding mode:

* ``together``: every passage in one call (llama.cpp's parallel slots decode them side by side);
* ``reversed``: the same passages in one call, in reverse order (other neighbours in each step);
* ``alone``: one call per passage.

A passage *differs* when its reply text is not byte-identical across the three. Modes: ``default`` (the backend's
defaults: 16 parallel slots, shared prompt prefix, prompt-lookup drafts) and ``batch_invariant`` (each prompt alone
in an emptied cache). Rounds are interleaved (mode A, mode B, mode A, mode B) so that load changes hit both.

    PYTHONPATH=lib python bench/bench_batch_invariance.py --corpus CORPUS.jsonl --n 8 --out /tmp/inv.json
"""
from __future__ import annotations

import argparse
import json
import os
import time

from mathcode.generation import GenConfig, from_settings
from mathcode.translate import prompt as P, steps, translate as T
from mathcode.translate.generate import generate_replies


def passages(corpus: str, n: int, cfg) -> list[dict]:
    out = []
    for d in T.load_corpus(corpus):
        for p in cfg.split(d):
            out.append(p.to_dict())
            if len(out) >= n:
                return out
    return out


def replies(gen, ps, cfg, order: str) -> tuple[list[str], float]:
    convs = [P.build_messages(p["text"], cfg.instruction, worked_example=True, max_blocks=1, focus=P.focus_of(p))
             for p in ps]
    t0 = time.perf_counter()
    if order == "alone":
        texts = [generate_replies(gen, [c], cfg.gen, 1, cfg.block_tokens)[0].text for c in convs]
    elif order == "reversed":
        texts = [c.text for c in generate_replies(gen, convs[::-1], cfg.gen, 1, cfg.block_tokens)][::-1]
    else:
        texts = [c.text for c in generate_replies(gen, convs, cfg.gen, 1, cfg.block_tokens)]
    return texts, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=160, help="block_tokens")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", default="default,batch_invariant")
    ap.add_argument("--model", default="embedded:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    cfg = steps.configure(passage_unit="paragraph", max_passage_chars=700, context_chars=400, max_passages_per_doc=1,
                          max_blocks=1, block_tokens=a.tokens, max_new_tokens=a.tokens)
    ps = passages(a.corpus, a.n, cfg)
    gens = {m: from_settings("llamacpp", a.model, threads=a.threads, batch_invariant=(m == "batch_invariant"))
            for m in a.modes.split(",")}
    rows = []
    for r in range(a.rounds):
        for mode, gen in gens.items():
            got = {}
            for order in ("together", "reversed", "alone"):
                got[order], secs = replies(gen, ps, cfg, order)
                rows.append({"round": r, "mode": mode, "order": order, "seconds": round(secs, 1),
                             "load_1min": os.getloadavg()[0]})
                print(json.dumps(rows[-1]), flush=True)
            differ = [p["id"] for k, p in enumerate(ps) if len({got[o][k] for o in got}) > 1]
            rows.append({"round": r, "mode": mode, "passages": len(ps), "differ": len(differ), "differing": differ,
                         "replies": got})
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "replies"}), flush=True)
    for g in gens.values():
        g.close()
    with open(a.out, "w") as fh:
        json.dump({"passages": ps, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
