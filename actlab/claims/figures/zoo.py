"""The figure of ``activation_zoo`` claims: one panel per task, one line per cell the verdict measured.

What a claim's figure draws follows its decision metric (:data:`FIGURE_CURVE`): a per-epoch
series (:class:`ZooCurvesFigure`), each hidden layer's mean output (:class:`ZooLayersFigure`) or
the learned PReLU slopes (:class:`ZooSlopesFigure`).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.base import Cell, cell_roles
from actlab.claims.experiments.zoo import _after_divergence, _gap
from actlab.claims.figures.base import Band, Figure

#: the per-epoch series a figure draws (see :func:`_series`): axis label and scale
CURVES = {
    "train_error": ("training error (whole training split, log scale)", "log"),
    "test_accuracy": ("test accuracy", "linear"),
    "max_abs_act": ("largest |hidden activation| (log scale)", "log"),
    "lost": ("fraction of hidden units lost", "linear"),
    "inactive": ("fraction of hidden units inactive", "linear"),
    "zero_frac": ("fraction of hidden outputs exactly zero", "linear"),
    "gap": ("generalization gap (train - test accuracy)", "linear"),
}

#: the series a claim's figure draws (a key of :data:`CURVES`, ``slopes`` or ``layers``), by its decision metric
FIGURE_CURVE = {
    "test_accuracy": "test_accuracy",
    "accuracy_over_logreg": "test_accuracy",
    "mean_train_error": "train_error",
    "lost_units": "lost",
    "inactive_units": "inactive",
    "hidden_zeros": "zero_frac",
    "abs_mean_activation": "layers",
    "generalization_gap": "gap",
    "diverged": "max_abs_act",
    "grad_sign_agreement": "train_error",
    "slope_shift": "slopes",
    "slope_spread": "slopes",
    "linear_map_error": "test_accuracy",
}

#: line style of a cell by the role of the condition measured on it
LINESTYLES = {"judged": "-", "control": "--", "context": ":"}


def _label(cell: Cell) -> str:
    """A cell's line in a figure: its grid values but the task, ``axis=value``."""
    return ", ".join(f"{k}={v}" for k, v in cell.setting.items() if k != "dataset") or cell.id


def _series(cell: Cell, curve: str) -> np.ndarray:
    """The per-seed, per-epoch values ``(S, E + 1)`` a figure draws for ``curve`` (see :data:`CURVES`)."""
    a = cell.result.arrays
    if curve in ("lost", "inactive"):
        fraction = a["dead_frac" if curve == "lost" else "inactive_frac"]
        after = _after_divergence(np.asarray(a["diverged_epoch"]), fraction.shape[1])
        return np.where(after, 1.0, fraction)
    if curve == "gap":
        return _gap(cell)
    return np.asarray(a[curve], float)


