"""Shared fixtures for the actlab test-suite.

Helpers are handed out as fixtures (``numgrad``, ``moons``, ``preregistered``) so that test modules
need not import ``conftest``. Every random number comes from a seeded ``numpy.random.Generator``.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from filelock import FileLock
from sklearn.datasets import make_moons


def central_difference(
    objective: Callable[[], float], arrays: Sequence[np.ndarray], h: float = 1e-6
) -> list[np.ndarray]:
    """Central-difference gradient of a scalar objective with respect to arrays it reads.

    Parameters
    ----------
    objective : callable
        Takes no argument and returns a float computed from the current contents of ``arrays``.
    arrays : sequence of ndarray
        Arrays perturbed in place, one entry at a time, and restored afterwards.
    h : float
        Step; the error is ``O(h^2)`` for smooth objectives plus ``O(eps / h)`` rounding.

    Returns
    -------
    list of ndarray
        ``(f(x + h e_i) - f(x - h e_i)) / (2 h)`` for every entry, shaped like each array.
    """
    grads = []
    for arr in arrays:
        grad = np.zeros(arr.shape)
        for idx in np.ndindex(arr.shape):
            orig = arr[idx]
            arr[idx] = orig + h
            f_plus = float(objective())
            arr[idx] = orig - h
            f_minus = float(objective())
            arr[idx] = orig
            grad[idx] = (f_plus - f_minus) / (2 * h)
        grads.append(grad)
    return grads


def moons_data(n_samples: int = 200, noise: float = 0.2, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two-moons inputs ``(N, 2)`` and one-hot targets ``(N, 2)`` from a fixed ``random_state``."""
    x, labels = make_moons(n_samples=n_samples, noise=noise, random_state=random_state)
    return x, np.eye(2)[labels]


@pytest.fixture
def numgrad() -> Callable:
    """The :func:`central_difference` helper."""
    return central_difference


@pytest.fixture(scope="session")
def moons() -> tuple[np.ndarray, np.ndarray]:
    """Training moons: 200 samples, one-hot targets."""
    return moons_data(200, 0.2, 0)


@pytest.fixture(scope="session")
def moons_test() -> tuple[np.ndarray, np.ndarray]:
    """Held-out moons: 100 samples from another ``random_state``."""
    return moons_data(100, 0.2, 1)


TEST_DECISION_DEFAULTS: dict[str, Any] = {
    "headline": {},
    "diverged": {"count": "exclude", "reason": "test fixture: diverged runs are left out"},
    "no_control": "test fixture: no negative control",
    "min_n": 2,
}


def preregistered_decision(decision: dict, **overrides) -> dict:
    """A claim's decision rule completed with the keys every empirical claim must preregister.

    ``decision`` (then ``overrides``) wins over the test defaults: ``headline: {}`` (valid only when
    the rule leaves a single judged condition; with more, :func:`actlab.claims.judging.headline` rejects it,
    so such tests must name theirs), diverged runs excluded, no negative control (not added when the
    rule has a ``control``) and ``min_n: 2`` so that a few seeds can be judged. Returns a new dict.
    """
    rule = {**decision, **overrides}
    for key, value in TEST_DECISION_DEFAULTS.items():
        if key not in rule and not (key == "no_control" and "control" in rule):
            rule[key] = value
    return copy.deepcopy(rule)


@pytest.fixture
def preregistered() -> Callable[..., dict]:
    """The :func:`preregistered_decision` helper."""
    return preregistered_decision


WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "envs", "report")


@pytest.fixture(scope="session")
def copy_workflow() -> Callable[[Path], Path]:
    """Make a fresh working copy of the workflow in a folder (the package itself is installed)."""
    repo = Path(__file__).resolve().parents[1]

    def copy(dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        for name in WORKFLOW_FILES:
            src = repo / name
            if src.is_dir():
                shutil.copytree(src, dest / name)
            else:
                shutil.copy(src, dest / name)
        return dest

    return copy


@pytest.fixture(scope="session")
def copy_run() -> Callable[[Path, Path], Path]:
    """Copy a workflow folder with its results and Snakemake's records (it stays up to date)."""

    def copy(src: Path, dest: Path) -> Path:
        return Path(shutil.copytree(src, dest, symlinks=True))

    return copy


@pytest.fixture(scope="session")
def shared_quick_run(tmp_path_factory, copy_workflow) -> Path:
    """The quick profile run once per test session with 2 cores, tracking on (its default).

    Never modified: the workflow and tracking tests take copies of it (``copy_run``), so that the
    end-to-end suite trains the quick profile once, not once per module. The tests run in
    pytest-xdist workers (``addopts`` in pyproject.toml): the first worker that needs the run
    makes it, in the temporary folder the session's workers share, and the others wait for it
    on a file lock.
    """
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # shared by every worker of this session
    workdir, done = root / "quick-shared", root / "quick-shared.done"
    with FileLock(str(root / "quick-shared.lock")):
        if not done.exists():
            copy_workflow(workdir)
            result = subprocess.run(
                ["snakemake", "--configfile", "config/quick.yaml", "--cores", "2"],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, result.stderr[-4000:]
            done.touch()
    return workdir


@pytest.fixture(scope="session")
def smallest_claims() -> list[str]:
    """The quick profile's smallest claim (fewest cells x seeds) of each experiment type, sorted."""
    from actlab.claims.register import load_yaml, resolve

    repo = Path(__file__).resolve().parents[1]
    register, sources = load_yaml(repo / "config/claims.yaml"), load_yaml(repo / "config/sources.yaml")["sources"]
    smallest = {}
    for claim in sorted(resolve(register, sources, "quick"), key=lambda c: len(c["cells"]) * c["seeds"]):
        smallest.setdefault(claim["experiment"], claim["id"])
    return sorted(smallest.values())
