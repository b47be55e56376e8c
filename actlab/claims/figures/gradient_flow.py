"""The figure of ``gradient_flow`` claims: per-layer gradient norms of the deepest nets, first/last ratios by depth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.gradient_flow import log10_ratio
from actlab.claims.figures.base import Band, Figure, Points
from actlab.engine.activations import get_activation


@dataclass(frozen=True)
class GradientFlowFigure(Figure):
    """Left and middle, ``log10 ||dL/dW_l||`` by layer at init and after training; right, the first/last ratio by depth.

    A series is a setting of the claim's first grid axis other than depth (``series_axis``).

    Attributes
    ----------
    series_axis : str
        The grid axis whose settings are drawn as separate lines (``depth`` when it is the only one).
    deepest : int
        The depth whose nets the left and middle panels show.
    at_init, trained : list of Band, one per cell of depth ``deepest``
        ``log10 ||dL/dW_l||`` of layers ``l = 1..L + 1`` (x shape ``(depth + 1,)``, the output
        layer last) at initialization and after training (the cell's two probes).
    use_delta : bool
        The decision metric is about the back-propagated error ``delta`` (else the weight gradient):
        which norm the right panel's ratios are of.
    ratios : list of Points, one per series
        Mean over seeds of the log10 first/last hidden-layer norm ratio at init, with its 95%
        interval, at each depth of the series, shape ``(n_depths,)``.
    gain_lines : list of (ndarray or None), one per series
        ``(L - 1) log10 gain`` at the series' depths, shape ``(n_depths,)``, for a ``delta`` ratio
        of units with a gain; None otherwise.
    gain_grid : bool
        The claim's grid has a ``gain`` axis (the right panel's title then explains the dotted lines).
    """

    experiment = "gradient_flow"
    series_axis: str
    deepest: int
    at_init: list
    trained: list
    use_delta: bool
    ratios: list
    gain_lines: list
    gain_grid: bool

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        series_axis = _series_axis(claim)
        deepest = max(c.params["depth"] for c in cells)
        profiles = {0: [], -1: []}
        for stage, bands in profiles.items():
            for c in cells:
                if c.params["depth"] != deepest:
                    continue
                norms = c.result.arrays["grad_norm"][:, stage, :]
                layers = np.arange(1, norms.shape[1] + 1)
                bands.append(Band.over_seeds(layers, np.log10(norms), c.setting.get(series_axis, c.id)))
        use_delta = "delta" in claim["decision"]["metric"]
        key = "delta_norm" if use_delta else "grad_norm"
        series = {}
        for c in cells:
            series.setdefault(c.setting.get(series_axis, c.id), []).append(c)
        ratios, gain_lines = [], []
        for label, members in series.items():
            members.sort(key=lambda c: c.params["depth"])
            depths = np.array([c.params["depth"] for c in members])
            ratios.append(Points.over_seeds(depths, [log10_ratio(c, key) for c in members], label))
            gain = getattr(get_activation(members[0].params["activation"]), "gain", None)
            gain_lines.append((depths - 1) * np.log10(gain) if use_delta and gain is not None else None)
        return cls(
            series_axis,
            deepest,
            profiles[0],
            profiles[-1],
            use_delta,
            ratios,
            gain_lines,
            "gain" in claim.get("grid", {}),
        )

    def plot(self, path: Path) -> str:
        fig, axes = plotting.plt.subplots(1, 3, figsize=(14, 4))
        stages = ((self.at_init, axes[0], "at initialization"), (self.trained, axes[1], "after training"))
        for bands, ax, title in stages:
            for band in bands:
                plotting.draw_band(ax, band)
            ax.set_xlabel("layer (1 = next to the input; last = output layer)")
            ax.set_ylabel("log10 ||dL/dW_l||  (median, 25-75% band)")
            ax.set_title(f"depth {self.deepest}, {title}")
        axes[0].legend(title=self.series_axis, fontsize=7)

        ax = axes[2]
        for points, line in zip(self.ratios, self.gain_lines, strict=True):
            plotting.draw_points(ax, points)
            if line is not None:
                ax.plot(points.x, line, "k:", linewidth=1)
        which = "||delta_1|| / ||delta_L||" if self.use_delta else "||dL/dW_1|| / ||dL/dW_L||"
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel(f"log10 {which} at init\n(mean, 95% CI (BCa bootstrap))")
        ax.set_title("first vs last hidden layer" + (" (dotted: (L-1) log10 gain)" if self.gain_grid else ""))
        ax.axhline(0, color="black", linewidth=0.8)
        ax.legend(title=self.series_axis, fontsize=7)
        plotting.save(fig, path)
        return (
            "Left, middle: weight-gradient norm of every layer of the deepest nets at init and after "
            "training. Right: first-over-last hidden-layer ratio against depth (mean over seeds, "
            "95% CI (BCa bootstrap))."
        )


def _series_axis(claim: dict) -> str:
    """The grid axis drawn as separate lines: the first one that is not depth."""
    series = [a for a in claim.get("grid", {}) if a != "depth"]
    return series[0] if series else "depth"
