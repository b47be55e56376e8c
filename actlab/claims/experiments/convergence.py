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

from collections import defaultdict
from pathlib import Path

import numpy as np

from actlab.claims.experiments.base import (
    EPOCHS,
    TRAINED_MLP_PROPERTIES,
    TRAINED_MLP_REQUIRED,
    Cell,
    CellResult,
    Experiment,
    build_mlp,
    cell_roles,
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

    def figure(self, claim, cells: list[Cell], verdict: dict, path: Path) -> str:
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        tune = claim["decision"].get("tune") or {"over": "lr"}
        tune_axis = tune["over"]
        roles = cell_roles(verdict)
        series = defaultdict(list)
        for c in cells:
            series[_series_label(c, tune_axis)].append(c)
        target = cells[0].params["target_error"]
        epochs = cells[0].params["epochs"]
        floor = 0.5 / cells[0].result.info["n_train"]
        colors = dict(zip(series, plotting.plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))

        fig, (ax, ax_tune) = plotting.plt.subplots(1, 2, figsize=(12, 4.3), width_ratios=[1.5, 1])
        tuned_means = {}
        for label, members in series.items():
            best = _measured(members, roles)
            err = best.result.arrays["train_error"]
            tuned_means[label] = float(np.mean(self.metric("epochs_to_target", best)))
            plotting.band(
                ax,
                np.arange(err.shape[1]),
                np.maximum(err, floor),
                label=f"{label}, {tune_axis}={best.setting[tune_axis]} "
                f"(mean epochs to target {tuned_means[label]:.1f})",
                color=colors[label],
            )
        baseline = str((claim["decision"].get("contrast") or {}).get("baseline"))
        if baseline in tuned_means:
            ratios = ", ".join(f"{k} {v / tuned_means[baseline]:.2f}" for k, v in tuned_means.items() if k != baseline)
            ax.text(
                0.02,
                0.03,
                f"mean epochs to target / {baseline}'s: {ratios}",
                transform=ax.transAxes,
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "gray", "alpha": 0.9},
            )
        ax.axhline(target, color="black", linestyle="--", linewidth=1, label=f"target error {target:g}")
        ax.axhline(floor, color="gray", linestyle=":", linewidth=1, label="0 errors (drawn at 1/(2N))")
        ax.set_yscale("log")
        ax.set_xlabel("epoch (0 = initialization)")
        ax.set_ylabel("training error (fraction misclassified, log scale)")
        ax.set_title(f"each activation at its tuned {tune_axis}: median over seeds, 25-75% band")
        ax.legend(fontsize=7)

        for label, members in series.items():
            members = sorted(members, key=lambda c: float(c.params[tune_axis]))
            x = np.array([float(c.params[tune_axis]) for c in members])
            values = [self.metric("epochs_to_target", c) for c in members]
            plotting.mean_ci(ax_tune, x, values, label=label, color=colors[label])
            best = _measured(members, roles)
            ax_tune.plot(
                float(best.params[tune_axis]),
                np.mean(self.metric("epochs_to_target", best)),
                marker="*",
                markersize=12,
                color=colors[label],
                linestyle="",
            )
        ax_tune.axhline(epochs + 1, color="gray", linestyle=":", linewidth=1, label=f"never reached (= {epochs + 1})")
        ax_tune.set_xscale("log")
        grid_values = sorted({float(c.params[tune_axis]) for c in cells})
        ax_tune.set_xticks(grid_values, [f"{v:g}" for v in grid_values])
        ax_tune.minorticks_off()
        ax_tune.set_xlabel(f"{tune_axis} (SGD learning rate, log scale)")
        ax_tune.set_ylabel(f"epochs to training error <= {target:g}\n(mean, 95% CI (BCa bootstrap))")
        ax_tune.set_title(f"tuning: star = the {tune_axis} picked by the decision rule")
        ax_tune.legend(fontsize=7)
        plotting.save(fig, path)
        return (
            f"Left: training error on the whole training split after each epoch of SGD, for each "
            f"activation at its tuned {tune_axis} (the decision rule's pick) "
            f"(median over seeds with the 25-75% band; log scale, a zero error is drawn at 1/(2N)). "
            f"Right: mean epochs to reach error {target:g} against {tune_axis} with 95% CI (BCa bootstrap); runs that "
            f"never reach it within {epochs} epochs count as {epochs + 1}; stars mark the tuned values. "
            f"For scale: Krizhevsky et al. 2012 (Fig. 1) report a tanh/ReLU ratio of about 6 on CIFAR-10."
        )


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


def _series_label(cell: Cell, tune_axis: str) -> str:
    """A cell's series in the figure: its grid labels on every axis except the tuned one."""
    return ", ".join(v for k, v in cell.setting.items() if k != tune_axis) or cell.id


def _measured(members: list[Cell], roles: dict[str, str]) -> Cell:
    """The cell of a series that the verdict measured (the tuned learning rate the rule picked)."""
    picked = [c for c in members if c.id in roles]
    if len(picked) != 1:
        raise ValueError(f"expected one measured cell among {[c.id for c in members]}, found {len(picked)}")
    return picked[0]
