"""CPU threads: the one policy that the phases and every generation backend (hf, llamacpp, vllm) use.

The rule, in order:
  1. a count given to the call (a backend's ``threads`` argument, a notebook's ``cpu_threads``) is used as given;
  2. ``$MATHCODE_THREADS`` (the recipe's ``threads``, set by the runner) wins over anything measured or guessed;
  3. torch in a phase (``cpu_threads``): ``$OMP_NUM_THREADS``, else one core left free (1 thread on 1–2 usable
     cores, cores − 1 above);
  4. llama.cpp with no count (``generation_threads``): one thread per idle core, measured when the model loads and
     measured again at every call (``idle_cores``).
0 keeps the engine's own default (torch: one thread per core; llama.cpp: rule 4).

Why not one thread per core: torch's and llama.cpp's thread pools meet at a barrier every layer, so one thread that
waits for a core held by other work holds back all the others. A pool larger than the free cores then runs slower
than a small one (bench/bench_threads.py, bench/README.md), while a second thread on an idle 2-core CPU can gain at
most 2x. Torch's pool is sized once per phase; llama.cpp's can be resized between calls, so it follows the idle
cores as other work comes and goes.
"""
from __future__ import annotations

import os

from mathcode.settings import SettingsError

# variables that size the OpenMP / MKL pools of this process's children (and of torch when set before it loads)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one, else every core)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                   # macOS, Windows
        return os.cpu_count() or 1


def env_threads(var: str) -> int | None:
    """The thread count in environment variable ``var`` (None when unset or empty); refuses anything but a whole
    number >= 0."""
    v = os.environ.get(var, "").strip()
    if not v:
        return None
    try:
        n = int(v)
    except ValueError:
        raise SettingsError(f"environment variable {var}={v!r} must be a whole number of CPU "
                            f"threads (0 keeps the engine's default)") from None
    if n < 0:
        raise SettingsError(f"environment variable {var}={v!r} must be 0 or more")
    return n


def cpu_threads() -> tuple[int, str]:
    """How many CPU threads torch should use in a phase, and why (rules 2 and 3 of the module docstring).

    ``$MATHCODE_THREADS`` wins, then ``$OMP_NUM_THREADS``; 0 keeps torch's default. Otherwise one core is left
    free: 1 thread on 1–2 usable cores, cores − 1 above, so that other work sharing the cores does not make every
    thread of the pool wait.
    """
    for var in ("MATHCODE_THREADS", "OMP_NUM_THREADS"):
        n = env_threads(var)
        if n is not None:
            return n, var
    cores = usable_cores()
    return (1 if cores <= 2 else cores - 1), f"default for {cores} usable cores"


def thread_env(n: int) -> dict[str, str]:
    """Environment that sizes a child process's OpenMP/MKL pools to ``n`` threads (empty for 0: its default)."""
    return {var: str(int(n)) for var in THREAD_VARS} if n and int(n) > 0 else {}


def set_torch_threads(n: int | None) -> None:
    """Size torch's intra-op pool to ``n`` threads (0/None: leave torch's default); no-op without torch."""
    if not n or int(n) <= 0:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(int(n))


def set_cpu_threads() -> tuple[int, str]:
    """Apply ``cpu_threads()`` to torch, and to child processes through the OMP/MKL variables (where not set)."""
    n, why = cpu_threads()
    if n <= 0:
        return 0, why
    for var, val in thread_env(n).items():
        os.environ.setdefault(var, val)
    set_torch_threads(n)
    return n, why


def _cpu_times() -> tuple[float, float] | None:
    try:
        with open("/proc/stat") as fh:
            v = [float(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0.0)          # idle + iowait
    return idle, sum(v[:8])


def idle_cores(sample_s: float = 0.5) -> tuple[int, str]:
    """How many of this process's usable cores are idle now, measured over ``sample_s`` seconds from
    ``/proc/stat`` (Linux; elsewhere: the 1-minute load average). At least 1. Returns (cores, how measured).

    Why idle cores and not all cores: a thread that has to wait for a core another process holds slows every
    thread of the pool down (they meet at a barrier every layer); a thread per idle core does not."""
    import time
    cores = usable_cores()
    a = _cpu_times()
    if a is not None:
        time.sleep(sample_s)
        b = _cpu_times()
        busy_share = 1.0 - (b[0] - a[0]) / max(b[1] - a[1], 1e-9)
        total = os.cpu_count() or cores
        busy = busy_share * total
        n = max(1, min(cores, int(round(total - busy))))
        return n, f"{n} of {cores} cores idle over {sample_s:g} s (/proc/stat: {busy:.1f} cores busy)"
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1, "no load figure available: 1 thread"
    n = max(1, min(cores, int(round(cores - load))))
    return n, f"{n} of {cores} cores idle (1-min load average {load:.2f})"


# sources after which a pool is resized at every call (the count was measured, not set)
FIXED_SOURCES = ("given", "MATHCODE_THREADS")


def generation_threads(threads: int | str | None = None) -> tuple[int, str]:
    """(threads, source) for a generation engine that can resize its pool between calls (llama.cpp).

    ``threads`` > 0: used as given (source ``"given"``); ``"idle"``: one per idle core, measured now; None, 0 or
    ``"auto"``: ``$MATHCODE_THREADS`` when above 0, else one per idle core. A source outside ``FIXED_SOURCES`` was
    measured: measure again at every call (``adaptive``)."""
    if threads == "idle":
        return idle_cores()
    if threads not in (None, 0, "auto"):
        return int(threads), "given"
    n = env_threads("MATHCODE_THREADS")
    if n:
        return n, "MATHCODE_THREADS"
    return idle_cores()


def adaptive(source: str) -> bool:
    """Whether a pool sized by ``generation_threads`` follows the idle cores from call to call."""
    return source not in FIXED_SOURCES
