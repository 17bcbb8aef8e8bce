"""Run models over benchmark items through ``mathcode.generation`` and score every completion.

Why per-item rows: accuracy alone hides *which* items a model solved; the per-item JSONL (prompt id,
completion, extracted answer, gold, correct) is what the comparison, the flipped-items list and a
human reader use. Rows are appended batch by batch, so an interrupted run resumes where it stopped
(items already scored for the same model, prompt and mode are skipped).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..generation import GenConfig, Generator
from .benchmarks import Item
from .equivalence import is_equivalent
from .extract import extract_answer
from .fewshot import STOP, build_prompt, prompt_id
from ..util import read_jsonl, repair_torn_tail


@dataclass
class EvalModel:
    """One model under evaluation: a label for tables, a model spec, an optional PEFT adapter folder."""
    label: str
    spec: str
    adapter: str | None = None


def rel_tol_for(item: Item, ocw_rel_tol: float) -> float:
    return ocw_rel_tol if item.benchmark == "ocw" else 0.0


def score(item: Item, completion: str, ocw_rel_tol: float = 0.0) -> dict:
    """Extract an answer from ``completion`` and compare it with the item's gold."""
    pred, method = extract_answer(completion, item.kind, item.choices)
    ok = is_equivalent(pred, item.answer, item.kind, rel_tol=rel_tol_for(item, ocw_rel_tol))
    return {"extracted": pred, "extraction": method, "correct": bool(ok)}


def read_rows(path: Path) -> list[dict]:
    """Rows written so far (``mathcode.util`` JSONL rule: a torn last line is skipped and redone)."""
    return read_jsonl(path, missing_ok=True)


def _key(model_label, item_benchmark, item_id, pid, mode):
    return (model_label, item_benchmark, str(item_id), pid, mode)


def evaluate(gen: Generator, items: list[Item], *, model: EvalModel, out_path, n_shots: int = 4,
             max_new_tokens: int = 256, batch_size: int = 8, ocw_rel_tol: float = 0.0,
             chunk: int | None = None, progress=None) -> list[dict]:
    """Greedy 4-shot generation for ``items`` with ``gen``; returns (and appends to ``out_path``) one
    row per item. Rows already in ``out_path`` for this model and prompt are reused, not regenerated."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = {_key(r["model"], r["benchmark"], r["item_id"], r["prompt_id"], r["mode"]): r
            for r in read_rows(out_path)}
    prompts = [build_prompt(it, n_shots) for it in items]
    todo = [i for i, it in enumerate(items)
            if _key(model.label, it.benchmark, it.id, prompt_id(prompts[i]), "cot") not in done]
    cfg = GenConfig(max_new_tokens=max_new_tokens, temperature=0.0, stop=list(STOP), batch_size=batch_size)
    chunk = chunk or max(batch_size * 2, 1)
    repair_torn_tail(out_path)
    with open(out_path, "a", encoding="utf-8") as fh:
        for c in range(0, len(todo), chunk):
            idx = todo[c:c + chunk]
            t0 = time.perf_counter()
            comps = gen.complete([prompts[i] for i in idx], cfg)
            dt = (time.perf_counter() - t0) / max(1, len(idx))
            for i, comp in zip(idx, comps):
                it = items[i]
                row = {"model": model.label, "model_spec": model.spec, "adapter": model.adapter,
                       "benchmark": it.benchmark, "item_id": it.id, "mode": "cot", "n_shots": n_shots,
                       "prompt_id": prompt_id(prompts[i]), "completion": comp.text, **score(it, comp.text, ocw_rel_tol),
                       "gold": it.answer, "kind": it.kind, "finish_reason": comp.finish_reason,
                       "completion_tokens": comp.completion_tokens, "seconds": round(dt, 3),
                       "level": it.meta.get("level"), "subject": it.meta.get("subject"),
                       "proxy": bool(it.meta.get("proxy"))}
                done[_key(model.label, it.benchmark, it.id, row["prompt_id"], "cot")] = row
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            if progress:
                progress(min(c + chunk, len(todo)), len(todo))
    return [done[_key(model.label, it.benchmark, it.id, prompt_id(prompts[i]), "cot")] for i, it in enumerate(items)]


def load_generator(model: EvalModel, *, backend: str = "hf", device: str = "auto", **kw) -> Generator:
    """A generator for ``model``; load failures name the model and the remedy (ModelSpecError)."""
    from ..generation import make_generator
    from ..models import ModelSpecError
    if backend in ("hf", "vllm"):                    # vllm serves the adapter through LoRARequest
        kw.update(device=device, adapter=model.adapter)
    elif model.adapter:
        raise ModelSpecError(f"model {model.label!r}: adapters are applied only with backends 'hf' and 'vllm'; "
                             f"serve the merged model and pass its name instead")
    try:
        return make_generator(backend, model=model.spec, **kw)
    except ModelSpecError:
        raise
    except Exception as e:       # e.g. a folder with a broken config: say which model failed
        raise ModelSpecError(f"model {model.label!r} ({model.spec}"
                             f"{', adapter ' + str(model.adapter) if model.adapter else ''}) failed to load: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
