"""The figure of ``symmetric_init`` claims: loss, distinct hidden units and hidden outputs over training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.symmetry import count_distinct
from actlab.claims.figures.base import Band, Figure


@dataclass(frozen=True)
class SymmetryFigure(Figure):
    """Every cell's training curves over epochs, three panels; colour and marker the init, line style the activation.

    Attributes
    ----------
    loss, distinct, hidden : list of Band
        One per cell, in the cells' order, over epochs (0 = initialization): the training loss, the
        number of distinct units of the first hidden layer and the largest hidden output.
    width, depth : int
        The hidden layers' width and their number (of the first cell).
    rtol : float
        The relative tolerance distinct units are counted at (of the first cell).
    """

    experiment = "symmetric_init"
    loss: list
    distinct: list
    hidden: list
    width: int
    depth: int
    rtol: float

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        inits = list(dict.fromkeys(c.setting.get("init", c.id) for c in cells))
        acts = list(dict.fromkeys(c.setting.get("activation", "") for c in cells))
        colors = {label: f"C{i}" for i, label in enumerate(inits)}
        markers = {label: "osD^vP"[i % 6] for i, label in enumerate(inits)}
        styles = {act: ("-", "--", ":", "-.")[i % 4] for i, act in enumerate(acts)}
        fills = {act: ("full", "none")[i % 2] for i, act in enumerate(acts)}
        loss, distinct, hidden = [], [], []
        for c in cells:
            a = c.result.arrays
            epochs = np.arange(a["loss"].shape[1])
            init, act = c.setting.get("init", c.id), c.setting.get("activation", "")
            style = {
                "color": colors[init],
                "linestyle": styles[act],
                "marker": markers[init],
                "markevery": (inits.index(init) + 2 * acts.index(act), max(1, len(epochs) // 4)),
                "fillstyle": fills[act],
                "markersize": 5,
            }
            label = f"{init}, {act}" if act else init
            rtol = c.params.get("rtol", 1e-6)
            loss.append(Band.over_seeds(epochs, a["loss"], label, **style))
            distinct.append(Band.over_seeds(epochs, count_distinct(a["gap0"], rtol), label, **style))
            hidden.append(Band.over_seeds(epochs, a["max_abs_hidden"].max(axis=2), label, **style))
        first = cells[0].params
        return cls(loss, distinct, hidden, first["width"], first["depth"], first.get("rtol", 1e-6))

    def plot(self, path: Path) -> str:
        fig, axes = plotting.plt.subplots(1, 3, figsize=(16, 4.6))
        for bands in zip(self.loss, self.distinct, self.hidden, strict=True):
            for ax, band in zip(axes, bands, strict=True):
                plotting.draw_band(ax, band)
        axes[0].set_ylabel("training-set cross-entropy")
        axes[0].set_title("loss (median, 25-75% band over seeds)")
        axes[1].set_ylabel(f"distinct units in hidden layer 1 (of {self.width})")
        axes[1].set_title(f"distinct units (relative tolerance {self.rtol:g})")
        axes[1].set_ylim(0, self.width + 1)
        axes[2].set_yscale("symlog", linthresh=1e-3)
        axes[2].set_ylabel("max |hidden output| over inputs and layers")
        axes[2].set_title("hidden activations (symlog: 0 is drawn at 0)")
        for ax in axes:
            ax.xaxis.set_major_locator(plotting.matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_xlabel("epoch (0 = initialization)")
            ax.legend(fontsize=7, title="init, activation", title_fontsize=7)
        plotting.save(fig, path)
        return (
            f"MLPs of {self.depth} hidden layer(s) of {self.width} units trained with mini-batch SGD from zero, "
            "constant and random weights. Left: training loss. Middle: number of distinct units of the first hidden "
            "layer (rows of incoming weights and bias). Right: largest hidden output; with zero weights it "
            "stays exactly 0 and the net outputs its output bias alone, the same for every input."
        )
