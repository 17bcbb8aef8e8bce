"""Landlock: the kernel's filesystem/network/signal confinement, built once per worker by ``main`` and applied
in every child; kept apart because it is raw syscall plumbing with its own ABI versions."""
import ctypes
import os

from worker_state import LIBC

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
