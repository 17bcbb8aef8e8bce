"""Decontamination as in the paper: exact match and 13-gram overlap against the benchmarks' test problems
and their reference solutions (phase 4's NLL probe scores those solutions, so a solution seen in training
would be memorised, not predicted).

Benchmarks load by path from the layouts in ``../shared/data/benchmarks`` (DeepSeekMath / MAmmoTH JSONL) or
from the Hugging Face Hub when online. A removed document is kept (in ``removed_decontaminated.jsonl``) with
the benchmark, the benchmark item id and the first matching n-gram. Exact match catches test problems
shorter than n words; the n-gram index catches problems embedded in longer documents.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mathcode import paths
from mathcode.util import iter_jsonl
from mathcode.data.records import Step
from mathcode.textnorm import words

# file name -> (benchmark, fields whose text is matched); options are appended so MC items match as shown.
LAYOUTS = {
    "gsm8k_test.jsonl": ("gsm8k", ["question"]),
    "math_test.jsonl": ("math", ["problem"]),
    "sat_math_test.jsonl": ("sat_math", ["question"]),
    "ocw_test.jsonl": ("ocw", ["problem"]),
    "mmlu_stem_test.jsonl": ("mmlu_stem", ["question"]),
}
QUESTION_FIELDS = ("question", "problem", "Problem", "Question", "input")
# Reference solutions, indexed as separate entries ("<id>#solution"); GSM8K's calculator marks <<a=b>> removed.
SOLUTION_FIELDS = ("solution", "cot", "rationale", "Rationale")
HUB = {  # benchmark -> (hub id, config, split, question field)
    "gsm8k": ("openai/gsm8k", "main", "test", "question"),
    "math": ("EleutherAI/hendrycks_math", None, "test", "problem"),
    "mmlu_stem": ("cais/mmlu", "all", "test", "question"),
}


class BenchmarkLayoutError(ValueError):
    """A benchmark file whose rows carry none of the known question fields."""


@dataclass
class Benchmarks:
    items: dict = field(default_factory=dict)     # benchmark -> list[(item id, text)]
    origin: dict = field(default_factory=dict)    # benchmark -> file path or hub id

    def __len__(self):
        return sum(len(v) for v in self.items.values())

    def summary(self) -> list[dict]:
        return [{"benchmark": b, "items": len(v), "from": self.origin[b]} for b, v in self.items.items()]


def load_benchmark_file(path: str | os.PathLike, name: str | None = None, fields: list[str] | None = None):
    """(benchmark name, [(id, text)]) from one JSONL test file; unknown layouts fail naming file and fields."""
    p = Path(path)
    bench, known = LAYOUTS.get(p.name, (name or p.stem.replace("_test", ""), None))
    fields = fields or known
    out = []
    for n, row in enumerate(iter_jsonl(p), 1):
        f = fields or [k for k in QUESTION_FIELDS if k in row][:1]
        if not f or not all(k in row for k in f):
            raise BenchmarkLayoutError(
                f"{p}:{n}: unknown benchmark layout — expected a question field "
                f"({', '.join(fields or QUESTION_FIELDS)}), found {', '.join(row)}; rename the field or pass "
                f"decontam_benchmarks=[...] without this file")
        text = "\n".join(str(row[k]) for k in f)
        opts = row.get("options")
        if opts:
            text += "\n" + (" ".join(map(str, opts)) if isinstance(opts, list) else str(opts))
        out.append((str(row.get("id", n)), text))
        sol = next((row[k] for k in SOLUTION_FIELDS if isinstance(row.get(k), str) and row[k].strip()), None)
        if sol:
            out.append((f"{row.get('id', n)}#solution", re.sub(r"<<[^>]*>>", "", sol)))
    if not out:
        raise BenchmarkLayoutError(f"{p} has no rows; remove it or point decontam_benchmarks elsewhere")
    return bench, out


def load_benchmarks(spec: str | list | None = "default") -> Benchmarks:
    """``"default"``: every known file in ``../shared/data/benchmarks`` (or the Hub when that folder is absent
    and we are online; offline, phase 4's gsm_symbolic proxy, so the corpus is still checked against what
    evaluation will score); a folder path; a list of file paths and/or ``hub:NAME`` entries; ``"none"``/empty → no
    benchmarks (the caller records that decontamination was skipped)."""
    b = Benchmarks()
    if spec in (None, "", "none", []):
        return b
    if spec == "default":
        d = paths.benchmarks_dir()
        if d is not None:
            spec = str(d)
        else:
            from mathcode.models import _hub_reachable
            offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
            spec = [f"hub:{k}" for k in HUB] if not offline and _hub_reachable() else []
            if not spec:               # offline: at least the evaluation proxy (disjoint by construction; checked)
                _load_proxy(b)
                return b
    entries = [spec] if isinstance(spec, str) else list(spec)
    for e in entries:
        if isinstance(e, str) and e.startswith("hub:"):
            _load_hub(b, e[4:])
            continue
        p = paths.resolve_path(e)
        if p is None or not p.exists():
            raise FileNotFoundError(f"benchmark path {e!r} ({p}) does not exist; fix decontam_benchmarks")
        files = sorted(f for f in p.iterdir() if f.name in LAYOUTS) if p.is_dir() else [p]
        if p.is_dir() and not files:
            raise BenchmarkLayoutError(f"{p} holds none of the known benchmark files ({', '.join(LAYOUTS)})")
        for f in files:
            name, rows = load_benchmark_file(f)
            b.items[name], b.origin[name] = rows, str(f)
    return b


def _load_proxy(b: Benchmarks, n: int = 200, seed: int = 0):
    """Phase 4's offline GSM8K proxy (held-out gsm_symbolic templates), questions and solutions."""
    from mathcode.embedded import gsm_symbolic_items
    rows = []
    for it in gsm_symbolic_items(n, seed, heldout=True):
        i = it["metadata"]["index"]
        rows.append((f"heldout-{seed}-{i}", it["question"]))
        if it["metadata"].get("answer_cot"):
            rows.append((f"heldout-{seed}-{i}#solution", it["metadata"]["answer_cot"]))
    b.items["gsm_symbolic_proxy"], b.origin["gsm_symbolic_proxy"] = rows, "reasoning-gym (held-out templates)"


