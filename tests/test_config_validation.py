"""Recipes are refused before any work when a value would fail later: enums, ranges, cross-key references,
files, model specs. Every refusal names the key and what to write instead."""
from __future__ import annotations

import json

import pytest
import yaml

from mathcode import cli

from mathcode.run import params

from mathcode.run import config

DEMO = "configs/demo.yaml"


def load_with(tmp_path, phases: dict, **top):
    raw = {"name": "t", "model": "embedded:smollm2-135m-instruct", "phases": phases, **top}
    f = tmp_path / "r.yaml"
    f.write_text(yaml.safe_dump(raw))
    return config.load(f)


@pytest.mark.parametrize("phase,key,value,says", [
    ("pretraining", "quantize", "nf8", "write one of 'nf4', 'none'"),
    ("translation", "backend", "vlm", "write one of"),
    ("pretraining", "mixture", "foo", "'basic+translated'"),
    ("pretraining", "heldout_fraction", 2, "in (0, 1)"),
    ("pretraining", "heldout_fraction", 0, "in (0, 1)"),
    ("pretraining", "max_steps", -1, "-1 (epochs) is not supported"),
    ("pretraining", "max_steps", 0, "[1, inf)"),
    ("translation", "max_passages", -5, "0 translates every passage"),
    ("data", "max_docs_per_source", 0, "[1, inf)"),
    ("data", "token_budget", -10, "0 keeps everything"),
    ("data", "sources", [], "at least one source"),
    ("data", "quality_filters", ["length", "lenght"], "'lenght'"),
    ("pretraining", "compute_dtype", "fp16", "'auto', 'float32', 'bfloat16'"),
    ("pretraining", "report_to", "mlflow", "'tensorboard'"),
    ("pretraining", "optimizer", "adamw_tourch", "write one of"),
    ("evaluation", "benchmarks", ["gsm8k", "gsm9k"], "'gsm9k'"),
    ("translation", "shard_index", 3, "below num_shards"),
    ("evaluation", "limit", 0, "write -1 for every item"),
    ("evaluation", "benchmarks", [], "at least one"),
])
def test_bad_values_are_refused_naming_the_key_and_the_remedy(tmp_path, phase, key, value, says):
    with pytest.raises(config.ConfigError) as e:
        load_with(tmp_path, {phase: {key: value}})
    msg = str(e.value)
    assert f"phases.{phase}.{key}" in msg and says in msg, msg


def test_yaml_exponent_without_dot_is_read_as_the_float_it_means(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("name: t\nmodel: embedded:smollm2-135m-instruct\nphases:\n  pretraining:\n    learning_rate: 1e-4\n")
    assert yaml.safe_load(f.read_text())["phases"]["pretraining"]["learning_rate"] == "1e-4"   # YAML 1.1 reads text
    r = config.load(f)
    assert r.phases["pretraining"]["learning_rate"] == pytest.approx(1e-4)
    # the same text through papermill-style validation inside a notebook
    ns = {"learning_rate": "2e-4"}
    params.check_namespace("pretraining", ns)
    assert ns["learning_rate"] == pytest.approx(2e-4)
    with pytest.raises(config.ConfigError, match=r"learning_rate.*write it with a dot, e\.g\. 1\.0e-4"):
        load_with(tmp_path, {"pretraining": {"learning_rate": "fast"}})


def test_cross_key_references_are_checked_before_any_document_is_read(tmp_path):
    srcs = ["embedded:champ_solutions", "hub:open-web-math/open-web-math#text"]
    with pytest.raises(config.ConfigError, match=r"phases\.data\.source_weights: 'open-web-math' name no source.*"
                                                 r"hub:open-web-math"):
        load_with(tmp_path, {"data": {"sources": srcs, "source_weights": {"open-web-math": 2}}})
    with pytest.raises(config.ConfigError, match=r"phases\.data\.classify_sources: 'embedded:rg_math_drills' not "
                                                 r"among sources"):
        load_with(tmp_path, {"data": {"sources": srcs, "classify_sources": ["embedded:rg_math_drills"]}})
    with pytest.raises(config.ConfigError, match=r"phases\.data\.source_weights: every weight is 0"):
        load_with(tmp_path, {"data": {"sources": srcs, "source_weights": {"champ_solutions": 0, "hub:open-web-math": 0}}})
    with pytest.raises(config.ConfigError, match=r"phases\.data\.classifier_negatives: empty"):
        load_with(tmp_path, {"data": {"sources": srcs, "classify_sources": [srcs[1]], "classifier_negatives": []}})
    ok = load_with(tmp_path, {"data": {"sources": srcs, "classify_sources": [srcs[1]],
                                       "source_weights": {"hub:open-web-math": 3, "champ_solutions": 1}}})
    assert ok.phases["data"]["classify_sources"] == [srcs[1]]


def test_bring_your_own_corpus_through_sources_alone(tmp_path):
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"id": i, "text": f"Let x = {i}. Then 2x = {2 * i}."}) + "\n" for i in range(5)))
    r = load_with(tmp_path, {"data": {"sources": [f"jsonl:{data}"]}})
    d = r.phases["data"]
    # the notebook defaults name embedded sources: they are narrowed to the sources given, not an error
    assert d["classify_sources"] == [] and d["source_weights"] == {} and d["source_budgets"] == {}


