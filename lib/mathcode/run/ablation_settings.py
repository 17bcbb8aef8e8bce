"""The settings of a recipe's ``ablation:`` block: the arms, seeds and comparison options, checked before any work.

Kept apart from ``ablation`` (which runs the arms) so that the recipe loader can validate the block without
importing the code that runs it.
"""
from __future__ import annotations


class AblationSettingsError(ValueError):
    """A wrong key or value in the ``ablation:`` block; the message names it and what to write instead."""


ARMS = {
    "basic": {"mixture": "basic"},
    "basic+translated": {"mixture": "basic+translated"},
    "token-matched": {"mixture": None},   # basic upsampled to the token count of basic+translated (corpus_files)
}
KEYS = {"arms": list, "seeds": list, "reference": str, "ci": float, "evaluate_base": bool, "epochs": float}
DEFAULTS = {"arms": ["basic", "basic+translated"], "seeds": [0], "reference": "basic", "ci": 0.95,
            "evaluate_base": True, "epochs": 0.0}
SET_BY_ARMS = ("mixture", "corpus_files")
TOKEN_MATCHED_FILE = "ablation/basic_token_matched.jsonl"


# --- the recipe block ---------------------------------------------------------------------------------
def check_block(block, where, phases: dict | None = None) -> dict:
    """Validate a recipe's ``ablation:`` block (called by ``mathcode.run.config``); returns it with defaults filled.

    Errors name the key and what to write instead (``AblationSettingsError``; the recipe loader reports it as a
    ``ConfigError``)."""
    err = AblationSettingsError
    if not isinstance(block, dict):
        raise err(f"{where}: 'ablation' must be a mapping, e.g. ablation: {{arms: [basic, basic+translated], seeds: [0, 1]}}")
    for k, v in block.items():
        if k == "bootstrap":
            raise err(f"{where}: 'ablation.bootstrap' is no longer used: the intervals are t intervals over training "
                      f"runs and items (mathcode.run.ablation_compare), which need no replicates; remove the key")
        if k not in KEYS:
            raise err(f"{where}: unknown key 'ablation.{k}'; allowed: {', '.join(KEYS)}")
        ok = isinstance(v, (int, float)) if KEYS[k] is float else isinstance(v, KEYS[k])
        if not ok or (isinstance(v, bool) and KEYS[k] is not bool):
            raise err(f"{where}: 'ablation.{k}' must be {KEYS[k].__name__}, got {type(v).__name__} {v!r}")
    out = {**DEFAULTS, **block}
    arms = out["arms"]
    for a in arms:
        if a not in ARMS:
            raise err(f"{where}: 'ablation.arms' has unknown arm {a!r}; arms are {', '.join(ARMS)}")
    if len(set(arms)) != len(arms) or len(arms) < 2:
        raise err(f"{where}: 'ablation.arms' needs at least two different arms, e.g. [basic, basic+translated]; got {arms}")
    seeds = out["seeds"]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise err(f"{where}: 'ablation.seeds' must be a list of different non-negative integers, e.g. [0, 1, 2]; "
                  f"got {seeds!r}")
    if out["reference"] not in arms:
        raise err(f"{where}: 'ablation.reference' {out['reference']!r} is not one of the arms {arms}")
    if not 0.5 <= float(out["ci"]) < 1:
        raise err(f"{where}: 'ablation.ci' is a coverage such as 0.95, got {out['ci']}")
    out["ci"] = float(out["ci"])
    out["epochs"] = float(out["epochs"])
    if out["epochs"] < 0 or out["epochs"] > 100:
        raise err(f"{where}: 'ablation.epochs' is passes over each arm's training blocks (e.g. 1.0), or 0 to use "
                  f"phases.pretraining.max_steps for every arm; got {out['epochs']}")
    if out["epochs"] and "max_steps" in ((phases or {}).get("pretraining") or {}):
        raise err(f"{where}: 'ablation.epochs' sets each arm run's max_steps from its own training blocks; remove "
                  f"'phases.pretraining.max_steps' (or set ablation.epochs: 0 to use it for every arm)")
    for k in SET_BY_ARMS:
        if k in ((phases or {}).get("pretraining") or {}):
            raise err(f"{where}: 'phases.pretraining.{k}' is chosen by each ablation arm; remove it from the recipe "
                      f"(arms: {', '.join(ARMS)})")
    return out
