"""Parity with scikit-learn: actlab's MLP trained by SGD reproduces MLPClassifier / MLPRegressor step for step.

Both sides start from the same weights (actlab's initialization, written into the estimator's ``coefs_`` and
``intercepts_`` in place) and see the same mini-batches in the same order. scikit-learn is stepped either one batch
per ``partial_fit`` call (``batch_size`` equal to the batch length, so each call is exactly one SGD step) or by a
warm-started ``fit`` with ``shuffle=False``, which slices ``X[0:B], X[B:2B], ...`` exactly as
``actlab.engine.ArrayData(shuffle=False)`` does. The correspondence under test:

- ``activation`` identity / logistic / tanh / relu  ->  ``activation`` identity / sigmoid / tanh / relu;
- MLPRegressor (squared error, identity output)  ->  loss ``half_squared_error``;
- MLPClassifier with > 2 classes (softmax + log loss)  ->  ``softmax_cross_entropy``, one-hot in ``classes_`` order;
- MLPClassifier with 2 classes (one logistic output)  ->  ``sigmoid_cross_entropy`` with one output;
- ``alpha`` (adds ``alpha * W / n_batch`` to the gradient)  ->  ``train(l2=alpha / batch_size)``, equal-size batches;
- ``momentum``, ``nesterovs_momentum``  ->  SGD ``momentum``, ``nesterov``.

Weights and biases must agree to ``1e-10`` in float64 after hundreds of steps (observed: a few ulps).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from actlab import engine

ATOL = 1e-10  # float64 parity: weights and biases, absolute
HIDDEN = (7, 6)
BATCH = 20
LR = 0.05
EPOCHS = 34  # 34 epochs x 6 batches of 20 = 204 SGD steps
BIAS_INIT = {"name": "uniform", "limit": 0.1}  # non-zero initial biases, so they are checked from step one

SK_TO_ACTLAB = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SK_ACTIVATIONS = list(SK_TO_ACTLAB)
TASKS = ("regression", "multiclass", "binary")
LOSSES = {
    "regression": "half_squared_error",
    "multiclass": "softmax_cross_entropy",
    "binary": "sigmoid_cross_entropy",
}


# --------------------------------------------------------------------------------------------------------------------
# helpers


def _standardize(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(axis=0)) / a.std(axis=0)


def make_task(task: str, n_samples: int = 120, n_targets: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Standardized ``X`` (n, 5) and the target in scikit-learn's format (labels, or real values)."""
    if task == "regression":
        x, y = make_regression(
            n_samples=n_samples, n_features=5, n_informative=4, n_targets=n_targets, noise=5.0, random_state=0
        )
        return _standardize(x), _standardize(y)
    x, y = make_classification(
        n_samples=n_samples,
        n_features=5,
        n_informative=3,
        n_redundant=1,
        n_classes=3 if task == "multiclass" else 2,
        n_clusters_per_class=1,
        random_state=0,
    )
    return _standardize(x), y


def make_estimator(
    task: str,
    activation: str,
    hidden=HIDDEN,
    *,
    batch_size: int = BATCH,
    lr: float = LR,
    momentum: float = 0.0,
    nesterov: bool = False,
    alpha: float = 0.0,
    max_iter: int = 1,
    warm_start: bool = False,
):
    """A plain-SGD estimator: constant learning rate, no shuffling, no early stopping, never stops on its own."""
    cls = MLPRegressor if task == "regression" else MLPClassifier
    return cls(
        hidden_layer_sizes=hidden,
        activation=activation,
        solver="sgd",
        alpha=alpha,
        batch_size=batch_size,
        learning_rate="constant",
        learning_rate_init=lr,
        momentum=momentum,
        nesterovs_momentum=nesterov,
        shuffle=False,
        early_stopping=False,
        tol=0.0,
        n_iter_no_change=np.inf,
        max_iter=max_iter,
        warm_start=warm_start,
        random_state=0,
    )


