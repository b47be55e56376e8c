"""Deterministic random streams for seed ensembles.

Every random number of a run comes from a ``numpy.random.Generator`` seeded from
``(key..., seed index, stream)``, where ``key`` is e.g. ``(global_seed, claim, cell)``. Strings are
hashed with SHA-256 (not Python's salted ``hash``), so the same config gives the same bytes on
every machine, whatever the number of cores or the order jobs run in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from actlab.engine.checks import check_int


def seed_indices(indices, name: str = "Seeds: indices") -> list[int]:
    """The member indices of an ensemble given as a count or as the indices themselves.

    Parameters
    ----------
    indices : int or iterable of int
        A count ``n >= 1`` (members ``0 .. n - 1``) or the non-negative indices of the members.
    name : str
        How the error message names the argument.

    Returns
    -------
    list of int

    Raises
    ------
    TypeError
        For anything else (``2.0``, ``True``, a string, float indices, ...).
    ValueError
        For a count below 1, a negative index or no indices at all.
    """
    if isinstance(indices, int | np.integer) and not isinstance(indices, bool):
        return list(range(check_int(indices, f"{name} (a count)", minimum=1)))
    if isinstance(indices, str | bytes) or not isinstance(indices, Iterable):
        raise TypeError(
            f"{name} must be an int count >= 1 or a sequence of non-negative ints, "
            f"got {indices!r} ({type(indices).__name__})"
        )
    out = [check_int(i, f"{name}[{pos}]") for pos, i in enumerate(indices)]
    if not out:
        raise ValueError(f"{name} is empty: an ensemble needs at least one seed")
    return out


def key_to_ints(key: Iterable[int | str]) -> list[int]:
    """Map a key of ints and strings to non-negative 32-bit ints (strings via SHA-256)."""
    out = []
    for part in key:
        if isinstance(part, str):
            out.append(int.from_bytes(hashlib.sha256(part.encode()).digest()[:4], "little"))
        elif isinstance(part, int | np.integer) and part >= 0:
            out.append(int(part))
        else:
            raise ValueError(f"seed key parts are non-negative ints or strings, got {part!r}")
    return out


class Seeds:
    """The seeds of one ensemble: a shared key plus one index per member.

    Parameters
    ----------
    indices : int or sequence of int
        Either a count ``n >= 1`` (members ``0 .. n - 1``) or the non-negative seed indices of the
        members; ``Seeds([3], key)`` is member 3 trained alone.
    key : sequence of int or str
        What the run is, e.g. ``(global_seed, claim, cell)``.

    Raises
    ------
    TypeError
        If ``indices`` is neither an int nor a sequence of ints (``Seeds(2.0)``, ``Seeds(True)``),
        or ``key`` is not a sequence (a bare string would be split into characters).
    ValueError
        If the count is below 1, an index is negative or a key part is a negative int.
    """

    def __init__(self, indices: Sequence[int] | int, key: Sequence[int | str] = ()) -> None:
        self.indices = seed_indices(indices)
        if isinstance(key, str | bytes) or not isinstance(key, Iterable):
            raise TypeError(f"Seeds: key must be a sequence of ints or strings, got {key!r} ({type(key).__name__})")
        self.key = tuple(key)
        self._key_ints = key_to_ints(self.key)

    def __len__(self) -> int:
        return len(self.indices)

    def rngs(self, stream: str) -> list[np.random.Generator]:
        """One generator per member for a named stream ("init", "data", ...)."""
        tail = key_to_ints([stream])
        return [np.random.default_rng([*self._key_ints, i, *tail]) for i in self.indices]

    def subset(self, positions: Sequence[int]) -> Seeds:
        """The members at ``positions`` as their own ensemble (same streams)."""
        return Seeds([self.indices[p] for p in positions], self.key)

    def __repr__(self) -> str:
        return f"Seeds({self.indices!r}, key={self.key!r})"
