"""born_dead: Lu et al.'s single-input probability, the born-dead event, its limits, RAI, the judge.

Tolerances. A rate over ``S`` independent nets has standard error ``sqrt(p (1 - p) / S) <= 0.5 /
sqrt(S)``; with ``S = 4000`` that is at most 0.008, and the checks against the exact formula allow
0.03 (about four standard errors). The other checks are exact implications or large effects.
"""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from actlab.claims import figures, stats
from actlab.claims.experiments import EXPERIMENTS, Cell, CellResult
from actlab.claims.experiments.born_dead import lu_formula
from actlab.claims.judging import judge
from actlab.engine import Seeds

EXP = EXPERIMENTS["born_dead"]
WIDTHS = [1, 2, 3]


def params(depth: int, **extra) -> dict:
    return {"depth": depth, "widths": WIDTHS, "width": 2, "init": "he_normal", "probe_size": 16, **extra}


def cell(depth: int, n_seeds: int = 400, **extra) -> Cell:
    p = params(depth, **extra)
    result = EXP.run(p, Seeds(n_seeds, key=("test-born-dead", depth, *map(str, extra.values()))), {})
    return Cell(f"depth-{depth}", {"depth": str(depth)}, p, result)


def test_formula_values():
    assert lu_formula(1, 1) == pytest.approx(0.5)
    assert lu_formula(2, 3) == pytest.approx(1 - 0.75**3)
    assert lu_formula(np.array([1, 2]), 0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("bias_init", ["zeros", {"name": "normal", "std": 0.5}])
def test_dead_at_one_input_has_exactly_lu_et_al_probability(bias_init):
    """Symmetric weights and zero or symmetric biases: P(some layer all zero at x) = 1 - (1 - 2^-N)^depth."""
    depth = 4
    c = cell(depth, n_seeds=4000, bias_init=bias_init)
    measured = c.result.arrays["dead_at_one_input"].mean(axis=0)
    np.testing.assert_allclose(measured, lu_formula(np.array(WIDTHS), depth), atol=0.03)
    np.testing.assert_allclose(c.result.info["formula"], lu_formula(np.array(WIDTHS), depth))


def test_born_dead_is_a_constant_net_and_implies_a_dead_layer_at_every_input():
    c = cell(6, n_seeds=1000)
    a = c.result.arrays
    # constant output <=> some hidden layer is constant over the probe inputs (a ReLU layer: all zero)
    np.testing.assert_array_equal(a["born_dead"], a["first_constant_layer"] > 0)
    # dead on the whole probe set implies dead at its first input: the formula is an upper bound
    assert np.all(a["born_dead"] <= a["dead_at_one_input"])
    assert a["born_dead"].mean() < a["dead_at_one_input"].mean()
    assert np.all(a["first_constant_layer"] <= 6)


def test_a_single_bias_free_layer_on_one_input_dimension_is_never_dead():
    # u = w x is positive for x > 0 or for x < 0 unless w = 0: the 1-D probe set has both signs
    c = cell(1, n_seeds=500)
    assert c.result.arrays["born_dead"].sum() == 0
    assert np.all(EXP.metric("born_dead", c) == 0)


def test_born_dead_grows_with_depth_and_falls_with_width():
    shallow, deep = cell(2, n_seeds=800), cell(16, n_seeds=800)
    rate_shallow = shallow.result.arrays["born_dead"].mean(axis=0)
    rate_deep = deep.result.arrays["born_dead"].mean(axis=0)
    assert np.all(rate_deep > rate_shallow + 0.2)
    assert rate_deep[0] > 0.95  # width 1, 16 layers: the bound is 1 - 2^-16
    assert np.all(np.diff(rate_deep) < 0)  # wider nets die less often


def test_randomized_asymmetric_init_is_born_dead_less_often():
    c = cell(10, n_seeds=800, contrast_init="randomized_asymmetric", contrast_seeds=600)
    assert EXP.metric("born_dead_contrast", c).shape == (600,)
    assert EXP.metric("born_dead_contrast", c).mean() < EXP.metric("born_dead", c).mean() - 0.2


def test_leaky_units_never_make_a_constant_net():
    c = cell(20, n_seeds=300, activation={"name": "leaky_relu", "slope": 0.1})
    assert c.result.arrays["born_dead"].sum() == 0


def test_metrics_pick_the_judged_width_and_subtract_the_formula():
    c = cell(5, n_seeds=300)
    column = WIDTHS.index(2)
    np.testing.assert_array_equal(EXP.metric("born_dead", c), c.result.arrays["born_dead"][:, column])
    np.testing.assert_allclose(EXP.metric("born_dead_minus_formula", c), EXP.metric("born_dead", c) - lu_formula(2, 5))
    with pytest.raises(KeyError):
        EXP.metric("no_such_metric", c)


def test_runs_are_reproducible():
    first, second = cell(3, n_seeds=50), cell(3, n_seeds=50)
    for key, value in first.result.arrays.items():
        np.testing.assert_array_equal(value, second.result.arrays[key])


def test_schema_and_check_reject_bad_params():
    jsonschema.validate(params(3), EXP.params_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(params(0), EXP.params_schema)
    with pytest.raises(ValueError, match="width"):
        EXP.check({**params(3), "width": 7})
    with pytest.raises(ValueError, match="contrast_init"):
        EXP.check({**params(3), "contrast_init": "no_such_init"})


def test_judge_splits_by_depth_into_a_mixed_verdict(tmp_path, preregistered):
    cells = [cell(d, n_seeds=300) for d in (1, 20)]
    claim = {
        "id": "born-dead-test",
        "statement": "deep narrow nets are born dead",
        "source_files": ["x"],
        "experiment": "born_dead",
        "seeds": 300,
        "grid": {"depth": [1, 20]},
        "decision": preregistered(
            {"metric": "born_dead", "split_by": ["depth"], "compare": ">", "threshold": 0.9, "headline": {"depth": 20}}
        ),
    }
    verdict = judge(claim, cells, EXP, 0)
    assert verdict["verdict"] == "mixed"
    assert [c["verdict"] for c in verdict["conditions"]] == ["refuted", "supported"]
    assert verdict["headline_condition"] == "depth=20"
    caption = figures.draw(EXP, claim, cells, verdict, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0 and "1 - (1 - 2^-N)^depth" in caption


def test_the_figure_shows_every_depth_and_width_with_exact_binomial_intervals(tmp_path):
    rng = np.random.default_rng(0)

    def stored(depth: int) -> Cell:
        arrays = {
            "widths": np.array(WIDTHS),
            "born_dead": rng.random((40, len(WIDTHS))) < 0.3 * depth,
            "born_dead_contrast": rng.random((10, len(WIDTHS))) < 0.1,
        }
        p = params(depth, contrast_init="randomized_asymmetric")
        return Cell(f"depth-{depth}", {"depth": str(depth)}, p, CellResult(arrays, {}))

    cells = [stored(3), stored(1)]
    claim = {"decision": {"threshold": 0.9}}
    figure = figures.FIGURES["born_dead"].from_verdict(EXP, claim, cells, {"conditions": []})
    assert list(figure.depths) == [1, 3] and figure.counts == {"measured": 40, "contrast": 10}
    np.testing.assert_array_equal(figure.maps["measured"][:, 1], cells[0].result.arrays["born_dead"].mean(axis=0))
    np.testing.assert_array_equal(figure.maps["contrast"][:, 0], cells[1].result.arrays["born_dead_contrast"].mean(0))
    np.testing.assert_array_equal(figure.maps["formula"], lu_formula(np.array(WIDTHS)[:, None], np.array([[1, 3]])))
    dead = cells[0].result.arrays["born_dead"][:, 2].astype(float)  # depth 3, width 3
    rate = figure.rates[2]
    assert rate.label == "N = 3" and rate.binary and rate.mean[1] == dead.mean()
    assert (rate.lo[1], rate.hi[1]) == stats.interval(dead, binary=True)
    caption = figures.draw(EXP, claim, cells, {"conditions": []}, tmp_path / "f.png")
    assert "measured with randomized_asymmetric (Lu et al.'s remedy)" in caption
    assert (tmp_path / "f.png").stat().st_size > 10_000
