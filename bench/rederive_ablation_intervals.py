"""Re-state a published ablation comparison whose per-item outputs are gone, from its printed bootstrap numbers.

With 3 seeds the kit's earlier two-way percentile bootstrap is a mixture of 10 seed-resample atoms (probabilities
1/27, 3/27, 6/27) smoothed by the item resampling. Its printed lower limit, upper limit and SE (MDE / 2.8016) are
three equations for the three per-seed differences (their mean is the printed difference) and the item-level SE;
solving them gives the run part and the item part that ``ablation_compare`` now uses, hence the calibrated interval,
the MDE, the pooled run-to-run sd and the seeds a contrast needs.

    PYTHONPATH=lib python bench/rederive_ablation_intervals.py
"""
import itertools

import numpy as np
from scipy import optimize, special, stats

from mathcode.run import ablation_compare as ac
PUB = {  # benchmark, contrast: diff, lo, hi, mde (bench/README.md, 2026-12-05 throughput run = final-main run)
 ("GSM8K", "b+t − basic"): (-0.0085, -0.0125, -0.0037, 0.0064),
 ("GSM8K", "tm − basic"): (-0.0079, -0.0146, 0.0027, 0.0130),
 ("GSM8K", "b+t − tm"): (-0.0006, -0.0063, 0.0034, 0.0073),
 ("MATH", "b+t − basic"): (-0.0024, -0.0038, -0.0011, 0.0019),
 ("MATH", "tm − basic"): (-0.0020, -0.0047, 0.0010, 0.0042),
 ("MATH", "b+t − tm"): (-0.0005, -0.0030, 0.0017, 0.0034),
}
S, I = 3, 200
atoms = [c for c in itertools.product(range(4), repeat=3) if sum(c) == 3]
prob = np.array([special.factorial(3) / np.prod([special.factorial(k) for k in c]) / 27 for c in atoms])
W = np.array(atoms, float) / 3
def boot(d, tau):
    mu = W @ d
    cdf = lambda x: np.sum(prob * stats.norm.cdf((x - mu) / tau))
    lo = optimize.brentq(lambda x: cdf(x) - 0.025, mu.min() - 10 * tau, mu.max() + 10 * tau)
    hi = optimize.brentq(lambda x: cdf(x) - 0.975, mu.min() - 10 * tau, mu.max() + 10 * tau)
    m = np.sum(prob * mu)
    se = np.sqrt(np.sum(prob * (mu - m) ** 2) + tau ** 2)
    return lo, hi, se
out = {}
for key, (diff, lo, hi, mde) in PUB.items():
    se = mde / 2.8016
    def res(x):
        d1, d3, lt = x
        d = np.array([d1, 3 * diff - d1 - d3, d3])
        l, h, s = boot(d, np.exp(lt))
        return [(l - lo) / se, (h - hi) / se, (s - se) / se]
    best = None
    for g in ([lo, hi, np.log(se / 3)], [lo + se / 2, hi - se / 2, np.log(se / 2)], [lo, hi, np.log(se / 10)]):
        r = optimize.least_squares(res, g)
        if best is None or r.cost < best.cost:
            best = r
    d1, d3, lt = best.x
    d = np.sort([d1, 3 * diff - d1 - d3, d3]); tau = np.exp(lt)
    run = d.var(ddof=1) / S                 # variance of the mean of 3 runs' differences (both arms' run parts)
    item = tau ** 2 * I / (I - 1)
    V = run + item
    res_ = {}
    for dfr in (2, 4):
        parts = [(run, dfr), (item, I - 1)]
        df = V ** 2 / (run ** 2 / dfr + item ** 2 / (I - 1))
        t = stats.t.ppf(0.975, df)
        res_[dfr] = (df, diff - t * np.sqrt(V), diff + t * np.sqrt(V), ac.mde_from_parts([(run / 2, dfr / 2), (run / 2, dfr / 2), (item, I - 1)]) if dfr == 4 else ac.mde_from_parts(parts))
    out[key] = dict(d=d, tau=tau, run=run, item=item, V=V, fit=np.abs(best.fun).max(), res=res_)
    print(f"{key[0]:5s} {key[1]:12s} per-seed {np.round(d, 4)} fit err {np.abs(best.fun).max():.2f} SE: boot {se:.5f} "
          f"calibrated {np.sqrt(V):.5f} run share {run / V:.2f}")
    for dfr, (df, l, h, m) in res_.items():
        print(f"      run df {dfr}: Satterthwaite df {df:.1f}, 95% [{l:+.4f}, {h:+.4f}] {'excludes' if l > 0 or h < 0 else 'includes'} zero, MDE {m:.4f}")
for bench in ("GSM8K", "MATH"):
    vs = [out[(bench, c)]["d"].var(ddof=1) for c in ("b+t − basic", "tm − basic", "b+t − tm")]
    pooled = np.sqrt(sum(vs) / 6)
    it = out[(bench, "b+t − tm")]["item"] * I
    print(bench, f"pooled run sd of one run's mean {pooled:.5f}; item x arm var per item (b+t − tm) {it:.3e}")
    for k in (3, 5, 8, 10, 12, 15, 20, 30):
        print(f"   {k} seeds per arm: MDE(b+t − tm) {ac.planned_mde(pooled ** 2, it, k, n_items=I):.4f}")
