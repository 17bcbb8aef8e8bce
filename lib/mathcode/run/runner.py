"""Run the four phase notebooks with papermill, in order, with manifests, skipping what is up to date.

``python -m mathcode run --config configs/demo.yaml [--run-dir DIR] [--phases ...] [--force] [--quiet]``

A recipe with an ``ablation:`` block runs its arms instead (``mathcode.run.ablation``). While a phase runs, its
progress is streamed to the terminal: a per-cell bar and the notebook's own printed output and progress bars.
"""
from __future__ import annotations

import os

from mathcode.run import ablation, config as _config, notebook_run
from mathcode.run.notebook_run import PhaseFailed, _PhaseOutput, _say, _select, run_phase  # noqa: F401  (callers' names)
from mathcode import paths
from mathcode.util import write_json


def run(config_path, run_dir=None, phases=None, force: bool = False, overrides: dict | None = None,
        report: bool = True, progress: bool = True) -> dict:
    recipe = _config.load(config_path, overrides)           # validates everything before any work starts
    run_dir = paths.resolve_path(run_dir or recipe.run_dir)
    selected = _select(phases)
    notebook_run.set_progress(progress)
    if recipe.cache_dir:
        os.environ["MATHCODE_CACHE"] = str(paths.resolve_path(recipe.cache_dir))
    if recipe.threads is not None and "MATHCODE_THREADS" not in os.environ:
        os.environ["MATHCODE_THREADS"] = str(recipe.threads)     # read by mathcode.phase.start in each kernel
    from mathcode.models import resolve
    model = resolve(recipe.model)                            # unknown/offline model: fail now, not in phase 2
    _say(f"model {recipe.model} -> {model.path} ({model.kind})")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "recipe.json", {"config": str(recipe.path), "name": recipe.name, "model": recipe.model,
                                         "device": recipe.device, "seed": recipe.seed, "phases": recipe.phases,
                                         "description": recipe.description,
                                         **({"ablation": recipe.ablation} if recipe.ablation else {})})
    if recipe.ablation:
        results = ablation.run(recipe, run_dir, phases=phases, force=force, report=report)
        if report:
            from mathcode.run.report import write_report
            _say(f"report: {write_report(run_dir)}")
        return results
    results = {}
    for phase in selected:
        results[phase] = run_phase(recipe, phase, run_dir, force=force)
    if report:
        from mathcode.run.report import write_report
        rep = write_report(run_dir)
        _say(f"report: {rep}")
    return results
