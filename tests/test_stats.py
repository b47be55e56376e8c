"""The statistics behind every verdict: interval coverage, verdict rules, decision-rule plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from actlab import judging, stats
from actlab.experiments.base import Cell, CellResult, Experiment


@pytest.mark.parametrize("n", [8, 24])
def test_bootstrap_ci_covers_the_true_mean_about_95_percent(n):
    """Over 400 synthetic experiments with a known mean, the interval covers it ~95% of the time."""
    rng = np.random.default_rng(0)
    true_mean = 0.7
    hits = 0
    trials = 400
    for _ in range(trials):
        sample = rng.normal(true_mean, 1.0, size=n)
        lo, hi = stats.bootstrap_ci(sample, rng, n_boot=1000)
        hits += lo <= true_mean <= hi
    coverage = hits / trials
    # percentile bootstrap under-covers slightly at small n; a broken interval would be far off
    assert 0.85 <= coverage <= 0.99, coverage


def test_contrast_ci_covers_a_known_ratio():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(300):
        t = rng.normal(6.0, 1.0, size=20)
        b = rng.normal(2.0, 0.5, size=20)
        lo, hi = stats.bootstrap_contrast_ci(t, b, judging.OPS["ratio"], rng, n_boot=1000)
        hits += lo <= 3.0 <= hi
    assert 0.85 <= hits / 300 <= 0.99


def test_degenerate_sample_gives_a_point_interval():
    assert stats.bootstrap_ci(np.array([0.25]), np.random.default_rng(0)) == (0.25, 0.25)
    assert stats.bootstrap_ci(np.array([2.0, 2.0, 2.0]), np.random.default_rng(0)) == (2.0, 2.0)


@pytest.mark.parametrize(
    ("ci", "direction", "expected"),
    [
        ((0.1, 0.4), ">", "supported"),
        ((-0.4, -0.1), ">", "refuted"),
        ((-0.1, 0.2), ">", "inconclusive"),
        ((-0.4, -0.1), "<", "supported"),
        ((0.1, 0.4), "<", "refuted"),
    ],
)
def test_side_of(ci, direction, expected):
    assert stats.side_of(ci, direction, 0.0) == expected


def test_combine_and_boundary():
    assert stats.combine(["supported", "supported"]) == "supported"
    assert stats.combine(["refuted", "refuted"]) == "refuted"
    assert stats.combine(["supported", "refuted"]) == "mixed"
    assert stats.combine(["supported", "inconclusive"]) == "inconclusive"
    text = stats.boundary(
        [
            {"condition": "depth=2", "verdict": "refuted"},
            {"condition": "depth=8", "verdict": "supported"},
        ]
    )
    assert "depth=2" in text and "depth=8" in text


class _Table(Experiment):
    """A fake experiment whose metric is a stored array, to test the decision plumbing."""

    name = "table"
    metrics = {"m": "stored values"}

    def metric(self, name, cell):
        return cell.result.arrays["m"]


def _cell(setting, values):
    cid = "_".join(f"{k}-{v}" for k, v in setting.items())
    return Cell(cid, setting, dict(setting), CellResult({"m": np.asarray(values, float)}))


def test_decision_tune_contrast_split():
    rng = np.random.default_rng(3)
    cells = []
    for act, speed in (("relu", 10.0), ("tanh", 30.0)):
        for lr, penalty in (("0.01", 20.0), ("0.1", 0.0)):
            cells.append(_cell({"activation": act, "lr": lr}, speed + penalty + rng.normal(0, 1, 16)))
    claim = {
        "id": "x",
        "grid": {"activation": ["relu", "tanh"], "lr": ["0.01", "0.1"]},
        "decision": {
            "metric": "m",
            "tune": {"over": "lr", "pick": "min"},
            "contrast": {"over": "activation", "treatment": "tanh", "baseline": "relu", "op": "ratio"},
            "compare": ">",
            "threshold": 1.0,
        },
    }
    (cond,) = judging.conditions(claim, cells, _Table())
    assert cond["setting"]["tuned lr"] == "0.1"
    summary = judging.summarize(cond, rng, ">", 1.0)
    assert summary["verdict"] == "supported"
    assert 2.5 < summary["estimate"] < 3.5


def test_decision_split_gives_mixed_with_boundary():
    cells = [_cell({"depth": str(d)}, np.full(8, v) + np.linspace(-0.1, 0.1, 8)) for d, v in ((2, 0.5), (8, -3.0))]
    claim = {
        "id": "y",
        "statement": "s",
        "source_files": ["f"],
        "experiment": "table",
        "seeds": 8,
        "grid": {"depth": ["2", "8"]},
        "decision": {"metric": "m", "split_by": ["depth"], "compare": "<", "threshold": -1.0},
    }
    verdict = judging.judge(claim, cells, _Table(), global_seed=0)
    assert verdict["verdict"] == "mixed"
    assert [c["verdict"] for c in verdict["conditions"]] == ["refuted", "supported"]
    assert "depth=2" in verdict["boundary"]


def test_non_finite_seeds_are_dropped_and_counted():
    cond = {"label": "all", "setting": {}, "values": np.array([1.0, np.nan, 2.0, np.inf])}
    summary = judging.summarize(cond, np.random.default_rng(0), ">", 0.0)
    assert summary["n"] == 2
    assert summary["verdict"] == "supported"
