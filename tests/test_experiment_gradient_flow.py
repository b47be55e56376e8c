"""gradient_flow: a cell probes at initialization and after the last epoch, which is what its metrics read."""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments import EXPERIMENTS, Cell
from actlab.engine import Seeds
from actlab.engine.datasets import Dataset

EXP = EXPERIMENTS["gradient_flow"]


def test_a_cell_probes_the_ends_and_its_metrics_read_them():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    data = {"toy": Dataset("toy", "classification", x[:160], y[:160], x[160:], y[160:])}
    params = {"dataset": "toy", "depth": 4, "width": 16, "activation": "sigmoid", "init": "glorot_normal"}
    params |= {"epochs": 3, "lr": 0.5, "batch_size": 32, "probe_size": 64}
    result = EXP.run(params, Seeds(3, key=(0, "flow")), data)
    arrays = result.arrays
    np.testing.assert_array_equal(arrays["probe_epochs"], [0, 3])
    assert arrays["grad_norm"].shape == arrays["delta_norm"].shape == (3, 2, 5)
    assert arrays["loss"].shape == (3, 3) and np.isfinite(arrays["loss"]).all()
    cell = Cell("c", {}, params, result)
    at_init, trained = arrays["grad_norm"][:, 0], arrays["grad_norm"][:, 1]
    np.testing.assert_array_equal(EXP.metric("log10_grad_ratio", cell), np.log10(at_init[:, 0] / at_init[:, 3]))
    np.testing.assert_array_equal(EXP.metric("log10_grad_ratio_trained", cell), np.log10(trained[:, 0] / trained[:, 3]))
    assert not np.array_equal(at_init, trained)  # training moved the weights between the two probes
