"""The figure of ``born_dead`` claims: born-dead rates by depth and width, measured and from Lu et al.'s formula."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.born_dead import INIT_KEYS, lu_formula
from actlab.claims.figures.base import Figure, Points
from actlab.engine.initializers import get_initializer


@dataclass(frozen=True)
class BornDeadFigure(Figure):
    """Heat maps of P(born dead) over width and depth (measured, formula, contrast init), and the rates against depth.

    Attributes
    ----------
    depths : ndarray of int, shape (n_depths,)
        The cells' depths, ascending (one cell each).
    widths : ndarray of int, shape (n_widths,)
        The widths every cell drew nets at.
    maps : dict
        ``"measured"``, ``"formula"`` and, with a ``contrast_init``, ``"contrast"`` -> ndarray of
        shape ``(n_widths, n_depths)``: the share of nets born dead with ``init``, the formula
        ``1 - (1 - 2^-N)^depth``, the share with ``contrast_init``.
    counts : dict
        ``"measured"`` (and ``"contrast"``) -> the number of nets per heat-map entry.
    rates : list of Points, one per width
        The share of nets born dead with ``init`` against depth, shape ``(n_depths,)``, with its
        exact binomial 95% interval.
    inits : dict
        ``"init"`` (and ``"contrast_init"``) -> the initializer's name.
    threshold : float
        The decision threshold on the born-dead rate.
    width : int
        The judged width.
    n_inputs, probe_size : int
        The input dimension and the number of probe inputs a net must be constant on.
    bias : str
        The name of the bias initializer.
    """

    experiment = "born_dead"
    depths: np.ndarray
    widths: np.ndarray
    maps: dict
    counts: dict
    rates: list
    inits: dict
    threshold: float
    width: int
    n_inputs: int
    probe_size: int
    bias: str

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        cells = sorted(cells, key=lambda c: c.params["depth"])
        depths = np.array([c.params["depth"] for c in cells])
        widths = cells[0].result.arrays["widths"]
        p = cells[0].params
        maps = {"measured": np.stack([c.result.arrays["born_dead"].mean(axis=0) for c in cells], axis=1)}
        maps["formula"] = lu_formula(widths[:, None], depths[None, :])
        if "contrast_init" in p:
            maps["contrast"] = np.stack([c.result.arrays["born_dead_contrast"].mean(axis=0) for c in cells], axis=1)
        counts = {
            key: len(cells[0].result.arrays["born_dead" + ("_contrast" if key == "contrast" else "")])
            for key in maps
            if key != "formula"
        }
        rates = [
            Points.over_seeds(
                depths,
                [c.result.arrays["born_dead"][:, i] for c in cells],
                f"N = {width}",
                binary=True,
                marker="o",
                markersize=3,
                capsize=2,
            )
            for i, width in enumerate(widths)
        ]
        return cls(
            depths,
            widths,
            maps,
            counts,
            rates,
            {k: get_initializer(p[k]).name for k in INIT_KEYS if k in p},
            claim["decision"]["threshold"],
            p["width"],
            p.get("n_inputs", 1),
            p.get("probe_size", 64),
            get_initializer(p.get("bias_init", "zeros")).name,
        )

    def plot(self, path: Path) -> str:
        depths, widths, names = self.depths, self.widths, self.inits
        titles = {
            "measured": f"measured, {names['init']}",
            "formula": "formula 1 - (1 - 2^-N)^depth",
            "contrast": f"measured, {names.get('contrast_init')}",
        }
        fig, grid = plotting.plt.subplots(2, 2, figsize=(12, 9))
        axes = list(grid.ravel())
        for ax in axes[len(self.maps) : -1]:
            ax.set_visible(False)
        for ax, (key, values) in zip(axes, self.maps.items(), strict=False):
            image = ax.imshow(values, vmin=0, vmax=1, cmap="magma", aspect="auto", origin="lower")
            for (i, j), v in np.ndenumerate(values):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
            ax.set_xticks(range(len(depths)), depths)
            ax.set_yticks(range(len(widths)), widths)
            ax.set_xlabel("depth (hidden layers)")
            ax.set_ylabel("width N (units per hidden layer)")
            count = f" ({self.counts[key]} nets per cell)" if key in self.counts else ""
            ax.set_title(f"P(born dead): {titles[key]}{count}", fontsize=9)
            ax.grid(False)
            fig.colorbar(image, ax=ax, label="probability")

        ax = axes[-1]
        for i, points in enumerate(self.rates):
            plotting.draw_points(ax, points, color=f"C{i}")
            ax.plot(depths, self.maps["formula"][i], color=f"C{i}", linestyle="--", linewidth=1)
        threshold = self.threshold
        ax.axhline(threshold, color="black", linestyle=":", linewidth=1)
        style = [
            plotting.plt.Line2D(
                [], [], color="gray", marker="o", label=f"measured, {names['init']} (95% CI (exact binomial))"
            ),
            plotting.plt.Line2D([], [], color="gray", linestyle="--", label="formula 1 - (1 - 2^-N)^depth"),
            plotting.plt.Line2D([], [], color="black", linestyle=":", label=f"decision threshold {threshold}"),
        ]
        legend = ax.legend(fontsize=7, title="width", loc="lower right")
        ax.add_artist(legend)
        ax.legend(handles=style, fontsize=7, loc="upper left", bbox_to_anchor=(0.0, 0.87), frameon=True, framealpha=0.9)
        ax.set_xscale("log")
        ax.set_xticks(depths, depths)
        ax.minorticks_off()
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("depth (hidden layers, log scale)")
        ax.set_ylabel("fraction of nets born dead")
        n = self.counts["measured"]
        ax.set_title(f"{n} nets per point; judged width N = {self.width}")
        plotting.save(fig, path)
        return (
            f"Fraction of ReLU nets ({self.n_inputs} input(s), {n} independent draws per cell, biases "
            f"{self.bias}) whose output is the same for all "
            f"{self.probe_size} probe inputs at initialization, by depth and width. Heat maps: measured with "
            f"{names['init']}, Lu et al.'s expression 1 - (1 - 2^-N)^depth (the exact probability that some "
            "hidden layer is all zero at one input, hence an upper bound over a domain)"
            + (f", and measured with {names['contrast_init']} (Lu et al.'s remedy)" if "contrast_init" in names else "")
            + ". Bottom right: the measured rates and the formula against depth, with 95% CI (exact binomial)."
        )
