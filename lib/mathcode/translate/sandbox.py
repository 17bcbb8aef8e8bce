"""Moved to ``mathcode.sandbox`` (it serves phase 2 and PAL evaluation); this name keeps old imports working."""
from ..sandbox import *  # noqa: F401,F403
from ..sandbox import HEAVY_PRELOAD, LIGHT_PRELOAD, SAFE_ENV, SandboxError, bwrap_args, bwrap_path  # noqa: F401
