"""The contract every registered experiment type keeps, checked on each type's first claim (quick settings).

A run returns the arrays its type declares (:attr:`Experiment.dims`: each array's number of
dimensions, a seed axis of one entry per seed, epoch axes as long as the cell's epochs say; every
declared array returned unless it is optional), a saved cell loads back identical, every
declared metric that the register would accept for the cell (:meth:`Experiment.check_metric`)
gives a finite value or NaN per seed (NaN only where the experiment says the
metric is undefined for that net), 0/1 metrics are 0 or 1, the verdict is well formed, and the
figure renders from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from actlab.claims import figures, judging
from actlab.claims.experiments import EXPERIMENTS, Cell, CellResult
from actlab.claims.experiments.base import DIMS, EPOCH_DIMS, epoch_numbers
from actlab.claims.register import load_yaml, resolve
from actlab.engine.datasets import make_dataset
from actlab.engine.seeding import Seeds

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
CLAIMS = resolve(load_yaml(REPO / "config/claims.yaml"), load_yaml(REPO / "config/sources.yaml")["sources"], "quick")
#: each type's first claim that measures everything it can (a zoo claim with train_series: ends
#: gives fewer metrics; tests/test_experiment_zoo.py checks that setting)
FIRST_CLAIM = {
    name: next(c for c in CLAIMS if c["experiment"] == name and c["params"].get("train_series") != "ends")
    for name in sorted(EXPERIMENTS)
}
N_SEEDS = 3


def test_every_experiment_type_is_used_by_a_claim():
    assert all(name in FIRST_CLAIM for name in EXPERIMENTS)


def test_epoch_dimensions_name_their_epochs():
    arrays = {"probe_epochs": np.array([0, 2])}
    assert {dim: list(epoch_numbers(dim, 3, arrays)) for dim in EPOCH_DIMS} == {
        "epoch": [0, 1, 2, 3],
        "train_epoch": [1, 2, 3],
        "probe": [0, 2],
        "stage": [0, 3],
    }
    assert list(epoch_numbers("stage", 0, arrays)) == [0]


def test_a_layer_name_declares_one_array_per_layer():
    dying = EXPERIMENTS["dying_units"]
    assert dying.array_dims("dead0") == dying.array_dims("dead12") == ("seed", "epoch", "unit")
    for undeclared in ("dead", "deadx", "dead1_mean", "weights"):
        with pytest.raises(KeyError, match="no dims declared"):
            dying.array_dims(undeclared)


@pytest.fixture(scope="module")
def datasets() -> dict:
    return {name: make_dataset(name, spec, CONFIG["seed"]) for name, spec in CONFIG["datasets"].items()}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_an_experiment_type_keeps_the_contract(name, datasets, tmp_path):
    experiment, claim = EXPERIMENTS[name], FIRST_CLAIM[name]
    assert set(experiment.binary_metrics) <= set(experiment.metrics)
    cells, n_seeds = [], {}
    for index, (cell_id, spec) in enumerate(claim["cells"].items()):
        data = {n: datasets[n] for n in experiment.datasets(spec["params"])}
        n_seeds[cell_id] = N_SEEDS - index % 2  # cells of two sizes, as under context.seeds
        result = experiment.run(spec["params"], Seeds(n_seeds[cell_id], key=("contract", cell_id)), data)
        check_dims(experiment, result.arrays, spec["params"], n_seeds[cell_id])
        result.save(tmp_path / f"{cell_id}.npz", tmp_path / f"{cell_id}.json")
        loaded = CellResult.load(tmp_path / f"{cell_id}.npz", tmp_path / f"{cell_id}.json")
        assert loaded.arrays.keys() == result.arrays.keys()
        for key, array in result.arrays.items():
            np.testing.assert_array_equal(loaded.arrays[key], array)
        cells.append(Cell(cell_id, spec["setting"], spec["params"], loaded))
    for cell in cells:
        for metric in experiment.metrics:
            try:
                experiment.check_metric(metric, cell.params)
            except ValueError:  # refused before any job: the metric is not defined for this cell
                continue
            values = np.asarray(experiment.metric(metric, cell), float)
            assert values.shape == (n_seeds[cell.id],), (metric, values.shape)
            assert not np.isinf(values).any(), metric
            if metric in experiment.binary_metrics:
                assert set(values[np.isfinite(values)]) <= {0.0, 1.0}, metric
        flags = experiment.diverged(cell)
        assert flags is None or np.asarray(flags).shape == (n_seeds[cell.id],)
    verdict = judging.judge(claim, cells, experiment, 0)
    assert {c for cond in verdict["conditions"] for c in cond["cells"]} <= {c.id for c in cells}
    caption = figures.draw(experiment, claim, cells, verdict, tmp_path / "figure.png")
    assert caption and (tmp_path / "figure.png").stat().st_size > 10_000


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_fewer_seeds_train_the_same_first_runs(name, datasets):
    """Seed k of a 2-seed ensemble is seed k of a 3-seed one, to the byte: a context cell that trains
    only the first ``context.seeds`` (:func:`actlab.claims.register.expand_cells`) runs exactly those runs."""
    experiment, claim = EXPERIMENTS[name], FIRST_CLAIM[name]
    if experiment.machine_dependent:
        pytest.skip(f"{name} measures wall-clock time")
    cell_id, spec = next(iter(claim["cells"].items()))
    data = {n: datasets[n] for n in experiment.datasets(spec["params"])}
    full, part = (experiment.run(spec["params"], Seeds(n, key=("contract", cell_id)), data) for n in (N_SEEDS, 2))
    assert part.arrays.keys() == full.arrays.keys()
    for key, array in full.arrays.items():
        if experiment.array_dims(key)[:1] in (("seed",), ("first_seeds",)):
            kept = array[: len(part.arrays[key])]
            assert kept.shape == part.arrays[key].shape and kept.tobytes() == part.arrays[key].tobytes(), key
        else:  # not per seed (e.g. the grid of evaluation points)
            np.testing.assert_array_equal(part.arrays[key], array, err_msg=key)


def check_dims(experiment, arrays: dict[str, np.ndarray], params: dict, n_seeds: int = N_SEEDS) -> None:
    """The arrays of one cell are those ``experiment.dims`` declares, with the declared dimensions.

    An optional array (``experiment.optional_arrays``) may be missing; a ``{layer}`` name must be
    there for layer 0 at least.
    """
    assert experiment.optional_arrays <= experiment.dims.keys()
    required = {key.replace("{layer}", "0") for key in experiment.dims if key not in experiment.optional_arrays}
    assert required <= arrays.keys(), f"declared but not returned: {sorted(required - arrays.keys())}"
    for name, array in arrays.items():
        dims = experiment.array_dims(name)  # KeyError: not declared
        assert set(dims) <= DIMS.keys() and array.ndim == len(dims), (name, dims, array.shape)
        for axis, (dim, length) in enumerate(zip(dims, array.shape, strict=True)):
            if dim in ("seed", "first_seeds"):
                assert axis == 0 and (length == n_seeds if dim == "seed" else length <= n_seeds), (
                    name,
                    dims,
                    array.shape,
                )
            elif dim in EPOCH_DIMS:
                assert length == len(epoch_numbers(dim, params["epochs"], arrays)), (name, dims, array.shape)
