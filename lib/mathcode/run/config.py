"""Recipes are data: one YAML file per setting (a CPU demo, a one-GPU 8B run).

A recipe has a few top-level keys shared by every phase and one block per phase whose keys are that
phase notebook's parameters (the notebook's ``parameters`` cell is the schema; see ``params``).
Validation happens before any work starts and names the offending key.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mathcode import paths

from mathcode.run import params
from mathcode.run import ablation_settings

PHASE_ORDER = ["data", "translation", "pretraining", "evaluation"]
TOP_LEVEL = {
    "name": str,          # run name (the default run dir is outputs/<name>)
    "description": str,
    "model": str,         # model spec shared by every phase (see mathcode.models)
    "device": str,        # auto | cpu | cuda
    "seed": int,
    "run_dir": str,       # where artefacts go (default outputs/<name>)
    "cache_dir": str,     # model cache (default $MATHCODE_CACHE or ~/.cache/mathcode)
    "phases": dict,       # {data: {...}, translation: {...}, pretraining: {...}, evaluation: {...}}
    "threads": int,       # CPU threads per phase (default: see mathcode.cpu.cpu_threads; env MATHCODE_THREADS wins)
    "ablation": dict,     # arms x seeds of phases 3-4 on shared phases 1-2 (validated by mathcode.run.ablation.check_block)
}


class ConfigError(ValueError):
    """An invalid recipe; the message names the file and the key."""


@dataclass
class Recipe:
    path: Path
    name: str
    model: str
    device: str = "auto"
    seed: int = 0
    run_dir: str = ""
    cache_dir: str | None = None
    description: str = ""
    phases: dict = field(default_factory=dict)
    threads: int | None = None
    ablation: dict | None = None

    def phase_params(self, phase: str, run_dir: str | os.PathLike | None = None) -> dict:
        """Parameters papermill injects into the phase notebook."""
        common = {"run_dir": str(paths.resolve_path(run_dir or self.run_dir)), "model": self.model,
                  "seed": self.seed, "device": self.device}
        return {**common, **self.phases.get(phase, {})}


def load(path: str | os.PathLike, overrides: dict | None = None) -> Recipe:
    """Read and validate a recipe. ``overrides``: {"phase.key" or "key": value} applied before validation."""
    p = paths.resolve_path(path)
    if p is None or not p.exists():
        raise ConfigError(f"config file {path!r} not found (looked at {p}); recipes live in configs/, "
                          f"e.g. --config configs/demo.yaml")
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: a recipe is a mapping of keys, got {type(raw).__name__}")
    for k, v in (overrides or {}).items():
        _apply_override(raw, k, v)
    return validate(raw, p)


def _apply_override(raw: dict, key: str, value):
    if key.startswith("ablation."):                        # -p ablation.seeds=[0,1,2]
        raw["ablation"] = {**(raw.get("ablation") or {}), key.split(".", 1)[1]: value}
    elif "." in key:
        phase, sub = key.split(".", 1)
        raw.setdefault("phases", {}).setdefault(phase, {})[sub] = value
    else:
        raw[key] = value


def validate(raw: dict, p: Path) -> Recipe:
    for k, v in raw.items():
        if k not in TOP_LEVEL:
            raise ConfigError(f"{p}: unknown key {k!r}; allowed top-level keys: {', '.join(TOP_LEVEL)}")
        if v is not None and not isinstance(v, TOP_LEVEL[k]) or isinstance(v, bool) and TOP_LEVEL[k] is int:
            raise ConfigError(f"{p}: key {k!r} must be {TOP_LEVEL[k].__name__}, got {type(v).__name__} {v!r}")
    if not raw.get("model"):
        raise ConfigError(f"{p}: key 'model' is required (e.g. model: embedded:smollm2-135m-instruct)")
    if raw.get("device", "auto") not in ("auto", "cpu", "cuda") and not str(raw["device"]).startswith("cuda:"):
        raise ConfigError(f"{p}: key 'device' must be auto, cpu or cuda[:N], got {raw['device']!r}")
    name = raw.get("name") or p.stem
    phases = raw.get("phases") or {}
    for ph, block in phases.items():
        if ph not in PHASE_ORDER:
            raise ConfigError(f"{p}: unknown phase 'phases.{ph}'; phases are {', '.join(PHASE_ORDER)}")
        if block is None:
            phases[ph] = block = {}
        if not isinstance(block, dict):
            raise ConfigError(f"{p}: 'phases.{ph}' must be a mapping of notebook parameters")
        for k in block:
            if k in params.COMMON:
                raise ConfigError(f"{p}: 'phases.{ph}.{k}' is set once at the top level of the recipe, not per phase")
        block.update(params.coerce(ph, block))
        phases[ph] = block
        try:
            params.check(ph, block, where="key", prefix=f"phases.{ph}.")
        except params.ParameterError as e:
            raise ConfigError(f"{p}: {e}") from None
        _check_files(p, ph, block)
        key_env = block.get("api_key_env")
        if key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key_env)):
            raise ConfigError(f"{p}: 'phases.{ph}.api_key_env' must be the NAME of an environment variable "
                              f"(e.g. OPENAI_API_KEY), not a key; put the key in that variable and remove it from the recipe")
    _check_model(p, raw["model"])
    if "data" in phases:
        _check_data_references(p, phases["data"])
        _check_sources(p, phases["data"])
    _check_translator(p, phases.get("translation") or {})
    if not isinstance(raw.get("seed", 0) or 0, int) or (raw.get("seed") or 0) < 0:
        raise ConfigError(f"{p}: key 'seed' must be a whole number >= 0, e.g. seed: 0")
    if raw.get("threads") is not None and raw["threads"] < 0:
        raise ConfigError(f"{p}: key 'threads' must be 0 (torch default) or a positive number, got {raw['threads']}")
    ablation = None
    if raw.get("ablation") is not None:
        try:
            ablation = ablation_settings.check_block(raw["ablation"], p, phases)
        except ablation_settings.AblationSettingsError as e:
            raise ConfigError(str(e)) from None
    return Recipe(path=p, name=name, model=raw["model"], device=raw.get("device") or "auto",
                  seed=raw.get("seed", 0) or 0, run_dir=raw.get("run_dir") or f"outputs/{name}",
                  cache_dir=raw.get("cache_dir"), description=raw.get("description") or "", phases=phases,
                  threads=raw.get("threads"), ablation=ablation)


# inputs a user names that no earlier phase writes (an empty value, or "none", means not used)
INPUT_PATHS = {"data": ("classifier_model",), "evaluation": ("adapter", "merged_dir", "data_dir")}


def _check_files(p: Path, phase: str, block: dict):
    """Parameters named *_file / *_files, and the other inputs in INPUT_PATHS, must exist (empty = not used)."""
    for k, v in block.items():
        named = k.endswith("_file") or k.endswith("_files") or k in INPUT_PATHS.get(phase, ())
        if not named or not v or v == "none":
            continue
        for item in (v if isinstance(v, list) else [v]):
            if isinstance(item, str) and _looks_local(item) and not paths.resolve_path(item).exists():
                raise ConfigError(f"{p}: 'phases.{phase}.{k}' points to {item!r}, which does not exist "
                                  f"(relative paths are taken from {paths.project_root()})")


def _check_data_references(p: Path, block: dict) -> None:
    """Names that must agree across keys of phase 1 (sources, weights, classifier pool), checked before any
    document is read. Defaults written for the embedded sources are narrowed to the sources the recipe gives,
    so a recipe that brings its own corpus through ``sources`` alone works."""
    from mathcode.data import source_roles
    try:
        block.update(source_roles.resolve_data_keys(block, explicit=set(block)))
    except source_roles.DataPlanError as e:
        raise ConfigError(f"{p}: {e}") from None


SOURCE_KEYS = ("sources", "classifier_positives", "classifier_negatives", "classify_sources")


def _check_sources(p: Path, block: dict) -> None:
    """Every local source (jsonl/parquet/folder) exists and has the text field it names, checked here rather than
    when phase 1 reaches it, because a missing file or a misspelt ``#field`` is the commonest first stumble."""
    from mathcode.data.sources import SourceError, check_readable
    for key in SOURCE_KEYS:
        for i, spec in enumerate(block.get(key) or []):
            try:
                check_readable(spec)
            except SourceError as e:
                raise ConfigError(f"{p}: 'phases.data.{key}[{i}]': {e}") from None


