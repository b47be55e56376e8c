"""gradient_flow: a cell probes at initialization and after the last epoch, which is what its metrics read."""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments import EXPERIMENTS, Cell
from actlab.engine import Seeds
from actlab.engine.datasets import Dataset

EXP = EXPERIMENTS["gradient_flow"]


def _data() -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    return {"toy": Dataset("toy", "classification", x[:160], y[:160], x[160:], y[160:])}


PARAMS = {"dataset": "toy", "depth": 4, "width": 16, "activation": "sigmoid", "init": "glorot_normal"}
PARAMS |= {"epochs": 3, "lr": 0.5, "batch_size": 32, "probe_size": 64}


def test_a_cell_probes_the_ends_and_its_metrics_read_them():
    result = EXP.run(PARAMS, Seeds(3, key=(0, "flow")), _data())
    arrays = result.arrays
    np.testing.assert_array_equal(arrays["probe_epochs"], [0, 3])
    assert arrays["grad_norm"].shape == arrays["delta_norm"].shape == (3, 2, 5)
    assert arrays["loss"].shape == (3, 3) and np.isfinite(arrays["loss"]).all()
    cell = Cell("c", {}, PARAMS, result)
    at_init, trained = arrays["grad_norm"][:, 0], arrays["grad_norm"][:, 1]
    np.testing.assert_array_equal(EXP.metric("log10_grad_ratio", cell), np.log10(at_init[:, 0] / at_init[:, 3]))
    np.testing.assert_array_equal(EXP.metric("log10_grad_ratio_trained", cell), np.log10(trained[:, 0] / trained[:, 3]))
    assert not np.array_equal(at_init, trained)  # training moved the weights between the two probes


def test_an_untrained_cell_probes_once_and_a_diverged_one_keeps_two_probes():
    """slope-product's nets train no epoch: one probe, read as both ends. A cell whose every seed
    diverges stops early, and its last probe is NaN, never a probe from before the divergence."""
    untrained = EXP.run({**PARAMS, "epochs": 0}, Seeds(2, key=(0, "flow")), _data()).arrays
    np.testing.assert_array_equal(untrained["probe_epochs"], [0])
    assert untrained["grad_norm"].shape == (2, 1, 5)
    exploded = EXP.run({**PARAMS, "lr": 1e12, "init": {"name": "normal", "std": 30.0}}, Seeds(2, key=(0, "x")), _data())
    arrays = exploded.arrays
    assert arrays["diverged"].all()
    np.testing.assert_array_equal(arrays["probe_epochs"], [0, 3])
    assert np.isfinite(arrays["grad_norm"][:, 0]).all() and np.isnan(arrays["grad_norm"][:, 1]).all()
