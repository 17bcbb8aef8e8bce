"""``--rehearse``: every phase of a GPU recipe at toy scale on CPU, through the same code.

The two end-to-end tests rehearse the flagship recipe and its ablation exactly as a user would
(``python -m mathcode run --config R.yaml --rehearse``) into temporary folders; the ablation's is also the suite's
one ablation through the real phase notebooks (every arm, the comparison on what they wrote); the unit tests pin
the architecture choice, the substitution of Hub sources (names renamed in every key, roles kept) and the override
rules.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from mathcode import paths
from mathcode.data import source_roles
from mathcode.data.sources import parse_spec
from mathcode.run import ablation_compare, config, rehearse
from mathcode.util import read_jsonl

ROOT = paths.project_root()
FLAGSHIP = "configs/one-gpu-8b.yaml"
ABLATION = "configs/one-gpu-8b-ablation.yaml"
KEYS = ["01_data", "02_translation", "03_pretraining", "04_evaluation"]


# --- the architecture ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec,arch", [
    ("meta-llama/Meta-Llama-3-8B", "llama"), ("Qwen/Qwen2.5-Coder-7B-Instruct", "qwen2"),
    ("mistralai/Mistral-7B-v0.1", "mistral"), ("google/gemma-2-9b", "gemma2"), ("google/gemma-7b", "gemma"),
    ("microsoft/Phi-3-mini-4k-instruct", "phi3"), ("Qwen/Qwen3-8B", "qwen3"),
    ("deepseek-ai/deepseek-math-7b-base", "llama"), ("EleutherAI/llemma_7b", "llama"),
])
def test_architecture_from_the_model_id(spec, arch):
    mt, how = rehearse.architecture(spec)
    assert mt == arch and "guessed from the model id" in how


def test_unknown_id_falls_back_to_smollm2s_architecture():
    mt, how = rehearse.architecture("acme/mystery-model-7b")
    assert mt == rehearse.FALLBACK_ARCH == "llama" and "SmolLM2" in how


def test_a_local_config_wins_over_the_name(tmp_path):
    d = tmp_path / "llama-named-but-qwen"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    mt, how = rehearse.architecture(str(d))
    assert mt == "qwen2" and "config.json" in how


def test_embedded_model_architecture():
    assert rehearse.architecture("embedded:smollm2-135m-instruct")[0] == "llama"


def test_tiny_model_has_the_architecture_and_the_tokenizers_vocabulary():
    from transformers import AutoConfig, AutoTokenizer
    folder = rehearse.tiny_model("qwen2")
    cfg = AutoConfig.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert cfg.model_type == "qwen2" and cfg.vocab_size == len(tok)
    assert cfg.num_hidden_layers == 2 and cfg.hidden_size == rehearse.TINY["hidden_size"] == 128
    assert rehearse.tiny_model("qwen2") == folder                      # cached per architecture


# --- the sources --------------------------------------------------------------------------------------
def _flagship_data() -> dict:
    import yaml
    return yaml.safe_load((ROOT / FLAGSHIP).read_text())["phases"]["data"]


def test_hub_sources_become_local_stand_ins_in_every_key():
    data = _flagship_data()
    changed, records = rehearse.substitute_sources(data, 12)
    new = {**data, **changed}
    every = [*new["sources"], *new["classify_sources"], *new["classifier_positives"], *new["classifier_negatives"]]
    assert not [s for s in every if s.startswith("hub:")]
    assert not [k for k in new["source_weights"] if k.startswith("hub:")]
    roles = {r["name_was"]: (r["role"], r["name_now"]) for r in records}
    assert roles == {"hub:open-web-math": ("pool", "jsonl:open-web-math"),
                     "hub:finemath": ("positive", "jsonl:finemath"),
                     "hub:fineweb": ("negative", "jsonl:fineweb")}
    assert new["source_weights"]["jsonl:open-web-math"] == 4 and new["source_weights"]["jsonl:finemath"] == 4
    assert [parse_spec(s).name for s in new["classify_sources"]] == ["jsonl:open-web-math"]
    assert "embedded:champ_solutions" in new["classifier_positives"]          # non-Hub entries untouched
    # the renamed keys agree with each other exactly as the real recipe's do
    resolved = source_roles.resolve_data_keys(new, explicit=set(new))
    assert set(resolved["source_weights"]) == {parse_spec(s).name for s in new["sources"]}
    for r in records:
        rows = read_jsonl(parse_spec(r["now"]).target)
        assert len(rows) == 12 and all(row["text"].strip() for row in rows)
        assert {row["meta"]["stand_in_for"] for row in rows} == {r["was"]}
    pool = read_jsonl(parse_spec(new["classify_sources"][0]).target)
    neg = read_jsonl(parse_spec(new["classifier_negatives"][0]).target)
    assert {row["meta"]["from"] for row in pool} == {"embedded:champ_concepts", "embedded:stdlib_prose"}
    assert not {row["text"] for row in pool} & {row["text"] for row in neg}      # no document in two roles


def test_recipe_without_hub_sources_is_left_alone():
    assert rehearse.substitute_sources({"sources": ["embedded:champ_solutions"]}, 10) == ({}, [])


# --- the plan -----------------------------------------------------------------------------------------
@pytest.fixture
def no_vllm(monkeypatch):
    """As on a machine where vLLM cannot be imported."""
    monkeypatch.setattr(rehearse, "vllm_available", lambda: False)


def test_plan_validates_through_the_normal_override_path(no_vllm):
    recipe, reh = rehearse.load(FLAGSHIP)
    assert recipe.device == "cpu" and recipe.name == "one-gpu-8b-rehearsal"
    assert recipe.phases["translation"]["backend"] == "hf" and recipe.phases["evaluation"]["backend"] == "hf"
    assert "rehearsal-llama-" in recipe.model and "rehearsal-qwen2-" in recipe.phases["translation"]["translator_model"]
    assert recipe.phases["pretraining"]["quantize"] == "nf4"
    assert recipe.phases["pretraining"]["optimizer"] == "paged_adamw_8bit"
    assert recipe.phases["pretraining"]["block_size"] == 64 and recipe.phases["evaluation"]["limit"] == 2
    assert reh.run_dir == paths.resolve_path("outputs/one-gpu-8b-rehearsal") != reh.real_run_dir
    keys = {s["key"] for s in reh.substitutions}
    assert {"model", "device", "data.sources", "translation.backend", "translation.translator_model",
            "evaluation.backend"} <= keys
    assert reh.scale["pretraining.max_steps"] == {"was": 2000, "now": 2}


def test_user_values_win_over_toy_sizes_but_not_over_substitutions(no_vllm):
    recipe, reh = rehearse.load(FLAGSHIP, {"evaluation.limit": 3, "evaluation.backend": "vllm"})
    assert recipe.phases["evaluation"]["limit"] == 3 and "evaluation.limit" not in reh.scale
    assert recipe.phases["evaluation"]["backend"] == "hf"


def test_vllm_is_kept_where_it_is_installed(monkeypatch):
    """A GPU recipe's rehearsal runs the engines its GPU run uses: vLLM stays (on the tiny model) where it can be
    imported, and rehearsal.json's ``engines`` says so per phase; without vLLM, hf, with the reason."""
    monkeypatch.setattr(rehearse, "vllm_available", lambda: True)
    recipe, reh = rehearse.load(FLAGSHIP)
    assert recipe.phases["translation"]["backend"] == "vllm" and recipe.phases["evaluation"]["backend"] == "vllm"
    assert "rehearsal-qwen2-" in recipe.phases["translation"]["translator_model"]
    assert not {"translation.backend", "evaluation.backend"} & {s["key"] for s in reh.substitutions}
    assert [(e["phase"], e["recipe"], e["rehearsal"], e["kept"]) for e in reh.engines] == \
        [("translation", "vllm", "vllm", True), ("evaluation", "vllm", "vllm", True)]
    assert reh.uses_vllm() and reh.record()["engines"] == reh.engines
    monkeypatch.setattr(rehearse, "vllm_available", lambda: False)
    recipe, reh = rehearse.load(FLAGSHIP)
    assert recipe.phases["evaluation"]["backend"] == "hf" and not reh.uses_vllm()
    assert all(e["rehearsal"] == "hf" and not e["kept"] and "not installed" in e["reason"] for e in reh.engines)


