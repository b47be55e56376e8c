"""Tests of the ``single_neuron`` experiment type (claim ``relu-learns-relu``, seed 002)."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.claims import figures, judging, stats
from actlab.claims.experiments import EXPERIMENTS
from actlab.claims.experiments.base import Cell
from actlab.claims.experiments.single_neuron import (
    SingleNeuron,
    build_net,
    expected_loss,
    get_params,
    net_output,
    normal_quantiles,
    set_params,
)
from actlab.claims.figures.base import mean_interval
from actlab.claims.figures.single_neuron import FailureRates
from actlab.claims.register import RegisterError, resolve
from actlab.engine.seeding import Seeds

BASE = {
    "model": "weight",
    "activation": "relu",
    "lr": 0.01,
    "batch_size": 200,
    "steps_per_epoch": 100,
    "epochs": 20,
    "snapshot_every": 10,
    "init": "glorot_uniform",
    "bias_init": {"name": "uniform", "limit": 3**0.5},
    "document_start": -10.0,
    "fail_margin": 0.05,
    "eval_points": 1000,
}
X = normal_quantiles(2000)


def _cell(seeds=6, key="a", **params):
    p = {**BASE, **params}
    return Cell("c", {}, p, SingleNeuron().run(p, Seeds(seeds, key=("test", key)), {}))


def test_registered():
    assert isinstance(EXPERIMENTS["single_neuron"], SingleNeuron)


def test_quadrature_moments():
    assert np.mean(X) == pytest.approx(0, abs=1e-12)
    assert np.mean(X * X) == pytest.approx(1, abs=1e-12)
    assert np.mean(np.maximum(X, 0) ** 2) == pytest.approx(0.5, abs=1e-12)  # E relu(x)^2 by symmetry
    assert np.mean(np.maximum(X, 0)) == pytest.approx(1 / np.sqrt(2 * np.pi), abs=1e-4)


def test_expected_loss_closed_form():
    """relu(w x) against relu(x): (w - 1)^2 / 2 for w >= 0 and (w^2 + 1) / 2 for w <= 0."""
    w = np.array([-10.0, -1.0, 0.0, 0.5, 1.0, 2.0])
    want = np.where(w >= 0, (w - 1) ** 2 / 2, (w * w + 1) / 2)
    assert expected_loss(w[:, None], "weight", "relu", X) == pytest.approx(want, abs=1e-12)
    # leaky slope a: minimum a^2 / (2 (1 + a^2)) at w = 1 / (1 + a^2)
    a = 0.1
    leaky = {"name": "leaky_relu", "slope": a}
    at_min = expected_loss(np.array([[1 / (1 + a * a)]]), "weight", leaky, X)[0]
    assert at_min == pytest.approx(a * a / (2 * (1 + a * a)), abs=1e-12)


@pytest.mark.parametrize("model", ["weight", "weight-bias", "output-layer"])
def test_params_roundtrip_and_output_match_engine(model):
    net = build_net(model, "elu", Seeds(3, key=("t",)), bias_init={"name": "uniform", "limit": 1.0})
    theta = get_params(net, model)
    assert theta.shape == (3, {"weight": 1, "weight-bias": 2, "output-layer": 4}[model])
    set_params(net, model, 1, {"w": -2.0, "b": 0.5, "v": -0.7, "c": 0.3})
    theta = get_params(net, model)
    assert theta[1, 0] == -2.0 and theta[0, 0] != -2.0
    x = np.linspace(-3, 3, 13)
    assert net_output(theta, model, "elu", x) == pytest.approx(net.predict(x[:, None])[:, :, 0], abs=1e-12)


def test_document_start_gets_stuck_at_zero():
    """Seed 002's run: from w = -10, w shrinks by (1 - lr) per step toward 0 and the loss goes to 1/2."""
    cell = _cell()
    a = cell.result.arrays
    w = a["document_trajectory"][:, 0]
    assert w[0] == -10.0
    assert np.all(w < 0) and abs(w[-1]) < 1e-6
    steps = a["snapshot_step"]
    assert w[10] == pytest.approx(-10 * 0.99 ** steps[10], rel=0.05)
    assert a["document_expected_loss"][-1] == pytest.approx(0.5, abs=1e-6)
    assert a["reference_expected_loss"][-1] == pytest.approx(0.0, abs=1e-12)  # the answer stays the answer
    # every random start's fate is its sign: backwards starts fail, the others converge to w = 1
    exp = SingleNeuron()
    back = exp.metric("backwards_start", cell)
    assert 0 < back.sum() < len(back)
    assert np.array_equal(exp.metric("failure", cell), back)
    assert a["trajectory"][back == 0, -1, 0] == pytest.approx(1.0, abs=1e-3)
    assert a["epoch_loss"].shape == (6, 20) and a["trajectory"].shape == (6, 201, 1)


