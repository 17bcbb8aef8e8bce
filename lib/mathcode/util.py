"""Small I/O helpers: atomic writes, JSONL with line-numbered errors, hashing."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write to a temp file in the same folder, fsync, rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_json(path, obj, **kw) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=kw.pop("indent", 2), default=str, **kw) + "\n")


def write_jsonl(path, rows: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield rows; a malformed line raises ValueError naming file and line number."""
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno}); "
                                 f"fix or remove that line") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object per line, got {type(row).__name__}")
            yield row


def read_jsonl(path) -> list[dict]:
    return list(iter_jsonl(path))


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def count_rows(path: Path) -> int | None:
    """Rows in a JSONL/CSV/Parquet file, else None."""
    path = Path(path)
    try:
        if path.suffix == ".jsonl":
            with open(path, "rb") as fh:
                return sum(1 for line in fh if line.strip())
        if path.suffix == ".csv":
            with open(path, "rb") as fh:
                return max(0, sum(1 for _ in fh) - 1)
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq
            return pq.ParquetFile(path).metadata.num_rows
    except Exception:
        return None
    return None
