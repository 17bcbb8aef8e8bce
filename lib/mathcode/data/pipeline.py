"""Putting the steps together: the output contract (corpus.jsonl + corpus.parquet) and the streaming route.

``filter_steps`` builds the ordered list of step objects from notebook parameters; the notebook applies them
one at a time (showing each report), ``run_streaming`` chains the same objects lazily over shards with
bounded memory (documents are never all in memory; dedup keeps only signatures, decontamination only the
benchmark index), and ``datatrove_route`` wraps them as datatrove pipeline steps for a cluster.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator

from mathcode.util import atomic_write_text
from mathcode.data.records import Step, StepReport

CORPUS_FIELDS = ("id", "text", "source", "meta")


def filter_steps(*, min_chars: int = 50, max_chars: int = 100_000, min_symbol_ratio: float = 0.0,
                 max_symbol_ratio: float = 0.8, max_dup_lines: float = 0.3, max_top_trigram: float = 0.3,
                 quality: list | tuple = ("length", "symbols", "repetition"), classifier=None,
                 classifier_threshold: float = 0.5, classify_sources=None, dedup: bool = True,
                 dedup_threshold: float = 0.8, dedup_num_perm: int = 128, dedup_shingle: int = 5,
                 benchmarks=None, ngram: int = 13, seed: int = 0) -> list[Step]:
    """Steps in the paper's order: quality heuristics → math classifier → near-dedup → decontamination."""
    from mathcode.data.quality import LengthFilter, RepetitionFilter, SymbolDensityFilter
    known = {"length", "symbols", "repetition"}
    bad = set(quality) - known
    if bad:
        raise ValueError(f"quality_filters has unknown entries {sorted(bad)}; choose from {sorted(known)}")
    steps: list[Step] = []
    if "length" in quality:
        steps.append(LengthFilter(min_chars, max_chars))
    if "symbols" in quality:
        steps.append(SymbolDensityFilter(min_symbol_ratio, max_symbol_ratio))
    if "repetition" in quality:
        steps.append(RepetitionFilter(max_dup_lines, max_top_trigram))
    if classifier is not None:
        from mathcode.data.classifier import ClassifierFilter
        steps.append(ClassifierFilter(classifier, classifier_threshold, classify_sources))
    if dedup:
        from mathcode.data.dedup import MinHashDedup
        steps.append(MinHashDedup(dedup_threshold, dedup_num_perm, dedup_shingle, seed=seed + 1))
    if benchmarks is not None and len(benchmarks):
        from mathcode.data.decontaminate import Decontaminator
        steps.append(Decontaminator(benchmarks, ngram))
    return steps


def run_streaming(docs: Iterable[dict], steps: list[Step], out_path: str | os.PathLike | None = None,
                  shard_size: int = 1000, removed_path: str | os.PathLike | None = None) -> tuple[int, list[StepReport]]:
    """Chain ``steps`` lazily over ``docs`` (shard by shard) and stream survivors to ``out_path`` (JSONL).

    Only steps with ``keep_removed`` (decontamination) hold their removed rows; they are written to
    ``removed_path`` at the end. Memory is bounded by one shard per step plus the dedup/decontam indexes."""
    reports = [StepReport(s.name) for s in steps]
    it: Iterator[dict] = iter(docs)
    for s, r in zip(steps, reports):
        it = s.run(it, r, shard_size)
    n = 0
    fh = open(str(out_path) + ".partial", "w", encoding="utf-8") if out_path else None
    try:
        for d in it:
            n += 1
            if fh:
                fh.write(json.dumps({k: d[k] for k in CORPUS_FIELDS if k in d}, ensure_ascii=False) + "\n")
    finally:
        if fh:
            fh.close()
    if out_path:
        os.replace(str(out_path) + ".partial", out_path)
    if removed_path:
        rows = [row for r in reports for row in r.removed]
        write_jsonl_stream(removed_path, rows)
    return n, reports


def write_jsonl_stream(path, rows: Iterable[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def check_corpus(docs: list[dict]) -> None:
    """The phase-1 contract; refuses to write an empty or malformed corpus."""
    if not docs:
        raise ValueError("the corpus is empty after filtering and mixture: loosen the thresholds, raise "
                         "max_docs_per_source or token_budget, or add sources — an empty corpus is never written")
    seen = set()
    for d in docs:
        for k, t in (("id", str), ("text", str), ("source", str), ("meta", dict)):
            if not isinstance(d.get(k), t):
                raise ValueError(f"document {d.get('id')!r}: field {k!r} must be {t.__name__}")
        if d["id"] in seen:
            raise ValueError(f"duplicate id {d['id']!r} in the corpus")
        seen.add(d["id"])


def write_corpus(docs: list[dict], out_dir: str | os.PathLike) -> dict:
    """corpus.jsonl + corpus.parquet (same rows; ``meta`` a struct column, loadable by ``datasets``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    check_corpus(docs)
    out_dir = Path(out_dir)
    rows = [{k: d[k] for k in CORPUS_FIELDS} for d in docs]
    jl = atomic_write_text(out_dir / "corpus.jsonl",
                           "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))
    table = pa.Table.from_pylist(rows)
    tmp = out_dir / ".corpus.parquet.partial"
    pq.write_table(table, tmp)
    os.replace(tmp, out_dir / "corpus.parquet")
    return {"jsonl": str(jl), "parquet": str(out_dir / "corpus.parquet"), "rows": len(rows)}
