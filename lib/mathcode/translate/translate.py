"""The translation driver: passages -> prompts -> model replies -> parsed blocks -> sandbox -> verdicts.

Resumable and shardable, because the paper's translation runs were long and split across machines:
  * documents go to shard ``hash(id) % num_shards`` (stable when the corpus grows or is reordered);
  * a shard's documents are processed in fixed chunks (``docs_per_chunk``, batched together for the
    model); each finished chunk is appended to ``work/records.shard-K-of-N.jsonl`` as one line with a
    single write + fsync, so a SIGKILL loses at most the chunk in flight, and a half-written last line
    is dropped on resume;
  * a rerun skips chunks whose documents are all recorded. Chunks are fixed by the shard's document
    order, so each chunk is generated with the same batch as in an uninterrupted run and the outputs
    are identical (batched generation is not batch-invariant, so resuming per document would not be);
  * ``materialize()`` merges the records of every shard found in ``work/`` (duplicates dropped, corpus
    order) into translated.jsonl / blocks.jsonl / rejected.jsonl / replies.jsonl.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import field, make_dataclass
from pathlib import Path
from typing import Callable

from mathcode.generation import GenConfig, Generator
from mathcode.translate.settings import OUTPUT_FORMATS, TranslationSettings
from mathcode.util import iter_jsonl, read_jsonl, repair_torn_tail, write_jsonl, write_json
from mathcode.translate import parse as _parse, passages as _passages, prompt as _prompt, verify as _verify
from mathcode.translate.execution import Sandbox
from mathcode.translate.generate import generate_replies

# One list of output formats: the settings class declares it (its Choice rule checks it).
FORMATS = OUTPUT_FORMATS

# The phase-2 settings the engine reads. Each one's type, default, help and rule live in ``TranslationSettings``
# alone; ``TranslateConfig`` takes its fields from there (see ``_setting_fields``) rather than re-declaring them.
ENGINE_SETTINGS = ("max_passages_per_doc", "max_passage_chars", "context_chars", "passage_unit", "max_blocks",
                   "block_tokens", "worked_example", "output_format", "tolerance", "match_rule", "docs_per_chunk",
                   "passage_selection", "min_passage_score", "shard_index", "num_shards")

_D = TranslationSettings.defaults()


def _setting_fields() -> list:
    """``(name, type, field)`` for every engine setting, copied from the settings class's own field definition
    (default and metadata: help, rule) so that the two cannot drift."""
    by_name = {f.name: f for f in TranslationSettings.fields()}
    return [(n, by_name[n].type, field(default=by_name[n].default, metadata=by_name[n].metadata))
            for n in ENGINE_SETTINGS]


class _TranslateEngine:
    """The engine's methods; ``TranslateConfig`` adds the fields (the settings' own, plus what is not a setting:
    the loaded instruction text, prefill and the generation config)."""

    def split(self, doc: dict) -> list:
        """The passages of one corpus row under this configuration, cut once per document (selection, the source
        table, the passage count and generation all ask, and get the same list).

        ``passage_selection="translatable"``: of all the row's passages, those scoring at least
        ``min_passage_score`` (``passages.translatable_score``), the best ``max_passages_per_doc`` of them, in
        document order (ids as in the unselected split, so outputs stay comparable)."""
        key = (doc.get("id"), hashlib.sha1(doc.get("text", "").encode()).hexdigest(), self.max_passage_chars,
               self.context_chars, self.max_passages_per_doc, self.passage_unit, self.passage_selection,
               self.min_passage_score)
        if key not in self._split_cache:
            self._split_cache[key] = self._cut(doc)
        return list(self._split_cache[key])

    def split_every(self, doc: dict) -> list:
        """Every computation passage of the row, with neither the per-document cap nor the selection score:
        what the document *contains*, against which ``split`` (what may be translated) is reported."""
        key = ("every", doc.get("id"), hashlib.sha1(doc.get("text", "").encode()).hexdigest(),
               self.max_passage_chars, self.context_chars, self.passage_unit)
        if key not in self._split_cache:
            self._split_cache[key] = _passages.split_document(
                doc, max_passage_chars=self.max_passage_chars, context_chars=self.context_chars,
                max_passages=10 ** 6, unit=self.passage_unit)
        return list(self._split_cache[key])

    def score(self, doc: dict) -> float:
        """The mean translatable score of the passages ``split`` gives this row (0 when none)."""
        ps = self.split(doc)
        return sum(_passages.translatable_score(p.text, p.context)[0] for p in ps) / len(ps) if ps else 0.0

    def _cut(self, doc: dict) -> list:
        if self.passage_selection != "translatable":
            return _passages.split_document(doc, max_passage_chars=self.max_passage_chars,
                                            context_chars=self.context_chars,
                                            max_passages=self.max_passages_per_doc, unit=self.passage_unit)
        every = self.split_every(doc)
        scored = [(_passages.translatable_score(p.text, p.context)[0], k, p) for k, p in enumerate(every)]
        keep = sorted((t for t in scored if t[0] >= self.min_passage_score), key=lambda t: (-t[0], t[1]))
        return [p for _, _, p in sorted(keep[:self.max_passages_per_doc], key=lambda t: t[1])]

    def check(self):
        """Refuse values outside their rules, with the settings class's own message (naming the setting): a
        config built directly (tests, bench, the datatrove route) has not been through ``TranslationSettings``."""
        TranslationSettings.check({n: getattr(self, n) for n in ENGINE_SETTINGS}, where="TranslateConfig")

    @classmethod
    def from_settings(cls, settings: TranslationSettings, **extra) -> "TranslateConfig":
        """The engine's config from checked phase settings: every engine setting taken by name, plus ``extra``
        (instruction, gen, prefill), which are not settings."""
        return cls(**{n: getattr(settings, n) for n in ENGINE_SETTINGS}, **extra)


TranslateConfig = make_dataclass(
    "TranslateConfig",
    _setting_fields() + [
        # prefill the first header and generate block by block (None: when possible)
        ("prefill", "bool | None", field(default=None)),
        ("instruction", str, field(default=_prompt.INSTRUCTION)),
        ("gen", GenConfig, field(default_factory=lambda: GenConfig(max_new_tokens=_D["max_new_tokens"],
                                                                   batch_size=_D["batch_size"]))),
        ("_split_cache", dict, field(default_factory=dict, repr=False, compare=False)),
    ],
    bases=(_TranslateEngine,))
TranslateConfig.__module__ = __name__   # pickling and reprs name this module, not dataclasses
TranslateConfig.__doc__ = ("The engine's view of the phase-2 settings: the fields named in ENGINE_SETTINGS, defined "
                           "once in TranslationSettings, plus the instruction text, prefill and generation config.")


# --- corpus ----------------------------------------------------------------------------------------
def load_corpus(path, limit: int = 0) -> list[dict]:
    """Corpus rows ``{"id", "text", "source"?, "meta"?}``; a bad row raises naming file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus file {path} does not exist; set corpus_file to a JSONL file with "
                                f"'id' and 'text' per line, or leave it empty to use phase 1's corpus")
    rows, seen = [], set()
    for n, row in enumerate(iter_jsonl(path), 1):
        if not isinstance(row.get("text"), str):
            raise ValueError(f"{path}:{n}: row has no string 'text' field; each line needs 'id' and 'text'")
        rid = str(row.get("id", f"line{n}"))
        if rid in seen:
            raise ValueError(f"{path}:{n}: duplicate id {rid!r}; ids must be unique")
        seen.add(rid)
        rows.append({"id": rid, "text": row["text"], "source": str(row.get("source", path.stem)),
                     "meta": row.get("meta", {})})
        if limit and len(rows) >= limit:
            break
    return rows


