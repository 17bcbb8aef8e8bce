"""The forked child that runs one snippet: every restriction is applied here, in order, before the snippet's
code runs. Kept apart from the request loop so the set-up sequence reads top to bottom in one place."""
import builtins
import io
import os
import signal
import sys
import traceback

import worker_state as state
from worker_seccomp import _NR, _seccomp
from worker_state import LEVEL, LIBC, REP_FD, REQ_FD

_exit, _write = os._exit, os.write     # the snippet may rebind os._exit/os.write; the child must still end here


def _child(code, workdir, req, out_w, err_w, snippet_uid, nproc_now, vsize):
    """In the forked child: limits, privileges, redirections, then run the snippet. Never returns."""
    import resource
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if state.RULESET >= 0:
            LIBC.prctl(38, 1, 0, 0, 0)                               # PR_SET_NO_NEW_PRIVS
            if LIBC.syscall(446, state.RULESET, 0) != 0:                   # landlock_restrict_self
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
        if not _seccomp(deny_signals=snippet_uid is None and LEVEL != "bwrap"
                        and not (state.RULESET >= 0 and state.ABI >= 6)):
            if os.uname().machine in _NR:
                raise OSError("seccomp filter failed")
        sys.stdin = open(0, closefd=False)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", write_through=True)
        g = {"__name__": "__main__", "__builtins__": builtins}
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
