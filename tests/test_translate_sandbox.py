"""Hostile snippets are contained and the sandbox keeps working after each of them."""
from __future__ import annotations

import os
import time

import pytest

from mathcode.translate.sandbox import Limits, Sandbox, bwrap_path, detect_isolation

LEVELS = ["process"] + (["bwrap"] if detect_isolation("auto")[0] == "bwrap" else [])
FAST = Limits(timeout=1.5, cpu_s=2, mem_mb=512, nproc=32, out_cap=4096)


@pytest.fixture(scope="module", params=LEVELS)
def sb(request):
    with Sandbox(workers=2, isolation=request.param, limits=FAST) as s:
        yield s


def test_isolation_level_is_recorded(sb):
    info = sb.info()
    assert info["isolation"] in ("bwrap", "process") and info["reason"]
    r = sb.run("print(1)")
    assert r.isolation == info["isolation"] and r.stdout == "1\n"
    if info["isolation"] == "process":
        assert "NO network or filesystem isolation" in info["description"]


def test_bwrap_missing_falls_back_and_says_so(monkeypatch):
    import mathcode.translate.sandbox as S
    monkeypatch.setattr(S, "bwrap_path", lambda: None)
    level, reason = S.detect_isolation("auto")
    assert level == "process" and "not installed" in reason
    with pytest.raises(S.SandboxError, match="bwrap"):
        S.detect_isolation("bwrap")


HOSTILE = {
    "infinite loop": ("while True:\n    pass", "timeout"),
    "sleep ignoring signals": ("import signal, time\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
                               "    signal.signal(s, signal.SIG_IGN)\ntime.sleep(60)", "timeout"),
    "memory bomb": ("x = bytearray(8 * 1024**3)\nprint('allocated')", "error"),
    "fork storm": ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", None),
    "reads input": ("x = input('number? ')\nprint(x)", "error"),
    "kills its parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nimport time\ntime.sleep(5)", None),
    "kills everything it can": ("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"
                                "print('still here')", None),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_snippet_is_contained(sb, name):
    code, expected = HOSTILE[name]
    t0 = time.time()
    r = sb.run(code)
    assert time.time() - t0 < FAST.timeout + 10, "the sandbox returned within the timeout (plus clean-up)"
    if expected:
        assert r.status == expected, (r.status, r.stderr[-300:])
    else:
        assert r.status in ("error", "timeout")  or r.stdout == "still here\n"
    after = sb.run("print(6 * 7)")                  # later snippets still run
    assert after.status == "ok" and after.stdout == "42\n"


def test_input_gets_eof_not_a_hang(sb):
    r = sb.run("input()")
    assert r.status == "error" and "EOFError" in r.stderr


def test_detached_daemon_is_killed(sb, tmp_path):
    # the daemon would print to its inherited pipe after 0.5 s, long after the snippet itself ended
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        time.sleep(0.5)\n        print('daemon alive', flush=True)\n        time.sleep(60)\n"
            "    os._exit(0)\nprint('parent done')")
    r = sb.run(code)
    assert r.status == "ok" and r.stdout == "parent done\n" and r.killed_leftovers >= 1
    time.sleep(1.0)
    assert sb.run("print('next')").stdout == "next\n"


def test_megabytes_of_output_are_truncated(sb):
    r = sb.run("import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 50000 + '\\n')\nprint('end')")
    assert r.status == "ok" and r.truncated
    assert len(r.stdout) <= FAST.out_cap


@pytest.mark.parametrize("level", LEVELS)
def test_environment_is_scrubbed(level, monkeypatch):
    # the secrets are in the environment *before* the workers start, as in a real kernel
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    with Sandbox(workers=1, isolation=level, limits=FAST) as fresh:
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
    again = sb.run("import os\nprint(os.listdir('.'))")
    assert again.stdout.strip() == "[]"


@pytest.mark.skipif("bwrap" not in LEVELS, reason="bubblewrap is not usable here; only the process level can run")
def test_bwrap_kill_all_reaches_only_the_sandbox():
    """Even bypassing Python's os.kill (libc directly), kill(-1) stays inside the sandbox's PID namespace."""
    import subprocess
    sentinel = subprocess.Popen(["sleep", "60"])
    try:
        with Sandbox(workers=1, isolation="bwrap", limits=FAST) as s:
            r = s.run("import ctypes, signal\nctypes.CDLL(None).kill(-1, signal.SIGKILL)\nprint('done')")
            assert r.status in ("ok", "error")
            assert s.run("print(2)").stdout == "2\n"
        assert sentinel.poll() is None, "a process outside the sandbox was killed"
    finally:
        sentinel.kill()


@pytest.mark.skipif("bwrap" not in LEVELS, reason="bubblewrap is not usable here; only the process level can run")
def test_bwrap_blocks_network_and_filesystem_writes():
    with Sandbox(workers=1, isolation="bwrap", limits=FAST) as s:
        net = s.run("import socket\ns = socket.socket()\ns.settimeout(1)\ns.connect(('1.1.1.1', 53))\nprint('connected')")
        assert net.status == "error" and "connected" not in net.stdout
        target = os.path.join(os.path.dirname(__file__), "..", "SANDBOX_ESCAPE_TEST")
        fs = s.run(f"open({target!r}, 'w').write('x')")
        assert fs.status == "error" and not os.path.exists(target)
        assert "Read-only file system" in fs.stderr or "Permission denied" in fs.stderr


def test_run_many_keeps_order_and_uses_heavy_workers_for_sympy(sb):
    codes = [f"print({i} * {i})" for i in range(20)] + ["import sympy\nprint(sympy.Rational(1, 3) + sympy.Rational(1, 6))"]
    rs = sb.run_many(codes)
    assert [r.stdout.strip() for r in rs[:20]] == [str(i * i) for i in range(20)]
    assert rs[-1].stdout.strip() == "1/2"


def test_syntax_error_is_an_error_not_a_crash(sb):
    r = sb.run("print(1 +")
    assert r.status == "error" and "SyntaxError" in r.stderr
