"""The activation zoo: one MLP per cell, trained on a task, measured as it learns.

Used by every trained group-A claim: those of source 001 (``linear-collapse`` and its check
``linear-collapse-map``, ``zero-centered-helps``, ``leaky-slope``, ``prelu-learns-slope``,
``prelu-beats-leaky``, ``relu6-bounds-explosion``, ``leaky-relu6``, ``swish-beats-relu``,
``hard-swish-matches-swish``, ``batchnorm-order`` and ``batchnorm-order-irrelevant``,
``activation-advice``) and of source 000 (``softplus-vs-relu``,
``abs-xor``, ``abs-worse-on-images``, ``necro-relu``, ``relu-overfits-less``, ``elu-zero-mean``,
``mixed-activations``), and the scikit-learn replications of two of them. A cell is a plain MLP of
``depth`` hidden layers of ``width`` units with one activation (any of :mod:`actlab.engine.activations`),
one initializer, optionally batch norm before or after each activation, trained with plain
mini-batch SGD (or Adam, ``optimizer: adam``) at learning rate ``lr`` for ``epochs`` epochs on one
data set. The task is a grid axis like any other, so a claim is judged on the image task, a
low-dimensional non-linear task and the tabular "smoker" task alike.

After every epoch (and at initialization) the whole training split is passed through the net in
eval mode (with ``train_series: ends``, at initialization and after the last epoch only: a claim
judged on the last epoch then skips measurements its metric and figure never read, about a third
of a cell's time; the epochs between hold NaN), which gives per seed

* the training error ``err_e`` (fraction misclassified), whose mean over epochs ``1..E`` is an
  uncensored speed (an area under the learning curve);
* the largest absolute hidden activation ``max_l max_{n, j} |a_lnj|`` (activation explosion);
* the fraction of hidden units that are dead: zero derivative on every training input
  (:func:`actlab.engine.probes.dead_units`; below zero for ReLU, above the cap for ReLU6);
* the fraction of hidden units that are inactive: pre-activation ``<= 0`` on every training input
  (read from the forward pass, so it applies to NecroReLU, whose derivative is never zero);
* the fraction of hidden outputs that are exactly zero (sparsity), and each hidden layer's mean
  over units of ``|mean_n a_nj|``, how far the units' mean outputs are from zero (Clevert et al.
  2016, sec. 2);

and the test split's accuracy is recorded by :func:`actlab.engine.training.train`. With
``validation_fraction`` the last part of the training split is held out; a list of ``l2``
weight-decay strengths is then each trained, and every seed keeps the strength its validation
accuracy prefers, so that no choice ever looks at the test split. At initialization
the *sign agreement* of every unit's incoming weight gradient is measured on one mini-batch (the
first ``batch_size`` training examples, no batch norm): for unit ``j`` of dense layer ``l >= 2``,

.. math:: s_{lj} = \\Bigl| \\frac{1}{n_{l-1}} \\sum_i \\operatorname{sign}
          \\Bigl(\\sum_n a_{l-1,ni} \\, \\delta_{l,nj}\\Bigr) \\Bigr|,

averaged over units and layers. With positive inputs ``a`` (sigmoid) one example's gradients
``a_i delta_j`` all share the sign of ``delta_j``, so ``s`` approaches 1 and the unit's weights can
only all grow or all shrink together: the "zig-zag" of non-centered activations (LeCun, Bottou,
Orr & Müller 1998, Efficient BackProp, sec. 4.3). A PReLU net also records each unit's slope at
initialization and after training; every net without batch norm records how far its output is
from the single affine map ``x W_1 W_2 ... W_{L+1} + c`` an all-identity net collapses to.
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
from actlab.claims.experiments.sklearn_trainer import TRAINER, check_sklearn_params, train_sklearn
from actlab.engine.datasets import Dataset
from actlab.engine.losses import get_loss
from actlab.engine.probes import dead_units
from actlab.engine.training import ArrayData, train


def _final(cell: Cell, name: str) -> np.ndarray:
    """Series ``name`` ``(S, E + 1)`` of a cell after the last epoch, shape ``(S,)``."""
    return np.asarray(cell.result.arrays[name], float)[:, -1]


def _gap(cell: Cell) -> np.ndarray:
    """Training accuracy minus test accuracy after each epoch, ``(S, E + 1)``."""
    a = cell.result.arrays
    return (1.0 - np.asarray(a["train_error"], float)) - np.asarray(a["test_accuracy"], float)


class ActivationZoo(Experiment):
    name = "activation_zoo"
    description = "one MLP per cell trained on a task: accuracy, speed, activations, dead units, slopes"
    params_schema = {
        "type": "object",
        "required": TRAINED_MLP_REQUIRED,
        "properties": {
            **TRAINED_MLP_PROPERTIES,
            "epochs": {**EPOCHS, "minimum": 1},
            "batchnorm": {"enum": [None, "before", "after"]},
            "optimizer": {"enum": ["sgd", "adam"]},
            "logreg_baseline": {"type": "boolean"},
            "l2": {
                "oneOf": [
                    {"type": "number", "minimum": 0},
                    {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 1},
                ]
            },
            "validation_fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
            "train_series": {"enum": ["every_epoch", "ends"]},
            **TRAINER,
        },
    }

    def check_metric(self, name, params):
        if name == "accuracy_over_logreg" and not params.get("logreg_baseline"):
            raise ValueError("params.logreg_baseline: accuracy_over_logreg needs logreg_baseline: true")
        if name in ("slope_shift", "slope_spread") and _name(params.get("activation")) != "prelu":
            raise ValueError(f"params.activation: {name} is defined for PReLU units only")
        if name in ("linear_map_error", "grad_sign_agreement") and params.get("batchnorm"):
            raise ValueError(f"params.batchnorm: {name} is measured without batch norm")
        if params.get("train_series") == "ends" and name not in ENDS_METRICS:
            raise ValueError(
                f"params.train_series: {name} reads the training-split series after every epoch, or its figure "
                "draws it; measure every_epoch"
            )
        if params.get("trainer") == "sklearn" and name not in SKLEARN_METRICS:
            raise ValueError(
                f"params.trainer: {name} reads the network's internals; a scikit-learn cell gives only "
                f"{', '.join(sorted(SKLEARN_METRICS))}"
            )

    def check(self, params):
        if params.get("trainer") == "sklearn":
            check_sklearn_params(params)
            return
        super().check(params)
        if isinstance(params.get("l2"), list) and "validation_fraction" not in params:
            raise ValueError(
                "params.l2: a list of candidate strengths is chosen on a validation split: set validation_fraction"
            )

    dims = {
        "train_error": ("seed", "epoch"),
        "test_accuracy": ("seed", "epoch"),
        "max_abs_act": ("seed", "epoch"),
        "dead_frac": ("seed", "epoch"),
        "inactive_frac": ("seed", "epoch"),
        "zero_frac": ("seed", "epoch"),
        "abs_mean_act": ("seed", "epoch"),
        "layer_abs_mean_act": ("seed", "layer"),
        "loss": ("seed", "train_epoch"),
        "diverged": ("seed",),
        "diverged_epoch": ("seed",),
        "sign_agreement": ("seed",),
        "linear_map_error": ("seed",),
        "slopes_init": ("seed", "layer", "unit"),
        "slopes_final": ("seed", "layer", "unit"),
        "validation_accuracy": ("seed",),
        "l2": ("seed",),
    }
    #: a trainer: sklearn cell returns only train_error, test_accuracy, loss, diverged and
    #: diverged_epoch; with batch norm no sign_agreement or linear_map_error; slopes for PReLU
    #: units only; validation_accuracy and l2 with a validation_fraction
    optional_arrays = frozenset(
        {
            "max_abs_act",
            "dead_frac",
            "inactive_frac",
            "zero_frac",
            "abs_mean_act",
            "layer_abs_mean_act",
            "sign_agreement",
            "linear_map_error",
            "slopes_init",
            "slopes_final",
            "validation_accuracy",
            "l2",
        }
    )

    def run(self, params, seeds, data):
        """Train all seeds of one cell and record its curves.

        Returns arrays ``train_error``, ``test_accuracy``, ``max_abs_act``, ``dead_frac``,
        ``inactive_frac``, ``zero_frac`` and ``abs_mean_act`` ``(S, E + 1)`` (NaN from a seed's
        divergence on), ``layer_abs_mean_act`` ``(S, L)`` after the last epoch, ``loss``
        ``(S, E)``, ``diverged`` and ``diverged_epoch`` ``(S,)``; with no batch norm
        ``sign_agreement`` and ``linear_map_error`` ``(S,)``; for PReLU units ``slopes_init`` and
        ``slopes_final`` ``(S, L, width)``. With a ``validation_fraction`` the net trains on the rest
        of the training split and also returns ``validation_accuracy`` and ``l2`` ``(S,)``: with a
        list of ``l2`` strengths, every one is trained and each seed keeps the one whose
        validation accuracy is highest (the weakest among ties; a diverged run is never chosen).
        """
        ds = data[params["dataset"]]
        if params.get("trainer") == "sklearn":
            result = train_sklearn(params, seeds, ds)
            if params.get("logreg_baseline"):
                result.info["logreg_test_accuracy"] = logreg_accuracy(ds)
            return result
        strengths = params.get("l2", 0.0)
        strengths = sorted(strengths) if isinstance(strengths, list) else [strengths]
        fraction = params.get("validation_fraction")
        validation = None
        if fraction:
            n_fit = len(ds.x_train) - int(round(fraction * len(ds.x_train)))
            validation = (ds.x_train[n_fit:], ds.y_train[n_fit:])
            ds = Dataset(ds.name, ds.task, ds.x_train[:n_fit], ds.y_train[:n_fit], ds.x_test, ds.y_test)
        runs = [self._train(params, seeds, ds, l2, validation) for l2 in strengths]
        if len(runs) == 1:
            return runs[0]
        scores = np.stack([np.nan_to_num(r.arrays["validation_accuracy"], nan=-1.0) for r in runs])
        chosen = np.argmax(scores, axis=0)  # first maximum: the weakest strength among ties
        seed_index = np.arange(len(chosen))
        arrays = {name: np.stack([r.arrays[name] for r in runs])[chosen, seed_index] for name in runs[0].arrays}
        info = {**runs[0].info, "n_diverged": int(arrays["diverged"].sum()), "l2_candidates": strengths}
        return CellResult(arrays, info)

    def _train(self, params, seeds, ds, l2: float, validation) -> CellResult:
        """One ensemble trained on ``ds`` with weight decay ``l2``; see :meth:`run`."""
        net = build_mlp(params, ds, seeds)
        loss = get_loss(ds.loss)
        arrays: dict[str, np.ndarray] = {}
        if not params.get("batchnorm"):
            arrays["sign_agreement"] = sign_agreement(
                net, loss, ds.x_train[: params["batch_size"]], ds.y_train[: params["batch_size"]]
            )
        prelu = _name(params["activation"]) == "prelu"
        if prelu:
            arrays["slopes_init"] = _slopes(net)
        series = defaultdict(list)
        every_epoch = params.get("train_series", "every_epoch") == "every_epoch"

        def on_epoch(epoch, net):
            if not (every_epoch or epoch in (0, params["epochs"])):
                for rows in series.values():  # epoch 0 was measured: each series has its shape
                    rows.append(np.full_like(rows[0], np.nan))
                return
            cache = net.forward(ds.x_train, train=False)
            correct = loss.accuracy(cache.out, np.broadcast_to(ds.y_train, cache.out.shape))
            series["train_error"].append(1.0 - correct)
            series["max_abs_act"].append(np.max([np.abs(a).max(axis=(1, 2)) for a in cache.post], axis=0))
            masks = dead_units(net, cache.pre, cache.post)
            series["dead_frac"].append(np.concatenate(masks, axis=1).mean(axis=1))
            inactive = [np.all(z <= 0, axis=1) for z in cache.pre]
            series["inactive_frac"].append(np.concatenate(inactive, axis=1).mean(axis=1))
            series["zero_frac"].append(np.mean([np.mean(a == 0, axis=(1, 2)) for a in cache.post], axis=0))
            series["layer_abs_mean_act"].append(np.stack([np.abs(a.mean(axis=1)).mean(axis=1) for a in cache.post], 1))

        with np.errstate(all="ignore"):
            history = train(
                net,
                ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
                loss=loss,
                optimizer={"name": params.get("optimizer", "sgd"), "lr": params["lr"]},
                epochs=params["epochs"],
                l2=l2,
                test=(ds.x_test, ds.y_test),
                on_epoch=on_epoch,
            )
        n_points = params["epochs"] + 1
        after = _after_divergence(history.diverged_epoch, n_points)
        rows = series.pop("layer_abs_mean_act")
        layers = np.full((net.n_seeds, n_points, net.n_hidden), np.nan)  # (S, E + 1, L)
        layers[:, : len(rows)] = np.stack(rows, axis=1)
        layers[after] = np.nan
        arrays["layer_abs_mean_act"] = layers[:, -1]
        series["abs_mean_act"] = list(layers.mean(axis=2).T)
        for name, rows in series.items():
            values = np.full((net.n_seeds, n_points), np.nan)
            values[:, : len(rows)] = np.stack(rows, axis=1)
            values[after] = np.nan
            arrays[name] = values
        arrays.update(
            test_accuracy=history.metrics["test_accuracy"],
            loss=history.metrics["loss"],
            diverged=history.diverged,
            diverged_epoch=history.diverged_epoch,
        )
        if prelu:
            arrays["slopes_final"] = _slopes(net)
        if not params.get("batchnorm"):
            with np.errstate(all="ignore"):  # a diverged net's weights may overflow; its error is then NaN
                arrays["linear_map_error"] = linear_map_error(net, ds.x_test)
        if validation is not None:
            with np.errstate(all="ignore"):
                out = net.predict(validation[0])
            accuracy = loss.accuracy(out, np.broadcast_to(validation[1], out.shape))
            arrays["validation_accuracy"] = np.where(history.diverged, np.nan, accuracy)
            arrays["l2"] = np.full(net.n_seeds, float(l2))
        info = {"n_diverged": int(history.diverged.sum()), "n_train": int(len(ds.x_train))}
        if params.get("logreg_baseline"):
            info["logreg_test_accuracy"] = logreg_accuracy(ds)
        return CellResult(arrays, info)

    @metric("test-split accuracy after the last epoch (NaN for a diverged run)")
    def test_accuracy(self, cell: Cell) -> np.ndarray:
        return _final(cell, "test_accuracy")

    @metric("test accuracy after the last epoch minus scikit-learn's LogisticRegression's on the same split")
    def accuracy_over_logreg(self, cell: Cell) -> np.ndarray:
        return _final(cell, "test_accuracy") - cell.result.info["logreg_test_accuracy"]

    @metric("training error averaged over epochs 1..E, an uncensored area-under-curve speed (NaN for a diverged run)")
    def mean_train_error(self, cell: Cell) -> np.ndarray:
        return np.asarray(cell.result.arrays["train_error"], float)[:, 1:].mean(axis=1)

    @metric("fraction of hidden units lost after the last epoch: dead ones, or all of them if the run diverged")
    def lost_units(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        return np.where(a["diverged"], 1.0, np.asarray(a["dead_frac"])[:, -1])

    @metric(
        "fraction of hidden units inactive after the last epoch (pre-activation <= 0 on every training input: a ReLU "
        "unit outputs 0 everywhere, a leaky one stays on its negative side), or all of them if the run diverged"
    )
    def inactive_units(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        return np.where(a["diverged"], 1.0, np.asarray(a["inactive_frac"])[:, -1])

    @metric(
        "fraction of hidden outputs that are exactly zero on the training inputs after the last epoch (sparsity; NaN "
        "for a diverged run)"
    )
    def hidden_zeros(self, cell: Cell) -> np.ndarray:
        return _final(cell, "zero_frac")

    @metric(
        "|mean over training inputs of a unit's output|, averaged over the units and hidden layers, after the last "
        "epoch (NaN for a diverged run)"
    )
    def abs_mean_activation(self, cell: Cell) -> np.ndarray:
        return np.mean(cell.result.arrays["layer_abs_mean_act"], axis=1)

    @metric("training accuracy minus test accuracy after the last epoch (NaN for a diverged run)")
    def generalization_gap(self, cell: Cell) -> np.ndarray:
        return _gap(cell)[:, -1]

    @metric("1 if the run diverged (non-finite or exploded loss or parameters), else 0", binary=True, name="diverged")
    def diverged_metric(self, cell: Cell) -> np.ndarray:
        return np.asarray(cell.result.arrays["diverged"], float)

    @metric(
        "mean over units of layers >= 2 of |mean sign of the unit's incoming weight gradients| at init (first "
        "mini-batch); 1 = all of a unit's weights pushed the same way"
    )
    def grad_sign_agreement(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["sign_agreement"]

    @metric("mean over PReLU units of |learned slope - initial slope| after training")
    def slope_shift(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        return np.abs(a["slopes_final"] - a["slopes_init"]).mean(axis=(1, 2))

    @metric("standard deviation of the learned PReLU slopes across the units of a layer, mean over layers")
    def slope_spread(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["slopes_final"].std(axis=2).mean(axis=1)

    @metric(
        "max |net(x) - (x W_1 ... W_{L+1} + c)| / max |net(x)| over the test inputs, c = net(0) (no batch norm): "
        "rounding error for identity units, large for non-linear ones"
    )
    def linear_map_error(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["linear_map_error"]


#: the metrics a cell measured with ``train_series: ends`` can give: those that read the last epoch
#: (or initialization) only, and whose figure draws no training-split series (figures/zoo.py)
ENDS_METRICS = frozenset(
    {
        "test_accuracy",
        "accuracy_over_logreg",
        "abs_mean_activation",
        "slope_shift",
        "slope_spread",
        "linear_map_error",
    }
)

#: the metrics a scikit-learn cell can give: those read from its predictions alone
SKLEARN_METRICS = frozenset({"test_accuracy", "accuracy_over_logreg", "mean_train_error", "diverged"})


def sign_agreement(net, loss, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean over units of dense layers ``l >= 2`` of ``|mean_i sign(dL/dW_l[i, j])|``, shape ``(S,)``.

    ``x`` ``(B, n_0)`` and ``y`` ``(B, n_out)`` are one mini-batch; eval-mode forward pass, no update.
    """
    cache = net.forward(x, train=False)
    _, grad_out = loss(cache.out, np.broadcast_to(y, cache.out.shape))
    grads, _ = net.backward(cache, grad_out)
    per_layer = [np.abs(np.sign(g).mean(axis=1)).mean(axis=1) for g in grads[1 : net.n_hidden + 1]]
    return np.mean(per_layer, axis=0)