def test_leaky_slope_pushes_w_across_zero():
    """dL/dw = (1 + a^2) w - a < 0 for w < 0: a leaky unit escapes and ends near 1 / (1 + a^2)."""
    a = 0.1
    cell = _cell(activation={"name": "leaky_relu", "slope": a}, lr=0.1, epochs=5)
    arr = cell.result.arrays
    assert arr["document_trajectory"][-1, 0] == pytest.approx(1 / (1 + a * a), abs=0.01)
    assert np.all(SingleNeuron().metric("failure", cell) == 0)


def test_failure_is_relative_to_the_reference_run():
    """ELU cannot fit relu(x) (best loss about 0.133 for elu(w x)); converged runs still count as successes."""
    cell = _cell(activation="elu", lr=0.1, epochs=10)
    ref = cell.result.arrays["reference_expected_loss"][-1]
    assert 0.12 < ref < 0.15
    assert np.all(SingleNeuron().metric("failure", cell) == 0)
    assert np.all(np.abs(SingleNeuron().metric("excess_loss", cell)) < 1e-3)


def test_shared_batches_give_the_same_fates():
    per_seed = _cell(model="weight-bias", seeds=8, epochs=10, key="s")
    shared = _cell(model="weight-bias", seeds=8, epochs=10, key="s", shared_batches=True)
    exp = SingleNeuron()
    a, b = per_seed.result.arrays, shared.result.arrays
    assert np.array_equal(a["trajectory"][:, 0], b["trajectory"][:, 0])  # the same starts
    assert not np.array_equal(a["trajectory"][:, 1], b["trajectory"][:, 1])  # different batches
    assert np.array_equal(exp.metric("failure", per_seed), exp.metric("failure", shared))
    assert a["trajectory"][:, -1] == pytest.approx(b["trajectory"][:, -1], abs=0.02)


def test_metrics_nan_when_diverged():
    traj = np.zeros((3, 3, 1))
    traj[:, 0, 0] = [-1.0, 0.5, 0.5]
    arrays = {
        "trajectory": traj,
        "expected_loss": np.array([[1.0, 0.5], [1.0, 0.01], [1.0, np.inf]]),
        "reference_expected_loss": np.array([0.0, np.nan]),
        "diverged": np.array([False, False, True]),
    }
    cell = Cell("c", {}, BASE, type("R", (), {"arrays": arrays})())
    exp = SingleNeuron()
    f = exp.metric("failure", cell)
    assert f[:2].tolist() == [1.0, 0.0] and np.isnan(f[2])
    assert exp.metric("excess_loss", cell)[:2] == pytest.approx([0.5, 0.01])
    assert exp.metric("backwards_start", cell).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(KeyError):
        exp.metric("nope", cell)


def test_failure_rate_interval_is_exact_binomial():
    """The rate panel's bars: exact Clopper-Pearson intervals, diverged (NaN) runs dropped."""
    rate, lo, hi = mean_interval(np.zeros(48), binary=True)
    assert rate == 0 and lo == 0 and hi == pytest.approx(1 - 0.025 ** (1 / 48))
    rate, lo, hi = mean_interval(np.r_[np.zeros(24), np.ones(24), np.nan], binary=True)
    assert rate == 0.5 and lo < 0.5 < hi and hi - 0.5 == pytest.approx(0.5 - lo)
    assert np.isnan(mean_interval(np.full(3, np.nan), binary=True)).all()


