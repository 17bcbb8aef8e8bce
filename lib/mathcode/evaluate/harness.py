"""Run models over benchmark items through ``mathcode.generation`` and score every completion.

Why per-item rows: accuracy alone hides *which* items a model solved; the per-item JSONL (prompt id,
completion, extracted answer, gold, correct) is what the comparison, the flipped-items list and a
human reader use. Rows are appended batch by batch, so an interrupted run resumes where it stopped.
A row is reused only when everything that can change its answer is the same: the model (spec, quantization,
the adapter's *content* fingerprint), the protocol (name, shots, stop strings, chat mode), the generation
settings (max_new_tokens, temperature, top_p, n, seed) and the exact prompt. A torn last line (a write cut
by a crash) is truncated before new rows are appended.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from mathcode.generation import GenConfig, Generator
from mathcode.evaluate.benchmarks import Item
from mathcode.evaluate.equivalence import is_equivalent, normalize
from mathcode.evaluate.fewshot import family, prompt_id
from mathcode.evaluate import protocols as PR
from mathcode.evaluate.protocols import rel_tol_for  # noqa: F401  (part of this module's interface)
from mathcode.util import read_jsonl, repair_torn_tail


@dataclass
class EvalModel:
    """One model under evaluation: a label for tables, a model spec, an optional PEFT adapter folder and the
    quantization of the base it is evaluated on ('nf4' = the 4-bit base QLoRA trained against)."""
    label: str
    spec: str
    adapter: str | None = None
    quantize: str | None = None

    def fingerprint(self) -> dict:
        return {"spec": self.spec, "quantize": self.quantize or "none",
                "adapter_sha256": adapter_fingerprint(self.adapter) if self.adapter else None}


_FP_CACHE: dict = {}


def adapter_fingerprint(adapter) -> str:
    """sha256 over an adapter folder's weight and config files (contents, not path or date)."""
    d = Path(adapter)
    files = sorted(f for f in d.iterdir() if f.is_file() and (f.name.startswith("adapter_") or f.suffix == ".safetensors"))
    if not files:
        raise FileNotFoundError(f"adapter folder {d} has no adapter_config.json / adapter weights")
    key = (str(d), tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    if key not in _FP_CACHE:
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        _FP_CACHE[key] = h.hexdigest()
    return _FP_CACHE[key]


@dataclass
class Sampling:
    """Decoding settings; n > 1 samples per item gives maj@n (``correct``) and pass@k."""
    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int = 0

    def __post_init__(self):
        if self.n < 1:
            raise ValueError(f"parameter n_samples={self.n}: use 1 (greedy) or more (sampling)")
        if self.n > 1 and not self.temperature > 0:
            raise ValueError(f"n_samples={self.n} with temperature={self.temperature}: greedy decoding gives the "
                             f"same answer n times; set temperature > 0 (e.g. 0.6) and top_p (e.g. 0.95)")


def score(item: Item, completion: str, ocw_rel_tol: float = 0.0, scorer: str = "kit") -> dict:
    """Extract an answer from ``completion`` and compare it with the item's gold under the named scorer's rule
    (``protocols.SCORERS``: a protocol entry names its scorer)."""
    return PR.get_scorer(scorer).score(item, completion, ocw_rel_tol)


def read_rows(path: Path, repair: bool = False) -> list[dict]:
    """Rows written so far (``mathcode.util`` JSONL rule: a torn last line is skipped — and with ``repair`` cut
    from the file so appended rows start on a clean line; a bad line elsewhere is an error naming the line)."""
    if repair:
        repair_torn_tail(path)
    return read_jsonl(path, missing_ok=True)


def run_key(model: EvalModel, protocol: PR.Protocol, sampling: Sampling, chat: bool, mode: str = "cot") -> str:
    """Hash of everything except the item that changes an answer (model, protocol, decoding, chat, mode)."""
    blob = json.dumps({"model": model.fingerprint(), "protocol": protocol.settings(), "sampling": asdict(sampling),
                       "chat": bool(chat), "mode": mode}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _majority(preds: list, item: Item) -> str | None:
    keys = [normalize(str(p)) if item.kind != "choice" else str(p) for p in preds if p not in (None, "")]
    if not keys:
        return None
    top = Counter(keys).most_common(1)[0][0]
    return next(p for p in preds if p not in (None, "") and
                (normalize(str(p)) if item.kind != "choice" else str(p)) == top)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    from math import comb
    return 1.0 - comb(n - c, k) / comb(n, k)


def evaluate(gen: Generator, items: list[Item], *, model: EvalModel, out_path, protocol="paper",
             n_shots: int | None = None, max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 1.0,
             n_samples: int = 1, seed: int = 0, chat: bool = False, batch_size: int = 8, ocw_rel_tol: float = 0.0,
             fewshot_file: str | None = None, chunk: int | None = None, progress: bool = True) -> list[dict]:
    """Generate and score ``items`` with ``gen`` under ``protocol`` (a name or ``protocols.Protocol``);
    returns (and appends to ``out_path``) one row per item. Matching rows already in ``out_path`` are reused."""
    proto = protocol if isinstance(protocol, PR.Protocol) else PR.get_protocol(protocol, n_shots, fewshot_file)
    samp = Sampling(max_new_tokens, temperature, top_p, n_samples, seed)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    key = run_key(model, proto, samp, chat)
    done = {(r.get("run_key"), r["benchmark"], str(r["item_id"]), r["prompt_id"]): r
            for r in read_rows(out_path, repair=True)}
    if chat:
        prompts = [proto.build_chat(it, family(it), i) for i, it in enumerate(items)]
        pids = [prompt_id(json.dumps(p, ensure_ascii=False)) for p in prompts]
    else:
        prompts = [proto.build(it, family(it), i) for i, it in enumerate(items)]
        pids = [prompt_id(p) for p in prompts]
    todo = [i for i, it in enumerate(items) if (key, it.benchmark, str(it.id), pids[i]) not in done]
    chunk = chunk or max(batch_size * 2, 1)
    bar = _bar(len(items), f"{model.label}: items", progress, initial=len(items) - len(todo))
    with open(out_path, "a", encoding="utf-8") as fh:
        for c in range(0, len(todo), chunk):
            idx = todo[c:c + chunk]
            t0 = time.perf_counter()
            samples = []
            for j in range(samp.n):               # a distinct seed per sample (servers honour `seed`)
                cfg = GenConfig(max_new_tokens=samp.max_new_tokens, temperature=samp.temperature, top_p=samp.top_p,
                                stop=list(proto.stop), batch_size=batch_size, seed=samp.seed + j)
                batch = [prompts[i] for i in idx]
                samples.append(gen.chat(batch, cfg) if chat else gen.complete(batch, cfg))
            dt = (time.perf_counter() - t0) / max(1, len(idx))
            for pos, i in enumerate(idx):
                it = items[i]
                comps = [s[pos] for s in samples]
                row = _row(it, comps, proto, samp, model, key, pids[i], chat, ocw_rel_tol, dt)
                done[(key, it.benchmark, str(it.id), pids[i])] = row
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(idx))
    bar.close()
    return [done[(key, it.benchmark, str(it.id), pids[i])] for i, it in enumerate(items)]


def _row(it, comps, proto, samp, model, key, pid, chat, ocw_rel_tol, dt) -> dict:
    scored = [proto.score(it, c.text, ocw_rel_tol) for c in comps]
    first = comps[0]
    row = {"model": model.label, "model_spec": model.spec, "adapter": model.adapter,
           "quantize": model.quantize or "none", "benchmark": it.benchmark, "item_id": it.id, "mode": "cot",
           "protocol": proto.name, "n_shots": proto.n_shots, "chat": bool(chat), "run_key": key,
           "prompt_id": pid, "completion": first.text, **scored[0], "gold": it.answer, "kind": it.kind,
           "finish_reason": first.finish_reason, "completion_tokens": first.completion_tokens,
           "seconds": round(dt, 3), "level": it.meta.get("level"), "subject": it.meta.get("subject"),
           "proxy": bool(it.meta.get("proxy")), "temperature": samp.temperature, "n_samples": samp.n}
    if samp.n > 1:
        preds = [s["extracted"] for s in scored]
        maj = _majority(preds, it)
        c = sum(s["correct"] for s in scored)
        row.update(samples=[{"completion": cp.text, "extracted": s["extracted"], "correct": s["correct"]}
                            for cp, s in zip(comps, scored)],
                   extracted=maj, extraction="majority-vote",
                   correct=bool(maj is not None and is_equivalent(maj, it.answer, it.kind, rel_tol_for(it, ocw_rel_tol))
                                if proto.scoring.vote_by_equivalence else
                                any(s["correct"] and s["extracted"] == maj for s in scored)),
                   n_correct=c, pass_at={str(k): pass_at_k(samp.n, c, k) for k in (1, samp.n)})
    return row


def _bar(total, desc, progress, initial=0):
    from mathcode.progress import bar
    return bar(total=total, desc=desc, initial=initial, disable=not progress)


def load_generator(model: EvalModel, *, backend: str = "hf", device: str = "auto", engine=None, lora_for=None,
                   **kw) -> Generator:
    """A generator for ``model``; load failures name the model and the remedy (ModelSpecError).
    The backend takes the settings it declares (``generation.registry.SETTINGS``): hf applies the adapter on the
    base loaded as ``model.quantize`` says (NF4 = as trained); vllm serves the adapter as a LoRARequest; a backend
    that takes no adapter (openai: the server must serve it itself; llamacpp) refuses one. vllm only: ``engine``
    reuses a running engine (``gen.llm``), ``lora_for`` builds one able to apply that adapter later."""
    from mathcode.generation import make_generator, registry
    from mathcode.models import ModelSpecError
    try:
        name, settings = registry.backend_settings(backend, model.spec, device=device, adapter=model.adapter,
                                                   quantize=model.quantize, **kw)
    except registry.UnsupportedSettingError:
        raise ModelSpecError(f"model {model.label!r}: backend {backend!r} cannot apply a PEFT adapter; serve it "
                             f"(e.g. `vllm serve BASE --enable-lora --lora-modules trained={model.adapter}`) and add "
                             f"models=['trained=trained'], or use backend "
                             + " / ".join(repr(b) for b in registry.backends_taking("adapter"))) from None
    if name == "vllm":
        settings.update({k: v for k, v in (("llm", engine), ("lora_for", lora_for)) if v is not None})
    try:
        return make_generator(name, model=model.spec, **settings)
    except ModelSpecError:
        raise
    except Exception as e:       # e.g. a folder with a broken config: say which model failed
        raise ModelSpecError(f"model {model.label!r} ({model.spec}"
                             f"{', adapter ' + str(model.adapter) if model.adapter else ''}) failed to load: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
