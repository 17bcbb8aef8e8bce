"""Run model-written Python without trusting it — shared by phase 2 (translation) and PAL evaluation (phase 4).

    from mathcode.sandbox import Sandbox, Limits
    with Sandbox(workers=2, limits=Limits(timeout=5)) as sb:
        r = sb.run("print(6 * 7)")          # RunResult(status='ok', stdout='42\\n', ...)

Modules: ``results`` (Limits, RunResult, the status vocabulary), ``isolation`` (levels, the bubblewrap view,
secret redaction), ``pool`` (warm workers, strict protocol, deadlines), ``worker`` (the program that
runs inside the boundary, stdlib only, one module per concern).
docs/sandbox.md (threat model per attack class) says what each level contains and what it does not.
"""
from mathcode.sandbox.isolation import SandboxError, bwrap_args, bwrap_path, detect_isolation, interpreter_paths
from mathcode.sandbox.pool import HEAVY_PRELOAD, LIGHT_PRELOAD, SAFE_ENV, Sandbox, run_naive
from mathcode.sandbox.results import STATUSES, Limits, RunResult

__all__ = ["Sandbox", "Limits", "RunResult", "STATUSES", "SandboxError", "detect_isolation", "bwrap_path",
           "bwrap_args", "interpreter_paths", "run_naive", "SAFE_ENV", "LIGHT_PRELOAD", "HEAVY_PRELOAD"]