def actlab_targets(task: str, est, y: np.ndarray, dtype=np.float64) -> np.ndarray:
    """scikit-learn's targets as actlab's ``(N, n_out)`` arrays (one-hot columns in ``est.classes_`` order)."""
    if task == "regression":
        return np.asarray(y, dtype=dtype).reshape(len(y), -1)
    if task == "multiclass":
        return (y[:, None] == est.classes_[None, :]).astype(dtype)
    return (y == est.classes_[1]).astype(dtype)[:, None]


def make_net(task: str, activation: str, n_in: int, n_out: int, hidden=HIDDEN, n_seeds: int = 1, dtype=np.float64):
    return engine.MLP(
        n_in,
        hidden,
        n_out,
        activation=SK_TO_ACTLAB[activation],
        bias_init=BIAS_INIT,
        seeds=engine.Seeds(n_seeds, key=(0,)),
        dtype=dtype,
    )


def initialize_estimator(est, task: str, x: np.ndarray, y: np.ndarray, net: engine.MLP, seed: int = 0) -> None:
    """Allocate the estimator's state, then make it start from ``net``'s weights with zero velocity.

    The initializing ``partial_fit`` already takes one SGD step; that step is erased by overwriting every weight and
    bias in place (the optimizer holds references to these arrays), resetting the momentum velocities to zero and
    forgetting the recorded loss.
    """
    n = est.batch_size
    if task == "regression":
        est.partial_fit(x[:n], y[:n])
    else:
        est.partial_fit(x[:n], y[:n], classes=np.unique(y))
    copy_weights(net, est, seed)
    for velocity in est._optimizer.velocities:
        velocity[...] = 0
    est.loss_curve_.clear()


def copy_weights(net: engine.MLP, est, seed: int = 0) -> None:
    assert len(est.coefs_) == len(net.W)
    for layer, (w, b) in enumerate(zip(net.W, net.b, strict=True)):
        assert est.coefs_[layer].shape == w[seed].shape
        est.coefs_[layer][...] = w[seed]
        est.intercepts_[layer][...] = b[seed, 0]


def param_diff(net: engine.MLP, est, seed: int = 0) -> float:
    """Largest absolute difference over every weight and bias of member ``seed`` and the estimator."""
    diffs = [np.max(np.abs(w[seed] - c)) for w, c in zip(net.W, est.coefs_, strict=True)]
    diffs += [np.max(np.abs(b[seed, 0] - i)) for b, i in zip(net.b, est.intercepts_, strict=True)]
    return float(max(diffs))


def assert_same_params(net: engine.MLP, est, seed: int = 0, atol: float = ATOL) -> None:
    for layer in range(len(net.W)):
        np.testing.assert_allclose(net.W[layer][seed], est.coefs_[layer], rtol=0, atol=atol, err_msg=f"W{layer}")
        np.testing.assert_allclose(
            net.b[layer][seed, 0], est.intercepts_[layer], rtol=0, atol=atol, err_msg=f"b{layer}"
        )


def initial_params(net: engine.MLP, seed: int = 0) -> list[np.ndarray]:
    return [w[seed].copy() for w in net.W] + [b[seed, 0].copy() for b in net.b]


def assert_moved(net: engine.MLP, start: list[np.ndarray], seed: int = 0, at_least: float = 0.05) -> None:
    """Training changed the weights substantially (so parity is not the trivial agreement of two idle runs)."""
    now = initial_params(net, seed)
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(now, start, strict=True))
    assert moved > at_least, f"weights moved by only {moved:.3g}"


def step_sklearn(est, x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int) -> int:
    """Feed ``x[0:B], x[B:2B], ...`` for ``epochs`` epochs, one ``partial_fit`` (one SGD step) per batch."""
    steps = 0
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            est.partial_fit(x[start : start + batch_size], y[start : start + batch_size])
            steps += 1
    return steps


