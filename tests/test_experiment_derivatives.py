"""derivative_bounds: known extrema of activation derivatives, kinks, the bound_error metric, the figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from actlab.claims import figures
from actlab.claims.experiments import EXPERIMENTS, Cell
from actlab.claims.experiments.derivatives import kink_mask, measure, zoo
from actlab.claims.figures import FIGURES
from actlab.claims.figures.derivatives import ROW_COLORS
from actlab.engine import ACTIVATIONS, Seeds

EXP = EXPERIMENTS["derivative_bounds"]
SMALL = {"z_range": 5.0, "grid_step": 1e-3, "fd_step": 1e-6, "plot_range": 4.0}


def small(spec):
    return measure(spec, SMALL["z_range"], SMALL["grid_step"], SMALL["fd_step"], SMALL["plot_range"])


def cell(params: dict, n_seeds: int = 1, cell_id: str = "c", setting: dict | None = None) -> Cell:
    params = {**SMALL, **params}
    return Cell(cell_id, setting or {}, params, EXP.run(params, Seeds(n_seeds, key=("test",)), {}))


def test_zoo_is_every_registered_activation_but_the_composites():
    assert set(zoo()) == set(ACTIVATIONS) - {"mixed", "scaled"}
    assert {"sigmoid", "tanh", "relu", "necro_relu", "hard_swish"} <= set(zoo())


@pytest.mark.parametrize(
    ("name", "maximum", "where"),
    [
        ("sigmoid", 0.25, 0.0),
        ("centered_sigmoid", 0.25, 0.0),
        ("tanh", 1.0, 0.0),
        # gelu'' = phi(z) (2 - z^2) vanishes at sqrt(2)
        ("gelu", special.ndtr(math.sqrt(2)) + math.sqrt(2) * math.exp(-1) / math.sqrt(2 * math.pi), math.sqrt(2)),
    ],
)
def test_smooth_maxima_match_closed_forms_both_ways(name, maximum, where):
    r = small(name)
    assert r["max_numeric"] == pytest.approx(maximum, abs=1e-9)
    assert r["max_analytic"] == pytest.approx(maximum, abs=1e-12)
    assert r["argmax_lo"] == pytest.approx(where, abs=1e-3)
    assert r["kinks"] == []


def test_swish_maximum_solves_its_stationarity_condition():
    r = small("swish")
    # swish'(z) = s (1 + z (1 - s)); the maximiser z* solves 2 = z* tanh(z*/2), z* ~ 2.3994
    z_star = r["argmax_lo"]
    assert z_star * math.tanh(z_star / 2) == pytest.approx(2.0, abs=5e-3)
    assert r["max_numeric"] == pytest.approx(1.0998393, abs=1e-7)


def test_relu_derivative_takes_only_zero_and_one_with_a_kink_at_zero():
    r = small("relu")
    assert r["max_numeric"] == 1.0 and r["min_numeric"] == 0.0
    assert set(np.unique(r["values_analytic"])) == {0.0, 1.0}
    assert np.max(np.minimum(np.abs(r["values_numeric"]), np.abs(r["values_numeric"] - 1))) < 1e-9
    [(z, left, right)] = r["kinks"]
    assert z == pytest.approx(0.0, abs=1e-12)
    assert (left, right) == pytest.approx((0.0, 1.0), abs=1e-9)


def test_suprema_approached_at_kinks():
    hard = small("hard_swish")
    assert hard["max_analytic"] == pytest.approx(1.5, abs=1e-6)  # (2z + 3) / 6 as z -> 3 from below
    assert [k[0] for k in hard["kinks"]] == pytest.approx([-3.0, 3.0], abs=1e-9)
    selu = small("selu")
    assert selu["max_analytic"] == pytest.approx(1.0507009873554805 * 1.6732632423543772, abs=1e-6)


def test_kink_test_separates_kinks_from_smooth_points():
    z = np.array([-1.0, 0.0, 1e-7, 2.0])
    assert kink_mask(ACTIVATIONS["relu"]().forward, z, 1e-5).tolist() == [False, True, True, False]
    # ELU (alpha = 1) is C^1 at 0: its second derivative jumps, its first does not
    assert not kink_mask(ACTIVATIONS["elu"]().forward, z, 1e-5).any()


def test_necro_relu_backward_differs_from_the_derivative_of_its_forward():
    r = small("necro_relu")
    assert r["gap"] == pytest.approx(0.1, abs=1e-9)
    assert r["min_numeric"] == 0.0 and r["min_analytic"] == pytest.approx(0.1)


def test_bound_error_is_small_for_a_true_claim_and_large_for_a_false_one():
    true = cell({"activations": ["sigmoid"], "claimed_max": 0.25}, n_seeds=3)
    values = EXP.metric("bound_error", true)
    assert values.shape == (3,) and np.all(values < 1e-9)
    false = cell({"activations": ["sigmoid"], "claimed_max": 0.3})
    assert EXP.metric("bound_error", false)[0] == pytest.approx(0.05, abs=1e-9)
    # leaky ReLU's derivative 0.01 is not in ReLU's claimed value set {0, 1}
    leaky = cell({"activations": ["leaky_relu"], "claimed_values": [0.0, 1.0]})
    assert EXP.metric("bound_error", leaky)[0] == pytest.approx(0.01, abs=1e-9)
    assert np.isnan(EXP.metric("bound_error", cell({"activations": ["tanh"]}))[0])


def test_check_rejects_bad_parameters():
    EXP.check({"activations": "zoo"})
    with pytest.raises(ValueError, match="activations\\[1\\]"):
        EXP.check({"activations": ["relu", "no_such_unit"]})
    with pytest.raises(ValueError, match="fd_step"):
        EXP.check({"activations": ["relu"], "fd_step": 1e-4})


def test_figure_writes_a_png(tmp_path):
    cells = [
        cell({"activations": ["sigmoid"], "claimed_max": 0.25}),
        cell({"activations": ["relu", "hard_swish"]}),
    ]
    claim = {"decision": {"threshold": 1e-6}}
    caption = figures.draw(EXP, claim, cells, {"conditions": []}, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert "central differences" in caption


def test_the_table_colours_a_claim_by_its_condition_s_verdict():
    """Green or red is the verdict of the condition measured on the claiming cell, not a new comparison;
    a negative control's wrong bound on the same activation gets its own row and line."""
    cells = [
        cell({"activations": ["sigmoid"], "claimed_max": 0.25}, cell_id="true"),
        cell({"activations": ["tanh"], "claimed_max": 0.5}, cell_id="wrong"),
        cell({"activations": ["relu"], "claimed_max": 1.0}, cell_id="unjudged"),
        cell({"activations": ["relu", "hard_swish"]}, cell_id="zoo"),
        cell({"activations": ["sigmoid"], "claimed_max": 0.2}, cell_id="control", setting={"activation": "bad"}),
    ]
    verdict = {
        "conditions": [
            {"role": "judged", "cells": ["true"], "verdict": "verified"},
            {"role": "judged", "cells": ["wrong"], "verdict": "violated"},
            {"role": "control", "cells": ["control"], "verdict": "violated"},
        ]
    }
    figure = FIGURES["derivative_bounds"].from_verdict(EXP, {"decision": {"threshold": 1e-6}}, cells, verdict)
    assert [r[0] for r in figure.rows] == ["sigmoid", "sigmoid (bad) [control]", "tanh", "relu", "hard_swish"]
    violated, verified = ROW_COLORS["violated"], ROW_COLORS["verified"]
    assert figure.row_colors == [verified, violated, violated, "white", "white"]
    assert figure.rows[0][-2] == "max = 0.25" and figure.rows[1][-2] == "max = 0.2"
    assert figure.rows[2][-2:] == ["max = 0.5", f"{EXP.metric('bound_error', cells[1])[0]:.2g}"]
    assert figure.rows[4][-2:] == ["", ""]
    assert [p.claimed_max for p in figure.panels] == [
        [(0.25, "judged"), (0.2, "control")],
        [(0.5, "judged")],
        [(1.0, "judged")],
        [],
    ]
