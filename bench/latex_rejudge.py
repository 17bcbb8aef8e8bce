"""Judge a finished phase-2 run's replies again with the verification code on PYTHONPATH (no model call).

Why: to separate the verifier's effect from the translator's. The same replies, parsed, executed in the sandbox
and judged by another version of ``translate.verify`` (e.g. a branch merged in a scratch clone), give blocks whose
outcomes differ only by the verifier. Writes ``OUT/blocks.jsonl`` (same rows as phase 2's) and prints the
outcome counts before and after.

    PYTHONPATH=/tmp/lx/lib python bench/latex_rejudge.py --run outputs/latex-baseline --out /tmp/rejudged
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from mathcode.translate import parse as _parse, steps, translate as T
from mathcode.translate.execution import open_sandbox


def read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args(argv)
    d2 = a.run / "02_translation"
    params = json.loads((d2 / "manifest.json").read_text()).get("parameters", {})
    cfg = steps.configure(**params)
    if (d2 / "blocks.jsonl").exists():
        ps, before, replies = read(d2 / "passages.jsonl"), read(d2 / "blocks.jsonl"), read(d2 / "replies.jsonl")
    else:                                   # a run still going: the chunks recorded so far
        recs = [r for f in sorted((d2 / "work").glob("records.*.jsonl")) for r in read(f)]
        ps, before, replies = ([x for r in recs for x in r[k]] for k in ("passages", "blocks", "replies"))
    passages = {p["id"]: p for p in ps}
    pending, rows = [], []
    for r in replies:
        p = passages[r["passage_id"]]
        parsed, err = _parse.parse_reply(r["text"])
        if err:
            rows.append(T.reply_level_row(p, err))
            continue
        pending += [(p, b) for b in parsed[: cfg.max_blocks]]
    with open_sandbox(params.get("sandbox_workers", 2), params.get("isolation", "auto"),
                      params.get("snippet_timeout", 5.0), params.get("snippet_memory_mb", 1024)) as box:
        runs = iter(box.run_many([b.code for _, b in pending if not b.parse_error]))
        for p, b in pending:
            rows.append(T.block_row(p, b, None if b.parse_error else next(runs), cfg, box))
    a.out.mkdir(parents=True, exist_ok=True)
    with open(a.out / "blocks.jsonl", "w") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    print("before", dict(Counter(b["outcome"] for b in before)))
    print("after ", dict(Counter(b["outcome"] for b in rows)))
    old = {b["id"]: b["outcome"] for b in before}
    for r in rows:
        if old.get(r["id"]) != r["outcome"]:
            print(f"  {r['id']}: {old.get(r['id'])} -> {r['outcome']} ({r.get('reason', '')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
