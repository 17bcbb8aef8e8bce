"""Where phase 2 gets its sandbox from — the one import of it in ``mathcode.translate``.

The sandbox (isolation, limits, statuses) is its own package; translation only needs ``Sandbox``,
``Limits`` and ``RunResult`` and opens one sandbox per run with ``open_sandbox`` so that its workers are
always closed, even when generation fails half-way.
"""
from __future__ import annotations

from contextlib import contextmanager

from mathcode.sandbox import Limits, RunResult, Sandbox, SandboxError  # noqa: F401 - re-exported for the phase

__all__ = ["Limits", "RunResult", "Sandbox", "SandboxError", "open_sandbox"]


@contextmanager
def open_sandbox(workers: int = 2, isolation: str = "auto", timeout: float = 5.0, memory_mb: int = 1024):
    """A started sandbox with per-snippet limits; closed (workers killed) when the block exits."""
    if timeout <= 0 or memory_mb <= 0 or workers < 1:
        raise ValueError(f"sandbox: snippet_timeout ({timeout}), snippet_memory_mb ({memory_mb}) and "
                         f"sandbox_workers ({workers}) must be positive")
    box = Sandbox(workers=workers, isolation=isolation,
                  limits=Limits(timeout=timeout, cpu_s=max(1, int(timeout)), mem_mb=memory_mb))
    try:
        yield box
    finally:
        box.close()
