"""A judge that what it reads cannot hang: every parse of untrusted text runs in a worker process that is killed.

The sandbox contains the snippet; nothing contained the host that *reads* the snippet's output and the model's
LaTeX. sympy's ``parse_expr("9**9**9", evaluate=True)`` never returns, ``factorial(10**8)`` or
``expand((x+1)**100000)`` take minutes and gigabytes, and math-verify's own timeouts use SIGALRM, which works only
in the main thread. So the reading runs in a separate Python process (numbers, LaTeX, sympy, the code's syntax
tree — ``verify.text_checks`` and what it calls):

* a hard time limit per request enforced by the host with ``select`` on the worker's pipe — works from any
  thread, and nothing inside the worker can defeat it: the worker's whole process group is SIGKILLed and a fresh
  one is started in the background. The limit is ``deadline_s`` (1.5 s) of the worker's CPU time, read from
  /proc, and never more than ``wall_cap_s`` (6 s) of wall time: a hang in sympy burns CPU and is stopped at
  1.5 s, while on a machine loaded by other jobs a normal request is not killed for waiting its turn (a heavy
  load stretched 0.3 s requests past 1.5 s of wall time: bench/README.md). Without /proc the limit is 1.5 s
  of wall time;
* size limits: requests are refused above ``max_request_chars``, each text is read only up to
  ``values.MAX_TEXT`` characters, and the worker runs under RLIMIT_AS (``mem_mb``), so a memory blow-up ends
  it (and then the request) instead of the machine;
* a request that misses its deadline, dies, or answers malformed raises ``Unjudgeable`` — the judge's verdict is
  then ``unjudgeable`` and the phase goes on. A worker that cannot start at all is a broken setup, not hostile
  text: ``RuntimeError`` with its stderr.

The worker is a plain ``python -m mathcode.translate.bounded`` child (spawned, never forked from a threaded
host) that imports sympy and math-verify once; a request costs a pipe round trip.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

# {request name: (module, function)} the worker may call. The modules that use the judge register their functions
# (``allow``) so that this module imports none of them: the worker gets the table when it starts.
ALLOWED: dict[str, tuple] = {"ping": (None, None)}


def allow(fn: str, module: str, name: str) -> None:
    """Let the worker call ``module.name`` as request ``fn`` (a judge started earlier is restarted to learn it)."""
    if ALLOWED.get(fn) != (module, name):
        ALLOWED[fn] = (module, name)
        if _DEFAULT is not None:
            _DEFAULT.close()


class Unjudgeable(Exception):
    """The bounded judge gave up on a request (deadline, size, worker death)."""


def _frame(obj) -> bytes:
    b = json.dumps(obj, default=str).encode()
    return struct.pack(">I", len(b)) + b


class BoundedJudge:
    """One killable worker process; thread-safe (requests are serialised)."""

    def __init__(self, deadline_s: float = 1.5, mem_mb: int = 2048, max_request_chars: int = 200_000,
                 start_timeout_s: float = 120.0, wall_cap_s: float = 6.0):
        self.deadline_s, self.mem_mb, self.wall_cap_s = deadline_s, mem_mb, wall_cap_s
        self.max_request_chars, self.start_timeout_s = max_request_chars, start_timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._err = None
        self._ready = False
        self.stats = {"requests": 0, "killed": 0, "started": 0}

    # -- worker lifecycle ---------------------------------------------------------------------------------
    def _spawn(self):
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])                    # the same mathcode as the host's
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        import tempfile
        if self._err is not None:
            self._err.close()
        self._err = tempfile.TemporaryFile()                               # why a worker failed to start
        env["MATHCODE_BOUNDED_ALLOWED"] = json.dumps(ALLOWED)
        self._proc = subprocess.Popen([sys.executable, "-m", "mathcode.translate.bounded", str(self.mem_mb)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err,
                                      env=env, start_new_session=True, close_fds=True)
        self._ready = False
        self.stats["started"] += 1

    def _kill(self):
        p, self._proc = self._proc, None
        if p is None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:
                pass

    def _cpu_seconds(self) -> float | None:
        """CPU time the worker has used (Linux /proc), or None where it cannot be read."""
        try:
            with open(f"/proc/{self._proc.pid}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def _read(self, n: int, budget: dict) -> bytes:
        """``n`` bytes from the worker within the request's budget: ``cpu`` seconds of the worker's CPU time (a
        hang in sympy burns CPU), never more than ``wall`` seconds (a starved machine gets time, not for ever)."""
        fd, buf = self._proc.stdout.fileno(), b""
        while len(buf) < n:
            now = time.monotonic()
            left = min(budget["deadline"], budget["hard"]) - now
            if left <= 0:
                used = self._cpu_seconds()
                if used is None or now >= budget["hard"] or used - budget["cpu0"] >= budget["cpu"]:
                    raise TimeoutError
                budget["deadline"] = now + max(0.05, budget["cpu"] - (used - budget["cpu0"]))
                continue
            if not select.select([fd], [], [], left)[0]:
                continue
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _roundtrip(self, req: dict, limit: float, hard: float | None = None):
        now = time.monotonic()
        budget = {"deadline": now + limit, "hard": now + (hard if hard is not None else limit), "cpu": limit,
                  "cpu0": self._cpu_seconds() or 0.0}
        self._proc.stdin.write(_frame(req))
        self._proc.stdin.flush()
        (n,) = struct.unpack(">I", self._read(4, budget))
        if n > 50_000_000:
            raise EOFError
        rep = json.loads(self._read(n, budget))
        if not isinstance(rep, dict) or rep.get("id") != req["id"]:
            raise EOFError
        return rep

    def _ensure(self):
        if self._proc is None or self._proc.poll() is not None:
            self._kill()
            self._spawn()
        if not self._ready:                      # first import of sympy/math-verify: not charged to a request
            self._roundtrip({"id": -1, "fn": "ping", "kw": {}}, self.start_timeout_s)
            self._ready = True

    def call(self, fn: str, deadline_s: float | None = None, **kw):
        """``fn(**kw)`` in the worker, or ``Unjudgeable``."""
        if fn not in ALLOWED:
            raise ValueError(f"bounded: {fn!r} is not a worker function")
        size = sum(len(v) for v in kw.values() if isinstance(v, str))
        if size > self.max_request_chars:
            raise Unjudgeable(f"text to judge too large ({size} characters > {self.max_request_chars})")
        with self._lock:
            self.stats["requests"] += 1
            try:
                self._ensure()
            except (TimeoutError, EOFError, OSError, ValueError) as e:
                self._kill()
                tail = ""
                if self._err is not None:
                    self._err.seek(0)
                    tail = self._err.read()[-2000:].decode("utf-8", "replace").strip()
                raise RuntimeError(f"the judge's reader process ({sys.executable} -m mathcode.translate.bounded) did "
                                   f"not start ({type(e).__name__}); its stderr: {tail or '(empty)'}") from None
            req = {"id": self.stats["requests"], "fn": fn, "kw": kw}
            limit = self.deadline_s if deadline_s is None else deadline_s
            try:
                rep = self._roundtrip(req, limit, max(limit, self.wall_cap_s))
            except TimeoutError:
                self.stats["killed"] += 1
                self._kill()
                self._spawn()                    # its replacement warms up while the caller goes on
                raise Unjudgeable(f"judging took longer than {limit:g} s (reading the text was stopped)") from None
            except (EOFError, OSError, ValueError, struct.error):
                self.stats["killed"] += 1
                self._kill()
                raise Unjudgeable("the judge's worker died while reading the text (memory or crash)") from None
        if "error" in rep:
            raise Unjudgeable(f"judging failed: {rep['error'][:200]}")
        return rep["result"]

    def close(self):
        with self._lock:
            self._kill()
            if self._err is not None:
                self._err.close()
                self._err = None


_DEFAULT: BoundedJudge | None = None
_DEFAULT_LOCK = threading.Lock()


def default() -> BoundedJudge:
    """The process-wide judge (started on first use, killed at exit)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = BoundedJudge()
            atexit.register(_DEFAULT.close)
        return _DEFAULT