def _load_hub(b: Benchmarks, name: str):
    if name not in HUB:
        raise ValueError(f"no Hub source known for benchmark {name!r}; known: {', '.join(HUB)}")
    from datasets import load_dataset
    hub_id, cfg, split, fld = HUB[name]
    ds = load_dataset(hub_id, cfg, split=split)
    rows = []
    for i, r in enumerate(ds):
        rows.append((str(i), r[fld]))
        sol = r.get("solution") or (r["answer"] if name == "gsm8k" else None)
        if sol:
            rows.append((f"{i}#solution", re.sub(r"<<[^>]*>>", "", sol)))
    b.items[name] = rows
    b.origin[name] = f"hub:{hub_id}"


class Decontaminator(Step):
    name = "decontaminate"
    keep_removed = True

    def __init__(self, benchmarks: Benchmarks, n: int = 13, skip_numeric_ngrams: bool = True):
        """``skip_numeric_ngrams``: n-grams made only of numbers (``1 2 3 … 13`` in a MATH problem) are not
        indexed — they also occur in any array docstring or table and flagged numpy docstrings as MATH
        contamination in the demo run."""
        self.n = n
        self.benchmarks = benchmarks
        self.grams: dict[str, tuple[str, str]] = {}
        self.exact: dict[str, tuple[str, str]] = {}
        for bench, rows in benchmarks.items.items():
            for item_id, text in rows:
                w = words(text)
                if not w:
                    continue
                self.exact.setdefault(" ".join(w), (bench, item_id))
                for i in range(len(w) - n + 1):
                    gram = w[i:i + n]
                    if skip_numeric_ngrams and all(t.isdigit() for t in gram):
                        continue
                    self.grams.setdefault(" ".join(gram), (bench, item_id))

    def match(self, text: str) -> dict | None:
        w = words(text)
        norm = " ".join(w)
        if norm in self.exact:
            bench, item = self.exact[norm]
            return {"reason": "exact_match", "benchmark": bench, "benchmark_id": item, "ngram": norm[:200]}
        hits = {}
        first = None
        for i in range(len(w) - self.n + 1):
            g = " ".join(w[i:i + self.n])
            hit = self.grams.get(g)
            if hit:
                hits[hit] = hits.get(hit, 0) + 1
                first = first or (hit, g)
        if first:
            (bench, item), g = first
            return {"reason": f"{self.n}gram_overlap", "benchmark": bench, "benchmark_id": item, "ngram": g,
                    "n_matching_ngrams": sum(hits.values())}
        return None

    def decide(self, docs):
        out = []
        for d in docs:
            m = self.match(d["text"])
            out.append((m is None, m))
        return out

