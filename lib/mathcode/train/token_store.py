"""Phase 3's token store: each mixture part tokenized once into memory-mapped token files, and training blocks cut
from those files lazily.

Why: holding the corpus as Python lists of token ids costs about 85 MB of host memory per million tokens, and every
rank, every resumed run and every arm of an ablation tokenized it again. A store is keyed by what decides its
content — the tokenizer (its full serialized definition), the input file's bytes, the text field and this format —
so a changed input is a new store and an unchanged one is reused by a resumed run, the next ablation arm and every
rank. It is written under a ``.partial`` name and renamed into place when complete, so a store that exists is whole.

The engine is datatrove's ``DocumentTokenizer`` (the tokenizer step nanotron trains from): it streams documents
through ``tokenizers.encode_batch`` and writes a flat token file (uint16 when the vocabulary fits, else uint32) and an
index of document ends — exactly the layout lazy block cutting needs, with flat memory, and it runs on the same
datatrove executors as phases 1 and 2. 🤗 datasets' ``map`` with its Arrow cache was measured side by side
(``bench/bench_token_store.py``, bench/README.md (2026-12-07)): it also keeps a second copy of every text
in Arrow and stores tokens as int64 lists in chunks, so blocks would have to be stitched across chunk boundaries.

A part's store holds, in input order, every row with non-empty text: ``tokens`` (each document followed by one EOS,
as the in-memory packer joins them), ``ends`` (cumulative token ends), ``groups`` (``doc_id`` or ``id``: documents
sharing a group stay on one side of the held-out split) and ``meta.json``. ``splits`` then applies ``max_documents``,
the held-out split by group (the same rule as ``packing.split_heldout``), per-part repetition, and cuts the blocks.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mathcode.train.input_files import CorpusError
from mathcode.train.packing import PackingError

FORMAT = 1
_TOKENS, _INDEX = "tokens.ds", "tokens.ds.index"


class StoreError(CorpusError):
    """A corpus file that cannot be stored (the message names file and line) or a store that cannot be read."""


def default_root() -> Path:
    from mathcode import paths
    return paths.cache_dir() / "token_store"


def file_digest(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while b := fh.read(chunk):
            h.update(b)
    return h.hexdigest()


def tokenizer_definition(tok) -> str:
    """The tokenizer as ``tokenizer.json`` text with truncation and padding off (a store holds whole documents).
    Its hash is the tokenizer's part of the store key: any change to vocabulary, merges or normalizer is a new store."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise StoreError(f"tokenizer {getattr(tok, 'name_or_path', tok)!r} is not a fast (Rust) tokenizer; the token "
                         f"store needs one (transformers' AutoTokenizer gives one for almost every model)")
    import tokenizers
    t = tokenizers.Tokenizer.from_str(backend.to_str())
    t.no_truncation()
    t.no_padding()
    return t.to_str()


def store_key(tok_def: str, input_digest: str, text_field: str, stem: str, eos_token: str) -> str:
    spec = {"format": FORMAT, "tokenizer": hashlib.sha256(tok_def.encode()).hexdigest(), "input": input_digest,
            "text_field": text_field, "stem": stem, "eos": eos_token}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass
class PartStore:
    """One mixture part, tokenized: memory-mapped tokens, document ends and groups (read-only)."""
    label: str
    path: Path
    meta: dict
    reused: bool = False
    _tokens: object = None
    _ends: object = None
    _groups: object = None

    @property
    def n_docs(self) -> int:
        return int(self.meta["documents"])

    @property
    def n_tokens(self) -> int:
        return int(self.meta["tokens"])

    @property
    def tokens(self) -> np.ndarray:
        if self._tokens is None:
            dt = np.uint16 if self.meta["token_bytes"] == 2 else np.uint32
            self._tokens = (np.memmap(self.path / _TOKENS, dtype=dt, mode="r") if self.n_tokens
                            else np.zeros(0, dtype=dt))
        return self._tokens

    @property
    def ends(self) -> np.ndarray:
        if self._ends is None:
            self._ends = (np.fromfile(self.path / _INDEX, dtype="<u8").astype(np.int64) if self.n_docs
                          else np.zeros(0, dtype=np.int64))
        return self._ends

    @property
    def groups(self) -> np.ndarray:
        if self._groups is None:
            with open(self.path / "groups.jsonl") as fh:
                self._groups = np.array([json.loads(x) for x in fh], dtype=str) if self.n_docs else np.zeros(0, str)
        return self._groups

    def disk_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())

    def resident_bytes(self) -> int:
        """Host memory a training process keeps for this part besides the page cache: the index and the groups."""
        return int(self.n_docs * 8 + self.meta.get("group_chars", 0) * 4)


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", label)[:60] or "part"


