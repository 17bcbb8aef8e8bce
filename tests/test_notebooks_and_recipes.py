"""The notebooks and recipes users open: stored clean, parameterizable, and every recipe validates."""
from __future__ import annotations

import json

import papermill as pm
import pytest

from mathcode import config, params, paths

ROOT = paths.project_root()


@pytest.mark.parametrize("phase", list(params.NOTEBOOKS))
def test_notebook_is_stored_clean_with_one_documented_parameters_cell(phase):
    f = params.notebook_path(phase)
    nb = json.loads(f.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{f.name}: exactly one cell tagged 'parameters'"
    assert nb["cells"][0]["cell_type"] == "markdown", f"{f.name}: starts with a markdown 'why'"
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            assert not c.get("outputs") and c.get("execution_count") is None, f"{f.name}: stored with outputs"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    d, docs = params.defaults(phase), params.docs(phase)
    assert set(params.COMMON) <= set(d), f"{f.name}: common parameters {params.COMMON}"
    assert all(docs[k] for k in d), f"{f.name}: undocumented parameters {[k for k in d if not docs[k]]}"
    # papermill must see the same names (a quote or '=' in a trailing comment can hide one from it)
    assert set(pm.inspect_notebook(str(f))) == set(d)
    # second cell of code validates the parameters and opens the phase
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert f'phase.start("{phase}", globals())' in "".join(code[1]["source"])
    assert "P.finish(" in "".join(code[-1]["source"])


@pytest.mark.parametrize("recipe", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")
                                          if not p.name.startswith("accelerate")))
def test_every_recipe_validates(recipe):
    r = config.load(f"configs/{recipe}")
    assert r.model and r.run_dir.startswith("outputs/")
    for ph in r.phases:
        assert set(r.phase_params(ph)) <= set(params.defaults(ph))


def test_gpu_recipe_is_paper_like_and_sized_for_one_gpu():
    r = config.load("configs/one-gpu-8b.yaml")
    pre = r.phases["pretraining"]
    assert "8B" in r.model and r.device == "cuda"
    assert pre["quantize"] == "nf4" and pre["block_size"] == 2048 and pre["gradient_checkpointing"]
    assert r.phases["evaluation"]["n_shots"] == 4
    assert r.phases["translation"]["backend"] == "openai" and "KEY" in r.phases["translation"]["api_key_env"]
