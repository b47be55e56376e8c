"""The figure of ``activation_cost`` claims: time ratios to the reference, per array size and float type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.base import cell_roles
from actlab.claims.figures.base import Figure, mean_interval

ROLE_COLORS = {"judged": "tab:blue", "control": "tab:red", "context": "tab:gray"}


@dataclass(frozen=True)
class CostFigure(Figure):
    """Time ratios of the measured cells: one panel per (size, dtype), one row per activation.

    Attributes
    ----------
    panels : list of (int, str)
        The array sizes and float types, one panel each.
    labels : list of str
        The activations, one row each (top to bottom).
    ratios : dict
        ``(panel index, row index) -> (role, mean, lo, hi)``: the mean time ratio over
        repetitions, its 95% interval and the role of its condition, for each measured cell.
    machine : dict
        The machine the timings ran on (:func:`actlab.claims.experiments.cost.machine`).
    """

    experiment = "activation_cost"
    panels: list
    labels: list
    ratios: dict
    machine: dict

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        roles = cell_roles(verdict)
        measured = [c for c in cells if c.id in roles]
        panels = list(dict.fromkeys((c.params["size"], c.params["dtype"]) for c in measured))
        labels = list(dict.fromkeys(c.setting["activation"] for c in measured))
        ratios = {}
        for c in measured:
            at = (panels.index((c.params["size"], c.params["dtype"])), labels.index(c.setting["activation"]))
            ratios.setdefault(at, (roles[c.id], *mean_interval(experiment.metric("time_ratio", c))))
        return cls(panels, labels, ratios, measured[0].result.info["machine"])

    def plot(self, path: Path) -> str:
        fig, axes = plotting.plt.subplots(
            1,
            len(self.panels),
            figsize=(3.2 * len(self.panels) + 1.5, 0.32 * len(self.labels) + 1.6),
            squeeze=False,
            sharey=True,
        )
        for p, (ax, (size, dtype)) in enumerate(zip(axes[0], self.panels, strict=True)):
            for i in range(len(self.labels)):
                if (p, i) not in self.ratios:
                    continue
                role, mean, lo, hi = self.ratios[p, i]
                ax.errorbar(mean, i, xerr=[[mean - lo], [hi - mean]], fmt="o", capsize=3, color=ROLE_COLORS[role])
            ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
            ax.set_xscale("log")
            ax.set_title(f"{size:,} elements, {dtype}", fontsize=9)
            ax.set_xlabel("time / reference's (log)")
        axes[0, 0].set_yticks(np.arange(len(self.labels)), self.labels)
        axes[0, 0].set_ylim(len(self.labels) - 0.5, -0.5)
        handles = [
            plotting.plt.Line2D([], [], color=c, marker="o", linestyle="", label=r) for r, c in ROLE_COLORS.items()
        ]
        fig.legend(handles=handles, loc="upper right", fontsize=7)
        plotting.save(fig, path)
        host = self.machine
        return (
            "Forward + backward time of each activation divided by its reference's (ReLU unless the label names "
            "another), timed interleaved in one process: mean over repetitions with 95% CI (BCa bootstrap), one "
            f"panel per array size and float type; blue judged, red the negative control, gray context. Measured on "
            f"{host['cpu']} with NumPy {host['numpy']} ({host['blas']}; allocator "
            f"{host.get('allocator', 'system default')}); other machines give other numbers."
        )
