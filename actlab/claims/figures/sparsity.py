"""The figures of the sparsity claims: ``init_sparsity``, ``l1_sparsity`` and ``sparsity_family``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.base import Cell, cell_roles
from actlab.claims.figures.base import Figure, Points, mean_interval


def _judged_labels(cells: list[Cell], verdict: dict, axis: str) -> set[str]:
    """Labels on ``axis`` of the cells that judged conditions of ``verdict`` were measured on."""
    roles = cell_roles(verdict)
    return {c.setting[axis] for c in cells if roles.get(c.id) == "judged" and axis in c.setting}


@dataclass(frozen=True)
class InitSparsityFigure(Figure):
    """Exact zeros at initialization: per layer, per network, and the distance from one half against width.

    Attributes
    ----------
    rows : list of (str, int)
        The (initializer, width) of each row of ``table``.
    table : ndarray, shape (n_rows, depth)
        Mean over seeds of the fraction of exact zeros of each hidden layer, inputs as given.
    dots : list of (ndarray, ndarray, str)
        One entry per cell and input kind (as given, then standardized): the jittered x positions,
        the fraction of zeros pooled over layers of each seed, shapes ``(n_seeds,)``, and the colour.
    inits : list of str
        The initializers, left to right.
    widths : list of int
        The widths, ascending.
    judged : set of str
        The initializers of the cells judged conditions were measured on (the others are controls).
    deviations : list of Points
        Per initializer, against width: ``abs_dev_from_half``'s mean with its 95% interval.
    threshold : float
        The claim's threshold on the distance from one half.
    params : dict
        The first cell's parameters (depth and data set, for the caption).
    probe_size : int
        The number of probe inputs.
    """

    experiment = "init_sparsity"
    rows: list
    table: np.ndarray
    dots: list
    inits: list
    widths: list
    judged: set
    deviations: list
    threshold: float
    params: dict
    probe_size: int

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        inits = list(dict.fromkeys(c.setting.get("init", c.id) for c in cells))
        widths = sorted({c.params["width"] for c in cells})
        by_key = {(c.setting.get("init", c.id), c.params["width"]): c for c in cells}
        judged = _judged_labels(cells, verdict, "init")
        rows = [(init, w) for init in inits for w in widths if (init, w) in by_key]
        table = np.array([by_key[r].result.arrays["zero_frac"].mean(axis=0) for r in rows])
        dots = []
        rng = np.random.default_rng(0)  # horizontal jitter of the dots only
        for i, init in enumerate(inits):
            for k, w in enumerate(widths):
                if (init, w) not in by_key:
                    continue
                a = by_key[(init, w)].result.arrays
                xpos = i * (len(widths) + 1) + k
                for values, color in ((a["zero_frac"], f"C{k}"), (a["zero_frac_standardized"], "black")):
                    pooled = values.mean(axis=1)
                    offset = -0.2 if color != "black" else 0.2
                    jitter = rng.uniform(-0.12, 0.12, len(pooled))
                    dots.append((xpos + offset + jitter, pooled, color))
        deviations = []
        for i, init in enumerate(inits):
            present = [w for w in widths if (init, w) in by_key]
            deviations.append(
                Points.over_seeds(
                    np.array(present) * (1 + 0.03 * i),
                    [experiment.metric("abs_dev_from_half", by_key[(init, w)]) for w in present],
                    init,
                    color=f"C{i}",
                    linestyle="-" if init in judged else ":",
                )
            )
        threshold = claim["decision"]["threshold"]
        return cls(
            rows,
            table,
            dots,
            inits,
            widths,
            judged,
            deviations,
            threshold,
            cells[0].params,
            cells[0].result.info["probe_size"],
        )

    def plot(self, path: Path) -> str:
        fig, axes = plotting.plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.1, 1.3, 1]})

        ax = axes[0]
        image = ax.imshow(self.table, vmin=0, vmax=1, cmap="RdBu_r", aspect="auto")
        for (i, j), v in np.ndenumerate(self.table):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(self.table.shape[1]), range(1, self.table.shape[1] + 1))
        ax.set_yticks(range(len(self.rows)), [f"{init}, n={w}" for init, w in self.rows], fontsize=7)
        ax.set_xlabel("hidden layer (1 = next to the input)")
        ax.set_title("mean fraction of exact zeros per layer at init\n(inputs as given)")
        ax.grid(False)
        fig.colorbar(image, ax=ax, label="fraction of outputs exactly 0")

        ax = axes[1]
        threshold, widths = self.threshold, self.widths
        ax.axhspan(0.5 - threshold, 0.5 + threshold, color="gray", alpha=0.15)
        for x, pooled, color in self.dots:
            ax.plot(x, pooled, "o", color=color, markersize=2, alpha=0.6)
        ax.set_xticks(
            [i * (len(widths) + 1) + (len(widths) - 1) / 2 for i in range(len(self.inits))],
            [f"{init}{'' if init in self.judged else chr(10) + '(control)'}" for init in self.inits],
            fontsize=7,
        )
        handles = [plotting.plt.Line2D([], [], marker="o", linestyle="", color=f"C{k}") for k in range(len(widths))]
        handles.append(plotting.plt.Line2D([], [], marker="o", linestyle="", color="black"))
        handles.append(plotting.plt.Rectangle((0, 0), 1, 1, color="gray", alpha=0.15))
        labels = [f"width {w}, inputs as given" for w in widths] + ["standardized inputs (all widths)"]
        labels.append(f"0.5 +- {threshold}")
        ax.legend(handles, labels, fontsize=7, loc="lower left")
        ax.set_ylabel("fraction of exact zeros, all hidden layers pooled")
        ax.set_title("one dot per network (seed); widths left to right within each init")

        ax = axes[2]
        for points in self.deviations:
            plotting.draw_points(ax, points)
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(widths, widths)
        ax.minorticks_off()
        ax.set_xlabel("width n (units per hidden layer)")
        ax.set_ylabel("|zero fraction - 0.5| per network\n(mean, 95% CI (BCa bootstrap))")
        ax.set_title("distance from one half (dotted: controls, not judged)")
        ax.legend(fontsize=7)
        plotting.save(fig, path)
        p = self.params
        return (
            f"ReLU MLPs of {p['depth']} hidden layers on {p['dataset']} inputs at initialization (no training), "
            f"{self.probe_size} probe inputs. Left: mean fraction of exactly-zero outputs per "
            "layer for each initializer and width. Middle: the fraction pooled over layers, one dot per network, "
            "with the inputs as given (colours) and standardized (black). Right: how far a single network is from "
            "one half, against width. Controls with a positive bias are drawn dotted."
        )


@dataclass(frozen=True)
class L1SparsityFigure(Figure):
    """Sparsity and accuracy against the L1 coefficient, one curve per group of cells equal but for ``l1``.

    Attributes
    ----------
    sparsity : list of list of Points
        Per group, over the coefficients' positions: zeros after training, units dead on every test
        input and zeros at initialization (means with 95% intervals).
    accuracy : list of list of Points
        Per group: test accuracy (its means are also written next to the points), then training accuracy.
    positions : dict
        Coefficient label -> its x position.
    roles : dict
        Coefficient label -> the role of the condition measured on it (``"not used"`` for none);
        the coefficients not judged are shaded.
    n_diverged : int
        Diverged runs over every cell.
    params : dict
        The parameters of the cell of the smallest coefficient (network and training, for the caption).
    """

    experiment = "l1_sparsity"
    sparsity: list
    accuracy: list
    positions: dict
    roles: dict
    n_diverged: int
    params: dict

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        cells = sorted(cells, key=lambda c: c.params["l1"])
        groups = {}
        for c in cells:
            others = ", ".join(f"{k}={v}" for k, v in c.setting.items() if k != "l1")
            groups.setdefault(others, []).append(c)
        labels = [c.setting.get("l1", str(c.params["l1"])) for c in cells]
        positions = {label: i for i, label in enumerate(dict.fromkeys(labels))}
        sparsity, accuracy = [], []
        for g, (name, members) in enumerate(groups.items()):
            x = np.array([positions[m.setting.get("l1", str(m.params["l1"]))] for m in members])
            suffix = f" ({name})" if name else ""
            curves = [
                Points.over_seeds(
                    x + 0.05 * g,
                    [experiment.metric(metric_name, m) for m in members],
                    label + suffix,
                    color=f"C{g}",
                    linestyle=style,
                )
                for metric_name, style, label in (
                    ("sparsity", "-", "zeros after training"),
                    ("dead_frac", ":", "units dead on every test input"),
                    ("sparsity_init", "--", "zeros at initialization"),
                    ("test_accuracy", "-", "test accuracy"),
                    ("train_accuracy", "--", "training accuracy"),
                )
            ]
            sparsity.append(curves[:3])
            accuracy.append(curves[3:])
        roles = cell_roles(verdict)
        role_of = {c.setting.get("l1", str(c.params["l1"])): roles.get(c.id, "not used") for c in cells}
        n_diverged = sum(int(c.result.arrays["diverged"].sum()) for c in cells)
        return cls(sparsity, accuracy, positions, role_of, n_diverged, cells[0].params)

    def plot(self, path: Path) -> str:
        fig, axes = plotting.plt.subplots(1, 2, figsize=(13, 4.8))
        for group_sparsity, group_accuracy in zip(self.sparsity, self.accuracy, strict=True):
            for points in group_sparsity:
                plotting.draw_points(axes[0], points)
            for points in group_accuracy:
                plotting.draw_points(axes[1], points)
            test = group_accuracy[0]
            for xi, accuracy in zip(test.x, test.mean, strict=True):
                if np.isfinite(accuracy):
                    axes[1].annotate(f"{accuracy:.3f}", (xi, accuracy), (4, -12), "data", "offset points")
        for label, xi in self.positions.items():
            if self.roles[label] != "judged":  # the verdict's role of the coefficient: control or context
                for ax in axes:
                    ax.axvspan(xi - 0.4, xi + 0.4, color="gray", alpha=0.15, linewidth=0)
                axes[0].text(xi, 0.93, self.roles[label], ha="center", fontsize=7)
        for ax in axes:
            ax.set_xticks(list(self.positions.values()), list(self.positions))
            ax.set_xlabel("L1 activation penalty coefficient")
        axes[0].set_ylim(0, 1)
        axes[0].set_ylabel("fraction of hidden outputs / units\n(mean, 95% CI (BCa bootstrap))")
        axes[0].set_title("sparsity of the hidden layers on the test set")
        axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, 0.85))
        axes[1].set_ylabel("accuracy\n(mean, 95% CI (BCa bootstrap))")
        axes[1].set_title("what the penalty costs")
        axes[1].legend(fontsize=7)
        axes[1].text(0.02, 0.02, f"diverged runs: {self.n_diverged}", transform=axes[1].transAxes, fontsize=7)
        plotting.save(fig, path)
        p = self.params
        return (
            f"ReLU MLPs ({p['depth']} hidden layers of {p['width']} units, {p['dataset']}) trained {p['epochs']} "
            "epochs with mini-batch SGD and an L1 penalty on the hidden activations. Left: fraction of exactly-zero "
            "hidden outputs on the test set after training (solid) and at initialization (dashed), and the fraction "
            "of units silent on every test input (dotted). Right: test (numbers: its mean) and training accuracy. "
            "Grey: coefficients that are the claim's negative control or context, not judged."
        )


@dataclass(frozen=True)
class FamilyScatter:
    """One scatter panel of the family figure: every net's sparsity against one accuracy measure.

    Attributes
    ----------
    ylabel : str
        What the y axis measures.
    nets : list of (ndarray, ndarray)
        Per member: the sparsity and the measure of every seed's net, shapes ``(n_seeds,)``
        (all cells' seeds pooled).
    by_width : list of (ndarray, ndarray)
        Per width, ascending: the members' means over seeds of sparsity and of the measure, shapes
        ``(n_l1,)``, L1 increasing.
    means : list of tuple or None
        Per member: ``(x mean, x lo, x hi, y mean, y lo, y hi)``, the means over the seeds where
        both are finite and their 95% intervals; None with fewer than two such seeds.
    fit : (ndarray, ndarray) or None
        The least-squares line over every net: its ends' sparsities and values, shapes ``(2,)``;
        None with two finite nets or fewer.
    """

    ylabel: str
    nets: list
    by_width: list
    means: list
    fit: tuple | None

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray, member_width: np.ndarray, ylabel: str) -> FamilyScatter:
        """The panel of sparsity ``x`` against ``y``, both ``(n_seeds, n_members)``."""
        by_width = []
        for w in np.unique(member_width):
            m = np.flatnonzero(member_width == w)
            by_width.append((np.nanmean(x[:, m], axis=0), np.nanmean(y[:, m], axis=0)))
        nets, means = [], []
        for m in range(x.shape[1]):
            nets.append((x[:, m], y[:, m]))
            finite = np.isfinite(x[:, m]) & np.isfinite(y[:, m])
            if finite.sum() < 2:  # every seed of this member diverged but at most one
                means.append(None)
                continue
            means.append((*mean_interval(x[finite, m]), *mean_interval(y[finite, m])))
        finite = np.isfinite(x) & np.isfinite(y)
        fit = None
        if finite.sum() > 2:
            slope, intercept = np.polyfit(x[finite], y[finite], 1)
            ends = np.array([x[finite].min(), x[finite].max()])
            fit = (ends, intercept + slope * ends)
        return cls(ylabel, nets, by_width, means, fit)


@dataclass(frozen=True)
class SparsityFamilyFigure(Figure):
    """Sparsity against test accuracy and generalization gap over a family of nets, and the rank correlations.

    Attributes
    ----------
    scatters : list of FamilyScatter
        Sparsity against test accuracy, then against the generalization gap.
    member_width, member_l1 : ndarray, shape (n_members,)
        Each member's width (its marker) and L1 coefficient (its colour).
    analyses : list of str
        The cells' analyses (strata), top to bottom.
    rhos : list of Points
        Spearman's rho of sparsity with test accuracy, then with the gap: per cell, at its row
        (offset), the mean over seeds with its 95% interval.
    params : dict
        The first cell's parameters (the family, for the caption).
    n_seeds : int
        Seeds over every cell.
    """

    experiment = "sparsity_family"
    scatters: list
    member_width: np.ndarray
    member_l1: np.ndarray
    analyses: list
    rhos: list
    params: dict
    n_seeds: int

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        a = {k: np.concatenate([c.result.arrays[k] for c in cells]) for k in ("sparsity", "test_accuracy")}
        gap = np.concatenate([c.result.arrays["train_accuracy"] for c in cells]) - a["test_accuracy"]
        member_width, member_l1 = cells[0].result.arrays["member_width"], cells[0].result.arrays["member_l1"]
        scatters = [
            FamilyScatter.of(a["sparsity"], a["test_accuracy"], member_width, "test accuracy"),
            FamilyScatter.of(a["sparsity"], gap, member_width, "generalization gap: training - test accuracy"),
        ]
        rhos = [
            Points.over_seeds(
                np.arange(len(cells)) + 0.15 * (offset - 0.5),
                [experiment.metric(metric_name, c) for c in cells],
                label,
                color=color,
            )
            for offset, (metric_name, color, label) in enumerate(
                (("rho_test_accuracy", "C0", "sparsity vs test accuracy"), ("rho_gap", "C3", "sparsity vs gap"))
            )
        ]
        analyses = [c.setting.get("analysis", c.id) for c in cells]
        n_seeds = sum(len(c.result.arrays["sparsity"]) for c in cells)
        return cls(scatters, member_width, member_l1, analyses, rhos, cells[0].params, n_seeds)

    def plot(self, path: Path) -> str:
        member_width, member_l1 = self.member_width, self.member_l1
        l1_values, widths = np.unique(member_l1), np.unique(member_width)
        colors = plotting.plt.cm.viridis(np.linspace(0, 0.9, len(l1_values)))
        markers = dict(zip(widths, "os^Dv<>p", strict=False))
        fig, axes = plotting.plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
        for ax, scatter in zip(axes[:2], self.scatters, strict=True):
            for x_means, y_means in scatter.by_width:
                ax.plot(x_means, y_means, color="gray", linewidth=0.8)
            for m, ((x, y), means) in enumerate(zip(scatter.nets, scatter.means, strict=True)):
                style = {"color": colors[np.searchsorted(l1_values, member_l1[m])], "marker": markers[member_width[m]]}
                ax.scatter(x, y, s=6, alpha=0.3, linewidths=0, **style)
                if means is None:
                    continue
                x_mean, x_lo, x_hi, y_mean, y_lo, y_hi = means
                ax.errorbar(
                    x_mean,
                    y_mean,
                    xerr=plotting.yerr(x_mean, x_lo, x_hi),
                    yerr=plotting.yerr(y_mean, y_lo, y_hi),
                    markersize=7,
                    markeredgecolor="black",
                    ecolor="black",
                    elinewidth=0.8,
                    **style,
                )
            if scatter.fit is not None:
                ax.plot(*scatter.fit, "k--", linewidth=1)
            ax.set_xlabel("sparsity: fraction of exact zeros of the hidden outputs (test set)")
            ax.set_ylabel(scatter.ylabel)
        handles = [
            plotting.plt.Line2D([], [], marker="o", linestyle="", color=colors[i], label=f"L1 {v:g}")
            for i, v in enumerate(l1_values)
        ]
        handles += [
            plotting.plt.Line2D([], [], marker=markers[w], linestyle="", color="gray", label=f"width {w}")
            for w in widths
        ]
        handles += [
            plotting.plt.Line2D([], [], color="gray", linewidth=0.8, label="same width, L1 increasing"),
            plotting.plt.Line2D([], [], color="black", linestyle="--", label="least-squares line, all nets"),
        ]
        axes[0].legend(handles=handles, fontsize=6, loc="lower left")
        axes[0].set_title("each net (dots); mean over seeds per member (large markers)\nwith 95% CI (BCa bootstrap)")
        axes[1].set_title("the same nets against the generalization gap")

        ax = axes[2]
        for points in self.rhos:
            for i, (row, mean, lo, hi) in enumerate(zip(points.x, points.mean, points.lo, points.hi, strict=True)):
                if np.isnan(mean):
                    continue
                ax.errorbar(
                    mean,
                    row,
                    xerr=plotting.yerr(mean, lo, hi),
                    fmt="o",
                    color=points.style["color"],
                    capsize=3,
                    label=points.label if i == 0 else None,
                )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(self.analyses)), self.analyses)
        ax.invert_yaxis()
        ax.set_xlim(-1, 1)
        ax.set_xlabel("Spearman rho per seed's family (mean, 95% CI (BCa bootstrap))")
        ax.set_title("rank correlation by analysis (strata)")
        ax.legend(fontsize=7)
        plotting.save(fig, path)
        p = self.params
        return (
            f"A family of ReLU MLPs ({p['depth']} hidden layers on {p['dataset']}, {p['epochs']} epochs of SGD): "
            f"widths {p['widths']} (marker) x L1 activation penalties {p['l1_values']} (colour), every member "
            f"trained from each of {self.n_seeds} seeds (all cells pooled "
            "in the scatter plots). Right: the rank correlation computed within each seed's family - within each "
            "width across L1 values, within each L1 value across widths, or over all members - and its mean over "
            "the seeds of that analysis's cell."
        )
