r"""Dying units: which hidden units stop responding during training, and whether they come back.

Used by ``dead-stays-dead`` (seed 000: a unit that never fires gets no gradient and "can never
change again"; a commenter doubts it is forever under SGD), ``high-lr-kills-units`` (seed 003:
"with a large learning rate as much as 40% of the neurons can die at the start of training") and
``leaky-prevents-dying`` (seeds 000, 001: leaky ReLU, PReLU and ELU do not die).

A cell is a plain MLP of ``depth`` hidden layers of ``width`` units trained with plain SGD
(``batch_size: null`` is full-batch gradient descent). Before training and after every epoch
``e = 0, 1, ..., E`` the whole training split ``x_1 .. x_N`` goes through the net in eval mode and
every hidden unit ``j`` of every layer gets two per-unit states:

* **dead**: its activation's derivative is exactly zero on every training input,
  ``f'(z_nj) = 0 for all n`` (:func:`actlab.engine.probes.dead_units`; Lu et al. 2020, Definition 1,
  stated on gradients). Then ``dL/dW_ij = sum_n a_ni delta_nj = 0`` and ``dL/db_j = 0`` on every
  mini-batch (every batch is a subset of the training split), so plain SGD leaves the unit's
  incoming weights unchanged. A ReLU unit is dead exactly when it is inactive; a leaky ReLU,
  PReLU or NecroReLU unit never is (its slope is non-zero everywhere); an ELU unit only when
  ``exp(z)`` underflows to 0 for every input (``z < -745`` in float64).
* **inactive**: its pre-activation is non-positive on every training input,
  ``max_n z_nj <= 0``: the forward analogue (ReLU and NecroReLU output exactly 0 there, leaky
  ReLU and PReLU a small ``s z``, ELU ``alpha (e^z - 1)``, close to the constant ``-alpha`` with
  a slope ``alpha e^z`` close to 0 when ``z << 0``).

Per seed, with ``U`` the hidden units of the layers a metric looks at (param ``layers``: ``all``,
the ``first`` or the ``last`` hidden layer) and ``D_e(j)``, ``I_e(j)`` the two states at snapshot
``e``, the metrics are

.. math:: \mathrm{dead}_e = \frac{1}{|U|} \sum_{j \in U} D_e(j), \qquad
          \mathrm{inactive}_e = \frac{1}{|U|} \sum_{j \in U} I_e(j),

at ``e = 0`` (init), 1 (``epoch1``) and ``E`` (``end``). A unit **revives** when it is dead at one
snapshot and not dead at a later one, ``exists t < t' : D_t(j) and not D_t'(j)`` (counted once per
unit), and

.. math:: \mathrm{revived\_frac} = \frac{\#\{j : \text{revives}\}}{\#\{j : \exists t < E,\ D_t(j)\}};

``recovered_frac`` is the same for inactivity. What decides ``dead-stays-dead``: a dead unit of
the *first* hidden layer sees the fixed inputs ``x_n`` through weights that no longer move, so it
stays dead for good, in full-batch and in mini-batch training alike; a dead unit of a deeper layer
keeps its weights too, but its inputs are outputs of earlier layers, which the gradients of other
units keep changing, so it can come back. The 40% of ``high-lr-kills-units`` goes back to the
CS231n notes (Karpathy, "Commonly used activation functions": "as much as 40% of your network can
be dead" with a high learning rate).

Divergence (a NaN or infinite loss or parameter, recorded by :func:`actlab.engine.training.train`)
freezes a seed. A diverged net's pre-activations are NaN, so "non-positive on every input" is
undefined; the probe's test would even call every ReLU unit dead (``NaN > 0`` is false), which
would count an explosion as dying. Snapshots from the epoch of divergence on are therefore
invalid, and every metric that needs them is NaN (the judge drops NaN seeds and reports ``n``);
how often nets diverged is the separate metric ``diverged``.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from actlab.claims.experiments.base import (
    EPOCHS,
    TRAINED_MLP_PROPERTIES,
    TRAINED_MLP_REQUIRED,
    Cell,
    CellResult,
    Experiment,
    build_mlp,
    metric,
)
from actlab.engine import probes
from actlab.engine.losses import get_loss
from actlab.engine.network import MLP
from actlab.engine.training import ArrayData, train

LAYER_SCOPES = ("all", "first", "last")


class DyingUnits(Experiment):
    name = "dying_units"
    description = "per-unit dead/inactive status of every hidden unit through training: dying, revivals, loss"
    params_schema = {
        "type": "object",
        "required": [*TRAINED_MLP_REQUIRED],
        "properties": {
            **TRAINED_MLP_PROPERTIES,
            "epochs": {**EPOCHS, "minimum": 1},
            "batch_size": {"type": ["integer", "null"], "minimum": 1},
            "layers": {"enum": list(LAYER_SCOPES)},
        },
    }

    dims = {
        "dead{layer}": ("seed", "epoch", "unit"),
        "zmax{layer}": ("seed", "epoch", "unit"),
        "loss": ("seed", "epoch"),
        "accuracy": ("seed", "epoch"),
        "diverged": ("seed",),
        "diverged_epoch": ("seed",),
    }

    def run(self, params, seeds, data):
        """Train all seeds of the cell at once and snapshot every hidden unit after every epoch.

        Returns arrays, with ``P = epochs + 1`` snapshots (0 = initialization) and ``n_l`` units
        in hidden layer ``l`` (0-based): ``dead{l}`` ``(S, P, n_l)`` booleans; ``zmax{l}``
        ``(S, P, n_l)``, the largest pre-activation of each unit over the training split (NaN
        at invalid snapshots, see the module docstring); ``loss`` and ``accuracy`` ``(S, P)``
        on the training split in eval mode; ``diverged`` and ``diverged_epoch`` ``(S,)``.
        """
        ds = data[params["dataset"]]
        net = build_mlp(params, ds, seeds)
        loss = get_loss(ds.loss)
        target = np.broadcast_to(ds.y_train, (len(seeds), *ds.y_train.shape))
        rows = defaultdict(list)

        def snapshot(epoch: int, net: MLP) -> None:
            cache = net.forward(ds.x_train, train=False)
            rows["loss"].append(loss(cache.out, target)[0])
            rows["accuracy"].append(loss.accuracy(cache.out, target))
            for layer, mask in enumerate(probes.dead_units(net, cache.pre, cache.post)):
                rows[f"dead{layer}"].append(mask)
                rows[f"zmax{layer}"].append(cache.pre[layer].max(axis=1))

        history = train(
            net,
            ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
            loss=loss,
            optimizer={"name": "sgd", "lr": params["lr"]},
            epochs=params["epochs"],
            on_epoch=snapshot,
        )
        n_snapshots = params["epochs"] + 1
        valid = snapshot_valid(history.diverged_epoch, n_snapshots)
        arrays = {}
        for name, values in rows.items():
            stacked = np.stack(values, axis=1)
            missing = n_snapshots - stacked.shape[1]  # every seed diverged and training stopped early
            if missing:
                pad = np.zeros((stacked.shape[0], missing, *stacked.shape[2:]), dtype=stacked.dtype)
                stacked = np.concatenate([stacked, pad], axis=1)
            if stacked.dtype != bool:
                stacked = stacked.astype(float)
                stacked[~valid] = np.nan
            arrays[name] = stacked
        arrays["diverged"] = history.diverged
        arrays["diverged_epoch"] = history.diverged_epoch
        info = {
            "n_diverged": int(history.diverged.sum()),
            "n_train": int(len(ds.x_train)),
            "n_classes": int(ds.n_outputs),
            "steps_per_epoch": int(np.ceil(len(ds.x_train) / (params["batch_size"] or len(ds.x_train)))),
        }
        return CellResult(arrays, info)

    @metric("fraction of hidden units (in `layers`) with f' = 0 on every training input at init")
    def dead_frac_init(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _dead(cell), 0)

    @metric(
        "fraction of hidden units (in `layers`) with f' = 0 on every training input after epoch 1 (NaN if the net "
        "diverged in epoch 1)"
    )
    def dead_frac_epoch1(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _dead(cell), 1)

    @metric(
        "fraction of the hidden units (in `layers`) alive at init that are dead after epoch 1, for a net that learns "
        "(final training loss below half the chance loss ln(classes)); NaN for a net that does not learn or diverged"
    )
    def new_dead_frac_epoch1(self, cell: Cell) -> np.ndarray:
        a, dead = cell.result.arrays, _dead(cell)
        alive = ~dead[:, 0]
        newly = (dead[:, 1] & alive).sum(axis=1) / np.maximum(alive.sum(axis=1), 1)
        with np.errstate(invalid="ignore"):
            learns = a["loss"][:, -1] < np.log(cell.result.info["n_classes"]) / 2
        valid = snapshot_valid(a["diverged_epoch"], dead.shape[1])
        return np.where(valid[:, 1] & learns, newly, np.nan)

    @metric(
        "fraction of hidden units (in `layers`) with f' = 0 on every training input after the last epoch (NaN for a "
        "diverged net)"
    )
    def dead_frac_end(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _dead(cell), -1)

    @metric("fraction of hidden units (in `layers`) with pre-activation <= 0 on every training input after epoch 1")
    def inactive_frac_epoch1(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _inactive(cell), 1)

    @metric(
        "fraction of hidden units (in `layers`) with pre-activation <= 0 on every training input after the last "
        "epoch: units left stuck in their negative regime by training"
    )
    def inactive_frac_end(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _inactive(cell), -1)

    @metric("number of hidden units (in `layers`) dead at one snapshot and not dead at a later one")
    def revived_units(self, cell: Cell) -> np.ndarray:
        return np.where(cell.result.arrays["diverged"], np.nan, revivals(_dead(cell))[1].sum(axis=1))

    @metric("revived units / units dead at some snapshot before the last (NaN when none was dead or the net diverged)")
    def revived_frac(self, cell: Cell) -> np.ndarray:
        return revived_share(_dead(cell), cell.result.arrays["diverged"])

    @metric("the same as revived_frac for inactivity: inactive units that become active later")
    def recovered_frac(self, cell: Cell) -> np.ndarray:
        return revived_share(_inactive(cell), cell.result.arrays["diverged"])

    @metric("training-split loss (eval mode) after the last epoch (NaN for a diverged net)")
    def final_loss(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["loss"][:, -1].astype(float)

    @metric("training-split accuracy after the last epoch (NaN for a diverged net)")
    def final_accuracy(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["accuracy"][:, -1].astype(float)

    @metric("1 if the loss or a parameter became NaN or infinite during training, else 0", binary=True, name="diverged")
    def diverged_metric(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["diverged"].astype(float)


def scope_layers(scope: str, depth: int) -> list[int]:
    """0-based hidden-layer indices of a scope: ``all`` layers, the ``first`` or the ``last`` one."""
    if scope not in LAYER_SCOPES:
        raise ValueError(f"layers must be one of {LAYER_SCOPES}, got {scope!r}")
    return {"all": list(range(depth)), "first": [0], "last": [depth - 1]}[scope]


def _dead(cell: Cell) -> np.ndarray:
    """Dead units of the layers in the cell's ``layers`` scope at every snapshot, ``(S, P, n)`` booleans."""
    layers = scope_layers(cell.params.get("layers", "all"), cell.params["depth"])
    return np.concatenate([cell.result.arrays[f"dead{k}"] for k in layers], axis=2)


