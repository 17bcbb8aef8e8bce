"""The cluster route: the same filter steps as the notebook, run as a datatrove pipeline.

``StepFilter`` wraps any ``mathcode.data`` step as a datatrove ``BaseFilter``; it is built from a *recipe*
(kind + keyword arguments) inside each worker, so nothing unpicklable (a fastText model, a benchmark index)
travels between processes. Near-dedup across shards needs a global view, which datatrove's four MinHash
stages provide (signatures → buckets → clusters → filter); our ``shingle``/``num_perm``/``threshold`` map to
its ``MinhashConfig``. Swap ``LocalPipelineExecutor`` for ``SlurmPipelineExecutor`` (same arguments plus
partition/time) to run on a cluster; input and output folders may be any fsspec URL (s3://, hf://).

Row format on disk is the phase-1 contract ``{id, text, source, meta}`` in JSONL.
"""
from __future__ import annotations

from pathlib import Path

from datatrove.data import Document
from datatrove.pipeline.filters.base_filter import BaseFilter
from mathcode.datatrove_io import reader, writer  # noqa: F401  (phase-1 rows as datatrove documents)


def _to_dict(doc: Document) -> dict:
    return {"id": doc.id, "text": doc.text, "source": doc.metadata.get("source", ""),
            "meta": doc.metadata.setdefault("meta", {})}


def build_step(kind: str, **kw):
    """One ``mathcode.data`` step from a picklable recipe."""
    from mathcode.data import pipeline
    if kind in ("length", "symbols", "repetition"):
        return pipeline.filter_steps(quality=[kind], dedup=False, **kw)[0]
    if kind == "classifier":
        from mathcode.data.classifier import ClassifierFilter, MathClassifier
        return ClassifierFilter(MathClassifier.load(kw["path"]), kw.get("threshold", 0.5), kw.get("applies_to"))
    if kind == "decontaminate":
        from mathcode.data.decontaminate import Decontaminator, load_benchmarks
        return Decontaminator(load_benchmarks(kw.get("benchmarks", "default")), kw.get("n", 13))
    if kind == "near_dedup":          # shard-local only; use minhash_stages for a global dedup
        from mathcode.data.dedup import MinHashDedup
        return MinHashDedup(**kw)
    raise ValueError(f"unknown step kind {kind!r}")


class StepFilter(BaseFilter):
    """A mathcode step inside datatrove (batched, so the classifier scores many documents per call)."""
    name = "mathcode step"

    def __init__(self, kind: str, batch_size: int = 1000, exclusion_writer=None, **kw):
        super().__init__(exclusion_writer=exclusion_writer, batch_size=batch_size)
        self.kind, self.kw, self._step = kind, kw, None
        self.name = f"mathcode {kind}"

    def filter(self, doc: Document):
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch):
        if self._step is None:
            self._step = build_step(self.kind, **self.kw)
        dicts = [_to_dict(d) for d in batch]
        applies = getattr(self._step, "applies_to", None)
        judged = [d for d in dicts if applies is None or d["source"] in applies]
        verdicts = iter(self._step.decide(judged)) if judged else iter(())
        out = []
        for d in dicts:
            keep, why = next(verdicts) if applies is None or d["source"] in applies else (True, None)
            out.append(True if keep else (False, (why or {}).get("reason", self.kind)))
        return out


def _word_tokenizer():
    """datatrove's English tokenizer needs spaCy; MinHash only needs words, so it gets ``textnorm.words`` —
    the same tokens as our datasketch shingles."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    from mathcode.textnorm import words

    class MathcodeWords(WordTokenizer):
        def word_tokenize(self, text):
            return words(text)

        def sent_tokenize(self, text):
            return [l for l in text.splitlines() if l.strip()]

        def span_tokenize(self, text):
            out, pos = [], 0
            for line in text.splitlines(keepends=True):
                out.append((pos, pos + len(line)))
                pos += len(line)
            return out
    return MathcodeWords("mathcode")


def minhash_config(num_perm: int = 128, shingle: int = 5, threshold: float = 0.8, seed: int = 1):
    """datatrove MinhashConfig closest to our (num_perm, threshold): bands×rows = num_perm with the LSH
    S-curve midpoint (1/b)^(1/r) nearest the threshold."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import TextNormConfig
    best = min(((b, num_perm // b) for b in range(1, num_perm + 1) if num_perm % b == 0),
               key=lambda br: abs((1 / br[0]) ** (1 / br[1]) - threshold))
    # sha1: datatrove 0.10's xxhash path passes str, which xxhash>=4 rejects ("Strings must be encoded").
    # norm_numbers off: datatrove's default maps every number to 0, which makes "gcd(780, 461)" and
    # "gcd(12, 5)" identical — wrong for math, where the numbers are the content.
    return MinhashConfig(n_grams=shingle, num_buckets=best[0], hashes_per_bucket=best[1], seed=seed,
                         hash_config=HashConfig(precision=64, hash_fc="sha1"),
                         norm_config=TextNormConfig(norm_numbers=False))


def executors(input_folder: str, output_folder: str, work_folder: str, *, filters: list[tuple[str, dict]],
              decontam: dict | None = None, dedup: dict | None = None, tasks: int = 1, workers: int = 1):
    """Local executors, in order: filters (+ MinHash signatures) → buckets → clusters → dedup filter +
    decontamination → writer. Run each ``.run()`` in turn (``run_local`` does)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    w = Path(work_folder)
    stage1 = [reader(input_folder)] + [StepFilter(k, **kw) for k, kw in filters]
    tail = [StepFilter("decontaminate", **decontam)] if decontam else []
    if not dedup:
        return [LocalPipelineExecutor(stage1 + tail + [writer(output_folder)], tasks=tasks, workers=workers,
                                      logging_dir=str(w / "logs" / "all"), skip_completed=False)]
    cfg = minhash_config(**dedup)
    return [
        LocalPipelineExecutor(stage1 + [writer(str(w / "filtered")),
                                        MinhashDedupSignature(output_folder=str(w / "sigs"), config=cfg,
                                                              language=_word_tokenizer())],
                              tasks=tasks, workers=workers, logging_dir=str(w / "logs" / "1"), skip_completed=False),
        LocalPipelineExecutor([MinhashDedupBuckets(input_folder=str(w / "sigs"), output_folder=str(w / "buckets"),
                                                   config=cfg)],
                              tasks=cfg.num_buckets, workers=workers, logging_dir=str(w / "logs" / "2"),
                              skip_completed=False),
        LocalPipelineExecutor([MinhashDedupCluster(input_folder=str(w / "buckets"), output_folder=str(w / "remove"),
                                                   config=cfg)],
                              tasks=1, logging_dir=str(w / "logs" / "3"), skip_completed=False),
        LocalPipelineExecutor([reader(str(w / "filtered")), MinhashDedupFilter(input_folder=str(w / "remove"),
                                                                       exclusion_writer=writer(str(w / "near_duplicates")))]
                              + tail + [writer(output_folder)],
                              tasks=tasks, workers=workers, logging_dir=str(w / "logs" / "4"), skip_completed=False),
    ]


def run_local(*args, **kw) -> list:
    """Build and run every stage; returns datatrove's stats per stage."""
    return [ex.run() for ex in executors(*args, **kw)]


def count_rows(folder: str) -> int:
    return sum(sum(1 for line in open(f) if line.strip()) for f in Path(folder).glob("*.jsonl"))


__all__ = ["StepFilter", "build_step", "executors", "run_local", "minhash_config", "reader", "writer", "count_rows"]
