"""The figures of ``dying_units`` claims, one per kind of grid.

A grid with an ``activation`` axis draws :class:`ActivationFigure` (bars per activation and
learning rate), else one with an ``lr`` axis :class:`LearningRateFigure` (the learning-rate sweep),
else :class:`RevivalFigure` (dead units over time and their revivals per batch setting and layer).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.base import Cell
from actlab.claims.experiments.dying import revivals, revived_share, snapshot_valid
from actlab.claims.figures.base import Band, Figure, Points, mean_interval
from actlab.engine.activations import get_activation

#: line styles of the batch settings in the revival figure
BATCH_STYLES = ["-", "--", ":", "-."]
#: bar hatches of the batch settings in the revival figure
BATCH_HATCHES = ["", "//"]
#: the activation figure's bar panels: (row, column, metric, y label, title)
BAR_PANELS = (
    (0, 0, "dead_frac_end", "fraction of units dead at the end", "dead: f'(z) = 0 on every training input"),
    (
        0,
        1,
        "inactive_frac_end",
        "fraction of units inactive at the end",
        "inactive: z <= 0 on every training input (diamond: after epoch 1;\nn = nets that did not diverge)",
    ),
    (1, 1, "diverged", "fraction of nets that diverged", "divergence: loss or weights NaN/inf"),
)
#: the activation figure's loss bars stop here (the true median is written above)
LOSS_CAP = 1e3


class DyingFigure(Figure):
    """The figure of a ``dying_units`` claim: the variant that fits the claim's grid."""

    experiment = "dying_units"

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        grid = claim.get("grid", {}) or {}
        if "activation" in grid:
            return ActivationFigure.from_verdict(experiment, claim, cells, verdict)
        if "lr" in grid:
            return LearningRateFigure.from_verdict(experiment, claim, cells, verdict)
        return RevivalFigure.from_verdict(experiment, claim, cells, verdict)


