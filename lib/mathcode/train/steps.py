"""Phase 3's steps as functions: what notebook 03's cells call, and what the multi-process entry point
(``scripts/pretrain_distributed.py`` under ``torchrun`` / ``accelerate launch``) calls — the same functions, so the
two heads of phase 3 write the same adapter metadata and the same metrics.

Every function takes the checked ``PretrainingSettings`` (``S``) and the ``Phase`` (``P``) where it reads inputs or
writes artefacts. Under several processes only rank 0 writes metrics rows, the adapter and ``phase.json``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from mathcode import models
from mathcode.train import export, figures, input_files, memory, packing, qlora, trainer as tr
from mathcode.util import read_jsonl


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _barrier():
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def device_and_dtype(S, P) -> tuple[str, str]:
    """This process's device and the compute dtype (with the reason, recorded in the phase metrics)."""
    dev = qlora.local_device(S.device)
    dtype_name, why = qlora.choose_compute_dtype(S.compute_dtype, dev)
    P.log(compute_dtype=dtype_name, compute_dtype_reason=why, document_mask=S.document_mask)
    print(f"device: {dev} | compute dtype: {dtype_name} ({why})")
    return dev, dtype_name


def load_mixture(P, S) -> tuple[list[dict], pd.DataFrame]:
    """The documents of the chosen mixture (phase 1 basic + phase 2 translated, or ``corpus_files``) and a table of
    what each part holds."""
    inputs = input_files.mixture_inputs(P, S.mixture, S.corpus_files)
    docs = input_files.load_docs(inputs, max_documents=S.max_documents, warn=False)
    table = input_files.summary_table(docs, inputs)
    P.save_table(table, "mixture")
    return docs, table


@dataclass
class Packed:
    tokenizer: object
    splits: object
    train: object
    heldout: object
    stats: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in self.stats.items() if k != "train_tokens_by_part"}])


def pack(docs: list[dict], S, P=None) -> Packed:
    """Tokenize and pack into fixed blocks, whole documents held out for perplexity; the parts figure when ``P``."""
    tok = models.load_tokenizer(S.model, padding_side="right")
    splits = packing.build(docs, tok, S.block_size, heldout_fraction=S.heldout_fraction, seed=S.seed)
    train = packing.BlockDataset(splits.train, packing=S.packing_mode)
    heldout = packing.BlockDataset(splits.heldout, limit=S.max_heldout_blocks or None, packing=S.packing_mode)
    out = Packed(tok, splits, train, heldout, splits.stats())
    if P is not None:
        P.save_figure(figures.parts_bar(splits.train.part_tokens, S.block_size), "mixture_tokens",
                      "Training tokens per mixture part after packing (the tail that fills no block is dropped)")
    return out


def memory_plan(S, dev: str, dtype_name: str) -> dict:
    """The footprint estimate; refuses a run that cannot fit when ``memory_check`` (before any weight is loaded)."""
    est = memory.estimate(S.model, quantize=S.quantize, device=dev, lora_r=S.lora_r, lora_targets=list(S.lora_targets),
                          batch_size=S.per_device_batch_size, seq_len=S.block_size,
                          gradient_checkpointing=S.gradient_checkpointing, train_embeddings=S.train_embeddings,
                          compute_dtype=dtype_name)
    return memory.check_fits(est, name=S.model) if S.memory_check else est.as_dict()


def build_model(S, dtype_name: str):
    """The (4-bit) base with the LoRA adapter attached, ready to train; and its parameter counts."""
    base = qlora.load_base(S.model, quantize=S.quantize, device=S.device, compute_dtype=dtype_name)
    model = qlora.attach_lora(base, S.lora(), gradient_checkpointing=S.gradient_checkpointing)
    return model, qlora.trainable_parameters(model)


@dataclass
class Trained:
    trainer: object
    args: object
    callback: object
    resumed_from: str | None
    before: dict
    steps: int
    rows: list = field(default_factory=list)


