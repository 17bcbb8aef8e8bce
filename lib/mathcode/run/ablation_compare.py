"""Compare the arms of an ablation: per contrast, the difference with an interval over training runs and items.

The layout: every arm is evaluated on the same items with the same prompts; each arm is trained with several seeds.
Items are paired across arms (the item-to-item spread — some problems are simply hard — cancels in the per-item
difference). Runs are not: seed s of one arm trains on other data, in another order, with another held-out split
than seed s of another arm, so the seed label pairs nothing and the runs of two arms are independent samples.

The variance of ``mean(arm) − mean(reference)`` (over items and seeds) has three parts, each estimated where it
shows:

- run-to-run, per arm: the variance of that arm's per-run means over its seeds (``v/S``, S − 1 degrees of
  freedom); it carries the within-run item noise of a run mean as well, which belongs to the difference's variance;
- item by arm: the variance over items of the seed-averaged per-item differences, less the within-run noise already
  counted in the run part (the item x seed residual mean square of each arm, divided by its seeds), truncated at 0;
- the interval is ``diff ± t * se`` with the t quantile at the Satterthwaite degrees of freedom of that sum.

Why this and not a bootstrap or a mixed model (simulated on synthetic ablations in this layout; the tests repeat
it): resampling 3 seeds with replacement shrinks the seed variance by (S − 1)/S, has 10 distinct seed resamples and
normal tails — the kit's earlier two-way percentile bootstrap covered 76% at 3 seeds and 86% at 5 when run-to-run
variance dominates, the case the kit's runs are in (and 99.5% when items dominate: resampling items counts the
within-run noise twice). A linear mixed model (statsmodels MixedLM, REML, a random
intercept per run, items fixed) estimates the same components but its Wald interval uses a normal quantile: on 80
synthetic ablations each (3 seeds, 40 items) it covered 89% (run-dominated) and 88% (item x arm interaction), and it
needs a package the kit does not otherwise use. The moment estimator here has closed-form degrees of freedom and
covered 94–97% at 3, 5 and 10 seeds in every regime simulated (run-dominated, item-dominated, item x arm
interaction; 30 and 200 items).

Reads only what the arms wrote (``04_evaluation/items.jsonl`` and ``nll.jsonl``), so it works on a finished
ablation, on one still running (the arms done so far), and from notebook 04.
"""
from __future__ import annotations

import functools
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
           "ci_low", "ci_high", "ci", "excludes_zero", "se", "df", "mde", "run_sd", "run_share", "per_seed",
           "sentence"]
POWER = 0.8


# --- statistics -------------------------------------------------------------------------------------
def _as_batch(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"contrast: expected (items,), (items, seeds) or (replicates, items, seeds), got {x.shape}")
    return x