def test_missing_files_and_unresolvable_model_specs_are_refused(tmp_path):
    with pytest.raises(config.ConfigError, match=r"phases\.pretraining\.corpus_files.*does not exist"):
        load_with(tmp_path, {"pretraining": {"corpus_files": ["no/such.jsonl"]}})
    with pytest.raises(config.ConfigError, match=r"key 'model'.*unknown embedded model"):
        load_with(tmp_path, {}, model="embedded:gpt-17")
    with pytest.raises(config.ConfigError, match=r"key 'model'.*neither embedded:NAME"):
        load_with(tmp_path, {}, model="llama 3 8b")
    with pytest.raises(config.ConfigError, match=r"translator_model.*folder .* does not exist"):
        load_with(tmp_path, {"translation": {"translator_model": "./no-such-model", "backend": "hf"}})


def test_validate_prints_a_plan_with_budget_memory_and_rough_times(capsys):
    assert cli.main(["validate", "--config", "configs/one-gpu-8b.yaml"]) == 0
    out = capsys.readouterr().out
    for want in ("plan for recipe 'one-gpu-8b'", "hub:open-web-math", "[classified]", "token budget 60000000",
                 "65,536,000 training tokens", "memory estimate:", "GiB on cuda", "rough time (estimate",
                 "backend vllm", "Qwen/Qwen2.5-Coder-7B-Instruct"):
        assert want in out, (want, out)
    assert cli.main(["validate", "--config", DEMO, "-p", "pretraining.max_steps=-1"]) == 2
    assert "max_steps" in capsys.readouterr().err


def _enumerated_parameters():
    """(phase, key, allowed values, is_list) for every setting whose value comes from a set, read from each phase's
    settings definition (``PhaseSettings.enumerated``); plus any setting whose help text lists quoted alternatives
    ("a" | "b") — those must have a rule too (allowed None)."""
    import re
    out = []
    for phase, cls in params.SETTINGS.items():
        enumerated, docs, defaults = cls.enumerated(), cls.docs(), cls.defaults()
        for key in defaults:
            if key in enumerated:
                out.append((phase, key, tuple(enumerated[key]), isinstance(defaults[key], list)))
            elif re.search(r'"[\w+.-]+"\s*\|\s*"[\w+.-]+"', docs.get(key, "")):
                out.append((phase, key, None, False))
    return out


def test_the_sweep_covers_what_later_phases_refuse():
    """Protocols, quantize (per phase), backends, benchmark names, passage units and mixtures are in the sweep."""
    swept = {(p, k) for p, k, _, _ in _enumerated_parameters()}
    for want in [("evaluation", "protocol"), ("evaluation", "quantize"), ("pretraining", "quantize"),
                 ("translation", "quantize"), ("translation", "backend"), ("evaluation", "backend"),
                 ("evaluation", "benchmarks"), ("translation", "passage_unit"), ("pretraining", "mixture"),
                 ("pretraining", "optimizer"), ("pretraining", "scheduler"), ("data", "quality_filters")]:
        assert want in swept, want


