"""The tags every run of a claim shares: the code's version, the configuration's hash, the logging rule."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def run_context(rule: str, claim: dict, seed: int, datasets: dict, profile: str | None = None) -> dict[str, str]:
    """Tags shared by a claim's runs: code version, configuration hash, profile and the logging rule.

    ``config_hash`` is the first 12 hex digits of the SHA-256 of the resolved claim, the global
    seed and the specs of the data sets it uses: it changes exactly when the claim's results may.
    """
    blob = json.dumps({"claim": claim, "seed": seed, "datasets": datasets}, sort_keys=True, default=str)
    commit = git_commit()
    context = {
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        "config_hash": hashlib.sha256(blob.encode()).hexdigest()[:12],
        "actlab_version": _package_version(),
        "snakemake_rule": rule,
    }
    if profile:
        context["profile"] = profile
    return context


def git_commit() -> str:
    """HEAD of the git checkout holding the working directory, else the actlab sources, else ``unknown``."""
    for where in (Path.cwd(), Path(__file__).resolve().parent):
        try:
            found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True)
        except OSError:
            return "unknown"
        if found.returncode == 0:
            return found.stdout.strip()
    return "unknown"


def _package_version() -> str:
    """The installed actlab version, ``unknown`` when it is not installed."""
    try:
        return version("actlab")
    except PackageNotFoundError:
        return "unknown"