def variance_components(reference, arm) -> dict:
    """The parts of the variance of ``mean(arm) − mean(reference)``, vectorized over a leading replicate axis.

    ``reference``: (items, seeds_ref) [or (replicates, items, seeds_ref)]; ``arm``: the same items (rows), its own
    runs (columns; their number may differ). Returns arrays (one value per replicate): ``diff``; the components
    ``run_reference`` / ``run_arm`` (variance of the arm's mean over its runs, each with ``seeds − 1`` df),
    ``item`` (item x arm part, ``df_item``), ``run_var_reference`` / ``run_var_arm`` (run-to-run variance of one
    run's mean, within-run item noise removed, ≥ 0), their sum ``var``, and ``df`` (Satterthwaite).

    An arm with one run has no run-to-run variance of its own: it borrows the other arm's per-run variance; with
    one run in both arms the run part is unknown and left out (``runs_known`` False): the interval then covers item
    sampling only.
    """
    a, b = _as_batch(reference), _as_batch(arm)
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"contrast: the arms must cover the same items, got shapes {a.shape} and {b.shape}")
    if a.shape[1] == 0:
        raise ValueError("contrast: no paired items")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("contrast: missing (NaN) values; pass complete item x seed grids")
    R, n_items = a.shape[:2]
    per_run, resid = [], []
    for y in (a, b):
        S = y.shape[2]
        m = y.mean(1)                                                      # (R, S) per-run means
        per_run.append(m.var(1, ddof=1) if S > 1 else np.full(R, np.nan))
        if S > 1 and n_items > 1:
            res = y - y.mean(2, keepdims=True) - y.mean(1, keepdims=True) + y.mean((1, 2), keepdims=True)
            resid.append((res ** 2).sum((1, 2)) / ((n_items - 1) * (S - 1)))
        else:
            resid.append(np.zeros(R))
    sa, sb = a.shape[2], b.shape[2]
    runs_known = sa > 1 or sb > 1
    va = per_run[0] if sa > 1 else (per_run[1] if sb > 1 else np.zeros(R))
    vb = per_run[1] if sb > 1 else (per_run[0] if sa > 1 else np.zeros(R))
    dfa = sa - 1 if sa > 1 else (sb - 1 if sb > 1 else np.inf)
    dfb = sb - 1 if sb > 1 else (sa - 1 if sa > 1 else np.inf)
    run_a, run_b = va / sa, vb / sb
    d = b.mean(2) - a.mean(2)                                              # (R, items) seed-averaged differences
    diff = d.mean(1)
    if n_items > 1:
        q = d.var(1, ddof=1)
        ea, eb = resid[0] / sa, resid[1] / sb                              # within-run noise already in the run part
        if not runs_known:
            ea = eb = np.zeros(R)
        item_raw = q - ea - eb
        pos = item_raw > 0
        item = np.where(pos, item_raw / n_items, 0.0)
        # the item part counts as a mean square with items - 1 df: continuous as it is truncated at 0 (the
        # Satterthwaite weight of the difference q - ea - eb itself collapses the df when that difference is near 0)
        df_item = np.full(R, float(n_items - 1))
        w_item = item ** 2 / (n_items - 1)
    else:
        item, w_item, df_item = np.zeros(R), np.zeros(R), np.full(R, np.inf)
    var = run_a + run_b + item
    w = run_a ** 2 / dfa + run_b ** 2 / dfb + w_item
    with np.errstate(divide="ignore", invalid="ignore"):
        df = np.where(w > 0, var ** 2 / w, np.inf)
    run_var_ref = np.maximum(0.0, va - resid[0] / n_items) if runs_known else np.full(R, np.nan)
    run_var_arm = np.maximum(0.0, vb - resid[1] / n_items) if runs_known else np.full(R, np.nan)
    return {"diff": diff, "var": var, "df": df, "run_reference": run_a, "run_arm": run_b, "item": item,
            "df_run_reference": np.full(R, float(dfa)), "df_run_arm": np.full(R, float(dfb)), "df_item": df_item,
            "run_var_reference": run_var_ref, "run_var_arm": run_var_arm, "runs_known": runs_known,
            "n_items": n_items, "n_seeds_reference": sa, "n_seeds_arm": sb}


def t_interval(components: dict, ci: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats
    se = np.sqrt(components["var"])
    t = stats.t.ppf(1 - (1 - ci) / 2, components["df"])
    return components["diff"] - t * se, components["diff"] + t * se


@functools.lru_cache(maxsize=256)
def _chi2_draws(df: int, draws: int) -> np.ndarray:
    """Stratified chi-square(df)/df draws in a fixed shuffled order (one order per df, so parts stay independent)."""
    from scipy import stats
    u = (np.arange(draws) + 0.5) / draws
    return stats.chi2.ppf(np.random.default_rng(df).permutation(u), df) / df


def _half_widths(parts: list[tuple[float, float]], ci: float, draws: int = 2000) -> np.ndarray:
    """Half-widths ``t_{df^} * sqrt(V^)`` of the interval over the sampling distribution of its own variance estimate
    (a sum of independent scaled chi-squares, one per part) and of the Satterthwaite df computed from it; stratified
    draws, deterministic. Degrees of freedom are rounded to whole numbers for the draws (the power moves by far
    less than its own simulation error); parts with 10,000 df or more are taken as exact."""
    from scipy import special
    vhat, w = np.zeros(draws), np.zeros(draws)
    for i, (c, k) in enumerate(parts):
        if np.isfinite(k) and k < 1e4:
            # the draw with at least 1 df; its weight in the Satterthwaite df with its own (an item part that is a
            # small difference of two mean squares can have df < 1, and then lowers the df the test uses)
            x = c * np.roll(_chi2_draws(max(1, int(round(k))), draws), 997 * i)   # equal df: other pairings
            w += x ** 2 / k
        else:
            x = np.full(draws, c)
        vhat += x
    dfh = np.where(w > 0, vhat ** 2 / np.where(w > 0, w, 1.0), np.inf)
    t = np.where(np.isfinite(dfh), special.stdtrit(np.where(np.isfinite(dfh), dfh, 1.0), 1 - (1 - ci) / 2),
                 special.ndtri(1 - (1 - ci) / 2))
    return t * np.sqrt(vhat)


def power(delta: float, parts: list[tuple[float, float]], ci: float = 0.95) -> float:
    """Probability that the interval excludes zero when the true difference is ``delta``, for a comparison whose
    variance is the sum of ``parts`` = [(expected value, degrees of freedom), ...].

    The noncentral t at the Satterthwaite df is the right power when the variance estimate is one scaled chi-square;
    here it is a sum of independent scaled chi-squares (one per arm's runs, one for items) and the df the test uses is
    estimated from them too. Simulated: at 3 seeds the noncentral t at the design df promised 80% where the test as
    run reached 65–73%. So the noncentral-t integral is taken over the joint distribution of the parts:
    power = E[P(|N(delta, V)| > t_{df^} sqrt(V^))] — with one part it is the noncentral t itself."""
    from scipy import special
    parts = [(float(c), float(k)) for c, k in parts if c > 0]
    V = sum(c for c, _ in parts)
    if V <= 0:
        return float(delta != 0)
    half, sd = _half_widths(parts, ci), np.sqrt(V)
    return float(np.mean(special.ndtr((delta - half) / sd) + special.ndtr((-delta - half) / sd)))


def mde_from_parts(parts: list[tuple[float, float]], ci: float = 0.95, target: float = POWER) -> float:
    """Minimum detectable effect: the true difference whose interval excludes zero with probability ``target``
    (see ``power``), for variance parts [(expected value, df), ...]."""
    from scipy import optimize, special
    parts = [(float(c), float(k)) for c, k in parts if c > 0]
    V = sum(c for c, _ in parts)
    if V <= 0:
        return 0.0
    half, sd = _half_widths(parts, ci), float(np.sqrt(V))
    h = half / sd
    f = lambda k: float(np.mean(special.ndtr(k - h) + special.ndtr(-k - h))) - target
    hi = 4.0
    while f(hi) < 0 and hi < 1e6:
        hi *= 2
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-5) * sd)