@dataclass(frozen=True)
class ZooFigure(Figure):
    """One panel per task and a legend entry per cell label; the variant (subclass) draws the panels.

    Attributes
    ----------
    tasks : list of str
        The data sets, one panel each.
    legend : list of (str, tuple, str)
        One entry per cell label, in the cells' order: the label, its colour (RGB) and the role of
        the condition measured on its last cell.
    """

    experiment = "activation_zoo"
    tasks: list
    legend: list

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        roles = cell_roles(verdict)
        measured = [c for c in cells if c.id in roles]
        tasks = list(dict.fromkeys(c.params["dataset"] for c in measured))
        labels = list(dict.fromkeys(_label(c) for c in measured))
        palette = plotting.plt.get_cmap("tab10" if len(labels) <= 10 else "tab20").colors
        colors = {label: palette[i % len(palette)] for i, label in enumerate(labels)}
        legend = [(label, colors[label], roles[c.id]) for label, c in {_label(c): c for c in measured}.items()]
        by_task = [[c for c in measured if c.params["dataset"] == task] for task in tasks]
        curve = FIGURE_CURVE[claim["decision"]["metric"]]
        if curve == "slopes":
            return ZooSlopesFigure.of(tasks, legend, by_task, colors)
        if curve == "layers":
            return ZooLayersFigure.of(tasks, legend, by_task, roles, colors)
        return ZooCurvesFigure.of(tasks, legend, by_task, roles, colors, curve, claim["decision"]["metric"])

    @abstractmethod
    def _draw_panel(self, ax, panel: int) -> None:
        """Draw the ``panel``-th task's panel on ``ax``."""

    @abstractmethod
    def _caption(self) -> str:
        """The figure's caption."""

    def plot(self, path: Path) -> str:
        fig, axes = plotting.plt.subplots(
            1,
            len(self.tasks),
            figsize=(4.6 * len(self.tasks), 4.0 + 0.18 * len(self.legend) / 3),
            squeeze=False,
            layout="constrained",
        )
        for panel, (ax, task) in enumerate(zip(axes[0], self.tasks, strict=True)):
            self._draw_panel(ax, panel)
            ax.set_title(f"task: {task}")
        handles = [
            plotting.plt.Line2D([], [], color=color, linestyle=LINESTYLES[role], label=f"{label} [{role}]")
            for label, color, role in self.legend
        ]
        handles += [
            h for h in axes[0, 0].get_legend_handles_labels()[0] if h.get_label().startswith(("logistic", "initial"))
        ]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(self.tasks), 3, len(handles)), fontsize=7)
        plotting.save(fig, path)
        return self._caption()


@dataclass(frozen=True)
class ZooCurvesFigure(ZooFigure):
    """A per-epoch series (:data:`CURVES`) of every measured cell, median over seeds with its 25-75% band.

    Attributes
    ----------
    curve : str
        The series drawn, a key of :data:`CURVES` (its axis label and scale).
    bands : list of list of Band
        Per task, one band per cell over epochs (0 = initialization); on a log scale, values
        ``<= 0`` are left out.
    diverged : list of list of (str, int, int)
        Per task, the cells with diverged runs: label, diverged runs and runs.
    logreg : list of float or None
        Per task, the test accuracy of logistic regression on the same split (for an
        ``accuracy_over_logreg`` claim), else None.
    """

    curve: str
    bands: list
    diverged: list
    logreg: list

    @classmethod
    def of(cls, tasks, legend, by_task, roles, colors, curve, metric) -> ZooCurvesFigure:
        """The figure of ``curve`` for the cells of each task; ``metric`` is the claim's decision metric."""
        scale = CURVES[curve][1]
        bands, diverged, logreg = [], [], []
        for cells in by_task:
            bands.append([])
            for c in cells:
                values = _series(c, curve)
                if scale == "log":
                    values = np.where(values > 0, values, np.nan)
                bands[-1].append(
                    Band.over_seeds(
                        np.arange(values.shape[1]),
                        values,
                        _label(c),
                        color=colors[_label(c)],
                        linestyle=LINESTYLES[roles[c.id]],
                        marker="o",  # a run that diverged in its first epoch leaves a single point
                        markersize=2.5,
                    )
                )
            diverged.append(
                [
                    (_label(c), int(np.sum(c.result.arrays["diverged"])), len(c.result.arrays["diverged"]))
                    for c in cells
                    if np.any(c.result.arrays["diverged"])
                ]
            )
            logreg.append(cells[0].result.info["logreg_test_accuracy"] if metric == "accuracy_over_logreg" else None)
        return cls(tasks, legend, curve, bands, diverged, logreg)

    def _draw_panel(self, ax, panel):
        ylabel, scale = CURVES[self.curve]
        for band in self.bands[panel]:
            plotting.draw_band(ax, band)
        if self.logreg[panel] is not None:
            ax.axhline(self.logreg[panel], color="black", linewidth=1, label="logistic regression (same split)")
        ax.set_yscale(scale)
        diverged = "".join(f"\n{label}: {n}/{runs} diverged" for label, n, runs in self.diverged[panel])
        ax.set_xlabel("epoch (0 = initialization)" + diverged, fontsize=8)
        ax.set_ylabel(ylabel)

    def _caption(self):
        ylabel = CURVES[self.curve][0]
        return (
            f"{ylabel.split(' (')[0].capitalize()} after each training epoch for every cell the verdict measured, "
            f"one panel per task: median over seeds with the 25-75% band; solid lines are judged conditions, "
            f"dashed the negative control, dotted context; under each panel, the cells with diverged runs."
            + (
                " A unit is inactive when its pre-activation is <= 0 on every training input."
                if self.curve == "inactive"
                else ""
            )
            + (
                " A run that diverged counts as every unit lost from then on."
                if self.curve in ("lost", "inactive")
                else " A run that diverged stops being drawn at its divergence."
            )
        )