def _check_translator(p: Path, block: dict) -> None:
    """A translator loaded locally (hf, vllm, llamacpp backends) must be a resolvable spec; a served model name
    (openai backend) is the server's business."""
    spec = block.get("translator_model")
    if not spec or block.get("backend", "hf") == "openai":
        return
    try:
        _check_model(p, spec)
    except ConfigError as e:
        raise ConfigError(str(e).replace("key 'model'", "key 'phases.translation.translator_model'")) from None
    if not spec.startswith(("embedded:", ".", "/", "~")) and not _HUB_ID.fullmatch(spec):
        raise ConfigError(f"{p}: key 'phases.translation.translator_model': {spec!r} is neither embedded:NAME, a "
                          f"local folder nor a Hub id OWNER/NAME (e.g. Qwen/Qwen2.5-Coder-7B-Instruct)")


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def _looks_local(s: str) -> bool:
    return not s.startswith(("hf://", "http://", "https://")) and "://" not in s


def _check_model(p: Path, spec: str):
    if spec.startswith("embedded:"):
        from mathcode.models import EMBEDDED
        if spec.split(":", 1)[1] not in EMBEDDED:
            raise ConfigError(f"{p}: key 'model': unknown embedded model {spec!r}; known: "
                              + ", ".join(f"embedded:{k}" for k in EMBEDDED))
    elif spec.startswith((".", "/", "~")):
        if not paths.resolve_path(spec).exists():
            raise ConfigError(f"{p}: key 'model': folder {spec!r} does not exist")
    elif not _HUB_ID.fullmatch(spec):
        raise ConfigError(f"{p}: key 'model': {spec!r} is neither embedded:NAME, a local folder (./path or /path) "
                          f"nor a Hugging Face id OWNER/NAME (e.g. meta-llama/Meta-Llama-3-8B)")
