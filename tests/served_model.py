"""One real OpenAI-compatible server for the tests that talk HTTP: `transformers serve` on a local model folder."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def transformers_serve(model_dir, log_dir, *, hub_cache=None, ready_s: float = 240):
    """Start `transformers serve MODEL_DIR` on a free port, wait until /health answers, yield the server root URL,
    and stop the whole process group afterwards. Skips when the CLI is not installed (extra `serve`)."""
    import requests
    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        pytest.skip("the `transformers` CLI is not installed here (pip install 'transformers[serving]')")
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if hub_cache:
        env["HF_HUB_CACHE"] = str(hub_cache)
    log = open(Path(log_dir) / f"serve-{port}.log", "w+")
    proc = subprocess.Popen([str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu", "--dtype", "float32"], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + ready_s
        while time.time() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"transformers serve exited early:\n{log.read()[-3000:]}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"transformers serve did not become healthy within {ready_s:.0f} s")
        yield url
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        log.close()
