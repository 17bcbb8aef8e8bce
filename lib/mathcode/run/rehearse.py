"""A rehearsal of any recipe on CPU: every phase of the recipe at toy scale through the same code.

``python -m mathcode run --config configs/one-gpu-8b.yaml --rehearse`` proves a GPU recipe's wiring (its keys, its
sources' roles, its backends' parameters, the ablation's arms) in minutes on a laptop before a GPU hour is spent.
The rehearsal is the recipe's own settings with overrides applied through the normal override path
(``config.load(path, overrides)``), so it is validated exactly like the real run; what it replaces:

* the model (and a locally loaded translator) -> a tiny randomly initialised model of the same architecture
  (``model_type`` read from a local config when one is cached, else guessed from the model id, else the embedded
  SmolLM2's ``llama``), with the embedded SmolLM2 tokenizer, cached per architecture;
* ``device: cuda`` -> ``cpu``; the ``vllm`` backend is KEPT where vLLM is installed (``make install`` puts its CPU
  build next to the kit), so the rehearsal runs the engine the GPU run will use, on the tiny model; only where vLLM
  cannot be imported does it fall back to the transformers (``hf``) backend, and ``rehearsal.json`` says which
  (``engines``); an OpenAI-server backend -> ``hf`` (no server is started in a rehearsal);
* every ``hub:`` source (unreachable offline) -> a small local JSONL stand-in of the same role (classifier pool,
  positive, negative, plain corpus) named after the Hub dataset, renamed consistently in every key that names it;
* sizes -> a handful of documents, passages, steps, items and tokens (a value given with ``-p`` wins over a toy size).

It runs into its own folder (default ``outputs/<name>-rehearsal``, never the recipe's run_dir) and writes
``rehearsal.json`` there: every replacement with its reason. The report says it is a rehearsal. Nothing a rehearsal
measures (accuracy, loss, yield, time) says anything about the real run: the model is random.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mathcode import paths

REHEARSAL_FILE = "rehearsal.json"
FALLBACK_ARCH = "llama"                    # the embedded SmolLM2's architecture
TOKENIZER_SPEC = "embedded:smollm2-135m-instruct"

# model id fragment -> transformers model_type; first match wins (more specific names first)
ARCH_PATTERNS: list[tuple[str, str]] = [
    (r"qwen3", "qwen3"), (r"qwen2|qwen-?2|qwq|qwen", "qwen2"),
    (r"mixtral", "mixtral"), (r"mistral|mathstral|codestral|ministral", "mistral"),
    (r"gemma-?3", "gemma3_text"), (r"gemma-?2", "gemma2"), (r"gemma", "gemma"),
    (r"phi-?3|phi-?4", "phi3"), (r"phi", "phi"),
    (r"olmo-?2", "olmo2"), (r"olmo", "olmo"),
    (r"starcoder2", "starcoder2"), (r"gpt2", "gpt2"),
    (r"llama|llemma|smollm|deepseek-math|deepseek-coder|tinyllama|vicuna|mathcoder", "llama"),
]

# Tiny shapes: grouped-query attention like the 8B models (4 heads, 2 KV heads), 2 layers, 128 wide; positions long
# enough for 4-shot MATH prompts. Heads of 32: the smallest head size vLLM's CPU attention supports (a rehearsal
# with vLLM installed runs these models on it). Names that a model_type does not know are ignored by transformers.
TINY = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 4096}


class RehearsalError(ValueError):
    """A rehearsal that cannot be set up (e.g. it would write into the recipe's real run_dir)."""


# --- the architecture -------------------------------------------------------------------------------------
def architecture(spec: str, cache_dir=None) -> tuple[str, str]:
    """(model_type, how it was found) for a model spec, without any network access."""
    spec = str(spec or "").strip()
    if spec.startswith("embedded:"):
        from mathcode.models import EMBEDDED
        info = EMBEDDED.get(spec.split(":", 1)[1], {})
        folder = paths.cache_dir(cache_dir) / "models" / spec.split(":", 1)[1]
        mt = _config_type(folder / "config.json")
        if mt:
            return mt, f"config.json of the converted embedded model ({folder})"
        return guess_from_name(info.get("upstream", spec))[0], f"the embedded model's upstream id {info.get('upstream')!r}"
    local = paths.resolve_path(spec) if spec else None
    if local is not None and local.exists():
        mt = _config_type(local / "config.json" if local.is_dir() else local)
        if mt:
            return mt, f"config.json in the local folder {local}"
    if spec and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", spec):
        try:
            from huggingface_hub import hf_hub_download
            f = hf_hub_download(spec, "config.json", local_files_only=True)
            mt = _config_type(Path(f))
            if mt:
                return mt, f"config.json of {spec} in the local Hugging Face cache"
        except Exception:
            pass
    return guess_from_name(spec)


def guess_from_name(spec: str) -> tuple[str, str]:
    name = str(spec).lower()
    for pat, mt in ARCH_PATTERNS:
        if re.search(pat, name):
            return mt, f"guessed from the model id {spec!r} (no local config; offline)"
    return FALLBACK_ARCH, (f"no local config and no known architecture in the id {spec!r}: the embedded SmolLM2's "
                           f"architecture ({FALLBACK_ARCH})")


def _config_type(f: Path) -> str | None:
    try:
        return json.loads(Path(f).read_text()).get("model_type") or None
    except (OSError, ValueError):
        return None


def tiny_config(model_type: str, tokenizer):
    """A tiny transformers config of ``model_type`` whose vocabulary is the tokenizer's."""
    from transformers import AutoConfig
    kw = dict(TINY)
    kw.update(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
              pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    if model_type == "gpt2":
        kw = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 4096, "vocab_size": len(tokenizer),
              "bos_token_id": kw["bos_token_id"], "eos_token_id": kw["eos_token_id"]}
    cfg = AutoConfig.for_model(model_type, **kw)
    if hasattr(cfg, "sliding_window") and getattr(cfg, "sliding_window", None):
        cfg.sliding_window = 4096
    return cfg


def tiny_model(model_type: str, cache_dir=None) -> Path:
    """A tiny randomly initialised model of ``model_type`` (seed 0) with the embedded SmolLM2 tokenizer, saved once
    into the model cache (``models/rehearsal-<model_type>-<hash>``, process-safe) and returned as a folder."""
    import transformers
    from mathcode.models import _file_lock, resolve
    key = hashlib.sha256(json.dumps([model_type, TINY, transformers.__version__, TOKENIZER_SPEC],
                                    sort_keys=True).encode()).hexdigest()[:10]
    root = paths.cache_dir(cache_dir) / "models"
    out = root / f"rehearsal-{model_type}-{key}"
    if (out / "mathcode_model.json").exists():
        return out
    with _file_lock(root / f".rehearsal-{model_type}.lock"):
        if (out / "mathcode_model.json").exists():
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(resolve(TOKENIZER_SPEC, cache_dir).path)
        cfg = tiny_config(model_type, tok)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        model.generation_config.do_sample = False
        model.generation_config.pad_token_id = cfg.pad_token_id
        tmp = root / f".rehearsal-{model_type}-{key}.{os.getpid()}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
            (tmp / "mathcode_model.json").write_text(json.dumps({
                "spec": "rehearsal", "model_type": model_type, "shapes": TINY, "tokenizer": TOKENIZER_SPEC,
                "parameters": sum(p.numel() for p in model.parameters()),
                "note": "randomly initialised (seed 0) for a rehearsal: it proves wiring, it knows nothing"}, indent=1))
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


# --- the sources ------------------------------------------------------------------------------------------
# What stands in for a Hub source, by the role the recipe gives it (embedded sources, all offline).
STAND_INS = {
    "pool": (["champ_concepts", "stdlib_prose"], "math and non-math documents mixed, so the classifier accepts some "
                                                 "and rejects some"),
    "positive": (["champ_concepts"], "trusted math text (textbook definitions and theorems)"),
    "negative": (["stdlib_prose"], "non-math prose"),
    "corpus": (["champ_concepts"], "math text"),
}
# the pool's documents come after the ones positives and negatives take: no document is in two roles
POOL_SKIP = {"champ_concepts": 1, "stdlib_prose": 1}     # in units of n_docs


def source_role(spec: str, data: dict) -> str:
    from mathcode.data.sources import parse_spec
    name = parse_spec(spec).name
    named = lambda key: any(x == spec or x == name for x in (data.get(key) or []))   # noqa: E731
    if named("classify_sources"):
        return "pool"
    if named("classifier_positives"):
        return "positive"
    if named("classifier_negatives") and spec not in (data.get("sources") or []):
        return "negative"
    return "corpus"


def stand_in(spec: str, role: str, n_docs: int, cache_dir=None) -> Path:
    """A JSONL of ``n_docs`` documents standing in for Hub source ``spec`` in ``role``; its file stem is the Hub
    dataset's name, so the source is named ``jsonl:<NAME>`` where the recipe said ``hub:<NAME>``."""
    from mathcode.data.sources import parse_spec
    from mathcode.embedded import iter_embedded
    name = parse_spec(spec).target.split("/")[-1]
    tag = hashlib.sha256(json.dumps([STAND_INS[role][0], POOL_SKIP]).encode()).hexdigest()[:8]
    out = paths.cache_dir(cache_dir) / "rehearsal" / "sources" / f"{role}-{n_docs}-{tag}" / f"{name}.jsonl"
    if out.is_file() and out.stat().st_size:
        return out
    embedded, _ = STAND_INS[role]
    per = -(-n_docs // len(embedded))
    groups = []
    for e in embedded:
        skip = POOL_SKIP.get(e, 0) * n_docs if role == "pool" else 0
        groups.append([{"id": f"{e}-{d['id']}", "text": d["text"],
                        "meta": {"stand_in_for": spec, "role": role, "from": f"embedded:{e}"}}
                       for i, d in enumerate(iter_embedded(e, max_docs=skip + per, seed=0)) if i >= skip])
    rows = [g[i] for i in range(per) for g in groups if i < len(g)]     # interleaved: math, prose, math, ...
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.partial")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:n_docs]))
    os.replace(tmp, out)
    return out


def substitute_sources(data: dict, n_docs: int, cache_dir=None) -> tuple[dict, list[dict]]:
    """Replace every ``hub:`` source of a data block by its local stand-in, renaming it in every key that refers to
    it (sources, classify_sources, classifier_positives/negatives, source_weights/source_budgets keys).
    Returns (the changed keys, one record per substituted source)."""
    from mathcode.data.sources import parse_spec
    specs = []
    for key in ("sources", "classify_sources", "classifier_positives", "classifier_negatives"):
        for s in data.get(key) or []:
            if isinstance(s, str) and s.strip().lower().startswith("hub:") and s not in specs:
                specs.append(s)
    if not specs:
        return {}, []
    new_spec, new_name, records = {}, {}, []
    for s in specs:
        role = source_role(s, data)
        f = stand_in(s, role, n_docs, cache_dir)
        new_spec[s] = f"jsonl:{f}#text"
        new_name[parse_spec(s).name] = parse_spec(new_spec[s]).name
        records.append({"key": "data.sources", "was": s, "now": new_spec[s], "name_was": parse_spec(s).name,
                        "name_now": new_name[parse_spec(s).name], "role": role,
                        "reason": "Hub datasets cannot be streamed offline; stand-in: " + STAND_INS[role][1]
                                  + " from " + ", ".join(f"embedded:{e}" for e in STAND_INS[role][0])})
    out = {}
    for key in ("sources", "classify_sources", "classifier_positives", "classifier_negatives"):
        if key in data:
            out[key] = [new_spec.get(s, new_name.get(s, s)) for s in data[key] or []]
    for key in ("source_weights", "source_budgets"):
        if data.get(key):
            out[key] = {new_name.get(k, k): v for k, v in data[key].items()}
    return {k: v for k, v in out.items() if v != data.get(k)}, records


# --- the plan ---------------------------------------------------------------------------------------------
# Toy sizes per phase: applied only where the recipe's phase block exists or the key matters, and never over a
# value the user passed with -p.
SCALE = {
    "data": {"max_docs_per_source": 20, "max_negatives": 20, "token_budget": 6000, "dedup_num_perm": 32},
    "translation": {"max_passages": 2, "max_passages_per_doc": 1, "max_new_tokens": 32, "batch_size": 2,
                    "sandbox_workers": 1, "docs_per_chunk": 2, "snippet_timeout": 5.0, "request_timeout": 60.0},
    "pretraining": {"block_size": 64, "max_steps": 2, "save_steps": 2, "eval_steps": 2, "max_heldout_blocks": 2,
                    "max_documents": 0},
    "evaluation": {"limit": 2, "limits": {}, "max_new_tokens": 8, "batch_size": 2, "nll_limit": 2, "pal_limit": 1},
}
REMOTE_BACKENDS = {"vllm": "vLLM is not installed here (`make install` puts vLLM's CPU build in the venv)",
                   "openai": "an OpenAI-compatible server is not started in a rehearsal"}
# KV cache of vLLM's CPU engine in a rehearsal (GiB, vLLM's VLLM_CPU_KVCACHE_SPACE): the tiny model needs little
REHEARSAL_KVCACHE_GIB = "1"


def vllm_available() -> bool:
    from mathcode.generation.vllm import vllm_available as available
    return available()


def engine_choice(phase: str, backend: str, have_vllm: bool) -> tuple[str, dict]:
    """(backend the rehearsal runs, record for rehearsal.json's ``engines``) for a phase's backend."""
    if backend == "vllm" and have_vllm:
        return "vllm", {"phase": phase, "recipe": "vllm", "rehearsal": "vllm", "kept": True,
                        "reason": "vLLM is installed: the rehearsal runs the engine the GPU run will use (its CPU "
                                  "build), on the tiny model"}
    if backend in REMOTE_BACKENDS:
        return "hf", {"phase": phase, "recipe": backend, "rehearsal": "hf", "kept": False,
                      "reason": REMOTE_BACKENDS[backend]}
    return backend, {"phase": phase, "recipe": backend, "rehearsal": backend, "kept": True, "reason": "runs on CPU"}


@dataclass
class Rehearsal:
    config: Path
    name: str
    run_dir: Path
    real_run_dir: Path
    overrides: dict                                    # everything passed to config.load (user -p values included)
    substitutions: list = field(default_factory=list)  # what was replaced and why
    scale: dict = field(default_factory=dict)          # toy sizes: key -> {"was", "now"}
    notes: list = field(default_factory=list)
    engines: list = field(default_factory=list)        # per phase: the recipe's backend, the one rehearsed, why

    def uses_vllm(self) -> bool:
        return any(e["rehearsal"] == "vllm" for e in self.engines)

    def record(self) -> dict:
        return {"rehearsal": True, "config": str(self.config), "name": self.name, "run_dir": str(self.run_dir),
                "real_run_dir": str(self.real_run_dir), "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "what_it_proves": "every phase of the recipe runs through the same code and the same validation at "
                                  "toy scale; nothing it measures says anything about the real run (random model)",
                "substitutions": self.substitutions, "engines": self.engines, "scale": self.scale,
                "notes": self.notes,
                "overrides": self.overrides}


def _raw(config_path, overrides: dict | None) -> tuple[Path, dict]:
    """The recipe as written plus the user's overrides (the rehearsal plans against what would really run)."""
    from mathcode.run import config as _config
    p = paths.resolve_path(config_path)
    if p is None or not p.exists():
        raise _config.ConfigError(f"config file {config_path!r} not found (looked at {p})")
    raw = yaml.safe_load(p.read_text()) or {}
    if not isinstance(raw, dict):
        raise _config.ConfigError(f"{p}: a recipe is a mapping of keys")
    for k, v in (overrides or {}).items():
        _config._apply_override(raw, k, v)
    return p, raw


@dataclass
class PhaseEdits:
    """What a rehearsal changes in one phase of a recipe (or, for ``phase=""``, in its top-level keys).

    ``replacements``: what cannot run here, replaced (key -> value), each with its record in ``substitutions``
    unless ``substitute_sources`` recorded it per source; ``scale``: toy sizes (key -> {"was", "now"}).
    ``edits()`` is both as one dict of recipe overrides."""
    phase: str
    replacements: dict = field(default_factory=dict)
    substitutions: list = field(default_factory=list)
    scale: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    engines: list = field(default_factory=list)

    def sub(self, key, was, now, reason):
        self.replacements[key] = now
        self.substitutions.append({"key": key, "was": was, "now": now, "reason": reason})

    def edits(self) -> dict:
        return {**self.replacements, **{k: v["now"] for k, v in self.scale.items()}}


class TinyModels:
    """Tiny stand-in models by architecture, each built once per plan (``tiny_model`` caches them on disk)."""

    def __init__(self, cache_dir=None):
        self.cache_dir, self.folders = cache_dir, {}

    def __call__(self, spec: str) -> tuple[str, str, str]:
        """(model_type, how it was found, folder of its tiny model) for a model spec."""
        mt, how = architecture(spec, self.cache_dir)
        if mt not in self.folders:
            self.folders[mt] = str(tiny_model(mt, self.cache_dir))
        return mt, how, self.folders[mt]


def _local(spec: str) -> bool:
    return spec.startswith(("embedded:", ".", "/", "~"))


def toy_sizes(phase: str, raw: dict, user: dict) -> dict:
    """Toy sizes of one phase (key -> {"was", "now"}): never over a -p value, never where the ablation sets the
    key, never over a value that is already toy-sized."""
    from mathcode.run import params
    known = params.defaults(phase)
    block = (raw.get("phases") or {}).get(phase) or {}
    ab = raw.get("ablation") or {}
    out = {}
    for k, v in SCALE[phase].items():
        if k not in known or f"{phase}.{k}" in user:
            continue
        if phase == "pretraining" and k == "max_steps" and ab.get("epochs"):
            continue                                  # each arm's max_steps comes from ablation.epochs
        was = block.get(k, known[k])
        if k == "max_documents" or (isinstance(was, (int, float)) and not isinstance(was, bool)
                                    and isinstance(v, (int, float)) and 0 < was <= v):
            continue                                  # already toy-sized: keep the recipe's value
        if was == v:
            continue
        out[f"{phase}.{k}"] = {"was": was, "now": v}
    return out


def top_level_edits(raw: dict, user: dict, tiny: TinyModels) -> PhaseEdits:
    """The model (a tiny one of its architecture), the device (CPU) and the thread count (1 unless set)."""
    e = PhaseEdits("")
    model = raw.get("model") or ""
    mt, how, folder = tiny(model)
    e.sub("model", model, folder, f"a tiny randomly initialised {mt} model (architecture {how}; 2 layers, hidden 64, "
                                  f"the embedded SmolLM2 tokenizer): the real weights are not used in a rehearsal")
    dev = str(raw.get("device") or "auto")
    if dev != "cpu":
        e.sub("device", dev, "cpu", "a rehearsal runs on CPU")
    if raw.get("threads") is None and "threads" not in user:
        e.scale["threads"] = {"was": None, "now": 1}
    return e


def data_edits(raw: dict, user: dict, cache_dir=None) -> PhaseEdits:
    """Phase 1: every ``hub:`` source -> a local stand-in of its role; Hub decontamination benchmarks -> the local
    test sets; toy sizes."""
    from mathcode.run import params
    e = PhaseEdits("data")
    data = {**params.defaults("data"), **((raw.get("phases") or {}).get("data") or {})}
    changed, records = substitute_sources(data, SCALE["data"]["max_docs_per_source"], cache_dir)
    for k, v in changed.items():
        e.replacements[f"data.{k}"] = v
    e.substitutions.extend(records)
    dec = data.get("decontam_benchmarks")
    if isinstance(dec, list) and any(str(x).startswith("hub:") for x in dec):
        e.sub("data.decontam_benchmarks", dec, "default", "Hub benchmarks are unreachable offline; the local test sets")
    e.scale = toy_sizes("data", raw, user)
    return e


def translation_edits(raw: dict, user: dict, tiny: TinyModels, have_vllm: bool) -> PhaseEdits:
    """Phase 2: a backend that cannot run here -> ``hf``; a Hub (or served) translator -> a tiny model of its
    architecture; toy sizes."""
    from mathcode.run import params
    e = PhaseEdits("translation")
    tr = (raw.get("phases") or {}).get("translation") or {}
    backend = tr.get("backend", params.defaults("translation").get("backend"))
    tspec = tr.get("translator_model") or ""
    now, rec = engine_choice("translation", backend, have_vllm)
    e.engines.append(rec)
    if now != backend:
        e.sub("translation.backend", backend, now, f"{REMOTE_BACKENDS[backend]}; the transformers backend runs the "
                                                   f"same translation steps on CPU")
    if backend in REMOTE_BACKENDS:
        if tspec:
            tmt, thow, tfolder = tiny(tspec)
            e.sub("translation.translator_model", tspec, tfolder,
                  f"a tiny randomly initialised {tmt} model (architecture {thow}): it writes no verifiable code, so "
                  f"expect 0 verified blocks — the steps still run")
    elif tspec and not _local(tspec):
        tmt, thow, tfolder = tiny(tspec)
        e.sub("translation.translator_model", tspec, tfolder, f"a Hub model is not loaded in a rehearsal: a tiny "
                                                              f"{tmt} model ({thow})")
    if "translation.translator_model" in e.replacements or (not tspec and backend in REMOTE_BACKENDS):
        e.notes.append("the tiny translator writes no verifiable code: translated.jsonl stays empty, so a "
                       "basic+translated mixture trains on basic only and the path of verified code into phase 3 "
                       "is run with no rows")
    if tr.get("quantize") == "nf4":
        e.notes.append("translation.quantize nf4 kept (bitsandbytes runs 4-bit on CPU)")
    e.scale = toy_sizes("translation", raw, user)
    return e


def pretraining_edits(raw: dict, user: dict) -> PhaseEdits:
    """Phase 3: only toy sizes (optimizer, quantization, LoRA, batch and scheduler are kept; notes say so)."""
    from mathcode.run import params
    e = PhaseEdits("pretraining")
    pre = (raw.get("phases") or {}).get("pretraining") or {}
    opt = pre.get("optimizer", "auto")
    if opt.startswith("paged_"):
        e.notes.append(f"pretraining.optimizer {opt} kept: bitsandbytes runs it on CPU without paging (it warns "
                       f"'Paged optimizers are not supported on CPU'); the tiny model's LoRA matrices have under 4096 "
                       f"elements, for which bitsandbytes keeps 32-bit optimizer state, so the 8-bit state is not "
                       f"exercised")
    if pre.get("quantize", params.defaults("pretraining").get("quantize")) == "nf4":
        e.notes.append("pretraining.quantize nf4 kept: real bitsandbytes 4-bit layers on CPU")
    e.scale = toy_sizes("pretraining", raw, user)
    return e


def evaluation_edits(raw: dict, user: dict, tiny: TinyModels, have_vllm: bool) -> PhaseEdits:
    """Phase 4: a backend that cannot run here -> ``hf``; Hub benchmarks -> the local test sets; extra Hub models ->
    tiny models of their architectures; toy sizes."""
    from mathcode.run import params
    e = PhaseEdits("evaluation")
    ev = (raw.get("phases") or {}).get("evaluation") or {}
    eb = ev.get("backend", params.defaults("evaluation").get("backend"))
    now, rec = engine_choice("evaluation", eb, have_vllm)
    e.engines.append(rec)
    if now != eb:
        e.sub("evaluation.backend", eb, now, f"{REMOTE_BACKENDS[eb]}; the transformers backend runs the same prompts, "
                                             f"extraction and scoring (and the NLL probe) on CPU")
    if ev.get("source") == "hub":
        e.sub("evaluation.source", "hub", "local", "Hub benchmarks are unreachable offline")
    extra_models = ev.get("models") or []
    if extra_models:
        new = []
        for m in extra_models:
            label, _, rest = str(m).partition("=")
            spec, at, adapter = rest.partition("@")
            if spec and not _local(spec):
                _, _, f = tiny(spec)
                new.append(f"{label}={f}{at}{adapter}")
            else:
                new.append(m)
        if new != extra_models:
            e.sub("evaluation.models", extra_models, new, "extra Hub models are replaced by tiny models of their "
                                                          "architectures")
    e.scale = toy_sizes("evaluation", raw, user)
    return e


def ablation_edits(raw: dict, user: dict) -> PhaseEdits:
    """The ablation: every arm, the first seed only unless ``-p ablation.seeds`` says otherwise."""
    e = PhaseEdits("ablation")
    ab = raw.get("ablation") or {}
    if not ab:
        return e
    from mathcode.run.ablation_settings import DEFAULTS
    seeds = list(ab.get("seeds") or DEFAULTS["seeds"])
    arms = ", ".join(ab.get("arms") or DEFAULTS["arms"])
    if len(seeds) > 1 and "ablation.seeds" not in user:
        e.scale["ablation.seeds"] = {"was": seeds, "now": seeds[:1]}
        e.notes.append(f"ablation: every arm ({arms}) is rehearsed, with the first seed only ({seeds[0]} of {seeds}): "
                       f"another seed runs the same code again and each costs ~1 min per arm on 2 CPU cores; "
                       f"-p ablation.seeds={json.dumps(seeds).replace(' ', '')} rehearses them all")
    else:
        e.notes.append(f"ablation: every arm ({arms}) and seed ({seeds}) is rehearsed")
    if ab.get("epochs"):
        e.notes.append("ablation.epochs kept: each arm run's max_steps is one pass over its toy corpus")
    return e


def plan(config_path, overrides: dict | None = None, run_dir=None, cache_dir=None) -> Rehearsal:
    """Work out (and prepare: tiny models, stand-in sources) the rehearsal of a recipe; runs no phase.

    The recipe-wide edits, then one ``PhaseEdits`` per phase (``data_edits`` ... ``evaluation_edits``), then the
    ablation's, composed in that order: substitutions first, toy sizes after them."""
    from mathcode.run import params
    user = dict(overrides or {})
    p, raw = _raw(config_path, user)
    cache_dir = cache_dir or raw.get("cache_dir")
    name = str(raw.get("name") or p.stem)
    real = paths.resolve_path(raw.get("run_dir") or f"outputs/{name}")
    rdir = paths.resolve_path(run_dir) if run_dir else paths.resolve_path(f"outputs/{name}-rehearsal")
    if rdir == real:
        raise RehearsalError(f"a rehearsal never writes into the recipe's run_dir ({real}); give another --run-dir "
                             f"(default: outputs/{name}-rehearsal)")
    phases = raw.get("phases") or {}
    tiny = TinyModels(cache_dir)
    top = top_level_edits(raw, user, tiny)
    data = data_edits(raw, user, cache_dir)
    backend = (phases.get("translation") or {}).get("backend", params.defaults("translation").get("backend"))
    have_vllm = vllm_available() if "vllm" in (backend, (phases.get("evaluation") or {}).get("backend")) else False
    per_phase = [data, translation_edits(raw, user, tiny, have_vllm), pretraining_edits(raw, user),
                 evaluation_edits(raw, user, tiny, have_vllm)]
    ablation = ablation_edits(raw, user)
    parts = [top, *per_phase, ablation]
    engines = [r for e in per_phase for r in e.engines]
    # the recipe-wide edits, every phase's substitutions, then the toy sizes (phase order, the ablation's last)
    over = {"name": f"{name}-rehearsal", "run_dir": str(rdir), **top.edits()}
    for e in per_phase:
        over.update(e.replacements)
    scale = {}
    for e in parts:
        scale.update(e.scale)
        over.update({k: v["now"] for k, v in e.scale.items()})
    notes = [n for e in (top, *per_phase) for n in e.notes]
    if any(e["rehearsal"] == "vllm" for e in engines):
        notes.append("vLLM kept: its CPU engine runs the tiny model (KV cache VLLM_CPU_KVCACHE_SPACE="
                     f"{os.environ.get('VLLM_CPU_KVCACHE_SPACE', REHEARSAL_KVCACHE_GIB)} GiB); evaluation's "
                     "adapter is applied as a LoRARequest, as on the GPU")
    pre = phases.get("pretraining") or {}
    pre_batch = int(pre.get("per_device_batch_size", params.defaults("pretraining")["per_device_batch_size"]))
    accum = int(pre.get("grad_accum", params.defaults("pretraining")["grad_accum"]))
    notes.append(f"pretraining keeps batch {pre_batch} x grad_accum {accum}, LoRA r/targets, gradient checkpointing "
                 f"and the scheduler; evaluation keeps the benchmarks, shots and protocol")
    notes += ablation.notes
    # the user's -p values win over toy sizes (which skip them above); substitutions (what cannot run here) win
    final = {**user, **over}
    return Rehearsal(config=p, name=name, run_dir=rdir, real_run_dir=real, overrides=final,
                     substitutions=[s for e in parts for s in e.substitutions], scale=scale, notes=notes,
                     engines=engines)


def load(config_path, overrides: dict | None = None, run_dir=None):
    """(validated rehearsal recipe, Rehearsal): the recipe with the rehearsal's overrides, through ``config.load``."""
    from mathcode.run import config as _config
    reh = plan(config_path, overrides, run_dir)
    return _config.load(config_path, reh.overrides), reh


def run(config_path, run_dir=None, phases=None, force: bool = False, overrides: dict | None = None,
        report: bool = True, progress: bool = True) -> dict:
    """Rehearse a recipe: ``runner.run`` with the rehearsal's overrides, into the rehearsal folder."""
    from mathcode.run import runner
    from mathcode.util import write_json
    recipe, reh = load(config_path, overrides, run_dir)        # validated before anything is written
    reh.run_dir.mkdir(parents=True, exist_ok=True)
    if reh.uses_vllm():                      # the phases' kernels inherit it; a user's own value wins
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", REHEARSAL_KVCACHE_GIB)
    write_json(reh.run_dir / REHEARSAL_FILE, reh.record())
    print(f"[mathcode] rehearsal of {reh.config} -> {reh.run_dir} (toy scale, random tiny model; "
          f"{len(reh.substitutions)} substitutions in {REHEARSAL_FILE})", flush=True)
    for s in reh.substitutions:
        print(f"[mathcode]   {s['key']}: {s['was']} -> {s['now']}", flush=True)
    for e in reh.engines:
        print(f"[mathcode]   {e['phase']} engine: {e['rehearsal']} (recipe: {e['recipe']}; {e['reason']})", flush=True)
    return runner.run(config_path, run_dir=reh.run_dir, phases=phases, force=force, overrides=reh.overrides,
                      report=report, progress=progress)


def describe(reh: Rehearsal) -> list[str]:
    """Lines for ``validate --rehearse``."""
    out = [f"rehearsal into {reh.run_dir} (the recipe's run_dir {reh.real_run_dir} is not touched)"]
    out += [f"  replaces {s['key']}: {s['was']} -> {s['now']} ({s['reason']})" for s in reh.substitutions]
    out += [f"  {e['phase']} engine: {e['rehearsal']} (recipe: {e['recipe']}; {e['reason']})" for e in reh.engines]
    out += [f"  toy size {k}: {v['was']} -> {v['now']}" for k, v in reh.scale.items()]
    out += [f"  note: {n}" for n in reh.notes]
    return out