@pytest.mark.parametrize("phase,key,allowed,is_list", _enumerated_parameters(), ids=lambda v: str(v)[:30])
def test_every_enumerated_parameter_refuses_a_misspelling_before_any_work(tmp_path, phase, key, allowed, is_list):
    """A typo in any value a later phase would refuse (protocols, quantize per phase, backends, passage units, ...)
    stops ``validate`` / ``run`` at load time, not hours later when that phase starts."""
    assert allowed is not None, f"{phase}.{key} lists its values in its help text but has no rule in its settings"
    ok = next((v for v in allowed if isinstance(v, str) and v), allowed[0])
    typo = ok + "x" if isinstance(ok, str) else max(allowed) + 1              # MATH levels: 6
    with pytest.raises(config.ConfigError) as e:
        load_with(tmp_path, {phase: {key: [typo] if is_list else typo}})
    assert f"phases.{phase}.{key}" in str(e.value) and "write" in str(e.value), str(e.value)
    load_with(tmp_path, {phase: {key: [ok] if is_list else ok}})        # and an allowed value passes


@pytest.mark.parametrize("key", ["sources", "classifier_positives", "classifier_negatives", "classify_sources"])
def test_source_names_are_checked_before_any_document_is_read(tmp_path, key):
    with pytest.raises(config.ConfigError) as e:
        load_with(tmp_path, {"data": {key: ["embedded:champ_solution"]}})
    assert f"phases.data.{key}" in str(e.value) and "embedded:champ_solutions" in str(e.value), str(e.value)
    with pytest.raises(config.ConfigError) as e:
        load_with(tmp_path, {"data": {key: ["hf:open-web-math/open-web-math"]}})
    assert "unknown kind 'hf'" in str(e.value)


@pytest.mark.parametrize("block,says", [
    ({"limits": {"gsm9k": 3}}, "limits: unknown benchmark"),
    ({"limits": {"gsm8k": 0}}, "limits.gsm8k"),
    ({"math_subjects": ["Algebr"]}, "not a MATH subject"),
    ({"protocol": "paper", "n_shots": 6}, "n_shots"),
    ({"n_samples": 4}, "temperature above 0"),
    ({"models": ["mine="]}, "LABEL=]SPEC"),
])
def test_evaluation_cross_key_rules_refuse_before_any_work(tmp_path, block, says):
    with pytest.raises(config.ConfigError) as e:
        load_with(tmp_path, {"evaluation": block})
    assert says in str(e.value), str(e.value)


def test_engine_constants_agree_with_the_settings():
    """The translation settings and the engine share one definition of each list and each setting: the
    constants are the same objects (one defined, the other imported), and the engine's config takes every field's
    default and rule from the settings class."""
    import dataclasses
    from mathcode.translate import passages, settings as TS, translate as T, verify
    assert TS.MATCH_RULES is verify.RULES
    assert T.FORMATS is TS.OUTPUT_FORMATS
    assert TS.UNITS is passages.UNITS
    d = TS.TranslationSettings.defaults()
    defined = {f.name: f for f in TS.TranslationSettings.fields()}
    engine = {f.name: f for f in dataclasses.fields(T.TranslateConfig)}
    for name in T.ENGINE_SETTINGS:
        assert engine[name].default == d[name], name
        assert engine[name].metadata["rule"] is defined[name].metadata["rule"], name   # the settings' own rule
        assert engine[name].metadata["help"] == defined[name].metadata["help"], name
    assert T.TranslateConfig().gen.max_new_tokens == d["max_new_tokens"]


@pytest.mark.parametrize("phase,key", [("evaluation", "adapter"), ("evaluation", "merged_dir"),
                                       ("evaluation", "data_dir"), ("data", "classifier_model")])
def test_input_folders_a_user_names_must_exist_before_any_work(tmp_path, phase, key):
    with pytest.raises(config.ConfigError) as e:
        load_with(tmp_path, {phase: {key: str(tmp_path / "missing")}})
    assert f"phases.{phase}.{key}" in str(e.value) and "does not exist" in str(e.value)
    load_with(tmp_path, {phase: {key: str(tmp_path)}})                         # an existing path passes
