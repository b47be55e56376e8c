"""Whose runs are whose: a workflow replaces only the runs logged from its own results directory."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

#: File in a results directory holding its owner id (a random UUID, written on first logging).
OWNER_FILE = ".mlflow-owner"

#: Run tags naming the :class:`Owner` of a run.
OWNER_TAG = "actlab.owner"
LOCATION_TAG = "actlab.results_dir"


@dataclass(frozen=True)
class Owner:
    """The results directory a workflow logs from: the runs it may replace are those it owns.

    Attributes
    ----------
    id : str
        A random UUID kept in the directory's :data:`OWNER_FILE`: a copy of the directory
        (``cp -r``, with its store) is the same owner, another working copy is not.
    location : str
        ``host:/absolute/path`` of the directory: after the directory was deleted and run again
        (a new id), its runs are still recognized as its own.
    """

    id: str
    location: str

    @classmethod
    def of(cls, results: str | Path) -> Owner:
        """The owner of ``results``, whose id file is created when missing."""
        folder = Path(results).resolve()
        path = folder / OWNER_FILE
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(uuid.uuid4().hex + "\n")
        return cls(path.read_text().strip(), f"{socket.gethostname()}:{folder}")

    def owns(self, tags: dict[str, str]) -> bool:
        """Whether a run with these tags was logged from this results directory."""
        return tags.get(OWNER_TAG) == self.id or tags.get(LOCATION_TAG) == self.location

    def tags(self) -> dict[str, str]:
        """The tags that mark a run as this owner's."""
        return {OWNER_TAG: self.id, LOCATION_TAG: self.location}
