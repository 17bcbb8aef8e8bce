"""Tool-integrated (PAL-style) mode: the model writes Python, the phase-2 sandbox runs it, the last
printed line is the answer.

Why reuse the phase-2 sandbox (``mathcode.sandbox``; ``sandbox_api`` is the one import place): model-written code is untrusted in evaluation exactly as in
translation, so it runs under the same isolation (bubblewrap when available) and limits; every row
records the isolation level and the program's output.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from mathcode.generation import GenConfig, Generator
from mathcode.evaluate.benchmarks import Item
from mathcode.evaluate.equivalence import is_equivalent
from mathcode.evaluate.extract import extract_answer
from mathcode.evaluate.fewshot import build_pal_prompt, prompt_id
from mathcode.evaluate.harness import EvalModel, read_rows, rel_tol_for
from mathcode.util import repair_torn_tail

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.S)


def extract_program(completion: str) -> str | None:
    """The first fenced code block, else the whole completion when it looks like Python, else None."""
    m = _FENCE.search(completion or "")
    if m and m.group(1).strip():
        return m.group(1).strip()
    text = (completion or "").strip()
    return text if re.search(r"^\s*(print\(|def |import |[a-z_]\w*\s*=)", text, re.M) else None


def answer_from_output(stdout: str, item: Item) -> tuple[str | None, str]:
    lines = [l.strip() for l in (stdout or "").splitlines() if l.strip()]
    if not lines:
        return None, "no-output"
    last = lines[-1]
    if item.kind == "choice":
        return extract_answer(last if len(last) > 1 else f"The answer is ({last})", "choice", item.choices)
    return last, "printed"


def sandbox_api():
    """(Sandbox, Limits) from the sandbox package; the only place evaluation imports it."""
    from mathcode.sandbox import Limits, Sandbox
    return Sandbox, Limits


def evaluate_pal(gen: Generator, items: list[Item], *, model: EvalModel, out_path, sandbox=None,
                 max_new_tokens: int = 256, batch_size: int = 8, ocw_rel_tol: float = 0.0,
                 progress: bool = True) -> list[dict]:
    """Generate a program per item (chat template), run it in the sandbox, score the printed answer.
    Rows are keyed like ``harness.evaluate`` (model + adapter fingerprint, settings, prompt) and resumable."""
    from mathcode.progress import bar
    Sandbox, Limits = sandbox_api()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.dumps({"model": model.fingerprint(), "max_new_tokens": max_new_tokens, "mode": "pal"},
                          sort_keys=True)
    key = hashlib.sha256(settings.encode()).hexdigest()[:16]
    done = {(r.get("run_key"), r["benchmark"], str(r["item_id"]), r["prompt_id"]): r
            for r in read_rows(out_path, repair=True)}
    msgs = [build_pal_prompt(it) for it in items]
    pids = [prompt_id(json.dumps(m)) for m in msgs]
    todo = [i for i, it in enumerate(items) if (key, it.benchmark, str(it.id), pids[i]) not in done]
    own = sandbox is None
    sb = sandbox or Sandbox(workers=1, limits=Limits(timeout=5.0))
    try:
        cfg = GenConfig(max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size)
        repair_torn_tail(out_path)
        with open(out_path, "a", encoding="utf-8") as fh:
            if todo:
                t0 = time.perf_counter()
                comps = gen.chat([msgs[i] for i in todo], cfg)
                dt = (time.perf_counter() - t0) / len(todo)
                for i, comp in bar(list(zip(todo, comps)), desc=f"{model.label}: PAL programs", disable=not progress):
                    it = items[i]
                    prog = extract_program(comp.text)
                    res = sb.run(prog) if prog else None
                    status = res.status if res is not None else "no-program"
                    stdout = (res.stdout or "") if res is not None else ""
                    pred, how = answer_from_output(stdout, it) if status == "ok" else \
                        (None, "no-program" if not prog else f"program-{status}")
                    row = {"model": model.label, "model_spec": model.spec, "adapter": model.adapter,
                           "benchmark": it.benchmark, "item_id": it.id, "mode": "pal", "n_shots": 0, "run_key": key,
                           "prompt_id": pids[i], "completion": comp.text, "program": prog,
                           "program_status": status, "program_stdout": stdout[-2000:],
                           "isolation": getattr(res, "isolation", None), "extracted": pred, "extraction": how,
                           "correct": bool(is_equivalent(pred, it.answer, it.kind, rel_tol_for(it, ocw_rel_tol))),
                           "gold": it.answer, "kind": it.kind, "finish_reason": comp.finish_reason,
                           "completion_tokens": comp.completion_tokens, "seconds": round(dt, 3),
                           "level": it.meta.get("level"), "subject": it.meta.get("subject"),
                           "proxy": bool(it.meta.get("proxy"))}
                    done[(key, it.benchmark, str(it.id), pids[i])] = row
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    fh.flush()
    finally:
        if own:
            sb.close()
    return [done[(key, it.benchmark, str(it.id), pids[i])] for i, it in enumerate(items)]
