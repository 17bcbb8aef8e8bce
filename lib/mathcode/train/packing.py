"""Tokenize documents and pack them into fixed-length blocks for causal-LM training.

Layout: documents are tokenized without special tokens, each followed by one EOS, concatenated into one
stream and cut into blocks of exactly ``block_size`` tokens; the tail shorter than a block is dropped. So
there is no padding and every label is a real next token. Blocks are independent training rows: no
attention or loss crosses a block edge. Inside a block, the only cross-document context is the documented
EOS join (the first token after an EOS is predicted from the previous document plus EOS), the usual trade
of packed pretraining. A document longer than a block continues in the next block (without its earlier
context), as in standard continued pretraining.

The held-out split is made on documents (grouped by ``Doc.group``) *before* packing, so no held-out text
is ever seen in training, not even as part of a shared block.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np


class PackingError(ValueError):
    """Too little text for the requested blocks; the message gives the numbers and what to change."""


@dataclass
class Packed:
    blocks: np.ndarray                     # int64 [n_blocks, block_size]
    n_docs: int
    n_tokens: int                          # stream length incl. EOS joins
    dropped_tail: int                      # tokens of the last partial block
    eos_id: int
    part_tokens: dict = field(default_factory=dict)   # tokens of each mixture part inside the kept blocks

    @property
    def n_blocks(self) -> int:
        return int(self.blocks.shape[0])

    def block(self, i: int) -> np.ndarray:
        return self.blocks[i]


def tokenize(texts: list[str], tokenizer, batch_size: int = 512, progress: bool = True) -> list[list[int]]:
    """Token ids per text, without BOS/EOS (packing adds the EOS joins)."""
    from tqdm.auto import tqdm
    out: list[list[int]] = []
    for i in tqdm(range(0, len(texts), batch_size), desc="tokenize", unit="batch", disable=not progress):
        enc = tokenizer(texts[i:i + batch_size], add_special_tokens=False)["input_ids"]
        out.extend(enc)
    return out


def pack(token_docs: list[list[int]], block_size: int, eos_id: int, parts: list[str] | None = None) -> Packed:
    """Concatenate ``doc + [EOS]`` for every doc and cut into full blocks (tail dropped)."""
    if block_size < 2:
        raise PackingError(f"block_size={block_size} must be at least 2")
    stream: list[int] = []
    for t in token_docs:
        stream.extend(t)
        stream.append(eos_id)
    n_blocks = len(stream) // block_size
    kept = n_blocks * block_size
    # tokens per part of what is trained on: the dropped tail belongs to no block, so it is not counted (the parts
    # then add up to n_blocks x block_size, the training-set size every other figure reports)
    part_tokens: dict = {}
    if parts is not None:
        start = 0
        for i, t in enumerate(token_docs):
            inside = max(0, min(start + len(t) + 1, kept) - start)
            start += len(t) + 1
            part_tokens[parts[i]] = part_tokens.get(parts[i], 0) + inside
    arr = np.asarray(stream[:kept], dtype=np.int64).reshape(n_blocks, block_size)
    return Packed(arr, len(token_docs), len(stream), len(stream) - kept, eos_id, part_tokens)


def split_heldout(groups: list[str], lengths: list[int], fraction: float, min_tokens: int, seed: int) -> list[bool]:
    """Mark documents held-out, whole groups at a time, until ``fraction`` of tokens (and ``min_tokens``) is reached."""
    if not 0.0 < fraction < 1.0:
        raise PackingError(f"heldout_fraction={fraction} must be between 0 and 1 (exclusive)")
    order = sorted(set(groups))
    random.Random(seed).shuffle(order)
    by_group: dict = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    total = sum(lengths) + len(lengths)
    goal = max(fraction * total, min_tokens)
    held = [False] * len(groups)
    got = 0
    for g in order[:-1]:                                   # always leave at least one group for training
        if got >= goal:
            break
        for i in by_group[g]:
            held[i] = True
            got += lengths[i] + 1
    return held


@dataclass
class PackedSplits:
    train: Packed
    heldout: Packed
    block_size: int

    def stats(self) -> dict:
        return {"block_size": self.block_size, "train_blocks": self.train.n_blocks, "heldout_blocks": self.heldout.n_blocks,
                "train_docs": self.train.n_docs, "heldout_docs": self.heldout.n_docs,
                "train_tokens": int(self.train.n_blocks * self.block_size),
                "heldout_tokens": int(self.heldout.n_blocks * self.block_size),
                "dropped_tail_tokens": self.train.dropped_tail + self.heldout.dropped_tail,
                "train_tokens_by_part": self.train.part_tokens}


def build(docs, tokenizer, block_size: int, heldout_fraction: float = 0.1, seed: int = 0,
          min_heldout_blocks: int = 1) -> PackedSplits:
    """Tokenize ``docs`` (``mixture.Doc``), split held-out by group, pack both sides."""
    if not docs:
        raise PackingError("the corpus is empty: no documents with text; run phase 1 (and 2) or pass corpus_files")
    eos = tokenizer.eos_token_id
    if eos is None:
        raise PackingError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no EOS token; packing needs one")
    toks = tokenize([d.text for d in docs], tokenizer)
    lengths = [len(t) for t in toks]
    total = sum(lengths) + len(lengths)
    need = block_size * (1 + min_heldout_blocks)
    if total < need:
        raise PackingError(f"the corpus has {total} tokens ({len(docs)} documents) but block_size={block_size} needs at "
                           f"least {need} (one training block and {min_heldout_blocks} held-out); lower block_size "
                           f"or add documents")
    held = split_heldout([d.group for d in docs], lengths, heldout_fraction, block_size * min_heldout_blocks, seed)
    tr = [i for i, h in enumerate(held) if not h]
    he = [i for i, h in enumerate(held) if h]
    train = pack([toks[i] for i in tr], block_size, eos, [docs[i].part for i in tr])
    heldout = pack([toks[i] for i in he], block_size, eos, [docs[i].part for i in he])
    for name, p in (("training", train), ("held-out", heldout)):
        if p.n_blocks == 0:
            raise PackingError(f"the {name} split has {p.n_tokens} tokens, less than one block of {block_size}; "
                               f"lower block_size, change heldout_fraction, or add documents")
    return PackedSplits(train, heldout, block_size)


PACKING = ("concatenate", "document_masked")


def document_positions(block: np.ndarray, eos_id: int) -> np.ndarray:
    """Position ids that restart at 0 after every EOS (the first document piece of a block starts at 0 too)."""
    pos = np.zeros(block.shape[0], dtype=np.int64)
    p = 0
    for j, t in enumerate(block):
        pos[j] = p
        p = 0 if t == eos_id else p + 1
    return pos


class BlockDataset:
    """Torch-style dataset over packed blocks.

    ``packing="concatenate"``: input_ids = labels, attention over the whole block (documents joined by EOS see
    their predecessor, the usual packed-pretraining trade). ``"document_masked"``: no attention across documents —
    rows carry per-document ``position_ids`` and no attention mask, which transformers turns into a block-diagonal
    causal mask (its padding-free / ``DataCollatorWithFlattening`` path, sdpa and eager alike; transformers 5 does this
    only without a KV cache, so training sets ``use_cache=False``), and the label of a document's first token is -100,
    so nothing is predicted across a document boundary.

    ``packed``: in-memory blocks (``Packed``) or a ``token_store.Stream``, which cuts each block from the memory-mapped
    token store only when it is read. ``block_ids``: rows also carry ``block_id`` (the Trainer logs and drops it),
    the record of exactly which blocks each optimizer step trained on.
    """

    def __init__(self, packed, limit: int | None = None, packing: str = "concatenate", block_ids: bool = False):
        if packing not in PACKING:
            raise PackingError(f"packing={packing!r}: write one of {', '.join(PACKING)}")
        self.source = packed
        self.n = packed.n_blocks if limit is None else min(limit, packed.n_blocks)
        self.eos_id = packed.eos_id
        self.packing = packing
        self.block_ids = block_ids

    @property
    def blocks(self) -> np.ndarray:
        return self.source.blocks[: self.n]

    def __len__(self) -> int:
        return int(self.n)

    def __getitem__(self, i):
        import torch
        if not 0 <= i < self.n:
            raise IndexError(f"block {i} of {self.n}")
        block = np.asarray(self.source.block(i), dtype=np.int64)
        ids = torch.from_numpy(block.copy())
        extra = {"block_id": torch.tensor(int(i))} if self.block_ids else {}
        if self.packing == "concatenate":
            return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids), **extra}
        pos = torch.from_numpy(document_positions(block, self.eos_id))
        labels = ids.clone()
        labels[1:][pos[1:] == 0] = -100           # the first token of a document is not predicted from the one before
        return {"input_ids": ids, "labels": labels, "position_ids": pos, **extra}
