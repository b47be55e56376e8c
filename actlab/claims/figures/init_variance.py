"""The figure of ``init_variance`` claims (``init-matches-activation``): the variance through depth at
initialization, the training curves, and the accuracy after the short budget, matched against
mismatched initializer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.base import Cell
from actlab.claims.figures.base import Band, Figure, Points
from actlab.engine.activations import get_activation

#: line style of each initializer
STYLES = {"matched": "-", "mismatched": "--"}


def _series(claim: dict, cells: list) -> dict[str, dict]:
    """Cells grouped by the labels of every grid axis but ``init``: label -> {init label -> cell}."""
    others = [axis for axis in claim.get("grid", {}) if axis != "init"]
    series: dict[str, dict] = {}
    for c in cells:
        label = ", ".join(c.setting[axis] for axis in others) or "all"
        series.setdefault(label, {})[c.setting["init"]] = c
    return series


def _variance_factor(cell) -> float | None:
    """He et al.'s per-layer variance factor ``r = n sigma_w^2 (1 + a^2) / 2`` for (leaky) ReLU, else None.

    ``n sigma_w^2`` is the mean over seeds and hidden-to-hidden layers of the drawn weights'
    ``fan_in * mean(w^2)``.
    """
    act = get_activation(cell.params["activation"])
    if act.name not in ("relu", "leaky_relu"):
        return None
    slope = getattr(act, "slope", 0.0)
    return float(np.mean(cell.result.arrays["fan_in_w2"][:, 1:-1])) * (1 + slope * slope) / 2


def _variance(cell: Cell, label: str, style: dict) -> tuple[Band, tuple | None]:
    """The band of a cell's log variance ratio per layer at init, and He et al.'s prediction (None if none)."""
    var = cell.result.arrays["act_var"][:, 0, :]
    layers = np.arange(1, var.shape[1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.log10(var / var[:, :1])
    factor = _variance_factor(cell)
    theory = None if factor is None else (layers, (layers - 1) * np.log10(factor))
    return Band.over_seeds(layers, rel, label, **style), theory


def _training(cell: Cell, label: str, style: dict) -> Band:
    """The band of a cell's training curve (epoch 0: the probe loss at init), diverged seeds dropped."""
    a = cell.result.arrays
    n_div = int(a["diverged"].sum())
    tag = label + (f" ({n_div}/{len(a['diverged'])} diverged)" if n_div else "")
    curve = np.concatenate([a["probe_loss"][:, :1], a["loss"]], axis=1)
    curve[a["diverged"].astype(bool)] = np.nan
    return Band.over_seeds(np.arange(curve.shape[1]), curve, tag, **style)


