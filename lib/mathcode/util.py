"""Small I/O helpers: atomic readable writes, one JSONL reader (one rule for a torn last line), hashing."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Iterable, Iterator


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc), else set-and-restore."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temp file in the same folder, fsync, rename: readers never see half a file.

    ``mkstemp`` creates its file 0600; the result gets the mode a plain ``open()`` would give (0666 minus the
    umask), so collaborators and web servers can read run outputs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~current_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path, obj, **kw) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=kw.pop("indent", 2), default=str, **kw) + "\n")


def write_jsonl(path, rows: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


# --- JSONL: the one reader ------------------------------------------------------------------------
# The rule, everywhere in the kit: every row is one JSON object on one line. The LAST line of a file that does
# not end in a newline and does not parse is a torn write (a process killed mid-append): it is skipped with a
# warning, and ``append_jsonl`` cuts it off before appending, so a resumed job redoes that row. A malformed line
# anywhere else is damage, not an interruption: ValueError naming file and line.

class TornLineWarning(UserWarning):
    """The last line of a JSONL file was half-written (interrupted append); it was skipped."""


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Yield rows of a JSONL file, streaming (see the rule above); a malformed line raises ValueError naming
    file and line."""
    path = Path(path)
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if not raw.endswith(b"\n"):            # only the last line can lack its newline: a torn write
                    warnings.warn(f"{path}:{n}: half-written last line skipped (an interrupted write; it is "
                                  f"redone on resume)", TornLineWarning, stacklevel=2)
                    return
                msg = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8"
                raise ValueError(f"{path}:{n}: malformed JSON ({msg}); fix or remove that line") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object per line, got {type(row).__name__}")
            yield row


def read_jsonl(path, missing_ok: bool = False) -> list[dict]:
    """All rows of a JSONL file (``missing_ok``: a file that does not exist yet reads as no rows)."""
    if missing_ok and not Path(path).exists():
        return []
    return list(iter_jsonl(path))


def repair_torn_tail(path: str | os.PathLike) -> int:
    """Cut a torn last line off ``path`` (see the rule above) and make sure the file ends in a newline.

    Returns the number of bytes removed. A complete last row without its newline gets one appended.
    """
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        start, pos = 0, size                       # find the start of the last line, reading backwards
        while pos > 0:
            step = min(pos, 1 << 16)
            pos -= step
            fh.seek(pos)
            i = fh.read(step).rfind(b"\n")
            if i >= 0:
                start = pos + i + 1
                break
        fh.seek(start)
        last = fh.read()
        try:
            json.loads(last)
        except (json.JSONDecodeError, UnicodeDecodeError):
            fh.truncate(start)
            return size - start
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n")
        return 0


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict], fsync: bool = True) -> Path:
    """Append rows (one write per call, after repairing a torn tail): resumable jobs record progress with this."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_torn_tail(path)
    data = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode("utf-8")
    if not data:
        return path
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    return path


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
