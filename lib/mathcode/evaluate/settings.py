"""Phase 4 settings: which models, benchmarks, protocol and backend — checked once, before an item is read or a
model is loaded.

Allowed values come from the phase's registries (``benchmarks.KNOWN``, ``protocols.PROTOCOLS``, the generation
backends), so a protocol or benchmark added there is accepted here and a misspelt one is refused by
``python -m mathcode validate`` rather than hours later when phase 4 starts.
"""
from __future__ import annotations

from dataclasses import dataclass

from mathcode import generation
from mathcode.evaluate import benchmarks as B
from mathcode.evaluate.protocols import PROTOCOLS
from mathcode.settings import NONNEG, POS, Choice, Members, Num, PhaseSettings, SettingsError, setting

MATH_SUBJECTS = ("Algebra", "Counting & Probability", "Geometry", "Intermediate Algebra", "Number Theory",
                 "Prealgebra", "Precalculus")


def _benchmarks() -> tuple:
    return tuple(B.KNOWN)


def _protocols() -> tuple:
    return tuple(PROTOCOLS)


def _backends() -> tuple:
    return tuple(sorted(generation.BACKENDS))


@dataclass(frozen=True)
class EvaluationSettings(PhaseSettings):
    PHASE = "evaluation"
    NOTEBOOK = "04_evaluation.ipynb"

    run_dir: str = setting("outputs/lab", 'run folder; reads 03_pretraining/adapter, writes 04_evaluation/')
    model: str = setting("embedded:smollm2-135m-instruct", 'base model spec (embedded:NAME, local folder, or Hub id)')
    seed: int = setting(0, 'seed for item sampling, bootstrap intervals and sampled decoding', NONNEG)
    device: str = setting("auto", "'auto' (CUDA if present), 'cpu' or 'cuda'")
    adapter: str = setting("", "adapter folder; empty uses phase 3's adapter in run_dir; none evaluates no adapter")
    quantize: str = setting("auto",
                            'base quantization: auto is as the adapter was trained (nf4 for QLoRA), or nf4, none',
                            Choice(("auto", "nf4", "none", ""), "auto evaluates the base as the adapter was trained"))
    merged_dir: str = setting("", 'also evaluate a merged export folder (phase 3 merged/); empty for none')
    models: list = setting([],
                           'extra models to compare, each as LABEL, then an equals sign, then SPEC, optionally '
                           '@ADAPTER_DIR')
    include_base: bool = setting(True, 'also evaluate the base model without adapter (the comparison baseline)')
    benchmarks: list = setting(["gsm8k", "math", "sat_math", "ocw", "mmlu_math"],
                               "known: gsm8k, math, sat_math, ocw, mmlu_math, gsm_symbolic_proxy",
                               Members(_benchmarks, nonempty=True, why="phase 4 evaluates at least one benchmark"))
    limit: int = setting(1, 'items per benchmark; -1 takes all', Num(-1, why="-1 takes every item"))
    limits: dict = setting({"gsm8k": 4}, 'per-benchmark item counts that override limit')
    sample: str = setting("first",
                          'first takes the first N items (as lm-eval --limit); random takes a seeded sample',
                          Choice(("first", "random")))
    math_levels: list = setting([],
                                'restrict MATH to these levels such as [1, 2]; empty keeps all',
                                Members((1, 2, 3, 4, 5), why="MATH difficulty levels"))
    math_subjects: list = setting([], 'restrict MATH to these subjects such as Algebra; empty keeps all')
    source: str = setting("local",
                          'local reads ../shared/data/benchmarks or data_dir; hub loads from Hugging Face (online)',
                          Choice(("local", "hub")))
    data_dir: str = setting("", 'folder with the benchmark JSONL files; empty uses ../shared/data/benchmarks')
    custom_benchmarks: list = setting([],
                                      'extra benchmarks: file paths, or dicts with file, name, fields, kind, rel_tol,'
                                      ' family, limit')
    custom_file: str = setting("", 'one-file shorthand for custom_benchmarks; empty for none')
    custom_fields: dict = setting({},
                                  'its field mapping: question (a key or a template such as {Body} {Question}), '
                                  'answer, choices, solution, id')
    custom_name: str = setting("custom", 'its name in tables')
    custom_kind: str = setting("auto",
                               'its answer kind: auto, number, math, choice',
                               Choice(("auto", "number", "math", "choice")))
    protocol: str = setting("paper",
                            'paper, minerva_math, lm_eval_gsm8k_cot, lm_eval_gsm8k, mmlu_5shot', Choice(_protocols))
    n_shots: int = setting(4, "few-shot exemplars per prompt; -1 uses the protocol's published count", Num(-1, 8, why="-1: the protocol's published count"))
    fewshot_file: str = setting("", 'exemplar JSONL for protocols that draw from a train split when offline')
    chat: bool = setting(False, "send the shots as chat turns through the model's chat template (instruct models)")
    max_new_tokens: int = setting(96, 'generation budget per item', POS)
    temperature: float = setting(0.0, '0 is greedy', Num(0, 2))
    top_p: float = setting(1.0, 'nucleus sampling when temperature is above 0', Num(0, 1, lo_open=True))
    n_samples: int = setting(1, 'samples per item; above 1 reports maj@n and pass@k (needs temperature above 0)', POS)
    batch_size: int = setting(8, 'prompts per generation batch', POS)
    backend: str = setting("hf",
                           'generation backend: hf (transformers), openai (server), vllm, llamacpp',
                           Choice(_backends))
    base_url: str = setting("http://127.0.0.1:8000/v1", 'openai backend: the server /v1 URL')
    api_key_env: str = setting("OPENAI_API_KEY",
                               'openai backend: NAME of the environment variable holding the key (never the key)')
    ocw_rel_tol: float = setting(0.01,
                                 'relative tolerance for numeric OCW answers, which are rounded; 0 means exact',
                                 NONNEG)
    nll_probe: bool = setting(True, 'measure per-token NLL of reference solutions (GSM8K, MATH, OCW)')
    nll_limit: int = setting(4, 'reference solutions per benchmark for the NLL probe', NONNEG)
    pal: bool = setting(False, 'tool-integrated mode: model writes Python, the phase-2 sandbox runs it')
    pal_limit: int = setting(4, 'items per benchmark for PAL mode (from the same selection)', NONNEG)
    show_prompt: int = setting(0, 'index of the item whose exact prompt is printed; -1 prints none', Num(-1))

    @classmethod
    def check_together(cls, values: dict, prefix: str = "") -> None:
        if values.get("limit") == 0:
            raise SettingsError(f"{prefix}limit: 0 would evaluate no item; write -1 for every item or a positive "
                                f"number")
        names = set(B.KNOWN) | {values.get("custom_name") or "custom"}
        for c in values.get("custom_benchmarks") or []:
            if isinstance(c, dict) and c.get("name"):
                names.add(c["name"])
        limits = values.get("limits") or {}
        if isinstance(limits, dict):
            bad = [k for k in limits if k not in names
                   and not any(str(k) in str(c) for c in values.get("custom_benchmarks") or [])]
            if bad:
                raise SettingsError(f"{prefix}limits: unknown benchmark(s) {', '.join(map(repr, bad))}; keys are "
                                    f"benchmark names: {', '.join(sorted(names))}")
            for k, n in limits.items():
                if isinstance(n, bool) or not isinstance(n, int) or n < -1 or n == 0:
                    raise SettingsError(f"{prefix}limits.{k}: {n!r} is not allowed; write a positive number of items "
                                        f"or -1 for all")
        subjects = {s.lower() for s in MATH_SUBJECTS}
        bad = [s for s in values.get("math_subjects") or [] if str(s).lower() not in subjects]
        if bad:
            raise SettingsError(f"{prefix}math_subjects: {', '.join(map(repr, bad))} not a MATH subject; write any of "
                                f"{', '.join(map(repr, MATH_SUBJECTS))}")
        if values.get("protocol") == "paper" and isinstance(values.get("n_shots"), int) and values["n_shots"] > 4:
            raise SettingsError(f"{prefix}n_shots: {values['n_shots']} is more than protocol 'paper' has (4 written "
                                f"exemplars per family); write 0 … 4, or -1")
        for m in values.get("models") or []:
            spec = m.partition("=")[2] if isinstance(m, str) and "=" in m else m
            if not isinstance(m, str) or not str(spec).partition("@")[0].strip() or not m.partition("=")[0].strip():
                raise SettingsError(f"{prefix}models: {m!r} is not [LABEL=]SPEC[@ADAPTER_DIR]; write e.g. "
                                    f"'mine=embedded:smollm2-135m-instruct@outputs/run/03_pretraining/adapter'")
        if values.get("n_samples", 1) > 1 and not values.get("temperature"):
            raise SettingsError(f"{prefix}n_samples: {values['n_samples']} samples of greedy decoding are identical; set "
                                f"temperature above 0 (e.g. 0.7) or n_samples: 1")