def run_pair(
    task: str,
    activation: str,
    *,
    hidden=HIDDEN,
    epochs: int = EPOCHS,
    lr: float = LR,
    momentum: float = 0.0,
    nesterov: bool = False,
    alpha: float = 0.0,
    sk_momentum: float | None = None,
    sk_nesterov: bool | None = None,
    n_targets: int = 1,
):
    """Train actlab and scikit-learn side by side from the same start; returns ``(net, est, history, start, steps)``.

    ``sk_momentum`` / ``sk_nesterov`` give scikit-learn a different optimizer (for the sensitivity checks).
    """
    x, y = make_task(task, n_targets=n_targets)
    est = make_estimator(
        task,
        activation,
        hidden,
        lr=lr,
        momentum=momentum if sk_momentum is None else sk_momentum,
        nesterov=nesterov if sk_nesterov is None else sk_nesterov,
        alpha=alpha,
    )
    n_out = n_targets if task == "regression" else (3 if task == "multiclass" else 1)
    net = make_net(task, activation, x.shape[1], n_out, hidden)
    initialize_estimator(est, task, x, y, net)
    start = initial_params(net)
    history = engine.train(
        net,
        engine.ArrayData(x, actlab_targets(task, est, y), batch_size=BATCH, shuffle=False),
        loss=LOSSES[task],
        optimizer={"name": "sgd", "lr": lr, "momentum": momentum, "nesterov": nesterov},
        epochs=epochs,
        l2=alpha / BATCH,
    )
    steps = step_sklearn(est, x, y, BATCH, epochs)
    return net, est, history, start, steps


def sklearn_epoch_losses(est, epochs: int) -> np.ndarray:
    """Mean over each epoch's batches of the per-``partial_fit`` losses scikit-learn recorded."""
    return np.asarray(est.loss_curve_).reshape(epochs, -1).mean(axis=1)


# --------------------------------------------------------------------------------------------------------------------
# plain SGD, every activation and every output/loss pairing


@pytest.mark.parametrize("activation", SK_ACTIVATIONS)
@pytest.mark.parametrize("task", TASKS)
def test_plain_sgd_matches_sklearn(task, activation):
    net, est, history, start, steps = run_pair(task, activation)
    assert steps == 204
    assert est.out_activation_ == {"regression": "identity", "multiclass": "softmax", "binary": "logistic"}[task]
    assert_moved(net, start)
    assert_same_params(net, est)
    # The per-epoch training loss agrees too (single output, equal batches, no penalty: both are the mean batch loss).
    np.testing.assert_allclose(history.metrics["loss"][0], sklearn_epoch_losses(est, EPOCHS), rtol=1e-9, atol=0)
    # ... and so do the predictions.
    x = make_task(task)[0]
    out = net.predict(x)  # (1, N, n_out)
    if task == "regression":
        np.testing.assert_allclose(out[0, :, 0], est.predict(x), rtol=0, atol=ATOL)
    elif task == "multiclass":
        np.testing.assert_allclose(
            engine.get_loss(LOSSES[task]).predict(out)[0], est.predict_proba(x), atol=ATOL, rtol=0
        )
    else:
        p = engine.get_loss(LOSSES[task]).predict(out)[0, :, 0]
        np.testing.assert_allclose(p, est.predict_proba(x)[:, 1], atol=ATOL, rtol=0)


# --------------------------------------------------------------------------------------------------------------------
# momentum and L2


@pytest.mark.parametrize(
    ("task", "activation"), [("multiclass", "tanh"), ("regression", "relu"), ("binary", "logistic")]
)
def test_nesterov_momentum_matches_sklearn(task, activation):
    net, est, history, start, _ = run_pair(task, activation, lr=0.01, momentum=0.9, nesterov=True)
    assert_moved(net, start)
    assert_same_params(net, est)
    np.testing.assert_allclose(history.metrics["loss"][0], sklearn_epoch_losses(est, EPOCHS), rtol=1e-9, atol=0)


def test_classical_momentum_matches_sklearn():
    net, est, _, start, _ = run_pair("multiclass", "relu", lr=0.01, momentum=0.9, nesterov=False)
    assert_moved(net, start)
    assert_same_params(net, est)


