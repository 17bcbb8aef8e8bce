"""transformers ``Trainer`` wiring for continued pretraining: cosine schedule with warmup, gradient
accumulation, periodic checkpoints, resume, per-step metrics, and the final adapter folder.

Why Trainer and not a hand-written loop: it already gets checkpoint/resume (optimizer, scheduler, RNG and
data position), gradient accumulation, paged 8-bit optimizers and ``accelerate launch`` (DDP/FSDP) right.
"""
from __future__ import annotations

import json
import math
import os
import resource
import shutil
import time
from dataclasses import dataclass, asdict
from pathlib import Path

from mathcode.util import write_json
from mathcode.train import qlora


@dataclass
class TrainSettings:
    max_steps: int = 30
    per_device_batch_size: int = 4
    grad_accum: int = 2
    learning_rate: float = 2e-4
    warmup: float = 0.1                  # < 1: fraction of max_steps; >= 1: number of steps
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    save_steps: int = 10
    eval_steps: int = 10
    save_total_limit: int = 2
    optimizer: str = "auto"              # auto: paged_adamw_8bit on CUDA, adamw_torch on CPU
    seed: int = 0
    max_grad_norm: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


REPORT_TO = ("none", "tensorboard", "wandb")


def training_arguments(output_dir, s: TrainSettings, device: str, report_to: str = "none"):
    """TrainingArguments for this run (bf16 autocast on CUDA; CPU runs keep the model's dtypes — the 4-bit
    layers compute in the dtype ``qlora.choose_compute_dtype`` picked). ``report_to``: none | tensorboard |
    wandb (TensorBoard logs go to ``output_dir/runs/``; W&B reads its own environment variables)."""
    from transformers import TrainingArguments

    if report_to not in REPORT_TO:
        raise ValueError(f"report_to={report_to!r}: write one of {', '.join(REPORT_TO)}")
    cuda = str(device).startswith("cuda")
    warm = s.warmup if s.warmup < 1 else int(s.warmup)
    return TrainingArguments(
        output_dir=str(output_dir), max_steps=s.max_steps, per_device_train_batch_size=s.per_device_batch_size,
        per_device_eval_batch_size=s.per_device_batch_size, gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.learning_rate, lr_scheduler_type=s.scheduler, warmup_steps=warm,
        weight_decay=s.weight_decay, max_grad_norm=s.max_grad_norm,
        optim=qlora.default_optimizer(device) if s.optimizer == "auto" else s.optimizer,
        logging_steps=1, eval_strategy="steps" if s.eval_steps else "no", eval_steps=s.eval_steps or None,
        save_strategy="steps", save_steps=s.save_steps, save_total_limit=s.save_total_limit,
        bf16=cuda, use_cpu=not cuda, seed=s.seed, data_seed=s.seed,
        report_to=[] if report_to == "none" else [report_to],        # TensorBoard: output_dir/runs/
        disable_tqdm=False,                     # a progress bar over steps (tqdm.auto: widget in Lab, text headless)
        remove_unused_columns=False, include_num_input_tokens_seen="all", dataloader_num_workers=0,
        save_only_model=False,
    )


def peak_memory_mb(device: str) -> float:
    """CUDA max allocated on GPU; peak RSS of this process on CPU."""
    if str(device).startswith("cuda"):
        import torch
        return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024      # Linux: KiB


def _callback_base():
    from transformers import TrainerCallback
    return TrainerCallback


class MetricsCallback(_callback_base()):
    """Per-step loss, learning rate, tokens/s (training time only, eval excluded) and peak memory.

    Rows are appended to ``metrics_file`` (JSONL), so a resumed run continues the same file. ``resume_from``:
    the checkpoint training resumes from (None: a fresh start, the old file is removed). On resume, rows logged
    after that checkpoint are dropped (training repeats those steps) and a (step, kind) already in the file is
    never written twice — so neither a repeated step nor a second step-0 held-out row appears.
    """

    def __init__(self, metrics_file, device: str, tokens_per_step: int, resume_from: str | None = None):
        self.file = Path(metrics_file)
        self.device = device
        self.tokens_per_step = tokens_per_step
        self.train_seconds = 0.0
        self.steps = 0
        self._t = None
        self.rows: list[dict] = []
        self._seen: set = set()
        if resume_from is None:
            self.file.unlink(missing_ok=True)
        elif self.file.exists():
            from mathcode.util import read_jsonl
            keep_to = checkpoint_step(resume_from)
            kept = [r for r in read_jsonl(self.file) if r.get("step", 0) <= keep_to]
            from mathcode.util import write_jsonl
            write_jsonl(self.file, kept)
            self._seen = {_row_key(r) for r in kept}

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._t is not None:
            self.train_seconds += time.perf_counter() - self._t
            self.steps += 1

    @property
    def tokens_per_second(self) -> float:
        return self.steps * self.tokens_per_step / self.train_seconds if self.train_seconds else 0.0

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        row = {"step": state.global_step, "time": round(time.time(), 3)}
        for k in ("loss", "eval_loss", "learning_rate", "grad_norm"):
            if k in logs:
                row[k] = float(logs[k])
        if len(row) == 2:
            return
        row["tokens_per_s"] = round(self.tokens_per_second, 1)
        row["peak_mem_mb"] = round(peak_memory_mb(self.device), 1)
        if _row_key(row) in self._seen:
            return
        self._seen.add(_row_key(row))
        self.rows.append(row)
        if state.is_world_process_zero:
            with open(self.file, "a") as fh:
                fh.write(json.dumps(row) + "\n")


