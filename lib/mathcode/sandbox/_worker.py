"""Sandbox worker: runs *inside* the isolation boundary and imports nothing from mathcode (stdlib only).

Protocol: requests arrive on fd 3, replies leave on fd 4 (4-byte big-endian length + JSON); stdin/stdout/stderr
are /dev/null. Each snippet runs in a freshly forked child (copy-on-write, so modules preloaded here cost nothing
per snippet). Before the snippet's code runs, the child:
  * closes EVERY descriptor except its own stdio (close_range), so it can never reach the protocol pipes;
  * cannot reopen them through /proc/<worker>/fd either: the worker is non-dumpable, and Landlock / uid change
    put the snippet outside the worker's ptrace domain;
  * gets rlimits (CPU, address space, file size, process count, no core files), a private working directory,
    no stdin, unbuffered stdout/stderr, a seccomp filter (no sockets, ptrace, io_uring, keyrings, namespaces,
    mounts) and, where the kernel has Landlock, a filesystem/network/signal domain (read-only interpreter files,
    writes only in its working directory, no TCP, no signals to anything outside its own process tree);
  * when the worker is real root (fallback level), drops to a uid of its own (UID_BASE + worker pid), so
    RLIMIT_NPROC counts exactly this snippet's processes and a kill(-1) reaches only them.
The worker is a child subreaper: processes the snippet leaves behind are reparented here and killed before the
reply is sent; the reply says so (status ``killed_leftovers``).
"""
import ctypes
import fcntl
import gc
import io
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

REQ_FD, REP_FD = (int(x) for x in os.environ.get("MATHCODE_SANDBOX_FDS", "3,4").split(","))
UID_BASE = 1_500_000_000
LEVEL = os.environ.get("MATHCODE_SANDBOX_LEVEL", "process")
USE_LANDLOCK = os.environ.get("MATHCODE_SANDBOX_LANDLOCK", "1") == "1"
READ_PATHS = [p for p in os.environ.get("MATHCODE_SANDBOX_READ_PATHS", "").split(os.pathsep) if p]
SHM_CAPPED = os.environ.get("MATHCODE_SANDBOX_PRIVATE_TMP") == "1"     # /tmp and /dev/shm are ours (bwrap)
LIBC = ctypes.CDLL(None, use_errno=True)
_exit, _write = os._exit, os.write     # the snippet may rebind os._exit/os.write; the child must still end here
PAGE = os.sysconf("SC_PAGE_SIZE")
NPROC_RE = re.compile(r"^BlockingIOError: \[Errno 11\]", re.M)
MEMORY_RE = re.compile(r"^(?:\w+\.)*(?:MemoryError|_ArrayMemoryError)\b|Unable to allocate|Cannot allocate memory",
                       re.M)

# --------------------------------------------------------------------------------------------- seccomp
# A hand-written classic-BPF filter (libseccomp's Python binding has no wheel on PyPI; 20 rules do not need it).
_NR = {  # syscall numbers, x86_64 / aarch64
    "x86_64": dict(arch=0xC000003E, socket=41, ptrace=101, process_vm_readv=310, process_vm_writev=311,
                   pidfd_getfd=438, io_uring_setup=425, io_uring_enter=426, io_uring_register=427, keyctl=250,
                   add_key=248, request_key=249, bpf=321, perf_event_open=298, userfaultfd=323, unshare=272,
                   setns=308, mount=165, umount2=166, pivot_root=155, chroot=161, open_tree=428, move_mount=429,
                   fsopen=430, kill=62, tkill=200, tgkill=234, rt_sigqueueinfo=129, rt_tgsigqueueinfo=297,
                   pidfd_send_signal=424),
    "aarch64": dict(arch=0xC00000B7, socket=198, ptrace=117, process_vm_readv=270, process_vm_writev=271,
                    pidfd_getfd=438, io_uring_setup=425, io_uring_enter=426, io_uring_register=427, keyctl=219,
                    add_key=217, request_key=218, bpf=280, perf_event_open=241, userfaultfd=282, unshare=97,
                    setns=268, mount=40, umount2=39, pivot_root=41, chroot=51, open_tree=428, move_mount=429,
                    fsopen=430, kill=129, tkill=130, tgkill=131, rt_sigqueueinfo=138, rt_tgsigqueueinfo=240,
                    pidfd_send_signal=424),
}
_DENY = ["socket", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "io_uring_setup",
         "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
         "userfaultfd", "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
         "fsopen"]
_SIGNALS = ["kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_send_signal"]


_PROGS: dict = {}


