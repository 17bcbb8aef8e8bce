"""Coverage and power of the ablation interval on synthetic ablations with known effects (the regimes of
tests/test_ablation.py, 4,000 ablations per cell), and optionally the kit's earlier two-way bootstrap as the reference
it replaced (pass the old ablation_compare.py, e.g. from ``git show 0373133:lib/mathcode/run/ablation_compare.py``).

    PYTHONPATH=lib python bench/bench_ablation_intervals.py [--old-bootstrap /tmp/old_ac.py]
"""
import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mathcode.run import ablation_compare as ac  # noqa: E402
from test_ablation import REGIMES, _synthetic  # noqa: E402

EFFECT = -0.005


def calibrated(reps: int = 4000):
    for n_items in (200, 30):
        for regime, p in REGIMES.items():
            for seeds in (3, 5, 10):
                rng = np.random.default_rng(1000 + seeds + n_items)
                ref, arm = _synthetic(rng, reps, n_items, seeds, **p, effect=EFFECT)
                lo, hi = ac.t_interval(ac.variance_components(ref, arm))
                cov = np.mean((lo <= EFFECT) & (EFFECT <= hi))
                ra, rb = p["run"]
                eps, ia = p["eps"], p["ia"]
                truth = [((ra ** 2 + eps ** 2 / n_items) / seeds, seeds - 1),
                         ((rb ** 2 + eps ** 2 / n_items) / seeds, seeds - 1), (ia ** 2 / n_items, n_items - 1)]
                m = ac.mde_from_parts(truth)
                ref, arm = _synthetic(rng, reps, n_items, seeds, **p, effect=m)
                lo, hi = ac.t_interval(ac.variance_components(ref, arm))
                print(f"items {n_items:3d} {regime:15s} seeds {seeds:2d}: coverage {cov:.3f}  MDE {m:.4f} "
                      f"power {np.mean((lo > 0) | (hi < 0)):.3f}", flush=True)


def old_bootstrap(path: str, reps: int = 400):
    spec = importlib.util.spec_from_file_location("old_ablation_compare", path)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    for regime, seeds in (("run-dominated", 3), ("run-dominated", 5), ("item-dominated", 3), ("item-by-arm", 3),
                          ("item-by-arm", 5)):
        rng = np.random.default_rng(11 + seeds)
        ref, arm = _synthetic(rng, reps, 200, seeds, **REGIMES[regime], effect=EFFECT)
        rs = [old.paired_bootstrap(ref[k], arm[k], n_boot=2000, seed=k) for k in range(reps)]
        hit = sum(r["ci_low"] <= EFFECT <= r["ci_high"] for r in rs)
        print(f"old two-way bootstrap, {regime}, {seeds} seeds: coverage {hit / reps:.3f} ({reps} ablations, "
              f"200 items)", flush=True)


if __name__ == "__main__":
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--old-bootstrap", help="path of the earlier ablation_compare.py to measure as the reference")
    args = a.parse_args()
    calibrated()
    if args.old_bootstrap:
        old_bootstrap(args.old_bootstrap)
