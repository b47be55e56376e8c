"""Symmetric starts: zero and constant initializations, and whether hidden units ever become different.

Used by ``zero-init-stalls`` (seed 000: "if all weights start at zero, a ReLU net outputs zero and
stays at zero"; a constant start keeps the hidden units identical). A cell is an MLP of ``depth``
hidden layers of ``width`` units trained with mini-batch SGD from one initializer, epoch by epoch,
with a snapshot after every epoch.

Why symmetry persists (Goodfellow, Bengio & Courville 2016, sec. 8.4): if the units ``j`` of a
layer have equal incoming weights and biases and equal outgoing weights, they compute equal
outputs on every input, receive equal errors ``delta_j = sum_k delta_k W_jk f'(z_j)`` and therefore
equal updates, whatever the mini-batch. With all weights zero, every hidden pre-activation is 0;
ReLU gives ``f(0) = 0`` and ``f'(0) = 0`` (and tanh ``f(0) = 0``), so ``dL/dW = a^T delta = 0`` for
every layer and only the output bias moves: the net outputs the same vector (its learned bias,
the class prior's log-odds) for every input.

Unit ``j`` of hidden layer ``l`` is the row ``v_j = (W_l[:, j], b_l[j])``. After every epoch the
experiment stores each unit's relative distance to its nearest earlier unit,
``g_j = min_{i<j} ||v_j - v_i|| / max_k ||v_k||`` (``g_0 = inf``; 0 when every row is zero), so
that the number of distinct units at relative tolerance ``rtol`` is ``#{j : g_j > rtol}``: exact
for identical rows, and a greedy count otherwise.
"""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments.base import (
    TRAINED_MLP_PROPERTIES,
    TRAINED_MLP_REQUIRED,
    Cell,
    CellResult,
    Experiment,
    metric,
)
from actlab.engine.losses import get_loss
from actlab.engine.network import MLP
from actlab.engine.training import ArrayData, train


class SymmetricInit(Experiment):
    name = "symmetric_init"
    description = "distinct hidden units and loss over training from zero, constant and random inits"
    params_schema = {
        "type": "object",
        "required": [*TRAINED_MLP_REQUIRED],
        "properties": {
            **TRAINED_MLP_PROPERTIES,
            "rtol": {"type": "number", "minimum": 0},
        },
    }

    dims = {
        "loss": ("seed", "epoch"),
        "accuracy": ("seed", "epoch"),
        "max_abs_hidden": ("seed", "epoch", "layer"),
        "output_spread": ("seed", "epoch"),
        "gap{layer}": ("seed", "epoch", "unit"),
        "diverged": ("seed",),
    }

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        net = MLP(
            ds.n_inputs,
            [params["width"]] * params["depth"],
            ds.n_outputs,
            activation=params["activation"],
            init=params["init"],
            bias_init=params.get("bias_init", "zeros"),
            seeds=seeds,
        )
        loss = get_loss(ds.loss)
        rows = {"loss": [], "accuracy": [], "max_abs_hidden": [], "output_spread": []}
        gaps: list[list[np.ndarray]] = [[] for _ in range(net.n_hidden)]

        def snapshot(epoch: int, net: MLP) -> None:
            cache = net.forward(ds.x_train, train=False)
            target = np.broadcast_to(ds.y_train, cache.out.shape)
            rows["loss"].append(loss(cache.out, target)[0])
            rows["accuracy"].append(loss.accuracy(cache.out, target))
            rows["max_abs_hidden"].append(np.stack([np.abs(a).max(axis=(1, 2)) for a in cache.post], axis=1))
            spread = cache.out.max(axis=1) - cache.out.min(axis=1)
            rows["output_spread"].append(spread.max(axis=1))
            for layer in range(net.n_hidden):
                gaps[layer].append(nearest_earlier_gap(net.W[layer], net.b[layer]))

        history = train(
            net,
            ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
            loss=loss,
            optimizer={"name": "sgd", "lr": params["lr"]},
            epochs=params["epochs"],
            on_epoch=snapshot,
        )
        diverged = history.diverged
        arrays = {name: np.stack(values, axis=1).astype(float) for name, values in rows.items()}
        for name in arrays:
            arrays[name][diverged] = np.nan
        for layer, values in enumerate(gaps):
            arrays[f"gap{layer}"] = np.stack(values, axis=1)
            arrays[f"gap{layer}"][diverged] = np.nan
        arrays["diverged"] = diverged
        return CellResult(arrays, {"n_diverged": int(diverged.sum())})

    @metric(
        "number of distinct units (rows of incoming weights and bias) of the first hidden layer at the end of training"
    )
    def distinct_units(self, cell: Cell) -> np.ndarray:
        return count_distinct(cell.result.arrays["gap0"][:, -1], cell.params.get("rtol", 1e-6))

    @metric("number of distinct units of the last hidden layer at the end of training")
    def distinct_units_last_layer(self, cell: Cell) -> np.ndarray:
        last = cell.result.arrays[f"gap{cell.params['depth'] - 1}"]
        return count_distinct(last[:, -1], cell.params.get("rtol", 1e-6))

    @metric("training-set loss at the end minus at initialization (negative: it learned)")
    def loss_change(self, cell: Cell) -> np.ndarray:
        loss = cell.result.arrays["loss"]
        return loss[:, -1] - loss[:, 0]

    @metric("largest |hidden output| over training inputs, hidden layers and epochs")
    def max_abs_hidden(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["max_abs_hidden"].max(axis=(1, 2))

    @metric("largest range over training inputs of an output coordinate at the end (0: constant net)")
    def output_spread(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["output_spread"][:, -1]

    @metric("training-set accuracy at the end")
    def train_accuracy(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["accuracy"][:, -1]


def nearest_earlier_gap(weights: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Relative distance of every unit's row to its nearest earlier unit, ``(S, n)``.

    Parameters
    ----------
    weights : ndarray, shape (S, fan_in, n)
        Incoming weights of a layer (column ``j`` feeds unit ``j``).
    bias : ndarray, shape (S, 1, n), or None
        The layer's biases.

    Returns
    -------
    ndarray, shape (S, n)
        ``g_j = min_{i<j} ||v_j - v_i|| / max_k ||v_k||`` with ``v_j = (W[:, j], b[j])``;
        ``g_0 = inf``; ``0 / 0`` (all rows zero) counts as 0.
    """
    rows = weights if bias is None else np.concatenate([weights, bias], axis=1)
    rows = np.swapaxes(rows, 1, 2)  # (S, n, fan_in + 1)
    dist = np.linalg.norm(rows[:, :, None, :] - rows[:, None, :, :], axis=-1)  # (S, n, n)
    n = dist.shape[1]
    dist[:, ~np.tri(n, k=-1, dtype=bool)] = np.inf  # keep i < j only (row j, column i)
    nearest = dist.min(axis=2)
    scale = np.linalg.norm(rows, axis=-1).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(nearest == 0, 0.0, nearest / scale)


def count_distinct(gaps: np.ndarray, rtol: float) -> np.ndarray:
    """Distinct units ``#{j : g_j > rtol}`` over the last axis of ``gaps``; NaN where a gap is NaN."""
    count = np.sum(gaps > rtol, axis=-1).astype(float)
    return np.where(np.isnan(gaps).any(axis=-1), np.nan, count)