def _seccomp(deny_signals: bool) -> bool:
    """Install the filter in this process (inherited by everything it starts). False when unsupported.
    The program is built once per worker (ctypes structures cost ~0.1 ms, paid per snippet otherwise)."""
    if deny_signals not in _PROGS:
        _PROGS[deny_signals] = _build_filter(deny_signals)
    prog = _PROGS[deny_signals]
    if prog is None:
        return False
    LIBC.prctl(38, 1, 0, 0, 0)                       # PR_SET_NO_NEW_PRIVS
    return LIBC.prctl(22, 2, ctypes.byref(prog), 0, 0) == 0   # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _build_filter(deny_signals: bool):
    nr = _NR.get(os.uname().machine)
    if nr is None:
        return None
    names = _DENY + (_SIGNALS if deny_signals else [])
    ld, jeq, ret = 0x20, 0x15, 0x06                  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    allow, eperm, kill = 0x7FFF0000, 0x00050000 | 1, 0x80000000
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, nr["arch"]), (ret, 0, 0, kill), (ld, 0, 0, 0)]
    if nr["arch"] == 0xC000003E:                     # refuse the x32 ABI (syscall numbers with bit 30 set)
        prog += [(0x35, 0, 1, 0x40000000), (ret, 0, 0, eperm)]   # BPF_JGE
    for i, name in enumerate(names):
        prog.append((jeq, len(names) - i, 0, nr[name]))
    prog += [(ret, 0, 0, allow), (ret, 0, 0, eperm)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]
    arr = (Filter * len(prog))(*[Filter(*f) for f in prog])
    p = Prog(len(prog), arr)
    p._keep = arr
    return p


# --------------------------------------------------------------------------------------------- Landlock
_LL_FS_READ = 1 << 0 | 1 << 2 | 1 << 3               # EXECUTE, READ_FILE, READ_DIR
_LL_FS_ALL = (1 << 15) - 1                           # every access right up to ABI 3 (incl. TRUNCATE)


def landlock_abi() -> int:
    r = LIBC.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))   # LANDLOCK_CREATE_RULESET_VERSION
    return max(0, r)