# --- the worker side -------------------------------------------------------------------------------------
def _serve(mem_mb: int):
    import importlib
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
    except (ValueError, OSError):
        pass
    sys.setrecursionlimit(5000)
    import math_verify  # noqa: F401 - warm: the first request must not pay the imports
    import sympy  # noqa: F401
    ALLOWED.update({k: tuple(v) for k, v in json.loads(os.environ.get("MATHCODE_BOUNDED_ALLOWED", "{}")).items()})
    for mod, _ in set(ALLOWED.values()):
        if mod:
            importlib.import_module(mod)                 # warm the callers' modules too
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr                       # nothing a library prints may corrupt the protocol
    while True:
        head = inp.read(4)
        if len(head) < 4:
            return
        (n,) = struct.unpack(">I", head)
        req = json.loads(inp.read(n))
        mod, name = ALLOWED.get(req.get("fn"), (None, None))
        try:
            result = None if mod is None else getattr(importlib.import_module(mod), name)(**req["kw"])
            rep = {"id": req["id"], "result": result}
        except MemoryError:
            rep = {"id": req["id"], "error": "memory limit while reading the text"}
        except Exception as e:                                 # noqa: BLE001 - reported, the worker lives on
            rep = {"id": req["id"], "error": f"{type(e).__name__}: {e}"}
        out.write(_frame(rep))
        out.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
