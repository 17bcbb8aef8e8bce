"""The seccomp filter every snippet runs under: its own module because it is a self-contained piece of
low-level code (syscall numbers, a classic-BPF program) that the child installs and ``main`` pre-builds."""
import ctypes
import os

from worker_state import LIBC

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