def _landlock_ruleset(abi: int, writable: list, readable: list, fs: bool) -> int:
    """A ruleset fd (built once per worker, applied in every child): reads only under ``readable``, writes only
    under ``writable`` (when ``fs``), no TCP bind/connect (ABI >= 4), no signals or abstract unix sockets
    outside the snippet's own domain (ABI >= 6). -1 when unavailable."""
    if abi < 1:
        return -1
    handled_fs = (_LL_FS_ALL if abi >= 3 else (1 << 14) - 1 if abi >= 2 else (1 << 13) - 1) if fs else 0
    handled_net = 3 if abi >= 4 else 0
    scoped = 3 if abi >= 6 else 0
    if not (handled_fs or handled_net or scoped):
        return -1
    attr = (ctypes.c_uint64 * 3)(handled_fs, handled_net, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    rs = LIBC.syscall(444, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rs < 0:
        return -1

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]
    if fs:
        file_rights = 1 << 1 | 1 << 2 | (1 << 14 if abi >= 3 else 0)   # WRITE_FILE, READ_FILE, TRUNCATE
        for paths, rights in ((readable, _LL_FS_READ), (writable, handled_fs)):
            for p in paths:
                try:
                    fd = os.open(p, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                allowed = rights & handled_fs
                if not os.path.isdir(p):
                    allowed &= file_rights | 1
                LIBC.syscall(445, rs, 1, ctypes.byref(PathBeneath(allowed, fd)), 0)
                os.close(fd)
    return rs


# --------------------------------------------------------------------------------------------- processes
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


def _kids(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(x) for x in fh.read().split())
    except OSError:
        pass
    return out


def _tree(stop_after=None):
    """Every descendant of this worker (the snippet and all it started; orphans land here: we are a subreaper)."""
    out, todo = [], _kids(os.getpid())
    while todo:
        p = todo.pop()
        out.append(p)
        if stop_after and len(out) > stop_after:
            break
        todo.extend(_kids(p))
    return out


def _anon_pages(pid):
    """Resident anonymous pages (statm resident - shared); readable even for non-dumpable processes."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            f = fh.read().split()
        return int(f[1]) - int(f[2])
    except (OSError, ValueError, IndexError):
        return 0


def _tree_mb(pids, base_pages):
    """Memory the snippet's tree added: each process's anonymous pages beyond the warm worker's, which it shares
    copy-on-write (a process that forks after allocating is counted twice: conservative)."""
    return sum(max(0, _anon_pages(p) - base_pages) for p in pids) * PAGE >> 20


def _dir_mb(path, max_entries=20000):
    total, n, todo = 0, 0, [path]
    while todo:
        d = todo.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    n += 1
                    if n > max_entries:
                        return 1 << 30
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if e.is_dir(follow_symlinks=False):
                        todo.append(e.path)
        except OSError:
            pass
    return total >> 20


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_tree(snippet_uid):
    """SIGKILL every descendant until none is left; returns how many were killed."""
    killed = set()
    for _ in range(2000):
        _reap()
        pids = _tree()
        if not pids:
            return len(killed)
        killed.update(pids)
        if snippet_uid is not None:   # stop the storm atomically: kill(-1) as the snippet's own uid
            helper = os.fork()
            if helper == 0:
                try:
                    os.setgroups([])
                    os.setgid(snippet_uid)
                    os.setuid(snippet_uid)
                    os.kill(-1, signal.SIGKILL)
                finally:
                    os._exit(0)
            os.waitpid(helper, 0)
        elif LEVEL == "bwrap":        # own PID namespace: kill(-1) reaches only the sandbox (not us, not init)
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
        for p in pids:
            try:
                os.kill(p, signal.SIGSTOP)    # freeze first so a fork storm cannot outrun the kills
            except OSError:
                pass
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.0005)
    return len(killed)


def _wipe(path, keep=()):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = os.path.join(path, n)
        if p in keep:
            continue
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass


def _remove_files_of(uid):
    """Fallback level without Landlock: files a per-worker uid left in world-writable places are the snippet's."""
    for root in ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"):
        todo = [root]
        while todo:
            d = todo.pop()
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_uid == uid:
                    if e.is_dir(follow_symlinks=False):
                        shutil.rmtree(e.path, ignore_errors=True)
                    else:
                        try:
                            os.unlink(e.path)
                        except OSError:
                            pass
                elif e.is_dir(follow_symlinks=False) and st.st_mode & 0o002:
                    todo.append(e.path)


# --------------------------------------------------------------------------------------------- the child
def _child(code, workdir, req, out_w, err_w, snippet_uid, nproc_now, vsize):
    """In the forked child: limits, privileges, redirections, then run the snippet. Never returns."""
    import resource
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if RULESET >= 0:
            LIBC.prctl(38, 1, 0, 0, 0)                               # PR_SET_NO_NEW_PRIVS
            if LIBC.syscall(446, RULESET, 0) != 0:                   # landlock_restrict_self
                raise OSError("Landlock restriction failed")
        # every inherited descriptor but stdio (close_range(3, ~0U) underneath), then check the protocol's
        os.closerange(3, 0x7FFFFFFF)
        if _is_open(REQ_FD) or _is_open(REP_FD):
            raise OSError("a protocol descriptor survived close_range")
        os.chdir(workdir)
        for k in [k for k in os.environ if k.startswith("MATHCODE_SANDBOX_")]:
            del os.environ[k]
        os.environ["TMPDIR"] = workdir
        import tempfile
        tempfile.tempdir = None
        cpu = max(1, int(req["cpu_s"]))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        fsize = int(req["fsize_mb"]) << 20
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if snippet_uid is not None:
            os.setgroups([])
            os.setgid(snippet_uid)
            os.setuid(snippet_uid)
        nproc = int(req["nproc"])
        if nproc > 0:       # counted per (user namespace, uid): exact for bwrap and for the per-worker uid
            lim = nproc + nproc_now
            resource.setrlimit(resource.RLIMIT_NPROC, (lim, lim))
        mem = int(req["mem_mb"]) << 20
        if mem > 0:
            resource.setrlimit(resource.RLIMIT_AS, (vsize + mem, vsize + mem))
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        # without Landlock's signal scope, a snippet with the worker's uid could stop or kill the worker/host
        if not _seccomp(deny_signals=snippet_uid is None and LEVEL != "bwrap" and not (RULESET >= 0 and ABI >= 6)):
            if os.uname().machine in _NR:
                raise OSError("seccomp filter failed")
        sys.stdin = open(0, closefd=False)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=True)
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        rc = 0
        try:
            exec(code, g)
        except SystemExit as e:
            rc = e.code if type(e.code) is int else (0 if e.code is None else 1)
            if e.code is not None and not isinstance(e.code, int):
                print(e.code, file=sys.stderr)
        except BaseException as e:
            traceback.print_exception(type(e), e, e.__traceback__.tb_next)   # no frame of the worker itself
            rc = 1
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        _exit(rc & 0xFF)
    except BaseException:
        try:
            _write(2, ("sandbox set-up failed: " + traceback.format_exc()).encode()[-2000:])
        finally:
            _exit(3)


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


_uid_count = [0.0, 0]


def _nproc_in_namespace():
    """Processes already counted against the snippet's RLIMIT_NPROC: bwrap -> everything in the sandbox (the
    count is per user namespace); per-worker uid -> none; same uid as the host -> all of this user's processes
    (re-counted at most once a second)."""
    if LEVEL == "bwrap":
        return sum(1 for n in os.listdir("/proc") if n.isdigit())
    if os.geteuid() == 0:
        return 0
    now = time.monotonic()
    if now - _uid_count[0] > 1.0:
        uid, n = os.geteuid(), 0
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    n += os.stat(f"/proc/{name}").st_uid == uid
                except OSError:
                    pass
        _uid_count[:] = [now, n]
    return _uid_count[1]


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
        elif snippet_uid is not None and not USE_LANDLOCK_ACTIVE:
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


USE_LANDLOCK_ACTIVE = False
RULESET, ABI = -1, 0


def main():
    global USE_LANDLOCK_ACTIVE, RULESET, ABI
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
    abi = ABI = landlock_abi() if USE_LANDLOCK else 0
    # writes: only the worker's own folder, which holds nothing but the running snippet's directory
    RULESET = _landlock_ruleset(abi, [workroot, "/dev/null"], READ_PATHS + ["/dev/urandom", "/dev/zero"],
                                fs=LEVEL != "bwrap")
    USE_LANDLOCK_ACTIVE = RULESET >= 0 and LEVEL != "bwrap"
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


if __name__ == "__main__":
    main()
