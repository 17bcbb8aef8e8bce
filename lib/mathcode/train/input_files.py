"""Which documents phase 3 trains on.

The paper's ablation trains on the same basic data *with* and *without* model-translated mathematical code;
``mixture`` names that choice, and explicit files override it (for corpora built elsewhere). Rows only need a
non-empty ``text``; ``id``/``doc_id`` keep a document and its translation on the same side of the held-out split.
"""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mathcode import paths
from mathcode.util import iter_jsonl

# mixture name -> the upstream artefacts it reads, as (phase, file, label)
MIXTURES = {
    "basic": [("data", "corpus.jsonl", "basic")],
    "basic+translated": [("data", "corpus.jsonl", "basic"), ("translation", "translated.jsonl", "translated")],
    "translated": [("translation", "translated.jsonl", "translated")],
}


class CorpusError(ValueError):
    """A corpus file that cannot be trained on; the message names the file (and line) and the remedy."""


@dataclass
class Doc:
    text: str
    group: str       # documents sharing a group land on the same side of the held-out split
    part: str        # "basic" | "translated" | file stem for explicit files
    id: str


def mixture_inputs(phase, mixture: str, corpus_files: list | tuple = ()) -> list[tuple[Path, str]]:
    """[(file, label)] for this run: explicit ``corpus_files`` when given, else the mixture's upstream files.

    ``phase`` is the notebook's ``mathcode.phase.Phase``; ``phase.require`` gives a clear error when the
    predecessor (e.g. phase 2 for 'basic+translated') is missing or unfinished.
    """
    if corpus_files:
        out = []
        for f in corpus_files:
            p = paths.resolve_path(f)
            if p is None or not p.is_file():
                raise CorpusError(f"corpus_files entry {f!r} -> {p} does not exist; pass JSONL files with a 'text' field")
            out.append((p, p.stem))
        return out
    if mixture not in MIXTURES:
        raise CorpusError(f"mixture={mixture!r} is not known; use one of {', '.join(MIXTURES)} "
                          f"(or pass corpus_files=[...] explicitly)")
    return [(phase.require(ph, fname), label) for ph, fname, label in MIXTURES[mixture]]


def load_docs(inputs: list[tuple[Path, str]], text_field: str = "text", max_documents: int = 0,
              warn: bool = True) -> list[Doc]:
    """Read the rows; a row without a string ``text`` is an error naming file and line. An empty file is an
    error only when every input is empty; otherwise a warning says which part of the mixture is missing
    (``warn=False``: the notebook shows it as a row of ``summary_table`` instead of a stderr box).
    ``max_documents`` > 0 keeps the first that many documents (a demo-size knob)."""
    from tqdm.auto import tqdm
    docs: list[Doc] = []
    empty: list[tuple[Path, str]] = []
    for path, label in inputs:
        n_file = 0
        for n, row in enumerate(tqdm(iter_jsonl(path), desc=f"read {path.name}", unit="doc"), 1):
            t = row.get(text_field)
            if not isinstance(t, str):
                raise CorpusError(f"{path}:{n}: row has no string {text_field!r} field (keys: {sorted(row)}); "
                                  f"phase 3 trains on {text_field!r}")
            if not t.strip():
                continue
            rid = str(row.get("id", f"{path.stem}:{n}"))
            docs.append(Doc(text=t, group=str(row.get("doc_id") or rid), part=label, id=rid))
            n_file += 1
        if n_file == 0:
            empty.append((path, label))
    if not docs:
        raise CorpusError(f"{', '.join(str(p) for p, _ in empty)}: no non-empty {text_field!r} rows; nothing to "
                          f"train on (check the phase that wrote it, or pass other corpus_files)")
    if max_documents and max_documents > 0:
        docs = docs[:max_documents]
    for path, label in empty if warn else []:
        # e.g. phase 2 verified no block with a small model: the run is then honestly "basic only" - say so loudly
        warnings.warn(f"{path} has no non-empty {text_field!r} rows: the {label!r} part of the mixture contributes "
                      f"nothing to this run", stacklevel=2)
    return docs


def summary(docs: list[Doc]) -> dict:
    """Documents and characters per part (for the notebook's mixture table)."""
    n, c = Counter(), Counter()
    for d in docs:
        n[d.part] += 1
        c[d.part] += len(d.text)
    return {p: {"documents": n[p], "characters": c[p]} for p in n}


def summary_table(docs: list[Doc], inputs: list[tuple[Path, str]]):
    """The notebook's mixture table: part, documents, characters, file, and a note for a part that contributes
    nothing (e.g. phase 2 verified no block: the run is then honestly "basic only")."""
    import pandas as pd
    files = {label: str(path) for path, label in inputs}
    have = summary(docs)
    rows = [{"part": k, **v, "file": files.get(k, ""), "note": ""} for k, v in have.items()]
    rows += [{"part": label, "documents": 0, "characters": 0, "file": str(path),
              "note": "no non-empty rows: this part contributes nothing to this run"}
             for path, label in inputs if label not in have]
    return pd.DataFrame(rows)
