"""Entry point of the sandbox worker, which runs *inside* the isolation boundary and imports nothing from
mathcode (stdlib only).

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

Modules (top-level imports: this directory is ``sys.path[0]`` under ``python -I``): ``worker_state`` (settings
read from the environment and the Landlock state ``main`` sets), ``worker_seccomp``, ``worker_landlock``,
``worker_procs`` (process-tree accounting and killing), ``worker_cleanup``, ``worker_child`` (the forked child)
and ``worker_loop`` (the request loop).
"""
from worker_loop import main

if __name__ == "__main__":
    main()