@dataclass(frozen=True)
class Raster:
    """Dead (1) or alive (0) at every snapshot, for every ever-dead unit of one net.

    Attributes
    ----------
    mode : str
        The batch setting the net was trained with.
    image : ndarray of float, shape (n_ever_dead, P) or None
        One row per unit dead at some snapshot, layer by layer, one column per snapshot; None
        when every net of the setting diverged.
    units : list of int
        The number of rows of each hidden layer (its ever-dead units).
    """

    mode: str
    image: np.ndarray | None
    units: list

    @classmethod
    def median_net(cls, mode: str, arrays: list[dict], depth: int) -> Raster:
        """The raster of the non-diverged net with the median number of ever-dead units among ``arrays``' seeds."""
        nets = [(i, s) for i, a in enumerate(arrays) for s in range(len(a["diverged"])) if not a["diverged"][s]]
        if not nets:
            return cls(mode, None, [])
        counts = [sum(arrays[i][f"dead{k}"][s].any(axis=0).sum() for k in range(depth)) for i, s in nets]
        i, s = nets[int(np.argsort(counts, kind="stable")[len(counts) // 2])]
        rows = []
        for layer in range(depth):
            mask = arrays[i][f"dead{layer}"][s]  # (P, n)
            rows.append(mask[:, mask.any(axis=0)].T.astype(float))
        return cls(mode, np.concatenate(rows), [len(r) for r in rows])


@dataclass(frozen=True)
class RevivalFigure(DyingFigure):
    """Dead units over epochs and the share of ever-dead units that revive, per batch setting and hidden layer.

    Cells of one batch setting differ only in the judged layer scope (each trains the same kind of
    net with its own seeds), so the figure pools their seeds and shows every layer.

    Attributes
    ----------
    modes : list of str
        The batch settings (e.g. full, mini).
    depth, width : int
        Hidden layers and units per layer.
    lr : float
        The SGD learning rate.
    curves : list of list of Band, shape (n_modes, depth)
        The fraction of the layer's units dead at each snapshot ``0..E``, over the seeds for which
        the snapshot is valid (taken before any divergence).
    revived : ndarray, shape (n_modes, depth, 3)
        The mean share of ever-dead units that revive (:func:`actlab.claims.experiments.dying.revived_share`)
        over the non-diverged nets and its 95% interval (BCa bootstrap).
    counts : ndarray, shape (n_modes, depth, 2)
        Mean number of revived and of ever-dead units per non-diverged net (NaN when every net diverged).
    rasters : list of Raster
        One representative net of each of the first two batch settings.
    threshold : float or None
        The decision threshold, drawn when the decision metric is ``revived_frac``.
    compare : str
        The decision's comparison.
    """

    modes: list
    depth: int
    width: int
    lr: float
    curves: list
    revived: np.ndarray
    counts: np.ndarray
    rasters: list
    threshold: float | None
    compare: str

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        modes = defaultdict(list)
        for c in cells:
            modes[c.setting.get("batch", str(c.params["batch_size"]))].append(c)
        depth = cells[0].params["depth"]
        curves, revived, counts, rasters = [], [], [], []
        for m, (mode, members) in enumerate(modes.items()):
            arrays = [c.result.arrays for c in members]
            steps = members[0].result.info["steps_per_epoch"]
            curves.append([])
            for layer in range(depth):
                masks = np.concatenate([a[f"dead{layer}"] for a in arrays])
                valid = np.concatenate([snapshot_valid(a["diverged_epoch"], masks.shape[1]) for a in arrays])
                frac = np.where(valid, masks.astype(float).mean(axis=2), np.nan)
                curves[-1].append(
                    Band.over_seeds(
                        np.arange(frac.shape[1]),
                        frac,
                        f"{mode} ({steps} step(s)/epoch), layer {layer + 1}",
                        color=f"C{layer}",
                        linestyle=BATCH_STYLES[m % 4],
                    )
                )
                diverged = np.concatenate([a["diverged"] for a in arrays])
                revived.append(mean_interval(revived_share(masks, diverged)))
                ever, back = revivals(masks)
                kept = ~diverged
                counts.append(
                    (back[kept].sum(axis=1).mean(), ever[kept].sum(axis=1).mean()) if kept.any() else (np.nan, np.nan)
                )
            if m < 2:
                rasters.append(Raster.median_net(mode, arrays, depth))
        decision = claim["decision"]
        return cls(
            list(modes),
            depth,
            cells[0].params["width"],
            cells[0].params["lr"],
            curves,
            np.reshape(revived, (len(modes), depth, 3)),
            np.reshape(counts, (len(modes), depth, 2)),
            rasters,
            decision["threshold"] if decision["metric"] == "revived_frac" else None,
            decision["compare"],
        )

    def plot(self, path: Path) -> str:
        depth, width, modes = self.depth, self.width, self.modes
        fig, axes = plotting.plt.subplots(2, 2, figsize=(13, 9))
        ax_time, ax_bar = axes[0]
        bar_w = 0.8 / max(len(modes), 1)
        for m, mode in enumerate(modes):
            for layer in range(depth):
                plotting.draw_band(ax_time, self.curves[m][layer])
                mean, lo, hi = self.revived[m, layer]
                x = layer + (m - (len(modes) - 1) / 2) * bar_w
                ax_bar.bar(
                    x,
                    mean,
                    bar_w * 0.9,
                    yerr=plotting.yerr(mean, lo, hi),
                    capsize=3,
                    color=f"C{layer}",
                    hatch=BATCH_HATCHES[m % 2],
                    edgecolor="black",
                    label=mode if layer == 0 else None,
                )
                n_back, n_ever = self.counts[m, layer]
                ax_bar.text(x, np.nanmax([0.0, mean, hi]) + 0.02, f"{n_back:.1f}/{n_ever:.1f}", ha="center", fontsize=7)
            if m < 2:
                _draw_raster(axes[1][m], self.rasters[m])
        ax_time.set_ylabel(f"fraction of the layer's {width} units dead\n(f' = 0 on every training input)")
        ax_time.set_title("dead units over training (median over seeds, 25-75% band)")
        _epochs_axis(ax_time)
        ax_time.legend(fontsize=7, title="batch, layer", title_fontsize=7)
        ax_bar.set_xticks(
            range(depth),
            [f"layer {i + 1}" + (" (first)" if i == 0 else " (last)" if i == depth - 1 else "") for i in range(depth)],
        )
        ax_bar.set_ylim(0, 1.12)
        ax_bar.set_ylabel("revived / ever dead\n(mean over nets, 95% CI (BCa bootstrap))")
        ax_bar.set_title(
            "revivals: units dead at one snapshot and alive at a later one\n"
            "(labels: mean revived / mean ever-dead units per net)"
        )
        hatches = [
            plotting.matplotlib.patches.Patch(
                facecolor="white", edgecolor="black", hatch=BATCH_HATCHES[m % 2], label=mode
            )
            for m, mode in enumerate(modes)
        ]
        if self.threshold is not None:
            line = ax_bar.axhline(
                self.threshold,
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"decision threshold ({self.compare} {self.threshold:g})",
            )
            hatches.append(line)
        ax_bar.legend(handles=hatches, fontsize=7, title="batch", title_fontsize=7)
        plotting.save(fig, path)
        return (
            f"ReLU MLPs ({depth} hidden layers of {width}, plain SGD, lr {self.lr:g}) trained full-batch and with "
            "mini-batches; a unit is dead when its derivative is 0 on every training input. Top left: dead "
            "fraction per layer over epochs. Top right: share of ever-dead units that came back, per layer. "
            "Bottom: every ever-dead unit of one representative net (median number of ever-dead units) over "
            "epochs, black = dead: first-layer units never come back, deeper ones do."
        )


@dataclass(frozen=True)
class LearningRateFigure(DyingFigure):
    """The learning-rate sweep: dead fractions after epoch 1 and at the end, per layer, and the final loss.

    Attributes
    ----------
    lrs : ndarray, shape (n_lrs,)
        The cells' learning rates, ascending (one cell each).
    stages : list of Points, 2 entries
        The fraction of all hidden units dead after epoch 1 and after the last epoch, mean over
        seeds with its 95% interval (BCa bootstrap), shape ``(n_lrs,)`` each.
    layers : list of Points, one per hidden layer
        The fraction of the layer's units dead after epoch 1, shape ``(n_lrs,)``.
    loss : Band
        The final training loss over seeds, shape ``(n_lrs,)`` where some seed is finite.
    n_diverged : list of int
        Nets that diverged at each learning rate.
    n_classes : int
        Classes of the data set (``ln n_classes`` is the loss of a constant output).
    threshold : float
        The claimed fraction of dead units.
    setup : dict
        The training set-up every cell shares: ``depth``, ``width``, ``batch_size``, ``dataset``.
    """

    lrs: np.ndarray
    stages: list
    layers: list
    loss: Band
    n_diverged: list
    n_classes: int
    threshold: float
    setup: dict

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        cells = sorted(cells, key=lambda c: float(c.params["lr"]))
        lrs = np.array([float(c.params["lr"]) for c in cells])
        p = cells[0].params
        stages = [
            Points.over_seeds(
                lrs,
                [experiment.metric(f"dead_frac_{stage}", c) for c in cells],
                f"{label} (epoch {p['epochs']})" if stage == "end" else label,
                linestyle=style,
            )
            for stage, label, style in (("epoch1", "after epoch 1", "-"), ("end", "at the end", "--"))
        ]
        layers = [
            Points.over_seeds(
                lrs,
                [
                    np.where(
                        snapshot_valid(c.result.arrays["diverged_epoch"], 2)[:, 1],
                        c.result.arrays[f"dead{layer}"][:, 1].mean(axis=1),
                        np.nan,
                    )
                    for c in cells
                ],
                f"layer {layer + 1}",
            )
            for layer in range(p["depth"])
        ]
        loss = [np.asarray(experiment.metric("final_loss", c), float) for c in cells]
        return cls(
            lrs,
            stages,
            layers,
            Band.over_seeds(lrs, loss, "final training loss", marker="o"),
            [c.result.info["n_diverged"] for c in cells],
            cells[0].result.info["n_classes"],
            claim["decision"]["threshold"],
            {k: p[k] for k in ("depth", "width", "batch_size", "dataset")},
        )

    def plot(self, path: Path) -> str:
        lrs, threshold = self.lrs, self.threshold
        fig, (ax, ax_layer, ax_loss) = plotting.plt.subplots(1, 3, figsize=(16, 4.6))
        for points in self.stages:
            plotting.draw_points(ax, points)
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"claim: {threshold:.0%} of units")
        ax.set_ylabel("fraction of all hidden units dead\n(mean, 95% CI (BCa bootstrap))")
        ax.set_title("dead = f' = 0 on every training input")
        for points in self.layers:
            plotting.draw_points(ax_layer, points)
        ax_layer.axhline(threshold, color="black", linestyle="--", linewidth=1)
        ax_layer.set_ylabel("fraction of the layer's units dead after epoch 1\n(mean, 95% CI (BCa bootstrap))")
        ax_layer.set_title("per hidden layer (1 = next to the input)")
        plotting.draw_band(ax_loss, self.loss)
        chance = np.log(self.n_classes)
        ax_loss.axhline(chance, color="gray", linestyle=":", label=f"constant output, ln {self.n_classes}")
        for lr, n_diverged in zip(lrs, self.n_diverged, strict=True):
            if n_diverged:
                ax_loss.annotate(f"{n_diverged} diverged", (lr, chance), fontsize=7, rotation=90)
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("training cross-entropy after the last epoch\n(median, 25-75% band)")
        ax_loss.set_title("does the net still learn?")
        for a in (ax, ax_layer, ax_loss):
            a.set_xscale("log")
            a.set_xticks(lrs, [f"{v:g}" for v in lrs], rotation=45)
            a.minorticks_off()
            a.set_xlabel("SGD learning rate (log scale)")
            a.legend(fontsize=7)
        for a in (ax, ax_layer):
            a.set_ylim(-0.02, 1.02)
        plotting.save(fig, path)
        p = self.setup
        return (
            f"ReLU MLPs ({p['depth']} hidden layers of {p['width']}, He init, plain SGD, batch {p['batch_size']}) on "
            f"{p['dataset']}, one cell per learning rate. Left: fraction of hidden units dead (derivative 0 on "
            "every training input) after the first epoch and at the end, with the claimed 40%. Middle: the same "
            "after epoch 1 per layer. Right: final training loss; ln(classes) is what a net with a constant "
            "output gets."
        )


@dataclass(frozen=True)
class ActivationFigure(DyingFigure):
    """Bars per activation, one colour per other setting (the learning rate): dead, inactive, diverged, final loss.

    A slot is one cell: activation ``i`` (the x tick) in other setting ``k`` (the colour).

    Attributes
    ----------
    labels : list of str
        The activations' names (with their float parameters), one x tick each.
    others : list of str
        The other settings (``lr=...``), one colour each.
    slots : list of (int, int)
        ``(k, i)`` of each cell, in drawing order.
    bars : dict
        Metric of each bar panel (:data:`BAR_PANELS`) -> ndarray of shape ``(n_slots, 3)``: the
        mean over non-diverged nets (for ``diverged``, over all nets) and its 95% interval.
    binary : frozenset of str
        The bar metrics that are 0/1 outcomes (exact binomial intervals).
    n_inactive : ndarray of int, shape (n_slots,)
        Nets with a finite ``inactive_frac_end`` (the non-diverged ones).
    early : ndarray, shape (n_slots, 3)
        Mean ``inactive_frac_epoch1`` and its 95% interval (the diamonds).
    loss : ndarray, shape (n_slots, 3)
        25th, 50th and 75th percentile of the final training loss of non-diverged nets, capped at
        :data:`LOSS_CAP` (NaN when every net diverged).
    loss_median : ndarray, shape (n_slots,)
        The uncapped median final loss (NaN when every net diverged).
    n_classes : int
        Classes of the data set.
    decision_metric, compare : str
        The decision rule's metric and comparison.
    threshold : float
        The decision threshold, drawn on the panel of the decision metric.
    setup : dict
        The training set-up every cell shares: ``depth``, ``width``, ``init``, ``batch_size``, ``epochs``, ``dataset``.
    """

    labels: list
    others: list
    slots: list
    bars: dict
    binary: frozenset
    n_inactive: np.ndarray
    early: np.ndarray
    loss: np.ndarray
    loss_median: np.ndarray
    n_classes: int
    decision_metric: str
    compare: str
    threshold: float
    setup: dict

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        acts = list(dict.fromkeys(c.setting["activation"] for c in cells))
        others = list(dict.fromkeys(_rest(c) for c in cells))
        table = {(c.setting["activation"], _rest(c)): c for c in cells}
        names = {}
        for c in cells:
            act = get_activation(c.params["activation"])
            extra = ", ".join(f"{k} {v:g}" for k, v in act.config().items() if isinstance(v, float))
            names[c.setting["activation"]] = act.name + (f"\n({extra})" if extra else "")
        slots = [(k, i) for k, other in enumerate(others) for i, act in enumerate(acts) if (act, other) in table]
        drawn = [table[acts[i], others[k]] for k, i in slots]
        binary = frozenset(name for _, _, name, _, _ in BAR_PANELS if name in experiment.binary_metrics)
        bars = {
            name: np.reshape([mean_interval(experiment.metric(name, c), binary=name in binary) for c in drawn], (-1, 3))
            for _, _, name, _, _ in BAR_PANELS
        }
        loss, loss_median = [], []
        for c in drawn:
            final = experiment.metric("final_loss", c)
            final = final[np.isfinite(final)]
            loss.append(np.minimum(np.percentile(final, [25, 50, 75]), LOSS_CAP) if len(final) else [np.nan] * 3)
            loss_median.append(np.median(final) if len(final) else np.nan)
        p = cells[0].params
        decision = claim["decision"]
        return cls(
            [names[a] for a in acts],
            others,
            slots,
            bars,
            binary,
            np.array([int(np.isfinite(experiment.metric("inactive_frac_end", c)).sum()) for c in drawn]),
            np.reshape([mean_interval(experiment.metric("inactive_frac_epoch1", c)) for c in drawn], (-1, 3)),
            np.reshape(loss, (-1, 3)),
            np.array(loss_median),
            cells[0].result.info["n_classes"],
            decision["metric"],
            decision["compare"],
            decision["threshold"],
            {k: p[k] for k in ("depth", "width", "init", "batch_size", "epochs", "dataset")},
        )

    def plot(self, path: Path) -> str:
        width = 0.8 / len(self.others)
        xs = [i + (k - (len(self.others) - 1) / 2) * width for k, i in self.slots]
        fig, axes = plotting.plt.subplots(2, 2, figsize=(14, 9))
        for row, col, name, ylabel, title in BAR_PANELS:
            ax = axes[row, col]
            for s, ((k, i), x) in enumerate(zip(self.slots, xs, strict=True)):
                mean, lo, hi = self.bars[name][s]
                ax.bar(
                    x,
                    mean,
                    width * 0.9,
                    yerr=plotting.yerr(mean, lo, hi),
                    capsize=3,
                    color=f"C{k}",
                    edgecolor="black",
                    label=self.others[k] if i == 0 else None,
                )
                if np.isnan(mean):
                    ax.text(x, 0.02, "all diverged", ha="center", fontsize=7, rotation=90)
                elif mean == 0:
                    ax.text(x, 0.01, "0", ha="center", va="bottom", fontsize=8)
                if name == "inactive_frac_end" and not np.isnan(mean):
                    ax.text(x, 1.03, f"n={self.n_inactive[s]}", ha="center", va="bottom", fontsize=7)
                if name == "inactive_frac_end":
                    early, early_lo, early_hi = self.early[s]
                    ax.errorbar(
                        x,
                        early,
                        yerr=plotting.yerr(early, early_lo, early_hi),
                        fmt="D",
                        color="black",
                        markersize=4,
                        capsize=2,
                        label="after epoch 1" if (i, k) == (0, 0) else None,
                    )
            if name == self.decision_metric:
                ax.axhline(
                    self.threshold,
                    color="black",
                    linestyle="--",
                    linewidth=1,
                    label=f"decision threshold ({self.compare} {self.threshold:g})",
                )
            ax.set_ylim(0, 1.3)  # headroom for the legend and the n labels
            ax.set_yticks(np.linspace(0, 1, 6))
            ax.set_ylabel(
                ylabel + "\n(share of nets, 95% CI (exact binomial))"
                if name in self.binary
                else ylabel + "\n(mean over non-diverged nets, 95% CI (BCa bootstrap))"
            )
            ax.set_title(title)
        ax = axes[1, 0]
        for (k, i), x, (lo, mid, hi), median in zip(self.slots, xs, self.loss, self.loss_median, strict=True):
            if np.isnan(median):
                ax.text(
                    x, 0.05, "all diverged", ha="center", fontsize=7, rotation=90, transform=ax.get_xaxis_transform()
                )
                continue
            ax.bar(
                x,
                mid,
                width * 0.9,
                color=f"C{k}",
                edgecolor="black",
                yerr=[[mid - lo], [hi - mid]],
                capsize=3,
                label=self.others[k] if i == 0 else None,
            )
            if median > LOSS_CAP:
                ax.text(x, LOSS_CAP * 1.3, f"{median:.0e}", ha="center", va="bottom", fontsize=7, rotation=90)
        ax.axhline(np.log(self.n_classes), color="gray", linestyle=":", label=f"constant output (ln {self.n_classes})")
        ax.set_yscale("log")
        ax.set_ylim(top=1e5)
        ax.set_ylabel("training cross-entropy after the last epoch\n(median, 25-75% of non-diverged nets)")
        ax.set_title(f"does the net still learn? (bars capped at {LOSS_CAP:g}, true median written above)")
        for ax in axes.flat:
            ax.set_xticks(range(len(self.labels)), self.labels)
            ax.legend(fontsize=7, loc="upper left", ncol=4)
        p = self.setup
        fig.suptitle(
            f"{p['depth']} hidden layers of {p['width']}, {p['init']} init, plain SGD, batch {p['batch_size']}, "
            f"{p['epochs']} epochs on {p['dataset']}",
            fontsize=10,
        )
        plotting.save(fig, path)
        return (
            "Each activation in the high-learning-rate regime where ReLU units die. Top left: units dead in the "
            "gradient sense (derivative 0 on every training input; impossible for leaky ReLU, PReLU and NecroReLU, "
            "possible for ELU only when exp(z) underflows). Top right: units inactive (pre-activation <= 0 on every "
            "input), the forward analogue, at the end and (diamonds) after epoch 1: did they recover? Bottom: "
            "final training loss and the share of nets that diverged (left out of the other panels)."
        )


def _rest(cell: Cell) -> str:
    """A cell's grid labels on every axis but ``activation`` (its colour in the activation figure)."""
    return ", ".join(f"{k}={v}" for k, v in cell.setting.items() if k != "activation")


def _epochs_axis(ax) -> None:
    ax.xaxis.set_major_locator(plotting.matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch (0 = initialization)")


def _draw_raster(ax, raster: Raster) -> None:
    """Draw a :class:`Raster`: black = dead, one block of rows per hidden layer."""
    if raster.image is None:
        ax.set_title(f"{raster.mode}: every net diverged")
        return
    image, n_snapshots = raster.image, raster.image.shape[1]
    ends = np.cumsum(raster.units)
    ax.imshow(
        image if len(image) else np.zeros((1, n_snapshots)),
        aspect="auto",
        cmap="Greys",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        extent=(-0.5, n_snapshots - 0.5, max(len(image), 1), 0),
    )
    for end in ends[:-1]:
        ax.axhline(end, color="tab:red", linewidth=1)
    names = [f"layer {layer + 1}\n({n} units)" for layer, n in enumerate(raster.units)]
    ax.set_yticks((ends - np.array(raster.units) / 2).tolist(), names, fontsize=7)
    ax.grid(False)
    _epochs_axis(ax)
    ax.set_title(f"{raster.mode}: one net's ever-dead units (rows), black = dead, white = alive", fontsize=9)