def test_vllm_availability_is_the_import_check():
    import importlib.util
    assert rehearse.vllm_available() == (importlib.util.find_spec("vllm") is not None)


def test_the_tiny_models_run_on_vllms_cpu_attention():
    """vLLM's CPU attention takes heads of 32 and up; the tiny models' heads must fit it."""
    assert rehearse.TINY["hidden_size"] // rehearse.TINY["num_attention_heads"] == rehearse.TINY["head_dim"] >= 32


def test_ablation_plan_keeps_every_arm_and_the_first_seed():
    recipe, reh = rehearse.load(ABLATION)
    assert recipe.ablation["arms"] == ["basic", "basic+translated", "token-matched"]
    assert recipe.ablation["seeds"] == [0] and reh.scale["ablation.seeds"] == {"was": [0, 1, 2], "now": [0]}
    assert recipe.ablation["epochs"] == 1.0
    assert "max_steps" not in recipe.phases["pretraining"]          # each arm's steps come from ablation.epochs
    assert any("first seed only" in n for n in reh.notes)
    recipe, reh = rehearse.load(ABLATION, {"ablation.seeds": [0, 1, 2]})
    assert recipe.ablation["seeds"] == [0, 1, 2] and "ablation.seeds" not in reh.scale


REMOTE = {"translation.backend": "openai", "translation.translator_model": "Qwen/Qwen2.5-Coder-7B-Instruct",
          "evaluation.backend": "vllm", "evaluation.source": "hub", "evaluation.models": ["b=Qwen/Qwen2.5-0.5B"],
          "data.decontam_benchmarks": ["hub:some/benchmark"]}


