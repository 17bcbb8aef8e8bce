"""Compare the arms of an ablation: paired differences with bootstrap intervals over items and seeds.

Why paired: every arm is evaluated on the same items with the same prompts, so the item-to-item spread (some
problems are simply hard) cancels in the per-item difference; what remains is the effect plus training noise.
Why resample seeds too: with several training seeds per arm, the interval must include the seed-to-seed spread —
one lucky seed is not evidence. The statistic is the mean over items and seeds of ``arm − reference``; each
bootstrap replicate resamples items and seeds independently, with replacement (a two-way bootstrap).

Reads only what the arms wrote (``04_evaluation/items.jsonl`` and ``nll.jsonl``), so it works on a finished
ablation, on one still running (the arms done so far), and from notebook 04.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mathcode import paths
from mathcode.evaluate.benchmarks import DuplicateItemIdError, require_unique_ids  # noqa: F401  (re-exported)
from mathcode.util import read_jsonl

PLAN = "ablation/plan.json"
METRICS = {"nll": ("gold-solution NLL", "nats/token", "lower"), "accuracy": ("accuracy", "share correct", "higher")}
COLUMNS = ["benchmark", "metric", "arm", "reference", "n_items", "n_seeds", "reference_mean", "arm_mean", "diff",
           "ci_low", "ci_high", "ci", "excludes_zero", "se", "mde", "sentence"]


# --- statistics -------------------------------------------------------------------------------------
def paired_bootstrap(reference, arm, *, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Mean of ``arm − reference`` with a percentile bootstrap interval, resampling items and seeds.

    ``reference`` and ``arm``: arrays of shape (items,) or (items, seeds) holding the same items (rows) and the
    same training seeds (columns) under the two arms. Returns {diff, ci_low, ci_high, n_items, n_seeds}.
    """
    a, b = np.asarray(reference, dtype=float), np.asarray(arm, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_bootstrap: the arms must cover the same items and seeds, got shapes {a.shape} "
                         f"and {b.shape}")
    d = (b - a).reshape(len(a), -1) if a.ndim else np.empty((0, 1))
    if d.size == 0:
        raise ValueError("paired_bootstrap: no paired items")
    if not np.isfinite(d).all():
        raise ValueError("paired_bootstrap: missing (NaN) values; pass complete item x seed grids")
    n_items, n_seeds = d.shape
    rng = np.random.default_rng(seed)
    # resampling with replacement == multinomial counts; the replicate mean is c_items^T D c_seeds / (I * S)
    ci_items = rng.multinomial(n_items, np.full(n_items, 1 / n_items), size=n_boot).astype(float)
    ci_seeds = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=n_boot).astype(float)
    stats = np.einsum("bs,bs->b", ci_items @ d, ci_seeds) / (n_items * n_seeds)
    lo, hi = np.quantile(stats, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    se = float(stats.std(ddof=1))
    return {"diff": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi), "n_items": n_items,
            "n_seeds": n_seeds, "se": se, "mde": mde(se, ci)}


POWER = 0.8


def mde(se: float, ci: float = 0.95, power: float = POWER) -> float:
    """Minimum detectable effect: the true difference that a two-sided test at level ``1 - ci`` would detect
    with probability ``power``, given the standard error ``se`` of the difference at this size (items x seeds):
    ``(z_{1-alpha/2} + z_power) * se`` — 2.80 x se for 95% and 80% power (normal approximation; ``se`` is the
    bootstrap replicates' standard deviation, so it carries the item and the seed spread)."""
    from statistics import NormalDist
    z = NormalDist().inv_cdf
    return float((z(1 - (1 - ci) / 2) + z(power)) * se)