def train(P, S, model, packed: Packed, dev: str, *, distributed: bool = False) -> Trained:
    """Held-out loss before, then train (resuming from this run's last checkpoint when its settings match)."""
    ckpt = P.path("checkpoints")
    settings = S.training()
    args = tr.training_arguments(ckpt, settings, dev, report_to=S.report_to)
    signature = {**tr.run_signature(P.values), **({"distributed": True} if distributed else {})}
    if distributed:
        _ = args.device                                       # initialises the process group (gloo on CPU)
        if rank() == 0:
            tr.resume_point(ckpt, signature, S.resume)
        _barrier()
        resume_from = tr.last_checkpoint(ckpt) if S.resume else None
    else:
        resume_from = tr.resume_point(ckpt, signature, S.resume)
    cb = tr.MetricsCallback(P.path("train_metrics.jsonl"), dev, resume_from=resume_from,
                            tokens_per_step=S.per_device_batch_size * S.grad_accum * S.block_size * args.world_size
                            ) if rank() == 0 else None
    trainer = tr.build_trainer(model, packed.tokenizer, packed.train, packed.heldout, args,
                               callbacks=[cb] if cb else [])
    before = tr.heldout_perplexity(trainer)
    print(f"held-out before: loss {before['loss']:.3f}, perplexity {before['perplexity']:.2f} |",
          f"resuming from {resume_from}" if resume_from else "fresh start")
    out = trainer.train(resume_from_checkpoint=resume_from)
    rows = read_jsonl(P.path("train_metrics.jsonl")) if rank() == 0 else []
    return Trained(trainer, args, cb, resume_from, before, int(out.global_step), rows)


def save(P, S, model, packed: Packed, run: Trained, dev: str) -> dict:
    """Held-out loss after; the adapter (and the merged export when asked) with the run's metadata. Returns
    ``{"after", "adapter", "merged"}`` (rank 0; other ranks get ``after`` only)."""
    after = tr.heldout_perplexity(run.trainer)
    out = {"after": after, "adapter": None, "merged": None}
    if run.trainer.is_fsdp_enabled:
        run.trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    if rank() == 0:
        P.save_figure(figures.perplexity_bar(run.before["perplexity"], after["perplexity"],
                                             heldout_eval_tokens(packed, S)), "perplexity",
                      "Held-out perplexity of the base model before and after continued pretraining")
        P.save_table(figures.perplexity_table(run.before, after), "perplexity")
        unwrapped = run.trainer.accelerator.unwrap_model(run.trainer.model)
        out["adapter"] = tr.save_adapter(unwrapped, packed.tokenizer, P.path("adapter"), base_model=S.model,
                                         args=run.args,
                                         extra={**tr.run_signature(P.values), "steps": run.steps,
                                                "world_size": run.args.world_size,
                                                "heldout_perplexity_before": run.before["perplexity"],
                                                "heldout_perplexity_after": after["perplexity"]})
        if S.merged_export:
            out["merged"] = export.merged_export(S.model, out["adapter"], P.path("merged"), device=dev)
        tokens = run.steps * S.per_device_batch_size * S.grad_accum * S.block_size * run.args.world_size
        print(figures.outcome_sentence(run.before, after, run.rows, packed.stats, tokens))
        print("adapter:", out["adapter"], "| merged:", out["merged"])
    _barrier()
    return out


def heldout_eval_tokens(packed: Packed, S) -> int:
    """Tokens the held-out loss is measured on: the held-out blocks evaluated (``max_heldout_blocks`` caps them)."""
    return len(packed.heldout) * S.block_size


def metrics(P, S, run: Trained, saved: dict, packed: Packed, mem: dict, params_info: dict, dev: str) -> dict:
    """The key numbers ``P.finish`` records (the manifest and the report read them)."""
    return {**figures.phase_metrics(P.values, run.rows, run.before, saved["after"], run.callback, dev, run.steps,
                                    run.resumed_from, mem, packed.stats, params_info, saved["adapter"],
                                    saved["merged"]),
            "heldout_eval_tokens": heldout_eval_tokens(packed, S), "world_size": run.args.world_size}


def pretrain(P, S) -> dict:
    """The whole phase in one call (the distributed entry point; the notebook runs the same steps cell by cell)."""
    dev, dtype_name = device_and_dtype(S, P)
    docs, _ = load_mixture(P, S)
    packed = pack(docs, S, P if rank() == 0 else None)
    mem = memory_plan(S, dev, dtype_name)
    model, params_info = build_model(S, dtype_name)
    run = train(P, S, model, packed, dev, distributed=True)
    saved = save(P, S, model, packed, run, dev)
    m = metrics(P, S, run, saved, packed, mem, params_info, dev) if rank() == 0 else {}
    if rank() == 0:
        P.finish(**m)
    _barrier()
    return m
