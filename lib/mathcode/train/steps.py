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
from mathcode.train import export, figures, input_files, memory, packing, qlora, token_store, trainer as tr
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


@dataclass
class Mixture:
    """The run's mixture parts as token stores (``token_store.PartStore``, in input order) and the tokenizer."""
    tokenizer: object
    stores: list
    inputs: list


def load_mixture(P, S) -> tuple[Mixture, pd.DataFrame]:
    """The mixture's parts (phase 1 basic + phase 2 translated, or ``corpus_files``), each tokenized once into its
    token store (reused when tokenizer and input are unchanged), and a table of what each part holds. Under several
    processes only rank 0 tokenizes; the other ranks wait for its stores and read the same files."""
    inputs = input_files.mixture_inputs(P, S.mixture, S.corpus_files)
    tok = models.load_tokenizer(S.model, padding_side="right")
    stores = [token_store.build_part(path, label, tok, S.token_store or None, wait=rank() != 0)
              for path, label in inputs]
    for st in stores:
        print(f"token store [{st.label}]: {'reused' if st.reused else 'written'} {st.path} "
              f"({st.n_docs:,} documents, {st.n_tokens:,} tokens)")
    if all(st.n_docs == 0 for st in stores):
        raise input_files.CorpusError(f"{', '.join(str(p) for p, _ in inputs)}: no non-empty 'text' rows; nothing "
                                      f"to train on (check the phase that wrote it, or pass other corpus_files)")
    table = pd.DataFrame([{"part": st.label, "documents": st.n_docs, "characters": st.meta["characters"],
                           "tokens": st.n_tokens, "file": str(path), "store": str(st.path), "reused": st.reused,
                           "note": "" if st.n_docs else "no non-empty rows: this part contributes nothing to this run"}
                          for st, (path, _) in zip(stores, inputs)])
    if rank() == 0:
        P.save_table(table, "mixture")
        P.log(token_stores={st.label: {"path": str(st.path), "reused": st.reused, "tokens": st.n_tokens}
                            for st in stores})
    return Mixture(tok, stores, inputs), table


@dataclass
class Packed:
    tokenizer: object
    splits: object
    train: object
    heldout: object
    stats: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in self.stats.items() if k != "train_tokens_by_part"}])

    def parts_table(self) -> pd.DataFrame:
        """Per part: tokens, repeats, training tokens and their share, the store and its host memory."""
        return pd.DataFrame(self.splits.parts)


def pack(mix: Mixture, S, P=None) -> Packed:
    """Blocks cut lazily from the token stores, whole documents held out for perplexity, each part repeated as
    ``part_repeats`` says; the parts figure when ``P``."""
    splits = token_store.splits(mix.stores, S.block_size, heldout_fraction=S.heldout_fraction, seed=S.seed,
                                max_documents=S.max_documents, repeats=S.part_repeats)
    train = packing.BlockDataset(splits.train, packing=S.packing_mode, block_ids=True)
    heldout = packing.BlockDataset(splits.heldout, limit=S.max_heldout_blocks or None, packing=S.packing_mode)
    out = Packed(mix.tokenizer, splits, train, heldout, splits.stats())
    if P is not None:
        P.save_table(out.parts_table(), "mixture_tokens")
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
    block_log = P.path(f"trained_blocks.rank{rank()}.jsonl")        # which blocks each step trained on
    tr.trim_block_log(block_log, resume_from)
    trainer = tr.build_trainer(model, packed.tokenizer, packed.train, packed.heldout, args,
                               callbacks=[cb] if cb else [], block_log=block_log,
                               embedding_learning_rate=S.embedding_learning_rate if S.train_embeddings else None)
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
    mix, _ = load_mixture(P, S)
    packed = pack(mix, S, P if rank() == 0 else None)
    mem = memory_plan(S, dev, dtype_name)
    model, params_info = build_model(S, dtype_name)
    run = train(P, S, model, packed, dev, distributed=True)
    saved = save(P, S, model, packed, run, dev)
    m = metrics(P, S, run, saved, packed, mem, params_info, dev) if rank() == 0 else {}
    if rank() == 0:
        P.finish(**m)
    _barrier()
    return m
