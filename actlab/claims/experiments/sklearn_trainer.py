"""scikit-learn's ``MLPClassifier`` as a second trainer, for replications (``trainer: sklearn``).

An experiment type that trains one MLP per cell can hand a cell with ``trainer: sklearn`` to
:func:`train_sklearn`, which re-runs the same setting with scikit-learn's own code. What differs
from actlab's engine, by design: scikit-learn's initialization (Glorot uniform; Glorot & Bengio
2010), its output layer (one logistic unit for two classes, softmax otherwise) and its shuffling;
what is the same: architecture, activation, optimizer, learning rate, batch size, epochs and weight
decay. ``tests/test_sklearn_parity.py`` pins that the two trainers agree step for step when they
start from the same weights and see the same batches.
"""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments.base import CellResult
from actlab.engine.training import EXPLODED_LOSS

#: the params schema key that selects the trainer
TRAINER = {"trainer": {"enum": ["actlab", "sklearn"]}}

#: actlab activation name -> scikit-learn's, for the activations ``MLPClassifier`` has
SKLEARN_ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}


def check_sklearn_params(params: dict) -> None:
    """What a ``trainer: sklearn`` cell can express; raise ``ValueError`` naming the key."""
    if not isinstance(params["activation"], str) or params["activation"] not in SKLEARN_ACTIVATIONS:
        raise ValueError(
            f"activation: scikit-learn's MLPClassifier has only {', '.join(SKLEARN_ACTIVATIONS)} (got "
            f"{params['activation']!r})"
        )
    if params["init"] != "sklearn":
        raise ValueError("init: a scikit-learn cell uses scikit-learn's own initialization; write init: sklearn")
    for key in ("batchnorm", "validation_fraction", "bias_init", "dtype"):
        if params.get(key):
            raise ValueError(f"{key}: not available with trainer: sklearn")
    if isinstance(params.get("l2"), list):
        raise ValueError("l2: a scikit-learn cell takes one strength")


def train_sklearn(params: dict, seeds, ds) -> CellResult:
    """Train one scikit-learn ``MLPClassifier`` per seed on the cell's setting, epoch by epoch.

    ``params`` as an actlab cell's (``depth``, ``width``, ``activation``, ``optimizer`` plain SGD
    with ``momentum=0`` or Adam, ``lr``, ``batch_size``, ``epochs``, ``l2`` as
    ``alpha = l2 * batch_size``, the correspondence of ``tests/test_sklearn_parity.py``). Each
    seed's ``random_state`` comes from its "sklearn" seed stream, so paired cells share it;
    ``partial_fit`` runs one shuffled epoch per call. Returns arrays ``train_error`` (whole
    training split; with ``train_series: ends`` after the last epoch only) and ``test_accuracy``
    ``(S, E + 1)`` (NaN at epoch 0, which ``partial_fit`` cannot show, and from a divergence on),
    ``loss`` ``(S, E)``, ``diverged`` and
    ``diverged_epoch`` ``(S,)``; a divergence is a non-finite or exploded loss
    (:data:`actlab.engine.training.EXPLODED_LOSS`) or scikit-learn's non-finite-weights error.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    n_seeds, n_epochs = len(seeds), params["epochs"]
    arrays = {
        "train_error": np.full((n_seeds, n_epochs + 1), np.nan),
        "test_accuracy": np.full((n_seeds, n_epochs + 1), np.nan),
        "loss": np.full((n_seeds, n_epochs), np.nan),
        "diverged": np.zeros(n_seeds, bool),
        "diverged_epoch": np.full(n_seeds, -1),
    }
    y_train, y_test = ds.y_train.argmax(axis=1), ds.y_test.argmax(axis=1)
    every_epoch = params.get("train_series", "every_epoch") == "every_epoch"
    for s, rng in enumerate(seeds.rngs("sklearn")):
        model = MLPClassifier(
            hidden_layer_sizes=(params["width"],) * params["depth"],
            activation=SKLEARN_ACTIVATIONS[params["activation"]],
            solver=params.get("optimizer", "sgd"),
            alpha=params.get("l2", 0.0) * params["batch_size"],
            batch_size=params["batch_size"],
            learning_rate_init=params["lr"],
            momentum=0.0,
            nesterovs_momentum=False,
            random_state=int(rng.integers(2**31 - 1)),
        )
        for epoch in range(1, n_epochs + 1):
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.partial_fit(ds.x_train, y_train, classes=np.arange(ds.n_outputs))
                exploded = not np.isfinite(model.loss_) or model.loss_ > EXPLODED_LOSS
            except ValueError:  # "Solver produced non-finite parameter weights"
                exploded = True
            if exploded:
                arrays["diverged"][s], arrays["diverged_epoch"][s] = True, epoch
                break
            arrays["loss"][s, epoch - 1] = model.loss_
            if every_epoch or epoch == n_epochs:
                arrays["train_error"][s, epoch] = 1.0 - model.score(ds.x_train, y_train)
            arrays["test_accuracy"][s, epoch] = model.score(ds.x_test, y_test)
    info = {"n_diverged": int(arrays["diverged"].sum()), "n_train": int(len(ds.x_train)), "trainer": "sklearn"}
    return CellResult(arrays, info)
