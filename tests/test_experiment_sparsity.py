"""sparsity: exact zeros at init, the L1 penalty's effect, rank correlations over a family, the judge.

Facts tested. With zero biases and symmetric weights the first hidden layer's expected fraction of
exact zeros is 1/2 on any inputs; one network's fraction over ``B`` inputs and ``n`` units has a
seed-to-seed spread that shrinks with ``n``. A positive bias of 0.1 with weights of order 0.05 gives
deeper layers exactly no zeros (their inputs are tiny and non-negative, so ``z ~ 0.1 > 0``).
Tolerances: the mean over 64 nets of a first-layer fraction with standard deviation below 0.1
has a standard error below 0.0125; the test allows 0.04.
"""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr

from actlab.claims import figures, stats
from actlab.claims.experiments import EXPERIMENTS, Cell, CellResult
from actlab.claims.experiments.sparsity import rank_rows, spearman_rows, stratified_spearman
from actlab.claims.judging import judge
from actlab.engine import Seeds
from actlab.engine.datasets import Dataset

INIT = EXPERIMENTS["init_sparsity"]
L1 = EXPERIMENTS["l1_sparsity"]
FAMILY = EXPERIMENTS["sparsity_family"]
TRAIN = {"dataset": "toy", "depth": 2, "init": "he_normal", "epochs": 8, "lr": 0.1, "batch_size": 32}


@pytest.fixture(scope="module")
def data():
    """Non-negative, correlated 'pixels' (like digits) with a 3-class label from two of them."""
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(400, 12)) + 0.5)
    labels = (x[:, 0] > x[:, 1]).astype(int) + (x[:, 2] > 1.0)
    y = np.eye(3)[labels]
    return {"toy": Dataset("toy", "classification", x[:300], y[:300], x[300:], y[300:])}


def run(exp, data, params, n_seeds, label="cell") -> Cell:
    result = exp.run(params, Seeds(n_seeds, key=("test-sparsity", exp.name, label)), data)
    return Cell(label, {}, params, result)


def test_ranks_and_spearman_match_scipy_with_ties():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=(30, 6)).astype(float)
    y = rng.normal(size=(30, 6))
    np.testing.assert_allclose(rank_rows(x), rankdata(x, axis=1))
    expected = [spearmanr(a, b).statistic for a, b in zip(x, y, strict=True)]
    np.testing.assert_allclose(spearman_rows(x, y), expected, atol=1e-12)
    assert spearman_rows([[1, 2, 3]], [[3, 2, 1]]).tolist() == [-1.0]


def test_spearman_is_nan_for_a_diverged_member_or_a_constant_variable():
    rho = spearman_rows([[1, 2, 3], [1, np.nan, 3], [1, 1, 1]], [[1, 2, 3], [1, 2, 3], [1, 2, 3]])
    assert rho[0] == 1.0 and np.isnan(rho[1]) and np.isnan(rho[2])


def test_stratified_correlation_separates_within_from_between_strata():
    """Simpson's paradox: negative inside each stratum, positive when the strata are pooled."""
    x = np.array([[0.0, 1.0, 2.0, 10.0, 11.0, 12.0]])
    y = np.array([[2.0, 1.0, 0.0, 12.0, 11.0, 10.0]])
    strata = [np.arange(6) < 3, np.arange(6) >= 3]
    assert stratified_spearman(x, y, strata).tolist() == [-1.0]
    assert stratified_spearman(x, y, [np.ones(6, bool)])[0] > 0.4


def test_symmetric_init_gives_half_zeros_in_expectation_and_less_spread_when_wide(data, tmp_path):
    base = {"dataset": "toy", "depth": 3, "init": {"name": "uniform", "limit": 0.05}, "probe_size": 200}
    narrow = run(INIT, data, {**base, "width": 4}, 64, "narrow")
    wide = run(INIT, data, {**base, "width": 128}, 64, "wide")
    for c in (narrow, wide):
        assert c.result.arrays["zero_frac"].shape == (64, 3)
        assert np.mean(c.result.arrays["zero_frac"][:, 0]) == pytest.approx(0.5, abs=0.04)
        assert np.mean(c.result.arrays["zero_frac_standardized"][:, 0]) == pytest.approx(0.5, abs=0.04)
    assert np.mean(INIT.metric("abs_dev_from_half", narrow)) > 2 * np.mean(INIT.metric("abs_dev_from_half", wide))
    assert np.mean(INIT.metric("abs_dev_from_half", wide)) < 0.05
    np.testing.assert_allclose(
        INIT.metric("abs_dev_first_layer", wide), np.abs(wide.result.arrays["zero_frac"][:, 0] - 0.5)
    )
    claim = {"grid": {"init": ["uniform"], "width": [4, 128]}, "decision": {"threshold": 0.05}}
    cells = [
        Cell(f"w{c.params['width']}", {"init": "uniform", "width": str(c.params["width"])}, c.params, c.result)
        for c in (narrow, wide)
    ]
    assert "one half" in figures.draw(
        INIT, claim, cells, {"conditions": [{"role": "judged", "cells": ["w4", "w128"]}]}, tmp_path / "f.png"
    )


