"""Phase 3 settings: the mixture, packing, LoRA/QLoRA and the optimizer — checked once, before a model is loaded.

The notebook's ``parameters`` cell is written from this class, and the notebook and the distributed entry point
(``scripts/pretrain_distributed.py``) both build their ``LoraSettings`` / ``TrainSettings`` from it (``lora()``,
``training()``), so the two heads of phase 3 cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass

from mathcode.settings import NONNEG, POS, Choice, Num, PhaseSettings, SettingsError, Weights, setting

MIXTURES = ("basic", "basic+translated", "translated")


def _schedulers() -> tuple:
    from transformers import SchedulerType
    return tuple(s.value for s in SchedulerType)


def _optimizers() -> tuple:
    from transformers.training_args import OptimizerNames
    return ("auto",) + tuple(o.value for o in OptimizerNames)


@dataclass(frozen=True)
class PretrainingSettings(PhaseSettings):
    PHASE = "pretraining"
    NOTEBOOK = "03_qlora_pretraining.ipynb"

    run_dir: str = setting("outputs/lab", 'run folder; this phase writes run_dir/03_pretraining/')
    model: str = setting("embedded:smollm2-135m-instruct",
                         'base model spec: embedded:NAME, a local HF folder, or a Hub id')
    seed: int = setting(0, 'seed for data split, LoRA init and data order', NONNEG)
    device: str = setting("auto", '"auto" (CUDA when present, else CPU), "cpu" or "cuda"')
    mixture: str = setting("basic+translated",
                           '"basic" | "basic+translated" | "translated" (paper ablation: basic vs basic+translated)',
                           Choice(MIXTURES, "the paper's ablation: basic vs. basic+translated; corpus_files "
                                            "overrides it"))
    corpus_files: list = setting([],
                                 'explicit JSONL files with a "text" field, used instead of the phase 1/2 outputs '
                                 'when non-empty')
    part_repeats: dict = setting({},
                                 'passes over each part\'s training documents, e.g. {"translated": 2}; unlisted parts '
                                 'once, a fraction takes that share of the part\'s tokens (whole documents), 0 leaves it out',
                                 Weights())
    token_store: str = setting("",
                               'folder of the token stores (each part tokenized once, reused by resumed runs, ablation'
                               ' arms and every rank); "" means <model cache>/token_store')
    max_documents: int = setting(0,
                                 'use at most this many documents (0 means all); demo-size knob',
                                 Num(0, why="0 uses every document"))
    block_size: int = setting(128, 'tokens per packed training block (2048 on GPU)', Num(8))
    heldout_fraction: float = setting(0.1,
                                      'share of tokens (whole documents) held out for perplexity',
                                      Num(0, 1, lo_open=True, hi_open=True,
                                          why="held-out documents measure perplexity before/after; e.g. 0.1"))
    max_heldout_blocks: int = setting(8,
                                      'cap on held-out blocks evaluated (keeps eval fast on CPU); 0 means all',
                                      Num(0, why="0 evaluates every held-out block"))
    quantize: str = setting("nf4",
                            '"nf4": 4-bit NF4 double-quantized base (QLoRA); "none": unquantized base (plain LoRA)',
                            Choice(("nf4", "none"), "nf4 is QLoRA (4-bit base), none is plain LoRA on a 16/32-bit "
                                                    "base"))
    compute_dtype: str = setting("auto",
                                 '"auto" (bfloat16 on CUDA and on CPUs with AVX512-BF16/AMX, else float32), "float32"'
                                 ' or "bfloat16"', Choice(("auto", "float32", "bfloat16")))
    document_mask: bool = setting(False,
                                  'True: no attention across documents inside a packed block (per-document positions,'
                                  ' padding-free path)')
    lora_r: int = setting(16, 'LoRA rank', POS)
    lora_alpha: int = setting(32, 'LoRA scaling numerator (scale is alpha / r)', Num(0, lo_open=True))
    lora_dropout: float = setting(0.05, 'dropout on the LoRA input', Num(0, 1, hi_open=True))
    lora_targets: list = setting(["all-linear"],
                                 'module names to adapt, e.g. ["q_proj", "v_proj"]; "all-linear" means every linear '
                                 'layer')
    train_embeddings: bool = setting(False,
                                     'also train input embeddings and LM head (common for continued pretraining; many'
                                     ' more params)')
    embedding_learning_rate: float = setting(0.0,
                                             'learning rate of the trained embeddings and LM head (train_embeddings); '
                                             '0 means learning_rate (continued-pretraining guides use 2-10x lower)',
                                             Num(0, 1, why="0 uses learning_rate; e.g. 2.0e-5"))
    gradient_checkpointing: bool = setting(True, 'recompute activations in backward to save memory')
    max_steps: int = setting(20,
                             'optimizer steps',
                             Num(1, why="a number of optimizer steps; -1 (epochs) is not supported: it would "
                                        "silently train 3 epochs"))
    per_device_batch_size: int = setting(4, 'blocks per micro-batch per device', POS)
    grad_accum: int = setting(1, 'micro-batches per optimizer step', POS)
    learning_rate: float = setting(0.0002,
                                   'peak learning rate', Num(0, 1, lo_open=True, why="e.g. 1.0e-4 (QLoRA) or 2.0e-4"))
    warmup: float = setting(0.1,
                            'warmup: fraction of max_steps when below 1, else a number of steps',
                            Num(0, why="< 1: a fraction of max_steps, >= 1: a number of steps"))
    scheduler: str = setting("cosine", 'learning-rate schedule after warmup (transformers name)', Choice(_schedulers))
    optimizer: str = setting("auto",
                             '"auto": paged_adamw_8bit on CUDA, adamw_torch on CPU; or any transformers optim name',
                             Choice(_optimizers))
    save_steps: int = setting(10, 'checkpoint every N steps (keeps the last 2)', POS)
    eval_steps: int = setting(10,
                              'held-out loss every N steps', Num(0, why="0 turns periodic held-out evaluation off"))
    resume: bool = setting(True, "resume from the last checkpoint in this run's folder when its settings match")
    report_to: str = setting("none",
                             '"none", "tensorboard" (logs in checkpoints/runs) or "wandb" (reads WANDB_* environment '
                             'variables)', Choice(("none", "tensorboard", "wandb")))
    merged_export: bool = setting(False,
                                  'also write merged/ (dequantized base + adapter, bf16) for vLLM / plain '
                                  'transformers')
    memory_check: bool = setting(True, 'estimate the footprint before loading and refuse runs that cannot fit')

    @classmethod
    def check_together(cls, values: dict, prefix: str = "") -> None:
        if values.get("embedding_learning_rate") and not values.get("train_embeddings"):
            raise SettingsError(f"{prefix}embedding_learning_rate: {values['embedding_learning_rate']!r} has no effect "
                                f"without train_embeddings=True; set train_embeddings: true or leave it at 0")
        reps = values.get("part_repeats") or {}
        files = values.get("corpus_files") or []
        if reps and isinstance(reps, dict):
            from pathlib import Path
            from mathcode.train.input_files import MIXTURES as UPSTREAM
            parts = ([Path(str(f)).stem for f in files] if files
                     else [label for _, _, label in UPSTREAM.get(values.get("mixture", ""), [])])
            unknown = sorted(set(reps) - set(parts))
            if unknown and parts:
                raise SettingsError(f"{prefix}part_repeats names {', '.join(map(repr, unknown))}, not a part of this "
                                    f"mixture; parts: {', '.join(map(repr, parts))}")

    def lora(self):
        """The adapter's shape (``qlora.attach_lora``)."""
        from mathcode.train.qlora import LoraSettings
        return LoraSettings(r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout,
                            targets=list(self.lora_targets), train_embeddings=self.train_embeddings)

    def training(self):
        """The optimizer schedule (``trainer.training_arguments``)."""
        from mathcode.train.trainer import TrainSettings
        return TrainSettings(max_steps=self.max_steps, per_device_batch_size=self.per_device_batch_size,
                             grad_accum=self.grad_accum, learning_rate=self.learning_rate, warmup=self.warmup,
                             scheduler=self.scheduler, optimizer=self.optimizer, save_steps=self.save_steps,
                             eval_steps=self.eval_steps, seed=self.seed)

    @property
    def packing_mode(self) -> str:
        return "document_masked" if self.document_mask else "concatenate"
