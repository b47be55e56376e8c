"""Gradient flow through depth: per-layer gradient norms at initialization and after training.

Used by ``sigmoid-vanishing-depth``, ``relu-keeps-gradient`` and ``slope-product``. A cell is a
plain MLP of ``depth`` hidden layers of ``width`` units; the probe measures, on a fixed batch,
``||dL/dW_l||`` (Frobenius) and the root-mean-square per-example back-propagated error
``||delta_l||`` of every layer, before training and after the last epoch. Every metric and the
figure read those two probes only; the probes between them (each a forward and backward pass on
the whole probe batch, 8 training steps' worth at 512 samples) took a quarter to a third of a cell
(20 x 256 sigmoid, 6 seeds: 15.2 against 11.7 s; 10 x 64: 0.84 against 0.52 s) and changed
nothing (probing never touches the weights: ``tests/test_training.py``).
"""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments.base import (
    TRAINED_MLP_PROPERTIES,
    TRAINED_MLP_REQUIRED,
    Cell,
    CellResult,
    Experiment,
    build_mlp,
    metric,
)
from actlab.engine.activations import get_activation
from actlab.engine.training import ArrayData, train

#: metrics that compare the measured per-layer factor with a scaled activation's gain
GAIN_METRICS = ("delta_factor_rel_error", "signed_log10_delta_factor")


class GradientFlow(Experiment):
    name = "gradient_flow"
    description = "per-layer gradient norms vs depth at init and after training"
    params_schema = {
        "type": "object",
        "required": [*TRAINED_MLP_REQUIRED],
        "properties": {
            **TRAINED_MLP_PROPERTIES,
            "probe_size": {"type": "integer", "minimum": 1},
        },
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
            probe_every=max(params["epochs"], 1),
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

    @metric("log10 of ||dL/dW|| of the first hidden layer over the last hidden layer, at init")
    def log10_grad_ratio(self, cell: Cell) -> np.ndarray:
        return log10_ratio(cell, "grad_norm")

    @metric("|log10 ratio| of first to last hidden-layer weight-gradient norms, at init")
    def abs_log10_grad_ratio(self, cell: Cell) -> np.ndarray:
        return np.abs(log10_ratio(cell, "grad_norm"))

    @metric("log10 first/last hidden-layer weight-gradient norm ratio after training")
    def log10_grad_ratio_trained(self, cell: Cell) -> np.ndarray:
        return log10_ratio(cell, "grad_norm", stage=-1)

    @metric("log10 of the relative weight change of the first over the last hidden layer")
    def log10_change_ratio(self, cell: Cell) -> np.ndarray:
        change = cell.result.arrays["rel_change"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(change[:, 0] / change[:, cell.params["depth"] - 1])

    @metric(
        "|log10| of the RMS back-propagated error ||delta|| of the first hidden layer over the last hidden layer, "
        "at init"
    )
    def abs_log10_delta_ratio(self, cell: Cell) -> np.ndarray:
        return np.abs(log10_ratio(cell, "delta_norm"))

    @metric(
        "log10 of the per-layer factor (||delta_1|| / ||delta_L||)^(1/(L-1)) at init, times the sign of log10 "
        "gain: > 0 when the error shrinks toward the input for gain < 1 and grows for gain > 1 (NaN for gain 1)"
    )
    def signed_log10_delta_factor(self, cell: Cell) -> np.ndarray:
        factor, gain = _delta_factor(cell)
        if gain is None or gain == 1:
            return np.full(len(factor), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(factor) * np.sign(np.log10(gain))

    @metric("|(||delta_1|| / ||delta_L||)^(1/(L-1)) - gain| / gain for gain-scaled units")
    def delta_factor_rel_error(self, cell: Cell) -> np.ndarray:
        factor, gain = _delta_factor(cell)
        return np.full(len(factor), np.nan) if gain is None else np.abs(factor - gain) / gain


def log10_ratio(cell: Cell, key: str, stage: int = 0) -> np.ndarray:
    """log10 of the first over the last hidden layer's norm ``key`` at a probe ``stage`` (0 = init), ``(S,)``."""
    norms = cell.result.arrays[key][:, stage, :]
    depth = cell.params["depth"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(norms[:, 0] / norms[:, depth - 1])


def _delta_factor(cell: Cell) -> tuple[np.ndarray, float | None]:
    """The per-layer factor ``(||delta_1|| / ||delta_L||)^(1/(L-1))`` at init ``(S,)`` and the activation's gain.

    The factor is NaN and the gain None where they cannot be compared: fewer than two hidden
    layers, or an activation without a gain.
    """
    delta, depth = cell.result.arrays["delta_norm"], cell.params["depth"]
    gain = getattr(get_activation(cell.params["activation"]), "gain", None)
    if depth < 2 or gain is None:
        return np.full(len(delta), np.nan), None
    with np.errstate(divide="ignore", invalid="ignore"):
        return (delta[:, 0, 0] / delta[:, 0, depth - 1]) ** (1 / (depth - 1)), gain
