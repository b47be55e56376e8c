"""Sparsity of ReLU representations: exact zeros at initialization, under an L1 penalty, and generalization.

Used by three claims. Seed 000 quotes Glorot, Bordes & Bengio (2011, Deep sparse rectifier neural
networks): after a uniform initialization of the weights about 50% of the hidden units' outputs are
exact zeros (``init-sparsity-half``), and a sparsity-inducing penalty raises this fraction easily
(``l1-raises-sparsity``). Seed 003 adds that the more neurons output zero after training, the
better the network generalizes (``sparsity-generalizes``).

Sparsity is the fraction of exact zeros among the hidden outputs of a network on a set of inputs,

.. math:: s = \\frac{1}{B \\sum_l n_l} \\sum_l \\sum_{b=1}^{B} \\sum_{j=1}^{n_l} [a_{lbj} = 0],

pooled over all ``depth`` hidden layers (of equal width ``n``), measured in eval mode by
:func:`actlab.engine.probes.probe`.

Why one half at initialization. With zero biases and weights drawn from any distribution symmetric
about 0 without an atom at 0 (uniform, normal, Glorot, He: the scale does not matter, ReLU is
positively homogeneous), the pre-activation ``z = w . a`` of a unit on an input whose previous-layer
output ``a`` is non-zero is symmetric about 0, so ``P(z <= 0) = 1/2``: the *expected* fraction of
zeros is exactly 1/2 in the first layer, whatever the inputs (non-negative digit pixels included),
and in every later layer except on the inputs for which a whole earlier layer is already zero
(then ``a = 0`` and every later unit outputs exactly 0). That happens with probability ``2^-n`` per
layer (the born-dead mechanism, :mod:`actlab.claims.experiments.born_dead`), so only narrow nets have
more zeros in their deeper layers.

A single network's fraction fluctuates around 1/2, because a unit keeps its weights across inputs:
with strongly correlated inputs (raw pixels share a large common component; deep layers align
their inputs further) each unit is either mostly on or mostly off, and the fraction behaves like
the mean of ``n depth`` fair coins, ``E|s - 1/2| ~ sqrt(2 / pi) / (2 sqrt(n depth))``, and more in
narrow nets, where a silent layer silences every later one on that input. Standardized inputs
decorrelate the first layer. A positive bias breaks the symmetry (fewer zeros), the more so the
smaller the weights.

The L1 penalty is the engine's activation penalty ``l1 * sum_l mean_b sum_j |a_lbj|`` added to the
loss (:func:`actlab.engine.training.train`), the sparsity-inducing regularizer of Glorot et al. 2011.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actlab.claims.experiments.base import (
    DEPTH,
    EPOCHS,
    SPEC,
    WIDTH,
    Cell,
    CellResult,
    Experiment,
    build_mlp,
    cell_roles,
    metric,
)
from actlab.engine import probes
from actlab.engine.initializers import get_initializer
from actlab.engine.losses import get_loss
from actlab.engine.training import ArrayData, train

NET_PROPERTIES = {
    "dataset": {"type": "string"},
    "depth": DEPTH,
    "activation": SPEC,
    "init": SPEC,
    "bias_init": SPEC,
    "dtype": {"enum": ["float32", "float64"]},
}
TRAIN_PROPERTIES = {
    **NET_PROPERTIES,
    "epochs": {**EPOCHS, "minimum": 1},
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "momentum": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    "batch_size": {"type": "integer", "minimum": 1},
}
TRAIN_REQUIRED = ["dataset", "depth", "init", "epochs", "lr", "batch_size"]
#: how a family's members are grouped before ranking: by equal width, by equal L1, or not at all
STRATA = ("width", "l1", "none")


def train_and_measure(params: dict, ds, width: int, l1: float, seeds) -> dict[str, np.ndarray]:
    """Train one ensemble with activation penalty ``l1`` and measure its sparsity and accuracy.

    Returns per-seed arrays: ``zero_frac`` and ``dead_frac`` on the test inputs, ``(S, 2, depth)``
    (at initialization and after training); ``test_accuracy`` ``(S, 2)``; ``train_accuracy`` on the
    whole training split after training and ``diverged``, ``(S,)``. Diverged seeds have NaN
    measurements.
    """
    net = build_mlp(params, ds, seeds, width=width)
    epochs = params["epochs"]
    history = train(
        net,
        ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
        loss=ds.loss,
        optimizer={"name": "sgd", "lr": params["lr"], "momentum": params.get("momentum", 0.0)},
        epochs=epochs,
        l1_activation=l1,
        probe=(ds.x_test, ds.y_test),
        probe_every=epochs,
    )
    on_train = probes.probe(net, get_loss(ds.loss), ds.x_train, ds.y_train)
    diverged = history.diverged
    train_accuracy = np.where(diverged, np.nan, on_train["accuracy"])
    return {
        "zero_frac": history.metrics["probe_zero_frac"],
        "dead_frac": history.metrics["probe_dead_frac"],
        "test_accuracy": history.metrics["probe_accuracy"],
        "train_accuracy": train_accuracy,
        "diverged": diverged,
    }


class InitSparsity(Experiment):
    name = "init_sparsity"
    description = "fraction of exact-zero ReLU outputs per hidden layer at initialization"
    params_schema = {
        "type": "object",
        "required": ["dataset", "depth", "width", "init"],
        "properties": {
            **NET_PROPERTIES,
            "width": WIDTH,
            "probe_size": {"type": "integer", "minimum": 1},
        },
    }

    dims = {"zero_frac": ("seed", "layer"), "zero_frac_standardized": ("seed", "layer")}

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        net = build_mlp(params, ds, seeds)
        n = min(params.get("probe_size", 512), len(ds.x_train))
        x, y = ds.x_train[:n], ds.y_train[:n]
        mean, std = ds.x_train.mean(axis=0), ds.x_train.std(axis=0)
        std[std == 0] = 1.0  # constant pixels (digits' corners) stay at 0
        loss = get_loss(ds.loss)
        given = probes.probe(net, loss, x, y)
        standardized = probes.probe(net, loss, (x - mean) / std, y)
        arrays = {
            "zero_frac": given["zero_frac"],
            "zero_frac_standardized": standardized["zero_frac"],
        }
        return CellResult(arrays, {"probe_size": n, "init_used": get_initializer(params["init"]).spec()})

    @metric("fraction of exact zeros among all hidden outputs at init, on the probe inputs as given")
    def zero_frac(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["zero_frac"].mean(axis=1)

    @metric("|fraction of exact zeros among all hidden outputs at init - 0.5|, inputs as given")
    def abs_dev_from_half(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac"].mean(axis=1) - 0.5)

    @metric("|fraction of exact zeros of the first hidden layer at init - 0.5|, inputs as given")
    def abs_dev_first_layer(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac"][:, 0] - 0.5)

    @metric("|fraction of exact zeros of the last hidden layer at init - 0.5|, inputs as given")
    def abs_dev_last_layer(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac"][:, -1] - 0.5)

    @metric(
        "|fraction of exact zeros among all hidden outputs at init - 0.5|, on the probe inputs standardized with "
        "the training split's mean and standard deviation"
    )
    def abs_dev_standardized(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac_standardized"].mean(axis=1) - 0.5)

    def figure(self, claim, cells, verdict, path: Path) -> str:
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        inits = list(dict.fromkeys(c.setting.get("init", c.id) for c in cells))
        widths = sorted({c.params["width"] for c in cells})
        by_key = {(c.setting.get("init", c.id), c.params["width"]): c for c in cells}
        judged = _judged_labels(cells, verdict, "init")
        fig, axes = plotting.plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.1, 1.3, 1]})

        ax = axes[0]
        rows = [(init, w) for init in inits for w in widths if (init, w) in by_key]
        table = np.array([by_key[r].result.arrays["zero_frac"].mean(axis=0) for r in rows])
        image = ax.imshow(table, vmin=0, vmax=1, cmap="RdBu_r", aspect="auto")
        for (i, j), v in np.ndenumerate(table):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(table.shape[1]), range(1, table.shape[1] + 1))
        ax.set_yticks(range(len(rows)), [f"{init}, n={w}" for init, w in rows], fontsize=7)
        ax.set_xlabel("hidden layer (1 = next to the input)")
        ax.set_title("mean fraction of exact zeros per layer at init\n(inputs as given)")
        ax.grid(False)
        fig.colorbar(image, ax=ax, label="fraction of outputs exactly 0")

        ax = axes[1]
        threshold = claim["decision"]["threshold"]
        ax.axhspan(0.5 - threshold, 0.5 + threshold, color="gray", alpha=0.15)
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
                    ax.plot(xpos + offset + jitter, pooled, "o", color=color, markersize=2, alpha=0.6)
        ax.set_xticks(
            [i * (len(widths) + 1) + (len(widths) - 1) / 2 for i in range(len(inits))],
            [f"{init}{'' if init in judged else chr(10) + '(control)'}" for init in inits],
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
        for i, init in enumerate(inits):
            present = [w for w in widths if (init, w) in by_key]
            style = {"color": f"C{i}", "linestyle": "-" if init in judged else ":"}
            plotting.mean_ci(
                ax,
                np.array(present) * (1 + 0.03 * i),
                [self.metric("abs_dev_from_half", by_key[(init, w)]) for w in present],
                label=init,
                **style,
            )
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
        p = cells[0].params
        return (
            f"ReLU MLPs of {p['depth']} hidden layers on {p['dataset']} inputs at initialization (no training), "
            f"{cells[0].result.info['probe_size']} probe inputs. Left: mean fraction of exactly-zero outputs per "
            "layer for each initializer and width. Middle: the fraction pooled over layers, one dot per network, "
            "with the inputs as given (colours) and standardized (black). Right: how far a single network is from "
            "one half, against width. Controls with a positive bias are drawn dotted."
        )


class L1Sparsity(Experiment):
    name = "l1_sparsity"
    description = "sparsity of hidden outputs and accuracy after training with an L1 activation penalty"
    params_schema = {
        "type": "object",
        "required": [*TRAIN_REQUIRED, "width", "l1"],
        "properties": {
            **TRAIN_PROPERTIES,
            "width": WIDTH,
            "l1": {"type": "number", "minimum": 0},
        },
    }

    dims = {
        "zero_frac": ("seed", "stage", "layer"),
        "dead_frac": ("seed", "stage", "layer"),
        "test_accuracy": ("seed", "stage"),
        "train_accuracy": ("seed",),
        "diverged": ("seed",),
    }

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        arrays = train_and_measure(params, ds, params["width"], params["l1"], seeds)
        return CellResult(arrays, {"n_diverged": int(arrays["diverged"].sum())})

    @metric("fraction of exact zeros among all hidden outputs on the test inputs after training")
    def sparsity(self, cell: Cell) -> np.ndarray:
        return final_sparsity(cell.result.arrays)

    @metric("fraction of exact zeros among all hidden outputs on the test inputs at initialization")
    def sparsity_init(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["zero_frac"][:, 0].mean(axis=1)

    @metric("test-set accuracy after training")
    def test_accuracy(self, cell: Cell) -> np.ndarray:
        return final_test_accuracy(cell.result.arrays)

    @metric("training-set accuracy after training")
    def train_accuracy(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["train_accuracy"]

    @metric("training minus test accuracy after training")
    def generalization_gap(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["train_accuracy"] - final_test_accuracy(cell.result.arrays)

    @metric("fraction of hidden units that output 0 for every test input after training")
    def dead_frac(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["dead_frac"][:, -1].mean(axis=1)

    def figure(self, claim, cells, verdict, path: Path) -> str:
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        cells = sorted(cells, key=lambda c: c.params["l1"])
        groups = {}
        for c in cells:
            others = ", ".join(f"{k}={v}" for k, v in c.setting.items() if k != "l1")
            groups.setdefault(others, []).append(c)
        labels = [c.setting.get("l1", str(c.params["l1"])) for c in cells]
        positions = {label: i for i, label in enumerate(dict.fromkeys(labels))}
        fig, axes = plotting.plt.subplots(1, 2, figsize=(13, 4.8))
        for g, (name, members) in enumerate(groups.items()):
            x = np.array([positions[m.setting.get("l1", str(m.params["l1"]))] for m in members])
            suffix = f" ({name})" if name else ""
            for ax, metric_name, style, label in (
                (axes[0], "sparsity", "-", "zeros after training"),
                (axes[0], "dead_frac", ":", "units dead on every test input"),
                (axes[0], "sparsity_init", "--", "zeros at initialization"),
                (axes[1], "test_accuracy", "-", "test accuracy"),
                (axes[1], "train_accuracy", "--", "training accuracy"),
            ):
                values = [self.metric(metric_name, m) for m in members]
                plotting.mean_ci(ax, x + 0.05 * g, values, label=label + suffix, color=f"C{g}", linestyle=style)
            for xi, m in zip(x, members, strict=True):
                accuracy = self.metric("test_accuracy", m)
                accuracy = accuracy[np.isfinite(accuracy)].mean() if np.isfinite(accuracy).any() else None
                if accuracy is not None:
                    axes[1].annotate(f"{accuracy:.3f}", (xi + 0.05 * g, accuracy), (4, -12), "data", "offset points")
        roles = cell_roles(verdict)
        role_of = {c.setting.get("l1", str(c.params["l1"])): roles.get(c.id, "not used") for c in cells}
        for label, xi in positions.items():
            if role_of[label] != "judged":  # the verdict's role of the coefficient: control or context
                for ax in axes:
                    ax.axvspan(xi - 0.4, xi + 0.4, color="gray", alpha=0.15, linewidth=0)
                axes[0].text(xi, 0.93, role_of[label], ha="center", fontsize=7)
        for ax in axes:
            ax.set_xticks(list(positions.values()), list(positions))
            ax.set_xlabel("L1 activation penalty coefficient")
        axes[0].set_ylim(0, 1)
        axes[0].set_ylabel("fraction of hidden outputs / units\n(mean, 95% CI (BCa bootstrap))")
        axes[0].set_title("sparsity of the hidden layers on the test set")
        axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, 0.85))
        axes[1].set_ylabel("accuracy\n(mean, 95% CI (BCa bootstrap))")
        axes[1].set_title("what the penalty costs")
        axes[1].legend(fontsize=7)
        n_div = sum(int(c.result.arrays["diverged"].sum()) for c in cells)
        axes[1].text(0.02, 0.02, f"diverged runs: {n_div}", transform=axes[1].transAxes, fontsize=7)
        plotting.save(fig, path)
        p = cells[0].params
        return (
            f"ReLU MLPs ({p['depth']} hidden layers of {p['width']} units, {p['dataset']}) trained {p['epochs']} "
            "epochs with mini-batch SGD and an L1 penalty on the hidden activations. Left: fraction of exactly-zero "
            "hidden outputs on the test set after training (solid) and at initialization (dashed), and the fraction "
            "of units silent on every test input (dotted). Right: test (numbers: its mean) and training accuracy. "
            "Grey: coefficients that are the claim's negative control or context, not judged."
        )


class SparsityFamily(Experiment):
    name = "sparsity_family"
    description = "rank correlation of sparsity with test accuracy across a family of nets, one family per seed"
    params_schema = {
        "type": "object",
        "required": [*TRAIN_REQUIRED, "widths", "l1_values", "stratify"],
        "properties": {
            **TRAIN_PROPERTIES,
            "widths": {"type": "array", "minItems": 1, "items": WIDTH},
            "l1_values": {"type": "array", "minItems": 1, "items": {"type": "number", "minimum": 0}},
            "stratify": {"enum": list(STRATA)},
        },
    }

    def check(self, params):
        super().check(params)
        n_widths, n_l1 = len(set(params["widths"])), len(set(params["l1_values"]))
        size = {"width": n_l1, "l1": n_widths, "none": n_widths * n_l1}[params["stratify"]]
        if size < 3:
            raise ValueError(f"stratify: its strata have {size} members; a rank correlation needs at least 3")

    dims = {
        "sparsity": ("seed", "member"),
        "test_accuracy": ("seed", "member"),
        "train_accuracy": ("seed", "member"),
        "diverged": ("seed", "member"),
        "member_width": ("member",),
        "member_l1": ("member",),
    }

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        members = [(w, l1) for w in params["widths"] for l1 in params["l1_values"]]
        # every member is trained from the same seeds: seed s is one replicate of the whole family
        runs = [train_and_measure(params, ds, w, l1, seeds) for w, l1 in members]
        arrays = {
            "sparsity": np.stack([final_sparsity(r) for r in runs], axis=1),
            "test_accuracy": np.stack([final_test_accuracy(r) for r in runs], axis=1),
            "train_accuracy": np.stack([r["train_accuracy"] for r in runs], axis=1),
        }
        arrays["member_width"] = np.array([w for w, _ in members])
        arrays["member_l1"] = np.array([l1 for _, l1 in members], float)
        arrays["diverged"] = np.stack([r["diverged"] for r in runs], axis=1)
        return CellResult(arrays, {"members": len(members), "n_diverged": int(arrays["diverged"].sum())})

    def diverged(self, cell):
        """A seed's family counts as diverged when any of its members diverged, shape ``(S,)``."""
        return cell.result.arrays["diverged"].any(axis=1)

    @metric(
        "Spearman rank correlation between sparsity (exact zeros on the test set) and test accuracy across the "
        "members of one seed's family, averaged over the strata named by `stratify`"
    )
    def rho_test_accuracy(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        return stratified_spearman(a["sparsity"], a["test_accuracy"], _strata(a, cell.params["stratify"]))

    @metric(
        "Spearman correlation between sparsity and the generalization gap (training minus test accuracy) across "
        "one seed's family, averaged over the strata named by `stratify`"
    )
    def rho_gap(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        gap = a["train_accuracy"] - a["test_accuracy"]
        return stratified_spearman(a["sparsity"], gap, _strata(a, cell.params["stratify"]))

    def figure(self, claim, cells, verdict, path: Path) -> str:
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        a = {k: np.concatenate([c.result.arrays[k] for c in cells]) for k in ("sparsity", "test_accuracy")}
        a["gap"] = np.concatenate([c.result.arrays["train_accuracy"] for c in cells]) - a["test_accuracy"]
        member_width, member_l1 = cells[0].result.arrays["member_width"], cells[0].result.arrays["member_l1"]
        l1_values, widths = np.unique(member_l1), np.unique(member_width)
        colors = plotting.plt.cm.viridis(np.linspace(0, 0.9, len(l1_values)))
        markers = dict(zip(widths, "os^Dv<>p", strict=False))
        fig, axes = plotting.plt.subplots(1, 3, figsize=(17, 5.2), gridspec_kw={"width_ratios": [1.2, 1.2, 1]})
        for ax, key, ylabel in (
            (axes[0], "test_accuracy", "test accuracy"),
            (axes[1], "gap", "generalization gap: training - test accuracy"),
        ):
            x, y = a["sparsity"], a[key]
            for w in widths:
                m = np.flatnonzero(member_width == w)
                ax.plot(np.nanmean(x[:, m], axis=0), np.nanmean(y[:, m], axis=0), color="gray", linewidth=0.8)
            for m in range(x.shape[1]):
                style = {"color": colors[np.searchsorted(l1_values, member_l1[m])], "marker": markers[member_width[m]]}
                ax.scatter(x[:, m], y[:, m], s=6, alpha=0.3, linewidths=0, **style)
                finite = np.isfinite(x[:, m]) & np.isfinite(y[:, m])
                n = finite.sum()
                if n < 2:  # every seed of this member diverged but at most one
                    continue
                x_mean, x_lo, x_hi = plotting.mean_interval(x[finite, m])
                y_mean, y_lo, y_hi = plotting.mean_interval(y[finite, m])
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
            finite = np.isfinite(x) & np.isfinite(y)
            if finite.sum() > 2:
                slope, intercept = np.polyfit(x[finite], y[finite], 1)
                ends = np.array([x[finite].min(), x[finite].max()])
                ax.plot(ends, intercept + slope * ends, "k--", linewidth=1)
            ax.set_xlabel("sparsity: fraction of exact zeros of the hidden outputs (test set)")
            ax.set_ylabel(ylabel)
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
        labels = [c.setting.get("analysis", c.id) for c in cells]
        for offset, (metric_name, color, label) in enumerate(
            (("rho_test_accuracy", "C0", "sparsity vs test accuracy"), ("rho_gap", "C3", "sparsity vs gap"))
        ):
            for i, c in enumerate(cells):
                mean, lo, hi = plotting.mean_interval(self.metric(metric_name, c))
                if np.isnan(mean):
                    continue
                ax.errorbar(
                    mean,
                    i + 0.15 * (offset - 0.5),
                    xerr=plotting.yerr(mean, lo, hi),
                    fmt="o",
                    color=color,
                    capsize=3,
                    label=label if i == 0 else None,
                )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(cells)), labels)
        ax.invert_yaxis()
        ax.set_xlim(-1, 1)
        ax.set_xlabel("Spearman rho per seed's family (mean, 95% CI (BCa bootstrap))")
        ax.set_title("rank correlation by analysis (strata)")
        ax.legend(fontsize=7)
        plotting.save(fig, path)
        p = cells[0].params
        return (
            f"A family of ReLU MLPs ({p['depth']} hidden layers on {p['dataset']}, {p['epochs']} epochs of SGD): "
            f"widths {p['widths']} (marker) x L1 activation penalties {p['l1_values']} (colour), every member "
            f"trained from each of {sum(len(c.result.arrays['sparsity']) for c in cells)} seeds (all cells pooled "
            "in the scatter plots). Right: the rank correlation computed within each seed's family - within each "
            "width across L1 values, within each L1 value across widths, or over all members - and its mean over "
            "the seeds of that analysis's cell."
        )