class LayoutGuard(_callback_base()):
    """Trainer callback: refuses to take a step (or to go on after an evaluation) when any 4-bit layer has moved to
    the packed inference layout, which would make that step's gradients wrong (see ``keep_autograd_layout``)."""

    def __init__(self, model):
        self.layers = qlora.four_bit_layers(model)

    def _check(self, when: str):
        bad = sum(qlora.is_packed_for_cpu_inference(m) for m in self.layers)
        if bad:
            raise qlora.PackedLayoutError(
                f"{when}: {bad} of {len(self.layers)} 4-bit layers are in bitsandbytes' packed CPU inference layout, "
                f"which has no autograd kernel; training would compute wrong gradients. Prepare the model with "
                f"qlora.attach_lora / keep_autograd_layout.")

    def on_train_begin(self, args, state, control, **kw):
        self._check("before training")

    def on_step_begin(self, args, state, control, **kw):
        self._check(f"before step {state.global_step + 1}")

    def on_evaluate(self, args, state, control, **kw):
        self._check(f"after the evaluation at step {state.global_step}")


def _row_key(row: dict) -> tuple:
    return (int(row.get("step", 0)), "eval" if "eval_loss" in row else "train")


def checkpoint_step(path) -> int:
    """N of a ``checkpoint-N`` folder."""
    name = Path(str(path)).name
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        raise ValueError(f"{path} is not a checkpoint-N folder") from None


