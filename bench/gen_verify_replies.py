"""Capture REAL translator replies for the verifier's hand-labelled set (bench/bench_verify.py).

Runs the kit's own prompt and block-by-block generation (``translate.generate.generate_replies``) with the
embedded translator on passages cut the way the demo cuts them (one solution step per passage, preceding lines as
context), from the demo's sources (reasoning-gym gsm_symbolic and drills, champ solutions). Each reply is appended
to ``--out`` as one JSON line as soon as it exists, so the run can be stopped at any time (CPU budget).

    nice -n 10 python bench/gen_verify_replies.py --out /tmp/replies.jsonl --minutes 40

Labelling is a separate, human step: read each reply against its passage and add ``label`` per block.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from mathcode.embedded import iter_embedded
from mathcode.generation import GenConfig
from mathcode.translate import prompt as P
from mathcode.translate.generate import generate_replies
from mathcode.translate.passages import split_document
from mathcode.translate.steps import open_translator

SOURCES = ("rg_gsm_symbolic", "champ_solutions", "rg_math_drills")


def passages(per_source: int, seed: int, skip: set[str]):
    """Round-robin over sources: demo-style line passages (200 chars, 300 chars of context)."""
    queues = []
    for s in SOURCES:
        q = []
        for d in iter_embedded(s, max_docs=per_source * 3, seed=seed):
            for p in split_document(d, max_passage_chars=200, context_chars=300, max_passages=2, unit="line"):
                if p.id not in skip:
                    q.append(p.to_dict())
        queues.append(q)
    while any(queues):
        for q in queues:
            if q:
                yield q.pop(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default="embedded:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--minutes", type=float, default=40)
    ap.add_argument("--per-source", type=int, default=60)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    out = Path(a.out)
    done = {json.loads(l)["passage"]["id"] for l in out.read_text().splitlines() if l.strip()} if out.exists() else set()
    gen = open_translator("auto", a.model, threads=a.threads)
    cfg = GenConfig(max_new_tokens=200, temperature=0.0, batch_size=1, seed=0)
    t_end = time.time() + a.minutes * 60
    n = 0
    for p in passages(a.per_source, a.seed, done):
        if time.time() > t_end:
            break
        msgs = P.build_messages(p["text"], P.INSTRUCTION, worked_example=True, max_blocks=1, focus=P.focus_of(p))
        t0 = time.time()
        c = generate_replies(gen, [msgs], cfg, max_blocks=1, block_tokens=200)[0]
        with out.open("a") as fh:
            fh.write(json.dumps({"model": a.model.split(":")[-1], "passage": {k: p[k] for k in ("id", "doc_id", "source", "text")},
                                 "reply": c.text, "max_blocks": 1, "gen_seconds": round(time.time() - t0, 1)}) + "\n")
        n += 1
        print(f"{n} {p['id']} {time.time() - t0:.1f}s", flush=True)
    gen.close()


if __name__ == "__main__":
    main()