@pytest.mark.parametrize(
    ("sk_momentum", "sk_nesterov"),
    [(0.9, False), (0.0, False)],
    ids=["sklearn-classical-momentum", "sklearn-no-momentum"],
)
def test_parity_check_detects_a_different_optimizer(sk_momentum, sk_nesterov):
    """Negative control: with actlab on Nesterov momentum and sklearn on something else, the runs do drift apart."""
    net, est, *_ = run_pair(
        "multiclass",
        "tanh",
        lr=0.01,
        momentum=0.9,
        nesterov=True,
        sk_momentum=sk_momentum,
        sk_nesterov=sk_nesterov,
    )
    assert param_diff(net, est) > 1e-3


@pytest.mark.parametrize(("task", "activation"), [("regression", "tanh"), ("multiclass", "relu"), ("binary", "tanh")])
def test_l2_matches_sklearn_alpha(task, activation):
    """scikit-learn's gradient gains ``alpha * W / n_batch`` (weights only); actlab's ``l2 * W`` with l2 = alpha / B."""
    alpha = 0.5
    net, est, _, start, _ = run_pair(task, activation, alpha=alpha)
    assert_moved(net, start)
    assert_same_params(net, est)
    # The penalty matters: without it the weights end up elsewhere.
    plain, *_ = run_pair(task, activation)
    assert max(np.max(np.abs(a - b)) for a, b in zip(net.W, plain.W, strict=True)) > 1e-2


def test_l2_with_nesterov_momentum_matches_sklearn():
    net, est, _, start, _ = run_pair("multiclass", "tanh", lr=0.01, momentum=0.9, nesterov=True, alpha=0.3)
    assert_moved(net, start)
    assert_same_params(net, est)


# --------------------------------------------------------------------------------------------------------------------
# depth, run length, output width, precision


