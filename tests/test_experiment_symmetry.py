"""symmetric_init: distinct-unit counting, zero and constant starts, epoch-by-epoch training, figure.

The symmetric-start facts are exact, not statistical: with every weight zero, ReLU and tanh hidden
outputs are exactly 0 and receive exactly zero gradient, so the net's output is its output bias
for every input and its loss can never go below the entropy of the training labels' class
frequencies, ``H = -sum_k p_k log p_k``, the best a constant prediction achieves.
"""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from actlab.claims import figures
from actlab.claims.experiments import EXPERIMENTS, Cell
from actlab.claims.experiments.symmetry import count_distinct, nearest_earlier_gap
from actlab.engine import Seeds
from actlab.engine.datasets import Dataset

EXP = EXPERIMENTS["symmetric_init"]
WIDTH = 6


@pytest.fixture(scope="module")
def data(moons):
    """Moons with 3 of every 4 samples of class 1 dropped: a 4:1 class prior."""
    x, y = moons
    keep = (y[:, 1] == 0) | (np.arange(len(y)) % 4 == 0)
    x, y = x[keep], y[keep]
    return {"moons": Dataset("moons", "classification", x, y, x[:10], y[:10])}


def cell(data, init, activation="relu", n_seeds=3, **extra) -> Cell:
    params = {"dataset": "moons", "depth": 2, "width": WIDTH, "activation": activation, "init": init}
    params = {**params, "epochs": 8, "lr": 0.2, "batch_size": 16, **extra}
    setting = {"init": str(init), "activation": str(activation)}
    result = EXP.run(params, Seeds(n_seeds, key=("test", *setting.values())), data)
    return Cell("cell", setting, params, result)


def test_gap_and_count_on_known_rows():
    w = np.array([[[1.0, 1.0, 2.0, 1.0], [0.0, 0.0, 0.0, 1e-9]]])  # (S=1, fan_in=2, n=4)
    b = np.zeros((1, 1, 4))
    gap = nearest_earlier_gap(w, b)
    # rows (1,0), (1,0), (2,0), (1,1e-9); the largest row norm is 2
    np.testing.assert_allclose(gap, [[np.inf, 0.0, 0.5, 0.5e-9]])
    assert count_distinct(gap, 1e-6).tolist() == [2.0]  # unit 3 equals unit 0 within 1e-6
    assert count_distinct(gap, 1e-12).tolist() == [3.0]
    assert count_distinct(nearest_earlier_gap(np.zeros((2, 3, 5)), np.zeros((2, 1, 5))), 1e-6).tolist() == [1, 1]
    assert np.isnan(count_distinct(np.array([[np.inf, np.nan]]), 1e-6)[0])


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_zero_init_outputs_only_its_bias_and_cannot_beat_the_class_prior(data, activation):
    c = cell(data, "zeros", activation)
    y = data["moons"].y_train
    prior = y.mean(axis=0)
    entropy = -np.sum(prior * np.log(prior))
    loss = c.result.arrays["loss"]
    assert np.all(loss[:, 0] == pytest.approx(np.log(2)))  # zero logits: uniform prediction
    assert np.all(loss[:, -1] >= entropy - 1e-12)  # a constant net cannot do better
    assert np.all(EXP.metric("loss_change", c) < -0.01)  # but the output bias learns the prior
    assert np.all(EXP.metric("max_abs_hidden", c) == 0)  # hidden outputs exactly zero throughout
    assert np.all(EXP.metric("output_spread", c) == 0)  # same output for every input
    assert np.all(EXP.metric("distinct_units", c) == 1)
    assert np.all(EXP.metric("train_accuracy", c) == pytest.approx(prior.max()))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_constant_init_keeps_units_identical_and_random_init_does_not(data, activation):
    const = cell(data, {"name": "constant", "value": 0.3}, activation, n_seeds=4)
    assert np.all(EXP.metric("distinct_units", const) == 1)
    assert np.all(EXP.metric("distinct_units_last_layer", const) == 1)
    assert np.all(EXP.metric("max_abs_hidden", const) > 0)  # the units do compute something
    assert np.all(count_distinct(const.result.arrays["gap1"], 1e-6) == 1)  # at every epoch
    rand = cell(data, "he_normal", activation, n_seeds=4)
    assert np.all(EXP.metric("distinct_units", rand) == WIDTH)
    assert np.all(EXP.metric("loss_change", rand) < 0)


def test_snapshots_have_one_row_per_epoch_and_cells_are_deterministic(data):
    a, b = (cell(data, "he_normal", epochs=3) for _ in range(2))
    assert a.result.arrays["gap0"].shape == (3, 4, WIDTH)
    assert a.result.arrays["loss"].shape == (3, 4)
    assert a.result.arrays["max_abs_hidden"].shape == (3, 4, 2)
    for key in a.result.arrays:
        np.testing.assert_array_equal(a.result.arrays[key], b.result.arrays[key])


def test_divergence_gives_nan_metrics(data):
    c = cell(data, "he_normal", {"name": "leaky_relu", "slope": 0.5}, epochs=2, lr=1e12)
    assert c.result.arrays["diverged"].all()
    for name in EXP.metrics:
        assert np.all(np.isnan(EXP.metric(name, c))), name


def test_schema_rejects_bad_params():
    good = {"dataset": "moons", "depth": 1, "width": 4, "activation": "relu", "init": "zeros"}
    good = {**good, "epochs": 1, "lr": 0.1, "batch_size": 8}
    jsonschema.validate(good, EXP.params_schema)
    EXP.check(good)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "lr": 0}, EXP.params_schema)
    with pytest.raises(ValueError, match="init"):
        EXP.check({**good, "init": "no_such_init"})


def test_figure(data, tmp_path):
    cells = [cell(data, init, act) for init in ("zeros", "he_normal") for act in ("relu", "tanh")]
    caption = figures.draw(
        EXP, {"grid": {"init": ["zeros", "he_normal"]}}, cells, {"conditions": []}, tmp_path / "f.png"
    )
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert "distinct units" in caption


def test_the_figure_ends_its_distinct_unit_curves_at_the_metric(data):
    cells = [cell(data, "zeros"), cell(data, {"name": "constant", "value": 0.3}), cell(data, "he_normal")]
    figure = figures.FIGURES["symmetric_init"].from_verdict(EXP, {}, cells, {"conditions": []})
    assert [band.label for band in figure.distinct] == [
        "zeros, relu",
        "{'name': 'constant', 'value': 0.3}, relu",
        "he_normal, relu",
    ]
    for band, c in zip(figure.distinct, cells, strict=True):
        assert band.mid[-1] == np.median(EXP.metric("distinct_units", c))
    assert list(figure.distinct[0].mid) == [1.0] * 9  # zero weights: one unit, at every epoch
    assert list(figure.hidden[0].hi) == [0.0] * 9
    assert figure.distinct[2].mid[-1] == WIDTH
    assert (figure.width, figure.depth, figure.rtol) == (WIDTH, 2, 1e-6)