def test_standardizing_correlated_nonnegative_inputs_tightens_the_first_layer(data):
    params = {"dataset": "toy", "depth": 1, "width": 16, "init": "he_normal", "probe_size": 300}
    c = run(INIT, data, params, 64)
    given = np.abs(c.result.arrays["zero_frac"][:, 0] - 0.5).mean()
    assert INIT.metric("abs_dev_standardized", c).mean() < given


def test_positive_bias_with_small_weights_leaves_no_zeros_after_the_first_layer(data):
    params = {"dataset": "toy", "depth": 3, "width": 16, "init": {"name": "uniform", "limit": 0.05}}
    c = run(INIT, data, {**params, "bias_init": {"name": "constant", "value": 0.1}}, 8)
    assert np.all(c.result.arrays["zero_frac"][:, 1:] == 0)
    first = c.result.arrays["zero_frac"][:, 0]
    np.testing.assert_allclose(INIT.metric("abs_dev_from_half", c), 0.5 - first / 3)


def test_l1_penalty_raises_sparsity_and_metrics_have_one_value_per_seed(data):
    params = {**TRAIN, "width": 32, "dtype": "float32"}
    plain = run(L1, data, {**params, "l1": 0.0}, 6, "plain")
    penalized = run(L1, data, {**params, "l1": 0.03}, 6, "l1")
    for c in (plain, penalized):
        for name in L1.metrics:
            assert L1.metric(name, c).shape == (6,)
        assert np.all(L1.metric("sparsity_init", c) == pytest.approx(0.5, abs=0.2))
    assert L1.metric("sparsity", penalized).mean() > L1.metric("sparsity", plain).mean() + 0.1
    np.testing.assert_allclose(
        L1.metric("generalization_gap", plain), L1.metric("train_accuracy", plain) - L1.metric("test_accuracy", plain)
    )


def test_diverged_seeds_have_nan_metrics(data):
    c = run(L1, data, {**TRAIN, "width": 8, "l1": 0.0, "lr": 1e250, "epochs": 2}, 4)
    diverged = c.result.arrays["diverged"]
    assert diverged.any()
    for name in ("sparsity", "test_accuracy", "train_accuracy"):
        assert np.all(np.isnan(L1.metric(name, c)[diverged]))


def test_family_trains_every_member_from_the_same_seeds(data, tmp_path):
    params = {**TRAIN, "epochs": 3, "widths": [4, 8], "l1_values": [0.0, 0.01, 0.1], "stratify": "width"}
    c = run(FAMILY, data, params, 5)
    a = c.result.arrays
    assert a["sparsity"].shape == (5, 6) and a["member_width"].tolist() == [4, 4, 4, 8, 8, 8]
    # member (8, 0.0) equals the l1_sparsity cell with the same seeds and settings
    single = L1.run(
        {**TRAIN, "epochs": 3, "width": 8, "l1": 0.0}, Seeds(5, key=("test-sparsity", FAMILY.name, "cell")), data
    )
    np.testing.assert_array_equal(a["test_accuracy"][:, 3], single.arrays["test_accuracy"][:, -1])
    for name in FAMILY.metrics:
        rho = FAMILY.metric(name, c)
        assert rho.shape == (5,) and np.all(np.abs(rho[np.isfinite(rho)]) <= 1)
    by_width = [spearman_rows(a["sparsity"][:, m], a["test_accuracy"][:, m]) for m in (slice(0, 3), slice(3, 6))]
    np.testing.assert_allclose(FAMILY.metric("rho_test_accuracy", c), np.mean(by_width, axis=0))
    claim = {"grid": {"analysis": [{"label": "l1-within-width", "stratify": "width"}]}, "decision": {}}
    caption = figures.draw(
        FAMILY,
        claim,
        [Cell("analysis-l1-within-width", {"analysis": "l1-within-width"}, c.params, c.result)],
        {"conditions": []},
        tmp_path / "f.png",
    )
    assert "rank correlation" in caption and (tmp_path / "f.png").stat().st_size > 0