def _parts(c: dict, r: int = 0) -> list[tuple[float, float]]:
    return [(float(c["run_reference"][r]), float(c["df_run_reference"][r])),
            (float(c["run_arm"][r]), float(c["df_run_arm"][r])), (float(c["item"][r]), float(c["df_item"][r]))]


def contrast(reference, arm, *, ci: float = 0.95, seeds=None) -> dict:
    """``mean(arm) − mean(reference)`` with its t interval over runs and items, the MDE and the per-seed differences.

    ``reference``, ``arm``: arrays (items,) or (items, seeds), the same items as rows; columns are independent
    training runs. ``seeds``: labels of the columns (for the per-seed differences, which need equal columns).
    Returns {diff, ci_low, ci_high, se, df, mde, n_items, n_seeds, run_sd, run_share, per_seed, runs_known}."""
    a, b = _as_batch(reference)[0], _as_batch(arm)[0]
    n_seeds = min(a.shape[1], b.shape[1])
    if a.shape == b.shape and np.array_equal(a, b):
        # the same numbers on every item and run: the arms are evidently the same runs (e.g. trained on the same
        # data), so there is no run-to-run difference to allow for
        a = b = np.zeros((a.shape[0], 1))
    c = variance_components(a, b)
    lo, hi = t_interval(c, ci)
    per_seed = []
    ra, rb = _as_batch(reference)[0], _as_batch(arm)[0]
    if ra.shape[1] == rb.shape[1]:
        labels = list(seeds) if seeds is not None else list(range(ra.shape[1]))
        per_seed = [(s, float(x)) for s, x in zip(labels, rb.mean(0) - ra.mean(0))]
    var = float(c["var"][0])
    rv = [x for x in (c["run_var_reference"][0], c["run_var_arm"][0]) if np.isfinite(x)]
    run_part = float(c["run_reference"][0] + c["run_arm"][0])
    return {"diff": float(c["diff"][0]), "ci_low": float(lo[0]), "ci_high": float(hi[0]), "se": float(np.sqrt(var)),
            "df": float(c["df"][0]), "mde": mde_from_parts(_parts(c), ci), "n_items": c["n_items"],
            "n_seeds": n_seeds,
            "run_sd": float(np.sqrt(np.mean(rv))) if rv else float("nan"),
            "run_share": run_part / var if var > 0 and c["runs_known"] else float("nan"),
            "per_seed": per_seed, "runs_known": c["runs_known"]}


def planned_mde(run_var: float, item_var: float, seeds: int, *, n_items: int, ci: float = 0.95) -> float:
    """The MDE of a contrast between two arms with ``seeds`` runs each, for a run-to-run variance of one run's mean
    ``run_var`` (both arms alike) and an item x arm variance per item ``item_var``; each run's mean carries the
    within-run noise, which ``run_var`` should include as measured (per-run means' variance)."""
    parts = [(run_var / seeds, seeds - 1), (run_var / seeds, seeds - 1), (item_var / n_items, n_items - 1)]
    return mde_from_parts(parts, ci)


