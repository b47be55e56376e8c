"""Tests of the ``dying_units`` experiment type (claims ``dead-stays-dead``, ``high-lr-kills-units``
and ``leaky-prevents-dying``)."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.claims import figures, judging, stats
from actlab.claims.experiments import EXPERIMENTS
from actlab.claims.experiments.base import Cell, CellResult
from actlab.claims.experiments.dying import DyingUnits, revivals, revived_share, scope_layers, snapshot_valid
from actlab.claims.figures.dying import LOSS_CAP, ActivationFigure, LearningRateFigure, RevivalFigure
from actlab.claims.register import RegisterError, resolve
from actlab.engine.datasets import Dataset
from actlab.engine.network import MLP
from actlab.engine.seeding import Seeds

BASE = {
    "dataset": "moons",
    "depth": 2,
    "width": 16,
    "activation": "relu",
    "init": "he_normal",
    "epochs": 4,
    "lr": 0.1,
    "batch_size": 20,
}
DECISION_REVIVED = {"metric": "revived_frac", "compare": "<", "threshold": 0.05}
SOURCES = {"000": {"file": "000.txt"}, "001": {"file": "001.txt"}, "003": {"file": "003.txt"}}


@pytest.fixture(scope="module")
def data(moons):
    """The conftest moons (200 samples) as a data set whose training split is all of them."""
    x, y = moons
    return {"moons": Dataset("moons", "classification", x, y, x[:20], y[:20])}


def _cell(params, data, key="c", setting=None):
    result = DyingUnits().run(params, Seeds(4, key=("test", key)), data)
    return Cell(key, setting or {}, params, result)


def _stored(params, arrays):
    return Cell("c", {}, params, CellResult(arrays, {}))


def test_registered():
    assert isinstance(EXPERIMENTS["dying_units"], DyingUnits)


def test_revivals_counts_units_that_leave_the_state_later():
    masks = np.array(
        [
            [[1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1], [0, 0, 0, 1]],  # per unit, over 4 snapshots
        ],
        dtype=bool,
    )[:, :, :].transpose(0, 2, 1)  # (S=1, P=4, n=4)
    ever, back = revivals(masks)
    # unit 0 dead at t=0 only: revives; unit 1 dead at t=1, 2: revives at t=3; unit 2 dead at t=1,
    # alive at t=2 and dead again at t=3: revived once; unit 3 dead only at the last snapshot: not
    # counted (nothing after it)
    assert ever.tolist() == [[True, True, True, False]]
    assert back.tolist() == [[True, True, True, False]]
    stays = np.array([[[False], [True], [True], [True]]])  # dies at t=1 and never comes back
    assert revivals(stays)[0].tolist() == [[True]] and revivals(stays)[1].tolist() == [[False]]


def test_snapshot_valid_and_scopes():
    valid = snapshot_valid(np.array([-1, 1, 3]), 4)
    assert valid.tolist() == [[True] * 4, [True, False, False, False], [True, True, True, False]]
    assert scope_layers("all", 3) == [0, 1, 2] and scope_layers("first", 3) == [0] and scope_layers("last", 3) == [2]
    with pytest.raises(ValueError, match="layers"):
        scope_layers("middle", 3)


def test_metrics_from_stored_arrays():
    """Fractions, revivals and divergence masking on hand-made arrays (1 hidden layer of 2 units)."""
    dead = np.array(
        [
            [[True, False], [True, False], [False, False]],  # unit 0 revives at epoch 2
            [[False, False], [True, True], [True, True]],  # both die in epoch 1 and stay dead
            [[False, False], [False, True], [False, True]],  # diverged in epoch 2
        ]
    )
    zmax = np.where(dead, -1.0, 1.0)
    zmax[2, 2] = np.nan
    arrays = {
        "dead0": dead,
        "zmax0": zmax,
        "loss": np.array([[2.0, 1.0, 0.5], [2.0, 2.0, 2.0], [2.0, 3.0, np.nan]]),
        "accuracy": np.array([[0.5, 0.7, 0.9], [0.5, 0.5, 0.5], [0.5, 0.5, np.nan]]),
        "diverged": np.array([False, False, True]),
        "diverged_epoch": np.array([-1, -1, 2]),
    }
    cell = _stored({**BASE, "depth": 1, "epochs": 2}, arrays)
    exp = DyingUnits()
    np.testing.assert_array_equal(exp.metric("dead_frac_init", cell), [0.5, 0.0, 0.0])
    np.testing.assert_array_equal(exp.metric("dead_frac_epoch1", cell), [0.5, 1.0, 0.5])
    np.testing.assert_array_equal(exp.metric("dead_frac_end", cell), [0.0, 1.0, np.nan])
    np.testing.assert_array_equal(exp.metric("inactive_frac_end", cell), [0.0, 1.0, np.nan])
    np.testing.assert_array_equal(exp.metric("revived_units", cell), [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(exp.metric("revived_frac", cell), [1.0, 0.0, np.nan])
    np.testing.assert_array_equal(exp.metric("final_loss", cell), [0.5, 2.0, np.nan])
    np.testing.assert_array_equal(exp.metric("diverged", cell), [0.0, 0.0, 1.0])
    with pytest.raises(KeyError):
        exp.metric("nope", cell)


def test_run_shapes_and_relu_dead_means_inactive(data):
    cell = _cell({**BASE, "lr": 0.5}, data, key="shapes")
    a = cell.result.arrays
    assert a["dead0"].shape == (4, 5, 16) and a["zmax1"].shape == (4, 5, 16) and a["loss"].shape == (4, 5)
    # for ReLU, f'(z) = [z > 0], so "derivative 0 on every input" is exactly "z <= 0 on every input"
    for layer in range(2):
        np.testing.assert_array_equal(a[f"dead{layer}"], a[f"zmax{layer}"] <= 0)
    # snapshot 0 is the untrained ensemble built from the same seeds
    net = MLP(2, [16, 16], 2, activation="relu", init="he_normal", seeds=Seeds(4, key=("test", "shapes")))
    np.testing.assert_allclose(a["zmax0"][:, 0], net.forward(data["moons"].x_train).pre[0].max(axis=1))
    again = _cell({**BASE, "lr": 0.5}, data, key="shapes")
    for key, value in a.items():
        np.testing.assert_array_equal(value, again.result.arrays[key])


def test_first_layer_dead_units_never_revive_but_deeper_ones_do(data):
    """A dead first-layer unit has fixed inputs and a zero gradient: it cannot come back."""
    exp = DyingUnits()
    params = {**BASE, "depth": 3, "epochs": 12, "lr": 1.0, "batch_size": 10}
    cell = _cell(params, data, key="revive")
    first = _stored({**params, "layers": "first"}, cell.result.arrays)
    last = _stored({**params, "layers": "last"}, cell.result.arrays)
    ever_first, back_first = revivals(cell.result.arrays["dead0"])
    assert ever_first.sum() > 0 and back_first.sum() == 0
    assert np.nansum(exp.metric("revived_units", first)) == 0
    assert np.nansum(exp.metric("revived_units", last)) > 0


def test_leaky_units_are_never_dead_but_can_be_inactive(data):
    exp = DyingUnits()
    params = {**BASE, "activation": {"name": "leaky_relu", "slope": 0.01}, "lr": 1.0, "batch_size": 10}
    cell = _cell(params, data, key="leaky")
    a = cell.result.arrays
    assert not a["dead0"].any() and not a["dead1"].any()
    assert np.nanmax(exp.metric("inactive_frac_epoch1", cell)) > 0


def test_larger_lr_kills_more_units(data):
    exp = DyingUnits()
    low = exp.metric("dead_frac_epoch1", _cell({**BASE, "lr": 0.01}, data, key="low"))
    high = exp.metric("dead_frac_epoch1", _cell({**BASE, "lr": 3.0, "batch_size": 10}, data, key="high"))
    assert np.nanmean(high) > np.nanmean(low) + 0.2


def test_divergence_is_recorded_and_padded(data):
    exp = DyingUnits()
    params = {**BASE, "activation": {"name": "leaky_relu", "slope": 0.5}, "lr": 1e8, "epochs": 3}
    cell = _cell(params, data, key="div")
    a = cell.result.arrays
    assert a["diverged"].all() and a["dead0"].shape[1] == 4 and a["loss"].shape[1] == 4
    assert np.isnan(a["zmax0"][:, 1:]).all() and np.isfinite(a["zmax0"][:, 0]).all()
    np.testing.assert_array_equal(exp.metric("diverged", cell), 1.0)
    for name in ("dead_frac_end", "inactive_frac_end", "final_loss", "revived_frac"):
        assert np.isnan(exp.metric(name, cell)).all()
    assert np.isfinite(exp.metric("dead_frac_init", cell)).all()


def _claim(claim_id, grid, decision, **params):
    return {
        "id": claim_id,
        "group": "D",
        "sources": ["000"],
        "statement": "Dead ReLU units and what happens to them.",
        "experiment": "dying_units",
        "seeds": 3,
        "params": {**BASE, **params},
        "grid": grid,
        "decision": decision,
    }


def _judge(claim, data, tmp_path):
    (claim,) = resolve({"claims": [claim]}, SOURCES, "full")
    exp = EXPERIMENTS["dying_units"]
    cells = []
    for cid, spec in claim["cells"].items():
        result = exp.run(spec["params"], Seeds(claim["seeds"], key=("test", cid)), data)
        cells.append(Cell(cid, spec["setting"], spec["params"], result))
    caption = figures.draw(exp, claim, cells, {"conditions": []}, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 10_000 and caption
    return judging.conditions(claim, cells, exp)


def test_register_rejects_bad_scope_and_batch(preregistered):
    rule = preregistered({"metric": "dead_frac_end", "compare": ">", "threshold": 0.4})
    bad = _claim("x", {"lr": [0.1]}, rule, layers="middle")
    with pytest.raises(RegisterError, match="layers"):
        resolve({"claims": [bad]}, SOURCES, "full")
    bad = _claim("x", {"lr": [0.1]}, rule, batch_size=0)
    with pytest.raises(RegisterError, match="batch_size"):
        resolve({"claims": [bad]}, SOURCES, "full")


def test_judge_and_figures(data, tmp_path, preregistered):
    revival = _claim(
        "dead-stays-dead",
        {"batch": [{"label": "full", "batch_size": None}, {"label": "mini", "batch_size": 20}], "layers": ["first"]},
        preregistered(
            {
                "metric": "revived_frac",
                "split_by": ["batch", "layers"],
                "compare": "<",
                "threshold": 0.05,
                "headline": {"batch": "mini", "layers": "first"},
            }
        ),
        lr=1.0,
    )
    conds = _judge(revival, data, tmp_path)
    assert [c["label"] for c in conds] == ["batch=full, layers=first", "batch=mini, layers=first"]
    sweep = _claim(
        "high-lr-kills-units",
        {"lr": [0.01, 3.0]},
        preregistered(
            {
                "metric": "dead_frac_epoch1",
                "split_by": ["lr"],
                "compare": ">",
                "threshold": 0.4,
                "headline": {"lr": 3.0},
            }
        ),
        layers="all",
    )
    conds = _judge(sweep, data, tmp_path)
    assert np.mean(conds[1]["values"]) > np.mean(conds[0]["values"])
    bars = _claim(
        "leaky-prevents-dying",
        {"activation": ["relu", "leaky_relu", "elu"], "lr": [1.0]},
        preregistered(
            {
                "metric": "inactive_frac_end",
                "where": {"activation": ["leaky_relu", "elu"]},
                "split_by": ["activation", "lr"],
                "compare": "<",
                "threshold": 0.1,
                "headline": {"activation": "leaky_relu", "lr": 1.0},
            }
        ),
    )
    conds = _judge(bars, data, tmp_path)
    assert [c["setting"]["activation"] for c in conds] == ["leaky_relu", "elu"]


def _random_cell(cell_id, setting, seed, diverged_epoch=(-1,) * 6, loss_scale=1.0, **params):
    """A stored cell of 6 seeds (2 hidden layers of 6 units, 3 epochs) with random pre-activation maxima.

    Snapshots from a seed's divergence on are NaN, as :meth:`DyingUnits.run` stores them.
    """
    params = {**BASE, "width": 6, "epochs": 3, **params}
    rng = np.random.default_rng(seed)
    diverged_epoch = np.array(diverged_epoch)
    valid = snapshot_valid(diverged_epoch, 4)
    arrays = {"diverged": diverged_epoch > 0, "diverged_epoch": diverged_epoch}
    for layer in range(2):
        zmax = rng.normal(size=(6, 4, 6))
        arrays[f"dead{layer}"] = zmax <= 0
        zmax[~valid] = np.nan
        arrays[f"zmax{layer}"] = zmax
    for key in ("loss", "accuracy"):
        arrays[key] = np.where(valid, rng.uniform(0.1, 1.0, (6, 4)) * (loss_scale if key == "loss" else 1), np.nan)
    info = {"steps_per_epoch": 2, "n_classes": 2, "n_diverged": int(arrays["diverged"].sum())}
    return Cell(cell_id, setting, params, CellResult(arrays, info))


def test_the_revival_figure_pools_each_batch_setting_and_leaves_diverged_nets_out():
    exp = EXPERIMENTS["dying_units"]
    cells = [
        _random_cell("full", {"batch": "full", "layers": "first"}, 0),
        _random_cell("mini", {"batch": "mini", "layers": "first"}, 1, diverged_epoch=(-1, -1, -1, -1, -1, 2)),
    ]
    claim = {"grid": {"batch": ["full", "mini"], "layers": ["first"]}, "decision": DECISION_REVIVED}
    figure = figures.FIGURES["dying_units"].from_verdict(exp, claim, cells, {"conditions": []})
    assert isinstance(figure, RevivalFigure) and figure.modes == ["full", "mini"] and figure.threshold == 0.05
    a = cells[1].result.arrays
    share = revived_share(a["dead1"], a["diverged"])[:5]
    mean, lo, hi = figure.revived[1, 1]
    assert mean == share.mean() and (lo, hi) == stats.interval(share, binary=False)
    ever, back = revivals(a["dead1"][:5])
    assert tuple(figure.counts[1, 1]) == (back.sum(axis=1).mean(), ever.sum(axis=1).mean())
    dead = a["dead0"].mean(axis=2)  # the seed that diverged in epoch 2 is left out from snapshot 2 on
    expected = [np.median(dead[:, 0]), np.median(dead[:, 1]), np.median(dead[:5, 2]), np.median(dead[:5, 3])]
    np.testing.assert_allclose(figure.curves[1][0].mid, expected)
    raster = figure.rasters[1]
    assert raster.image.shape == (sum(raster.units), 4) and raster.image.any(axis=1).all()


def test_the_learning_rate_figure_sorts_the_rates_and_shows_the_metrics_intervals():
    exp = EXPERIMENTS["dying_units"]
    cells = [
        _random_cell("fast", {"lr": "1.0"}, 2, diverged_epoch=(-1, -1, -1, -1, 3, 3), lr=1.0),
        _random_cell("slow", {"lr": "0.1"}, 3, lr=0.1),
    ]
    claim = {"grid": {"lr": [1.0, 0.1]}, "decision": {"metric": "dead_frac_epoch1", "threshold": 0.4}}
    figure = figures.FIGURES["dying_units"].from_verdict(exp, claim, cells, {"conditions": []})
    assert isinstance(figure, LearningRateFigure)
    assert list(figure.lrs) == [0.1, 1.0] and figure.n_diverged == [0, 2]
    end = exp.metric("dead_frac_end", cells[0])
    finite = end[np.isfinite(end)]
    assert len(finite) == 4 and figure.stages[1].mean[1] == finite.mean()
    assert (figure.stages[1].lo[1], figure.stages[1].hi[1]) == stats.interval(finite, binary=False)
    assert figure.layers[1].mean[0] == cells[1].result.arrays["dead1"][:, 1].mean(axis=1).mean()
    np.testing.assert_allclose(figure.loss.mid, [np.nanmedian(exp.metric("final_loss", c)) for c in cells[::-1]])


def test_the_learning_rate_figure_draws_cells_of_different_seed_counts(tmp_path):
    exp = EXPERIMENTS["dying_units"]
    judged = _random_cell("judged", {"lr": "1.0"}, 5, lr=1.0)
    context = _random_cell("context", {"lr": "0.1"}, 6, lr=0.1)
    context.result.arrays.update({k: v[:4] for k, v in context.result.arrays.items()})  # context.seeds: 4
    claim = {"grid": {"lr": [1.0, 0.1]}, "decision": {"metric": "dead_frac_epoch1", "threshold": 0.4}}
    figure = figures.FIGURES["dying_units"].from_verdict(exp, claim, [judged, context], {"conditions": []})
    expected = [np.nanmedian(exp.metric("final_loss", c)) for c in (context, judged)]
    np.testing.assert_allclose(figure.loss.mid, expected)
    assert figure.plot(tmp_path / "figure.png")


def test_the_activation_figure_shows_binomial_divergence_and_caps_the_loss(tmp_path):
    exp = EXPERIMENTS["dying_units"]
    in_epoch_1 = (1,) * 6
    cells = [
        _random_cell("relu-1", {"activation": "relu", "lr": "1.0"}, 4, loss_scale=1e4, activation="relu"),
        _random_cell("elu-1", {"activation": "elu", "lr": "1.0"}, 5, diverged_epoch=(-1, 2) * 3, activation="elu"),
        _random_cell("elu-0.5", {"activation": "elu", "lr": "0.5"}, 6, diverged_epoch=in_epoch_1, activation="elu"),
    ]
    claim = {
        "grid": {"activation": ["relu", "elu"], "lr": [1.0, 0.5]},
        "decision": {"metric": "inactive_frac_end", "compare": "<", "threshold": 0.1},
    }
    figure = figures.FIGURES["dying_units"].from_verdict(exp, claim, cells, {"conditions": []})
    assert isinstance(figure, ActivationFigure) and figure.others == ["lr=1.0", "lr=0.5"]
    assert figure.slots == [(0, 0), (0, 1), (1, 1)] and figure.binary == {"diverged"}
    assert tuple(figure.bars["diverged"][1]) == (0.5, *stats.interval(np.array([0, 1.0] * 3), binary=True))
    inactive = exp.metric("inactive_frac_end", cells[1])[::2]
    assert figure.n_inactive[1] == 3 and figure.bars["inactive_frac_end"][1, 0] == inactive.mean()
    assert figure.loss[0, 1] == LOSS_CAP and figure.loss_median[0] > LOSS_CAP
    assert np.isnan(figure.loss_median[2]) and np.isnan(figure.bars["dead_frac_end"][2]).all()
    caption = figures.draw(exp, claim, cells, {"conditions": []}, tmp_path / "f.png")
    assert "Each activation" in caption and (tmp_path / "f.png").stat().st_size > 10_000
