"""Benchmark loaders: one ``Item`` shape for the five paper benchmarks, Hub copies, and any custom file.

Why one shape: the paper used three harnesses for five benchmarks; here every benchmark becomes a list of
``Item`` (question, gold answer, optional choices and reference solution, answer kind), so prompting,
scoring and comparison are the same code for all of them. Local files follow the layouts of
``../shared/data/benchmarks`` (the DeepSeekMath/MAmmoTH JSONL layouts); a user adds a new benchmark
without code by mapping the fields of any JSONL/JSON file (``load_custom``).
"""
from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field, asdict
from pathlib import Path

from mathcode import paths
from mathcode.util import iter_jsonl
from mathcode.evaluate.answer_text import LETTERS, last_boxed  # noqa: F401  (part of this module's interface)

MMLU_MATH_TOPICS = ("elementary_mathematics", "high_school_mathematics", "high_school_statistics",
                    "college_mathematics")


class BenchmarkError(ValueError):
    """Unknown benchmark, missing file or missing field; the message says which and what to do."""


class DuplicateItemIdError(BenchmarkError):
    """Two different items share a (benchmark, id): anything that pairs or resumes by id would mix them."""


def require_unique_ids(keys, where: str) -> None:
    """Raise ``DuplicateItemIdError`` when a key (e.g. ``(benchmark, item_id)`` or ``(arm, seed, benchmark,
    item_id)``) occurs more than once in ``keys``; the message names ``where`` and the first duplicates."""
    seen, dup = set(), []
    for k in keys:
        if k in seen and k not in dup:
            dup.append(k)
        seen.add(k)
    if dup:
        raise DuplicateItemIdError(
            f"{where}: {len(dup)} item id(s) occur more than once, e.g. {dup[:3]}; pairing or resuming by id would "
            f"mix different items. Item ids must be unique per benchmark (fix the loader or the custom file's id "
            f"field; for old outputs written with colliding ids, re-run the evaluation with --force)")


@dataclass
class Item:
    benchmark: str                 # display name; proxies say so ("gsm_symbolic (proxy for gsm8k)")
    id: str
    question: str
    answer: str                    # gold: number / LaTeX / letter
    kind: str                      # "number" | "math" | "choice"
    choices: list[str] | None = None
    solution: str | None = None    # reference worked solution (NLL probe), when the benchmark has one
    meta: dict = field(default_factory=dict)   # level, subject, topic, source file, proxy flag ...

    def to_dict(self) -> dict:
        return asdict(self)


# name -> (file in the ../shared layout, Hugging Face Hub id or None)
KNOWN = {
    "gsm8k": ("gsm8k_test.jsonl", "openai/gsm8k"),
    "math": ("math_test.jsonl", "EleutherAI/hendrycks_math"),
    "sat_math": ("sat_math_test.jsonl", None),
    "ocw": ("ocw_test.jsonl", None),
    "mmlu_math": ("mmlu_stem_test.jsonl", "cais/mmlu"),
    "gsm_symbolic_proxy": (None, None),
}
FAMILY = {"gsm8k": "gsm8k", "gsm_symbolic_proxy": "gsm8k", "math": "math", "ocw": "ocw",
          "sat_math": "choice", "mmlu_math": "choice"}
PROXY_NAME = "gsm_symbolic (proxy for gsm8k)"


def known_benchmarks() -> list[str]:
    return list(KNOWN)


def split_options(s: str) -> list[str]:
    """'A) x B) y C) z D) w' (or 'A. x B. y ...') -> ['x', 'y', 'z', 'w'] (SAT-Math's one-string layout)."""
    parts = re.split(r"(?:^|\s)([A-J])[.)]\s*", s.strip())
    # parts = ['', 'A', 'x', 'B', 'y', ...]
    letters, texts = parts[1::2], [p.strip() for p in parts[2::2]]
    if not letters or letters != list(LETTERS[:len(letters)]):
        raise BenchmarkError(f"cannot split options {s[:80]!r} into 'A) .. B) ..' choices")
    return texts


