"""The metric series of a cell's per-seed arrays: what a child run's curves are made of."""

from __future__ import annotations

import numpy as np

#: Largest third axis of a per-seed curve array logged index by index (layers of a depth-20
#: net: 21); a longer one (units of a layer) is logged as its mean.
MAX_SERIES_PER_ARRAY = 24

#: Values that mean "no value" in a cell's arrays (``diverged_epoch`` of a run that never
#: diverged): a seed's series made only of these is not logged.
PLACEHOLDER = -1


def placeholder(values: np.ndarray) -> bool:
    """Whether a seed's series holds no value: every entry NaN or :data:`PLACEHOLDER`."""
    values = np.asarray(values, dtype=float)
    return bool(np.all(np.isnan(values) | (values == PLACEHOLDER)))


def seed_metrics(arrays: dict[str, np.ndarray], n_seeds: int, epochs: int | None) -> dict[str, tuple]:
    """The metric series of a cell's per-seed arrays: name -> ``(steps (T,), values (n_seeds, T))``.

    An array is per seed when its leading axis has ``n_seeds`` entries and it holds numbers or
    booleans. A 1-D one is a single value per seed (step 0). A 2-D or 3-D one whose second axis is
    a time axis (:func:`time_axis`) becomes a series over those epochs. A 3-D one of shape
    ``(n_seeds, T, K)`` gives a series per index of its third axis (a layer, for the gradient
    probes: ``name_l0``, ``name_l1``, ...) when ``K <=`` :data:`MAX_SERIES_PER_ARRAY`, and
    otherwise one series of the mean over that axis (per-unit values such as ``dead0``, a mask of
    64 units: ``dead0_mean``, the fraction of dead units). Other arrays (per-layer summaries,
    curves over inputs, a time axis that cannot be told apart) stay in the cell's ``.npz`` only.
    """
    series = {}
    for name, array in arrays.items():
        numeric = array.dtype == bool or np.issubdtype(array.dtype, np.number)
        if name == "probe_epochs" or not numeric or array.ndim == 0 or array.shape[0] != n_seeds or not array.size:
            continue
        if array.ndim == 1:
            series[name] = (np.zeros(1, int), array[:, None])
            continue
        steps = time_axis(array.shape[1], epochs, arrays.get("probe_epochs"))
        if steps is None or array.ndim > 3:
            continue
        if array.ndim == 2:
            series[name] = (steps, array)
        elif array.shape[2] <= MAX_SERIES_PER_ARRAY:
            series.update({f"{name}_l{layer}": (steps, array[:, :, layer]) for layer in range(array.shape[2])})
        else:
            with np.errstate(invalid="ignore"):  # inf - inf in a diverged seed's row: NaN, logged as such
                series[f"{name}_mean"] = (steps, array.mean(axis=2))
    return series


def time_axis(length: int, epochs: int | None, probe_epochs: np.ndarray | None) -> np.ndarray | None:
    """The epochs of an axis of ``length`` entries, or ``None`` when it is not (or not surely) one.

    The cell's stored ``probe_epochs`` win when they have that length. Otherwise the axis of a
    training of ``epochs`` epochs can be epochs ``0..epochs`` (initialization included, the test
    metrics and per-epoch probes), ``1..epochs`` (the training loss) or ``[0, epochs]`` (probes
    at initialization and at the end); a length that fits two different ones is ambiguous.
    """
    if probe_epochs is not None and len(probe_epochs) == length:
        return probe_epochs
    if epochs is None:
        return None
    candidates = [np.arange(epochs + 1), np.arange(1, epochs + 1)] + ([np.array([0, epochs])] if epochs else [])
    fits = {tuple(axis) for axis in candidates if len(axis) == length}
    return np.array(fits.pop()) if len(fits) == 1 else None
