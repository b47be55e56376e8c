"""What a claim's runs are made of, as one digest: its runs in the store are current while it is the same.

A claim whose own complete runs carry the :func:`fingerprint` of its current files (tag
``actlab.fingerprint``) is left as it is; otherwise it is logged again (:mod:`actlab.tracking.log`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from actlab.tracking.runs import ClaimFiles, file_digest
from actlab.workflow import code_digest

#: Tag of a claim's parent run: the :func:`fingerprint` of the files it was logged from.
FINGERPRINT_TAG = "actlab.fingerprint"

#: The module whose code (with every ``actlab`` module it imports) makes the runs: a change to it
#: logs every claim again.
TRACKING_CODE = "actlab.tracking.log"

#: Keys of a cell's JSON that depend on the machine or the clock, not on the results (wall-clock
#: timings): left out of the :func:`fingerprint`.
MACHINE_FIELDS = frozenset({"timing", "machine", "machines"})

#: What a verdict of wall-clock measurements (one listing its ``machines``) is fingerprinted by: its
#: rule, cells and labels, not its estimates, which differ between any two runs; see :func:`fingerprint`.
RULE_FIELDS = ("claim", "kind", "experiment", "statement", "decision", "amendments", "n_seeds", "cells", "verdict")


def fingerprint(files: ClaimFiles, seeds_per_cell: int | None) -> str:
    """SHA-256 of the content a claim's runs are made of, never of clocks or machines.

    Covers the verdict, the cells' arrays (names, dtypes, shapes, bytes: not the ``.npz`` zip
    bytes) and descriptions without :data:`MACHINE_FIELDS` (wall-clock timings), the data files,
    the shared tags other than the git commit, the seed cap, and the code of :data:`TRACKING_CODE`
    (its syntax tree, :mod:`actlab.workflow.code_digest`). A new commit, a re-trained cell with the
    same numbers or another machine's timings therefore change nothing. A claim whose results are
    wall-clock measurements (its verdict lists ``machines``) is fingerprinted by its
    :data:`RULE_FIELDS`, its conditions' verdicts and its cell descriptions: every run measures
    other numbers, and the store keeps the first logging until a label changes.
    """
    digest = hashlib.sha256()
    verdict = json.loads(Path(files.verdict).read_text())
    measured = "machines" in verdict
    if measured:
        labels = [c["verdict"] for c in verdict.get("conditions", [])]
        digest.update(json.dumps([{k: verdict.get(k) for k in RULE_FIELDS}, labels], sort_keys=True).encode())
    else:
        digest.update(_json_content(verdict))
    for cell in sorted(files.cells):
        npz, js = files.cells[cell]
        digest.update(cell.encode())
        digest.update(_json_content(js))
        if measured:
            continue
        with np.load(npz) as data:
            for key in sorted(data.files):
                array = np.ascontiguousarray(data[key])
                digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
                digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    for cell in sorted(files.data):
        for name, path in sorted(files.data[cell].items()):
            digest.update(f"{cell}:{name}:{file_digest(path)}".encode())
    context = {key: value for key, value in files.context.items() if "git" not in key}
    digest.update(json.dumps([context, seeds_per_cell], sort_keys=True).encode())
    digest.update(code_digest.digest([TRACKING_CODE], []).encode())
    return digest.hexdigest()


def _json_content(source: Path | dict) -> bytes:
    """A JSON file (or its parsed content) as canonical bytes, without the :data:`MACHINE_FIELDS`
    of its top level."""
    content = source if isinstance(source, dict) else json.loads(Path(source).read_text())
    if isinstance(content, dict):
        content = {key: value for key, value in content.items() if key not in MACHINE_FIELDS}
    return json.dumps(content, sort_keys=True).encode()