def _user_dir(p) -> Path:
    """A folder the user named: relative to where they run from ($MATHCODE_CWD, the CWD), else the project root."""
    import os
    q = Path(os.path.expanduser(str(p)))
    if q.is_absolute():
        return q
    for base in (os.environ.get("MATHCODE_CWD"), os.getcwd()):
        if base and (Path(base) / q).is_dir():
            return (Path(base) / q).resolve()
    return paths.resolve_path(q)


def _local_file(name: str, data_dir) -> Path:
    d = _user_dir(data_dir) if data_dir else paths.benchmarks_dir()
    if d is None:
        raise BenchmarkError(
            f"benchmark {name!r}: no local benchmark folder ({paths.shared_dir()}/data/benchmarks is absent). "
            f"Pass data_dir=<folder with {KNOWN[name][0]}>, source='hub' when online, or use "
            f"'gsm_symbolic_proxy' (offline problems, labelled as a proxy)")
    f = d / KNOWN[name][0]
    if not f.exists():
        raise BenchmarkError(f"benchmark {name!r}: {f} does not exist; expected the file {KNOWN[name][0]} in {d}")
    return f


def _need(row: dict, key: str, f: Path, n: int):
    if key not in row or row[key] is None:
        raise BenchmarkError(f"{f}:{n}: row has no field {key!r} (fields: {', '.join(row)}); "
                             f"is this the right file for this benchmark?")
    return row[key]


def _rows(f: Path):
    for n, row in enumerate(iter_jsonl(f), 1):
        yield n, row


def _load_local(name: str, f: Path) -> list[Item]:
    items = []
    src = {"file": str(f)}
    for n, r in _rows(f):
        if name == "gsm8k":
            items.append(Item("gsm8k", str(r.get("id", n - 1)), _need(r, "question", f, n),
                              str(_need(r, "answer", f, n)).replace(",", ""), "number",
                              solution=r.get("cot"), meta=src))
        elif name == "math":
            sol = _need(r, "solution", f, n)
            gold = last_boxed(sol)
            if gold is None:
                raise BenchmarkError(f"{f}:{n}: MATH solution has no \\boxed{{}} answer")
            items.append(Item("math", str(r.get("id", n - 1)), _need(r, "problem", f, n), gold, "math",
                              solution=sol, meta={**src, "level": r.get("level"), "subject": r.get("type")}))
        elif name == "sat_math":
            items.append(Item("sat_math", str(r.get("id", n - 1)), _need(r, "question", f, n),
                              str(_need(r, "Answer", f, n)).strip().upper(), "choice",
                              choices=split_options(_need(r, "options", f, n)), meta=src))
        elif name == "ocw":
            items.append(Item("ocw", str(r.get("id", n - 1)), _need(r, "problem", f, n),
                              str(_need(r, "answer", f, n)), "math", solution=r.get("solution"), meta=src))
        elif name == "mmlu_math":
            if _need(r, "topic", f, n) not in MMLU_MATH_TOPICS:
                continue
            items.append(Item("mmlu_math", str(r.get("id", n - 1)), _need(r, "question", f, n),
                              str(_need(r, "answer", f, n)).strip().upper(), "choice",
                              choices=[str(c) for c in _need(r, "options", f, n)],
                              meta={**src, "subject": r["topic"]}))
    return items


