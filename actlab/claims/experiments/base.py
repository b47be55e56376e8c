"""What an experiment type is: how one cell is trained and which per-seed metrics it yields.

A claim in the register names an experiment type, fixed ``params`` and a ``grid``; every grid
point is a *cell* whose seeds are trained together as one ensemble (:meth:`Experiment.run`). The
judge then asks the experiment for a decision metric, one value per seed and cell
(:meth:`Experiment.metric`); the claim's figure is drawn apart, from the judged verdict
(:mod:`actlab.claims.figures`). An experiment type declares each of its metrics once, as a method
marked with :func:`metric`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actlab.engine.activations import get_activation
from actlab.engine.datasets import Dataset
from actlab.engine.initializers import get_initializer
from actlab.engine.network import MLP
from actlab.engine.seeding import Seeds

#: JSON schema of an activation or initializer: a registry name or ``{"name": ..., **arguments}``.
SPEC = {"type": ["string", "object"]}

#: Bounded sizes, shared by every experiment's params schema: a typo (``epochs: 1000000000``) is
#: refused before any job runs instead of launching jobs that cannot finish or fit in memory.
EPOCHS = {"type": "integer", "minimum": 0, "maximum": 10_000}
DEPTH = {"type": "integer", "minimum": 1, "maximum": 500}
WIDTH = {"type": "integer", "minimum": 1, "maximum": 8192}

#: JSON schema properties of the experiments that train one MLP per cell on a data set with SGD;
#: an experiment adds its own and may override one (``{**TRAINED_MLP_PROPERTIES, "epochs": ...}``).
TRAINED_MLP_PROPERTIES = {
    "dataset": {"type": "string"},
    "depth": DEPTH,
    "width": WIDTH,
    "activation": SPEC,
    "init": SPEC,
    "bias_init": SPEC,
    "epochs": EPOCHS,
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "batch_size": {"type": "integer", "minimum": 1},
}
TRAINED_MLP_REQUIRED = ["dataset", "depth", "width", "activation", "init", "epochs", "lr", "batch_size"]


#: The epoch dimensions: an axis over the epochs of a training, and the epochs its entries belong
#: to (:func:`epoch_numbers`; E is the cell's ``epochs``).
EPOCH_DIMS = {
    "epoch": "epochs 0..E, E + 1 entries; 0 is the initialization",
    "train_epoch": "epochs 1..E, one entry per epoch of training (the mean mini-batch loss of each)",
    "probe": "the epochs listed in the cell's own probe_epochs array",
    "stage": "epochs 0 and E: at initialization and after training (only 0 when E is 0)",
}

#: Every dimension an array of a cell may have (:attr:`Experiment.dims`), name -> meaning.
DIMS = {
    "seed": "the cell's seeds, n_seeds entries; always the first axis",
    "first_seeds": "the cell's first seeds, at most n_seeds (born_dead's contrast initialization)",
    **EPOCH_DIMS,
    "layer": "the layers of the net (hidden or dense ones, as the experiment's run says)",
    "unit": "the units of one hidden layer",
    "activation": "the activations a cell measures, in the order of its params",
    "width": "the widths a cell measures",
    "member": "the members of a family of nets, one per width and L1 coefficient",
    "snapshot": "snapshots during training, at the optimizer steps in the cell's snapshot_step array",
    "parameter": "the parameters of a model, named in the cell's info['parameters']",
    "grid": "the points of a grid of pre-activations, the cell's plot_z array",
}


def epoch_numbers(dim: str, epochs: int, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The epochs that the entries of an axis of epoch dimension ``dim`` belong to.

    Parameters
    ----------
    dim : str
        One of :data:`EPOCH_DIMS`.
    epochs : int
        The cell's ``epochs``, E.
    arrays : dict
        The cell's arrays: ``probe`` reads its ``probe_epochs``.

    Returns
    -------
    ndarray of int, shape (T,)
        ``0..E`` (``epoch``), ``1..E`` (``train_epoch``), ``probe_epochs`` (``probe``) or
        ``[0, E]`` (``stage``; ``[0]`` when E is 0).
    """
    if dim == "epoch":
        return np.arange(epochs + 1)
    if dim == "train_epoch":
        return np.arange(1, epochs + 1)
    if dim == "probe":
        return arrays["probe_epochs"]
    if dim == "stage":
        return np.unique([0, epochs])
    raise ValueError(f"{dim!r} is not an epoch dimension; those are {', '.join(EPOCH_DIMS)}")


