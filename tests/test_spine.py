"""The spine's small promises: one JSONL rule, readable files, thread defaults, complete fingerprints, Lab runs
that never write into a runner's folder, progress that reaches the terminal."""
from __future__ import annotations

import json
import logging
import os
import stat
import warnings
from pathlib import Path

import pytest
import yaml

from mathcode import cpu, manifest, paths, phase, util

from mathcode.run import params

from mathcode.run import runner


# --- one JSONL reader, one rule for a torn last line ------------------------------------------------------
def test_torn_last_line_is_skipped_with_a_warning_and_cut_before_the_next_append(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_bytes(b'{"i": 0}\n{"i": 1}\n{"i": 2, "tex')                # killed mid-append
    with pytest.warns(util.TornLineWarning, match="rows.jsonl:3"):
        assert [r["i"] for r in util.read_jsonl(f)] == [0, 1]
    util.append_jsonl(f, [{"i": 2}, {"i": 3}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r["i"] for r in util.read_jsonl(f)] == [0, 1, 2, 3]


def test_damage_in_the_middle_names_file_and_line(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text('{"i": 0}\n{"i": \n{"i": 2}\n')
    with pytest.raises(ValueError, match=r"rows.jsonl:2: malformed JSON"):
        util.read_jsonl(f)
    f.write_text('{"i": 0}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"rows.jsonl:2: expected a JSON object"):
        util.read_jsonl(f)


def test_complete_last_row_without_newline_is_kept_and_appends_stay_separate(tmp_path):
    f = tmp_path / "hand.jsonl"
    f.write_text('{"i": 0}\n\n{"i": 1}')                              # hand-written: blank line, no final newline
    assert [r["i"] for r in util.read_jsonl(f)] == [0, 1]
    util.append_jsonl(f, [{"i": 2}])
    assert [r["i"] for r in util.read_jsonl(f)] == [0, 1, 2]
    assert util.read_jsonl(tmp_path / "absent.jsonl", missing_ok=True) == []


def test_the_kit_has_one_jsonl_reader(tmp_path):
    """Evaluation's and translation's resumable files follow the util rule (no reader of their own)."""
    from mathcode.evaluate import harness
    from mathcode.translate import translate
    f = tmp_path / "items.jsonl"
    f.write_bytes(b'{"a": 1}\n{"a": 2')
    with pytest.warns(util.TornLineWarning):
        assert harness.read_rows(f) == [{"a": 1}]
    assert translate.read_records(f) == [{"a": 1}] and f.read_bytes() == b'{"a": 1}\n'


# --- readable outputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        util.write_json(tmp_path / "m.json", {"a": 1})
        util.append_jsonl(tmp_path / "r.jsonl", [{"a": 1}])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "r.jsonl").stat().st_mode) == mode
    assert not list(tmp_path.glob(".*.tmp"))


# --- CPU threads --------------------------------------------------------------------------------------
def test_thread_default_and_overrides(monkeypatch):
    monkeypatch.delenv("MATHCODE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert cpu.cpu_threads()[0] == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert cpu.cpu_threads()[0] == 15
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert cpu.cpu_threads() == (4, "OMP_NUM_THREADS")
    monkeypatch.setenv("MATHCODE_THREADS", "2")
    assert cpu.cpu_threads() == (2, "MATHCODE_THREADS")
    monkeypatch.setenv("MATHCODE_THREADS", "two")
    with pytest.raises(params.ParameterError, match="MATHCODE_THREADS='two'"):
        cpu.cpu_threads()


def test_generation_threads_follow_the_same_policy(monkeypatch):
    """A backend's count (llamacpp): given, then $MATHCODE_THREADS, else one per idle core (measured again later);
    $OMP_NUM_THREADS (which a phase sets for its children) does not fix it; 0 means no count."""
    monkeypatch.delenv("MATHCODE_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(cpu, "idle_cores", lambda sample_s=0.5: (3, "3 idle (test)"))
    assert cpu.generation_threads(2) == (2, "given") and not cpu.adaptive("given")
    for auto in (None, 0, "auto", "idle"):
        n, src = cpu.generation_threads(auto)
        assert (n, src) == (3, "3 idle (test)") and cpu.adaptive(src)
    monkeypatch.setenv("MATHCODE_THREADS", "2")
    assert cpu.generation_threads(None) == (2, "MATHCODE_THREADS") and not cpu.adaptive("MATHCODE_THREADS")
    assert cpu.generation_threads("idle")[1] == "3 idle (test)"          # asked for explicitly: measured
    monkeypatch.setenv("MATHCODE_THREADS", "0")
    assert cpu.generation_threads(None)[1] == "3 idle (test)"
    assert cpu.thread_env(3) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"} and cpu.thread_env(0) == {}


def test_recipe_threads_key_is_validated(tmp_path):
    from mathcode.run import config
    f = tmp_path / "t.yaml"
    f.write_text("model: embedded:smollm2-135m-instruct\nthreads: -1\n")
    with pytest.raises(config.ConfigError, match="'threads'"):
        config.load(f)
    f.write_text("model: embedded:smollm2-135m-instruct\nthreads: 2\n")
    assert config.load(f).threads == 2


# --- fingerprints ---------------------------------------------------------------------------------------
def test_fingerprint_covers_every_package_a_phase_uses():
    lib = Path(manifest.__file__).parent
    for ph in ("data", "translation", "pretraining", "evaluation"):
        files = {str(f.relative_to(lib)) for f in manifest.code_files(ph, params.notebook_path(ph))}
        assert {"phase.py", "util.py", "paths.py"} <= files, ph
        # every mathcode module imported by an included file is included too (closed under imports)
        for f in list(files):
            for mod in manifest._imports(lib, lib / f):
                for g in manifest._module_files(lib, mod):
                    assert str(g.relative_to(lib)) in files, (ph, f, mod)
    ev = {str(f.relative_to(lib)) for f in manifest.code_files("evaluation", params.notebook_path("evaluation"))}
    assert any("sandbox" in f for f in ev), "PAL runs programs in the sandbox: its code must be hashed"
    assert any(f.startswith("generation") for f in ev)
    sandbox_pkg = {f for f in ev if "sandbox" in f}
    assert any("worker" in f for f in sandbox_pkg), "the worker the sandbox starts by path counts too"


# --- JupyterLab writes to its own folder -------------------------------------------------------------------
def test_notebooks_opened_as_they_are_never_write_into_a_recipe_run():
    recipe_dirs = set()
    for f in (paths.project_root() / "configs").glob("*.yaml"):
        raw = yaml.safe_load(f.read_text()) or {}
        if "model" in raw:
            recipe_dirs.add(raw.get("run_dir") or f"outputs/{raw.get('name') or f.stem}")
    defaults = {ph: params.defaults(ph)["run_dir"] for ph in params.NOTEBOOKS}
    assert len(set(defaults.values())) == 1, defaults                     # all four notebooks share one folder
    assert not set(defaults.values()) & recipe_dirs


def test_make_lab_works_as_root():
    mk = (paths.project_root() / "Makefile").read_text()
    lab = mk[mk.index("\nlab:"):].split("\n\n")[0]
    assert "--allow-root" in lab and "id -u" in lab


# --- progress on the terminal --------------------------------------------------------------------------------
def _record(msg):
    return logging.LogRecord("papermill", logging.INFO, __file__, 1, msg, None, None)


def test_phase_output_is_prefixed_and_bars_are_rate_limited():
    f = runner._PhaseOutput("03_pretraining", bar_every=60)
    r = _record("loss 2.31\nstep 3\n")
    assert f.filter(r) and r.getMessage() == "  03_pretraining | loss 2.31\n  03_pretraining | step 3"
    assert not f.filter(_record("Executing Cell 4---------"))
    assert f.filter(_record("\r 10%|#         | 2/20 [00:04<00:36,  2.0s/it]"))
    assert not f.filter(_record("\r 15%|#5        | 3/20 [00:06<00:34,  2.0s/it]"))   # within 60 s: dropped
    assert f.filter(_record("\r100%|##########| 20/20 [00:40<00:00,  2.0s/it]"))      # completion always shown
    long = _record("\n".join(f"row {i}" for i in range(100)))
    assert f.filter(long) and "85 more lines" in long.getMessage()
