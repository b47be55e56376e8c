"""The activation-cost experiment: interleaved timings of an activation and its reference, the
machine they ran on, and ratios whose direction is known where the gap is large."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.claims.experiments import EXPERIMENTS
from actlab.claims.experiments.base import Cell
from actlab.engine.memory import keep_freed_memory
from actlab.engine.seeding import Seeds

COST = EXPERIMENTS["activation_cost"]


def _cell(activation, reference="relu", n_reps: int = 5, size: int = 65536, dtype: str = "float64") -> Cell:
    params = {"activation": activation, "reference": reference, "size": size, "dtype": dtype}
    COST.check(params)
    return Cell("c", {}, params, COST.run(params, Seeds(n_reps, key=(0, "cost")), {}))


def test_every_repetition_times_both_and_the_machine_is_recorded():
    cell = _cell("sigmoid", dtype="float32")
    a = cell.result.arrays
    assert a["seconds_per_element"].shape == a["reference_seconds_per_element"].shape == (5,)
    assert (a["seconds_per_element"] > 0).all() and (a["reference_seconds_per_element"] > 0).all()
    np.testing.assert_allclose(
        COST.metric("time_ratio", cell), a["seconds_per_element"] / a["reference_seconds_per_element"]
    )
    assert {"cpu", "numpy", "blas", "allocator"} <= set(cell.result.info["machine"])
    assert cell.result.info["machine"]["allocator"] == keep_freed_memory()  # timed on memory the process keeps
    assert COST.machine_dependent


def test_ratios_point_the_known_way_where_the_gap_is_large():
    """The identity hands back its input (far cheaper than ReLU); GELU calls the normal CDF (far dearer).
    Medians of interleaved repetitions, so a loaded machine shifts both sides of each ratio alike."""
    assert np.median(COST.metric("time_ratio", _cell("identity"))) < 1.0
    assert np.median(COST.metric("time_ratio", _cell("gelu"))) > 1.0


@pytest.mark.parametrize("spec", [{"name": "prelu"}, {"name": "mixed", "groups": [["relu", 1], ["tanh", 1]]}])
def test_activations_with_parameters_are_refused(spec):
    with pytest.raises(ValueError, match="stateless"):
        COST.check({"activation": spec, "size": 10, "dtype": "float64"})
