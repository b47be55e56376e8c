"""Figures are computed, then drawn: the values they show come from the verdict and the one
interval function, and drawing them computes nothing."""

from __future__ import annotations

import numpy as np

from actlab.claims import stats
from actlab.claims.experiments import EXPERIMENTS
from actlab.claims.experiments.base import Cell, CellResult
from actlab.claims.figures import FIGURES, draw
from actlab.claims.figures.base import Band, Points, mean_interval


def test_every_experiment_type_has_one_figure():
    assert set(FIGURES) == set(EXPERIMENTS)


def test_points_carry_the_interval_the_verdicts_use():
    rng = np.random.default_rng(0)
    values = [rng.normal(size=12), np.r_[rng.normal(size=8), np.nan, np.inf]]
    points = Points.over_seeds([1, 2], values, "x")
    for i, v in enumerate(values):
        finite = v[np.isfinite(v)]
        assert points.mean[i] == finite.mean()
        assert (points.lo[i], points.hi[i]) == stats.interval(finite, binary=False)
    outcomes = Points.over_seeds([0], [np.array([1, 0, 1, 1.0])], "y", binary=True)
    assert (outcomes.lo[0], outcomes.hi[0]) == stats.interval(np.array([1, 0, 1, 1.0]), binary=True)
    assert np.isnan(mean_interval([np.nan, np.inf])).all()


def test_a_band_drops_the_positions_where_no_seed_is_finite():
    values = np.array([[1.0, np.nan, 3.0, 4.0], [2.0, np.nan, np.nan, 8.0]])
    band = Band.over_seeds(np.arange(4), values, "loss", color="k")
    assert list(band.x) == [0, 2, 3]
    np.testing.assert_allclose(band.mid, [1.5, 3.0, 6.0])
    np.testing.assert_allclose(band.lo, [1.25, 3.0, 5.0])
    assert band.style == {"color": "k"}
    assert Band.over_seeds(np.arange(2), np.full((3, 2), np.nan), "none").mid.size == 0
    by_cell = Band.over_seeds([0.1, 1.0], [np.array([1.0, 2.0, 3.0]), np.array([5.0, 7.0])], "cells of 3 and 2 seeds")
    np.testing.assert_allclose(by_cell.mid, [2.0, 6.0])


def _cost_cell(cell_id: str, activation: str, ratio: np.ndarray) -> Cell:
    arrays = {"seconds_per_element": ratio * 1e-9, "reference_seconds_per_element": np.full(len(ratio), 1e-9)}
    params = {"activation": activation, "size": 1000, "dtype": "float64"}
    return Cell(
        cell_id,
        {"activation": activation},
        params,
        CellResult(arrays, {"machine": {"cpu": "c", "numpy": "2", "blas": "b"}}),
    )


def test_the_cost_figure_shows_the_cells_the_verdict_measured_in_their_roles(tmp_path):
    cost = EXPERIMENTS["activation_cost"]
    cells = [
        _cost_cell("a", "gelu", np.array([2.0, 2.2, 1.9, 2.1])),
        _cost_cell("b", "identity", np.array([0.5, 0.4, 0.6, 0.5])),
        _cost_cell("unused", "tanh", np.array([1.0, 1.0, 1.0, 1.0])),
    ]
    verdict = {
        "conditions": [{"role": "judged", "cells": ["a"]}, {"role": "control", "cells": ["b"]}],
    }
    figure = FIGURES["activation_cost"].from_verdict(cost, {}, cells, verdict)
    assert figure.labels == ["gelu", "identity"]  # the cell no condition used is not drawn
    role, mean, lo, hi = figure.ratios[0, 0]
    assert role == "judged" and mean == np.mean([2.0, 2.2, 1.9, 2.1])
    assert (lo, hi) == stats.interval(np.array([2.0, 2.2, 1.9, 2.1]), binary=False)
    assert figure.ratios[0, 1][0] == "control"
    caption = draw(cost, {}, cells, verdict, tmp_path / "f.png")
    assert "Measured on c" in caption and (tmp_path / "f.png").stat().st_size > 5_000


def _gradient_cell(label: str, activation, depth: int, rng: np.random.Generator) -> Cell:
    norms = {key: rng.lognormal(size=(6, 2, depth + 1)) for key in ("grad_norm", "delta_norm")}
    params = {"depth": depth, "activation": activation}
    return Cell(f"{label}-{depth}", {"gain": label, "depth": str(depth)}, params, CellResult(norms, {}))


def test_the_gradient_flow_figure_shows_the_ratios_of_the_norm_the_rule_reads(tmp_path):
    flow = EXPERIMENTS["gradient_flow"]
    rng = np.random.default_rng(1)
    scaled = {"name": "scaled", "base": "tanh", "gain": 1.5}
    cells = [_gradient_cell(label, act, d, rng) for label, act in (("1.5", scaled), ("tanh", "tanh")) for d in (3, 2)]
    claim = {"grid": {"gain": ["1.5", "tanh"], "depth": [2, 3]}, "decision": {"metric": "signed_log10_delta_factor"}}
    figure = FIGURES["gradient_flow"].from_verdict(flow, claim, cells, {"conditions": []})
    assert [b.label for b in figure.at_init] == ["1.5", "tanh"]  # the deepest nets only
    trained = np.log10(cells[2].result.arrays["grad_norm"][:, -1])
    np.testing.assert_allclose(figure.trained[1].mid, np.median(trained, axis=0))
    points = figure.ratios[0]
    assert list(points.x) == [2, 3] and points.label == "1.5"
    delta = cells[0].result.arrays["delta_norm"][:, 0]  # depth 3: the delta norms, not the weight gradients
    ratio = np.log10(delta[:, 0] / delta[:, 2])
    assert points.mean[1] == ratio.mean() and (points.lo[1], points.hi[1]) == stats.interval(ratio, binary=False)
    np.testing.assert_allclose(figure.gain_lines[0], [np.log10(1.5), 2 * np.log10(1.5)])
    assert figure.gain_lines[1] is None and figure.gain_grid
    caption = draw(flow, claim, cells, {"conditions": []}, tmp_path / "f.png")
    assert "first-over-last" in caption and (tmp_path / "f.png").stat().st_size > 10_000
