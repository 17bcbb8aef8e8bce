"""Sandbox worker: runs *inside* the isolation boundary (bubblewrap when present) and never imports mathcode.

Protocol on its stdin/stdout: 4-byte big-endian length + JSON. Request {"code", "timeout", "mem_mb",
"nproc", "out_cap", "cpu_s"}; reply {"status", "stdout", "stderr", "returncode", "truncated", "seconds",
"killed_leftovers"}. Each snippet runs in a freshly forked child (copy-on-write, so modules preloaded here
cost nothing per snippet) with its own temporary directory, rlimits, no stdin, and, when the worker runs
as root, an unprivileged uid. The worker is a child subreaper: whatever the snippet starts (daemons,
fork storms) is reparented here and killed before the next snippet runs.
"""
import ctypes
import gc
import json
import os
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

NOBODY = 65534



def _append_capped(bufs: dict, fd: int, chunk: bytes, cap: int) -> bool:
    """Keep at most ``cap`` bytes of a snippet's output per stream; True when something was dropped."""
    room = cap - len(bufs[fd])
    if room > 0:
        bufs[fd] += chunk[:room]
    return len(chunk) > room

def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _send(fd, obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data):]


def _children():
    """Direct children of this process (orphans land here because we are a subreaper)."""
    pid = os.getpid()
    kids = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.update(int(x) for x in fh.read().split())
        return kids
    except OSError:
        pass
    for name in os.listdir("/proc"):                  # kernels without the children file
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.add(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _descendants(root):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                kids = [int(x) for x in fh.read().split()]
        except OSError:
            kids = []
        out.extend(kids)
        todo.extend(kids)
    return out


def _too_many_processes(limit):
    """True when this worker has more than ``limit`` descendants (stops counting early).

    The kernel does not apply RLIMIT_NPROC to uid 0, so when snippets cannot drop to an unprivileged
    uid a fork storm is caught here instead, within one polling interval.
    """
    n, todo = 0, list(_children())
    while todo:
        p = todo.pop()
        n += 1
        if n > limit:
            return True
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(x) for x in fh.read().split())
        except OSError:
            pass
    return False


def _kill_everything_we_started():
    """SIGKILL every descendant until none is left; returns how many were killed."""
    killed = 0
    for _ in range(1000):
        while True:                                   # reap zombies first
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        kids = _children()
        if not kids:
            return killed
        for k in kids:
            for p in [k] + _descendants(k):
                try:
                    os.kill(p, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        time.sleep(0.001)
    return killed


def _python_readable_by_others():
    """Dropping to ``nobody`` only works when that uid can still import the standard library."""
    import sysconfig
    for d in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}:
        p = os.path.realpath(d)
        while p not in ("/", ""):
            try:
                if not os.stat(p).st_mode & 0o001:
                    return False
            except OSError:
                return False
            p = os.path.dirname(p)
    return True


# Snippets never run as root outside a PID namespace: there kill(-1) would reach every process on the
# machine. In "process" mode a root worker therefore drops each snippet to ``nobody`` (modules that
# nobody cannot read, e.g. a Python under /root, then fail to import unless preloaded here). Inside
# bubblewrap the worker is root without capabilities in its own PID namespace and cannot change uid.
LEVEL = os.environ.get("MATHCODE_SANDBOX_LEVEL", "process")
DROP_UID = os.geteuid() == 0 and (LEVEL == "process" or _python_readable_by_others())


def _guard_kill(worker_pid):
    """Defence in depth (the uid drop / PID namespace is the real boundary): os.kill(-1), process-group
    kills and killing the worker raise PermissionError instead of reaching other processes."""
    real_kill, real_killpg = os.kill, os.killpg

    def kill(pid, sig):
        if pid <= 0 or pid == worker_pid:
            raise PermissionError(1, "sandbox: signalling process groups, all processes or the worker is not allowed")
        return real_kill(pid, sig)

    def killpg(pgid, sig):
        if pgid != os.getpgid(0):
            raise PermissionError(1, "sandbox: only the snippet's own process group may be signalled")
        return real_killpg(pgid, sig)
    os.kill, os.killpg = kill, killpg


