"""Gold-solution NLL probe: how likely each model finds the reference solutions.

Why: at 135M parameters a few items of accuracy cannot show whether continued pretraining moved the
model; the mean per-token negative log-likelihood of human-written solutions (GSM8K worked solutions,
MATH and OCW solutions), conditioned on the question in the evaluation template, is a low-noise,
paired signal (lower = the model predicts math solutions better). Only solution tokens are scored.

The scoring itself is the generation backend's (``Generator.nll``; ``can_score`` says whether it can): this module
only builds the (question, solution) pairs and the tables.
"""
from __future__ import annotations

import pandas as pd

from mathcode.evaluate.benchmarks import Item
from mathcode.generation.hf import bf16_autocast as _bf16_autocast, cpu_has_bf16, score_pairs  # noqa: F401
from mathcode.generation.hf import scoring_prefix as special_prefix  # noqa: F401  (part of this module's interface)


def _clean_solution(item: Item) -> str:
    import re
    s = item.solution or ""
    return re.sub(r"<<[^>]*>>", "", s) if item.benchmark == "gsm8k" else s    # GSM8K calculator marks


def solution_pairs(items: list[Item], protocol=None) -> tuple[list[Item], list[tuple[str, str]]]:
    """The items with a reference solution and their (context, continuation) pairs: the question in the protocol's
    template (default: the kit's 'paper' template, so runs under any protocol are scored alike) and the solution
    after the protocol's target delimiter."""
    if protocol is None:
        from mathcode.evaluate.protocols import get_protocol
        protocol = get_protocol("paper")
    kept = [it for it in items if it.solution]
    return kept, [(protocol.format_question(it), protocol.target_delimiter + _clean_solution(it)) for it in kept]


def _rows(kept: list[Item], scores: list[dict]) -> list[dict]:
    return [{"benchmark": it.benchmark, "item_id": it.id, **s} for it, s in zip(kept, scores)]


def probe(gen, items: list[Item], *, batch_size: int = 8, max_tokens: int = 768, dtype: str = "auto",
          protocol=None) -> list[dict]:
    """Per item with a reference solution: summed and mean NLL (nats/token) of the solution given the question,
    scored by the generation backend (``Generator.nll``). A backend that cannot score
    (``gen.can_score`` False) raises ``ScoringUnsupported``; ``cannot_score_note`` says so for a reader."""
    kept, pairs = solution_pairs(items, protocol)
    return _rows(kept, gen.nll(pairs, batch_size=batch_size, max_tokens=max_tokens, dtype=dtype))


def cannot_score_note(gen, label: str) -> str:
    """The line the notebook shows when a model's backend cannot score (no NLL rows for it)."""
    from mathcode.generation.registry import scoring_backends
    if type(gen).__dict__.get("can_score") is not None and isinstance(type(gen).__dict__["can_score"], property):
        why = (type(gen).can_score.__doc__ or "").strip().split(". ")[0]   # a backend that scores only in some setups
        return (f"NLL probe skipped for model {label!r}: this {gen.backend!r} engine cannot score text ({why}); "
                f"use backend 'hf' for the probe, or a merged export of the adapter")
    return (f"NLL probe skipped for model {label!r}: backend {gen.backend!r} cannot score text (no token "
            f"log-probabilities); use backend {' or '.join(repr(b) for b in scoring_backends())} for the probe")


def solution_nll(model, tokenizer, items: list[Item], *, batch_size: int = 8, max_tokens: int = 768,
                 dtype: str = "auto") -> list[dict]:
    """``probe`` on a bare transformers model and tokenizer (the hf backend's scoring code,
    ``generation.hf.score_pairs``). ``dtype``: 'auto' runs the forward passes under bf16 autocast on a CPU with
    native bf16 (unquantized model only), 'fp32' never, 'bf16' always; log-probabilities are taken in fp32."""
    kept, pairs = solution_pairs(items)
    return _rows(kept, score_pairs(model, tokenizer, pairs, batch_size=batch_size, max_tokens=max_tokens,
                                   dtype=dtype))


def nll_table(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Per model and benchmark: token-weighted mean NLL and a bootstrap 95% interval over items."""
    import numpy as np
    df = pd.DataFrame(rows)
    out = []
    for (m, b), g in df.groupby(["model", "benchmark"], sort=False):
        rng = np.random.default_rng(0)
        s, t = g.nll_sum.to_numpy(), g.tokens.to_numpy()
        idx = rng.integers(0, len(g), size=(2000, len(g)))
        boot = s[idx].sum(1) / t[idx].sum(1)
        out.append({"model": m, "benchmark": b, "n": len(g), "tokens": int(t.sum()),
                    "nll_per_token": float(s.sum() / t.sum()),
                    "ci_low": float(np.percentile(boot, 2.5)), "ci_high": float(np.percentile(boot, 97.5))})
    return pd.DataFrame(out)


def nll_report(rows: list[dict], base: str):
    """(table, figure, per-model change vs ``base``) for the notebook; (empty, None, empty) without rows."""
    if not rows:
        return pd.DataFrame(), None, pd.DataFrame()
    from mathcode.evaluate.figures import bar_chart
    table = nll_table(rows)
    fig = bar_chart(table, value="nll_per_token", title="Reference-solution NLL per token (bootstrap 95% CI)",
                    ylabel="nats / token")
    from mathcode.evaluate.benchmarks import require_unique_ids
    require_unique_ids([(r["model"], r["benchmark"], str(r["item_id"])) for r in rows], "NLL probe rows")
    nd = pd.DataFrame(rows).pivot_table(index=["benchmark", "item_id"], columns="model", values="nll_mean")
    change = pd.DataFrame([{"model": m, "vs": base, "mean_change_nats_per_token": float((nd[m] - nd[base]).mean()),
                            "lower_on": int(((nd[m] - nd[base]) < 0).sum()), "solutions": int(len(nd))}
                           for m in nd.columns if m != base and base in nd.columns])
    return table, fig, change