def _rows(path: Path, text_field: str, groups_out, stats: dict, progress: bool):
    """datatrove Documents for the rows with non-empty text; a row without a string text is an error (file:line)."""
    from datatrove.data import Document
    from mathcode.progress import bar
    from mathcode.util import iter_jsonl
    longest = 0
    for n, row in enumerate(bar(iter_jsonl(path), desc=f"tokenize {path.name}", unit="doc", disable=not progress), 1):
        t = row.get(text_field)
        if not isinstance(t, str):
            raise StoreError(f"{path}:{n}: row has no string {text_field!r} field (keys: {sorted(row)}); "
                             f"phase 3 trains on {text_field!r}")
        if not t.strip():
            continue
        rid = str(row.get("id", f"{path.stem}:{n}"))
        g = str(row.get("doc_id") or rid)
        groups_out.write(json.dumps(g) + "\n")
        longest = max(longest, len(g))
        stats["documents"] += 1
        stats["characters"] += len(t)
        yield Document(text=t, id=rid)
    stats["group_chars"] = longest * stats["documents"]


def open_part(path: Path, label: str, reused: bool = True) -> PartStore:
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("format") != FORMAT:
        raise StoreError(f"{path} was written by another store format ({meta.get('format')}); delete it")
    return PartStore(label, path, meta, reused=reused)


