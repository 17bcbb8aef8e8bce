"""Phase 3 as a script, for multi-process training (several GPUs, or CPU processes with gloo).

papermill runs a notebook in one process and cannot spawn ranks, so ``accelerate launch`` / ``torchrun`` start
this module instead; it makes the same library calls as ``notebooks/03_qlora_pretraining.ipynb`` with the
recipe's ``pretraining`` parameters (validated the same way) and writes the same artefacts (checkpoints,
``train_metrics.jsonl``, ``adapter/``, ``phase.json``) from rank 0:

    accelerate launch --config_file configs/accelerate_fsdp.yaml scripts/pretrain_distributed.py \\
        --config configs/one-gpu-8b.yaml --run-dir outputs/one-gpu-8b
    torchrun --nproc_per_node 2 scripts/pretrain_distributed.py --config configs/smoke.yaml -p max_steps=2

Each rank trains on its local device (``qlora.local_device``); under FSDP the 4-bit storage dtype equals the
compute dtype and nothing is upcast to fp32, so FSDP flattens parameters of one dtype.
"""
from __future__ import annotations

import argparse
import os

import yaml


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def pretrain(values: dict, run_dir) -> dict:
    """Train with phase-3 ``values`` (every notebook parameter); returns the phase metrics (rank 0 writes them)."""
    from mathcode import phase as _phase
    from mathcode.train import input_files, packing, qlora, trainer as tr
    from mathcode import models

    v = values
    P = _phase.Phase("pretraining", str(run_dir), v)       # every rank marks it running; only rank 0 finishes it
    dev = qlora.local_device(v["device"])
    dtype_name, dtype_why = qlora.choose_compute_dtype(v.get("compute_dtype", "auto"), dev)
    inputs = input_files.mixture_inputs(P, v["mixture"], v["corpus_files"])
    docs = input_files.load_docs(inputs, max_documents=v["max_documents"])
    tok = models.load_tokenizer(v["model"], padding_side="right")
    splits = packing.build(docs, tok, v["block_size"], heldout_fraction=v["heldout_fraction"], seed=v["seed"])
    mode = "document_masked" if v.get("document_mask") else "concatenate"
    train_ds = packing.BlockDataset(splits.train, packing=mode)
    eval_ds = packing.BlockDataset(splits.heldout, limit=v["max_heldout_blocks"] or None, packing=mode)
    base = qlora.load_base(v["model"], quantize=v["quantize"], device=v["device"], compute_dtype=dtype_name)
    lora = qlora.LoraSettings(r=v["lora_r"], alpha=v["lora_alpha"], dropout=v["lora_dropout"],
                              targets=list(v["lora_targets"]), train_embeddings=v["train_embeddings"])
    model = qlora.attach_lora(base, lora, gradient_checkpointing=v["gradient_checkpointing"])
    settings = tr.TrainSettings(max_steps=v["max_steps"], per_device_batch_size=v["per_device_batch_size"],
                                grad_accum=v["grad_accum"], learning_rate=v["learning_rate"], warmup=v["warmup"],
                                scheduler=v["scheduler"], optimizer=v["optimizer"], save_steps=v["save_steps"],
                                eval_steps=v["eval_steps"], seed=v["seed"])
    ckpt = P.dir / "checkpoints"
    args = tr.training_arguments(ckpt, settings, dev, report_to=v.get("report_to", "none"))
    _ = args.device                                          # initialises the process group (gloo on CPU)
    if rank() == 0:
        tr.resume_point(ckpt, {**tr.run_signature(v), "distributed": True}, v["resume"])
    _barrier()
    resume_from = tr.last_checkpoint(ckpt) if v["resume"] else None
    cb = tr.MetricsCallback(P.dir / "train_metrics.jsonl", dev, resume_from=resume_from,
                            tokens_per_step=settings.per_device_batch_size * settings.grad_accum * v["block_size"]
                            * args.world_size) if rank() == 0 else None
    trainer = tr.build_trainer(model, tok, train_ds, eval_ds, args, callbacks=[cb] if cb else [])
    out = trainer.train(resume_from_checkpoint=resume_from)
    after = tr.heldout_perplexity(trainer)
    metrics = {"steps": int(out.global_step), "world_size": args.world_size, "compute_dtype": dtype_name,
               "compute_dtype_reason": dtype_why, "heldout_loss_after": after["loss"],
               "heldout_ppl_after": round(after["perplexity"], 3), **splits.stats()}
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    if rank() == 0:
        adapter = tr.save_adapter(trainer.accelerator.unwrap_model(trainer.model), tok, P.dir / "adapter",
                                  base_model=v["model"], args=args, extra={"quantize": v["quantize"], **metrics})
        P.finish(adapter=str(adapter), tokens_per_s=round(cb.tokens_per_second, 1), **metrics)
    _barrier()
    return metrics


def _barrier():
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="pretrain_distributed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="recipe YAML (its pretraining block and top-level keys)")
    ap.add_argument("--run-dir", help="run folder (default: the recipe's run_dir); phases 1-2 must be complete there")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a pretraining parameter (YAML syntax), e.g. -p max_steps=10")
    a = ap.parse_args(argv)
    from mathcode.run import config
    from mathcode import params
    over = {}
    for it in a.param:
        k, _, val = it.partition("=")
        over[k if "." in k else f"pretraining.{k}"] = yaml.safe_load(val)
    recipe = config.load(a.config, over)                    # the same validation as `python -m mathcode run`
    values = {**params.defaults("pretraining"), **recipe.phase_params("pretraining", a.run_dir)}
    if "pretraining" in recipe.phases:
        values.update(params.coerce("pretraining", values))
    params.check("pretraining", values)
    m = pretrain(values, values["run_dir"])
    if rank() == 0:
        print(f"[mathcode] pretraining complete: {m}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