def _child(code, workdir, req, out_w, err_w):
    """In the forked child: limits, privileges, redirections, then exec the snippet. Never returns."""
    import resource
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (devnull, out_w, err_w):
            os.close(fd)
        os.chdir(workdir)
        cpu = max(1, int(req.get("cpu_s", 10)))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        fsize = int(req.get("fsize_mb", 16)) << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if DROP_UID:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        nproc = int(req.get("nproc", 64))
        if nproc > 0:       # the kernel counts every process of this uid, so add what it already runs
            lim = nproc + (0 if DROP_UID else int(req.get("nproc_base", 0)))
            resource.setrlimit(resource.RLIMIT_NPROC, (lim, lim))
        mem = int(req.get("mem_mb", 1024)) << 20
        if mem > 0:
            with open("/proc/self/statm") as fh:
                vsize = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            resource.setrlimit(resource.RLIMIT_AS, (vsize + mem, vsize + mem))
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        _guard_kill(os.getppid())
        sys.stdin = open(os.devnull)
        sys.stdout = os.fdopen(1, "w", buffering=1 << 16, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        rc = 0
        try:
            exec(code, g)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
            rc = 1
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(rc)
    except BaseException:
        try:
            os.write(2, traceback.format_exc().encode()[-2000:])
        finally:
            os._exit(3)


def run_one(req):
    t0 = time.monotonic()
    try:    # compiled here, before the fork: cheaper, and a syntax error needs no child at all
        code = compile(req["code"], "<snippet>", "exec")
    except (SyntaxError, ValueError) as e:
        return {"status": "error", "returncode": 1, "stdout": "", "truncated": False,
                "stderr": "".join(traceback.format_exception_only(type(e), e))[-4000:],
                "seconds": round(time.monotonic() - t0, 4), "killed_leftovers": 0}
    workdir = tempfile.mkdtemp(prefix="snippet-", dir=req.get("tmp_root") or None)
    if DROP_UID:
        os.chown(workdir, NOBODY, NOBODY)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        _child(code, workdir, req, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    cap = int(req.get("out_cap", 65536))
    bufs = {out_r: bytearray(), err_r: bytearray()}
    truncated = False
    deadline = t0 + float(req.get("timeout", 5.0))
    status, rc = None, None
    nproc, storm = int(req.get("nproc", 64)), False
    pidfd = os.pidfd_open(pid)
    open_fds = [out_r, err_r]
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                status = "timeout"
                break
            ready, _, _ = select.select(open_fds + [pidfd], [], [], min(left, 0.02))
            if not ready and nproc > 0 and _too_many_processes(nproc):
                status = "timeout"
                storm = True
                break
            for fd in ready:
                if fd == pidfd:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.remove(fd)
                    continue
                truncated |= _append_capped(bufs, fd, chunk, cap)
            if pidfd in ready:
                _, st = os.waitpid(pid, 0)
                rc = os.waitstatus_to_exitcode(st)
                # drain what is left without blocking on pipes a grandchild may still hold
                for fd in list(open_fds):
                    while True:
                        r, _, _ = select.select([fd], [], [], 0)
                        if not r:
                            break
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            break
                        truncated |= _append_capped(bufs, fd, chunk, cap)
                status = "ok" if rc == 0 else "error"
                break
    finally:
        if status == "timeout":
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        leftovers = _kill_everything_we_started()
        os.close(pidfd)
        for fd in (out_r, err_r):
            os.close(fd)
        shutil.rmtree(workdir, ignore_errors=True)
    if storm:
        status = "error"
        bufs[err_r] += f"\n[sandbox: more than {nproc} processes; the fork storm was stopped]".encode()
    if status == "error" and rc is not None and rc < 0:
        sig = -rc
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        bufs[err_r] += f"\n[killed by signal {name}]".encode()
    return {"status": status, "returncode": rc, "stdout": bufs[out_r].decode("utf-8", "replace"),
            "stderr": bufs[err_r].decode("utf-8", "replace")[-4000:], "truncated": truncated,
            "seconds": round(time.monotonic() - t0, 4), "killed_leftovers": leftovers}


def main():
    # become a subreaper: PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    inp, out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    for mod in [m for m in os.environ.get("MATHCODE_SANDBOX_PRELOAD", "").split(",") if m]:
        try:
            __import__(mod)
        except Exception:
            pass
    gc.freeze()     # keep the preloaded heap out of the children's garbage collections (fewer copied pages)
    _send(out, {"ready": True, "pid": os.getpid(), "uid": os.geteuid(), "drops_to_nobody": DROP_UID, "preloaded": sorted(
        m for m in os.environ.get("MATHCODE_SANDBOX_PRELOAD", "").split(",") if m in sys.modules)})
    while True:
        head = _read_exact(inp, 4)
        if head is None:
            return
        req = json.loads(_read_exact(inp, struct.unpack(">I", head)[0]))
        try:
            rep = run_one(req)
        except Exception:
            rep = {"status": "error", "returncode": None, "stdout": "", "truncated": False, "seconds": 0.0,
                   "stderr": "sandbox worker failure: " + traceback.format_exc()[-2000:], "killed_leftovers": 0}
        _send(out, rep)


if __name__ == "__main__":
    main()
