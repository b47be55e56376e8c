"""Gradient flow through depth: per-layer gradient norms at initialization and during training.

Used by ``sigmoid-vanishing-depth``, ``relu-keeps-gradient`` and ``slope-product``. A cell is a
plain MLP of ``depth`` hidden layers of ``width`` units; the probe measures, on a fixed batch,
``||dL/dW_l||`` (Frobenius) and the root-mean-square per-example back-propagated error
``||delta_l||`` of every layer, before training and after each probed epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from actlab.claims.experiments.base import (
    TRAINED_MLP_PROPERTIES,
    TRAINED_MLP_REQUIRED,
    Cell,
    CellResult,
    Experiment,
    build_mlp,
)
from actlab.engine.activations import get_activation
from actlab.engine.training import ArrayData, train

#: metrics that compare the measured per-layer factor with a scaled activation's gain
GAIN_METRICS = ("delta_factor_rel_error", "signed_log10_delta_factor")


class GradientFlow(Experiment):
    name = "gradient_flow"
    description = "per-layer gradient norms vs depth at init and during training"
    params_schema = {
        "type": "object",
        "required": [*TRAINED_MLP_REQUIRED],
        "properties": {
            **TRAINED_MLP_PROPERTIES,
            "probe_size": {"type": "integer", "minimum": 1},
        },
    }
    metrics = {
        "log10_grad_ratio": "log10 of ||dL/dW|| of the first hidden layer over the last hidden layer, at init",
        "abs_log10_grad_ratio": "|log10 ratio| of first to last hidden-layer weight-gradient norms, at init",
        "log10_grad_ratio_trained": "log10 first/last hidden-layer weight-gradient norm ratio after training",
        "log10_change_ratio": "log10 of the relative weight change of the first over the last hidden layer",
        "abs_log10_delta_ratio": "|log10| of the RMS back-propagated error ||delta|| of the first hidden layer over "
        "the last hidden layer, at init",
        "signed_log10_delta_factor": "log10 of the per-layer factor (||delta_1|| / ||delta_L||)^(1/(L-1)) at init, "
        "times the sign of log10 gain: > 0 when the error shrinks toward the input for gain < 1 and grows for "
        "gain > 1 (NaN for gain 1)",
        "delta_factor_rel_error": "|(||delta_1|| / ||delta_L||)^(1/(L-1)) - gain| / gain for gain-scaled units",
    }

    def check_metric(self, name, params):
        if name in GAIN_METRICS and not hasattr(get_activation(params["activation"]), "gain"):
            raise ValueError(
                f"activation: the metric {name} compares each layer's factor with the activation's gain, and "
                f"{params['activation']!r} has none; use a 'scaled' activation ({{name: scaled, base: ..., gain: ...}})"
            )

    dims = {
        "grad_norm": ("seed", "probe", "layer"),
        "delta_norm": ("seed", "probe", "layer"),
        "loss": ("seed", "train_epoch"),
        "probe_epochs": ("probe",),
        "rel_change": ("seed", "layer"),
        "diverged": ("seed",),
    }

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        net = build_mlp(params, ds, seeds)
        n_probe = min(params.get("probe_size", 256), len(ds.x_train))
        initial = [w.copy() for w in net.W]
        history = train(
            net,
            ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
            loss=ds.loss,
            optimizer={"name": "sgd", "lr": params["lr"]},
            epochs=params["epochs"],
            probe=(ds.x_train[:n_probe], ds.y_train[:n_probe]),
        )
        change = np.stack(
            [
                np.linalg.norm(w - w0, axis=(1, 2)) / np.linalg.norm(w0, axis=(1, 2))
                for w, w0 in zip(net.W, initial, strict=True)
            ],
            axis=1,
        )
        arrays = {
            "grad_norm": history.metrics["probe_grad_norm"],
            "delta_norm": history.metrics["probe_delta_norm"],
            "loss": history.metrics["loss"],
            "probe_epochs": history.probe_epochs,
            "rel_change": change,
            "diverged": history.diverged,
        }
        return CellResult(arrays, {"n_diverged": int(history.diverged.sum())})

    def metric(self, name, cell):
        a, depth = cell.result.arrays, cell.params["depth"]
        with np.errstate(divide="ignore", invalid="ignore"):
            if name in ("log10_grad_ratio", "abs_log10_grad_ratio"):
                ratio = np.log10(a["grad_norm"][:, 0, 0] / a["grad_norm"][:, 0, depth - 1])
                return np.abs(ratio) if name.startswith("abs") else ratio
            if name == "log10_grad_ratio_trained":
                return np.log10(a["grad_norm"][:, -1, 0] / a["grad_norm"][:, -1, depth - 1])
            if name == "log10_change_ratio":
                return np.log10(a["rel_change"][:, 0] / a["rel_change"][:, depth - 1])
            if name == "abs_log10_delta_ratio":
                return np.abs(np.log10(a["delta_norm"][:, 0, 0] / a["delta_norm"][:, 0, depth - 1]))
            if name in GAIN_METRICS:
                gain = getattr(get_activation(cell.params["activation"]), "gain", None)
                if depth < 2 or gain is None:  # undefined: no gain to compare with
                    return np.full(len(a["diverged"]), np.nan)
                factor = (a["delta_norm"][:, 0, 0] / a["delta_norm"][:, 0, depth - 1]) ** (1 / (depth - 1))
                if name == "signed_log10_delta_factor":
                    return np.log10(factor) * np.sign(np.log10(gain)) if gain != 1 else np.full(len(factor), np.nan)
                return np.abs(factor - gain) / gain
        raise KeyError(name)

    def figure(self, claim, cells, verdict, path: Path) -> str:
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        series_axis = _series_axis(claim)
        deepest = max(c.params["depth"] for c in cells)
        fig, axes = plotting.plt.subplots(1, 3, figsize=(14, 4))
        for stage, ax, title in ((0, axes[0], "at initialization"), (-1, axes[1], "after training")):
            for c in cells:
                if c.params["depth"] != deepest:
                    continue
                norms = c.result.arrays["grad_norm"][:, stage, :]
                layers = np.arange(1, norms.shape[1] + 1)
                plotting.band(ax, layers, np.log10(norms), label=c.setting.get(series_axis, c.id))
            ax.set_xlabel("layer (1 = next to the input; last = output layer)")
            ax.set_ylabel("log10 ||dL/dW_l||  (median, 25-75% band)")
            ax.set_title(f"depth {deepest}, {title}")
        axes[0].legend(title=series_axis, fontsize=7)

        ax = axes[2]
        use_delta = "delta" in claim["decision"]["metric"]
        key = "delta_norm" if use_delta else "grad_norm"
        series = {}
        for c in cells:
            series.setdefault(c.setting.get(series_axis, c.id), []).append(c)
        for label, members in series.items():
            members.sort(key=lambda c: c.params["depth"])
            depths = np.array([c.params["depth"] for c in members])
            plotting.mean_ci(ax, depths, [_log10_ratio(c, key) for c in members], label=label)
            gain = getattr(get_activation(members[0].params["activation"]), "gain", None)
            if use_delta and gain is not None:
                ax.plot(depths, (depths - 1) * np.log10(gain), "k:", linewidth=1)
        which = "||delta_1|| / ||delta_L||" if use_delta else "||dL/dW_1|| / ||dL/dW_L||"
        ax.set_xlabel("depth (hidden layers)")
        ax.set_ylabel(f"log10 {which} at init\n(mean, 95% CI (BCa bootstrap))")
        ax.set_title(
            "first vs last hidden layer" + (" (dotted: (L-1) log10 gain)" if "gain" in claim.get("grid", {}) else "")
        )
        ax.axhline(0, color="black", linewidth=0.8)
        ax.legend(title=series_axis, fontsize=7)
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


def _log10_ratio(cell: Cell, key: str) -> np.ndarray:
    norms = cell.result.arrays[key][:, 0, :]
    depth = cell.params["depth"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(norms[:, 0] / norms[:, depth - 1])