def build_part(input_path, label: str, tok, root=None, *, text_field: str = "text", progress: bool = True,
               wait: bool = False, wait_timeout_s: float = 86400.0, tasks: int = 1) -> PartStore:
    """The store of one part: reused when complete, else tokenized now (``wait``: never tokenize, wait for the
    process that does, e.g. rank 0; other ranks call it so)."""
    input_path = Path(input_path)
    if not input_path.is_file():
        raise StoreError(f"{input_path} does not exist; pass JSONL files with a {text_field!r} field")
    if tok.eos_token is None:
        raise PackingError(f"tokenizer {getattr(tok, 'name_or_path', '')!r} has no EOS token; packing needs one")
    root = Path(root) if root else default_root()
    tok_def = tokenizer_definition(tok)
    digest = file_digest(input_path)
    key = store_key(tok_def, digest, text_field, input_path.stem, tok.eos_token)
    final = root / f"{_safe(label)}-{key[:20]}"
    if (final / "meta.json").exists():
        return open_part(final, label)
    if wait:
        t0 = time.time()
        while not (final / "meta.json").exists():
            if time.time() - t0 > wait_timeout_s:
                raise StoreError(f"waited {wait_timeout_s:.0f} s for {final} (written by rank 0); is rank 0 alive?")
            time.sleep(0.5)
        return open_part(final, label)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / "tokenizer.json").write_text(tok_def)
        stats = {"documents": 0, "characters": 0, "group_chars": 0}
        _tokenize(input_path, tmp, text_field, tok.eos_token, stats, progress)
        ends = np.fromfile(tmp / _INDEX, dtype="<u8") if (tmp / _INDEX).exists() else np.zeros(0, "<u8")
        if len(ends) != stats["documents"]:
            raise StoreError(f"{input_path}: the tokenizer wrote {len(ends)} documents for {stats['documents']} rows")
        vocab = tokenizers_vocab(tok_def)
        meta = {"format": FORMAT, "label": label, "input": str(input_path), "input_sha256": digest,
                "text_field": text_field,
                "tokens": int(ends[-1]) if len(ends) else 0, "token_bytes": 4 if vocab > 65536 else 2,
                "eos_token": tok.eos_token, "eos_id": int(tok.eos_token_id), "vocab_size": vocab,
                "tokenizer": getattr(tok, "name_or_path", ""), "key": key, "created": time.time(), **stats}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:                                   # another process finished the same store first
            if not (final / "meta.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return open_part(final, label)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return open_part(final, label, reused=False)


def tokenizers_vocab(tok_def: str) -> int:
    import tokenizers
    return tokenizers.Tokenizer.from_str(tok_def).get_vocab_size(with_added_tokens=True)


@contextlib.contextmanager
def _datatrove_logs_off():
    """datatrove's executor logs every task through loguru to stderr (``add_task_logger`` adds that sink itself at
    INFO), which notebook 03 would show as a stderr box of "Launching pipeline" lines on the first run of a part.
    Its records are dropped for the store's one local task: the task log folder is deleted after the run anyway, and
    a failing step still raises its own exception (the executor re-raises it)."""
    from loguru import logger
    logger.disable("datatrove")
    try:
        yield
    finally:
        logger.enable("datatrove")


def _tokenize(input_path: Path, out: Path, text_field: str, eos_token: str, stats: dict, progress: bool) -> None:
    """datatrove's tokenizer step on a local executor (one task: the rows keep their input order)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.tokens import DocumentTokenizer

    groups = open(out / "groups.jsonl", "w")

    def read(data, rank: int = 0, world_size: int = 1):
        yield from _rows(input_path, text_field, groups, stats, progress)

    step = DocumentTokenizer(output_folder=str(out / "dt"), tokenizer_name_or_path=str(out / "tokenizer.json"),
                             eos_token=eos_token, shuffle_documents=False, save_final_metadata=False,
                             save_filename="tokens", batch_size=1000)
    # batch_size: a batch's ``Encoding`` objects hold every token's string and offsets, so host memory follows the
    # batch, not the corpus; datatrove's default of 10,000 documents peaked at 1.2 GB on 10M tokens (bench entry)
    try:
        with _datatrove_logs_off():
            LocalPipelineExecutor([read, step], tasks=1, workers=1, logging_dir=str(out / "dt_logs"),
                                  skip_completed=False).run()
    finally:
        groups.close()
    made = sorted((out / "dt").glob("*.ds")) if (out / "dt").exists() else []
    if len(made) > 1:
        raise StoreError(f"{input_path}: the tokenizer step wrote {len(made)} files; one was expected")
    if made:
        os.replace(made[0], out / _TOKENS)
        os.replace(f"{made[0]}.index", out / _INDEX)
    shutil.rmtree(out / "dt", ignore_errors=True)
    shutil.rmtree(out / "dt_logs", ignore_errors=True)


def plan_parts(inputs: list, tokenizer_name: str, root=None, repeats: dict | None = None) -> list[dict]:
    """Per part, before any work: tokens (exact when a store of this input and tokenizer exists, else an estimate
    from the file size), repeats, training tokens and share, and host memory (memory-mapped store on disk and page
    cache; resident index). ``inputs``: [(file, label)]; a file not produced yet gets a row saying so."""
    root = Path(root) if root else default_root()
    repeats = repeats or {}
    rows = []
    for path, label in inputs:
        path = Path(path)
        r = float(repeats.get(label, 1))
        row = {"part": label, "file": str(path), "repeats": r, "tokens": None, "exact": False, "store": ""}
        if path.is_file():
            digest = file_digest(path)
            for m in sorted(root.glob(f"{_safe(label)}-*/meta.json")) if root.is_dir() else []:
                meta = json.loads(m.read_text())
                if meta.get("input_sha256") == digest and meta.get("tokenizer") == tokenizer_name:
                    row.update(tokens=int(meta["tokens"]), exact=True, store=str(m.parent), docs=meta["documents"],
                               token_bytes=meta["token_bytes"])
                    break
            else:
                row.update(tokens=int(path.stat().st_size / BYTES_PER_TOKEN), docs=None, token_bytes=4)
            b = row["token_bytes"]
            row["mapped_mb"] = round(row["tokens"] * b / 2 ** 20, 1)
            row["resident_mb"] = round(((row["docs"] or row["tokens"] / 500) * 8) / 2 ** 20, 2)
            row["train_tokens"] = int(row["tokens"] * r)
        rows.append(row)
    total = sum(x.get("train_tokens", 0) for x in rows) or 1
    for x in rows:
        x["share"] = x.get("train_tokens", 0) / total
    return rows


# Bytes of JSONL per token for the estimate before a part is tokenized (English/LaTeX text with a ~50k BPE
# vocabulary: about 3 characters per token, plus the JSON keys and escapes of each row; sympy docstrings: 2.9).
BYTES_PER_TOKEN = 3.5


# --- splits and lazy blocks -------------------------------------------------------------------------------------

def split_heldout(groups: np.ndarray, lengths: np.ndarray, fraction: float, min_tokens: int, seed: int) -> np.ndarray:
    """``packing.split_heldout`` on arrays: whole groups, in a seeded order of the sorted group names, are held out
    until ``fraction`` of the tokens (and ``min_tokens``) is reached; the last group in that order always trains."""
    if not 0.0 < fraction < 1.0:
        raise PackingError(f"heldout_fraction={fraction} must be between 0 and 1 (exclusive)")
    names, inv = np.unique(groups, return_inverse=True)
    order = list(range(len(names)))
    shuffled = [str(x) for x in names]
    random.Random(seed).shuffle(shuffled)                  # the same draw as the in-memory rule (sorted names)
    pos = {g: i for i, g in enumerate(shuffled)}
    rank_of = np.array([pos[str(names[i])] for i in order], dtype=np.int64)    # group index -> place in the order
    per_group = np.bincount(inv, weights=lengths.astype(np.float64) + 1, minlength=len(names))
    in_order = np.zeros(len(names))
    in_order[rank_of] = per_group
    before = np.concatenate([[0.0], np.cumsum(in_order)[:-1]])
    goal = max(fraction * float(lengths.sum() + len(lengths)), min_tokens)
    held_place = (before < goal) & (np.arange(len(names)) < len(names) - 1)
    return held_place[rank_of][inv]


@dataclass
class Stream:
    """Token ranges of memory-mapped parts, read as one stream cut into blocks of ``block_size`` (tail dropped)."""
    sources: list                      # np arrays (memmaps), one per part
    segments: np.ndarray               # int64 [n, 3]: source, start, end
    block_size: int
    eos_id: int
    n_docs: int
    part_tokens: dict = field(default_factory=dict)

    def __post_init__(self):
        lens = self.segments[:, 2] - self.segments[:, 1] if len(self.segments) else np.zeros(0, np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)

    @property
    def n_tokens(self) -> int:
        return int(self.starts[-1])

    @property
    def n_blocks(self) -> int:
        return self.n_tokens // self.block_size

    @property
    def dropped_tail(self) -> int:
        return self.n_tokens - self.n_blocks * self.block_size

    def block(self, i: int) -> np.ndarray:
        if not 0 <= i < self.n_blocks:
            raise IndexError(f"block {i} of {self.n_blocks}")
        a, b = i * self.block_size, (i + 1) * self.block_size
        out = np.empty(self.block_size, dtype=np.int64)
        k = int(np.searchsorted(self.starts, a, side="right")) - 1
        got = 0
        while got < self.block_size:
            src, s, e = self.segments[k]
            off = s + (a + got - self.starts[k])
            take = min(e - off, self.block_size - got)
            out[got:got + take] = self.sources[src][off:off + take]
            got += take
            k += 1
        return out

    @property
    def blocks(self) -> np.ndarray:
        """All blocks in memory (for small corpora and tests; training reads ``block``)."""
        return np.stack([self.block(i) for i in range(self.n_blocks)]) if self.n_blocks else np.zeros(
            (0, self.block_size), np.int64)


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive document indices as (first, last + 1)."""
    if not len(idx):
        return []
    cut = np.nonzero(np.diff(idx) != 1)[0]
    firsts = np.concatenate([[idx[0]], idx[cut + 1]])
    lasts = np.concatenate([idx[cut], [idx[-1]]]) + 1
    return list(zip(firsts.tolist(), lasts.tolist()))


def _segments(src: int, ends: np.ndarray, idx: np.ndarray) -> list[tuple[int, int, int]]:
    starts = np.concatenate([[0], ends[:-1]])
    return [(src, int(starts[a]), int(ends[b - 1])) for a, b in _runs(idx)]


@dataclass
class StoredSplits:
    train: Stream
    heldout: Stream
    block_size: int
    parts: list = field(default_factory=list)          # rows of the per-part table

    def stats(self) -> dict:
        return {"block_size": self.block_size, "train_blocks": self.train.n_blocks,
                "heldout_blocks": self.heldout.n_blocks, "train_docs": self.train.n_docs,
                "heldout_docs": self.heldout.n_docs, "train_tokens": int(self.train.n_blocks * self.block_size),
                "heldout_tokens": int(self.heldout.n_blocks * self.block_size),
                "dropped_tail_tokens": self.train.dropped_tail + self.heldout.dropped_tail,
                "train_tokens_by_part": self.train.part_tokens}


def splits(stores: list[PartStore], block_size: int, *, heldout_fraction: float = 0.1, seed: int = 0,
           max_documents: int = 0, repeats: dict | None = None, min_heldout_blocks: int = 1) -> StoredSplits:
    """Held-out split by group over all parts, then the training stream with each part's documents repeated
    ``repeats[label]`` times (a fraction takes whole documents from the start of the part's training documents up to
    that share of its tokens; 0 leaves the part out of training). Same blocks as ``packing.build`` when every repeat
    is 1."""
    repeats = repeats or {}
    if block_size < 2:
        raise PackingError(f"block_size={block_size} must be at least 2")
    use = []
    left = max_documents if max_documents and max_documents > 0 else None
    for s in stores:
        n = s.n_docs if left is None else min(s.n_docs, left)
        use.append(n)
        if left is not None:
            left -= n
    if sum(use) == 0:
        raise PackingError("the corpus is empty: no documents with text; run phase 1 (and 2) or pass corpus_files")
    lengths = np.concatenate([np.diff(np.concatenate([[0], s.ends[:n]])) - 1 for s, n in zip(stores, use)])
    groups = np.concatenate([s.groups[:n] for s, n in zip(stores, use)])
    total = int(lengths.sum() + len(lengths))
    need = block_size * (1 + min_heldout_blocks)
    if total < need:
        raise PackingError(f"the corpus has {total} tokens ({len(lengths)} documents) but block_size={block_size} "
                           f"needs at least {need} (one training block and {min_heldout_blocks} held-out); lower "
                           f"block_size or add documents")
    held = split_heldout(groups, lengths, heldout_fraction, block_size * min_heldout_blocks, seed)
    sources = [s.tokens for s in stores]
    eos = int(stores[0].meta["eos_id"])
    tr_seg, he_seg, part_tokens, rows = [], [], {}, []
    off = 0
    for k, (s, n) in enumerate(zip(stores, use)):
        h = held[off:off + n]
        off += n
        ends = s.ends[:n]
        tr_idx, he_idx = np.nonzero(~h)[0], np.nonzero(h)[0]
        he_seg += _segments(k, ends, he_idx)
        one = _segments(k, ends, tr_idx)
        r = float(repeats.get(s.label, 1))
        whole, frac = int(r), r - int(r)
        seg = one * whole
        doc_len = np.diff(np.concatenate([[0], ends]))
        if frac > 0 and len(tr_idx):
            cum = np.cumsum(doc_len[tr_idx])
            m = int(np.searchsorted(cum, frac * cum[-1], side="right"))
            seg += _segments(k, ends, tr_idx[:m])
        got = int(sum(e - b for _, b, e in seg))
        if got:
            part_tokens[s.label] = part_tokens.get(s.label, 0) + got
        tr_seg += seg
        rows.append({"part": s.label, "documents": n, "tokens": int(doc_len.sum()),
                     "train_tokens_once": int(doc_len[tr_idx].sum()), "repeats": r, "train_tokens": got,
                     "heldout_tokens": int(doc_len[he_idx].sum()), "store": str(s.path), "reused": s.reused,
                     "disk_mb": round(s.disk_bytes() / 2 ** 20, 1),
                     "resident_mb": round(s.resident_bytes() / 2 ** 20, 2)})
    # tokens per part of what is trained on: the tail that fills no block belongs to no block and is not counted, so
    # the parts add up to the training set's blocks x block_size (as packing.pack_stream counts them); the parts lie
    # in the stream in order, so the tail is cut from the last ones
    left = (sum(part_tokens.values()) // block_size) * block_size
    for label in list(part_tokens):
        part_tokens[label] = min(part_tokens[label], left)
        left -= part_tokens[label]
    trained = dict(part_tokens)
    for row in rows:
        row["train_tokens"] = trained.get(row["part"], 0) if row["train_tokens"] else 0
    tr_docs = int((~held).sum())
    he_docs = int(held.sum())
    mk = lambda seg: np.asarray(seg, dtype=np.int64).reshape(-1, 3)       # noqa: E731
    train = Stream(sources, mk(tr_seg), block_size, eos, tr_docs, part_tokens)
    heldout = Stream(sources, mk(he_seg), block_size, eos, he_docs,
                     {})
    all_train = sum(r["train_tokens"] for r in rows) or 1
    for r in rows:
        r["share"] = round(r["train_tokens"] / all_train, 4)
    for name, p in (("training", train), ("held-out", heldout)):
        if p.n_blocks == 0:
            raise PackingError(f"the {name} split has {p.n_tokens} tokens, less than one block of {block_size}; "
                               f"lower block_size, change heldout_fraction, or add documents")
    return StoredSplits(train, heldout, block_size, rows)
