"""Argument checks of the public entry points (:class:`~actlab.engine.network.MLP`,
:class:`~actlab.engine.seeding.Seeds`, :mod:`actlab.engine.training`): one for integers, one for arrays, each
raising an error that names the argument."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_int(value, name: str, minimum: int = 0) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer ``>= minimum``.

    The one check of integer arguments at the public entry points (seed counts and indices,
    layer widths, batch sizes, epochs, ...).

    Parameters
    ----------
    value : int or numpy integer
        The argument as passed. Floats are rejected even when whole (``2.0``: a width or count
        computed in floating point is usually a bug), and so are bools (``True`` is not a count).
    name : str
        How the error message names the argument, e.g. ``"MLP: hidden[0]"``.
    minimum : int
        The smallest valid value.

    Returns
    -------
    int
        ``int(value)``.

    Raises
    ------
    TypeError
        If ``value`` is not a Python or NumPy integer (or is a bool).
    ValueError
        If ``value < minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_array(
    value,
    name: str,
    *,
    ndim: tuple[int, ...] = (2,),
    shape: Sequence[tuple[int, str] | None] = (),
    n_seeds: int | None = None,
    finite: bool = False,
    allow_empty: bool = False,
) -> np.ndarray:
    """Return ``np.asarray(value)`` (no copy, no cast) after checking it, else raise naming ``name``.

    The one check of the arrays handed to the public entry points (:class:`MLP` inputs,
    :class:`~actlab.engine.training.ArrayData`, :func:`~actlab.engine.training.train`'s data, probe and test sets).

    Parameters
    ----------
    value : array_like
        The argument as passed.
    name : str
        How the error message names the argument, e.g. ``"train: y"``.
    ndim : tuple of int
        The allowed numbers of dimensions.
    shape : sequence of (int, str) or None
        What the trailing axes must be, last entry for the last axis: ``None`` (any size) or
        ``(size, reason)``, where ``reason`` completes "``name`` has shape ... but" in the message,
        e.g. ``(3, "the network has 3 outputs")``.
    n_seeds : int, optional
        For a 3-D array, ``(S, B, n)``: its first axis must be 1 (shared by every seed) or ``n_seeds``.
    finite : bool
        Also reject NaN and infinite entries. This reads the whole array: check once per call of an
        entry point, never per training step.
    allow_empty : bool
        Accept arrays with no entries (``predict`` on zero samples); data to train on must not be.

    Returns
    -------
    ndarray

    Raises
    ------
    TypeError
        If the entries are not real numbers (strings, objects, complex).
    ValueError
        For a wrong number of dimensions, a wrong size, an empty or a non-finite array.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in ndim:
        dims = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{name} must be {dims}, got shape {arr.shape}")
    for axis, expected in zip(range(-len(shape), 0), shape, strict=True):
        if expected is not None and arr.shape[axis] != expected[0]:
            want = list(arr.shape)
            for ax, exp in zip(range(-len(shape), 0), shape, strict=True):
                if exp is not None:
                    want[ax] = exp[0]
            raise ValueError(f"{name} has shape {arr.shape} but {expected[1]}; expected shape {tuple(want)}")
    if n_seeds is not None and arr.ndim == 3 and arr.shape[0] not in (1, n_seeds):
        raise ValueError(
            f"{name} has shape {arr.shape} but the network has {n_seeds} seeds: the first axis of a 3-D "
            f"array is the seed and must be 1 (shared) or {n_seeds}"
        )
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): it needs at least one sample and one column")
    if finite:
        bad = ~np.isfinite(arr)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name} holds NaN or inf ({int(bad.sum())} of {arr.size} entries, the first at index {first}); "
                "inputs must be finite (a run that becomes non-finite while training is recorded as diverged)"
            )
    return arr
