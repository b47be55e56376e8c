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


def _log10_var_ratio(cell: Cell) -> np.ndarray:
    """log10 of the output variance of the last over the first hidden layer at init, shape ``(S,)``."""
    var = cell.result.arrays["act_var"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log10(var[:, 0, -1] / var[:, 0, 0])