def sentence(benchmark: str, metric: str, arm: str, reference: str, r: dict, ci: float) -> str:
    """One plain sentence: the difference, its interval, and whether the interval excludes zero."""
    name, unit, better = METRICS[metric]
    fmt = (lambda v: f"{v:+.4f}") if metric == "nll" else (lambda v: f"{100 * v:+.1f} points")
    head = (f"{benchmark}: {arm} minus {reference}, {name} {fmt(r['diff'])} "
            f"({int(round(100 * ci))}% CI {fmt(r['ci_low'])} to {fmt(r['ci_high'])}; "
            f"{r['n_items']} items x {r['n_seeds']} seed{'s' if r['n_seeds'] != 1 else ''})")
    if r.get("mde") is not None and not (r["ci_low"] == r["ci_high"] == 0):
        head += (f"; the smallest effect this size detects with {int(100 * POWER)}% power (MDE) is "
                 f"{fmt(r['mde']).lstrip('+')}")
    if r["ci_low"] == r["ci_high"] == 0:
        return head + (" — identical on every item and seed (the interval is the point zero): the arms did not "
                       "differ here, e.g. because they trained on the same data.")
    if r["ci_low"] > 0 or r["ci_high"] < 0:
        good = (r["diff"] < 0) == (better == "lower")
        caveat = (" With one training seed the interval covers item sampling only, not training noise: run more "
                  "seeds before reading it as an effect.") if r["n_seeds"] < 2 else ""
        return head + (f" — the interval excludes zero: {arm} is {'better' if good else 'worse'} than {reference} "
                       f"on this measure.{caveat}")
    return head + " — the interval includes zero: no difference can be claimed at this size."


# --- reading the arms ---------------------------------------------------------------------------------
def find_root(run_dir) -> Path | None:
    """The ablation folder that ``run_dir`` is (or is an arm of), else None."""
    d = paths.resolve_path(run_dir)
    for cand in (d, d.parent.parent):
        if (cand / PLAN).is_file():
            return cand
    return None


def load_plan(root) -> dict:
    return json.loads((Path(root) / PLAN).read_text())


def arm_rows(root) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-item rows of every evaluated arm run: (accuracy rows, NLL rows), columns arm, seed, benchmark, item_id,
    value (+ prompt_id for accuracy). Only the trained model's rows (those with an adapter) count for an arm."""
    root = Path(root)
    plan = load_plan(root)
    acc, nll = [], []
    for run in plan["runs"]:
        d = root / run["dir"] / paths.PHASE_NAMES["evaluation"]
        if not _complete(d):
            continue
        for r in read_jsonl(d / "items.jsonl", missing_ok=True):
            if r.get("adapter") and r.get("mode", "cot") == "cot":
                acc.append({"arm": run["arm"], "seed": run["seed"], "benchmark": r["benchmark"],
                            "item_id": str(r["item_id"]), "prompt_id": r.get("prompt_id"),
                            "value": float(bool(r["correct"]))})
        trained = _trained_label(d / "items.jsonl")
        for r in read_jsonl(d / "nll.jsonl", missing_ok=True):
            if trained is None or r.get("model") == trained:
                nll.append({"arm": run["arm"], "seed": run["seed"], "benchmark": r["benchmark"],
                            "item_id": str(r["item_id"]), "value": float(r["nll_mean"])})
    # pairing is by item id: an id that occurs twice in one arm run would pair (or average) two different items
    for rows, what in ((acc, "accuracy rows"), (nll, "NLL rows")):
        require_unique_ids([(r["arm"], r["seed"], r["benchmark"], r["item_id"]) for r in rows],
                           f"ablation comparison ({what} of {root})")
    cols = ["arm", "seed", "benchmark", "item_id", "value"]
    return pd.DataFrame(acc, columns=cols + ["prompt_id"]), pd.DataFrame(nll, columns=cols)


def _complete(phase_dir: Path) -> bool:
    f = phase_dir / "phase.json"
    try:
        return f.is_file() and json.loads(f.read_text()).get("status") == "complete"
    except json.JSONDecodeError:
        return False


def _trained_label(items_file: Path) -> str | None:
    for r in read_jsonl(items_file, missing_ok=True):
        if r.get("adapter"):
            return r.get("model")
    return None


def _grid(df: pd.DataFrame, arm: str, benchmark: str, items: list, seeds: list) -> np.ndarray:
    sub = df[(df.arm == arm) & (df.benchmark == benchmark)]
    piv = sub.pivot(index="item_id", columns="seed", values="value")   # raises on duplicates, never averages
    return piv.reindex(index=items, columns=seeds).to_numpy(dtype=float)