def seeds_plan(table: pd.DataFrame, sd: pd.DataFrame, seeds=(3, 5, 10, 15, 20), *,
               contrast=("basic+translated", "token-matched")) -> pd.DataFrame:
    """What more seeds would buy: per benchmark (NLL), the MDE of ``contrast`` with ``seeds`` runs per arm, from this
    run's pooled run-to-run standard deviation (``run_sd``) and the contrast's item x arm part, at the same items."""
    out = []
    if table is None or not len(table) or sd is None or not len(sd):
        return pd.DataFrame(out, columns=["benchmark", "seeds", "mde", "run_sd"])
    rows = table[(table.metric == "nll") & (table.arm == contrast[0]) & (table.reference == contrast[1])]
    for _, r in rows.iterrows():
        m = sd[(sd.benchmark == r.benchmark) & (sd.metric == "nll")]
        if m.empty or not np.isfinite(r.run_share):
            continue
        rsd = float(m.run_sd.iloc[0])
        item_var = float(r.se) ** 2 * (1 - float(r.run_share)) * int(r.n_items)
        for k in seeds:
            out.append({"benchmark": r.benchmark, "seeds": k, "run_sd": rsd,
                        "mde": planned_mde(rsd ** 2, item_var, k, n_items=int(r.n_items), ci=float(r.ci))})
    return pd.DataFrame(out, columns=["benchmark", "seeds", "mde", "run_sd"])


def sentence(benchmark: str, metric: str, arm: str, reference: str, r: dict, ci: float) -> str:
    """One plain sentence: the difference, its interval (with what it covers), the per-seed differences, the MDE,
    and what the interval says."""
    name, unit, better = METRICS[metric]
    fmt = (lambda v: f"{v:+.4f}") if metric == "nll" else (lambda v: f"{100 * v:+.1f} points")
    seeds = r["n_seeds"]
    identical = r["ci_low"] == r["ci_high"] == 0
    head = (f"{benchmark}: {arm} minus {reference}, {name} {fmt(r['diff'])} "
            f"({int(round(100 * ci))}% CI {fmt(r['ci_low'])} to {fmt(r['ci_high'])}; "
            f"{r['n_items']} items x {seeds} seed{'s' if seeds != 1 else ''}")
    df = r.get("df")
    if df is not None and np.isfinite(df) and not identical:
        head += f", t with {df:.1f} df"
    head += ")"
    per = r.get("per_seed") or []
    if len(per) > 1 and not identical:
        head += "; per seed " + ", ".join(f"{fmt(x)}" for _, x in per)
    if r.get("mde") is not None and not identical:
        head += (f"; the smallest effect this size detects with {int(100 * POWER)}% power (MDE) is "
                 f"{fmt(r['mde']).lstrip('+')}")
    if identical:
        return head + (" — identical on every item and seed (the interval is the point zero): the arms did not "
                       "differ here, e.g. because they trained on the same data.")
    caveat = (" With one training seed per arm the interval covers item sampling only, not training noise: run more "
              "seeds before reading it as an effect.") if not r.get("runs_known", seeds > 1) else ""
    if r["ci_low"] > 0 or r["ci_high"] < 0:
        good = (r["diff"] < 0) == (better == "lower")
        return head + (f" — the interval excludes zero: {arm} is {'better' if good else 'worse'} than {reference} "
                       f"on this measure.{caveat}")
    return head + " — the interval includes zero: no difference can be claimed at this size." + caveat


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


def _grid(sub: pd.DataFrame, arm: str, items: list, seeds: list) -> np.ndarray:
    piv = sub[sub.arm == arm].pivot(index="item_id", columns="seed", values="value")   # raises on duplicates
    return piv.reindex(index=items, columns=seeds).to_numpy(dtype=float)


