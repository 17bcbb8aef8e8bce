"""Run model-written Python snippets without trusting them.

Model-written code is hostile until proven otherwise. Each snippet runs in a freshly forked child of a
long-lived worker process (``_sandbox_worker.py``); the worker itself is started inside bubblewrap when
``bwrap`` works on this machine (no network, read-only filesystem outside a private /tmp, home hidden,
own PID/IPC/UTS namespaces, dies with its parent). Per snippet: wall-clock timeout, CPU/memory/
process-count/file-size limits, no stdin, a scrubbed environment, a temporary working directory, capped
output, an unprivileged uid when we run as root, and every process the snippet started killed afterwards.

Why a pre-forked pool instead of one ``bwrap python`` per snippet: interpreter + sandbox start-up costs
tens of milliseconds per snippet (and far more when the snippet imports sympy), while a fork of a warm
worker costs about a millisecond; bench/bench_sandbox.py measures both side by side.

Without bubblewrap the same worker runs as a plain child process ("process" isolation level: limits and
clean-up still apply, but there is no network or filesystem isolation); every result records the level.
"""
from __future__ import annotations

import json
import os
import queue
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, asdict
from pathlib import Path

WORKER = Path(__file__).with_name("_sandbox_worker.py")
LIGHT_PRELOAD = ("math,fractions,decimal,itertools,functools,statistics,cmath,random,re,collections,operator,"
                 "string,numbers,heapq,bisect,copy,datetime,time,typing,dataclasses,json,traceback")
HEAVY_PRELOAD = LIGHT_PRELOAD + ",numpy,sympy"
# Snippets that import these go to workers with numpy+sympy already loaded (an import costs ~0.5 s,
# a fork of a warm worker a few ms); the rest go to light workers, whose smaller heap forks faster.
HEAVY_IMPORT = re.compile(r"^\s*(?:import|from)\s+(?:numpy|sympy|scipy|mpmath)\b", re.M)
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


class SandboxError(RuntimeError):
    """The sandbox could not be started at all (not raised for misbehaving snippets)."""


@dataclass
class Limits:
    timeout: float = 5.0        # wall-clock seconds per snippet
    cpu_s: int = 5              # CPU seconds per snippet (RLIMIT_CPU)
    mem_mb: int = 1024          # address space a snippet may add on top of the warm worker (RLIMIT_AS)
    nproc: int = 64             # processes the sandbox uid may have (RLIMIT_NPROC); 0 = no limit
    out_cap: int = 65536        # bytes of stdout/stderr kept; the rest is counted as truncated
    fsize_mb: int = 16          # largest file a snippet may write (RLIMIT_FSIZE)


@dataclass
class RunResult:
    status: str                 # "ok" | "error" | "timeout"
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    truncated: bool = False
    seconds: float = 0.0
    killed_leftovers: int = 0
    isolation: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def _bwrap_args(bwrap: str, tmp_mb: int = 256) -> list[str]:
    # Explicit namespaces rather than --unshare-all: as root that would add a user namespace in which only
    # uid 0 exists; instead root keeps its uid but loses every capability (--cap-drop ALL).
    args = [bwrap, "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]
    args += [
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--size", str(tmp_mb << 20), "--perms", "1777", "--tmpfs", "/tmp"]
    home = Path.home().resolve()
    prefixes = [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), WORKER.resolve()]
    if str(home) not in ("/", "") and not any(str(p).startswith(str(home) + "/") for p in prefixes):
        args += ["--tmpfs", str(home)]          # hide keys, tokens and caches in the home directory
    hidden = ["/tmp"] + ([str(home)] if "--tmpfs" in args[-2:] else [])
    for d in ("/run", "/var/run"):
        if os.path.isdir(d) and not os.path.islink(d):
            args += ["--tmpfs", d]              # hide sockets (docker, dbus) and run-time secrets
            hidden.append(d)
    # A checkout or venv that lives under a hidden folder (e.g. a CI clone in /tmp) is bound back read-only,
    # or the worker's Python would not exist inside the sandbox.
    needed = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), WORKER.resolve().parent,
              Path(sys.executable).resolve().parent}
    for p in sorted(needed, key=lambda x: len(str(x))):
        if any(str(p) == h or str(p).startswith(h.rstrip("/") + "/") for h in hidden):
            args += ["--ro-bind", str(p), str(p)]
    return args + ["--chdir", "/tmp"]


