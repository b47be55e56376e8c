"""The Python API's entry points reject bad arguments up front, with errors naming the argument.

Each case is one class of bad input: the call must raise the given exception type, and its
message must name the argument (and, for shapes, what was expected). Non-finite *inputs* are
rejected; a run that becomes non-finite while training is still a recorded outcome ("diverged").
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from actlab.engine import MLP, ArrayData, Seeds, StreamData, train

N, N_IN, N_OUT = 150, 4, 3
KEY = (11, "validation")


def make_xy(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal inputs ``(n, 4)`` and one-hot targets ``(n, 3)``, from a fixed seed."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, N_IN)), np.eye(N_OUT)[rng.integers(0, N_OUT, n)]


def net(**kwargs) -> MLP:
    """A 4-8-3 network of two seeds."""
    return MLP(N_IN, [8], N_OUT, seeds=Seeds(2, key=KEY), **kwargs)


def with_nan(a: np.ndarray, value: float = np.nan) -> np.ndarray:
    """A copy of ``a`` with one entry replaced by ``value``."""
    a = a.copy()
    a[3, 1] = value
    return a


def expect(call, exc: type[Exception], *fragments: str) -> None:
    """``call()`` raises ``exc`` and its message contains every fragment."""
    with pytest.raises(exc) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


X, Y = make_xy()

# --------------------------------------------------------------------------- MLP(...)

MLP_CASES = {
    "fractional width": (lambda: MLP(4, [32.7], 3), TypeError, ["hidden[0]", "32.7"]),
    "whole float width": (lambda: MLP(4, [8, 16.0], 3), TypeError, ["hidden[1]", "16.0"]),
    "bool width": (lambda: MLP(4, [True], 3), TypeError, ["hidden[0]", "True"]),
    "zero width": (lambda: MLP(4, [0], 3), ValueError, ["hidden[0]", ">= 1"]),
    "float n_inputs": (lambda: MLP(4.0, [8], 3), TypeError, ["n_inputs"]),
    "negative n_outputs": (lambda: MLP(4, [8], -3), ValueError, ["n_outputs", "-3"]),
    "hidden not a sequence": (lambda: MLP(4, 8, 3), TypeError, ["hidden", "sequence"]),
    "hidden a string": (lambda: MLP(4, "8", 3), TypeError, ["hidden", "sequence"]),
    "float seed count": (lambda: MLP(4, [8], 3, seeds=2.0), TypeError, ["seeds", "2.0"]),
    "bool seed count": (lambda: MLP(4, [8], 3, seeds=True), TypeError, ["seeds"]),
    "zero seeds": (lambda: MLP(4, [8], 3, seeds=0), ValueError, ["seeds", ">= 1"]),
    "unknown dtype": (lambda: MLP(4, [8], 3, dtype="float99"), TypeError, ["dtype", "float99"]),
    "integer dtype": (lambda: MLP(4, [8], 3, dtype=np.int32), ValueError, ["dtype", "int32"]),
}


@pytest.mark.parametrize("case", list(MLP_CASES))
def test_mlp_rejects(case):
    call, exc, fragments = MLP_CASES[case]
    expect(call, exc, "MLP", *fragments)


def test_mlp_accepts_numpy_integers():
    model = MLP(np.int64(4), np.array([8, 5]), np.uint8(3), seeds=np.int32(2))
    assert model.sizes == [4, 8, 5, 3]
    assert all(type(n) is int for n in model.sizes)
    assert model.n_seeds == 2


# --------------------------------------------------------------------------- Seeds(...)

SEEDS_CASES = {
    "float count": (lambda: Seeds(2.0), TypeError, ["indices", "2.0", "int count >= 1"]),
    "bool count": (lambda: Seeds(True), TypeError, ["indices", "True"]),
    "zero count": (lambda: Seeds(0), ValueError, ["indices", ">= 1"]),
    "no indices": (lambda: Seeds([]), ValueError, ["indices", "at least one seed"]),
    "negative index": (lambda: Seeds([0, -1]), ValueError, ["indices[1]", "-1"]),
    "float index": (lambda: Seeds([0, 1.0]), TypeError, ["indices[1]", "1.0"]),
    "string indices": (lambda: Seeds("01"), TypeError, ["indices", "'01'"]),
    "string key": (lambda: Seeds(2, key="run"), TypeError, ["key", "'run'"]),
    "scalar key": (lambda: Seeds(2, key=5), TypeError, ["key", "5"]),
    "negative key part": (lambda: Seeds(2, key=(-1,)), ValueError, ["seed key", "-1"]),
}


@pytest.mark.parametrize("case", list(SEEDS_CASES))
def test_seeds_rejects(case):
    call, exc, fragments = SEEDS_CASES[case]
    expect(call, exc, *fragments)


def test_seeds_accepts_counts_and_integer_sequences():
    assert Seeds(np.int64(3)).indices == [0, 1, 2]
    assert Seeds(range(2)).indices == [0, 1]
    assert Seeds(np.arange(2, 4)).indices == [2, 3]
    assert all(type(i) is int for i in Seeds(np.arange(2)).indices)


# --------------------------------------------------------------------------- ArrayData(...), StreamData(...)

DATA_CASES = {
    "x not 2-D": (lambda: ArrayData(X[:, 0], Y), ValueError, ["ArrayData: x", "2-D", "(150,)"]),
    "y not 2-D": (lambda: ArrayData(X, Y.argmax(axis=1)), ValueError, ["ArrayData: y", "2-D", "(150,)"]),
    "empty x": (lambda: ArrayData(X[:0], Y[:0]), ValueError, ["ArrayData: x", "empty", "(0, 4)"]),
    "rows differ": (lambda: ArrayData(X, Y[:-1]), ValueError, ["ArrayData: y", "(149, 3)", "150 rows"]),
    "NaN in x": (lambda: ArrayData(with_nan(X), Y), ValueError, ["ArrayData: x", "NaN or inf", "(3, 1)"]),
    "inf in x": (lambda: ArrayData(with_nan(X, np.inf), Y), ValueError, ["ArrayData: x", "NaN or inf"]),
    "NaN in y": (lambda: ArrayData(X, with_nan(Y)), ValueError, ["ArrayData: y", "NaN or inf"]),
    "non-numeric x": (lambda: ArrayData(X.astype(str), Y), TypeError, ["ArrayData: x", "real numbers"]),
    "fractional batch size": (lambda: ArrayData(X, Y, batch_size=32.7), TypeError, ["batch_size", "32.7"]),
    "bool batch size": (lambda: ArrayData(X, Y, batch_size=True), TypeError, ["batch_size"]),
    "zero batch size": (lambda: ArrayData(X, Y, batch_size=0), ValueError, ["batch_size", ">= 1"]),
    "stream sample not callable": (lambda: StreamData(X, 10, 5), TypeError, ["StreamData: sample"]),
    "stream fractional batch size": (lambda: StreamData(make_xy, 2.5, 5), TypeError, ["StreamData: batch_size"]),
    "stream zero steps": (lambda: StreamData(make_xy, 10, 0), ValueError, ["StreamData: steps_per_epoch"]),
}


@pytest.mark.parametrize("case", list(DATA_CASES))
def test_data_holders_reject(case):
    call, exc, fragments = DATA_CASES[case]
    expect(call, exc, *fragments)


# --------------------------------------------------------------------------- train(...)


def mutated_nan_data() -> ArrayData:
    """Valid when built, NaN afterwards: ``train`` checks again, once per call."""
    data = ArrayData(X.copy(), Y)
    data.x[0, 0] = np.nan
    return data


def stream_with_wide_targets(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Batches whose targets have 1 column for a 3-output network."""
    return rng.standard_normal((n, N_IN)), np.zeros((n, 1))