class BlockOrder:
    """The training order of the blocks: a permutation drawn from (seed, epoch) alone.

    Why not the Trainer's ``RandomSampler``: its order comes from the global torch RNG at the start of each epoch,
    so whether a resumed run sees the blocks the uninterrupted run would have seen depends on RNG state restored in
    the right order. Here the order is a pure function of the seed and the epoch (``set_epoch``, which the Trainer
    calls), so a resumed run that skips the batches already trained — as the Trainer does — continues at exactly the
    next block, and every rank computes the same order before ``accelerate`` gives each rank its disjoint share.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, epoch: int | None = None) -> list[int]:
        import numpy as np
        e = self.epoch if epoch is None else int(epoch)
        return np.random.default_rng([self.seed, e]).permutation(self.n).tolist()

    def __iter__(self):
        return iter(self.order())

    def __len__(self) -> int:
        return self.n


def _trainer_class():
    from transformers import Trainer

    class KitTrainer(Trainer):
        """``Trainer`` with the kit's block order (``BlockOrder``), a log of the block ids each optimizer step trained
        on (``block_log``: JSONL rows ``{"step", "rank", "blocks"}``), and a learning rate of its own for the trained
        embedding / LM-head copies (``embedding_learning_rate``; PEFT names them ``modules_to_save``)."""

        block_log: Path | None = None
        embedding_learning_rate: float | None = None

        def _get_train_sampler(self, train_dataset=None):
            ds = train_dataset if train_dataset is not None else self.train_dataset
            return BlockOrder(len(ds), self.args.data_seed if self.args.data_seed is not None else self.args.seed)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            ids = inputs.pop("block_id", None)
            if ids is not None and model.training and self.block_log is not None:
                with open(self.block_log, "a") as fh:
                    fh.write(json.dumps({"step": self.state.global_step + 1, "rank": self.args.process_index,
                                         "blocks": [int(x) for x in ids.reshape(-1).tolist()]}) + "\n")
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            inputs = {k: v for k, v in inputs.items() if k != "block_id"}
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)

        def create_optimizer(self, model=None):
            m = self.model if model is None else model
            if self.optimizer is None and self.embedding_learning_rate:
                emb = [p for n, p in m.named_parameters() if p.requires_grad and "modules_to_save" in n]
                if emb:
                    rest = [p for n, p in m.named_parameters() if p.requires_grad and "modules_to_save" not in n]
                    cls, kw = self.get_optimizer_cls_and_kwargs(self.args, m)
                    wd = self.args.weight_decay
                    self.optimizer = cls([{"params": rest, "weight_decay": wd},
                                          {"params": emb, "weight_decay": wd, "lr": self.embedding_learning_rate}],
                                         **kw)
                    return self.optimizer
            return super().create_optimizer(model)

    return KitTrainer


def build_trainer(model, tokenizer, train_ds, eval_ds, args, callbacks=(), *, block_log=None,
                  embedding_learning_rate: float | None = None):
    """The Trainer for ``model``; its 4-bit layers are kept on the autograd matmul and checked at every step
    (``qlora.keep_autograd_layout``), whatever evaluations run before or during training. ``block_log``: a JSONL
    file receiving the block ids of every trained micro-batch (datasets that yield ``block_id``);
    ``embedding_learning_rate``: the learning rate of trained embeddings / LM head (None: ``learning_rate``)."""
    from transformers import default_data_collator
    qlora.keep_autograd_layout(model)
    t = _trainer_class()(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                         data_collator=default_data_collator, processing_class=tokenizer,
                         callbacks=[LayoutGuard(model), *callbacks])
    t.block_log = Path(block_log) if block_log else None
    t.embedding_learning_rate = embedding_learning_rate or None
    return t


def trim_block_log(path, resume_from: str | None) -> None:
    """A resumed run trains again every step after its checkpoint: drop those rows (None: a fresh start, no rows)."""
    f = Path(path)
    if resume_from is None:
        f.unlink(missing_ok=True)
        return
    if f.exists():
        keep = checkpoint_step(resume_from)
        rows = [x for x in f.read_text().splitlines() if x and json.loads(x)["step"] <= keep]
        f.write_text("".join(r + "\n" for r in rows))


def read_block_log(path) -> dict:
    """{step: [block ids in the order trained]} from a ``block_log`` file."""
    out: dict = {}
    f = Path(path)
    for line in f.read_text().splitlines() if f.exists() else []:
        r = json.loads(line)
        out.setdefault(r["step"], []).extend(r["blocks"])
    return out


def last_checkpoint(output_dir) -> str | None:
    """The newest complete ``checkpoint-N`` folder, or None."""
    from transformers.trainer_utils import get_last_checkpoint
    d = Path(output_dir)
    return get_last_checkpoint(str(d)) if d.is_dir() else None


def heldout_perplexity(trainer) -> dict:
    """Mean token loss and perplexity on the trainer's eval (held-out) blocks."""
    m = trainer.evaluate()
    loss = float(m["eval_loss"])
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def save_adapter(model, tokenizer, out_dir, *, base_model: str, args=None, extra: dict | None = None) -> Path:
    """Write the adapter folder atomically: PEFT files + tokenizer + training_args.json + mathcode_adapter.json.

    ``mathcode_adapter.json`` names the base model spec; ``models.apply_adapter`` refuses other bases.
    """
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    if args is not None:
        write_json(tmp / "training_args.json", args.to_dict())
    write_json(tmp / "mathcode_adapter.json", {"base_model": base_model, **(extra or {})})
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


# Parameters that do not change what is trained (where it is written, logging, what happens after training).
NOT_SHAPING = ("run_dir", "resume", "merged_export", "memory_check", "report_to", "device", "token_store")


def run_signature(values: dict) -> dict:
    """The phase-3 parameters that shape the data, the model and the schedule: checkpoints made with other
    values cannot be resumed (``resume_point``); also recorded next to the adapter."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(values.items()) if k not in NOT_SHAPING}


class ResumeError(RuntimeError):
    """Checkpoints in the run folder were made with different settings."""


def resume_point(ckpt_dir, settings: dict, resume: bool) -> str | None:
    """Checkpoint to resume from, or None for a fresh start.

    The settings that shape the schedule and the data are stored next to the checkpoints; resuming with
    different ones would silently train a different run, so that is an error that says what to do.
    With ``resume=False`` old checkpoints (and their metrics) are removed first.
    """
    d = Path(ckpt_dir)
    f = d / "run_settings.json"
    if not resume and d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    norm = json.loads(json.dumps(settings, default=str))
    if f.exists():
        old = json.loads(f.read_text())
        if old != norm and last_checkpoint(d):
            diff = sorted(k for k in set(old) | set(norm) if old.get(k) != norm.get(k))
            raise ResumeError(f"{d} holds checkpoints made with other settings ({', '.join(diff)} differ); "
                              f"use resume=False to start over, or another run_dir")
    write_json(f, norm)
    return last_checkpoint(d)