@dataclass(frozen=True)
class InitVarianceFigure(Figure):
    """Left: variance through depth at init; middle: training curves; right: accuracy after training.

    Attributes
    ----------
    labels : list of str
        The series (every grid axis but ``init``), one colour each (``C0``, ``C1``, ...).
    variance : list of (Band, (ndarray, ndarray) or None)
        Per cell (series by series, each initializer), the median and 25-75% band over seeds of
        ``log10 Var(layer l) / Var(layer 1)`` at init against the layer ``l``, and He et al.'s
        prediction: the layers and ``(l - 1) log10 r`` there, shape (depth,) each (None unless
        the activation is a (leaky) ReLU).
    training : list of Band
        Per cell (the same order), the training loss against the epoch, diverged seeds dropped
        (an empty band when every seed diverged: a legend entry only).
    accuracy : list of Points
        Per initializer (matched, then mismatched; the point's label), the mean accuracy after
        training over seeds with its 95% interval (BCa bootstrap) per series, at x = series
        index -+ 0.2 (NaN where the series lacks the initializer or every seed diverged).
    chance : float
        The accuracy of a guess, 1 / classes.
    epochs, depth, width : int
        The training budget and the net's shape.
    """

    experiment = "init_variance"
    labels: list
    variance: list
    training: list
    accuracy: list
    chance: float
    epochs: int
    depth: int
    width: int

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        series = _series(claim, cells)
        styled = [
            (c, f"{label}, {which}", {"color": f"C{i}", "linestyle": STYLES[which]})
            for i, (label, by_init) in enumerate(series.items())
            for which, c in by_init.items()
        ]
        x = np.arange(len(series))
        accuracy = [
            Points.over_seeds(
                x + offset,
                [
                    experiment.metric("train_accuracy", by_init[which]) if which in by_init else np.zeros(0)
                    for by_init in series.values()
                ],
                which,
            )
            for offset, which in ((-0.2, "matched"), (0.2, "mismatched"))
        ]
        params = cells[0].params
        return cls(
            list(series),
            [_variance(c, label, style) for c, label, style in styled],
            [_training(c, label, style) for c, label, style in styled],
            accuracy,
            1 / cells[0].result.info["n_classes"],
            params["epochs"],
            params["depth"],
            params["width"],
        )

    def plot(self, path: Path) -> str:
        fig, axes = plotting.plt.subplots(1, 3, figsize=(16, 4.6))

        ax = axes[0]
        for band, theory in self.variance:
            plotting.draw_band(ax, band)
            if theory is not None:
                ax.plot(*theory, color="black", linestyle=":", linewidth=0.8)
        ax.set_xlabel("hidden layer l (1 = next to the input)")
        ax.set_ylabel("log10 Var(layer l output) / Var(layer 1 output)")
        ax.set_title("at initialization (median, 25-75% band over seeds)\ndotted: He et al. theory (l-1) log10 r")
        ax.legend(fontsize=6, ncol=2)

        ax = axes[1]
        for band in self.training:
            if band.mid.size == 0:
                ax.plot([], [], label=band.label, **band.style)
            else:
                plotting.draw_band(ax, band)
        ax.set_xlabel("epoch (0 = initialization)")
        ax.set_ylabel("training cross-entropy")
        ax.set_title("training curves (median, 25-75% band; diverged seeds dropped)")
        ax.legend(fontsize=6)

        ax = axes[2]
        for points in self.accuracy:
            ax.bar(
                points.x,
                np.nan_to_num(points.mean),
                width=0.4,
                yerr=plotting.yerr(points.mean, points.lo, points.hi),
                capsize=3,
                hatch="//" if points.label == "mismatched" else None,
                color=[f"C{i}" for i in range(len(self.labels))],
                edgecolor="black",
                alpha=0.8,
            )
            for xi, mean in zip(points.x, points.mean, strict=True):
                if not np.isfinite(mean):
                    ax.text(xi, 0.02, "all\ndiverged", ha="center", fontsize=6, rotation=90)
        ax.axhline(self.chance, color="black", linestyle=":", linewidth=1)
        handles = [
            plotting.plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", label="matched"),
            plotting.plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//", label="mismatched"),
            plotting.plt.Line2D([], [], color="black", linestyle=":", label="chance (1 / classes)"),
        ]
        ax.set_xticks(np.arange(len(self.labels)), self.labels, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"train accuracy after {self.epochs} epochs\n(mean, 95% CI (BCa bootstrap))")
        ax.set_title("does it still train?")
        ax.legend(handles=handles, fontsize=7)
        plotting.save(fig, path)
        return (
            f"Plain MLPs of {self.depth} hidden layers of {self.width} units, each activation with its matched and "
            "a mismatched initializer (solid and dashed). Left: variance of every hidden layer's outputs "
            "relative to the first at initialization, with He et al.'s prediction for (leaky) ReLU. Middle: "
            "training loss (epoch 0: on a probe batch of training inputs at initialization; then the mean over "
            "each epoch's mini-batches), seeds whose loss became non-finite left out. Right: accuracy on the "
            "probe batch after the short training budget."
        )
