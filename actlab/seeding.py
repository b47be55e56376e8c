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
    indices : sequence of int
        Seed indices of the ensemble members; ``Seeds(key, [3])`` is member 3 trained alone.
    key : sequence of int or str
        What the run is, e.g. ``(global_seed, claim, cell)``.
    """

    def __init__(self, indices: Sequence[int] | int, key: Sequence[int | str] = ()) -> None:
        self.indices = list(range(indices)) if isinstance(indices, int) else [int(i) for i in indices]
        if not self.indices:
            raise ValueError("an ensemble needs at least one seed")
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
