"""init_variance: He et al.'s forward-variance recursion, matched vs mismatched init, metrics, judge.

Tolerances. With zero biases a (leaky) ReLU layer multiplies the hidden outputs' variance by
``r = n sigma_w^2 (1 + a^2) / 2`` on average; at width ``n`` each layer's factor fluctuates by
about ``sqrt(5 / n)`` (relative), so over ``L - 1`` layers the seed mean of ``log10`` ratios has a
standard error near ``0.43 sqrt(5 (L - 1) / n / S)`` (0.06 for ``n = 128, L = 12, S = 8``) plus a
Jensen bias of about ``-0.43 * 5 (L - 1) / (2 n)`` (-0.09). The tolerances below are 0.35 decade,
several standard errors, while the effects tested are 1 to 3.3 decades.
"""

from __future__ import annotations

import math

import jsonschema
import numpy as np
import pytest

from actlab.claims import figures, stats
from actlab.claims.experiments import EXPERIMENTS, Cell, CellResult
from actlab.claims.figures.init_variance import _variance_factor
from actlab.claims.judging import judge
from actlab.engine import Seeds
from actlab.engine.datasets import Dataset

EXP = EXPERIMENTS["init_variance"]
DEPTH, WIDTH = 12, 128
LEAKY = {"name": "leaky_relu", "slope": 0.5}
PAIRS = {
    "relu": {"activation": "relu", "matched": "he_normal", "mismatched": "glorot_normal"},
    "leaky0.5": {"activation": LEAKY, "matched": {"name": "he_normal", "slope": 0.5}, "mismatched": "he_normal"},
}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    y = np.eye(3)[labels]
    return {"toy": Dataset("toy", "classification", x[:200], y[:200], x[200:], y[200:])}


def params(pair: str, init: str, **extra) -> dict:
    base = {"dataset": "toy", "depth": DEPTH, "width": WIDTH, "init": init, "epochs": 0, "lr": 0.01}
    return {**base, "batch_size": 50, "probe_size": 200, **PAIRS[pair], **extra}


def cell(data, pair: str, init: str, n_seeds: int = 8, **extra) -> Cell:
    p = params(pair, init, **extra)
    result = EXP.run(p, Seeds(n_seeds, key=("test", pair, init)), data)
    return Cell(f"pair-{pair}_init-{init}", {"pair": pair, "init": init}, p, result)


@pytest.fixture(scope="module")
def cells(data):
    return [cell(data, pair, init) for pair in PAIRS for init in ("matched", "mismatched")]


def by_id(cells, pair, init):
    return next(c for c in cells if c.setting == {"pair": pair, "init": init})


@pytest.mark.parametrize(
    ("pair", "init", "per_layer"),
    [
        ("relu", "matched", 1.0),  # He: n (2 / n) / 2
        ("relu", "mismatched", 0.5),  # Glorot on square layers: n (1 / n) / 2
        ("leaky0.5", "matched", 1.0),  # He with the leaky gain
        ("leaky0.5", "mismatched", 1.25),  # ReLU's gain on a slope-0.5 unit: 1 + a^2
    ],
)
def test_log_variance_ratio_follows_he_et_al(cells, pair, init, per_layer):
    c = by_id(cells, pair, init)
    assert _variance_factor(c) == pytest.approx(per_layer, rel=0.02)
    expected = (DEPTH - 1) * math.log10(per_layer)
    assert np.mean(EXP.metric("log10_var_ratio", c)) == pytest.approx(expected, abs=0.35)
    np.testing.assert_allclose(EXP.metric("abs_log10_var_ratio", c), np.abs(EXP.metric("log10_var_ratio", c)))


def test_the_cell_uses_the_initializer_its_init_axis_names(cells):
    assert by_id(cells, "relu", "mismatched").result.info["init_used"] == {"name": "glorot_normal", "gain": 1.0}
    assert by_id(cells, "leaky0.5", "matched").result.info["init_used"] == {"name": "he_normal", "slope": 0.5}


def test_judge_contrasts_mismatched_with_matched_per_pair(cells, preregistered):
    claim = {
        "id": "toy",
        "statement": "init must match the activation",
        "source_files": ["000"],
        "experiment": "init_variance",
        "seeds": 8,
        "grid": {"pair": list(PAIRS), "init": ["matched", "mismatched"]},
        "decision": preregistered(
            {
                "metric": "abs_log10_var_ratio",
                "contrast": {"over": "init", "treatment": "mismatched", "baseline": "matched"},
                "split_by": ["pair"],
                "compare": ">",
                "threshold": 1.0,
                "headline": {"pair": "relu"},
            }
        ),
    }
    verdict = judge(claim, cells, EXP, 0)
    conditions = {c["condition"]: c for c in verdict["conditions"]}
    relu = conditions["pair=relu, init=mismatched vs matched"]
    assert relu["verdict"] == "supported" and relu["estimate"] > 2.5  # theory: 11 log10 2 = 3.3
    assert verdict["headline_condition"] == relu["condition"] and verdict["estimate"] == relu["estimate"]
    assert conditions["pair=leaky0.5, init=mismatched vs matched"]["estimate"] > 0.5  # theory: 1.07


