"""Tests of the ``convergence_speed`` experiment type (claim ``relu-trains-faster``)."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.claims import figures, judging, stats
from actlab.claims.experiments import EXPERIMENTS
from actlab.claims.experiments.base import Cell, CellResult
from actlab.claims.experiments.convergence import ConvergenceSpeed, epochs_to_target
from actlab.claims.register import RegisterError, resolve
from actlab.engine.datasets import Dataset
from actlab.engine.network import MLP
from actlab.engine.seeding import Seeds

BASE = {
    "dataset": "moons",
    "depth": 1,
    "width": 16,
    "activation": "relu",
    "init": "he_normal",
    "epochs": 20,
    "batch_size": 20,
    "target_error": 0.15,
}


@pytest.fixture(scope="module")
def data(moons):
    """The conftest moons (200 samples) as a data set whose training split is all of them."""
    x, y = moons
    return {"moons": Dataset("moons", "classification", x, y, x[:20], y[:20])}


def _cell(params, seeds, data, cell_id="c", setting=None):
    result = ConvergenceSpeed().run(params, seeds, data)
    return Cell(cell_id, setting or {}, params, result)


def test_registered():
    assert isinstance(EXPERIMENTS["convergence_speed"], ConvergenceSpeed)


def test_epochs_to_target_first_hit_and_censoring():
    err = np.array(
        [
            [0.9, 0.5, 0.1, 0.05, 0.2],  # first at or below 0.1 at epoch 2 (a later rise does not matter)
            [0.9, 0.8, 0.7, 0.6, 0.5],  # never: censored at E + 1 = 5
            [0.05, 0.5, 0.5, 0.5, 0.5],  # already at init: 0
            [0.9, np.nan, np.nan, np.nan, np.nan],  # diverged before reaching it: censored
            [0.9, 0.08, np.nan, np.nan, np.nan],  # reached it, then diverged: still 1
        ]
    )
    assert epochs_to_target(err, 0.1).tolist() == [2, 5, 0, 5, 1]


def test_metrics_from_stored_arrays():
    err = np.array([[0.9, 0.4, 0.2], [0.9, np.nan, np.nan]])
    params = {**BASE, "target_error": 0.3}
    cell = Cell("c", {}, params, type("R", (), {"arrays": {"train_error": err}})())
    exp = ConvergenceSpeed()
    assert exp.metric("epochs_to_target", cell).tolist() == [2, 3]
    final = exp.metric("final_train_error", cell)
    assert final[0] == pytest.approx(0.2) and np.isnan(final[1])
    mean = exp.metric("mean_train_error", cell)
    assert mean[0] == pytest.approx(0.3) and np.isnan(mean[1])
    with pytest.raises(KeyError):
        exp.metric("nope", cell)


def test_run_records_training_error_from_init(data):
    seeds = Seeds(3, key=("test", "conv"))
    cell = _cell({**BASE, "epochs": 3, "lr": 0.1}, seeds, data)
    err = cell.result.arrays["train_error"]
    assert err.shape == (3, 4) and cell.result.arrays["loss"].shape == (3, 3)
    # epoch 0 is the error of the untrained ensemble built from the same seeds
    ds = data["moons"]
    net = MLP(2, [16], 2, activation="relu", init="he_normal", seeds=Seeds(3, key=("test", "conv")))
    wrong = np.argmax(net.predict(ds.x_train), axis=2) != np.argmax(ds.y_train, axis=1)
    np.testing.assert_allclose(err[:, 0], wrong.mean(axis=1))
    assert cell.result.info["n_train"] == 200 and cell.result.info["n_diverged"] == 0
    # byte-identical when run again
    again = _cell({**BASE, "epochs": 3, "lr": 0.1}, seeds, data)
    for key, value in cell.result.arrays.items():
        np.testing.assert_array_equal(value, again.result.arrays[key])


def test_larger_stable_lr_reaches_target_sooner(data):
    seeds = Seeds(4, key=("test", "lr"))
    exp = ConvergenceSpeed()
    slow = exp.metric("epochs_to_target", _cell({**BASE, "lr": 0.03}, seeds, data))
    fast = exp.metric("epochs_to_target", _cell({**BASE, "lr": 0.3}, seeds, data))
    assert fast.mean() < slow.mean()
    assert np.all(fast <= BASE["epochs"])  # every seed reaches the target at the good rate


def test_scikit_learn_reaches_the_target_sooner_at_a_larger_stable_lr(data):
    """The replication trainer: the same curve from scikit-learn's MLPClassifier (epoch 0 unseen),
    faster at a larger learning rate, and a diverged run censored like actlab's."""
    sk = {**BASE, "trainer": "sklearn", "init": "sklearn"}
    ConvergenceSpeed().check(sk)
    slow = _cell({**sk, "lr": 0.02}, Seeds(4, key=(0, "sk")), data)
    fast = _cell({**sk, "lr": 0.3}, Seeds(4, key=(0, "sk")), data)
    err = fast.result.arrays["train_error"]
    assert err.shape == (4, BASE["epochs"] + 1) and np.isnan(err[:, 0]).all() and np.isfinite(err[:, 1:]).all()
    slow_t, fast_t = (ConvergenceSpeed().metric("epochs_to_target", c) for c in (slow, fast))
    assert fast_t.mean() < slow_t.mean() and fast_t.max() <= BASE["epochs"]
    exploded = _cell({**sk, "lr": 1e4, "depth": 3, "width": 32}, Seeds(4, key=(0, "sk")), data)
    diverged = exploded.result.arrays["diverged"]
    assert diverged.sum() >= 2  # (a net whose ReLUs all died at once stays finite)
    assert (ConvergenceSpeed().metric("epochs_to_target", exploded)[diverged] == BASE["epochs"] + 1).all()
    with pytest.raises(ValueError, match="dtype"):
        ConvergenceSpeed().check({**sk, "dtype": "float32"})