def _fates_cell(cell_id: str, lr: float, fates: list) -> Cell:
    """A cell of model weight whose random starts end at the given fates: 1 failed, 0 converged, None diverged."""
    final = np.array([np.nan if f is None else 0.5 * f for f in fates])
    arrays = {
        "trajectory": np.zeros((len(fates), 2, 1)),
        "expected_loss": np.stack([np.ones(len(fates)), final], axis=1),
        "reference_expected_loss": np.array([1.0, 0.0]),
        "diverged": np.array([f is None for f in fates]),
    }
    params = {**BASE, "lr": lr}
    return Cell(cell_id, {"activation": "relu"}, params, type("R", (), {"arrays": arrays})())


def test_the_rate_panels_count_every_run_as_the_rule_does():
    """A diverged run counts as the decision rule says (here: as a failure), not dropped."""
    exp = SingleNeuron()
    fates = [1, 1, 1, 0, 0, 0, 0, 0, None, None]
    cells = [_fates_cell("slow", 0.01, fates), _fates_cell("fast", 1.0, [0, 0, 0, None])]
    rule = {"metric": "failure", "compare": ">", "threshold": 0.25, "diverged": {"count": "value", "value": 1}}
    (series,) = FailureRates.from_cells(exp, cells, "weight", rule).series
    points, no_rate = series
    assert points.label == "relu" and points.x.tolist() == [0.01, 1.0] and no_rate == []
    counted = np.array([1.0, 1, 1, 0, 0, 0, 0, 0, 1, 1])
    assert points.mean[0] == counted.mean() == 0.5
    assert (points.lo[0], points.hi[0]) == stats.interval(counted, binary=True)
    assert points.mean[1] == 0.25


RULE = {
    "metric": "failure",
    "split_by": ["model", "lr"],
    "compare": ">",
    "threshold": 0.25,
    "headline": {"model": "weight", "lr": 0.01},
}


def _claim(decision):
    """A register entry; ``decision`` is the complete rule (the tests pass ``preregistered(RULE)``)."""
    return {
        "id": "relu-learns-relu",
        "group": "D",
        "sources": ["002"],
        "statement": "a single relu neuron fails about half the time",
        "experiment": "single_neuron",
        "seeds": 6,
        "params": {k: v for k, v in BASE.items() if k not in ("model", "lr")} | {"epochs": 5, "shared_batches": True},
        "grid": {"model": ["weight-bias", "weight"], "lr": [1.0, 0.01]},
        "decision": decision,
    }


def test_register_checks(preregistered):
    bad = _claim(preregistered(RULE))
    bad["params"]["snapshot_every"] = 7
    with pytest.raises(RegisterError, match="snapshot_every"):
        resolve({"claims": [bad]}, {"002": {"file": "002.txt"}}, "full")
    bad = _claim(preregistered(RULE))
    bad["grid"]["model"] = ["weights"]
    with pytest.raises(RegisterError, match="model"):
        resolve({"claims": [bad]}, {"002": {"file": "002.txt"}}, "full")


def test_judge_and_figure(tmp_path, preregistered):
    (claim,) = resolve({"claims": [_claim(preregistered(RULE))]}, {"002": {"file": "002.txt"}}, "full")
    exp = EXPERIMENTS["single_neuron"]
    cells = [
        Cell(cid, spec["setting"], spec["params"], exp.run(spec["params"], Seeds(6, key=("test", cid)), {}))
        for cid, spec in claim["cells"].items()
    ]
    conds = judging.conditions(claim, cells, exp)
    assert [c["label"] for c in conds][-1] == "model=weight, lr=0.01"
    rates = {c["label"]: np.nanmean(c["values"]) for c in conds}
    # lr 1 overshoots: w -> w (1 - g) with g ~ 1 flips a backwards weight positive, so nothing fails
    assert rates["model=weight, lr=1.0"] == 0.0
    caption = figures.draw(exp, claim, cells, judging.judge(claim, cells, exp, 0), tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    assert "from w = -10" in caption and "Model weight-bias" in caption
