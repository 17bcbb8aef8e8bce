"""Shared fixtures. Tests run on CPU with real small data; ../shared is used when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from mathcode import paths

EMBEDDED = "embedded:smollm2-135m-instruct"


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
