"""What every figure is: values computed from a judged claim, then drawn.

In the manner of scikit-learn's ``*Display`` classes, a :class:`Figure` is built in two steps:
:meth:`Figure.from_verdict` reads the cells and the verdict and computes every number the figure
shows (curves, bands, means and their intervals), and :meth:`Figure.plot` draws those numbers,
computing nothing. The values a figure draws can therefore be tested without rendering it, and
the drawing cannot re-derive the decision rule: which cells are judged, control or context comes
from the verdict (:func:`actlab.claims.experiments.base.cell_roles`).

The two value types most figures share are here: :class:`Band` (median over seeds with its
25-75% band) and :class:`Points` (seed means with their 95% intervals). Every interval comes from
:func:`actlab.claims.stats.interval` (:func:`mean_interval`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from actlab.claims import stats
from actlab.claims.experiments.base import Cell, Experiment


class Figure(ABC):
    """One claim's figure: computed values (the subclass's fields), and how to draw them."""

    #: the experiment type (``Experiment.name``) whose claims this figure draws
    experiment: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_verdict(cls, experiment: Experiment, claim: dict, cells: list[Cell], verdict: dict) -> Figure:
        """Compute the figure's values from a judged claim.

        ``verdict`` is the judge's result (:func:`actlab.claims.judging.judge`): which cells each
        condition was measured on, in which role, and its estimates. A figure shows those; it
        never re-applies the decision rule.
        """

    @abstractmethod
    def plot(self, path: Path) -> str:
        """Draw the figure (one PNG, as many panels as needed) to ``path``; return its caption."""


def mean_interval(values, *, binary: bool = False) -> tuple[float, float, float]:
    """Mean of the finite ``values`` and its 95% interval from :func:`actlab.claims.stats.interval`.

    Non-finite values (e.g. seeds that diverged) are dropped first; with none left the result is
    ``(nan, nan, nan)``. ``binary``: the values are 0/1 outcomes (exact Clopper-Pearson interval),
    otherwise the BCa bootstrap interval of the mean.
    """
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return np.nan, np.nan, np.nan
    lo, hi = stats.interval(v, binary=binary)
    return float(v.mean()), lo, hi


@dataclass(frozen=True)
class Band:
    """The median over seeds of a curve with its 25-75% band, at the x where some seed is finite.

    Attributes
    ----------
    x, lo, mid, hi : ndarray, shape (n,)
        The positions kept and the 25th, 50th and 75th percentiles over seeds there (n may be 0).
    label : str
        The legend entry.
    style : dict
        Line keywords for ``Axes.plot`` (colour, line style, ...); the band takes the line's colour.
    """

    x: np.ndarray
    lo: np.ndarray
    mid: np.ndarray
    hi: np.ndarray
    label: str
    style: dict = field(default_factory=dict)

    @classmethod
    def over_seeds(cls, x, values, label: str, **style) -> Band:
        """The band of ``values``, ``(n_seeds, len(x))`` or one array of per-seed values per entry of
        ``x`` (cells may train different numbers of seeds: ``context.seeds``); NaN entries (diverged
        seeds) are ignored."""
        if isinstance(values, list):
            table = np.full((max((len(v) for v in values), default=0), len(values)), np.nan)
            for column, v in enumerate(values):
                table[: len(v), column] = v
            values = table
        values = np.asarray(values, float)
        finite = np.isfinite(values).any(axis=0)
        x, values = np.asarray(x)[finite], values[:, finite]
        if values.size == 0:
            empty = np.zeros(0)
            return cls(x, empty, empty, empty, label, style)
        lo, mid, hi = np.nanpercentile(values, [25, 50, 75], axis=0)
        return cls(x, lo, mid, hi, label, style)


@dataclass(frozen=True)
class Points:
    """Seed means with their 95% intervals (:func:`mean_interval`), one per x.

    Attributes
    ----------
    x, mean, lo, hi : ndarray, shape (n,)
        Positions, means of the finite values and interval ends (NaN where no value is finite).
    label : str
        The legend entry.
    binary : bool
        The values were 0/1 outcomes (exact Clopper-Pearson intervals), else BCa bootstrap ones.
    style : dict
        Keywords for ``Axes.errorbar``.
    """

    x: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    label: str
    binary: bool = False
    style: dict = field(default_factory=dict)

    @classmethod
    def over_seeds(cls, x, values: list, label: str, *, binary: bool = False, **style) -> Points:
        """The points of ``values``, one array of per-seed values per entry of ``x``."""
        mean, lo, hi = np.array([mean_interval(v, binary=binary) for v in values]).reshape(-1, 3).T
        return cls(np.asarray(x), mean, lo, hi, label, binary, style)
