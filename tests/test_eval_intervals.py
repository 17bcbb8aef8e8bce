"""The interval phase 4 puts on "trained minus base" accuracy (``compare.paired_difference``, Newcombe's paired
score interval), checked against what an interval promises: over many simulated evaluations it contains the true
difference about 95% of the time, also with few items and few flips — the demo's regime, where a paired bootstrap
over items does not (it is simulated here beside it as the reference it replaced)."""
from __future__ import annotations

import numpy as np
import pytest

from mathcode.evaluate import compare

# cell probabilities: both right, only the trained model right, only the base right, both wrong
WORLDS = {"no true change, few flips": [0.40, 0.05, 0.05, 0.50],
          "a gain, no losses": [0.70, 0.10, 0.00, 0.20],
          "many flips both ways": [0.30, 0.20, 0.10, 0.40],
          "a rare loss on an easy test": [0.85, 0.00, 0.05, 0.10]}


def outcomes(cells: tuple[int, int, int, int]) -> tuple[list[int], list[int]]:
    a, b, c, d = cells
    return [1] * a + [0] * b + [1] * c + [0] * d, [1] * a + [1] * b + [0] * c + [0] * d


def coverage(n: int, probs: list[float], reps: int, interval) -> float:
    """Share of ``reps`` simulated evaluations of ``n`` items whose interval holds the true difference (intervals
    depend only on the four cell counts, so each distinct count is computed once)."""
    rng = np.random.default_rng(0)
    true = probs[1] - probs[2]
    draws, counts = np.unique(rng.multinomial(n, probs, size=reps), axis=0, return_counts=True)
    hit = 0
    for cells, k in zip(draws, counts):
        _, lo, hi = interval(*outcomes(tuple(int(v) for v in cells)))
        hit += k * (lo - 1e-12 <= true <= hi + 1e-12)
    return hit / reps


def bootstrap(base, other, n_boot: int = 1000):
    rng = np.random.default_rng(1)
    d = np.asarray(other, float) - np.asarray(base, float)
    m = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return d.mean(), np.percentile(m, 2.5), np.percentile(m, 97.5)


@pytest.mark.parametrize("n", [10, 20, 50])
@pytest.mark.parametrize("world", list(WORLDS))
def test_the_paired_interval_covers_the_true_difference(world, n):
    cov = coverage(n, WORLDS[world], 20000, compare.paired_difference)
    assert cov >= 0.93, f"{world}, {n} items: the 95% interval held the true difference in {cov:.1%} of evaluations"


def test_it_is_much_safer_than_the_item_bootstrap_where_flips_are_rare():
    world, n = WORLDS["a rare loss on an easy test"], 10
    ours = coverage(n, world, 4000, compare.paired_difference)
    boot = coverage(n, world, 4000, bootstrap)
    assert ours >= 0.95 and boot < 0.6, (ours, boot)


def test_no_flip_is_not_read_as_certainty():
    """Ten items the two models answer alike: the difference is 0, and the interval still has width."""
    d, lo, hi = compare.paired_difference([1] * 6 + [0] * 4, [1] * 6 + [0] * 4)
    assert d == 0 and lo < -0.1 and hi > 0.1 and abs(lo + hi) < 1e-12


def test_a_clear_gain_excludes_zero_and_stays_inside_the_range():
    d, lo, hi = compare.paired_difference([0] * 30, [1] * 30)
    assert d == 1 == hi and 0.8 < lo < 1


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="same items"):
        compare.paired_difference([1, 0], [1])
    with pytest.raises(ValueError, match="0/1 outcomes"):
        compare.paired_difference([0.5, 1], [1, 1])
