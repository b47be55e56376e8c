"""The figure of ``convergence_speed`` claims: training-error curves at the tuned values, and the tuning sweep."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.base import Cell, cell_roles
from actlab.claims.figures.base import Band, Figure, Points


@dataclass(frozen=True)
class ConvergenceFigure(Figure):
    """Left, each series' training error over epochs at its tuned value; right, epochs to target against the tuned axis.

    A series is a setting of every grid axis except the tuned one (an activation, say); its
    measured cell is the one the verdict's tuning picked.

    Attributes
    ----------
    tune_axis : str
        The grid axis tuned per series (``lr`` unless the rule's ``tune`` names another).
    target : float
        The training error to reach (``target_error``).
    epochs : int
        The training budget ``E``; a run that never reaches the target counts as ``E + 1``.
    floor : float
        Where a zero training error is drawn on the log scale: ``1 / (2 N)`` for ``N`` training examples.
    curves : list of Band, one per series
        Training error after epochs ``0..E`` (x shape ``(E + 1,)``) of the series' measured cell,
        raised to ``floor``; the label carries the tuned value and its mean epochs to target.
    baseline : str or None
        The contrast's baseline series; None when it is not one of the series.
    ratios : dict
        Series label -> its mean epochs to target over the baseline's, both at their tuned values
        (every series but the baseline; empty without a baseline).
    sweeps : list of Points, one per series
        Mean epochs to target with 95% intervals at each value of the tuned axis the series was
        run at, shape ``(n_values,)``, in the series' colour.
    picks : list of (float, float), one per series
        The tuned value and the mean epochs to target there (the stars).
    grid_values : list of float
        Every value of the tuned axis, sorted (the x ticks of the sweep).
    """

    experiment = "convergence_speed"
    tune_axis: str
    target: float
    epochs: int
    floor: float
    curves: list
    baseline: str | None
    ratios: dict
    sweeps: list
    picks: list
    grid_values: list

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        tune_axis = (claim["decision"].get("tune") or {"over": "lr"})["over"]
        roles = cell_roles(verdict)
        series = defaultdict(list)
        for c in cells:
            series[_series_label(c, tune_axis)].append(c)
        floor = 0.5 / cells[0].result.info["n_train"]
        colors = dict(zip(series, plotting.plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
        curves, sweeps, picks, tuned_means = [], [], [], {}
        for label, members in series.items():
            best = _measured(members, roles)
            err = best.result.arrays["train_error"]
            tuned_means[label] = float(np.mean(experiment.metric("epochs_to_target", best)))
            curves.append(
                Band.over_seeds(
                    np.arange(err.shape[1]),
                    np.maximum(err, floor),
                    f"{label}, {tune_axis}={best.setting[tune_axis]} (mean epochs to target {tuned_means[label]:.1f})",
                    color=colors[label],
                )
            )
            members = sorted(members, key=lambda c: float(c.params[tune_axis]))
            sweeps.append(
                Points.over_seeds(
                    np.array([float(c.params[tune_axis]) for c in members]),
                    [experiment.metric("epochs_to_target", c) for c in members],
                    label,
                    color=colors[label],
                )
            )
            picks.append((float(best.params[tune_axis]), tuned_means[label]))
        baseline = str((claim["decision"].get("contrast") or {}).get("baseline"))
        if baseline in tuned_means:
            ratios = {k: v / tuned_means[baseline] for k, v in tuned_means.items() if k != baseline}
        else:
            baseline, ratios = None, {}
        return cls(
            tune_axis,
            cells[0].params["target_error"],
            cells[0].params["epochs"],
            floor,
            curves,
            baseline,
            ratios,
            sweeps,
            picks,
            sorted({float(c.params[tune_axis]) for c in cells}),
        )

    def plot(self, path: Path) -> str:
        tune_axis, target, epochs = self.tune_axis, self.target, self.epochs
        fig, (ax, ax_tune) = plotting.plt.subplots(1, 2, figsize=(12, 4.3), width_ratios=[1.5, 1])
        for curve in self.curves:
            plotting.draw_band(ax, curve)
        if self.baseline is not None:
            ratios = ", ".join(f"{k} {v:.2f}" for k, v in self.ratios.items())
            ax.text(
                0.02,
                0.03,
                f"mean epochs to target / {self.baseline}'s: {ratios}",
                transform=ax.transAxes,
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "gray", "alpha": 0.9},
            )
        ax.axhline(target, color="black", linestyle="--", linewidth=1, label=f"target error {target:g}")
        ax.axhline(self.floor, color="gray", linestyle=":", linewidth=1, label="0 errors (drawn at 1/(2N))")
        ax.set_yscale("log")
        ax.set_xlabel("epoch (0 = initialization)")
        ax.set_ylabel("training error (fraction misclassified, log scale)")
        ax.set_title(f"each activation at its tuned {tune_axis}: median over seeds, 25-75% band")
        ax.legend(fontsize=7)

        for sweep, (value, mean) in zip(self.sweeps, self.picks, strict=True):
            plotting.draw_points(ax_tune, sweep)
            ax_tune.plot(value, mean, marker="*", markersize=12, color=sweep.style["color"], linestyle="")
        ax_tune.axhline(epochs + 1, color="gray", linestyle=":", linewidth=1, label=f"never reached (= {epochs + 1})")
        ax_tune.set_xscale("log")
        ax_tune.set_xticks(self.grid_values, [f"{v:g}" for v in self.grid_values])
        ax_tune.minorticks_off()
        ax_tune.set_xlabel(f"{tune_axis} (SGD learning rate, log scale)")
        ax_tune.set_ylabel(f"epochs to training error <= {target:g}\n(mean, 95% CI (BCa bootstrap))")
        ax_tune.set_title(f"tuning: star = the {tune_axis} picked by the decision rule")
        ax_tune.legend(fontsize=7)
        plotting.save(fig, path)
        return (
            f"Left: training error on the whole training split after each epoch of SGD, for each "
            f"activation at its tuned {tune_axis} (the decision rule's pick) "
            f"(median over seeds with the 25-75% band; log scale, a zero error is drawn at 1/(2N)). "
            f"Right: mean epochs to reach error {target:g} against {tune_axis} with 95% CI (BCa bootstrap); runs that "
            f"never reach it within {epochs} epochs count as {epochs + 1}; stars mark the tuned values. "
            f"For scale: Krizhevsky et al. 2012 (Fig. 1) report a tanh/ReLU ratio of about 6 on CIFAR-10."
        )


def _series_label(cell: Cell, tune_axis: str) -> str:
    """A cell's series in the figure: its grid labels on every axis except the tuned one."""
    return ", ".join(v for k, v in cell.setting.items() if k != tune_axis) or cell.id


def _measured(members: list[Cell], roles: dict[str, str]) -> Cell:
    """The cell of a series that the verdict measured (the tuned learning rate the rule picked)."""
    picked = [c for c in members if c.id in roles]
    if len(picked) != 1:
        raise ValueError(f"expected one measured cell among {[c.id for c in members]}, found {len(picked)}")
    return picked[0]
