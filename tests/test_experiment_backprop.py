"""backprop_check: the engine's gradient, the hand-written recurrence, tanh' from the output, timing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actlab.claims import figures
from actlab.claims.experiments import EXPERIMENTS, Cell
from actlab.claims.experiments.backprop import TIMED, near_kink, source_derivative, time_tanh_derivative
from actlab.claims.figures import FIGURES
from actlab.engine import Seeds, get_activation

EXP = EXPERIMENTS["backprop_check"]
TINY = {"n_inputs": 3, "hidden": [4, 5], "n_outputs": 3, "batch_size": 6}


def run(activations, n_seeds=2, cell_id="c", **extra):
    params = {"activations": activations, **TINY, **extra}
    return Cell(cell_id, {"activation": "x"}, params, EXP.run(params, Seeds(n_seeds, key=("test", "backprop")), {}))


def test_engine_and_recurrence_agree_for_tanh_relu_and_a_learnable_slope():
    c = run(["tanh", "relu", "prelu", "swish"])
    assert c.result.arrays["max_rel_error"].shape == (2, 4)
    assert np.all(EXP.metric("max_rel_error", c) < 1e-6)
    # the source's slopes 1 - a^2 and where(a > 0, 1, 0) reproduce the engine's deltas to rounding
    assert np.all(c.result.arrays["recurrence_error"][:, :2] < 1e-13)
    assert np.all(EXP.metric("recurrence_error", c) < 1e-6)
    assert np.all(EXP.metric("tanh_trick_error", c) < 1e-14)
    assert np.all(EXP.metric("worst_error", c) < 1e-6)


def test_necro_relu_is_caught_as_a_backward_that_is_not_the_gradient():
    c = run(["necro_relu"])
    assert np.all(EXP.metric("max_rel_error", c) > 1e-2)
    assert np.all(EXP.metric("recurrence_error", c) > 1e-2)
    assert np.all(np.isnan(EXP.metric("tanh_trick_error", c)))
    assert np.all(EXP.metric("worst_error", c) > 1e-2)


def test_source_derivatives_from_the_output():
    z = np.linspace(-3, 3, 13)
    tanh, relu, sigmoid = (get_activation(n) for n in ("tanh", "relu", "sigmoid"))
    np.testing.assert_allclose(source_derivative(tanh, z, np.tanh(z), 1e-6), 1 / np.cosh(z) ** 2, atol=1e-15)
    assert source_derivative(relu, z, relu.forward(z), 1e-6).tolist() == (z > 0).astype(int).tolist()
    a = sigmoid.forward(z)
    np.testing.assert_allclose(source_derivative(sigmoid, z, a, 1e-6), a * (1 - a), atol=1e-9)


def test_near_kink_flags_only_seeds_with_a_pre_activation_at_a_kink():
    z = np.array([[[0.5, -1.0]], [[1e-6, 2.0]]])  # seed 1 has z = 1e-6, next to ReLU's kink
    assert near_kink(get_activation("relu"), z, 2e-5).tolist() == [False, True]
    assert near_kink(get_activation("tanh"), z, 2e-5).tolist() == [False, False]


def test_timing_forms_compute_the_same_values_and_stay_out_of_the_arrays():
    z = np.random.default_rng(0).normal(0, 2, 1000)
    for expr in TIMED.values():
        names = {"np": np, "z": z, "a": np.tanh(z), "buf": np.empty_like(z)}
        exec(expr, names)
        np.testing.assert_allclose(names["buf"], 1 - np.tanh(z) ** 2, atol=1e-15)
    timing = time_tanh_derivative(z, repeats=2)
    assert set(timing["median_seconds_per_element"]) == set(TIMED) and timing["ratio_cosh_over_output"] > 0
    first = run(["tanh"], timing_size=1000, timing_repeats=2)
    second = run(["tanh"], timing_size=1000, timing_repeats=2)
    assert "timing" in first.result.info and "timing" not in run(["relu"], timing_size=1000).result.info
    for key, value in first.result.arrays.items():
        np.testing.assert_array_equal(value, second.result.arrays[key])
    strip = {k: v for k, v in first.result.info.items() if k != "timing"}
    assert json.dumps(strip) == json.dumps({k: v for k, v in second.result.info.items() if k != "timing"})


def test_check_rejects_composites_and_unknown_names():
    EXP.check({"activations": ["tanh"], **TINY})
    with pytest.raises(ValueError, match="composite"):
        EXP.check({"activations": [{"name": "scaled", "base": "tanh", "gain": 2.0}]})
    with pytest.raises(ValueError, match="activations\\[0\\]"):
        EXP.check({"activations": ["no_such_unit"]})


def _checked_cells():
    return [
        run(["tanh", "relu"], cell_id="judged", timing_size=1000, timing_repeats=2),
        run(["necro_relu"], cell_id="control"),
    ]


VERDICT = {"conditions": [{"role": "judged", "cells": ["judged"]}, {"role": "control", "cells": ["control"]}]}


def test_figure_writes_a_png(tmp_path):
    claim = {"decision": {"threshold": 2e-7}}
    caption = figures.draw(EXP, claim, _checked_cells(), VERDICT, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert "NecroReLU" in caption and "the claimed 2e-07" in caption


def test_the_figure_shades_the_columns_the_verdict_did_not_judge():
    cells = _checked_cells()
    figure = FIGURES["backprop_check"].from_verdict(EXP, {"decision": {"threshold": 1e-6}}, cells, VERDICT)
    assert figure.names == ["tanh", "relu", "necro_relu"] and figure.shaded == [False, False, True]
    necro = cells[1].result.arrays["max_rel_error"][:, 0]
    assert figure.errors[2]["max_rel_error"].tolist() == necro.tolist() and necro.min() > 1e-6
    assert figure.errors[1]["tanh_trick_error"].size == 0  # undefined for ReLU: no point
    timing = cells[0].result.info["timing"]
    assert figure.timing.medians == [timing["median_seconds_per_element"][k] * 1e9 for k in TIMED]