# --- the comparison table -----------------------------------------------------------------------------
def compare(root, *, n_boot: int | None = None, ci: float | None = None) -> pd.DataFrame:
    """Per benchmark, metric and arm: the paired difference to the reference arm with its bootstrap interval.

    Only items and seeds that both arms have complete enter a comparison (a running ablation compares the seeds
    finished so far). Columns: see ``COLUMNS``.
    """
    root = Path(root)
    plan = load_plan(root)
    n_boot = n_boot or plan.get("bootstrap", 2000)
    ci = ci or plan.get("ci", 0.95)
    acc, nll = arm_rows(root)
    out = []
    for metric, df in (("nll", nll), ("accuracy", acc)):
        if df.empty:
            continue
        for bench in sorted(df.benchmark.unique()):
            for arm, ref in contrasts(plan):
                seeds = sorted(set(df[(df.arm == ref) & (df.benchmark == bench)].seed)
                               & set(df[(df.arm == arm) & (df.benchmark == bench)].seed))
                if not seeds:
                    continue
                a_all = _grid(df, ref, bench, sorted(df[df.benchmark == bench].item_id.unique()), seeds)
                b_all = _grid(df, arm, bench, sorted(df[df.benchmark == bench].item_id.unique()), seeds)
                keep = np.isfinite(a_all).all(1) & np.isfinite(b_all).all(1)
                if not keep.any():
                    continue
                r = paired_bootstrap(a_all[keep], b_all[keep], n_boot=n_boot, ci=ci, seed=plan.get("seed", 0))
                out.append({"benchmark": bench, "metric": metric, "arm": arm, "reference": ref,
                            **{k: r[k] for k in ("n_items", "n_seeds")},
                            "reference_mean": float(np.mean(a_all[keep])), "arm_mean": float(np.mean(b_all[keep])),
                            **{k: r[k] for k in ("diff", "ci_low", "ci_high")}, "ci": ci,
                            "excludes_zero": bool(r["ci_low"] > 0 or r["ci_high"] < 0),
                            "se": r["se"], "mde": r["mde"],
                            "sentence": sentence(bench, metric, arm, ref, r, ci)})
    return pd.DataFrame(out, columns=COLUMNS)


def contrasts(plan: dict) -> list[tuple[str, str]]:
    """(arm, reference) pairs to compare: every arm against the plan's reference, and — when both ran —
    basic+translated against token-matched, the contrast that separates "translated code" from "more tokens"."""
    ref = plan["reference"]
    out = [(a, ref) for a in plan["arms"] if a != ref]
    pair = ("basic+translated", "token-matched")
    if set(pair) <= set(plan["arms"]) and ref not in pair:
        out.append(pair)
    return out


def conclusion(table: pd.DataFrame) -> str:
    """A plain paragraph on what the run shows, whichever way it came out: per contrast, the gold-solution NLL
    benchmarks where the interval excludes zero (better or worse) and where it does not, against the MDE;
    accuracy is mentioned as reported, not relied on."""
    if table is None or not len(table):
        return "No arm has finished its evaluation yet: nothing to conclude."
    out = []
    nll = table[table.metric == "nll"]
    for (arm, ref), g in nll.groupby(["arm", "reference"], sort=False):
        better = g[g.excludes_zero & (g["diff"] < 0)]
        worse = g[g.excludes_zero & (g["diff"] > 0)]
        none = g[~g.excludes_zero]
        fmt = lambda r: (f"{r.benchmark} {r['diff']:+.4f} nats/token "
                         f"[{r.ci_low:+.4f}, {r.ci_high:+.4f}]")
        parts = []
        if len(better):
            parts.append(f"{arm} predicts the reference solutions better than {ref} on "
                         + "; ".join(fmt(r) for _, r in better.iterrows()))
        if len(worse):
            parts.append(f"{arm} predicts them worse than {ref} on " + "; ".join(fmt(r) for _, r in worse.iterrows()))
        if len(none):
            parts.append(f"no difference can be claimed on "
                         + "; ".join(f"{fmt(r)} (could detect about ±{r.mde:.4f})" for _, r in none.iterrows()))
        n_items = ", ".join(f"{r.benchmark} {int(r.n_items)}" for _, r in g.iterrows())
        seeds = int(g.n_seeds.min())
        out.append(f"{arm} vs {ref} (gold-solution NLL, lower is better; {n_items} items, {seeds} seed"
                   f"{'s' if seeds != 1 else ''}): " + "; ".join(parts) + ".")
    acc = table[table.metric == "accuracy"]
    if len(acc):
        moved = acc[acc.excludes_zero]
        out.append("Accuracy (reported, not relied on at this model size): "
                   + ("no interval excludes zero." if moved.empty else
                      "; ".join(f"{r.arm} vs {r.reference} on {r.benchmark} {100 * r['diff']:+.1f} points "
                                f"[{100 * r.ci_low:+.1f}, {100 * r.ci_high:+.1f}]" for _, r in moved.iterrows()) + "."))
    if nll.empty:
        out.insert(0, "No gold-solution NLL was measured (nll_probe off or no reference solutions).")
    return "What this run shows: " + " ".join(out)


