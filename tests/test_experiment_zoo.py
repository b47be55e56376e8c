"""The activation zoo: what a cell records, that every declared metric can be read or is refused
before any job runs, and that the mechanisms it measures come out as they must in settings where
the answer is known (a linear stack is one map, positive inputs push a unit's weights one way,
a diverged net loses every unit, PReLU slopes move only when the net learns), and that its
figures draw the cells the verdict measured, in their roles."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.claims import figures
from actlab.claims.experiments import EXPERIMENTS
from actlab.claims.experiments.base import Cell, CellResult
from actlab.claims.experiments.zoo import linear_map_error, sign_agreement
from actlab.claims.figures.zoo import FIGURE_CURVE, ZooCurvesFigure, ZooLayersFigure, ZooSlopesFigure
from actlab.claims.register import expand_cells
from actlab.engine.datasets import Dataset
from actlab.engine.losses import get_loss
from actlab.engine.network import MLP
from actlab.engine.seeding import Seeds

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
    for name in (
        "train_error",
        "test_accuracy",
        "max_abs_act",
        "dead_frac",
        "inactive_frac",
        "zero_frac",
        "abs_mean_act",
    ):
        assert a[name].shape == (3, BASE["epochs"] + 1), name
    assert a["layer_abs_mean_act"].shape == (3, BASE["depth"])
    assert a["loss"].shape == (3, BASE["epochs"])
    assert a["sign_agreement"].shape == a["linear_map_error"].shape == a["diverged"].shape == (3,)
    assert 0.0 < cell.result.info["logreg_test_accuracy"] <= 1.0
    assert "slopes_init" not in a  # only PReLU nets have slopes


def test_every_declared_metric_is_read_per_seed_or_refused_before_any_job(data):
    plain = _cell(data, logreg_baseline=True)
    prelu = _cell(data, activation={"name": "prelu", "slope": 0.25})
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


def test_every_metric_has_the_series_its_figure_draws():
    assert set(ZOO.metrics) == set(FIGURE_CURVE)


def test_measured_at_the_ends_only_a_cell_gives_the_same_last_epoch_and_refuses_the_rest(data):
    every, ends = (_cell(data, train_series=series) for series in ("every_epoch", "ends"))
    a, b = every.result.arrays, ends.result.arrays
    assert a.keys() == b.keys()
    for name in ("train_error", "max_abs_act", "dead_frac", "inactive_frac", "zero_frac", "abs_mean_act"):
        assert b[name][:, [0, -1]].tobytes() == a[name][:, [0, -1]].tobytes(), name
        assert np.isnan(b[name][:, 1:-1]).all() and np.isfinite(a[name][:, 1:-1]).all(), name
    for name in set(a) - {"train_error", "max_abs_act", "dead_frac", "inactive_frac", "zero_frac", "abs_mean_act"}:
        assert b[name].tobytes() == a[name].tobytes(), name  # training itself is untouched
    for name in ZOO.metrics:
        try:
            ZOO.check_metric(name, ends.params)
        except ValueError as err:
            assert "train_series" in str(err) or "logreg" in str(err) or "PReLU" in str(err), name
            continue
        assert FIGURE_CURVE[name] in ("test_accuracy", "layers", "slopes"), name  # no training-split curve
        np.testing.assert_array_equal(ZOO.metric(name, ends), ZOO.metric(name, every), err_msg=name)
    with pytest.raises(ValueError, match="mean_train_error reads the training-split series"):
        ZOO.check_metric("mean_train_error", ends.params)


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


def test_units_switched_off_by_their_bias_are_inactive_and_output_zeros_only_behind_a_relu(data):
    """A bias of -100 puts every pre-activation below zero: every unit is inactive, a ReLU outputs
    only zeros, a NecroReLU the same (forward = ReLU), a softplus none; a bias of +100 (one layer): none."""
    off = {"bias_init": {"name": "constant", "value": -100.0}, "lr": 1e-9, "epochs": 1}
    for activation, zeros in (("relu", 1.0), ({"name": "necro_relu", "slope": 0.1}, 1.0), ("softplus", 0.0)):
        cell = _cell(data, activation=activation, **off)
        np.testing.assert_array_equal(ZOO.metric("inactive_units", cell), 1.0)
        np.testing.assert_array_equal(ZOO.metric("hidden_zeros", cell), zeros)
    on = _cell(data, depth=1, bias_init={"name": "constant", "value": 100.0}, lr=1e-9, epochs=1)
    np.testing.assert_array_equal(ZOO.metric("inactive_units", on), 0.0)
    np.testing.assert_array_equal(ZOO.metric("hidden_zeros", on), 0.0)


def test_a_positive_activation_has_a_larger_mean_than_its_centered_twin(data):
    """sigmoid(z) = centered_sigmoid(z) + 0.5: at init each unit's mean output is near 0.5 for
    sigmoid and near 0 for the centered one (symmetric weights); the metric must tell them apart."""
    frozen = {"lr": 1e-9, "epochs": 1, "init": "glorot_normal"}
    sigmoid = ZOO.metric("abs_mean_activation", _cell(data, activation="sigmoid", **frozen))
    centered = ZOO.metric("abs_mean_activation", _cell(data, activation="centered_sigmoid", **frozen))
    assert sigmoid.min() > 0.3 and centered.max() < 0.2


def test_the_gap_is_training_minus_test_accuracy_and_grows_when_a_net_memorizes(data):
    small = {"dataset": "moons", "validation_fraction": 0.5}
    cell = _cell(data, **small)
    a = cell.result.arrays
    expected = (1 - a["train_error"][:, -1]) - a["test_accuracy"][:, -1]
    np.testing.assert_array_equal(ZOO.metric("generalization_gap", cell), expected)
    assert cell.result.info["n_train"] == 100  # half of the 200 training points held out for validation
    assert a["validation_accuracy"].shape == a["l2"].shape == (3,)


def test_l2_is_chosen_per_seed_on_the_validation_split(data):
    """A crippling strength is never chosen over none, and a seed's arrays are then exactly those of
    the run without weight decay; a list without a validation split is refused."""
    params = {"validation_fraction": 0.25, "epochs": 5, "lr": 0.5}
    plain = _cell(data, l2=0.0, **params)
    chosen = _cell(data, l2=[1.0, 0.0], **params)
    np.testing.assert_array_equal(chosen.result.arrays["l2"], 0.0)
    for name, values in plain.result.arrays.items():
        np.testing.assert_array_equal(chosen.result.arrays[name], values, err_msg=name)
    assert chosen.result.info["l2_candidates"] == [0.0, 1.0]
    crippled = _cell(data, l2=1.0, **params)
    assert crippled.result.arrays["validation_accuracy"].max() < plain.result.arrays["validation_accuracy"].min()
    with pytest.raises(ValueError, match="validation_fraction"):
        ZOO.check({**BASE, "activation": "relu", "l2": [0.0, 1.0]})


def test_scikit_learn_trains_the_same_setting_and_a_linear_stack_still_cannot_bend(data):
    """With scikit-learn as the trainer an identity net stays near logistic regression on the moons
    while a ReLU net beats it; only the metrics read from predictions are offered."""
    sk = {"trainer": "sklearn", "init": "sklearn", "width": 16, "epochs": 40, "lr": 0.2, "logreg_baseline": True}
    linear = _cell(data, activation="identity", **sk)
    relu = _cell(data, activation="relu", **sk)
    a = relu.result.arrays
    assert a["train_error"].shape == a["test_accuracy"].shape == (3, 41) and np.isnan(a["test_accuracy"][:, 0]).all()
    assert np.isfinite(a["test_accuracy"][:, 1:]).all() and not a["diverged"].any()
    gain_linear, gain_relu = (ZOO.metric("accuracy_over_logreg", c) for c in (linear, relu))
    assert gain_linear.max() < 0.02 and gain_relu.min() > gain_linear.max() + 0.02, (gain_linear, gain_relu)
    ZOO.check(relu.params)
    for name, message in (("lost_units", "internals"), ("test_accuracy", None)):
        if message:
            with pytest.raises(ValueError, match=message):
                ZOO.check_metric(name, relu.params)
        else:
            ZOO.check_metric(name, relu.params)
    for change, message in (({"activation": "elu"}, "only identity"), ({"init": "he_normal"}, "init: sklearn")):
        with pytest.raises(ValueError, match=message):
            ZOO.check({**relu.params, **change})
    ends = _cell(data, activation="relu", train_series="ends", **sk).result.arrays  # the last epoch only
    assert np.isnan(ends["train_error"][:, :-1]).all()
    for name in a:
        kept = a[name] if name != "train_error" else np.where(np.isnan(ends[name]), np.nan, a[name])
        np.testing.assert_array_equal(ends[name], kept, err_msg=name)


def test_a_scikit_learn_run_that_explodes_is_counted_as_diverged(data):
    cell = _cell(data, trainer="sklearn", init="sklearn", activation="relu", width=32, depth=4, lr=1e4, epochs=3)
    assert cell.result.arrays["diverged"].all()
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
    claim = {"seeds": 3, "params": {}, "grid": {"activation": ["relu", "swish"]}}
    assert {c["stream"] for c in expand_cells(claim).values()} == {"activation-relu", "activation-swish"}
    cells = expand_cells({**claim, "paired_seeds": True})
    assert {c["stream"] for c in cells.values()} == {"paired"}
    nets = [MLP(2, [8], 2, activation=a, seeds=Seeds(3, key=(0, "claim", "paired"))) for a in ("relu", "swish")]
    for w_relu, w_swish in zip(nets[0].W, nets[1].W, strict=True):
        np.testing.assert_array_equal(w_relu, w_swish)


def _recorded(cell_id: str, activation: str, dataset: str, rng, diverged_epoch: int = -1) -> Cell:
    """A cell with made-up records of 4 seeds, 3 epochs and 2 PReLU layers of 5 units; seed 0 may diverge."""
    arrays = {name: rng.uniform(0.1, 0.9, (4, 4)) for name in ("train_error", "test_accuracy", "dead_frac")}
    arrays["diverged_epoch"] = np.array([diverged_epoch, -1, -1, -1])
    arrays["diverged"] = arrays["diverged_epoch"] >= 0
    arrays["layer_abs_mean_act"] = rng.uniform(0.1, 0.9, (4, 2))
    arrays["slopes_init"] = np.full((4, 2, 5), 0.25)
    arrays["slopes_final"] = rng.normal(0.25, 0.1, (4, 2, 5))
    params = {**BASE, "dataset": dataset, "activation": activation}
    return Cell(cell_id, {"activation": activation, "dataset": dataset}, params, CellResult(arrays))


def _zoo_figure(metric: str, tmp_path):
    """The figure of a claim on ``metric`` over two tasks: relu judged, tanh its control, elu in no condition."""
    rng = np.random.default_rng(5)
    cells = [
        _recorded("relu-moons", "relu", "moons", rng, diverged_epoch=2),
        _recorded("tanh-moons", "tanh", "moons", rng),
        _recorded("elu-moons", "elu", "moons", rng),
        _recorded("relu-xor", "relu", "xor", rng),
    ]
    verdict = {
        "conditions": [
            {"role": "judged", "cells": ["relu-moons", "relu-xor"]},
            {"role": "control", "cells": ["tanh-moons"]},
        ]
    }
    claim = {"decision": {"metric": metric}}
    caption = figures.draw(ZOO, claim, cells, verdict, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5_000
    return figures.FIGURES["activation_zoo"].from_verdict(ZOO, claim, cells, verdict), cells, caption


def test_the_zoo_curves_show_the_cells_the_verdict_measured_with_a_diverged_run_lost(tmp_path):
    figure, cells, caption = _zoo_figure("lost_units", tmp_path)
    assert isinstance(figure, ZooCurvesFigure) and figure.curve == "lost" and "every unit lost" in caption
    assert figure.tasks == ["moons", "xor"]
    assert figure.legend[0][0::2] == ("activation=relu", "judged") and len(figure.legend) == 2  # elu is not drawn
    relu, tanh = figure.bands[0]
    assert (relu.style["linestyle"], tanh.style["linestyle"]) == ("-", "--")
    lost = np.array(cells[0].result.arrays["dead_frac"])
    lost[0, 2:] = 1.0  # from its divergence on, every unit of seed 0 counts as lost
    np.testing.assert_array_equal(relu.mid, np.median(lost, axis=0))
    assert figure.diverged == [[("activation=relu", 1, 4)], []]
    assert figure.logreg == [None, None]


def test_the_zoo_layers_figure_draws_each_layers_median(tmp_path):
    figure, cells, _ = _zoo_figure("abs_mean_activation", tmp_path)
    assert isinstance(figure, ZooLayersFigure)
    band = figure.bands[1][0]
    assert list(band.x) == [1, 2]
    np.testing.assert_array_equal(band.mid, np.median(cells[3].result.arrays["layer_abs_mean_act"], axis=0))


def test_the_zoo_slopes_figure_pools_every_units_learned_slope(tmp_path):
    figure, cells, caption = _zoo_figure("slope_shift", tmp_path)
    assert isinstance(figure, ZooSlopesFigure) and "PReLU" in caption
    assert [len(task) for task in figure.slopes] == [2, 1]
    np.testing.assert_array_equal(figure.slopes[0][1][0], cells[1].result.arrays["slopes_final"].ravel())
    assert figure.start == [0.25, 0.25]
