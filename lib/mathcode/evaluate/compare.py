"""Base vs. trained on the same items: accuracy with confidence intervals, paired differences, flips.

Why these statistics: at demo scale a benchmark has a handful of items, so a bare accuracy invites
over-reading. Each accuracy gets a Wilson 95% interval (well-behaved at 0/n and n/n, unlike the normal
approximation); the difference between two models on the *same* items gets Newcombe's paired score interval
(his method 10: the two Wilson intervals combined with the items' correlation, so item difficulty cancels).
Not a paired bootstrap over items: with few items and few flips it collapses to a point — no flip gives [0, 0],
which reads as certainty — and in simulations of 10–20 items with rare flips it covered the true difference
only 40–86% of the time where this interval covered 95–100% (``tests/test_eval_intervals.py`` repeats the
simulation). Flipped items (wrong→right, right→wrong) are listed to read, because a net change of zero can hide
many real changes.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (0..1); (nan, nan) for n = 0."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def paired_difference(base, other, z: float = 1.959964) -> tuple[float, float, float]:
    """Mean of other - base over paired 0/1 outcomes and Newcombe's (1998, method 10) 95% score interval.

    Cells: both right (a), only ``other`` right (b), only ``base`` right (c), both wrong (d). The interval combines
    the Wilson intervals of the two accuracies, narrowed by their correlation (paired items move together)."""
    x, y = np.asarray(base, float), np.asarray(other, float)
    if len(x) != len(y):
        raise ValueError(f"paired outcomes need the same items: {len(x)} base and {len(y)} other outcomes")
    if len(x) == 0:
        return (float("nan"),) * 3
    if not (np.isin(x, (0, 1)).all() and np.isin(y, (0, 1)).all()):
        raise ValueError("paired_difference takes 0/1 outcomes (right or wrong per item)")
    n = len(x)
    a = int(((x == 1) & (y == 1)).sum()); b = int(((x == 0) & (y == 1)).sum())
    c = int(((x == 1) & (y == 0)).sum()); d = n - a - b - c
    p_other, p_base = (a + b) / n, (a + c) / n
    lo_o, hi_o = wilson(a + b, n, z)
    lo_b, hi_b = wilson(a + c, n, z)
    # phi, the correlation of the pairs, shrunk towards 0 by n/2 when positive (Newcombe's adjustment): unshrunk,
    # items that all agree (no flip) give phi = 1 and an interval of almost no width
    den = math.sqrt((a + b) * (c + d) * (a + c) * (b + d))
    cross = a * d - b * c
    shrunk = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
    phi = shrunk / den if den > 0 else 0.0
    diff = p_other - p_base
    o_down, o_up, b_down, b_up = p_other - lo_o, hi_o - p_other, p_base - lo_b, hi_b - p_base
    down = math.sqrt(max(0.0, o_down ** 2 - 2 * phi * o_down * b_up + b_up ** 2))
    up = math.sqrt(max(0.0, o_up ** 2 - 2 * phi * o_up * b_down + b_down ** 2))
    return (diff, max(-1.0, diff - down), min(1.0, diff + up))


def accuracy_table(rows: list[dict] | pd.DataFrame, by=("model", "benchmark")) -> pd.DataFrame:
    """Accuracy, n and Wilson 95% CI per group."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[*by, "n", "correct", "accuracy", "ci_low", "ci_high"])
    g = df.groupby(list(by), sort=False, dropna=False)["correct"].agg(["size", "sum"]).reset_index()
    g = g.rename(columns={"size": "n", "sum": "correct"})
    g["correct"] = g["correct"].astype(int)
    g["accuracy"] = g["correct"] / g["n"]
    ci = [wilson(k, n) for k, n in zip(g["correct"], g["n"])]
    g["ci_low"], g["ci_high"] = [c[0] for c in ci], [c[1] for c in ci]
    return g


def _paired(df: pd.DataFrame, base: str, other: str) -> pd.DataFrame:
    from mathcode.evaluate.benchmarks import require_unique_ids
    for m in (base, other):
        sub = df[df.model == m]
        require_unique_ids(list(zip(sub.benchmark, sub.item_id.astype(str))), f"paired comparison, model {m!r}")
    a = df[df.model == base].set_index(["benchmark", "item_id"])
    b = df[df.model == other].set_index(["benchmark", "item_id"])
    common = a.index.intersection(b.index)
    return pd.merge(a.loc[common], b.loc[common], left_index=True, right_index=True, suffixes=("_base", "_other"))


