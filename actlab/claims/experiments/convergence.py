"""Convergence speed: how many epochs of mini-batch SGD a network needs to reach a training error.

Used by ``relu-trains-faster``. Krizhevsky, Sutskever & Hinton (2012, ImageNet classification with
deep convolutional neural networks, Fig. 1) report that a four-layer CNN with ReLUs reaches 25%
training error on CIFAR-10 six times faster than the same net with tanh units, each with its own
learning rate "chosen to make training as fast as possible". A cell here is a plain MLP of
``depth`` hidden layers of ``width`` units with one activation and one learning rate, trained with
plain SGD for ``epochs`` epochs. After every epoch the whole training split is classified in eval
mode, which gives the training-error curve

.. math:: \\mathrm{err}_e = 1 - \\frac{1}{N} \\sum_{n=1}^{N} [\\arg\\max_k o_{nk} = y_n],
          \\qquad e = 0, 1, \\dots, E,

(``e = 0`` is the initialization) and the time to target

.. math:: T = \\min\\{e : \\mathrm{err}_e \\le \\mathrm{target}\\},

censored at ``E + 1`` when the curve never reaches the target (a diverged run freezes and has
no error afterwards, so it is censored too unless it reached the target first). Tuning the
learning rate per activation (the judge's ``tune``) and taking the ratio of tuned mean times
(``contrast`` with ``op: ratio``) reproduces the design of the AlexNet comparison.
"""

from __future__ import annotations

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
from actlab.claims.experiments.sklearn_trainer import TRAINER, check_sklearn_params, train_sklearn
from actlab.engine.training import ArrayData, train


class ConvergenceSpeed(Experiment):
    name = "convergence_speed"
    description = "epochs of mini-batch SGD until the training error first reaches a target"
    params_schema = {
        "type": "object",
        "required": [*TRAINED_MLP_REQUIRED, "target_error"],
        "properties": {
            **TRAINED_MLP_PROPERTIES,
            "epochs": {**EPOCHS, "minimum": 1},
            "target_error": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "dtype": {"enum": ["float32", "float64"]},
            **TRAINER,
        },
    }

    def check(self, params):
        if params.get("trainer") == "sklearn":
            check_sklearn_params(params)
        else:
            super().check(params)

    dims = {
        "train_error": ("seed", "epoch"),
        "loss": ("seed", "train_epoch"),
        "diverged": ("seed",),
        "diverged_epoch": ("seed",),
    }

    def run(self, params, seeds, data):
        """Train all seeds of one (activation, lr) cell and record the training-error curve.

        ``dtype: float32`` makes training about 1.5x cheaper; an error curve does not need float64.
        Returns arrays ``train_error`` ``(S, E + 1)`` (epoch 0 is the initialization, NaN after a
        divergence), ``loss`` ``(S, E)`` (mean mini-batch loss of each epoch), ``diverged`` and
        ``diverged_epoch`` ``(S,)``. With ``trainer: sklearn`` scikit-learn trains the cell
        (:func:`actlab.claims.experiments.sklearn_trainer.train_sklearn`; epoch 0 is then NaN).
        """
        ds = data[params["dataset"]]
        if params.get("trainer") == "sklearn":
            result = train_sklearn(params, seeds, ds)
            result.arrays.pop("test_accuracy")  # the test split is not this experiment's business
            return result
        net = build_mlp(params, ds, seeds)
        history = train(
            net,
            ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
            loss=ds.loss,
            optimizer={"name": "sgd", "lr": params["lr"]},
            epochs=params["epochs"],
            test=(ds.x_train, ds.y_train),
        )
        arrays = {
            "train_error": 1.0 - history.metrics["test_accuracy"],
            "loss": history.metrics["loss"],
            "diverged": history.diverged,
            "diverged_epoch": history.diverged_epoch,
        }
        return CellResult(arrays, {"n_diverged": int(history.diverged.sum()), "n_train": int(len(ds.x_train))})

    @metric(
        "first epoch whose training error (whole training split, eval mode) is <= target_error; runs that never "
        "reach it within `epochs` (diverged ones included) count as epochs + 1"
    )
    def epochs_to_target(self, cell: Cell) -> np.ndarray:
        return epochs_to_target(cell.result.arrays["train_error"], cell.params["target_error"])

    @metric("training error after the last epoch (NaN for a diverged run)")
    def final_train_error(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["train_error"][:, -1].astype(float)

    @metric("training error averaged over epochs 1..E, an uncensored area-under-curve speed")
    def mean_train_error(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["train_error"][:, 1:].mean(axis=1)


def epochs_to_target(train_error: np.ndarray, target: float) -> np.ndarray:
    """First epoch ``e`` with ``train_error[:, e] <= target``, censored at ``E + 1``.

    Parameters
    ----------
    train_error : ndarray, shape (S, E + 1)
        Per-seed training error after epochs ``0..E`` (NaN after a divergence, which never
        counts as reaching the target).
    target : float
        The training error to reach.

    Returns
    -------
    ndarray of float, shape (S,)
        ``min{e : err_e <= target}``, or ``E + 1`` for a seed that never reaches it.
    """
    with np.errstate(invalid="ignore"):
        hit = np.asarray(train_error) <= target
    n_epochs = hit.shape[1] - 1
    return np.where(hit.any(axis=1), hit.argmax(axis=1), n_epochs + 1).astype(float)