def linear_map_error(net, x: np.ndarray) -> np.ndarray:
    """How far a net is from the single affine map an all-identity net collapses to, shape ``(S,)``.

    The collapsed map is ``x W_1 W_2 ... W_{L+1} + c`` with ``c = net(0)``; the error is
    ``max |net(x) - map(x)| / max |net(x)|`` over the rows of ``x`` ``(N, n_0)``.
    """
    product = net.W[0]
    for w in net.W[1:]:
        product = np.matmul(product, w)
    offset = net.predict(np.zeros((1, x.shape[1]), net.dtype))
    out = net.predict(x)
    collapsed = np.matmul(x, product) + offset
    return np.abs(out - collapsed).max(axis=(1, 2)) / np.abs(out).max(axis=(1, 2))


def logreg_accuracy(ds) -> float:
    """Test accuracy of scikit-learn's ``LogisticRegression`` (default L2, lbfgs) on the same split."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=5000).fit(ds.x_train, ds.y_train.argmax(axis=1))
    return float(model.score(ds.x_test, ds.y_test.argmax(axis=1)))


def _slopes(net) -> np.ndarray:
    return np.stack([a.params["slope"][:, 0, :].copy() for a in net.activations], axis=1)


def _after_divergence(diverged_epoch: np.ndarray, n_points: int) -> np.ndarray:
    """Mask ``(S, n_points)``: the epochs at and after each seed's divergence (none if -1)."""
    epochs = np.arange(n_points)[None, :]
    return (diverged_epoch[:, None] >= 0) & (epochs >= diverged_epoch[:, None])


def _name(spec) -> str | None:
    return spec.get("name") if isinstance(spec, dict) else spec
