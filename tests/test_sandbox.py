"""Everyday behaviour of the sandbox: levels recorded, environment scrubbed, private temp dirs, batches, statuses.

The hostile cases live in test_sandbox_attacks.py (root) and test_sandbox_unprivileged.py (ordinary user)."""
from __future__ import annotations

import os
import time

import pytest

import warnings

from mathcode.sandbox import Limits, Sandbox, detect_isolation

LEVELS = ["process"] + (["bwrap"] if detect_isolation("auto")[0] == "bwrap" else [])
FAST = Limits(timeout=1.5, cpu_s=2, mem_mb=512, nproc=32, out_cap=4096)


@pytest.fixture(scope="module", params=LEVELS)
def sb(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with Sandbox(workers=2, isolation=request.param, limits=FAST) as s:
            yield s


def test_isolation_level_is_recorded(sb):
    info = sb.info()
    assert info["isolation"] in ("bwrap", "process") and info["reason"]
    r = sb.run("print(1)")
    assert r.isolation == info["isolation"] and r.stdout == "1\n"
    if info["isolation"] == "process":
        assert "NOT A SECURITY BOUNDARY" in info["warning"]


def test_fallback_is_loud():
    with pytest.warns(RuntimeWarning, match="NOT a security boundary"):
        Sandbox(workers=1, isolation="process").close()


def test_bwrap_missing_falls_back_and_says_so(monkeypatch):
    import mathcode.sandbox.isolation as S
    monkeypatch.setattr(S, "bwrap_path", lambda: None)
    level, reason = S.detect_isolation("auto")
    assert level == "process" and "not installed" in reason
    with pytest.raises(S.SandboxError, match="bwrap"):
        S.detect_isolation("bwrap")


def test_input_gets_eof_not_a_hang(sb):
    r = sb.run("input()")
    assert r.status == "error" and "EOFError" in r.stderr


@pytest.mark.parametrize("level", LEVELS)
def test_environment_is_scrubbed(level, monkeypatch):
    # the secrets are in the environment *before* the workers start, as in a real kernel
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fresh = Sandbox(workers=1, isolation=level, limits=FAST)
    with fresh:
        r = fresh.run("import os\nprint(sorted(os.environ))\n"
                      "print(os.environ.get('OPENAI_API_KEY'), os.environ.get('HF_TOKEN'))")
    assert r.status == "ok"
    assert "secret" not in r.stdout and "None None" in r.stdout


def test_temp_working_directory_is_private_and_removed(sb):
    r = sb.run("import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())")
    assert r.status == "ok"
    cwd = r.stdout.strip()
    assert "snippet-" in cwd
    if sb.level == "process":                       # with bwrap it lives in the sandbox's own /tmp
        assert not os.path.exists(cwd)
    assert sb.run("print(__import__('tempfile').gettempdir() == __import__('os').getcwd())").stdout == "True\n"
    again = sb.run("import os\nprint(os.listdir('.'))")
    assert again.stdout.strip() == "[]"


def test_run_many_keeps_order_and_uses_heavy_workers_for_sympy(sb):
    pytest.importorskip("sympy", reason="sympy is not installed (a dependency of the kit)")
    codes = [f"print({i} * {i})" for i in range(20)] + ["import sympy\nprint(sympy.Rational(1, 3) + sympy.Rational(1, 6))"]
    rs = sb.run_many(codes)
    assert [r.stdout.strip() for r in rs[:20]] == [str(i * i) for i in range(20)]
    assert rs[-1].stdout.strip() == "1/2"


def test_syntax_error_is_an_error_not_a_crash(sb):
    r = sb.run("print(1 +")
    assert r.status == "error" and "SyntaxError" in r.stderr


def test_closing_leaves_no_worker_folders_or_processes():
    from mathcode.sandbox.pool import _descendants
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sb = Sandbox(workers=2, isolation="process", limits=FAST)
    pids = [w.hello["pid"] for w in sb.pools["light"].live]
    assert sb.run("open('f', 'w').write('x')\nprint(1)").stdout == "1\n"
    sb.close()
    assert not [p for p in pids if os.path.exists(os.path.join(sb.workroot, f"mathcode-sbx-{p}"))]
    assert not [p for p in pids if os.path.exists(f"/proc/{p}")]