def detect_isolation(prefer: str = "auto") -> tuple[str, str]:
    """('bwrap' | 'process', reason). ``prefer='process'`` forces the fallback; 'bwrap' insists on it."""
    if prefer == "process":
        return "process", "bubblewrap not requested (isolation='process')"
    b = bwrap_path()
    if not b:
        reason = "bubblewrap (bwrap) is not installed; install it (apt-get install bubblewrap) for network/filesystem isolation"
    else:
        try:
            # probe with the interpreter the workers will use, so a Python hidden by the sandbox is caught here
            r = subprocess.run(_bwrap_args(b) + [sys.executable, "-I", "-c", "pass"], capture_output=True,
                               timeout=20, text=True)
            if r.returncode == 0:
                return "bwrap", f"bubblewrap at {b}"
            reason = f"bwrap is installed but failed ({r.stderr.strip()[:200]}); user namespaces may be disabled"
        except (OSError, subprocess.TimeoutExpired) as e:
            reason = f"bwrap is installed but could not run: {e}"
    if prefer == "bwrap":
        raise SandboxError(f"isolation='bwrap' was asked for but {reason}")
    return "process", reason


class _Spawner:
    """Starts every worker from one long-lived thread.

    bwrap --die-with-parent uses PR_SET_PDEATHSIG, which fires when the *thread* that started the process
    exits; workers started from short-lived pool threads would be killed at random moments.
    """

    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.t = threading.Thread(target=self._loop, daemon=True, name="mathcode-sandbox-spawner")
        self.t.start()

    def _loop(self):
        while True:
            item = self.q.get()
            if item is None:
                return
            args, kw, box, done = item
            try:
                box["proc"] = subprocess.Popen(*args, **kw)
            except BaseException as e:          # noqa: BLE001 - handed to the caller
                box["error"] = e
            done.set()

    def popen(self, *args, **kw) -> subprocess.Popen:
        box, done = {}, threading.Event()
        self.q.put((args, kw, box, done))
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["proc"]

    def stop(self):
        self.q.put(None)


