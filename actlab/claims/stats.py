"""Statistics over seeds: the one interval function, the verdict rule and its multiplicity control.

Every interval in the project - the verdicts' and every error bar of every figure - comes from
:func:`interval`:

* a 0/1 metric (declared in the experiment's ``binary_metrics``): the exact Clopper-Pearson
  interval of the proportion (Clopper & Pearson 1934; ``scipy.stats.binomtest``);
* any other metric: the bias-corrected and accelerated (BCa) bootstrap interval of the mean
  (Efron 1987; Efron & Tibshirani 1993, ch. 14; ``scipy.stats.bootstrap``). Bootstrap intervals
  are too narrow at the 10-30 seeds a claim has (measured here on normal samples of 16: 92%
  coverage for a nominal 95%, 97% for 99%), so the BCa interval is taken at Hesterberg's (2015,
  "What teachers should know about the bootstrap", Am. Stat. 69(4)) expanded level, whose normal
  quantile is ``sqrt(n / (n - 1)) * t_{n-1}`` of the nominal one (:func:`expanded_level`): 95.8%
  and 99% coverage measured for the same samples;
* a contrast of two cells (``difference`` or ``ratio`` of their means): BCa over both samples,
  resampled independently (different networks) or as pairs when ``paired``.

The one other interval is of a rank, not of a mean: :func:`rank_intervals` ranks competitors by
their means over paired seeds (a claim's leaderboard) and brackets each rank with the percentile
bootstrap, since a rank is discrete and BCa needs a smooth statistic.

A condition's verdict (:func:`side_of`) is ``supported`` when the whole interval lies on the
claimed side of the threshold (``>``, ``<``, or ``within`` a band), ``refuted`` when it lies wholly
on the other side, else ``inconclusive``. A claim judges several conditions at once, so
:func:`holm_step_down` keeps the family-wise error at 5%: Holm's (1979) step-down procedure,
applied through the duality of tests and intervals: with m conditions still undecided, each is
judged on its interval at level ``1 - 0.05 / m``; those that decide are set aside and the rest
are judged again at the wider level the smaller m allows, until none decides.

Conditions combine into a claim's label by :func:`combine`, which never hides a decided
condition behind ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ALPHA = 0.05
N_RESAMPLES = 10_000
#: labels of a claim (empirical) and of a check (deterministic identity)
VERDICTS = ("supported", "partly supported", "mixed", "partly refuted", "refuted", "inconclusive")
CHECK_VERDICTS = ("verified", "violated", "inconclusive")
DIRECTIONS = {">": "greater than", "<": "less than", "within": "inside the band"}
OPS: dict[str, Callable] = {"difference": lambda t, b: t - b, "ratio": lambda t, b: t / b}


def interval(
    values: np.ndarray,
    *,
    binary: bool = False,
    baseline: np.ndarray | None = None,
    op: str = "difference",
    paired: bool = False,
    level: float = 0.95,
    seed: int | Sequence[int] = 0,
) -> tuple[float, float]:
    """The ``level`` confidence interval of a condition's estimate.

    Parameters
    ----------
    values : ndarray, shape (n,)
        Per-seed metric values, finite.
    binary : bool
        The values are 0/1 outcomes: exact Clopper-Pearson interval of their proportion.
    baseline : ndarray, shape (m,), optional
        Per-seed values of the baseline cell: the interval is of ``op(mean(values), mean(baseline))``.
    op : {"difference", "ratio"}
        The contrast, with ``baseline``.
    paired : bool
        With ``baseline``: the two samples are paired by seed (``n == m``) and resampled together.
    level : float
        Confidence level.
    seed : int or sequence of int
        Seed of the bootstrap's resampling; the same seed gives nested intervals across levels.

    Returns
    -------
    (lo, hi) : tuple of float
        A sample whose values are all equal gives the point ``(v, v)`` (a deterministic outcome).
    """
    from scipy import stats as sps  # not at module level: the workflow parse would pay 1.5 s

    t = _sample(values, "values")
    if baseline is None:
        if binary:
            if not np.isin(t, (0.0, 1.0)).all():
                raise ValueError("a binary metric must take only the values 0 and 1")
            ci = sps.binomtest(int(t.sum()), len(t)).proportion_ci(confidence_level=level, method="exact")
            return float(ci.low), float(ci.high)
        if np.all(t == t[0]):
            return float(t[0]), float(t[0])
        data, statistic = (t,), _mean
    else:
        b = _sample(baseline, "baseline")
        if paired and len(b) != len(t):
            raise ValueError(f"paired samples need equal sizes, got {len(t)} and {len(b)}")
        contrast = OPS[op]
        if np.all(t == t[0]) and np.all(b == b[0]):
            value = float(contrast(t[0], b[0]))
            return value, value
        data = (t, b)

        def statistic(x, y, axis=-1):
            with np.errstate(divide="ignore", invalid="ignore"):
                return contrast(np.mean(x, axis=axis), np.mean(y, axis=axis))

    result = sps.bootstrap(
        data,
        statistic,
        paired=paired and baseline is not None,
        vectorized=True,
        confidence_level=expanded_level(level, min(len(d) for d in data)),
        n_resamples=N_RESAMPLES,
        method="BCa",
        random_state=np.random.default_rng(seed),
    )
    lo, hi = result.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):  # BCa undefined (e.g. one sample constant): percentile
        wide = expanded_level(level, min(len(d) for d in data))
        lo, hi = np.nanquantile(result.bootstrap_distribution, [(1 - wide) / 2, (1 + wide) / 2])
    return float(lo), float(hi)


def rank_intervals(
    table: np.ndarray, *, best: str = "max", level: float = 0.95, seed: int | Sequence[int] = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks of k competitors by their mean over paired runs, with percentile-bootstrap intervals.

    Parameters
    ----------
    table : ndarray, shape (k, n)
        Row i holds competitor i's values on runs 1..n; column j's values are paired (same seed).
    best : {"max", "min"}
        Whether the highest or the lowest mean gets rank 1.
    level, seed
        As in :func:`interval`; the seeds (columns) are resampled together.

    Returns
    -------
    rank, lo, hi : ndarray, shape (k,)
        Each competitor's rank by its mean (1 = best; tied means share the average of their
        ranks) and the ``level`` interval of that rank. Ranks are discrete, so the interval is the
        percentile one (BCa needs a smooth statistic).
    """
    from scipy import stats as sps  # not at module level: the workflow parse would pay 1.5 s

    table = np.asarray(table, float)
    if table.ndim != 2 or table.shape[1] < 2 or not np.isfinite(table).all():
        raise ValueError(f"rank_intervals: need a finite (k, n >= 2) table, got shape {table.shape}")
    sign = -1.0 if best == "max" else 1.0

    def ranks(*rows, axis=-1):
        return sps.rankdata(sign * np.stack([np.mean(r, axis=axis) for r in rows]), method="average", axis=0)

    result = sps.bootstrap(
        tuple(table),
        ranks,
        paired=True,
        vectorized=True,
        confidence_level=level,
        n_resamples=N_RESAMPLES,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return ranks(*table), np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def expanded_level(level: float, n: int) -> float:
    """The bootstrap level that gives ``level`` coverage for a mean of ``n`` values (Hesterberg 2015).

    ``1 - 2 * (1 - Phi(sqrt(n / (n - 1)) * t_{n-1}((1 + level) / 2)))``; it tends to ``level`` as n grows.
    """
    from scipy import stats as sps  # not at module level: the workflow parse would pay 1.5 s

    if n < 2:
        return level
    quantile = sps.t.ppf((1 + level) / 2, n - 1) * np.sqrt(n / (n - 1))
    return float(1 - 2 * sps.norm.sf(quantile))


def _sample(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name}: need a non-empty 1-D sample, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: non-finite values must be resolved before an interval is taken")
    return values


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def estimate(values: np.ndarray, baseline: np.ndarray | None = None, op: str = "difference") -> float:
    """The point estimate that :func:`interval` brackets: a mean, or a contrast of two means."""
    mean = float(np.mean(values))
    if baseline is None:
        return mean
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(OPS[op](mean, float(np.mean(baseline))))


def side_of(ci: Sequence[float], compare: str, threshold) -> str:
    """Verdict of one interval against ``metric <compare> threshold``.

    ``threshold`` is a number for ``>`` and ``<``, and a band ``[low, high]`` for ``within``.
    """
    lo, hi = ci
    if compare == ">":
        return "supported" if lo > threshold else "refuted" if hi < threshold else "inconclusive"
    if compare == "<":
        return "supported" if hi < threshold else "refuted" if lo > threshold else "inconclusive"
    if compare == "within":
        low, high = threshold
        if low < lo and hi < high:
            return "supported"
        return "refuted" if hi < low or lo > high else "inconclusive"
    raise ValueError(f"compare must be one of {sorted(DIRECTIONS)}, got {compare!r}")


def holm_step_down(tests: Sequence[tuple[Callable[[float], tuple[float, float]], str, object]]) -> list[dict]:
    """Holm's step-down over interval tests; one ``{verdict, ci, level}`` per condition.

    ``tests[i] = (interval, compare, threshold)``: ``interval(level)`` returns condition i's
    interval at ``level``, judged by :func:`side_of`. A condition stays ``inconclusive`` (with
    its interval at the last level tried) when it never decides.
    """
    results: list[dict | None] = [None] * len(tests)
    undecided = list(range(len(tests)))
    while undecided:
        level = 1 - ALPHA / len(undecided)
        trial = {i: tests[i][0](level) for i in undecided}
        verdicts = {i: side_of(trial[i], *tests[i][1:]) for i in undecided}
        decided = [i for i in undecided if verdicts[i] != "inconclusive"]
        for i in undecided:
            results[i] = {"verdict": verdicts[i], "ci": trial[i], "level": level}
        if not decided:
            break
        undecided = [i for i in undecided if i not in decided]
    return results


def combine(verdicts: Sequence[str]) -> str:
    """A claim's label from its judged conditions' verdicts.

    ``supported`` / ``refuted`` when every condition agrees; ``mixed`` when some are supported and
    some refuted; ``partly supported`` (``partly refuted``) when some are supported (refuted) and
    the rest inconclusive; ``inconclusive`` when none decided.
    """
    kinds = set(verdicts)
    if not kinds or kinds == {"inconclusive"}:
        return "inconclusive"
    if {"supported", "refuted"} <= kinds:
        return "mixed"
    decided = "supported" if "supported" in kinds else "refuted"
    return decided if kinds == {decided} else f"partly {decided}"


def boundary(summaries: Sequence[dict]) -> str:
    """Where a claim holds and where it fails, e.g. ``"supported at depth=5; refuted at depth=2"``."""
    parts = []
    for verdict in ("supported", "refuted", "inconclusive"):
        conditions = [
            f"({c})" if ", " in c else c for c in (s["condition"] for s in summaries if s["verdict"] == verdict)
        ]
        if conditions:
            parts.append(f"{verdict} at {', '.join(conditions)}")
    return "; ".join(parts)


def round_sig(x: float, digits: int = 6) -> float:
    """Round to ``digits`` significant digits, so verdict files do not carry float noise."""
    if x == 0 or not np.isfinite(x):
        return float(x)
    return float(f"{x:.{digits - 1}e}")
