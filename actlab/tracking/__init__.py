"""MLflow logging of every claim and cell a run judged: one experiment per claim, a parent run, child runs.

The only part of actlab that imports MLflow. Its modules, by what they hold:

- :mod:`~actlab.tracking.uri`: where runs go (the tracking URI, its password masked, no SQLite
  on a network file system), without MLflow: the workflow reads it when it parses the Snakefile;
- :mod:`~actlab.tracking.owner`: whose runs are whose (the results directory that logged them);
- :mod:`~actlab.tracking.store`: one writer at a time, SQLite tuning, client settings,
  reachability and what a failing store says;
- :mod:`~actlab.tracking.context`: the tags every run of a claim shares (git commit, config hash);
- :mod:`~actlab.tracking.series`: the metric series of a cell's per-seed arrays;
- :mod:`~actlab.tracking.runs`: what a claim's parent run and a cell's child runs contain;
- :mod:`~actlab.tracking.fingerprints`: the digest that tells a claim's current runs from stale ones;
- :mod:`~actlab.tracking.current`: which of a claim's runs in the store are current, superseding
  the others;
- :mod:`~actlab.tracking.log`: :func:`track_claims`, which logs what is missing or stale.

The names below are imported from their modules on first use (PEP 562), so importing
:mod:`actlab.tracking.uri` does not import MLflow (about 2 s).
"""

from __future__ import annotations

import importlib

#: The public names, each with the module that defines it.
_EXPORTS = {
    "check_cluster_store": "uri",
    "filesystem_type": "uri",
    "redact": "uri",
    "resolve_uri": "uri",
    "Owner": "owner",
    "TrackingUnavailable": "store",
    "check_reachable": "store",
    "lock_path": "store",
    "run_context": "context",
    "placeholder": "series",
    "seed_metrics": "series",
    "ClaimFiles": "runs",
    "child_name": "runs",
    "flatten": "runs",
    "fingerprint": "fingerprints",
    "batches": "log",
    "track_claims": "log",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """A public name, imported from its module (:data:`_EXPORTS`) when first asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