def test_family_check_needs_three_members_per_stratum():
    params = {**TRAIN, "widths": [4, 8], "l1_values": [0.0, 0.01, 0.1], "stratify": "l1"}
    jsonschema.validate(params, FAMILY.params_schema)
    with pytest.raises(ValueError, match="stratify"):
        FAMILY.check(params)
    FAMILY.check({**params, "stratify": "width"})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**params, "stratify": "depth"}, FAMILY.params_schema)


def test_judge_contrasts_sparsity_against_no_penalty(data, tmp_path, preregistered):
    params = {**TRAIN, "width": 16, "dtype": "float32"}
    cells = []
    for l1 in (0.0, 0.001, 0.03):
        c = run(L1, data, {**params, "l1": l1}, 4, f"l1-{l1}")
        cells.append(Cell(f"l1-{l1}", {"l1": str(l1)}, c.params, c.result))
    claim = {
        "id": "l1-test",
        "statement": "L1 raises sparsity",
        "source_files": ["x"],
        "experiment": "l1_sparsity",
        "seeds": 4,
        "grid": {"l1": [0.0, 0.001, 0.03]},
        "decision": preregistered(
            {
                "metric": "sparsity",
                "contrast": {"over": "l1", "treatment": [0.001, 0.03], "baseline": 0.0},
                "compare": ">",
                "threshold": 0.1,
                "headline": {"l1": "0.03 vs 0.0"},
            }
        ),
    }
    verdict = judge(claim, cells, L1, 0)
    assert verdict["conditions"][-1]["verdict"] == "supported"
    assert verdict["headline_condition"] == verdict["conditions"][-1]["condition"] == "l1=0.03 vs 0.0"
    assert verdict["conditions"][-1]["estimate"] > verdict["conditions"][0]["estimate"]
    assert "L1" in figures.draw(L1, claim, cells, verdict, tmp_path / "figure.png")


def _points_of(values: np.ndarray) -> tuple[float, float, float]:
    """The mean and 95% interval a figure should draw for one cell's metric values (finite ones only)."""
    finite = values[np.isfinite(values)]
    return (finite.mean(), *stats.interval(finite, binary=False))


def test_the_init_figure_marks_the_controls_by_the_verdict_and_draws_the_metric():
    rng = np.random.default_rng(2)
    cells = [
        Cell(
            f"{init}-{w}",
            {"init": init, "width": str(w)},
            {"dataset": "toy", "depth": 2, "width": w},
            CellResult(
                {"zero_frac": rng.uniform(0.3, 0.7, (8, 2)), "zero_frac_standardized": rng.uniform(0.4, 0.6, (8, 2))},
                {"probe_size": 9},
            ),
        )
        for init in ("uniform", "biased")
        for w in (4, 16)
    ]
    verdict = {
        "conditions": [
            {"role": "judged", "cells": ["uniform-4", "uniform-16"]},
            {"role": "control", "cells": ["biased-4"]},
        ]
    }
    figure = figures.FIGURES["init_sparsity"].from_verdict(INIT, {"decision": {"threshold": 0.05}}, cells, verdict)
    assert figure.rows == [("uniform", 4), ("uniform", 16), ("biased", 4), ("biased", 16)]
    assert figure.judged == {"uniform"}  # biased-16 is in no condition: not judged either
    assert [p.style["linestyle"] for p in figure.deviations] == ["-", ":"]
    np.testing.assert_array_equal(figure.table[1], cells[1].result.arrays["zero_frac"].mean(axis=0))
    uniform = figure.deviations[0]
    for i, c in enumerate(cells[:2]):
        assert (uniform.mean[i], uniform.lo[i], uniform.hi[i]) == _points_of(INIT.metric("abs_dev_from_half", c))
    assert len(figure.dots) == 8  # one row of dots per cell and input kind
    np.testing.assert_array_equal(figure.dots[1][1], cells[0].result.arrays["zero_frac_standardized"].mean(axis=1))


