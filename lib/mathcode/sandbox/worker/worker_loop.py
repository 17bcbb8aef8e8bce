"""The request loop: start-up (subreaper, preload, Landlock ruleset, seccomp programs), then one snippet per
request: fork the child, watch its tree against the limits, collect its output, clean up, and reply."""
import fcntl
import gc
import json
import os
import re
import select
import shutil
import signal
import struct
import sys
import time
import traceback

import worker_state as state
from worker_child import _child
from worker_cleanup import _remove_files_of, _wipe
from worker_landlock import _landlock_ruleset, landlock_abi
from worker_procs import _anon_pages, _dir_mb, _kill_tree, _nproc_in_namespace, _tree, _tree_mb
from worker_seccomp import _NR, _PROGS, _build_filter
from worker_state import LEVEL, LIBC, PAGE, READ_PATHS, REP_FD, REQ_FD, SHM_CAPPED, UID_BASE, USE_LANDLOCK

NPROC_RE = re.compile(r"^BlockingIOError: \[Errno 11\]", re.M)
MEMORY_RE = re.compile(r"^(?:\w+\.)*(?:MemoryError|_ArrayMemoryError)\b|Unable to allocate|Cannot allocate memory",
                       re.M)


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _send(obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(REP_FD, data):]


def run_one(req, snippet_uid, workroot):
    t0 = time.monotonic()
    base = {"seq": req["seq"], "stdout": "", "stderr": "", "returncode": None, "truncated": False,
            "killed_leftovers": 0}
    try:    # compiled here, before the fork: cheaper, and a syntax error needs no child at all
        code = compile(req["code"], "<snippet>", "exec")
    except (SyntaxError, ValueError) as e:
        return dict(base, status="error", returncode=1, seconds=round(time.monotonic() - t0, 4),
                    stderr="".join(traceback.format_exception_only(type(e), e))[-4000:])
    workdir = os.path.join(workroot, f"snippet-{req['seq']}")
    os.mkdir(workdir, 0o700)
    if snippet_uid is not None:
        os.chown(workdir, snippet_uid, snippet_uid)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    for fd in (out_r, err_r):
        try:        # F_SETPIPE_SZ: room for out_cap, so a printing child does not wait for our next drain
            fcntl.fcntl(fd, 1031, min(1 << 20, max(1 << 16, int(req["out_cap"]) + (1 << 14))))
        except OSError:
            pass
    nproc_now = _nproc_in_namespace() if int(req["nproc"]) > 0 else 0
    base_pages = _anon_pages("self")
    with open("/proc/self/statm") as fh:                   # the child's address space at fork = ours now
        vsize = int(fh.read().split()[0]) * PAGE
    pid = os.fork()
    if pid == 0:
        _child(code, workdir, req, out_w, err_w, snippet_uid, nproc_now, vsize)
    os.close(out_w)
    os.close(err_w)
    cap, nproc, mem_mb = int(req["out_cap"]), int(req["nproc"]), int(req["mem_mb"])
    disk_mb = int(req["disk_mb"])
    bufs = {out_r: bytearray(), err_r: bytearray()}
    deadline = t0 + float(req["timeout"])
    status, rc, why = None, None, ""
    pidfd = os.pidfd_open(pid)
    open_fds = [out_r, err_r]
    next_watch = time.monotonic() + 0.01

    def drain(block_s=0.0):
        nonlocal status, why
        while open_fds:
            r, _, _ = select.select(open_fds, [], [], block_s)
            if not r:
                return
            for fd in r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.remove(fd)
                    continue
                room = cap - len(bufs[fd])
                bufs[fd] += chunk[:max(room, 0)]
                if len(chunk) > room and status is None:
                    status, why = "output_limit", f"more than {cap} bytes of output; the snippet was stopped"
            if status is not None:
                return
    try:
        while status is None:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                status, why = "timeout", f"still running after {req['timeout']} s"
                break
            # Wake on the child's exit only (one wake-up per snippet: when cores are contended each costs a
            # scheduling delay); the pipes are large enough for out_cap and are drained every 5 ms while it runs.
            ready, _, _ = select.select([pidfd], [], [], min(left, 0.005))
            drain()
            if status:
                break
            if ready:
                _, st = os.waitpid(pid, 0)
                rc = os.waitstatus_to_exitcode(st)
                break
            if time.monotonic() >= next_watch:      # whole-tree watchdog, whether or not output flows
                next_watch = time.monotonic() + 0.02
                pids = _tree(stop_after=nproc if nproc > 0 else None)
                if nproc > 0 and len(pids) > nproc:
                    status, why = "processes", f"more than {nproc} processes at once"
                elif mem_mb > 0 and _tree_mb(pids, base_pages) > mem_mb:
                    status, why = "memory", f"the snippet's processes together held more than {mem_mb} MB"
                elif not SHM_CAPPED and disk_mb > 0 and _dir_mb(workdir) > disk_mb:
                    status, why = "disk", f"more than {disk_mb} MB written to its working directory"
    finally:
        if rc is None:
            try:
                os.kill(pid, signal.SIGKILL)
                _, st = os.waitpid(pid, 0)
                rc = os.waitstatus_to_exitcode(st)
            except (OSError, ChildProcessError):
                pass
        leftovers = _kill_tree(snippet_uid)
        drain()                      # what was printed before a timeout or kill is kept (writes are unbuffered)
        os.close(pidfd)
        for fd in (out_r, err_r):
            os.close(fd)
        full = _tmp_full()
        shutil.rmtree(workdir, ignore_errors=True)
        if SHM_CAPPED:
            _wipe("/tmp", keep=(workroot,))
            _wipe(workroot)
            _wipe("/dev/shm")
        elif snippet_uid is not None and not state.USE_LANDLOCK_ACTIVE:
            _remove_files_of(snippet_uid)
    err = bufs[err_r].decode("utf-8", "replace")
    if status is None:
        if full:
            status, why = "disk", "the private /tmp or /dev/shm was full"
        elif rc is not None and rc < 0 and -rc in (signal.SIGXCPU,):
            status, why = "timeout", "CPU time limit"
        elif rc is not None and rc < 0 and -rc in (signal.SIGXFSZ,):
            status, why = "disk", "file size limit"
        elif rc not in (0, None) and MEMORY_RE.search(err[-600:]):
            status, why = "memory", "memory limit"
        elif rc not in (0, None) and NPROC_RE.search(err[-600:]):
            status, why = "processes", f"process limit ({nproc}) reached"
        elif leftovers and rc == 0:
            status, why = "killed_leftovers", f"{leftovers} process(es) still running after the snippet ended"
        else:
            status = "ok" if rc == 0 else "error"
    if rc is not None and rc < 0:
        sig = -rc
        why = (why + "; " if why else "") + "killed by " + (
            signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}")
    if why:
        err += f"\n[sandbox: {why}]"
    return dict(base, status=status, returncode=rc, stdout=bufs[out_r].decode("utf-8", "replace"),
                stderr=err[-4000:], truncated=status == "output_limit", seconds=round(time.monotonic() - t0, 4),
                killed_leftovers=leftovers)