TRAIN_CASES = {
    "labels (N, 1) for 3 outputs": (
        lambda: train(net(), ArrayData(X, Y[:, :1])),
        ValueError,
        ["train: data.y", "(150, 1)", "3 outputs", "(150, 3)"],
    ),
    "wrong input width": (
        lambda: train(MLP(5, [8], 3), ArrayData(X, Y)),
        ValueError,
        ["train: data.x", "(150, 4)", "5 inputs", "(150, 5)"],
    ),
    "NaN in data": (lambda: train(net(), mutated_nan_data()), ValueError, ["train: data.x", "NaN or inf"]),
    "NaN in probe": (lambda: train(net(), ArrayData(X, Y), probe=(with_nan(X), Y)), ValueError, ["probe[0]"]),
    "test targets too narrow": (
        lambda: train(net(), ArrayData(X, Y), test=(X, Y[:, :2])),
        ValueError,
        ["test[1]", "3 outputs"],
    ),
    "test rows differ": (lambda: train(net(), ArrayData(X, Y), test=(X, Y[:10])), ValueError, ["test[1]", "150 rows"]),
    "probe not a pair": (lambda: train(net(), ArrayData(X, Y), probe=X), TypeError, ["probe", "pair"]),
    "data a bare tuple": (lambda: train(net(), (X, Y)), TypeError, ["train: data", "ArrayData(x, y"]),
    "net not an MLP": (lambda: train("mlp", ArrayData(X, Y)), TypeError, ["train: net", "str"]),
    "fractional epochs": (lambda: train(net(), ArrayData(X, Y), epochs=2.5), TypeError, ["epochs", "2.5"]),
    "bool epochs": (lambda: train(net(), ArrayData(X, Y), epochs=True), TypeError, ["epochs"]),
    "zero probe_every": (lambda: train(net(), ArrayData(X, Y), probe_every=0), ValueError, ["probe_every"]),
    "NaN l2": (lambda: train(net(), ArrayData(X, Y), l2=float("nan")), ValueError, ["l2", "finite"]),
    "negative l1": (lambda: train(net(), ArrayData(X, Y), l1_activation=-0.1), ValueError, ["l1_activation"]),
    "string l2": (lambda: train(net(), ArrayData(X, Y), l2="0.1"), TypeError, ["l2", "'0.1'"]),
    "on_epoch not callable": (lambda: train(net(), ArrayData(X, Y), on_epoch=1), TypeError, ["on_epoch"]),
    "stream batch of wrong target width": (
        lambda: train(net(), StreamData(stream_with_wide_targets, 10, 2), epochs=1),
        ValueError,
        ["train: y of a batch", "3 outputs"],
    ),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_rejects(case):
    call, exc, fragments = TRAIN_CASES[case]
    expect(call, exc, *fragments)


# --------------------------------------------------------------------------- MLP.forward / predict

FORWARD_CASES = {
    "wrong width": (lambda m: m.forward(X[:, :3]), ["MLP.forward/predict: x", "(150, 3)", "4 inputs", "(150, 4)"]),
    "predict wrong width": (lambda m: m.predict(np.ones((5, 7))), ["MLP.forward/predict: x", "4 inputs"]),
    "1-D input": (lambda m: m.predict(X[0]), ["MLP.forward/predict: x", "2-D or 3-D", "(4,)"]),
    "seed axis mismatch": (lambda m: m.forward(np.ones((3, 5, 4))), ["MLP.forward/predict: x", "2 seeds"]),
}


@pytest.mark.parametrize("case", list(FORWARD_CASES))
def test_forward_rejects(case):
    call, fragments = FORWARD_CASES[case]
    expect(lambda: call(net()), ValueError, *fragments)


def test_forward_accepts_shared_and_per_seed_batches():
    model = net()
    shared = model.predict(X[:5])
    np.testing.assert_array_equal(model.predict(np.broadcast_to(X[:5], (2, 5, N_IN))), shared)
    np.testing.assert_array_equal(model.predict(X[None, :5]), shared)
    assert model.predict(X[:0]).shape == (2, 0, N_OUT)  # no samples: an empty prediction, not an error


# --------------------------------------------------------------------------- valid calls still work


def test_valid_call_trains():
    model = net()
    before = model.W[0].copy()
    history = train(
        model,
        ArrayData(X, Y, batch_size=np.int64(32)),
        loss="softmax_cross_entropy",
        optimizer={"name": "sgd", "lr": 0.1},
        epochs=np.int64(3),
        probe=(X[:20], Y[:20]),
        test=[X, Y],
        l2=np.float32(1e-4),
    )
    assert not history.diverged.any()
    assert history.metrics["loss"].shape == (2, 3)
    assert np.all(history.metrics["loss"][:, -1] < history.metrics["loss"][:, 0])
    assert not np.array_equal(model.W[0], before)


def test_divergence_during_training_is_recorded_not_rejected():
    """Finite inputs, an unstable learning rate: the run diverges and says so, without raising."""
    history = train(net(), ArrayData(X * 1e3, Y), loss="mse", optimizer={"name": "sgd", "lr": 1e3}, epochs=3)
    assert history.diverged.all()
    assert np.all(history.diverged_epoch >= 1)


def test_messages_name_expected_and_received_values():
    """The issue's example: the message says what was received, what the network has, what to pass."""
    with pytest.raises(ValueError) as info:
        train(net(), ArrayData(X, Y[:, :1]))
    assert re.fullmatch(
        r"train: data\.y has shape \(150, 1\) but the network has 3 outputs.*; expected shape \(150, 3\)",
        str(info.value),
    )
