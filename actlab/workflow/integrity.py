"""Result files verified before any job reads them; an unreadable one is moved aside and rebuilt.

A truncated or garbled file (a full disk, a copy cut short, an editor) would otherwise make every
job that reads it fail, and Snakemake deletes the outputs of a failed job: one bad data set could
cost every trained cell that uses it. :func:`set_aside` runs when the workflow starts (before the
DAG is built): it opens every existing data set, cell, verdict and tracking record and moves the
unreadable ones to ``<results>/unreadable/`` (kept for inspection), so Snakemake sees them
missing and regenerates exactly those and what depends on them.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

#: where unreadable files go, under the results directory
SET_ASIDE = "unreadable"


def problem(path: str | Path) -> str | None:
    """Why the file at ``path`` cannot be read (``None`` if it can): ``.npz`` and ``.json`` are checked.

    An ``.npz`` must be a zip archive whose every member passes its CRC check; a ``.json`` must
    parse. Other suffixes are not checked.
    """
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            return None if bad is None else f"member {bad} fails its CRC check"
        if path.suffix == ".json":
            json.loads(path.read_text())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        return f"{type(err).__name__}: {err}"
    return None


def set_aside(paths: Iterable[str | Path], results: str | Path) -> list[str]:
    """Move every existing, unreadable file of ``paths`` under ``<results>/unreadable/``.

    Parameters
    ----------
    paths : iterable of path
        Files inside ``results`` (absent ones are skipped).
    results : path
        The results directory; a moved file keeps its path relative to it.

    Returns
    -------
    list of str
        One line per moved file: where it was, where it is now and why.
    """
    results = Path(results)
    moved = []
    for path in map(Path, paths):
        if not path.is_file():
            continue
        why = problem(path)
        if why is None:
            continue
        target = results / SET_ASIDE / path.relative_to(results)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)
        moved.append(f"{path} is unreadable ({why}); moved to {target}, it will be rebuilt")
    return moved
