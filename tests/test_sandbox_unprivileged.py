"""The same attacks with the kit run by an ORDINARY user (CI runs as root: we create one with useradd).

The host here is a separate Python process started as that user; the snippets attack THAT process (SIGKILL,
SIGSTOP, its /proc environ and memory), so a failure shows up as a dead or stalled driver, never as a dead pytest.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

USER = "mcsandbox"
SYSTEM_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)), None)
LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib")

DRIVER = r'''
import json, os, signal, sys, time, warnings
sys.path.insert(0, sys.argv[1])
warnings.simplefilter("ignore")
from mathcode.sandbox import Sandbox, Limits, detect_isolation
secret = "sk-" + os.urandom(8).hex()
os.environ["OPENAI_API_KEY"] = secret
home = os.environ["HOME"]
os.makedirs(home + "/.ssh", exist_ok=True)
open(home + "/.ssh/id_rsa", "w").write(secret)
me = os.getpid()
hit = []
signal.signal(signal.SIGUSR1, lambda *a: hit.append(1))
A = {
 "forge": "import os, json, struct, time\nfor fd in range(3, 512):\n    try:\n"
          "        b = json.dumps({'seq': 1, 'status': 'ok'}).encode(); os.write(fd, struct.pack('>I', len(b)) + b)\n"
          "    except OSError: pass\ntime.sleep(60)",
 "signal_host": f"import ctypes, time\nl = ctypes.CDLL(None)\nl.kill({me}, 10); l.kill({me}, 19); l.kill({me}, 9)\n"
                f"l.kill(-1, 19)\nl.kill(0 - os.getpgid({me}) if False else -1, 9)\nprint('tried')",
 "stop_worker": "import ctypes, os, time\nctypes.CDLL(None).kill(os.getppid(), 19)\ntime.sleep(60)",
 "environ": f"out = []\nfor p in ('/proc/{me}/environ', '/proc/{me}/cmdline', {home + '/.ssh/id_rsa'!r}):\n"
            "    try:\n        out.append(open(p).read())\n    except OSError: pass\nprint(out)",
 "mem": f"lo = int(open('/proc/{me}/maps').readline().split('-')[0], 16)\n"
        f"f = open('/proc/{me}/mem', 'rb'); f.seek(lo); print(f.read(8))",
 "leftover": "import os, time\nif os.fork() == 0:\n    time.sleep(60); os._exit(0)\nprint('done')",
 "bomb": "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
 "net": "import socket\ns = socket.socket(); s.settimeout(0.5); s.connect(('127.0.0.1', 22)); print('connected')",
 "write_home": f"open({home + '/escape'!r}, 'w').write('x'); print('wrote')",
 "partial": "import time\nprint('42')\ntime.sleep(60)",
 "normal": "print(6 * 7)",
}
out = {"uid": os.getuid(), "levels": {}}
levels = [("process", True), ("process", False)] + ([("bwrap", True)] if detect_isolation()[0] == "bwrap" else [])
for level, ll in levels:
    res = {}
    with Sandbox(workers=1, isolation=level, limits=Limits(timeout=1.0, nproc=16, mem_mb=256), landlock=ll) as sb:
        os.environ["LATE_TOKEN"] = late = "hf_" + os.urandom(8).hex()       # loaded after the sandbox started
        open(home + "/.ssh/id_rsa", "a").write(late)
        for name, code in A.items():
            t0 = time.monotonic()
            r = sb.run(code)
            res[name] = dict(status=r.status, stdout=r.stdout[:300], seconds=round(time.monotonic() - t0, 2))
        res["after"] = sb.run("print(6 * 7)").stdout
        res["info"] = sb.info()["snippet_uid"]
    res["escaped"] = os.path.exists(home + "/escape")
    res["late"] = late
    if res["escaped"]:
        os.unlink(home + "/escape")
    out["levels"][f"{level}{'' if ll else '-nolandlock'}"] = res
time.sleep(0.3)
out["host_signalled"] = bool(hit)
out["secret"] = secret
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def ordinary_user():
    if os.geteuid() != 0:
        pytest.skip("runs as an ordinary user already: the other sandbox tests cover this case")
    if not (shutil.which("useradd") and shutil.which("runuser") and SYSTEM_PYTHON):
        pytest.skip("needs useradd, runuser and a system python3 readable by other users")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    return pwd.getpwnam(USER)


def test_attacks_as_an_ordinary_user(ordinary_user):
    work = tempfile.mkdtemp(prefix="mathcode-sbx-user-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    os.chown(home, ordinary_user.pw_uid, ordinary_user.pw_gid)
    os.chmod(work, 0o755)
    driver = os.path.join(work, "driver.py")
    with open(driver, "w") as fh:
        fh.write(DRIVER)
    os.chmod(driver, 0o644)
    try:
        p = subprocess.run(["runuser", "-u", USER, "--", "env", f"HOME={home}", "PATH=/usr/bin:/bin",
                            SYSTEM_PYTHON, driver, LIB], capture_output=True, text=True, timeout=150, cwd=work)
        assert p.returncode == 0, f"the host process died or failed: rc={p.returncode} {p.stderr[-2000:]}"
        out = json.loads(p.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert out["uid"] == ordinary_user.pw_uid and not out["host_signalled"]
    for level, res in out["levels"].items():
        where = f"{level} as {USER}"
        assert res["normal"] == {**res["normal"], "status": "ok", "stdout": "42\n"}, where
        assert res["after"] == "42\n", where
        assert all(r["seconds"] < 3.0 for k, r in res.items() if isinstance(r, dict)), (where, res)
        assert res["forge"]["status"] == "timeout", (where, res["forge"])
        assert res["stop_worker"]["status"] != "ok", where
        assert out["secret"] not in res["environ"]["stdout"], (where, res["environ"])
        assert res["late"] not in res["environ"]["stdout"], (where, res["environ"])
        assert res["mem"]["status"] == "error", where
        assert res["leftover"]["status"] == "killed_leftovers", where
        assert res["bomb"]["status"] in ("processes", "timeout"), where
        assert "connected" not in res["net"]["stdout"], where
        assert res["partial"] == {**res["partial"], "status": "timeout", "stdout": "42\n"}, where
        if level != "process-nolandlock":     # without Landlock the fallback cannot protect the user's own files
            assert not res["escaped"] and "wrote" not in res["write_home"]["stdout"], where