@pytest.mark.parametrize("recipe", sorted(p.name for p in (ROOT / "configs").glob("*.yaml")))
@pytest.mark.parametrize("overrides", [{}, REMOTE], ids=["as-written", "remote-backends"])
def test_each_phase_edits_only_its_own_keys(recipe, overrides, tmp_path):
    """Each per-phase function of the plan returns edits (replacements, substitution records, toy sizes, engines)
    under its own phase's keys only; no model is built (the tiny-model lookup is a stand-in)."""
    _, raw = rehearse._raw(ROOT / "configs" / recipe, dict(overrides))
    tiny = lambda spec: ("llama", "test", str(tmp_path / "tiny-llama"))          # noqa: E731
    edits = {"data": rehearse.data_edits(raw, overrides, cache_dir=tmp_path),
             "translation": rehearse.translation_edits(raw, overrides, tiny, have_vllm=False),
             "pretraining": rehearse.pretraining_edits(raw, overrides),
             "evaluation": rehearse.evaluation_edits(raw, overrides, tiny, have_vllm=False)}
    assert set(edits) == set(rehearse.SCALE)
    for phase, e in edits.items():
        assert e.phase == phase
        keys = set(e.edits()) | set(e.replacements) | set(e.scale) | {s["key"] for s in e.substitutions}
        assert all(k.startswith(phase + ".") for k in keys), (phase, sorted(keys))
        assert all(r["phase"] == phase for r in e.engines)
    if overrides:                                      # every phase that has something to replace did replace it
        assert {"data.decontam_benchmarks"} <= set(edits["data"].replacements)
        assert {"translation.backend", "translation.translator_model"} <= set(edits["translation"].replacements)
        assert {"evaluation.backend", "evaluation.source", "evaluation.models"} <= set(edits["evaluation"].replacements)


def test_never_the_real_run_dir():
    with pytest.raises(rehearse.RehearsalError, match="never writes into the recipe's run_dir"):
        rehearse.plan(FLAGSHIP, run_dir="outputs/one-gpu-8b")


def test_validate_rehearse_cli(capsys, no_vllm):
    from mathcode.cli import main
    assert main(["validate", "--config", FLAGSHIP, "--rehearse"]) == 0
    out = capsys.readouterr().out
    assert "rehearsal into" in out and "replaces translation.backend: vllm -> hf" in out
    assert "valid recipe 'one-gpu-8b-rehearsal'" in out


# --- end to end ---------------------------------------------------------------------------------------
def _state(d):
    """Files and modification times under a folder (None when it does not exist)."""
    d = paths.resolve_path(d)
    return None if not d.exists() else sorted((str(p), p.stat().st_mtime_ns) for p in d.rglob("*"))


