"""The activation zoo: what a cell records, that every declared metric can be read or is refused
before any job runs, and that the mechanisms it measures come out as they must in settings where
the answer is known (a linear stack is one map, positive inputs push a unit's weights one way,
a diverged net loses every unit, PReLU slopes move only when the net learns)."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.datasets import Dataset
from actlab.experiments import EXPERIMENTS
from actlab.experiments.base import Cell
from actlab.experiments.zoo import METRICS, linear_map_error, sign_agreement
from actlab.losses import get_loss
from actlab.network import MLP
from actlab.register import expand_cells
from actlab.seeding import Seeds

ZOO = EXPERIMENTS["activation_zoo"]
BASE = {"dataset": "moons", "depth": 2, "width": 8, "init": "he_normal", "epochs": 3, "lr": 0.1, "batch_size": 32}


@pytest.fixture(scope="module")
def data(moons, moons_test) -> dict[str, Dataset]:
    return {"moons": Dataset("moons", "classification", *moons, *moons_test)}


def _cell(data, n_seeds: int = 3, **params) -> Cell:
    params = {**BASE, "activation": "relu", **params}
    return Cell("c", {}, params, ZOO.run(params, Seeds(n_seeds, key=(0, "zoo")), data))


def test_a_cell_records_every_series_with_its_declared_shape(data):
    cell = _cell(data, logreg_baseline=True)
    a = cell.result.arrays
    for name in ("train_error", "test_accuracy", "max_abs_act", "dead_frac"):
        assert a[name].shape == (3, BASE["epochs"] + 1), name
    assert a["loss"].shape == (3, BASE["epochs"])
    assert a["sign_agreement"].shape == a["linear_map_error"].shape == a["diverged"].shape == (3,)
    assert 0.0 < cell.result.info["logreg_test_accuracy"] <= 1.0
    assert "slopes_init" not in a  # only PReLU nets have slopes


def test_every_declared_metric_is_read_per_seed_or_refused_before_any_job(data):
    plain = _cell(data, logreg_baseline=True)
    prelu = _cell(data, activation={"name": "prelu", "slope": 0.25})
    assert set(ZOO.metrics) == set(METRICS)
    for name in ZOO.metrics:
        cell = prelu if name.startswith("slope_") else plain
        ZOO.check_metric(name, cell.params)
        values = ZOO.metric(name, cell)
        assert values.shape == (3,) and np.isfinite(values).all(), name
    refusals = {
        "accuracy_over_logreg": ({}, "logreg_baseline"),
        "slope_shift": ({"activation": "leaky_relu"}, "PReLU"),
        "linear_map_error": ({"batchnorm": "after"}, "batch norm"),
        "grad_sign_agreement": ({"batchnorm": "before"}, "batch norm"),
    }
    for name, (params, message) in refusals.items():
        with pytest.raises(ValueError, match=message):
            ZOO.check_metric(name, {**BASE, "activation": "relu", **params})


def test_an_identity_stack_is_one_linear_map_and_a_relu_stack_is_not(moons):
    x = moons[0]
    for depth in (1, 4):
        linear = MLP(2, [16] * depth, 2, activation="identity", init="glorot_normal", seeds=4)
        assert linear_map_error(linear, x).max() < 1e-12
    relu = MLP(2, [16, 16], 2, activation="relu", init="he_normal", seeds=4)
    assert linear_map_error(relu, x).min() > 1e-2


def test_positive_inputs_push_all_of_a_units_weights_one_way(moons):
    """Sigmoid outputs are positive, so a unit's incoming gradients sum_n a_ni * delta_nj share a sign
    far more often than behind centered units with the same weights."""
    x, y = moons[0][:32], moons[1][:32]
    loss = get_loss("softmax_cross_entropy")
    agreement = {}
    for act in ("sigmoid", "centered_sigmoid", "tanh"):
        net = MLP(2, [32, 32], 2, activation=act, init="glorot_normal", seeds=Seeds(6, key=(0, "sign")))
        agreement[act] = sign_agreement(net, loss, x, y)
    mean = {act: float(v.mean()) for act, v in agreement.items()}  # per seed it varies with the batch's deltas
    assert mean["sigmoid"] > 0.7
    assert mean["centered_sigmoid"] < 0.4 and mean["tanh"] < 0.4


def test_a_diverged_run_loses_every_unit_and_stops_being_drawn(data):
    cell = _cell(data, depth=6, width=32, init={"name": "normal", "std": 3.0}, lr=50.0)
    a = cell.result.arrays
    assert a["diverged"].all()
    np.testing.assert_array_equal(ZOO.metric("lost_units", cell), 1.0)
    np.testing.assert_array_equal(ZOO.metric("diverged", cell), 1.0)
    for s, epoch in enumerate(a["diverged_epoch"]):
        assert np.isnan(a["train_error"][s, epoch:]).all() and np.isnan(a["max_abs_act"][s, epoch:]).all()
    assert np.isnan(ZOO.metric("test_accuracy", cell)).all()


def test_prelu_slopes_move_when_the_net_learns_and_not_when_it_cannot(data):
    moving = _cell(data, activation={"name": "prelu", "slope": 0.25}, lr=0.5, epochs=10)
    frozen = _cell(data, activation={"name": "prelu", "slope": 0.25}, lr=1e-9)
    np.testing.assert_array_equal(moving.result.arrays["slopes_init"], 0.25)
    assert ZOO.metric("slope_shift", moving).min() > 1e-3 and ZOO.metric("slope_spread", moving).min() > 1e-3
    assert ZOO.metric("slope_shift", frozen).max() < 1e-6 and ZOO.metric("slope_spread", frozen).max() < 1e-6


def test_batchnorm_is_placed_where_the_cell_says(data):
    for place in ("before", "after"):
        cell = _cell(data, batchnorm=place)
        assert "sign_agreement" not in cell.result.arrays
        assert np.isfinite(ZOO.metric("test_accuracy", cell)).all()
    assert _cell(data, batchnorm="before").result.arrays["loss"].tolist() != _cell(data).result.arrays["loss"].tolist()


def test_paired_claims_give_every_cell_the_same_seed_streams():
    claim = {"params": {}, "grid": {"activation": ["relu", "swish"]}}
    assert {c["stream"] for c in expand_cells(claim).values()} == {"activation-relu", "activation-swish"}
    cells = expand_cells({**claim, "paired_seeds": True})
    assert {c["stream"] for c in cells.values()} == {"paired"}
    nets = [MLP(2, [8], 2, activation=a, seeds=Seeds(3, key=(0, "claim", "paired"))) for a in ("relu", "swish")]
    for w_relu, w_swish in zip(nets[0].W, nets[1].W, strict=True):
        np.testing.assert_array_equal(w_relu, w_swish)
