"""Phase 2 on a LaTeX corpus, summed up against hand labels: the table of bench/README.md (2026-12-07).

Reads a run's ``01_data/corpus.jsonl`` and ``02_translation/{passages,blocks}.jsonl`` and a JSONL of hand labels
(one row per block: ``block_id``, ``kind`` numeric|symbolic, ``correct`` true|false — is the code a faithful
translation of the passage's computation that prints its stated result?). Prints, per source and kind:

* worked examples, and how many gave a passage;
* blocks, verified blocks, verified share (of blocks);
* precision: verified blocks labelled correct / verified blocks;
* wrongly rejected: rejected blocks labelled correct / rejected blocks (and / blocks labelled correct).

``--draft`` writes the label rows for the blocks that have none yet (``correct: null``, ``kind`` guessed from the
stated result), with passage, code and output, for a person to fill in.

    python bench/latex_phase2_summary.py --run outputs/latex-baseline --labels tests/fixtures/real_latex_labelled.jsonl \\
        --tag baseline [--draft /tmp/to_label.jsonl]
"""
from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

_NUMBER = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def phase2(run: Path) -> tuple[list[dict], list[dict]]:
    """(passages, blocks) of a run: the materialized files, or the records of the chunks done so far."""
    d2 = run / "02_translation"
    if (d2 / "blocks.jsonl").exists():
        return read(d2 / "passages.jsonl"), read(d2 / "blocks.jsonl")
    recs = [r for f in sorted((d2 / "work").glob("records.*.jsonl")) for r in read(f)]
    return [p for r in recs for p in r["passages"]], [b for r in recs for b in r["blocks"]]


def guess_kind(block: dict) -> str:
    """numeric when the stated result is a plain number (fractions a/b and \\frac of integers too)."""
    r = str(block.get("stated_result") or block.get("result") or "")
    r = re.sub(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", r"\1/\2", r).replace("$", "").strip().rstrip(".")
    r = re.sub(r"\\(?:approx|,|;|!|\s)|\\text\{[^}]*\}", "", r)
    return "numeric" if _NUMBER.match(r) or re.fullmatch(r"\s*-?\d+\s*/\s*\d+\s*", r) else "symbolic"


def summarise(run: Path, labels: dict, tag: str) -> list[dict]:
    corpus = read(run / "01_data" / "corpus.jsonl")
    passages, blocks = phase2(run)
    src_of = {d["id"]: d["source"] for d in corpus}
    rows = defaultdict(lambda: defaultdict(int))
    for d in corpus:
        rows[(d["source"], "all")]["examples"] += 1
    for did in {p["doc_id"] for p in passages}:
        rows[(src_of.get(did, "?"), "all")]["with_passage"] += 1
    for b in blocks:
        lab = labels.get((tag, b["id"]), {})
        kind = lab.get("kind") or guess_kind(b)
        for key in ((src_of.get(b["doc_id"], "?"), kind), ("all", kind), ("all", "all")):
            r = rows[key]
            r["blocks"] += 1
            ok = b["outcome"] == "verified"
            r["verified"] += ok
            if lab.get("correct") is None:
                r["unlabelled"] += 1
                continue
            r["labelled"] += 1
            r["correct"] += bool(lab["correct"])
            r["verified_labelled"] += ok
            r["verified_correct"] += ok and bool(lab["correct"])
            r["rejected_labelled"] += not ok
            r["rejected_correct"] += (not ok) and bool(lab["correct"])
    out = []
    for (src, kind), r in sorted(rows.items()):
        out.append({"source": src, "kind": kind, **r})
    return out


def draft(run: Path, labels: dict, tag: str) -> list[dict]:
    ps, blocks = phase2(run)
    passages = {p["id"]: p for p in ps}
    # a block with the same passage and code as one labelled under another tag gets that label (marked so)
    by_content = {(r.get("passage"), r.get("code")): r for r in labels.values() if r.get("correct") is not None}
    out = []
    for b in blocks:
        if (tag, b["id"]) in labels:
            continue
        p = passages.get(b["passage_id"], {})
        row = {"tag": tag, "block_id": b["id"], "original_id": b.get("original_id"), "kind": guess_kind(b),
               "correct": None, "outcome": b["outcome"], "reason": b.get("reason"),
               "passage": p.get("text", "")[len(p.get("context", "")):].strip(), "result": b.get("result"),
               "code": b.get("code"), "stdout": (b.get("stdout") or "")[:300], "note": ""}
        same = by_content.get((row["passage"], row["code"]))
        if same is not None:
            row.update(kind=same["kind"], correct=same["correct"],
                       note=f"same passage and code as {same['tag']} {same['block_id']}: {same.get('note', '')}")
        out.append(row)
    return out


def fmt(rows: list[dict]) -> str:
    head = ("| source | kind | examples | with a passage | blocks | verified | verified share | precision (labels) "
            "| wrongly rejected (labels) |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        share = f"{r['verified'] / r['blocks']:.0%}" if r.get("blocks") else ""
        prec = f"{r['verified_correct']}/{r['verified_labelled']}" if r.get("verified_labelled") else ""
        wr = f"{r['rejected_correct']}/{r['rejected_labelled']}" if r.get("rejected_labelled") else ""
        lines.append(f"| {r['source']} | {r['kind']} | {r.get('examples', '')} | {r.get('with_passage', '')} | "
                     f"{r.get('blocks', '')} | {r.get('verified', '')} | {share} | {prec} | {wr} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--labels", required=True, type=Path)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--draft", type=Path)
    a = ap.parse_args(argv)
    labels = {(r["tag"], r["block_id"]): r for r in read(a.labels)}
    if a.draft:
        rows = draft(a.run, labels, a.tag)
        a.draft.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{len(rows)} blocks to label -> {a.draft}")
        return 0
    rows = summarise(a.run, labels, a.tag)
    print(fmt(rows))
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