def differences(rows, base: str) -> pd.DataFrame:
    """Per benchmark and every non-base model: accuracy difference vs ``base`` with Newcombe's paired interval."""
    df = pd.DataFrame(rows)
    out = []
    for other in [m for m in df.model.unique() if m != base]:
        p = _paired(df, base, other)
        for bench, grp in p.groupby(level=0, sort=False):
            d, lo, hi = paired_difference(grp["correct_base"].astype(int), grp["correct_other"].astype(int))
            out.append({"model": other, "vs": base, "benchmark": bench, "n": len(grp), "diff": d,
                        "ci_low": lo, "ci_high": hi,
                        "wrong_to_right": int((~grp.correct_base.astype(bool) & grp.correct_other.astype(bool)).sum()),
                        "right_to_wrong": int((grp.correct_base.astype(bool) & ~grp.correct_other.astype(bool)).sum())})
    return pd.DataFrame(out)


def flipped(rows, base: str, other: str) -> pd.DataFrame:
    """Items whose correctness differs between ``base`` and ``other`` (both completions, to read)."""
    df = pd.DataFrame(rows)
    p = _paired(df, base, other)
    f = p[p.correct_base.astype(bool) != p.correct_other.astype(bool)].reset_index()
    if f.empty:
        return pd.DataFrame(columns=["benchmark", "item_id", "direction", "gold", "extracted_base",
                                     "extracted_other", "completion_base", "completion_other"])
    f["direction"] = np.where(f.correct_other.astype(bool), "wrong→right", "right→wrong")
    return f[["benchmark", "item_id", "direction", "gold_base", "extracted_base", "extracted_other",
              "completion_base", "completion_other"]].rename(columns={"gold_base": "gold"})


def answers_table(rows, max_chars: int = 220) -> pd.DataFrame:
    """Per item: the gold answer next to each model's extracted answer (✓/✗) and the start of its completion —
    what the model actually said, to read next to the accuracy."""
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=["benchmark", "item", "gold"])
    out = []
    for (bench, item), g in df.groupby(["benchmark", "item_id"], sort=False):
        row = {"benchmark": bench, "item": str(item), "gold": str(g["gold"].iloc[0])}
        for r in g.itertuples():
            mark = "✓" if bool(r.correct) else "✗"
            ext = getattr(r, "extracted", None)
            row[f"{r.model}: answer"] = f"{mark} {ext if ext not in (None, '') and ext == ext else '(none found)'}"
            comp = re.sub(r"\n\s*\n+", "\n", str(getattr(r, "completion", "") or "").strip())   # no blank lines
            row[f"{r.model}: completion"] = comp[:max_chars] + ("…" if len(comp) > max_chars else "")
        out.append(row)
    return pd.DataFrame(out)


def sampling_table(rows) -> pd.DataFrame:
    """With n > 1 samples per item: maj@n (= ``correct``), pass@1 and pass@n (unbiased estimator) per group."""
    df = pd.DataFrame([r for r in rows if r.get("n_samples", 1) > 1])
    if df.empty:
        return pd.DataFrame(columns=["model", "benchmark", "n", "maj@n", "pass@1", "pass@n"])
    df["pass@1"] = [r["1"] for r in df["pass_at"]]
    df["pass@n"] = [r[str(n)] for r, n in zip(df["pass_at"], df["n_samples"])]
    g = df.groupby(["model", "benchmark"], sort=False)
    return g.agg(n=("correct", "size"), **{"maj@n": ("correct", "mean"), "pass@1": ("pass@1", "mean"),
                                           "pass@n": ("pass@n", "mean")}).reset_index()


def pal_status(pal_rows) -> pd.DataFrame:
    """How many PAL programs ran, failed or were missing, per model."""
    if not pal_rows:
        return pd.DataFrame(columns=["model", "program_status", "items"])
    return pd.DataFrame(pal_rows).groupby(["model", "program_status"]).size().rename("items").reset_index()


def flips_all(rows, base: str, others: list[str]) -> pd.DataFrame:
    """Flipped items of every model against ``base`` in one table."""
    parts = [flipped(rows, base, m).assign(model=m) for m in others]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
