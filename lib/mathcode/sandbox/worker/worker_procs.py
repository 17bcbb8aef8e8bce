"""Process-tree accounting: what the snippet's processes are, how much memory and disk they use, how many count
against its process limit, and killing them all. The worker is a child subreaper, so every descendant is
reachable from here."""
import os
import signal
import time

from worker_state import LEVEL, PAGE

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