def arms_table(run_dir) -> pd.DataFrame:
    """Each arm and seed side by side per benchmark (accuracy, gold-solution NLL, items): what notebook 04 shows
    for an ablation. Empty (with a note in ``attrs``) when ``run_dir`` is not part of one."""
    root = find_root(run_dir)
    cols = ["arm", "seed", "benchmark", "accuracy", "nll", "items"]
    if root is None:
        t = pd.DataFrame(columns=cols)
        t.attrs["note"] = f"{run_dir} is not part of an ablation run (no {PLAN} here or two levels up)"
        return t
    acc, nll = arm_rows(root)
    a = acc.groupby(["arm", "seed", "benchmark"]).value.agg(accuracy="mean", items="size").reset_index()
    n = nll.groupby(["arm", "seed", "benchmark"]).value.mean().rename("nll").reset_index()
    t = a.merge(n, on=["arm", "seed", "benchmark"], how="outer")
    order = {a: i for i, a in enumerate(load_plan(root)["arms"])}
    t = t.sort_values(["benchmark", "arm", "seed"], key=lambda s: s.map(order) if s.name == "arm" else s)
    return t.reindex(columns=cols).reset_index(drop=True)


def figure(table: pd.DataFrame, title: str = ""):
    """Forest plot: per benchmark and arm, the difference to the reference with its interval (left: NLL, right:
    accuracy); a dashed line at zero. Filled markers: the interval excludes zero."""
    import matplotlib.pyplot as plt
    metrics = [m for m in ("nll", "accuracy") if (table.metric == m).any()] or ["nll"]
    rows = table[["benchmark", "arm", "reference"]].drop_duplicates().values.tolist()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 0.55 * max(3, len(rows)) + 1.2),
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    arms = list(dict.fromkeys(table.arm))
    for ax, metric in zip(axes[0], metrics):
        sub = table[table.metric == metric]
        for y, (bench, arm, ref) in enumerate(rows):
            r = sub[(sub.benchmark == bench) & (sub.arm == arm) & (sub.reference == ref)]
            if r.empty:
                continue
            r = r.iloc[0]
            scale = 100 if metric == "accuracy" else 1
            c = colors[arms.index(arm) % len(colors)]
            ax.errorbar([r["diff"] * scale], [y], xerr=[[(r["diff"] - r.ci_low) * scale], [(r.ci_high - r["diff"]) * scale]],
                        fmt="o", color=c, mfc=c if r.excludes_zero else "white", capsize=3)
        ax.axvline(0, color="#888", ls="--", lw=1)
        ax.set_yticks(range(len(rows)), [f"{b}\n{a} − {r}" for b, a, r in rows])
        ax.invert_yaxis()
        name, unit, better = METRICS[metric]
        ax.set_xlabel(f"{name} difference ({'points' if metric == 'accuracy' else unit}; {better} is better)")
        ax.set_title(f"{name}: arm − reference")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def seeds_figure(root):
    """Per-seed mean gold-solution NLL (left) and accuracy (right) of each arm per benchmark: how noisy it is."""
    import matplotlib.pyplot as plt
    t = arms_table(root)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    arms = list(dict.fromkeys(t.arm))
    benches = sorted(t.benchmark.dropna().unique())
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, col, label in ((axes[0], "nll", "gold-solution NLL (nats/token)"), (axes[1], "accuracy", "accuracy")):
        for k, arm in enumerate(arms):
            sub = t[t.arm == arm]
            xs = [benches.index(b) + (k - (len(arms) - 1) / 2) * 0.18 for b in sub.benchmark]
            ax.scatter(xs, sub[col], color=colors[k % len(colors)], label=arm, s=28)
        ax.set_xticks(range(len(benches)), benches)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("One dot per training seed")
    fig.tight_layout()
    return fig
