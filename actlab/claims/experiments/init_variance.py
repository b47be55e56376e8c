"""Does the initialization have to match the activation? Forward variance through a deep plain MLP.

Used by ``init-matches-activation`` (seed 000: "the initialization must match the activation;
leaky ReLU needs a different init than ReLU"). A cell is a plain MLP of ``depth`` hidden layers of
``width`` units with one activation and one of two initializers, ``matched`` or ``mismatched``
(the grid axis ``init`` names which; the cell uses ``params[params["init"]]``).

With zero biases and zero-mean weights of variance ``sigma_w^2``, the pre-activations of layer
``l + 1`` have variance ``Var(z_{l+1}) = n_l sigma_w^2 E[f(z_l)^2]`` (He et al. 2015, eq. 7). For a
leaky ReLU of slope ``a`` (ReLU: ``a = 0``) and symmetric ``z``, ``E[f(z)^2] = (1 + a^2) / 2 Var(z)``,
and every moment of ``f(z)`` scales with ``Var(z)``, so the hidden outputs' variance is multiplied
by

    r = n sigma_w^2 (1 + a^2) / 2

per layer: ``r = 1`` for He's ``sigma_w^2 = 2 / ((1 + a^2) n)``; ReLU with Glorot's
``sigma_w^2 = 1 / n`` (square layers) gives ``r = 1/2``; a leaky unit initialized with ReLU's gain
gives ``r = 1 + a^2``. After ``L - 1`` layers the log variance ratio of the last to the first hidden
layer is ``(L - 1) log10 r``, a decade for ``a ~ sqrt(10^(1/(L-1)) - 1)`` (0.29 at ``L = 30``).
Bounded activations (sigmoid) cannot drift this way: their outputs stay in ``(0, 1)``.

The probe measures, on a fixed batch of training inputs, the variance of every hidden layer's
outputs (pooled over samples and units) at initialization, and the loss and accuracy there before
and after ``epochs`` of mini-batch SGD: does the net still learn in a short budget?

At finite width the per-seed log variance also drifts under the matched init: each layer's
variance factor is random with mean ``r``, so ``E[log r_l] < log r`` (Jensen) and the log ratio
has a downward bias growing like depth / width (Hanin & Rolnick 2018). ``log10_var_ratio``
(signed) cancels that bias in a matched-minus-mismatched contrast; ``abs_log10_var_ratio`` asks
which initializer keeps the variance closer to constant in the net as built.
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
    _check_spec,
    build_mlp,
    metric,
)
from actlab.engine.activations import get_activation
from actlab.engine.initializers import get_initializer
from actlab.engine.training import ArrayData, train

INIT_CHOICES = ("matched", "mismatched")


class InitVariance(Experiment):
    name = "init_variance"
    description = "forward activation variance per layer and short-budget training, matched vs mismatched init"
    params_schema = {
        "type": "object",
        "required": [
            "dataset",
            "depth",
            "width",
            "activation",
            "init",
            "matched",
            "mismatched",
            "epochs",
            "lr",
            "batch_size",
        ],
        "properties": {
            "dataset": {"type": "string"},
            "depth": {**DEPTH, "minimum": 2},
            "width": WIDTH,
            "activation": SPEC,
            "init": {"enum": list(INIT_CHOICES)},
            "matched": SPEC,
            "mismatched": SPEC,
            "epochs": EPOCHS,
            "lr": {"type": "number", "exclusiveMinimum": 0},
            "momentum": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "batch_size": {"type": "integer", "minimum": 1},
            "probe_size": {"type": "integer", "minimum": 2},
        },
    }

    def check(self, params):
        super().check({**params, "init": params[params["init"]]})
        for key in INIT_CHOICES:
            _check_spec(get_initializer, params[key], key)

    dims = {
        "act_var": ("seed", "stage", "layer"),
        "probe_loss": ("seed", "stage"),
        "probe_accuracy": ("seed", "stage"),
        "loss": ("seed", "train_epoch"),
        "fan_in_w2": ("seed", "layer"),
        "diverged": ("seed",),
    }

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        init = params[params["init"]]
        net = build_mlp(params, ds, seeds, init=init)
        # n sigma_w^2 as drawn, per seed and dense layer: the factor of the variance recursion
        fan_in_w2 = np.stack([w.shape[1] * np.mean(w * w, axis=(1, 2)) for w in net.W], axis=1)
        n_probe = min(params.get("probe_size", 512), len(ds.x_train))
        history = train(
            net,
            ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
            loss=ds.loss,
            optimizer={"name": "sgd", "lr": params["lr"], "momentum": params.get("momentum", 0.0)},
            epochs=params["epochs"],
            probe=(ds.x_train[:n_probe], ds.y_train[:n_probe]),
            probe_every=max(params["epochs"], 1),
        )
        arrays = {
            "act_var": history.metrics["probe_act_std"] ** 2,
            "probe_loss": history.metrics["probe_loss"],
            "probe_accuracy": history.metrics["probe_accuracy"],
            "loss": history.metrics["loss"],
            "fan_in_w2": fan_in_w2,
            "diverged": history.diverged,
        }
        info = {
            "init_used": get_initializer(init).spec(),
            "n_classes": ds.n_outputs,
            "n_diverged": int(history.diverged.sum()),
        }
        return CellResult(arrays, info)

    @metric("log10 of the output variance of the last over the first hidden layer, at init")
    def log10_var_ratio(self, cell: Cell) -> np.ndarray:
        return _log10_var_ratio(cell)

    @metric("|log10 variance ratio| of the last to the first hidden layer's outputs, at init")
    def abs_log10_var_ratio(self, cell: Cell) -> np.ndarray:
        return np.abs(_log10_var_ratio(cell))

    @metric("1 - final / initial loss on the probe batch of training inputs (NaN if diverged)")
    def loss_drop(self, cell: Cell) -> np.ndarray:
        loss = cell.result.arrays["probe_loss"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.diverged(cell), np.nan, 1 - loss[:, -1] / loss[:, 0])

    @metric("accuracy on the probe batch of training inputs after training (NaN if diverged)")
    def train_accuracy(self, cell: Cell) -> np.ndarray:
        return np.where(self.diverged(cell), np.nan, cell.result.arrays["probe_accuracy"][:, -1])

    @metric("1 if the loss or a parameter became non-finite during training, else 0", binary=True, name="diverged")
    def diverged_metric(self, cell: Cell) -> np.ndarray:
        return self.diverged(cell).astype(float)

    def figure(self, claim, cells, verdict, path: Path) -> str:
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        series = _series(claim, cells)
        colors = {label: f"C{i}" for i, label in enumerate(series)}
        styles = {"matched": "-", "mismatched": "--"}
        fig, axes = plotting.plt.subplots(1, 3, figsize=(16, 4.6))

        ax = axes[0]
        for label, by_init in series.items():
            for which, c in by_init.items():
                var = c.result.arrays["act_var"][:, 0, :]
                layers = np.arange(1, var.shape[1] + 1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.log10(var / var[:, :1])
                plotting.band(ax, layers, rel, label=f"{label}, {which}", color=colors[label], linestyle=styles[which])
                factor = _variance_factor(c)
                if factor is not None:
                    ax.plot(layers, (layers - 1) * np.log10(factor), color="black", linestyle=":", linewidth=0.8)
        ax.set_xlabel("hidden layer l (1 = next to the input)")
        ax.set_ylabel("log10 Var(layer l output) / Var(layer 1 output)")
        ax.set_title("at initialization (median, 25-75% band over seeds)\ndotted: He et al. theory (l-1) log10 r")
        ax.legend(fontsize=6, ncol=2)

        ax = axes[1]
        for label, by_init in series.items():
            for which, c in by_init.items():
                a = c.result.arrays
                n_div = int(a["diverged"].sum())
                tag = f"{label}, {which}" + (f" ({n_div}/{len(a['diverged'])} diverged)" if n_div else "")
                curve = np.concatenate([a["probe_loss"][:, :1], a["loss"]], axis=1)
                curve[a["diverged"].astype(bool)] = np.nan
                style = {"color": colors[label], "linestyle": styles[which]}
                if np.isnan(curve).all():
                    ax.plot([], [], label=tag, **style)
                else:
                    plotting.band(ax, np.arange(curve.shape[1]), curve, label=tag, **style)
        ax.set_xlabel("epoch (0 = initialization)")
        ax.set_ylabel("training cross-entropy")
        ax.set_title("training curves (median, 25-75% band; diverged seeds dropped)")
        ax.legend(fontsize=6)

        ax = axes[2]
        x = np.arange(len(series))
        for offset, which in ((-0.2, "matched"), (0.2, "mismatched")):
            means, los, his = np.array(
                [
                    plotting.mean_interval(self.metric("train_accuracy", by_init[which]))
                    if which in by_init
                    else (np.nan, np.nan, np.nan)
                    for by_init in series.values()
                ]
            ).T
            ax.bar(
                x + offset,
                np.nan_to_num(means),
                width=0.4,
                yerr=plotting.yerr(means, los, his),
                capsize=3,
                hatch="//" if which == "mismatched" else None,
                color=[colors[label] for label in series],
                edgecolor="black",
                alpha=0.8,
            )
            for xi, mean in zip(x + offset, means, strict=True):
                if not np.isfinite(mean):
                    ax.text(xi, 0.02, "all\ndiverged", ha="center", fontsize=6, rotation=90)
        chance = 1 / cells[0].result.info["n_classes"]
        ax.axhline(chance, color="black", linestyle=":", linewidth=1)
        handles = [
            plotting.plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", label="matched"),
            plotting.plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//", label="mismatched"),
            plotting.plt.Line2D([], [], color="black", linestyle=":", label="chance (1 / classes)"),
        ]
        ax.set_xticks(x, list(series), fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"train accuracy after {cells[0].params['epochs']} epochs\n(mean, 95% CI (BCa bootstrap))")
        ax.set_title("does it still train?")
        ax.legend(handles=handles, fontsize=7)
        plotting.save(fig, path)
        depth, width = cells[0].params["depth"], cells[0].params["width"]
        return (
            f"Plain MLPs of {depth} hidden layers of {width} units, each activation with its matched and a "
            "mismatched initializer (solid and dashed). Left: variance of every hidden layer's outputs "
            "relative to the first at initialization, with He et al.'s prediction for (leaky) ReLU. Middle: "
            "training loss (epoch 0: on a probe batch of training inputs at initialization; then the mean over "
            "each epoch's mini-batches), seeds whose loss became non-finite left out. Right: accuracy on the "
            "probe batch after the short training budget."
        )


def _log10_var_ratio(cell: Cell) -> np.ndarray:
    """log10 of the output variance of the last over the first hidden layer at init, shape ``(S,)``."""
    var = cell.result.arrays["act_var"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(var[:, 0, -1] / var[:, 0, 0])


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