def test_metrics_on_known_arrays_and_nan_for_diverged_seeds():
    arrays = {
        "act_var": np.array([[[1.0, 0.5, 1e-3]], [[2.0, 4.0, 2e3]]]),  # (S=2, P=1, L=3)
        "probe_loss": np.array([[2.0, 1.5], [2.0, np.nan]]),
        "probe_accuracy": np.array([[0.1, 0.6], [0.1, np.nan]]),
        "loss": np.array([[1.8], [np.nan]]),
        "fan_in_w2": np.ones((2, 4)),
        "diverged": np.array([False, True]),
    }
    c = Cell("c", {}, {"depth": 3}, CellResult(arrays, {}))
    np.testing.assert_allclose(EXP.metric("log10_var_ratio", c), [-3.0, 3.0])
    np.testing.assert_allclose(EXP.metric("abs_log10_var_ratio", c), [3.0, 3.0])
    np.testing.assert_allclose(EXP.metric("loss_drop", c), [0.25, np.nan])
    np.testing.assert_allclose(EXP.metric("train_accuracy", c), [0.6, np.nan])
    np.testing.assert_allclose(EXP.metric("diverged", c), [0.0, 1.0])
    with pytest.raises(KeyError):
        EXP.metric("no_such_metric", c)


def test_training_learns_and_divergence_is_recorded_not_raised(data):
    learned = cell(data, "leaky0.5", "matched", n_seeds=3, depth=3, width=32, epochs=5, lr=0.05)
    assert np.all(EXP.metric("loss_drop", learned) > 0.2)
    assert np.all(EXP.metric("train_accuracy", learned) > 0.6)
    blown = cell(data, "leaky0.5", "mismatched", n_seeds=3, depth=3, width=32, epochs=2, lr=1e6)
    assert np.all(EXP.metric("diverged", blown) == 1)
    assert np.all(np.isnan(EXP.metric("train_accuracy", blown)))
    assert np.all(np.isfinite(EXP.metric("abs_log10_var_ratio", blown)))  # measured before training


def test_cells_are_deterministic(data):
    a, b = (cell(data, "relu", "matched", n_seeds=2, depth=3, width=8, epochs=1) for _ in range(2))
    assert a.result.arrays.keys() == b.result.arrays.keys()
    for key in a.result.arrays:
        np.testing.assert_array_equal(a.result.arrays[key], b.result.arrays[key])
    assert a.result.info == b.result.info


def test_schema_and_check_name_the_bad_key():
    good = params("relu", "matched")
    jsonschema.validate(good, EXP.params_schema)
    EXP.check(good)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "init": "he_normal"}, EXP.params_schema)  # init names matched/mismatched
    with pytest.raises(ValueError, match="mismatched"):
        EXP.check({**good, "mismatched": "no_such_init"})
    with pytest.raises(ValueError, match="activation"):
        EXP.check({**good, "activation": "no_such_activation"})


def test_figure_draws_every_pair(cells, tmp_path):
    claim = {"grid": {"pair": list(PAIRS), "init": ["matched", "mismatched"]}}
    caption = figures.draw(EXP, claim, cells, {"conditions": []}, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    assert f"{DEPTH} hidden layers" in caption


def test_the_accuracy_bars_are_the_metric_s_mean_and_interval(cells):
    claim = {"grid": {"pair": list(PAIRS), "init": ["matched", "mismatched"]}}
    shown = [c for c in cells if c.setting != {"pair": "relu", "init": "mismatched"}]
    figure = figures.FIGURES["init_variance"].from_verdict(EXP, claim, shown, {"conditions": []})
    assert figure.labels == ["relu", "leaky0.5"]
    matched, mismatched = figure.accuracy
    assert (matched.label, mismatched.label) == ("matched", "mismatched")
    accuracy = EXP.metric("train_accuracy", by_id(cells, "leaky0.5", "mismatched"))
    assert mismatched.mean[1] == accuracy.mean()
    assert (mismatched.lo[1], mismatched.hi[1]) == stats.interval(accuracy, binary=False)
    assert np.isnan(mismatched.mean[0])  # the relu series has no mismatched cell
    assert [band.label for band in figure.training] == ["relu, matched", "leaky0.5, matched", "leaky0.5, mismatched"]
    _, (layers, theory) = figure.variance[2]
    assert theory[-1] == pytest.approx((DEPTH - 1) * math.log10(_variance_factor(shown[2])))