def _tmp_full():
    if not SHM_CAPPED:
        return False
    for p in ("/tmp", "/dev/shm"):
        try:
            st = os.statvfs(p)
            if st.f_bavail * st.f_frsize < (1 << 20):
                return True
        except OSError:
            pass
    return False


def main():
    LIBC.prctl(36, 1, 0, 0, 0)                       # PR_SET_CHILD_SUBREAPER: orphans come back to us
    LIBC.prctl(4, 0, 0, 0, 0)                        # PR_SET_DUMPABLE 0: /proc/<worker>/fd|mem|environ closed
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    preload = [m for m in os.environ.get("MATHCODE_SANDBOX_PRELOAD", "").split(",") if m]
    for mod in preload:
        try:
            __import__(mod)
        except Exception:
            pass
    snippet_uid = UID_BASE + os.getpid() if os.geteuid() == 0 and LEVEL == "process" else None
    workroot = os.environ.get("MATHCODE_SANDBOX_WORKROOT") or "/tmp"
    workroot = os.path.join(workroot, f"mathcode-sbx-{os.getpid()}")
    os.makedirs(workroot, 0o711, exist_ok=True)
    abi = state.ABI = landlock_abi() if USE_LANDLOCK else 0
    # writes: only the worker's own folder, which holds nothing but the running snippet's directory
    state.RULESET = _landlock_ruleset(abi, [workroot, "/dev/null"], READ_PATHS + ["/dev/urandom", "/dev/zero"],
                                fs=LEVEL != "bwrap")
    state.USE_LANDLOCK_ACTIVE = state.RULESET >= 0 and LEVEL != "bwrap"
    for deny in (False, True):
        _PROGS[deny] = _build_filter(deny)
    gc.collect()
    gc.freeze()     # keep the preloaded heap out of the children's garbage collections (fewer copied pages)
    _send({"ready": True, "pid": os.getpid(), "uid": os.geteuid(), "snippet_uid": snippet_uid,
           "landlock_abi": abi, "seccomp": os.uname().machine in _NR, "level": LEVEL,
           "preloaded": sorted(m for m in preload if m in sys.modules)})
    try:
        while True:
            head = _read_exact(REQ_FD, 4)
            if head is None:
                return
            req = json.loads(_read_exact(REQ_FD, struct.unpack(">I", head)[0]))
            try:
                rep = run_one(req, snippet_uid, workroot)
            except Exception:
                rep = {"seq": req.get("seq"), "status": "error", "returncode": None, "stdout": "", "truncated": False,
                       "seconds": 0.0, "killed_leftovers": 0,
                       "stderr": "sandbox worker failure: " + traceback.format_exc()[-2000:]}
            _send(rep)
    finally:
        shutil.rmtree(workroot, ignore_errors=True)