def test_divergence_is_recorded_and_censored(data):
    cell = _cell({**BASE, "lr": 1e6}, Seeds(3, key=("test", "div")), data)
    assert cell.result.arrays["diverged"].all()
    exp = ConvergenceSpeed()
    np.testing.assert_array_equal(exp.metric("epochs_to_target", cell), BASE["epochs"] + 1)
    assert np.isnan(exp.metric("final_train_error", cell)).all()


RULE = {
    "metric": "epochs_to_target",
    "tune": {"over": "lr", "pick": "min"},
    "contrast": {"over": "activation", "treatment": ["sigmoid"], "baseline": "relu", "op": "ratio"},
    "compare": ">",
    "threshold": 1.0,
    "headline": {"activation": "sigmoid vs relu"},
}


def _claim(decision, **overrides):
    """A register entry; ``decision`` is the complete rule (the tests pass ``preregistered(RULE)``)."""
    claim = {
        "id": "relu-trains-faster",
        "group": "G",
        "sources": ["003"],
        "statement": "ReLU nets reach a training error in fewer epochs.",
        "experiment": "convergence_speed",
        "seeds": 3,
        "params": {**BASE, "epochs": 8},
        "grid": {
            "activation": [
                {"label": "relu", "activation": "relu", "init": "he_normal"},
                {"label": "sigmoid", "activation": "sigmoid", "init": "glorot_normal"},
            ],
            "lr": [0.03, 0.3],
        },
        "decision": decision,
    }
    claim.update(overrides)
    return claim


def test_register_rejects_bad_target(preregistered):
    bad = _claim(preregistered(RULE), params={**BASE, "target_error": 1.5, "lr": 0.1})
    with pytest.raises(RegisterError, match="target_error"):
        resolve({"claims": [bad]}, {"003": {"file": "003.txt"}}, "full")


def test_judge_tunes_lr_and_figure(data, tmp_path, preregistered):
    (claim,) = resolve({"claims": [_claim(preregistered(RULE))]}, {"003": {"file": "003.txt"}}, "full")
    exp = EXPERIMENTS["convergence_speed"]
    cells = []
    for cid, spec in claim["cells"].items():
        seeds = Seeds(claim["seeds"], key=("test", cid))
        cells.append(Cell(cid, spec["setting"], spec["params"], exp.run(spec["params"], seeds, data)))
    (cond,) = judging.conditions(claim, cells, exp)
    # relu's tuned lr is the one with fewer mean epochs; sigmoid at lr 0.03 barely moves in 8 epochs
    means = {c.id: exp.metric("epochs_to_target", c).mean() for c in cells}
    relu_best = min(("0.03", "0.3"), key=lambda lr: means[f"activation-relu_lr-{lr}"])
    assert cond["setting"]["tuned lr (baseline)"] == relu_best
    assert cond["op"] == "ratio" and cond["setting"]["activation"] == "sigmoid vs relu"
    assert np.mean(cond["values"]) > np.mean(cond["baseline"])
    verdict = judging.judge(claim, cells, exp, 0)
    caption = figures.draw(exp, claim, cells, verdict, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    assert "epochs" in caption and "0.15" in caption


def _stored(activation: str, lr: float, first_hits: list[int]) -> Cell:
    """A stored cell of 4 epochs whose seeds first reach the target error 0.15 at the epochs ``first_hits``."""
    err = np.where(np.arange(5) >= np.array(first_hits)[:, None], 0.1, 0.5)
    params = {**BASE, "epochs": 4, "lr": lr}
    setting = {"activation": activation, "lr": str(lr)}
    return Cell(f"{activation}-{lr}", setting, params, CellResult({"train_error": err}, {"n_train": 200}))


def test_the_figure_shows_the_tuned_cells_the_verdict_measured(tmp_path):
    exp = EXPERIMENTS["convergence_speed"]
    cells = [
        _stored("relu", 0.03, [1, 2, 2, 3]),
        _stored("relu", 0.3, [1, 1, 1, 2]),
        _stored("sigmoid", 0.03, [3, 4, 5, 5]),  # 5: never reached (epochs + 1)
        _stored("sigmoid", 0.3, [2, 3, 3, 4]),
    ]
    claim = {"decision": {"tune": {"over": "lr"}, "contrast": {"baseline": "relu"}}}
    # the verdict's pick for relu is not its fastest lr: the figure shows the pick, it does not re-tune
    verdict = {"conditions": [{"role": "judged", "cells": ["sigmoid-0.3", "relu-0.03"]}]}
    figure = figures.FIGURES["convergence_speed"].from_verdict(exp, claim, cells, verdict)
    assert figure.picks == [(0.03, 2.0), (0.3, 3.0)]
    assert figure.ratios == {"sigmoid": 1.5} and figure.baseline == "relu"
    assert "lr=0.03" in figure.curves[0].label and list(figure.curves[1].x) == [0, 1, 2, 3, 4]
    sigmoid = figure.sweeps[1]
    assert list(sigmoid.x) == [0.03, 0.3] and list(sigmoid.mean) == [4.25, 3.0]
    slow = exp.metric("epochs_to_target", cells[2])
    assert (sigmoid.lo[0], sigmoid.hi[0]) == stats.interval(slow, binary=False)
    caption = figures.draw(exp, claim, cells, verdict, tmp_path / "f.png")
    assert "stars mark the tuned values" in caption and (tmp_path / "f.png").stat().st_size > 10_000
