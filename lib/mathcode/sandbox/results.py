"""What a caller asks for (``Limits``) and what it gets back (``RunResult``), with the exact status vocabulary."""
from __future__ import annotations

from dataclasses import asdict, dataclass

# Every status a RunResult can carry. Only "ok" means: exited 0, inside every limit, nothing left running.
STATUSES = {
    "ok": "exited with code 0, within every limit, left no process behind",
    "error": "raised, exited non-zero, did not compile, or the sandbox lost the worker running it",
    "timeout": "wall-clock timeout or CPU-time limit; output printed before it is kept",
    "memory": "memory limit (address space per process, or private memory of the whole process tree)",
    "processes": "more processes at once than Limits.nproc (fork storm)",
    "output_limit": "more than Limits.out_cap bytes on stdout or stderr; the snippet was stopped",
    "disk": "file-size limit, or its private /tmp, /dev/shm or working directory was full",
    "killed_leftovers": "exited 0 but left processes running; they were killed",
}


@dataclass
class Limits:
    timeout: float = 5.0        # wall-clock seconds per snippet (the host never waits more than timeout + 2 s)
    cpu_s: int = 5              # CPU seconds per process (RLIMIT_CPU)
    mem_mb: int = 1024          # per process address space on top of the warm worker, AND private memory of the tree
    nproc: int = 64             # processes the snippet may run at once (RLIMIT_NPROC + tree watchdog); 0 = no limit
    out_cap: int = 65536        # bytes of stdout (and of stderr); more stops the snippet with status output_limit
    fsize_mb: int = 16          # largest file a snippet may write (RLIMIT_FSIZE)
    disk_mb: int = 64           # private /tmp and /dev/shm size (bwrap) / working-directory size (process level)

    def __post_init__(self):
        for name in ("timeout", "cpu_s", "mem_mb", "nproc", "out_cap", "fsize_mb", "disk_mb"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"Limits.{name}={v!r}: write a non-negative number")
        if self.timeout <= 0 or self.out_cap <= 0:
            raise ValueError("Limits.timeout and Limits.out_cap must be > 0")


@dataclass
class RunResult:
    status: str                 # one of STATUSES
    stdout: str = ""
    stderr: str = ""
    returncode: int | None = None
    truncated: bool = False     # stdout/stderr were cut at Limits.out_cap
    seconds: float = 0.0
    killed_leftovers: int = 0   # processes still running after the snippet ended (killed by the sandbox)
    isolation: str = ""         # "bwrap" | "process"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)