def _strata(a: dict[str, np.ndarray], stratify: str) -> list[np.ndarray]:
    """Boolean member masks of the strata: members of equal width, of equal L1, or all members."""
    if stratify == "none":
        return [np.ones(len(a["member_width"]), bool)]
    key = a["member_width"] if stratify == "width" else a["member_l1"]
    return [key == v for v in np.unique(key) if np.sum(key == v) >= 3]


def stratified_spearman(x: np.ndarray, y: np.ndarray, strata: list[np.ndarray]) -> np.ndarray:
    """Per row, the mean over ``strata`` (member masks) of Spearman's rho of ``x`` and ``y`` within the stratum.

    A stratified (pooled-within) rank correlation: e.g. strata of equal width hold width fixed, so
    only what varies inside a stratum (the L1 coefficient) can drive the correlation.
    """
    return np.mean([spearman_rows(x[:, m], y[:, m]) for m in strata], axis=0)


def final_sparsity(a: dict[str, np.ndarray]) -> np.ndarray:
    """Fraction of exact zeros among all hidden outputs after training, ``(S,)``, from :func:`train_and_measure`."""
    return a["zero_frac"][:, -1].mean(axis=1)


def final_test_accuracy(a: dict[str, np.ndarray]) -> np.ndarray:
    """Test accuracy after training, ``(S,)``, from :func:`train_and_measure`'s arrays."""
    return a["test_accuracy"][:, -1]


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Ranks (1-based) along the last axis, tied values sharing their average rank (``scipy.stats.rankdata``).

    A value that occurs ``c`` times after ``e - c`` smaller ones occupies ranks ``e - c + 1 .. e``
    and gets their mean ``e - (c - 1) / 2``.
    """
    x = np.asarray(x, float)
    ranks = np.empty_like(x)
    for index in np.ndindex(x.shape[:-1]):
        _, inverse, counts = np.unique(x[index], return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        ranks[index] = (ends - (counts - 1) / 2)[inverse]
    return ranks


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of ``x[s]`` with ``y[s]`` for every row ``s`` (Pearson of average ranks).

    NaN for a row with a non-finite value (a diverged member) or a constant variable.
    """
    x, y = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
    bad = ~(np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1))
    rx, ry = rank_rows(np.where(bad[:, None], 0, x)), rank_rows(np.where(bad[:, None], 0, y))
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.sum(rx * ry, axis=1) / np.sqrt(np.sum(rx * rx, axis=1) * np.sum(ry * ry, axis=1))
    rho[bad] = np.nan
    return rho


def _judged_labels(cells: list[Cell], verdict: dict, axis: str) -> set[str]:
    """Labels on ``axis`` of the cells that judged conditions of ``verdict`` were measured on."""
    roles = cell_roles(verdict)
    return {c.setting[axis] for c in cells if roles.get(c.id) == "judged" and axis in c.setting}