class _Worker:
    def __init__(self, level: str, preload: str, tmp_mb: int, spawner: _Spawner):
        cmd = [sys.executable, "-I", "-B", str(WORKER)]
        if level == "bwrap":
            cmd = _bwrap_args(bwrap_path(), tmp_mb) + cmd
        env = dict(SAFE_ENV, MATHCODE_SANDBOX_PRELOAD=preload, MATHCODE_SANDBOX_LEVEL=level)
        self.proc = spawner.popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env, close_fds=True,
                                  start_new_session=True, cwd="/")
        self.hello = self._recv(timeout=120)
        if self.hello is None or not self.hello.get("ready"):
            self.kill()
            raise SandboxError(f"sandbox worker failed to start ({level}): {' '.join(cmd)}")

    def _recv(self, timeout: float):
        out: dict = {}

        def read():
            head = self.proc.stdout.read(4)
            if len(head) == 4:
                body = self.proc.stdout.read(struct.unpack(">I", head)[0])
                out["v"] = json.loads(body)
        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        return out.get("v")

    def run(self, req: dict, timeout: float) -> dict | None:
        data = json.dumps(req).encode()
        try:
            self.proc.stdin.write(struct.pack(">I", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self._recv(timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self):
        try:
            os.killpg(self.proc.pid, 9)
        except OSError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=10)
        except Exception:
            pass


def _processes_of_this_uid() -> int:
    """How many processes our uid runs now (RLIMIT_NPROC counts them all, so the limit adds this)."""
    uid, n = os.geteuid(), 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                n += os.stat(f"/proc/{name}").st_uid == uid
            except OSError:
                pass
    return n


class _Pool:
    """Warm workers of one preload profile, started on first use."""

    def __init__(self, sandbox: "Sandbox", preload: str):
        self.sb, self.preload = sandbox, preload
        self.idle: queue.Queue = queue.Queue()
        self.started = False
        self.lock = threading.Lock()
        self.hello: dict = {}

    def ensure(self):
        with self.lock:
            if self.started:
                return
            with ThreadPoolExecutor(self.sb.n) as ex:
                workers = list(ex.map(lambda _: self.spawn(), range(self.sb.n)))
            self.hello = workers[0].hello
            for w in workers:
                self.idle.put(w)
            self.started = True

    def spawn(self) -> _Worker:
        return _Worker(self.sb.level, self.preload, self.sb.tmp_mb, self.sb._spawner)

    def close(self):
        while not self.idle.empty():
            self.idle.get().kill()


class Sandbox:
    """A pool of warm sandbox workers. ``run(code)`` for one snippet, ``run_many(codes)`` for a batch.

    Use as a context manager (or call ``close()``) so that the workers are stopped.
    """

    def __init__(self, workers: int | None = None, limits: Limits | None = None, isolation: str = "auto",
                 tmp_mb: int = 256, light_preload: str = LIGHT_PRELOAD, heavy_preload: str = HEAVY_PRELOAD):
        self.limits = limits or Limits()
        self.level, self.reason = detect_isolation(isolation)
        self.tmp_mb = tmp_mb
        self._spawner = _Spawner()
        self.n = max(1, workers or (os.cpu_count() or 1))
        self.pools = {"light": _Pool(self, light_preload), "heavy": _Pool(self, heavy_preload)}
        self.pools["light"].ensure()
        self._lock = threading.Lock()
        self._nproc_base, self._nproc_t = 0, 0.0
        self.stats = {"executions": 0, "seconds": 0.0, "worker_restarts": 0}
        # bwrap gives each worker a private tmpfs /tmp; without it, a RAM-backed /dev/shm makes the per-snippet
        # directory ~50x cheaper to create and remove than an overlay /tmp (measured: 0.06 ms vs 3.7 ms)
        self._tmp_root = ("/dev/shm" if self.level == "process" and os.access("/dev/shm", os.W_OK) else None)
        self._executor = ThreadPoolExecutor(self.n)

    def info(self) -> dict:
        """What protected the snippets (goes into the outputs so that readers know)."""
        desc = {"bwrap": "bubblewrap: no network, read-only filesystem except a private /tmp, home and /run "
                         "hidden, own PID/IPC/UTS namespaces, no capabilities",
                "process": "separate processes with rlimits only: NO network or filesystem isolation"}[self.level]
        hello = self.pools["light"].hello
        return {"isolation": self.level, "description": desc, "reason": self.reason, "workers": self.n,
                "limits": asdict(self.limits), "snippet_uid": "nobody" if hello.get("drops_to_nobody")
                else f"{hello.get('uid')} (same as the worker)", "env": sorted(SAFE_ENV)}

    def _nproc(self) -> int:
        now = time.monotonic()
        if now - self._nproc_t > 2.0:
            self._nproc_base, self._nproc_t = _processes_of_this_uid(), now
        return self._nproc_base

    def run(self, code: str, limits: Limits | None = None) -> RunResult:
        lim = limits or self.limits
        pool = self.pools["heavy" if HEAVY_IMPORT.search(code or "") else "light"]
        pool.ensure()
        req = {"code": code, "nproc_base": self._nproc(), "tmp_root": self._tmp_root, **asdict(lim)}
        w = pool.idle.get()
        try:
            rep = w.run(req, timeout=lim.timeout + 30)
            if rep is None:                     # worker died (snippet killed it?) or hung: replace it
                alive = w.alive()
                w.kill()
                with self._lock:
                    self.stats["worker_restarts"] += 1
                w = pool.spawn()
                rep = {"status": "error", "stdout": "", "returncode": None,
                       "stderr": "sandbox worker " + ("stopped answering" if alive else "died")
                                 + " while running this snippet (did it kill its parent?); it was replaced"}
        finally:
            pool.idle.put(w)
        res = RunResult(**{k: v for k, v in rep.items() if k in RunResult.__dataclass_fields__},
                        isolation=self.level)
        with self._lock:
            self.stats["executions"] += 1
            self.stats["seconds"] += res.seconds
        return res

    def run_many(self, codes: list[str], limits: Limits | None = None) -> list[RunResult]:
        """Run snippets concurrently on all workers; results in input order."""
        return list(self._executor.map(lambda c: self.run(c, limits), codes))

    def close(self):
        self._executor.shutdown(wait=True)
        for p in self.pools.values():
            p.close()
        self._spawner.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_naive(code: str, limits: Limits | None = None, isolation: str = "process") -> RunResult:
    """Baseline for bench/bench_sandbox.py: one fresh interpreter (optionally in bwrap) per snippet."""
    lim = limits or Limits()
    cmd = [sys.executable, "-I", "-c", code]
    if isolation == "bwrap":
        cmd = _bwrap_args(bwrap_path()) + cmd
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=lim.timeout, env=dict(SAFE_ENV),
                           stdin=subprocess.DEVNULL, cwd="/tmp", text=True, start_new_session=True)
        st = "ok" if r.returncode == 0 else "error"
        return RunResult(st, r.stdout[:lim.out_cap], r.stderr[-4000:], r.returncode,
                         len(r.stdout) > lim.out_cap, time.monotonic() - t0, 0, isolation)
    except subprocess.TimeoutExpired:
        return RunResult("timeout", "", "", None, False, time.monotonic() - t0, 0, isolation)
