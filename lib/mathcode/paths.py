"""Where things live: the project root, the run layout, the model cache.

Relative paths in recipes and notebook parameters are resolved against the project root, so a notebook
behaves the same whether JupyterLab runs it from ``notebooks/``, papermill from anywhere, or the runner.
"""
from __future__ import annotations

import os
from pathlib import Path

PHASES = ["01_data", "02_translation", "03_pretraining", "04_evaluation"]
PHASE_NAMES = {"data": "01_data", "translation": "02_translation",
               "pretraining": "03_pretraining", "evaluation": "04_evaluation"}


def project_root() -> Path:
    """The checkout this package lives in (lib/mathcode/.. /..), or the CWD when installed elsewhere."""
    env = os.environ.get("MATHCODE_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir():
        return here
    return Path.cwd().resolve()


def resolve_path(p: str | os.PathLike | None) -> Path | None:
    """Absolute path for ``p``; relative paths are taken from the project root."""
    if p is None or p == "":
        return None
    p = Path(os.path.expanduser(str(p)))
    return p if p.is_absolute() else (project_root() / p).resolve()


def shared_dir() -> Path:
    """``../shared`` beside the project root (read-only material; may be absent)."""
    env = os.environ.get("MATHCODE_SHARED")
    return Path(env).resolve() if env else (project_root().parent / "shared").resolve()


def benchmarks_dir() -> Path | None:
    """Folder with the real benchmark test sets when present, else None (callers fall back, labelled)."""
    d = shared_dir() / "data" / "benchmarks"
    return d if d.is_dir() else None


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Model cache: parameter > $MATHCODE_CACHE > ~/.cache/mathcode."""
    if override:
        d = resolve_path(override)
    elif os.environ.get("MATHCODE_CACHE"):
        d = Path(os.environ["MATHCODE_CACHE"]).expanduser().resolve()
    else:
        d = Path.home() / ".cache" / "mathcode"
    d.mkdir(parents=True, exist_ok=True)
    return d


def phase_dir(run_dir: str | os.PathLike, phase: str) -> Path:
    """``run_dir/NN_phase`` for a phase given as 'data' or '01_data'."""
    key = PHASE_NAMES.get(phase, phase)
    if key not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; known: {', '.join(PHASE_NAMES)}")
    return resolve_path(run_dir) / key
