"""The worker's settings and its one piece of shared mutable state, in one place so every module reads the same
values: the settings come from the environment the host set (read once, at import); ``RULESET``, ``ABI`` and
``USE_LANDLOCK_ACTIVE`` are set by ``worker_loop.main`` before the first snippet and read by the child and the
request loop (always as ``worker_state.X``, never copied by ``from ... import``, so they see main's values)."""
import ctypes
import os

REQ_FD, REP_FD = (int(x) for x in os.environ.get("MATHCODE_SANDBOX_FDS", "3,4").split(","))
UID_BASE = 1_500_000_000
LEVEL = os.environ.get("MATHCODE_SANDBOX_LEVEL", "process")
USE_LANDLOCK = os.environ.get("MATHCODE_SANDBOX_LANDLOCK", "1") == "1"
READ_PATHS = [p for p in os.environ.get("MATHCODE_SANDBOX_READ_PATHS", "").split(os.pathsep) if p]
SHM_CAPPED = os.environ.get("MATHCODE_SANDBOX_PRIVATE_TMP") == "1"     # /tmp and /dev/shm are ours (bwrap)
LIBC = ctypes.CDLL(None, use_errno=True)
PAGE = os.sysconf("SC_PAGE_SIZE")

USE_LANDLOCK_ACTIVE = False
RULESET, ABI = -1, 0