def shard_of(doc_id: str, num_shards: int) -> int:
    return int(hashlib.sha1(doc_id.encode()).hexdigest()[:12], 16) % num_shards


def records_path(out_dir, shard_index: int, num_shards: int) -> Path:
    return Path(out_dir) / "work" / f"records.shard-{shard_index}-of-{num_shards}.jsonl"


def read_records(path: Path) -> list[dict]:
    """Complete records; a half-written last line (killed mid-write) is cut off the file (``mathcode.util`` rule)."""
    repair_torn_tail(path)
    return read_jsonl(path, missing_ok=True)


def _append_line(path: Path, obj: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, ensure_ascii=False, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# --- formatting ------------------------------------------------------------------------------------
def block_text(b: dict) -> str:
    """One verified block in the paper's pretraining layout: conditions, LaTeX, result, code."""
    parts = []
    if b.get("conditions"):
        parts.append(b["conditions"].strip())
    if b.get("expression"):
        parts.append(f"$${b['expression']}$$")
    parts.append(f"result: {b['result']}")
    parts.append(f"```python\n{b['code'].rstrip()}\n```")
    return "\n".join(parts)


def passage_text(passage: dict, blocks: list[dict], fmt: str) -> str:
    body = "\n\n".join(block_text(b) for b in blocks)
    return body if fmt == "paper" else f"{passage['text'].rstrip()}\n\n{body}"


def _norm(s: str) -> str:
    return "".join(ch for ch in (s or "") if ch.isalnum())


_EXAMPLE_BLOCKS = None


def copied_from_example(b, passage: str) -> bool:
    """A block that repeats the worked example's conditions, expression or code (small models do) is not a
    translation (measured: the 0.5B kept the example's "The garden is 12 m long and 7 m wide." as conditions)."""
    global _EXAMPLE_BLOCKS
    if _EXAMPLE_BLOCKS is None:
        _EXAMPLE_BLOCKS = _parse.parse_reply(_prompt.EXAMPLE_REPLY)[0]
    for e in _EXAMPLE_BLOCKS:
        same_expr = _norm(b.expression) and _norm(b.expression) == _norm(e.expression)
        same_code = _norm(b.code) and _norm(b.code) == _norm(e.code)
        same_cond = _norm(b.conditions) and _norm(b.conditions) == _norm(e.conditions)
        if (same_expr or same_code or same_cond) and _norm(e.expression) not in _norm(passage):
            return True
    return False


def only_copies(reply: str, passage: str) -> bool:
    """Every block of ``reply`` repeats the worked example (and there is at least one)."""
    blocks, err = _parse.parse_reply(reply)
    return not err and bool(blocks) and all(copied_from_example(b, passage) for b in blocks)


def original_id(doc: dict) -> str:
    """The id the user gave the document (phase 1 keeps it as ``meta.original_id`` while ``id`` becomes a hash
    unique across sources; a corpus_file row's own ``id`` is the user's). Every phase-2 row carries it, so a block
    is traced to its example without a join."""
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    return str(meta.get("original_id") or doc.get("id"))


# --- the work --------------------------------------------------------------------------------------
def reply_level_row(p: dict, err: str) -> dict:
    """The record of a reply in which no block could be found at all."""
    return {"id": f"{p['id']}#reply", "passage_id": p["id"], "doc_id": p["doc_id"],
            "original_id": p.get("original_id"), "source": p["source"],
            "outcome": "unparsable", "reason": err, "reply_level": True}


def block_row(p: dict, b, run, cfg: TranslateConfig, sandbox=None) -> dict:
    """The record of one parsed block: its fields, the sandbox run and ``verify.judge``'s verdict (``sandbox``
    runs the judge's metamorphic re-runs; a private one when None)."""
    v = _verify.judge(b, run, cfg.tolerance, passage=p["text"], rule=cfg.match_rule, sandbox=sandbox,
                      copied=cfg.worked_example and copied_from_example(b, p["text"]))
    row = {"id": f"{p['id']}#b{b.index}", "passage_id": p["id"], "doc_id": p["doc_id"],
           "original_id": p.get("original_id"), "source": p["source"],
           **{k: getattr(b, k) for k in ("conditions", "expression", "result", "code", "result_from_expression")},
           **v}
    if v.get("result_reread"):       # the model's Computation Result was wrong; the passage's value is kept
        row["stated_result"], row["result"] = row["result"], v["result_reread"]
    if run is not None:
        row.update(stdout=run.stdout[:2000], stderr=run.stderr[-1000:], exit_status=run.status,
                   truncated=run.truncated, exec_seconds=run.seconds, isolation=run.isolation)
    return row


def _process_chunk(chunk: list[dict], gen: Generator, sandbox: Sandbox, cfg: TranslateConfig, chunk_id: str) -> dict:
    t0 = time.perf_counter()
    passages = []
    for d in chunk:
        passages += [{**p.to_dict(), "original_id": original_id(d)} for p in cfg.split(d)]
    convs = [_prompt.build_messages(p["text"], cfg.instruction, worked_example=cfg.worked_example,
                                    max_blocks=cfg.max_blocks, focus=_prompt.focus_of(p)) for p in passages]
    tg = time.perf_counter()
    comps = generate_replies(gen, convs, cfg.gen, cfg.max_blocks, cfg.block_tokens, cfg.prefill) if convs else []
    retried = set()
    if cfg.worked_example:          # a reply that only repeats the worked example: ask again without the example
        redo = [k for k, (p, c) in enumerate(zip(passages, comps)) if only_copies(c.text, p["text"])]
        if redo:
            again = generate_replies(gen, [_prompt.build_messages(passages[k]["text"], cfg.instruction,
                                                                  worked_example=False, max_blocks=cfg.max_blocks,
                                                                  focus=_prompt.focus_of(passages[k]))
                                           for k in redo], cfg.gen, cfg.max_blocks, cfg.block_tokens, cfg.prefill)
            for k, c in zip(redo, again):
                c.completion_tokens += comps[k].completion_tokens
                comps[k] = c
            retried = set(redo)
    gen_s = time.perf_counter() - tg
    replies, blocks, pending = [], [], []
    for k, (p, c) in enumerate(zip(passages, comps)):
        replies.append({"passage_id": p["id"], "doc_id": p["doc_id"], "original_id": p.get("original_id"),
                        "text": c.text,
                        "completion_tokens": c.completion_tokens, "finish_reason": c.finish_reason,
                        "retried_without_example": k in retried})
        parsed, err = _parse.parse_reply(c.text)
        if err:
            blocks.append(reply_level_row(p, err))
            continue
        for b in parsed[: cfg.max_blocks]:
            pending.append((p, b))
    te = time.perf_counter()
    runs = sandbox.run_many([b.code for p, b in pending if not b.parse_error] if pending else [])
    exec_s = time.perf_counter() - te
    it = iter(runs)
    for p, b in pending:
        blocks.append(block_row(p, b, None if b.parse_error else next(it), cfg, sandbox))
    return {"chunk": chunk_id, "doc_ids": [d["id"] for d in chunk], "passages": passages, "replies": replies,
            "blocks": blocks, "gen_seconds": round(gen_s, 3), "exec_seconds": round(exec_s, 3),
            "executions": len(runs), "completion_tokens": sum(c.completion_tokens for c in comps),
            "seconds": round(time.perf_counter() - t0, 3)}


def shard_docs(docs: list[dict], cfg: TranslateConfig) -> list[dict]:
    """The documents this shard translates (``hash(id) % num_shards == shard_index``), in corpus order."""
    return [d for d in docs if shard_of(d["id"], cfg.num_shards) == cfg.shard_index]


def count_passages(docs: list[dict], cfg: TranslateConfig) -> int:
    return sum(len(cfg.split(d)) for d in docs)


def run(docs: list[dict], gen: Generator, sandbox: Sandbox, out_dir, cfg: TranslateConfig,
        progress: Callable[[str], None] | None = print, max_chunks: int = 0, bar=None) -> dict:
    """Translate this shard's documents, resuming from ``out_dir/work``. Returns run statistics.

    ``bar``: a tqdm-like progress bar advanced by passages (resumed passages count at once)."""
    cfg.check()
    mine = shard_docs(docs, cfg)
    rec_path = records_path(out_dir, cfg.shard_index, cfg.num_shards)
    done = {i for r in read_records(rec_path) for i in r["doc_ids"]}
    if bar is not None:
        bar.update(count_passages([d for d in mine if d["id"] in done], cfg))
    chunks = [mine[i:i + cfg.docs_per_chunk] for i in range(0, len(mine), cfg.docs_per_chunk)]
    todo = [[d for d in c if d["id"] not in done] for c in chunks]
    todo = [(k, c) for k, c in enumerate(todo) if c]
    stats = {"shard_docs": len(mine), "resumed_docs": len(done & {d["id"] for d in mine}),
             "chunks_total": len(chunks), "chunks_run": 0, "gen_seconds": 0.0, "exec_seconds": 0.0,
             "executions": 0, "completion_tokens": 0}
    for n, (k, chunk) in enumerate(todo):
        if max_chunks and n >= max_chunks:
            break
        rec = _process_chunk(chunk, gen, sandbox, cfg, f"{cfg.shard_index}-{k}")
        _append_line(rec_path, rec)
        stats["chunks_run"] += 1
        if bar is not None:
            bar.update(len(rec["passages"]))
        for key in ("gen_seconds", "exec_seconds", "executions", "completion_tokens"):
            stats[key] += rec[key]
        if progress:
            ok = sum(b["outcome"] == "verified" for b in rec["blocks"])
            progress(f"chunk {k + 1}/{len(chunks)}: {len(chunk)} docs, {len(rec['passages'])} passages, "
                     f"{len(rec['blocks'])} blocks, {ok} verified ({rec['seconds']:.1f} s)")
    stats["complete"] = stats["chunks_run"] == len(todo)
    return stats


def materialize(docs: list[dict], out_dir, cfg: TranslateConfig, model: str = "") -> dict:
    """Merge every shard's records into the phase outputs (atomic writes). Returns counts."""
    out_dir = Path(out_dir)
    order = {d["id"]: i for i, d in enumerate(docs)}
    by_doc: dict[str, dict] = {}
    shards = []
    for f in sorted((out_dir / "work").glob(f"records.shard-*-of-{cfg.num_shards}.jsonl")):
        shards.append(f.name.split(".")[1])
        for rec in read_records(f):
            for did in rec["doc_ids"]:
                if did in by_doc:
                    continue                                    # a duplicate from a re-run shard
                by_doc[did] = {"passages": [p for p in rec["passages"] if p["doc_id"] == did],
                               "replies": [r for r in rec["replies"] if r["doc_id"] == did],
                               "blocks": [b for b in rec["blocks"] if b["doc_id"] == did]}
    ids = sorted(by_doc, key=lambda i: order.get(i, len(order)))
    passages = [p for i in ids for p in by_doc[i]["passages"]]
    replies = [r for i in ids for r in by_doc[i]["replies"]]
    blocks = [b for i in ids for b in by_doc[i]["blocks"]]
    translated = []
    for p in passages:
        ok = [b for b in blocks if b["passage_id"] == p["id"] and b["outcome"] == "verified"]
        if ok:
            translated.append({"id": p["id"], "doc_id": p["doc_id"], "original_id": p.get("original_id"),
                               "source": p["source"],
                               "text": passage_text(p, ok, cfg.output_format),
                               "meta": {"format": cfg.output_format, "blocks": [b["id"] for b in ok],
                                        "n_verified": len(ok), "model": model, "passage_kinds": p["kinds"]}})
    rejected = [b for b in blocks if b["outcome"] != "verified"]
    write_jsonl(out_dir / "passages.jsonl", passages)
    write_jsonl(out_dir / "replies.jsonl", replies)
    write_jsonl(out_dir / "blocks.jsonl", blocks)
    write_jsonl(out_dir / "rejected.jsonl", rejected)
    write_jsonl(out_dir / "translated.jsonl", translated)
    return {"documents_done": len(ids), "passages": len(passages), "replies": len(replies),
            "blocks": len(blocks), "verified_blocks": sum(b["outcome"] == "verified" for b in blocks),
            "translated_rows": len(translated), "rejected_rows": len(rejected), "shards_present": shards}


def select_docs(docs: list[dict], max_passages: int, cfg: TranslateConfig) -> tuple[list[dict], dict]:
    """Documents that carry passages, taken round-robin over sources until ``max_passages`` (0 = all).

    Round-robin so that a small demo still shows every source in the yield funnel. Deterministic, and
    done before sharding, so every shard sees the same selection. With ``passage_selection="translatable"``
    ``cfg.split`` keeps only passages likely to verify, and each source's documents are taken best-scoring first
    (ties in corpus order), so a cap on passages spends the translator's calls where blocks verify.
    """
    by_src: dict[str, list] = {}
    n_with = n_contain = cut_all = cut_capped = docs_capped = 0
    for d in docs:
        every = cfg.split_every(d)
        n_contain += bool(every)
        cut_all += len(every)
        ps = cfg.split(d)
        cut_capped += len(ps)
        eligible = every if cfg.passage_selection != "translatable" else \
            [p for p in every if _passages.translatable_score(p.text, p.context)[0] >= cfg.min_passage_score]
        docs_capped += len(eligible) > len(ps)
        if ps:
            n_with += 1
            by_src.setdefault(d["source"], []).append((d, len(ps)))
    chosen, total = [], 0
    queues = [list(v) for v in by_src.values()]
    if cfg.passage_selection == "translatable":
        queues = [sorted(q, key=lambda t: -cfg.score(t[0])) for q in queues]       # stable: corpus order on ties
    while any(queues) and (not max_passages or total < max_passages):
        for q in queues:
            if q and (not max_passages or total < max_passages):
                d, n = q.pop(0)
                chosen.append(d)
                total += n
    order = {d["id"]: i for i, d in enumerate(docs)}
    chosen.sort(key=lambda d: order[d["id"]])
    limited_by = []          # the settings that kept passages of the corpus out, in the order they act
    if cfg.passage_selection == "translatable" and n_with < n_contain:
        limited_by.append("min_passage_score")
    if docs_capped:
        limited_by.append("max_passages_per_doc")
    if max_passages and total >= max_passages and len(chosen) < n_with:
        limited_by.append("max_passages")
    return chosen, {"documents": len(docs), "documents_with_computations": n_contain,
                    "passages_in_corpus": cut_all, "documents_with_passages": n_with,
                    "passages_available": cut_capped, "documents_selected": len(chosen),
                    "passages_selected": total, "max_passages": max_passages,
                    "max_passages_per_doc": cfg.max_passages_per_doc,
                    "passage_selection": cfg.passage_selection, "min_passage_score": cfg.min_passage_score,
                    "limited_by": limited_by, "documents_capped_per_doc": docs_capped,
                    "sources_with_passages": {s: len(v) for s, v in by_src.items()}}
