"""The bubblewrap view is explicit and minimal: only the interpreter, read-only; never /, home, /etc secrets, /run."""
import os
import sys
from pathlib import Path

import pytest

from mathcode import sandbox
from mathcode.sandbox import Limits, Sandbox, detect_isolation


def _binds(args):
    return [args[k + 1] for k in range(len(args) - 2) if args[k] in ("--ro-bind", "--bind", "--bind-try")]


def test_view_binds_only_the_interpreter_read_only():
    args = sandbox.bwrap_args("/usr/bin/bwrap")
    binds = _binds(args)
    assert "/" not in binds and "--bind" not in args                      # nothing writable from the host
    assert not any(b in ("/etc", "/home", "/root", "/run", "/var") for b in binds)
    assert not any(b == str(Path.home()) for b in binds)
    assert any(b == os.path.realpath(sys.base_prefix) or os.path.realpath(sys.base_prefix).startswith(b + "/")
               for b in binds)
    i = args.index("--unshare-user")
    assert args[i + 1:i + 5] == ["--uid", "65534", "--gid", "65534"]     # never root inside
    for flag in ("--unshare-net", "--unshare-pid", "--disable-userns", "--die-with-parent", "--new-session"):
        assert flag in args
    assert [args[k + 1] for k in range(len(args) - 1) if args[k] == "--tmpfs"] == ["/tmp", "/dev/shm"]


def test_venv_under_tmp_is_bound_back_after_the_private_tmp(monkeypatch):
    monkeypatch.setattr(sys, "prefix", "/tmp")      # a path that exists; as a CI clone's venv in /tmp would
    args = sandbox.bwrap_args("/usr/bin/bwrap")
    tmpfs = args.index("/tmp")
    assert tmpfs < len(args) - 1 and "--tmpfs" == args[tmpfs - 1]


@pytest.mark.skipif(detect_isolation("auto")[0] != "bwrap", reason="bubblewrap is not usable here")
def test_inside_view_hides_home_etc_and_sockets():
    with Sandbox(workers=1, isolation="bwrap", limits=Limits(timeout=3)) as sb:
        r = sb.run("import os\nprint(os.getuid(), os.getgid())\nprint(sorted(os.listdir('/etc')))\n"
                   f"print(os.path.exists({str(Path.home())!r} + '/.bashrc'), os.path.exists('/run'),"
                   " os.path.exists('/var'), os.path.exists('/etc/shadow'), os.path.exists('/etc/passwd'))")
        uid, etc, flags = r.stdout.splitlines()
        assert uid == "65534 65534"
        assert set(eval(etc)) <= {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime"}
        assert flags == "False False False False False"