@dataclass(frozen=True)
class ZooLayersFigure(ZooFigure):
    """Each hidden layer's mean over units of ``|mean output|`` after training, one band per measured cell.

    Attributes
    ----------
    bands : list of list of Band
        Per task, one band per cell over the hidden layers (1 = next to the input): median over
        seeds with its 25-75% band.
    """

    bands: list

    @classmethod
    def of(cls, tasks, legend, by_task, roles, colors) -> ZooLayersFigure:
        """The figure of the cells of each task."""
        bands = [
            [
                Band.over_seeds(
                    np.arange(1, c.result.arrays["layer_abs_mean_act"].shape[1] + 1),
                    c.result.arrays["layer_abs_mean_act"],  # (S, L)
                    _label(c),
                    color=colors[_label(c)],
                    linestyle=LINESTYLES[roles[c.id]],
                    marker="o",
                    markersize=3,
                )
                for c in cells
            ]
            for cells in by_task
        ]
        return cls(tasks, legend, bands)

    def _draw_panel(self, ax, panel):
        for band in self.bands[panel]:
            plotting.draw_band(ax, band)
        ax.set_yscale("log")
        ax.set_xlabel("hidden layer")
        ax.set_ylabel("mean over units of |mean output| (log scale)")

    def _caption(self):
        return (
            "|Mean output| of a hidden unit over the training inputs, averaged over the units of each hidden "
            "layer, after training, for every cell the verdict measured, one panel per task: median over seeds "
            "with the 25-75% band; solid lines are judged conditions, dashed the negative control, dotted "
            "context."
        )


@dataclass(frozen=True)
class ZooSlopesFigure(ZooFigure):
    """The learned PReLU slopes of every measured cell, a histogram each, and the slope they started from.

    Attributes
    ----------
    slopes : list of list of (ndarray, tuple)
        Per task, per cell: every unit's learned slope over layers and seeds, shape
        ``(n_seeds * n_layers * width,)``, and the cell's colour.
    start : list of float
        Per task, the median initial slope of its first cell.
    """

    slopes: list
    start: list

    @classmethod
    def of(cls, tasks, legend, by_task, colors) -> ZooSlopesFigure:
        """The figure of the cells of each task."""
        slopes = [[(c.result.arrays["slopes_final"].ravel(), colors[_label(c)]) for c in cells] for cells in by_task]
        start = [float(np.median(cells[0].result.arrays["slopes_init"])) for cells in by_task]
        return cls(tasks, legend, slopes, start)

    def _draw_panel(self, ax, panel):
        for final, color in self.slopes[panel]:
            ax.hist(final, bins=40, histtype="step", color=color, linewidth=1.5)
        ax.axvline(self.start[panel], color="black", linestyle="--", linewidth=1, label="initial slope")
        ax.set_xlabel("learned PReLU slope (every unit of every layer and seed)")
        ax.set_ylabel("units")

    def _caption(self):
        return (
            "The negative-side slope each PReLU unit learned, pooled over seeds, one panel per task; the dashed "
            "line is the slope every unit started from."
        )