def _l1_cell(l1: float, rng) -> Cell:
    zero_frac = rng.uniform(0, 1, (6, 2, 2))
    arrays = {
        "zero_frac": zero_frac,
        "dead_frac": zero_frac / 2,
        "test_accuracy": rng.uniform(0.5, 1, (6, 2)),
        "train_accuracy": rng.uniform(0.5, 1, 6),
        "diverged": np.array([False] * 5 + [True]),
    }
    arrays["test_accuracy"][5] = np.nan
    params = {"dataset": "toy", "depth": 2, "width": 8, "epochs": 3, "l1": l1}
    return Cell(f"l1-{l1}", {"l1": str(l1)}, params, CellResult(arrays))


def test_the_l1_figure_draws_the_metrics_and_the_verdicts_roles():
    rng = np.random.default_rng(3)
    cells = [_l1_cell(l1, rng) for l1 in (0.03, 0.0, 0.001)]
    verdict = {"conditions": [{"role": "judged", "cells": ["l1-0.03"]}, {"role": "control", "cells": ["l1-0.0"]}]}
    figure = figures.FIGURES["l1_sparsity"].from_verdict(L1, {}, cells, verdict)
    assert figure.positions == {"0.0": 0, "0.001": 1, "0.03": 2}
    assert figure.roles == {"0.0": "control", "0.001": "not used", "0.03": "judged"}
    assert figure.n_diverged == 3
    (sparsity, dead, init), (test, train) = figure.sparsity[0], figure.accuracy[0]
    assert [p.label for p in (sparsity, dead, init, test, train)] == [
        "zeros after training",
        "units dead on every test input",
        "zeros at initialization",
        "test accuracy",
        "training accuracy",
    ]
    for i, c in enumerate([cells[1], cells[2], cells[0]]):  # by coefficient
        assert (test.mean[i], test.lo[i], test.hi[i]) == _points_of(L1.metric("test_accuracy", c))
        assert (dead.mean[i], dead.lo[i], dead.hi[i]) == _points_of(L1.metric("dead_frac", c))


def test_the_family_figure_draws_each_analysis_rho_and_each_members_means():
    rng = np.random.default_rng(4)
    params = {**TRAIN, "widths": [4, 8], "l1_values": [0.0, 0.01, 0.1], "stratify": "width"}
    arrays = {
        "sparsity": rng.uniform(0.4, 0.9, (7, 6)),
        "test_accuracy": rng.uniform(0.5, 1, (7, 6)),
        "train_accuracy": rng.uniform(0.5, 1, (7, 6)),
        "diverged": np.zeros((7, 6), bool),
        "member_width": np.array([4, 4, 4, 8, 8, 8]),
        "member_l1": np.array([0.0, 0.01, 0.1] * 2),
    }
    arrays["sparsity"][:4, 2] = np.nan  # member (4, 0.1) diverged on 4 of the 7 seeds
    cells = [
        Cell(f"analysis-{s}", {"analysis": s}, {**params, "stratify": s}, CellResult(arrays)) for s in ("width", "none")
    ]
    figure = figures.FIGURES["sparsity_family"].from_verdict(FAMILY, {}, cells, {"conditions": []})
    assert figure.analyses == ["width", "none"] and figure.n_seeds == 14
    rho_test, rho_gap = figure.rhos
    for i, c in enumerate(cells):
        assert (rho_test.mean[i], rho_test.lo[i], rho_test.hi[i]) == _points_of(FAMILY.metric("rho_test_accuracy", c))
        assert (rho_gap.mean[i], rho_gap.lo[i], rho_gap.hi[i]) == _points_of(FAMILY.metric("rho_gap", c))
    accuracy, gap = figure.scatters
    for m in (0, 2):  # the means of a member are over the seeds (of every cell) where both values are finite
        x, y = np.tile(arrays["sparsity"][:, m], 2), np.tile(arrays["test_accuracy"][:, m], 2)
        assert accuracy.means[m] == (*_points_of(x), *_points_of(y[np.isfinite(x)]))
    np.testing.assert_allclose(
        gap.nets[3][1], np.tile(arrays["train_accuracy"][:, 3] - arrays["test_accuracy"][:, 3], 2)
    )
