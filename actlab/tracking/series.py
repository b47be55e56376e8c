"""The metric series of a cell's per-seed arrays, by their declared dimensions: a child run's curves."""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments.base import EPOCH_DIMS, epoch_numbers

#: Most layers of a per-epoch, per-layer array logged layer by layer (a depth-20 net has 21 dense
#: layers); more are logged as their mean.
MAX_SERIES_PER_ARRAY = 24

#: Values that mean "no value" in a cell's arrays (``diverged_epoch`` of a run that never
#: diverged): a seed's series made only of these is not logged.
PLACEHOLDER = -1


def seed_metrics(
    arrays: dict[str, np.ndarray], dims: dict[str, tuple[str, ...]], epochs: int | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The metric series of a cell's per-seed arrays: name -> ``(steps (T,), values (n_seeds, T))``.

    What an array gives follows its declared dimensions
    (:attr:`actlab.claims.experiments.base.Experiment.dims`), ``E`` being an epoch dimension
    whose epochs are the steps (:func:`actlab.claims.experiments.base.epoch_numbers`):

    * ``(seed,)``: one value per seed, at step 0;
    * ``(seed, E)``: a series over the epochs;
    * ``(seed, E, layer)``: a series per layer (``grad_norm_l0``, ``grad_norm_l1``, ...), or one of
      their mean (``name_mean``) for more than :data:`MAX_SERIES_PER_ARRAY` layers;
    * ``(seed, E, unit)``: a series of the mean over the units (``dead0_mean``, a mask: the
      fraction of dead units).

    Other arrays (not per seed, per-layer summaries, curves over inputs or widths) stay in the
    cell's ``.npz`` only.

    Parameters
    ----------
    arrays : dict
        The cell's arrays, name -> ndarray.
    dims : dict
        Name -> the dimensions of that array.
    epochs : int or None
        The cell's ``epochs`` (``None`` for an experiment that trains nothing, whose arrays have no
        epoch axis).
    """
    series = {}
    for name, array in arrays.items():
        if dims[name][:1] != ("seed",):
            continue
        rest = dims[name][1:]
        if not rest:
            series[name] = (np.zeros(1, int), array[:, None])
        elif rest[0] in EPOCH_DIMS:
            # a training that stopped when every seed diverged may leave an axis short: its first epochs
            steps = epoch_numbers(rest[0], epochs, arrays)[: array.shape[1]]
            if len(rest) == 1:
                series[name] = (steps, array)
            elif rest[1:] == ("layer",) and array.shape[2] <= MAX_SERIES_PER_ARRAY:
                series.update({f"{name}_l{layer}": (steps, array[:, :, layer]) for layer in range(array.shape[2])})
            elif rest[1:] in (("layer",), ("unit",)):
                with np.errstate(invalid="ignore"):  # inf - inf in a diverged seed's row: NaN, logged as such
                    series[f"{name}_mean"] = (steps, array.mean(axis=2))
    return series


def placeholder(values: np.ndarray) -> bool:
    """Whether a seed's series holds no value: every entry NaN or :data:`PLACEHOLDER`."""
    values = np.asarray(values, dtype=float)
    return bool(np.all(np.isnan(values) | (values == PLACEHOLDER)))
