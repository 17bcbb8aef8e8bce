"""The notebooks and recipes users open: stored clean, parameterizable, and every recipe validates."""
from __future__ import annotations

import json

import papermill as pm
import pytest

from mathcode.run import config

from mathcode import paths

from mathcode.run import params

ROOT = paths.project_root()


@pytest.mark.parametrize("phase", list(params.SETTINGS))
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
    cls = params.settings_class(phase)
    assert f"phase.start({cls.__name__}, globals())" in "".join(code[1]["source"])
    # the parameters cell is written from the settings class: one definition of names, defaults and help
    assert "".join(code[0]["source"]) == cls.parameters_cell(), (
        f"{f.name}: the parameters cell differs from {cls.__module__}.{cls.__name__}; regenerate it with "
        f"python -m mathcode params --write-cells")
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
    pre, tr, ev, data = (r.phases[k] for k in ("pretraining", "translation", "evaluation", "data"))
    assert "8B" in r.model and r.device == "cuda"
    assert pre["quantize"] == "nf4" and pre["block_size"] == 2048 and pre["gradient_checkpointing"]
    assert ev["n_shots"] == 4
    # everything on the one card: translation and evaluation through vLLM, the LoRA rank vLLM serves by default
    assert tr["backend"] == "vllm" and "Coder" in tr["translator_model"] and ev["backend"] == "vllm"
    assert pre["lora_r"] <= 16 and not pre["train_embeddings"]
    # basic data without model-translated code (MathCode-Pile contains some: it would blur the ablation)
    assert not any("MathCode-Pile" in s for s in data["sources"])
    # negatives are general web text, the register of the pool, not docstrings
    assert all(s.startswith("hub:") and "fineweb" in s for s in data["classifier_negatives"])
    served = config.load("configs/one-gpu-8b-served-translator.yaml")
    assert served.phases["translation"]["backend"] == "openai" and "KEY" in served.phases["translation"]["api_key_env"]


@pytest.mark.parametrize("recipe", ["configs/one-gpu-8b.yaml", "configs/one-gpu-8b-served-translator.yaml"])
def test_flagship_cross_references_resolve(recipe):
    from mathcode.data.sources import parse_spec
    raw = __import__("yaml").safe_load((ROOT / recipe).read_text())["phases"]["data"]
    names = {parse_spec(s).name for s in raw["sources"]}
    assert set(raw["source_weights"]) == names, "every source weighted, every weight names a source"
    assert set(raw["classify_sources"]) <= set(raw["sources"])
    for s in raw["classifier_positives"] + raw["classifier_negatives"]:
        parse_spec(s)
    r = config.load(recipe)
    assert r.phases["data"]["source_weights"] == raw["source_weights"]      # nothing narrowed away


@pytest.mark.parametrize("phase", list(params.SETTINGS))
def test_notebook_logic_stays_in_the_library(phase):
    """A notebook reads like a protocol: at most 70 lines of code besides its (generated) parameters cell."""
    nb = json.loads(params.notebook_path(phase).read_text())
    body = [c for c in nb["cells"] if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])]
    n = sum(1 for c in body for line in "".join(c["source"]).splitlines() if line.strip())
    assert n <= 70, f"{params.notebook_path(phase).name}: {n} code lines; move logic into lib/mathcode/{phase}"
