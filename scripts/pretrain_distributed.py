"""Phase 3 as a script, for multi-process training (several GPUs, or CPU processes with gloo).

papermill runs a notebook in one process and cannot spawn ranks, so ``accelerate launch`` / ``torchrun`` start
this script instead. It reads the recipe's ``pretraining`` block into the same ``PretrainingSettings`` the notebook
builds (validated the same way) and runs the same steps (``mathcode.train.steps.pretrain``), writing the same
artefacts (checkpoints, ``train_metrics.jsonl``, ``adapter/``, ``phase.json``) from rank 0:

    accelerate launch --config_file configs/accelerate_fsdp.yaml scripts/pretrain_distributed.py \\
        --config configs/one-gpu-8b.yaml --run-dir outputs/one-gpu-8b
    torchrun --nproc_per_node 2 scripts/pretrain_distributed.py --config configs/smoke.yaml -p max_steps=2

Each rank trains on its local device (``qlora.local_device``); under FSDP the 4-bit storage dtype equals the
compute dtype and nothing is upcast to fp32, so FSDP flattens parameters of one dtype.
"""
from __future__ import annotations

import argparse
import sys

import yaml


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="pretrain_distributed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="recipe YAML (its pretraining block and top-level keys)")
    ap.add_argument("--run-dir", help="run folder (default: the recipe's run_dir); phases 1-2 must be complete there")
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                    help="override a pretraining parameter (YAML syntax), e.g. -p max_steps=10")
    a = ap.parse_args(argv)
    from mathcode import phase
    from mathcode.run import config
    from mathcode.train import steps
    from mathcode.train.settings import PretrainingSettings
    over = {}
    for it in a.param:
        k, _, val = it.partition("=")
        over[k if "." in k else f"pretraining.{k}"] = yaml.safe_load(val)
    recipe = config.load(a.config, over)                    # the same validation as `python -m mathcode run`
    S = PretrainingSettings.build(recipe.phase_params("pretraining", a.run_dir))
    P = phase.Phase("pretraining", S.run_dir, S.as_dict())  # every rank marks it running; only rank 0 finishes it
    P.settings = S
    m = steps.pretrain(P, S)
    if steps.rank() == 0:
        print(f"[mathcode] pretraining complete: {m}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