@pytest.mark.parametrize("hidden", [(), (7,), (8, 7, 6, 5)], ids=["no-hidden", "1-hidden", "4-hidden"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_depth_matches_sklearn(hidden, activation):
    net, est, _, start, _ = run_pair("multiclass", activation, hidden=hidden, epochs=17)
    assert len(net.W) == len(hidden) + 1
    assert_moved(net, start)
    assert_same_params(net, est)


def test_long_run_does_not_drift():
    """1002 steps: the float64 difference stays at rounding level, far inside the tolerance."""
    net, est, _, start, steps = run_pair("regression", "relu", epochs=167)
    assert steps == 1002
    assert_moved(net, start)
    assert param_diff(net, est) < 1e-12


def test_multi_output_regression_matches_sklearn():
    """Two targets: same weights. scikit-learn *reports* the squared loss averaged over outputs, but its gradient
    (``delta = p - y``, divided by the batch size only) is that of the sum over outputs, which is what actlab's
    ``half_squared_error`` reports; the recorded losses therefore differ by exactly the number of outputs."""
    net, est, history, start, _ = run_pair("regression", "tanh", n_targets=2, epochs=17)
    assert net.sizes[-1] == 2
    assert_moved(net, start)
    assert_same_params(net, est)
    np.testing.assert_allclose(history.metrics["loss"][0], 2 * sklearn_epoch_losses(est, 17), rtol=1e-9, atol=0)


def test_float32_matches_sklearn():
    """float32 on both sides stays float32 and agrees up to float32 rounding (a few ulps after 204 steps)."""
    task, activation = "multiclass", "tanh"
    x64, y = make_task(task)
    x = x64.astype(np.float32)
    est = make_estimator(task, activation)
    net = make_net(task, activation, x.shape[1], 3, dtype=np.float32)
    initialize_estimator(est, task, x, y, net)
    start = initial_params(net)
    engine.train(
        net,
        engine.ArrayData(x, actlab_targets(task, est, y, np.float32), batch_size=BATCH, shuffle=False),
        loss=LOSSES[task],
        optimizer={"name": "sgd", "lr": LR},
        epochs=EPOCHS,
    )
    step_sklearn(est, x, y, BATCH, EPOCHS)
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert all(p.dtype == np.float32 for p in net.parameters())
    assert_moved(net, start)
    assert_same_params(net, est, atol=1e-5)


# --------------------------------------------------------------------------------------------------------------------
# scikit-learn's own epoch loop (fit) and actlab's seed ensembles


@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["sgd", "nesterov"])
def test_warm_started_fit_with_uneven_last_batch(momentum):
    """110 samples in batches of 20: five full batches then one of 10, in both engines, each averaged over its own size.

    scikit-learn's ``fit`` (warm start, so it keeps the copied weights; a fresh optimizer, so zero velocity) runs its
    own batching. Its ``loss_curve_`` weights batch losses by batch size, whereas actlab's ``loss`` is the plain mean of
    the batch losses; both are recovered from actlab's per-step losses.
    """
    task, activation, epochs, lr = "multiclass", "tanh", 30, 0.02
    x, y = make_task(task, n_samples=110)
    est = make_estimator(task, activation, lr=lr, momentum=momentum, nesterov=True, max_iter=epochs, warm_start=True)
    net = make_net(task, activation, x.shape[1], 3)
    initialize_estimator(est, task, x, y, net)
    start = initial_params(net)
    history = engine.train(
        net,
        engine.ArrayData(x, actlab_targets(task, est, y), batch_size=BATCH, shuffle=False),
        loss=LOSSES[task],
        optimizer={"name": "sgd", "lr": lr, "momentum": momentum, "nesterov": True},
        epochs=epochs,
        record_steps=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached, by design
        est.fit(x, y)
    assert est.n_iter_ == epochs
    assert_moved(net, start)
    assert_same_params(net, est)

    step_loss = history.metrics["step_loss"][0].reshape(epochs, 6)
    sizes = np.array([20, 20, 20, 20, 20, 10])
    np.testing.assert_allclose(step_loss @ sizes / sizes.sum(), est.loss_curve_, rtol=1e-9, atol=0)
    np.testing.assert_allclose(step_loss.mean(axis=1), history.metrics["loss"][0], rtol=1e-12, atol=0)


def test_shuffled_seed_ensemble_matches_independent_sklearn_runs():
    """Three seeds with three learning rates trained as one ensemble, each shuffling with its own "data" stream, equal
    three separate scikit-learn runs fed the same permuted batches (Nesterov momentum, L2)."""
    task, activation, epochs, alpha = "multiclass", "relu", 20, 0.2
    lrs = np.array([0.005, 0.01, 0.02])
    x, y = make_task(task)
    net = make_net(task, activation, x.shape[1], 3, n_seeds=len(lrs))
    estimators = []
    for seed, lr in enumerate(lrs):
        est = make_estimator(task, activation, lr=lr, momentum=0.9, nesterov=True, alpha=alpha)
        initialize_estimator(est, task, x, y, net, seed)
        estimators.append(est)
    starts = [initial_params(net, seed) for seed in range(len(lrs))]
    target = actlab_targets(task, estimators[0], y)
    engine.train(
        net,
        engine.ArrayData(x, target, batch_size=BATCH, shuffle=True),
        loss=LOSSES[task],
        optimizer={"name": "sgd", "lr": lrs, "momentum": 0.9, "nesterov": True},
        epochs=epochs,
        l2=alpha / BATCH,
    )
    # ArrayData's contract: each epoch, seed s permutes the samples with its own "data" stream.
    rngs = net.seeds.rngs("data")
    for _ in range(epochs):
        for rng, est in zip(rngs, estimators, strict=True):
            order = rng.permutation(len(x))
            step_sklearn(est, x[order], y[order], BATCH, 1)
    for seed, est in enumerate(estimators):
        assert_moved(net, starts[seed], seed)
        assert_same_params(net, est, seed)
    # The members really differ (their own initial weights and learning rates).
    assert np.max(np.abs(net.W[0][0] - net.W[0][1])) > 1e-2