# --- the comparison table -----------------------------------------------------------------------------
def compare(root, *, ci: float | None = None) -> pd.DataFrame:
    """Per benchmark, metric and contrast: the difference between the arms with its t interval over runs and items
    (``contrast``), the MDE and the per-seed differences.

    Only items and seeds that both arms have complete enter a comparison (a running ablation compares the seeds
    finished so far). Columns: see ``COLUMNS``.
    """
    root = Path(root)
    plan = load_plan(root)
    ci = ci or plan.get("ci", 0.95)
    acc, nll = arm_rows(root)
    out = []
    for metric, df in (("nll", nll), ("accuracy", acc)):
        if df.empty:
            continue
        for bench, sub in df.groupby("benchmark", sort=True):
            items = sorted(sub.item_id.unique())
            for arm, ref in contrasts(plan):
                seeds = sorted(set(sub[sub.arm == ref].seed) & set(sub[sub.arm == arm].seed))
                if not seeds:
                    continue
                a_all, b_all = _grid(sub, ref, items, seeds), _grid(sub, arm, items, seeds)
                keep = np.isfinite(a_all).all(1) & np.isfinite(b_all).all(1)
                if not keep.any():
                    continue
                r = contrast(a_all[keep], b_all[keep], ci=ci, seeds=seeds)
                out.append({"benchmark": bench, "metric": metric, "arm": arm, "reference": ref,
                            **{k: r[k] for k in ("n_items", "n_seeds")},
                            "reference_mean": float(np.mean(a_all[keep])), "arm_mean": float(np.mean(b_all[keep])),
                            **{k: r[k] for k in ("diff", "ci_low", "ci_high")}, "ci": ci,
                            "excludes_zero": bool(r["ci_low"] > 0 or r["ci_high"] < 0),
                            **{k: r[k] for k in ("se", "df", "mde", "run_sd", "run_share")},
                            "per_seed": "; ".join(f"seed {s} {x:+.4f}" for s, x in r["per_seed"]),
                            "sentence": sentence(bench, metric, arm, ref, r, ci)})
    return pd.DataFrame(out, columns=COLUMNS)


def run_sd(root) -> pd.DataFrame:
    """Per benchmark and metric: the run-to-run standard deviation of one run's mean, all arms pooled (each arm's
    variance of its per-run means, weighted by its seeds − 1), and the item x arm variance per item of the contrasts
    (median over contrasts): the two numbers that size the seeds of the next run (``planned_mde``)."""
    root = Path(root)
    plan = load_plan(root)
    acc, nll = arm_rows(root)
    out = []
    for metric, df in (("nll", nll), ("accuracy", acc)):
        for bench, sub in (df.groupby("benchmark", sort=True) if len(df) else []):
            items = sorted(sub.item_id.unique())
            num = den = 0.0
            for arm in plan["arms"]:
                seeds = sorted(set(sub[sub.arm == arm].seed))
                g = _grid(sub, arm, items, seeds)
                g = g[np.isfinite(g).all(1)]
                if len(seeds) > 1 and len(g):
                    num += g.mean(0).var(ddof=1) * (len(seeds) - 1)
                    den += len(seeds) - 1
            if not den:
                continue
            out.append({"benchmark": bench, "metric": metric, "run_sd": float(np.sqrt(num / den)),
                        "df": int(den), "n_items": len(items)})
    return pd.DataFrame(out, columns=["benchmark", "metric", "run_sd", "df", "n_items"])


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
                   f"{'s' if seeds != 1 else ''} per arm): " + "; ".join(parts) + ".")
        if (arm, ref) == ("basic+translated", "token-matched"):
            out.append(_question_sentence(g))
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


def _question_sentence(g: pd.DataFrame) -> str:
    """The paper's question — does translated code help beyond more tokens? — answered only as far as the
    basic+translated − token-matched intervals allow."""
    better = g[g.excludes_zero & (g["diff"] < 0)]
    worse = g[g.excludes_zero & (g["diff"] > 0)]
    open_ = g[~g.excludes_zero]
    bits = []
    if len(better):
        bits.append("translated code helped beyond the same number of basic tokens on "
                    + ", ".join(better.benchmark))
    if len(worse):
        bits.append("translated code did worse than the same number of basic tokens on " + ", ".join(worse.benchmark))
    if len(open_):
        bits.append("this run cannot tell translated code from more basic tokens on "
                    + ", ".join(f"{r.benchmark} (an effect smaller than {r.mde:.4f} nats/token would likely go unseen)"
                                for _, r in open_.iterrows()))
    return "The paper's question (does translated code help beyond more tokens?): " + "; ".join(bits) + "."


SHOWN = ["benchmark", "metric", "arm", "reference", "diff", "ci_low", "ci_high", "df", "mde", "per_seed"]


def comparison_of(run_dir) -> pd.DataFrame:
    """``compare`` of the ablation ``run_dir`` belongs to (the arms finished so far), with ``attrs["conclusion"]``
    (the generated paragraph) and ``attrs["note"]`` (why it is empty, when it is): what notebook 04 shows."""
    root = find_root(run_dir)
    t = compare(root) if root is not None else pd.DataFrame(columns=COLUMNS)
    t.attrs["conclusion"] = conclusion(t) if root is not None else ""
    t.attrs["note"] = (f"{run_dir} is not part of an ablation run (no {PLAN} here or two levels up)" if root is None
                       else "no arm has finished its evaluation yet")
    return t


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
