"""scripts/cached_wheel.sh: a source build happens once per (version, build flags, Python, platform) and every later
venv installs the cached wheel; a wheel built with other flags is never reused. Exercised on a tiny real project
(a pure-Python sdist built by pip), in a throwaway venv, so nothing here touches the kit's own environment."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mathcode import paths

SCRIPT = paths.project_root() / "scripts" / "cached_wheel.sh"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    d = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(d)], check=True, timeout=300)
    return d / "bin" / "python"


def _project(root: Path) -> Path:
    p = root / "tinypkg"
    (p / "tinypkg").mkdir(parents=True)
    (p / "tinypkg" / "__init__.py").write_text("VALUE = 42\n")
    (p / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=70.1"]\nbuild-backend = '
                                      '"setuptools.build_meta"\n[project]\nname = "tinypkg"\nversion = "1.0"\n')
    return p


def _run(py, spec, cache, flags):
    r = subprocess.run(["bash", str(SCRIPT), str(py), spec, str(cache), flags], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.slow
def test_built_once_reused_and_keyed_by_flags(tmp_path, venv):
    proj = _project(tmp_path)
    cache = tmp_path / "cache"
    out1 = _run(venv, str(proj), cache, "-DFLAG=A")
    assert "building" in out1
    dirs = [d for d in cache.iterdir() if not d.name.startswith(".")]
    assert len(dirs) == 1 and list(dirs[0].glob("*.whl"))
    assert "CMAKE_ARGS: -DFLAG=A" in (dirs[0] / "BUILD-KEY.txt").read_text()
    stamp = next(dirs[0].glob("*.whl")).stat().st_mtime_ns
    out2 = _run(venv, str(proj), cache, "-DFLAG=A")                 # same flags: the cached wheel, no build
    assert "reusing" in out2 and "building" not in out2
    assert next(dirs[0].glob("*.whl")).stat().st_mtime_ns == stamp
    out3 = _run(venv, str(proj), cache, "-DFLAG=B")                 # other flags: another key, a fresh build
    assert "building" in out3
    keyed = sorted(d.name for d in cache.iterdir() if not d.name.startswith("."))
    assert len(keyed) == 2 and keyed[0] != keyed[1]
    assert not [d for d in cache.iterdir() if d.name.startswith(".build-")]     # no half-built folder left behind
    r = subprocess.run([str(venv), "-c", "import tinypkg; print(tinypkg.VALUE)"], capture_output=True, text=True,
                       cwd=tmp_path / "cache")
    assert r.stdout.strip() == "42"                                    # and it was installed into the venv
