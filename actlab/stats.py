"""Statistics over seeds: bootstrap confidence intervals and the preregistered verdict rule.

A claim's decision rule names a metric, a direction and a threshold. For each condition the
metric is measured once per seed; its mean is the estimate and a percentile bootstrap over
seeds gives the 95% confidence interval (Efron & Tibshirani 1993, ch. 13). The verdict:

* ``supported`` when the whole interval lies on the claimed side of the threshold,
* ``refuted`` when the whole interval lies on the other side,
* ``inconclusive`` otherwise;

and over several conditions (a swept setting): ``mixed`` when some are supported and some
refuted, with the boundary between them recorded, else the common verdict, else
``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VERDICTS = ("supported", "refuted", "inconclusive", "mixed")
DIRECTIONS = {">": "greater than", "<": "less than"}


def bootstrap_ci(
    values: np.ndarray, rng: np.random.Generator, level: float = 0.95, n_boot: int = 4000
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (shape ``(n,)``, NaN-free).

    A single value gives the degenerate interval ``[v, v]`` (a deterministic measurement).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"need a non-empty 1-D sample, got shape {values.shape}")
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    means = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap_contrast_ci(
    treatment: np.ndarray,
    baseline: np.ndarray,
    op,
    rng: np.random.Generator,
    level: float = 0.95,
    n_boot: int = 4000,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``op(mean(treatment), mean(baseline))``.

    The two samples come from different networks, so they are resampled independently.
    """
    t, b = np.asarray(treatment, float), np.asarray(baseline, float)
    t_means = t[rng.integers(0, len(t), size=(n_boot, len(t)))].mean(axis=1)
    b_means = b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = op(t_means, b_means)
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(stat, [alpha, 1 - alpha])
    return float(lo), float(hi)


def side_of(ci: Sequence[float], direction: str, threshold: float) -> str:
    """Verdict of one interval against ``metric <direction> threshold``."""
    lo, hi = ci
    if direction == ">":
        return "supported" if lo > threshold else "refuted" if hi < threshold else "inconclusive"
    if direction == "<":
        return "supported" if hi < threshold else "refuted" if lo > threshold else "inconclusive"
    raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")


def combine(verdicts: Sequence[str]) -> str:
    """Overall verdict of several conditions (see the module docstring)."""
    kinds = set(verdicts)
    if len(kinds) == 1:
        return verdicts[0]
    if {"supported", "refuted"} <= kinds:
        return "mixed"
    return "inconclusive"


def boundary(summaries: Sequence[dict]) -> str:
    """Where a split claim holds and where it fails, e.g. ``"supported at depth=5, depth=10; refuted at depth=2"``."""
    parts = []
    for verdict in ("supported", "refuted", "inconclusive"):
        conditions = [s["condition"] for s in summaries if s["verdict"] == verdict]
        if conditions:
            parts.append(f"{verdict} at {', '.join(conditions)}")
    return "; ".join(parts)


def round_sig(x: float, digits: int = 6) -> float:
    """Round to ``digits`` significant digits, so verdict files do not carry float noise."""
    if x == 0 or not np.isfinite(x):
        return float(x)
    return float(f"{x:.{digits - 1}e}")
