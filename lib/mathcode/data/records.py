"""The step interface every filter shares, and the per-step report the notebook and the funnel read.

A step sees documents in shards (lists) and says, per document, keep or drop (with a reason dict). The same
step object runs in the notebook (one step over the whole corpus, then its report is shown), in the
streaming route (all steps chained shard by shard, bounded memory) and inside datatrove (``datatrove_route``).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Iterator


def n_tokens(doc: dict) -> int:
    """Target-tokenizer tokens when counted (``meta.n_tokens``), else whitespace words (streaming bench)."""
    n = doc.get("meta", {}).get("n_tokens")
    return int(n) if n is not None else len(doc["text"].split())


# what each step's removal means, in the words the report uses (a step not listed is named as it is)
REMOVAL_WORDS = {"quality:length": "the length filter", "quality:symbols": "the math-symbol density filter",
                 "quality:repetition": "the repetition filter", "math_classifier": "the math classifier",
                 "near_dedup": "near-deduplication", "decontaminate": "decontamination",
                 "mixture": "the token budget of the mixture"}


def removal_file(step: str) -> str:
    """``removed_<step>.jsonl``; decontamination keeps its established name ``removed_decontaminated.jsonl``."""
    if step == "decontaminate":
        return "removed_decontaminated.jsonl"
    return "removed_" + step.replace("quality:", "").replace(":", "_") + ".jsonl"


@dataclass
class StepReport:
    step: str
    n_in: int = 0
    n_out: int = 0
    docs_in: Counter = field(default_factory=Counter)
    docs_out: Counter = field(default_factory=Counter)
    tokens_in: Counter = field(default_factory=Counter)
    tokens_out: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)        # first removed docs with their reason
    removed: list = field(default_factory=list)         # every removed doc (only when keep_removed)
    # every removed doc's id and reason, whatever the step (no text: bounded by the number of removals, so that
    # every removal can be written with its reason without holding removed documents)
    dropped: list = field(default_factory=list)
    max_examples: int = 5

    def add(self, doc: dict, keep: bool, why: dict | None, keep_removed: bool):
        s, t = doc["source"], n_tokens(doc)
        self.n_in += 1
        self.docs_in[s] += 1
        self.tokens_in[s] += t
        if keep:
            self.n_out += 1
            self.docs_out[s] += 1
            self.tokens_out[s] += t
            return
        why = why or {}
        self.reasons[why.get("reason", self.step)] += 1
        row = {"id": doc["id"], "source": s, **why, "text": doc["text"]}
        meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
        self.dropped.append({"id": doc["id"], "original_id": meta.get("original_id"), "source": s, "step": self.step,
                             **{"reason": self.step, **why}})
        if len(self.examples) < self.max_examples:
            self.examples.append({**row, "text": doc["text"][:400]})
        if keep_removed:
            self.removed.append({**row, "meta": doc.get("meta", {})})

    @property
    def n_removed(self) -> int:
        return self.n_in - self.n_out

    def table(self):
        """Per-source docs/tokens in and out (a DataFrame)."""
        import pandas as pd
        rows = [{"step": self.step, "source": s, "docs_in": self.docs_in[s], "docs_out": self.docs_out[s],
                 "tokens_in": self.tokens_in[s], "tokens_out": self.tokens_out[s]} for s in sorted(self.docs_in)]
        return pd.DataFrame(rows)

    def examples_frame(self, n: int = 5):
        """Removed examples as a DataFrame (a one-line note when nothing was removed)."""
        import pandas as pd
        if not self.examples:
            return pd.DataFrame([{"note": f"{self.step}: nothing removed"}])
        return pd.DataFrame(self.examples).drop(columns=["id"]).head(n)

    def summary(self) -> dict:
        return {"step": self.step, "docs_in": self.n_in, "docs_out": self.n_out, "removed": self.n_removed,
                **{f"reason:{k}": v for k, v in self.reasons.items()}}


class Step:
    """Base: subclasses implement ``decide(docs) -> [(keep, why)]`` for one shard."""
    name = "step"
    keep_removed = False          # True for steps whose removed docs are an artefact (decontamination)
    applies_to: set | None = None  # only these sources are judged; others pass through (None = all)

    def decide(self, docs: list[dict]) -> list[tuple[bool, dict | None]]:
        raise NotImplementedError

    def run(self, docs: Iterable[dict], report: StepReport | None = None, shard_size: int = 1000) -> Iterator[dict]:
        """Lazily yield kept docs, filling ``report``; ``shard_size`` bounds what is held at once."""
        report = report if report is not None else StepReport(self.name)
        shard: list[dict] = []
        for d in docs:
            shard.append(d)
            if len(shard) >= shard_size:
                yield from self._shard(shard, report)
                shard = []
        if shard:
            yield from self._shard(shard, report)

    def _shard(self, shard, report):
        judged = [d for d in shard if self.applies_to is None or d["source"] in self.applies_to]
        verdicts = iter(self.decide(judged)) if judged else iter(())
        for d in shard:
            keep, why = (next(verdicts) if self.applies_to is None or d["source"] in self.applies_to
                         else (True, None))
            report.add(d, keep, why, self.keep_removed)
            if keep:
                yield d

    def apply(self, docs: list[dict], shard_size: int = 1000) -> tuple[list[dict], StepReport]:
        """Notebook form: the whole list through this step, plus its report."""
        rep = StepReport(self.name)
        kept = list(self.run(docs, rep, shard_size))
        return kept, rep


def funnel(initial: list[dict] | StepReport, reports: list[StepReport]):
    """Long table: tokens and docs per source after loading and after each step."""
    import pandas as pd
    rows = []
    if isinstance(initial, StepReport):
        first = initial
    else:
        first = StepReport("loaded")
        for d in initial:
            first.add(d, True, None, False)
    stages = [("loaded", first.docs_in, first.tokens_in)] + [(r.step, r.docs_out, r.tokens_out) for r in reports]
    for i, (name, docs, toks) in enumerate(stages):
        for s in sorted(first.docs_in):
            rows.append({"stage_no": i, "stage": name, "source": s, "docs": docs.get(s, 0), "tokens": toks.get(s, 0)})
    return pd.DataFrame(rows)


def by_source(docs: Iterable[dict]) -> dict:
    out = defaultdict(list)
    for d in docs:
        out[d["source"]].append(d)
    return out
