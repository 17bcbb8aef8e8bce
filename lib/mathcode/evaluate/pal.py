"""Tool-integrated (PAL-style) mode: the model writes Python, the phase-2 sandbox runs it, the last
printed line is the answer.

Why reuse ``mathcode.sandbox``: model-written code is untrusted in evaluation exactly as in
translation, so it runs under the same isolation (bubblewrap when available) and limits; every row
records the isolation level and the program's output.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

from ..generation import GenConfig, Generator
from .benchmarks import Item
from .equivalence import is_equivalent
from .extract import extract_answer
from .fewshot import build_pal_prompt, prompt_id
from .harness import EvalModel, read_rows, rel_tol_for
from ..util import repair_torn_tail

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


def evaluate_pal(gen: Generator, items: list[Item], *, model: EvalModel, out_path, sandbox=None,
                 max_new_tokens: int = 256, batch_size: int = 8, ocw_rel_tol: float = 0.0) -> list[dict]:
    """Generate a program per item (chat template), run it in the sandbox, score the printed answer."""
    from ..sandbox import Limits, Sandbox
    out_path = Path(out_path)
    done = {(r["model"], r["benchmark"], str(r["item_id"]), r["prompt_id"], r["mode"]): r
            for r in read_rows(out_path)}
    msgs = [build_pal_prompt(it) for it in items]
    pids = [prompt_id(json.dumps(m)) for m in msgs]
    todo = [i for i, it in enumerate(items) if (model.label, it.benchmark, it.id, pids[i], "pal") not in done]
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
                progs = [extract_program(c.text) for c in comps]
                runs = sb.run_many([p or "" for p in progs])
                for i, comp, prog, res in zip(todo, comps, progs, runs):
                    it = items[i]
                    pred, how = answer_from_output(res.stdout, it) if prog and res.status == "ok" else \
                        (None, "no-program" if not prog else f"program-{res.status}")
                    row = {"model": model.label, "model_spec": model.spec, "adapter": model.adapter,
                           "benchmark": it.benchmark, "item_id": it.id, "mode": "pal", "n_shots": 0,
                           "prompt_id": pids[i], "completion": comp.text, "program": prog,
                           "program_status": res.status if prog else "no-program", "program_stdout": res.stdout[-2000:],
                           "isolation": res.isolation, "extracted": pred, "extraction": how,
                           "correct": bool(is_equivalent(pred, it.answer, it.kind, rel_tol_for(it, ocw_rel_tol))),
                           "gold": it.answer, "kind": it.kind, "finish_reason": comp.finish_reason,
                           "completion_tokens": comp.completion_tokens, "seconds": round(dt, 3),
                           "level": it.meta.get("level"), "subject": it.meta.get("subject"),
                           "proxy": bool(it.meta.get("proxy"))}
                    done[(model.label, it.benchmark, it.id, pids[i], "pal")] = row
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if own:
            sb.close()
    return [done[(model.label, it.benchmark, it.id, pids[i], "pal")] for i, it in enumerate(items)]