def _rehearse(config_path, run_dir):
    real = rehearse.plan(config_path, run_dir=run_dir).real_run_dir
    before = _state(real)
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "mathcode", "run", "--config", config_path, "--rehearse",
                        "--run-dir", str(run_dir), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    print(f"rehearsal of {config_path}: {time.time() - t0:.0f} s")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert _state(real) == before, f"the rehearsal touched the real run_dir {real}"
    record = json.loads((run_dir / "rehearsal.json").read_text())
    assert record["rehearsal"] is True and record["real_run_dir"] == str(real)
    keys = {s["key"] for s in record["substitutions"]}
    engine = "vllm" if rehearse.vllm_available() else "hf"           # vLLM kept where it is installed
    assert [(e["phase"], e["rehearsal"]) for e in record["engines"]] == [("translation", engine), ("evaluation", engine)]
    assert {"model", "device", "data.sources", "translation.translator_model"} <= keys
    assert ({"translation.backend", "evaluation.backend"} <= keys) == (engine == "hf")
    assert all(s["reason"] for s in record["substitutions"])
    html = (run_dir / "report.html").read_text()
    assert "A rehearsal, not an experiment" in html
    return record


def _complete(d, keys):
    for key in keys:
        m = json.loads((d / key / "manifest.json").read_text())
        assert m["status"] == "complete", (d, key, m.get("error"))
    return m


@pytest.mark.slow
def test_rehearse_flagship_end_to_end(tmp_path):
    run = tmp_path / "rehearsal"
    _rehearse(FLAGSHIP, run)
    _complete(run, KEYS)
    pre = json.loads((run / "03_pretraining/manifest.json").read_text())["parameters"]
    assert pre["quantize"] == "nf4" and pre["device"] == "cpu" and "rehearsal-llama-" in pre["model"]
    ev = json.loads((run / "04_evaluation/manifest.json").read_text())
    assert ev["parameters"]["backend"] == ("vllm" if rehearse.vllm_available() else "hf")
    assert set(ev["parameters"]["benchmarks"]) == {"gsm8k", "math", "sat_math", "ocw", "mmlu_math"}
    corpus = read_jsonl(run / "01_data/corpus.jsonl")
    assert {r["source"] for r in corpus} >= {"jsonl:finemath"}
    assert (run / "03_pretraining/adapter/adapter_config.json").exists()
    assert (run / "report.html").read_text().count("status complete") >= 4


@pytest.mark.slow
def test_rehearse_ablation_end_to_end(tmp_path):
    run = tmp_path / "rehearsal"
    _rehearse(ABLATION, run)
    _complete(run, KEYS[:2])
    plan = json.loads((run / "ablation/plan.json").read_text())
    assert plan["arms"] == ["basic", "basic+translated", "token-matched"]
    for r in plan["runs"]:
        _complete(run / r["dir"], KEYS[2:])
    for r in plan["runs"]:
        m3 = json.loads((run / r["dir"] / "03_pretraining/manifest.json").read_text())
        assert m3["parameters"]["mixture"] == ("basic" if r["arm"] == "token-matched" else r["arm"])
    # every arm was scored on the same items and prompts, and scored something
    ident = json.loads((run / "ablation/evaluation_identity.json").read_text())
    arms = {k: v for k, v in ident.items() if k.startswith("arms/")}
    assert len(arms) == 3 and len({(v["items_sha"], v["nll_sha"]) for v in arms.values()}) == 1
    assert ident["base"]["items_sha"] == next(iter(arms.values()))["items_sha"]     # evaluate_base: the same items
    assert all(v["items"] > 0 for v in ident.values())
    # the comparison through the real notebooks' files: each arm against each reference, ordered intervals, a
    # sentence on zero for every row (accuracy only: vLLM's CPU build scores no NLL on a LoRA engine; the NLL rows
    # of a real phase-4 notebook reach the comparison in test_end_to_end)
    t = ablation_compare.compare(run)
    assert (run / "ablation/comparison.csv").exists()
    assert list(t.columns) == ablation_compare.COLUMNS and "accuracy" in set(t.metric)
    assert {(a, b) for a, b in zip(t.arm, t.reference)} == {("basic+translated", "basic"),
                                                           ("token-matched", "basic"),
                                                           ("basic+translated", "token-matched")}
    assert (t.ci_low <= t["diff"] + 1e-12).all() and (t["diff"] <= t.ci_high + 1e-12).all()
    assert t.sentence.str.contains("interval (?:ex|in)cludes zero|the interval is the point zero").all()
    tok = json.loads((run / "ablation/corpus_tokens.json").read_text())
    assert tok["basic_tokens"] > 0 and 0 <= tok["translated_share"] < 1
    assert tok["token_matched_tokens"] >= tok["basic_tokens"]
    summary = json.loads((run / "ablation/summary.json").read_text())
    assert summary
    assert "id='ablation'" in (run / "report.html").read_text()
    assert "A rehearsal, not an experiment" in (run / plan["runs"][0]["dir"] / "report.html").read_text()
