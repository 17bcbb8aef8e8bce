"""Precision and recall of phase 2's verifier on hand-labelled REAL translator replies.

Every block of every reply in the labelled set (``tests/fixtures/verify_labelled.jsonl``: the passage, the
model's reply, and per block ``correct``/``incorrect`` as read by a person) goes through the kit's own path:
``parse.parse_reply`` -> the real sandbox -> ``translate.block_row`` -> ``verify.judge``. A block counts as
accepted when its outcome is ``verified``.

    precision = correct blocks verified / blocks verified      (how clean the kept data is)
    recall    = correct blocks verified / correct blocks        (how much good data is kept)

``--ref REF`` judges with the library of a git revision instead (exported with ``git archive`` to a temporary
folder and run in a subprocess), e.g. ``--ref ac89ce6`` for the verifier as it was before it met this labelled set.
Also reports the judge's cost per block (seconds of ``block_row``, sandbox re-runs).

    PYTHONPATH=lib .venv/bin/python bench/bench_verify.py [--ref REV] [--show-errors]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "verify_labelled.jsonl"


def judge_all(cases: list[dict]) -> list[dict]:
    from mathcode.translate import parse as PA
    from mathcode.translate.execution import Sandbox
    from mathcode.translate.translate import TranslateConfig, block_row
    import inspect
    takes_box = "sandbox" in inspect.signature(block_row).parameters
    out = []
    with Sandbox(workers=2) as box:
        box.run("print(1)")                                   # warm the sandbox and the judge's reader
        try:
            from mathcode.translate.bounded import default
            default().call("ping")
        except ImportError:
            pass
        for n, c in enumerate(cases):
            blocks, err = PA.parse_reply(c["reply"])
            todo = [] if err else blocks[: c.get("max_blocks", 2)]
            runs = iter(box.run_many([b.code for b in todo if not b.parse_error]))
            cfg = TranslateConfig(max_blocks=c.get("max_blocks", 2))
            for k, label in enumerate(c["labels"]):
                if k >= len(todo):
                    out.append({"case": n, "block": k, "label": label, "outcome": "lost by the parser",
                                "seconds": 0.0, "reruns": 0})
                    continue
                b = todo[k]
                run = None if b.parse_error else next(runs)
                t0 = time.perf_counter()
                row = block_row(c["passage"], b, run, cfg, box) if takes_box else block_row(c["passage"], b, run, cfg)
                out.append({"case": n, "block": k, "label": label, "outcome": row["outcome"],
                            "reason": row.get("reason", "")[:160], "got": row.get("got", "")[:80],
                            "seconds": round(time.perf_counter() - t0, 4), "reruns": row.get("reruns", 0),
                            "matched": bool((row.get("checks") or {}).get("output_matches"))})
            for r in runs:                                      # blocks beyond the labels still ran: drain
                pass
    return out


def constructed_classes() -> dict:
    """The constructed cases of tests/test_translate_verify_classes.py (typed-in disguises, correct forms), judged
    by this library: how many of each list are verified."""
    import ast as _ast
    from mathcode.translate import parse as PA
    from mathcode.translate.execution import Sandbox
    from mathcode.translate.translate import TranslateConfig, block_row
    import inspect
    src = (ROOT / "tests" / "test_translate_verify_classes.py").read_text()
    consts = {}
    for node in _ast.parse(src).body:                       # the module-level case lists, without importing pytest
        if isinstance(node, _ast.Assign) and isinstance(node.targets[0], _ast.Name) and \
                node.targets[0].id in ("GARDEN", "TYPED", "COMPUTED", "CORRECT"):
            consts[node.targets[0].id] = _ast.literal_eval(node.value)
    takes_box = "sandbox" in inspect.signature(block_row).parameters

    def reply(expression, result, code):
        return (f"**Conditions Needed:**\nThe numbers given in the text.\n\n**Computation Expression:**\n${expression}$"
                f"\n\n**Computation Result:**\n{result}\n\n**Python Code Snippet:**\n```python\n{code}\n```")
    cases = [("typed-in (must not verify)", consts["GARDEN"], "36 \\times 24", "864", c) for c in consts["TYPED"]]
    cases += [("computed (must verify)", consts["GARDEN"], "36 \\times 24", "864", c) for c in consts["COMPUTED"]]
    cases += [("correct forms (must verify)", p, e, r, c) for p, e, r, c in consts["CORRECT"]]
    out = {}
    with Sandbox(workers=2) as box:
        for kind, passage, expr, res, code in cases:
            b = PA.parse_reply(reply(expr, res, code))[0][0]
            run = box.run(b.code)
            p = {"id": "c#p0", "doc_id": "c", "source": "constructed", "text": passage}
            row = block_row(p, b, run, TranslateConfig(), box) if takes_box else block_row(p, b, run, TranslateConfig())
            d = out.setdefault(kind, {"cases": 0, "verified": 0})
            d["cases"] += 1
            d["verified"] += row["outcome"] == "verified"
    return out


def summarise(rows: list[dict]) -> dict:
    tp = sum(r["label"] == "correct" and r["outcome"] == "verified" for r in rows)
    fp = sum(r["label"] != "correct" and r["outcome"] == "verified" for r in rows)
    pos = sum(r["label"] == "correct" for r in rows)
    matched = [r for r in rows if r.get("matched")]
    secs = sorted(r["seconds"] for r in matched) or [0.0]
    return {"blocks": len(rows), "correct": pos, "incorrect": len(rows) - pos, "verified": tp + fp,
            "true_pos": tp, "false_pos": fp,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None, "recall": round(tp / pos, 4) if pos else None,
            "judge_s_median_matched": secs[len(secs) // 2], "judge_s_max": max(r["seconds"] for r in rows),
            "judge_s_mean_all": round(sum(r["seconds"] for r in rows) / max(1, len(rows)), 4),
            "reruns_per_matched_block": round(sum(r["reruns"] for r in matched) / max(1, len(matched)), 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixture", default=str(FIXTURE))
    ap.add_argument("--ref", default="", help="judge with the library of this git revision (e.g. main's)")
    ap.add_argument("--show-errors", action="store_true")
    ap.add_argument("--json", default="", help="write the per-block rows here")
    ap.add_argument("--classes", action="store_true", help="also judge the constructed cases of the class tests")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.ref and not a._child:
        with tempfile.TemporaryDirectory() as tmp:
            arch = subprocess.run(["git", "-C", str(ROOT), "archive", a.ref, "lib"], check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=arch, check=True)
            env = dict(os.environ, PYTHONPATH=str(Path(tmp) / "lib"))
            args = [sys.executable, __file__, "--_child", "--fixture", a.fixture] + (["--show-errors"] if a.show_errors else []) \
                + (["--json", a.json] if a.json else []) + (["--classes"] if a.classes else [])
            sys.exit(subprocess.run(args, env=env).returncode)
    import mathcode
    cases = [json.loads(ln) for ln in Path(a.fixture).read_text().splitlines() if ln.strip()]
    rows = judge_all(cases)
    s = summarise(rows)
    print(f"library: {Path(mathcode.__file__).parent}")
    print(json.dumps(s))
    by = {}
    for r in rows:
        by.setdefault((r["label"], r["outcome"]), 0)
        by[(r["label"], r["outcome"])] += 1
    for (lab, o), n in sorted(by.items()):
        print(f"  {lab:9s} {o:22s} {n}")
    if a.show_errors:
        for r in rows:
            if (r["label"] == "correct") != (r["outcome"] == "verified"):
                c = cases[r["case"]]
                print(f"\n--- case {r['case']} block {r['block']} [{c['passage']['id']}] label={r['label']} "
                      f"outcome={r['outcome']}: {r.get('reason', '')} | got {r.get('got', '')!r}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=0))
    if a.classes:
        print("constructed classes:", json.dumps(constructed_classes()))


if __name__ == "__main__":
    main()