@dataclass
class CellResult:
    """A trained cell: arrays (saved as ``.npz``) and JSON-able facts (saved as ``.json``).

    The dimensions of the arrays are declared by the cell's experiment type, in code
    (:attr:`Experiment.dims`), not in the files.
    """

    arrays: dict[str, np.ndarray]
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, npz_path: str | Path, json_path: str | Path) -> None:
        np.savez_compressed(npz_path, **self.arrays)
        Path(json_path).write_text(json.dumps(self.info, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, npz_path: str | Path, json_path: str | Path) -> CellResult:
        with np.load(npz_path) as data:
            arrays = {k: data[k] for k in data.files}
        return cls(arrays, json.loads(Path(json_path).read_text()))


@dataclass
class Cell:
    """One grid point of a claim: its id, its axis labels, its merged parameters and its result."""

    id: str
    setting: dict[str, str]
    params: dict[str, Any]
    result: CellResult | None = None


def metric(meaning: str, binary: bool = False, name: str | None = None) -> Callable:
    """Declare a method of an :class:`Experiment` subclass as one of its decision metrics.

    The method takes a trained :class:`Cell` and returns the metric's value for every seed,
    shape ``(n_seeds,)``::

        @metric("fraction of hidden units with f' = 0 on every training input at init")
        def dead_frac_init(self, cell: Cell) -> np.ndarray:
            ...

    Parameters
    ----------
    meaning : str
        What the metric measures, in one line (the register's errors and the report show it).
    binary : bool
        The metric is a 0/1 outcome per seed: its interval is then the exact binomial one.
    name : str, optional
        The metric's name; the method's name by default. Give it when the name is taken by a
        method of :class:`Experiment` (a metric called ``diverged``, say).
    """

    def declare(method: Callable) -> Callable:
        method.metric_name = name or method.__name__
        method.meaning = meaning
        method.binary = binary
        return method

    return declare


class Experiment:
    """Base class of experiment types; subclasses fill in the class attributes and methods.

    A subclass declares its decision metrics with :func:`metric`; ``metrics`` and
    ``binary_metrics`` are derived from them when the subclass is defined (``__init_subclass__``).
    """

    name = "experiment"
    description = ""
    #: JSON schema (an object schema) that every cell's merged params must satisfy
    params_schema: dict = {"type": "object"}
    #: decision metrics this experiment can compute, name -> one-line meaning (derived)
    metrics: dict[str, str] = {}
    #: the metrics among ``metrics`` that are 0/1 outcomes per seed, for exact binomial intervals (derived)
    binary_metrics: frozenset[str] = frozenset()
    #: metric name -> the method that computes it (derived)
    _metric_methods: dict[str, Callable] = {}
    #: the results are wall-clock measurements: they differ between machines and between runs, so
    #: each cell records its ``info["machine"]`` and the verdict lists them (no byte-identical results)
    machine_dependent = False

    def __init_subclass__(cls, **kwargs) -> None:
        """Derive the new subclass's metrics from its methods marked with :func:`metric` (after its parent's)."""
        super().__init_subclass__(**kwargs)
        if "metrics" in vars(cls) or "binary_metrics" in vars(cls):
            raise TypeError(f"{cls.__name__}: declare each metric with @metric, not in metrics or binary_metrics")
        own = {m.metric_name: m for m in vars(cls).values() if hasattr(m, "metric_name")}
        cls._metric_methods = {**cls._metric_methods, **own}
        cls.metrics = {name: m.meaning for name, m in cls._metric_methods.items()}
        cls.binary_metrics = frozenset(name for name, m in cls._metric_methods.items() if m.binary)

    def check(self, params: dict) -> None:
        """Semantic checks beyond the schema; raise ``ValueError`` naming the offending key."""
        for key in ("activation", "output_activation"):
            if key in params:
                _check_spec(get_activation, params[key], key)
        for key in ("init", "bias_init"):
            if key in params:
                _check_spec(get_initializer, params[key], key)

    def check_metric(self, name: str, params: dict) -> None:
        """Raise ``ValueError`` (naming the key) if metric ``name`` is undefined for a cell with ``params``.

        The register calls it for every cell a decision rule measures, before any job runs.
        """

    def datasets(self, params: dict) -> list[str]:
        """Names of the data sets a cell needs (keys of the config's ``datasets``)."""
        return [params["dataset"]] if "dataset" in params else []

    #: the dimensions of every array :meth:`run` returns, array name -> names from :data:`DIMS`
    #: (``"loss": ("seed", "train_epoch")``), declared here in code: the cell files hold the arrays
    #: alone. A name with ``{layer}`` declares one array per hidden layer (``dead{layer}``:
    #: ``dead0``, ``dead1``, ...). Tracking logs the per-seed arrays by them
    #: (:func:`actlab.tracking.series.seed_metrics`).
    dims: dict[str, tuple[str, ...]] = {}
    #: the names in ``dims`` that only some cells return, depending on their params (the slopes of
    #: a PReLU net, say); every cell returns each of the others
    optional_arrays: frozenset[str] = frozenset()

    def run(self, params: dict, seeds: Seeds, data: dict[str, Dataset]) -> CellResult:
        """Train or measure one cell for every seed at once; its arrays are those of :attr:`dims`."""
        raise NotImplementedError

    def array_dims(self, name: str) -> tuple[str, ...]:
        """The dimensions :attr:`dims` declares for the array ``name`` of a cell.

        Raises
        ------
        KeyError
            No entry of :attr:`dims` declares ``name``.
        """
        for key, dims in self.dims.items():
            if re.fullmatch(re.escape(key).replace(re.escape("{layer}"), r"\d+"), name):
                return dims
        raise KeyError(f"experiment {self.name}: no dims declared for the array {name!r}")

    def metric(self, name: str, cell: Cell) -> np.ndarray:
        """Per-seed values of metric ``name`` for a trained cell, shape ``(n_seeds,)``.

        Calls the method declared for ``name`` with :func:`metric`. ``KeyError`` for a name the
        experiment does not declare, or a cell without an array the metric reads.
        """
        if name not in self._metric_methods:
            raise KeyError(
                f"experiment {self.name} has no metric {name!r}; its metrics: {', '.join(sorted(self.metrics))}"
            )
        try:
            return self._metric_methods[name](self, cell)
        except KeyError as err:
            raise KeyError(f"{name}: cell {cell.id} did not record {err}") from None

    def diverged(self, cell: Cell) -> np.ndarray | None:
        """Which seeds of a trained cell diverged, shape ``(n_seeds,)`` of bool; None if none can.

        The training loop marks a seed diverged when its loss or a parameter became non-finite
        or its loss exploded (:data:`actlab.engine.training.EXPLODED_LOSS`); experiments that train
        nothing record no ``diverged`` array.
        """
        arrays = cell.result.arrays
        return np.asarray(arrays["diverged"], bool) if "diverged" in arrays else None


def cell_roles(verdict: dict) -> dict[str, str]:
    """Cell id -> the role of the condition measured on it (judged, control or context).

    A cell in several conditions takes the first role in the order judged, control, context;
    a cell in none (a tuning candidate not picked, say) is absent.
    """
    roles: dict[str, str] = {}
    for role in ("judged", "control", "context"):
        for cond in verdict["conditions"]:
            if cond["role"] == role:
                for cell_id in cond["cells"]:
                    roles.setdefault(cell_id, role)
    return roles


def build_mlp(params: dict, ds: Dataset, seeds: Seeds, width: int | None = None, init=None) -> MLP:
    """The network of the experiments that train one MLP per cell on a data set.

    ``params["depth"]`` hidden layers of ``width`` units (default ``params["width"]``) between the
    data set's inputs and outputs, with ``params``' ``activation`` (default ReLU), ``init`` (or the
    ``init`` given), ``bias_init`` (default zeros), ``batchnorm`` (default none) and ``dtype``
    (default float64), one ensemble member per seed.
    """
    return MLP(
        ds.n_inputs,
        [params["width"] if width is None else width] * params["depth"],
        ds.n_outputs,
        activation=params.get("activation", "relu"),
        init=params["init"] if init is None else init,
        bias_init=params.get("bias_init", "zeros"),
        batchnorm=params.get("batchnorm"),
        seeds=seeds,
        dtype=params.get("dtype", "float64"),
    )


def _check_spec(build, spec, key: str) -> None:
    try:
        build(spec)
    except ValueError as err:
        raise ValueError(f"{key}: {err}") from None