def _inactive(cell: Cell) -> np.ndarray:
    """Inactive units (pre-activation <= 0 on every input) of the cell's ``layers`` scope, ``(S, P, n)`` booleans."""
    layers = scope_layers(cell.params.get("layers", "all"), cell.params["depth"])
    with np.errstate(invalid="ignore"):
        return np.concatenate([cell.result.arrays[f"zmax{k}"] <= 0 for k in layers], axis=2)


def _fraction_at(cell: Cell, masks: np.ndarray, snapshot: int) -> np.ndarray:
    """Per seed, the fraction of units in ``masks`` ``(S, P, n)`` at ``snapshot``; NaN where it is invalid."""
    valid = snapshot_valid(cell.result.arrays["diverged_epoch"], masks.shape[1])
    return np.where(valid[:, snapshot], masks[:, snapshot].mean(axis=1), np.nan)


def snapshot_valid(diverged_epoch: np.ndarray, n_snapshots: int) -> np.ndarray:
    """``(S, P)`` booleans: snapshot ``e`` of a seed is valid unless it diverged in epoch ``<= e``.

    ``diverged_epoch`` is 1-based, -1 for a seed that never diverged (:class:`actlab.engine.training.History`).
    """
    epochs = np.arange(n_snapshots)[None, :]
    stop = np.where(diverged_epoch < 0, n_snapshots, diverged_epoch)[:, None]
    return epochs < stop


def revivals(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which units were ever in a state and which left it later.

    Parameters
    ----------
    masks : ndarray of bool, shape (S, P, n)
        Per seed, snapshot and unit: is the unit dead (or inactive)?

    Returns
    -------
    ever : ndarray of bool, shape (S, n)
        In the state at some snapshot ``t < P - 1`` (a unit first in it at the last snapshot
        has no later snapshot to leave it in, so it does not count).
    back : ndarray of bool, shape (S, n)
        Revived: ``exists t < t'`` with ``masks[t]`` and not ``masks[t']``, i.e. out of the state
        at a snapshot after one where it was in it.
    """
    before = np.logical_or.accumulate(masks, axis=1)[:, :-1]  # in the state at some t' <= t
    back = (before & ~masks[:, 1:]).any(axis=1)
    return before[:, -1], back


def revived_share(masks: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Per seed, ``#{revived units} / #{units ever in the state}`` (:func:`revivals`), shape ``(S,)``.

    NaN for a seed with no unit ever in the state (nothing could revive) or that diverged.
    """
    ever, back = revivals(masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = back.sum(axis=1) / ever.sum(axis=1)
    return np.where(diverged, np.nan, share)