def _load_hub(name: str) -> list[Item]:
    """The same benchmarks from their Hugging Face Hub copies (needs network or a warm datasets cache)."""
    from datasets import load_dataset
    hub = KNOWN[name][1]
    if hub is None:
        raise BenchmarkError(f"benchmark {name!r} has no canonical Hub copy; use the local file "
                             f"({KNOWN[name][0]}) or load_custom(hub_id=..., fields=...)")
    items = []
    if name == "gsm8k":
        for i, r in enumerate(load_dataset(hub, "main", split="test")):
            cot, _, ans = r["answer"].rpartition("####")
            items.append(Item("gsm8k", f"gsm8k-test-{i}", r["question"], ans.strip().replace(",", ""), "number",
                              solution=cot.strip(), meta={"hub": hub}))
    elif name == "math":
        for cfg in ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                    "number_theory", "prealgebra", "precalculus"):
            for i, r in enumerate(load_dataset(hub, cfg, split="test")):
                items.append(Item("math", f"{cfg}/{i}", r["problem"], last_boxed(r["solution"]) or "", "math",
                                  solution=r["solution"], meta={"hub": hub, "level": r["level"], "subject": r["type"]}))
    elif name == "mmlu_math":
        for topic in MMLU_MATH_TOPICS:
            for i, r in enumerate(load_dataset(hub, topic, split="test")):
                items.append(Item("mmlu_math", f"{topic}/{i}", r["question"], LETTERS[int(r["answer"])], "choice",
                                  choices=list(r["choices"]), meta={"hub": hub, "subject": topic}))
    return items


def _load_proxy(n: int, seed: int) -> list[Item]:
    """GSM8K-style problems generated offline by reasoning-gym (``gsm_symbolic``) from templates that the
    training source ``rg_gsm_symbolic`` never uses (``mathcode.embedded.GSM_SYMBOLIC_HELDOUT``): disjoint
    from the training corpus by construction. Reported as a proxy, never as GSM8K."""
    from mathcode.embedded import gsm_symbolic_items
    out = []
    for r in gsm_symbolic_items(n, seed, heldout=True):
        cot = (r["metadata"].get("answer_cot") or "").rpartition("####")[0].strip() or r["metadata"].get("answer_cot")
        # (pool seed, index in that pool) names a problem uniquely: the generator draws from further pools with other
        # seeds when the first one runs short, and their indices start at 0 again
        pid = f"gsm_symbolic-heldout-{r['metadata']['pool_seed']}-{r['metadata']['index']}"
        out.append(Item(PROXY_NAME, pid, r["question"],
                        str(r["answer"]).replace(",", ""), "number", solution=cot or None,
                        meta={"proxy": True, "generator": "reasoning_gym.gsm_symbolic", "seed": seed,
                              "template": r["metadata"]["template"], "family": "gsm8k"}))
    return out


def subset(items: list[Item], limit: int | None = None, seed: int | None = None, levels=None,
           subjects=None) -> list[Item]:
    """Filter by MATH level (e.g. [1, 2] or ['Level 1']) / subject, then take ``limit`` items:
    the first ones when ``seed`` is None (as lm-eval's --limit), else a seeded random sample."""
    if levels:
        want = {f"Level {l}" if isinstance(l, int) or str(l).isdigit() else str(l) for l in levels}
        items = [it for it in items if it.meta.get("level") in want]
    if subjects:
        want = {s.lower() for s in subjects}
        items = [it for it in items if str(it.meta.get("subject", "")).lower() in want]
    if limit is not None and limit >= 0 and limit < len(items):
        items = random.Random(seed).sample(items, limit) if seed is not None else items[:limit]
    return list(items)


def load_benchmark(name: str, *, source: str = "local", data_dir=None, limit: int | None = None,
                   seed: int | None = None, levels=None, subjects=None) -> list[Item]:
    """Items of a known benchmark. ``source``: 'local' (../shared layout or ``data_dir``) or 'hub'."""
    if name not in KNOWN:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {', '.join(KNOWN)} "
                             f"(or a custom file via custom_file + custom_fields)")
    if name == "gsm_symbolic_proxy":
        items = _load_proxy(limit if limit and limit > 0 else 50, seed or 0)
        require_unique_ids([(it.benchmark, it.id) for it in items], "gsm_symbolic_proxy")
        return items
    if source == "local":
        items = _load_local(name, _local_file(name, data_dir))
    elif source == "hub":
        items = _load_hub(name)
    else:
        raise BenchmarkError(f"source={source!r}: use 'local' or 'hub'")
    return subset(items, limit, seed, levels, subjects)
