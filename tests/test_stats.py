"""The one interval function, the verdict rule, Holm's step-down and how labels combine."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from actlab.claims import stats


@pytest.mark.parametrize("n", [10, 24])
def test_bca_interval_covers_the_true_mean_about_95_percent(n):
    """Over 300 synthetic experiments with a known mean, the interval covers it ~95% of the time."""
    rng = np.random.default_rng(0)
    hits = sum(lo <= 0.7 <= hi for lo, hi in (stats.interval(rng.exponential(0.7, size=n), seed=k) for k in range(300)))
    # skewed data at small n: BCa still covers near 95%; a broken interval would be far off
    assert 0.87 <= hits / 300 <= 0.99, hits / 300


def test_binary_interval_is_the_exact_clopper_pearson_one():
    values = np.array([1.0] * 11 + [0.0] * 13)
    ci = sps.binomtest(11, 24).proportion_ci(confidence_level=0.95, method="exact")
    assert stats.interval(values, binary=True) == pytest.approx((ci.low, ci.high))
    # all failures or all successes still get a non-degenerate interval (not [0, 0] / [1, 1])
    lo, hi = stats.interval(np.zeros(24), binary=True)
    assert lo == 0.0 and 0.1 < hi < 0.2
    with pytest.raises(ValueError, match="0 and 1"):
        stats.interval(np.array([0.0, 0.5, 1.0]), binary=True)


def test_contrast_interval_covers_a_known_ratio():
    rng = np.random.default_rng(1)
    hits = 0
    for k in range(200):
        t, b = rng.normal(6.0, 1.0, size=20), rng.normal(2.0, 0.5, size=20)
        lo, hi = stats.interval(t, baseline=b, op="ratio", seed=k)
        hits += lo <= 3.0 <= hi
    assert 0.87 <= hits / 200 <= 0.99


def test_intervals_with_one_seed_are_nested_across_levels():
    values = np.random.default_rng(2).normal(size=15)
    narrow = stats.interval(values, level=0.95, seed=7)
    wide = stats.interval(values, level=0.99, seed=7)
    assert wide[0] <= narrow[0] <= narrow[1] <= wide[1]


def test_constant_samples_give_a_point_and_bad_samples_are_refused():
    assert stats.interval(np.array([2.0, 2.0, 2.0])) == (2.0, 2.0)
    with pytest.raises(ValueError, match="non-finite"):
        stats.interval(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="non-empty"):
        stats.interval(np.array([]))


@pytest.mark.parametrize(
    ("ci", "compare", "threshold", "expected"),
    [
        ((0.1, 0.4), ">", 0.0, "supported"),
        ((-0.4, -0.1), ">", 0.0, "refuted"),
        ((-0.1, 0.2), ">", 0.0, "inconclusive"),
        ((-0.4, -0.1), "<", 0.0, "supported"),
        ((0.1, 0.4), "<", 0.0, "refuted"),
        ((0.4, 0.6), "within", [0.35, 0.65], "supported"),
        ((0.9, 1.0), "within", [0.35, 0.65], "refuted"),
        ((0.0, 0.1), "within", [0.35, 0.65], "refuted"),
        ((0.3, 0.6), "within", [0.35, 0.65], "inconclusive"),
    ],
)
def test_side_of(ci, compare, threshold, expected):
    assert stats.side_of(ci, compare, threshold) == expected


def test_combine_never_hides_a_decided_condition():
    assert stats.combine(["supported", "supported"]) == "supported"
    assert stats.combine(["refuted", "refuted"]) == "refuted"
    assert stats.combine(["supported", "refuted", "inconclusive"]) == "mixed"
    assert stats.combine(["supported", "inconclusive"]) == "partly supported"
    assert stats.combine(["refuted", "inconclusive"]) == "partly refuted"
    assert stats.combine(["inconclusive"]) == stats.combine([]) == "inconclusive"
    text = stats.boundary(
        [{"condition": "depth=2", "verdict": "refuted"}, {"condition": "depth=8", "verdict": "supported"}]
    )
    assert text == "supported at depth=8; refuted at depth=2"


def _at(values, seed):
    return lambda level: stats.interval(values, level=level, seed=seed)


def test_holm_steps_down_to_wider_levels_only_after_a_decision():
    rng = np.random.default_rng(3)
    clear = rng.normal(1.0, 0.3, size=20)  # far above 0
    marginal = rng.normal(0.15, 0.5, size=20)  # near the edge
    results = stats.holm_step_down([(_at(clear, 0), ">", 0.0), (_at(marginal, 1), ">", 0.0)])
    assert results[0]["verdict"] == "supported" and results[0]["level"] == pytest.approx(1 - 0.05 / 2)
    # the marginal condition is judged again at 95%, now that only one condition is left
    assert results[1]["level"] == pytest.approx(0.95)
    assert results[1]["ci"] == pytest.approx(stats.interval(marginal, level=0.95, seed=1))


def test_holm_keeps_the_family_wise_error_near_five_percent():
    """Five conditions whose true mean sits exactly on the threshold: any decision is an error."""
    rng = np.random.default_rng(4)
    trials, errors = 120, 0
    for t in range(trials):
        tests = [(_at(rng.normal(0.0, 1.0, size=16), seed=10 * t + k), ">", 0.0) for k in range(5)]
        errors += any(r["verdict"] != "inconclusive" for r in stats.holm_step_down(tests))
    # without a correction about 1 - 0.95^5 = 23% of families would contain a decision
    assert errors / trials <= 0.11, errors / trials


def test_rank_intervals_are_tight_for_clear_gaps_and_wide_for_ties():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.1, (4, 16))
    clear = noise + np.array([[0.0], [1.0], [2.0], [3.0]])
    rank, lo, hi = stats.rank_intervals(clear, best="max")
    np.testing.assert_array_equal(rank, [4, 3, 2, 1])
    np.testing.assert_array_equal(lo, rank) and np.testing.assert_array_equal(hi, rank)
    np.testing.assert_array_equal(stats.rank_intervals(clear, best="min")[0], [1, 2, 3, 4])
    tied = noise + np.array([[0.0], [0.0], [2.0], [2.0]])
    _, lo, hi = stats.rank_intervals(tied)
    np.testing.assert_array_equal(lo, [3, 3, 1, 1]) and np.testing.assert_array_equal(hi, [4, 4, 2, 2])
    same = np.stack([clear[0], clear[0], clear[3]])  # identical runs share their rank
    rank, lo, hi = stats.rank_intervals(same)
    np.testing.assert_array_equal(rank, [2.5, 2.5, 1]) and np.testing.assert_array_equal(lo, [2.5, 2.5, 1])
    with pytest.raises(ValueError, match="finite"):
        stats.rank_intervals(np.array([[1.0, np.nan], [2.0, 3.0]]))
