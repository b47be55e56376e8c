"""Log judged claims to MLflow: one experiment per claim, a parent run, child runs per cell x seed.

Files under ``results/`` stay the source of truth. :func:`track_claims` only reads each claim's
verdict, figures and cell files, and returns the run ids, which the workflow records in
``results/claims/{claim}/mlflow.json``.

* **Parent run** (named by the claim id): the statement, source, verdict and headline condition as
  tags (the description repeats them), the decision rule as ``decision.*`` params, the estimate and
  its 95% CI as metrics, and ``verdict.json`` plus the claim's figures as artifacts.
* **Child runs** (``mlflow.parentRunId`` = the parent): one per cell and seed, for the first
  ``seeds_per_cell`` seeds of each cell, with every cell parameter as a param and the cell's
  per-seed arrays as metrics (:func:`seed_metrics`).
* **Tags** of every run: ``claim``, ``cell``, ``seed`` (children), ``git_commit``, ``config_hash``,
  ``actlab_version``, ``snakemake_rule`` (:func:`run_context`).

Re-logging is idempotent: a claim whose finished runs carry the :func:`fingerprint` of its current
files is left as it is; otherwise its runs are deleted (RUNNING leftovers of a killed call marked
KILLED first) and logged again, so the store holds exactly one parent per claim and one child per
cell and logged seed. Deleted runs are hidden by the MLflow UI; ``mlflow gc`` purges them.

Writers of one store are serialized by an exclusive ``fcntl.flock`` (:func:`store_lock`) held
from opening the store (MLflow migrates a fresh database's schema then, which breaks when several
processes do it at once) until the last run is finished.

This is the only actlab module that imports MLflow.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import sqlalchemy
from mlflow.entities import Metric, Param, RunStatus, ViewType
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_ENTITIES_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

#: Tests only: SIGKILL the tracking process once this many runs (the parent counts) are logged.
KILL_AFTER_RUNS_ENV = "ACTLAB_TEST_KILL_TRACKING_AFTER_RUNS"

#: MLflow client settings for batch jobs, applied unless the environment sets them: a lost server
#: fails a job within a minute instead of retrying for minutes, and no usage telemetry is sent.
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}

#: Largest third axis of a per-seed curve array logged index by index (layers of a depth-20
#: net: 21); a longer one (units of a layer) is logged as its mean.
MAX_SERIES_PER_ARRAY = 24

#: Tag of a claim's parent run: the :func:`fingerprint` of the files it was logged from.
FINGERPRINT_TAG = "actlab.fingerprint"

#: Milliseconds an SQLite connection waits for another writer (``mlflow ui``, say) before failing.
SQLITE_BUSY_TIMEOUT_MS = 60_000


class TrackingUnavailable(RuntimeError):
    """The tracking server cannot be reached; nothing was logged."""


@dataclass
class RunData:
    """What one run logs: its name and tags (sent when it is created), params and metrics (batched)."""

    name: str
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)


@dataclass
class ClaimFiles:
    """What the workflow wrote for one judged claim, and the tags its runs share.

    Attributes
    ----------
    verdict : Path
        The claim's ``verdict.json``; the figures it lists are read from its folder.
    cells : dict
        Cell id -> ``(npz, json)`` paths of the trained cell.
    context : dict
        Tags of every run of the claim (:func:`run_context`).
    """

    verdict: Path
    cells: dict[str, tuple[Path, Path]]
    context: dict[str, str]


def track_claims(uri: str, claims: list[ClaimFiles], seeds_per_cell: int | None = None) -> dict[str, dict]:
    """Log judged claims to one store, each as a parent run and child runs; keep what is current.

    A claim whose runs in the store were logged from the same files (same :func:`fingerprint`),
    finished, and still have their parent's artifacts is left alone. Any other claim has its
    earlier runs deleted (RUNNING leftovers of a killed call are marked KILLED first) and is logged
    again, so the store always holds exactly one parent per claim and one child per cell and
    logged seed.

    Parameters
    ----------
    uri : str
        MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``, ``postgresql://...``).
    claims : list of ClaimFiles
        The claims to log.
    seeds_per_cell : int or None
        Child runs are logged for the seeds ``0 .. seeds_per_cell - 1`` of each cell; ``None``
        logs every seed. All seeds stay in the cell files either way.

    Returns
    -------
    dict
        Claim id -> the record written to its ``mlflow.json``: tracking URI (password masked),
        experiment name and id, ``parent_run_id``, ``n_runs`` and ``runs`` (cell -> seed -> run id).

    Raises
    ------
    TrackingUnavailable
        When ``uri`` is an HTTP server that does not answer.
    """
    check_reachable(uri)
    with _client_settings(), store_lock(uri), _sqlite_tuning():
        client = MlflowClient(tracking_uri=uri)
        counter = _RunCounter()
        records = [_track(client, uri, files, seeds_per_cell, counter) for files in claims]
    return {record["experiment_name"]: record for record in records}


def fingerprint(files: ClaimFiles, seeds_per_cell: int | None) -> str:
    """SHA-256 of everything a claim's runs are made of: its files, context, seed cap and this module.

    The git commit is left out, so a new commit that leaves the results as they were does not make
    every claim log again.
    """
    digest = hashlib.sha256()
    paths = [files.verdict] + [path for pair in files.cells.values() for path in pair]
    for path in paths + [Path(__file__)]:
        digest.update(Path(path).read_bytes())
    context = {key: value for key, value in files.context.items() if "git" not in key}
    digest.update(json.dumps([context, seeds_per_cell], sort_keys=True).encode())
    return digest.hexdigest()


def _track(client: MlflowClient, uri: str, files: ClaimFiles, seeds_per_cell: int | None, counter) -> dict:
    """Log one claim unless its current runs are complete and from the same files; its record."""
    verdict = json.loads(files.verdict.read_text())
    claim = verdict["claim"]
    current = fingerprint(files, seeds_per_cell)
    experiment_id = _experiment(client, claim, verdict["statement"], artifact_location(uri, claim))
    existing = _claim_runs(client, experiment_id, claim)
    parent_id = _current_parent(existing, current)
    if parent_id is not None and not _has_artifacts(client, parent_id, _artifacts(files, verdict)):
        parent_id = None
    if parent_id is None:
        _delete_runs(client, existing)
        parent_id = _log_claim(client, experiment_id, files, verdict, seeds_per_cell, current, counter)
        existing = _claim_runs(client, experiment_id, claim)
    runs: dict[str, dict[str, str]] = {}
    for run in existing:
        if run.data.tags.get("mlflow.parentRunId") == parent_id:
            runs.setdefault(run.data.tags["cell"], {})[run.data.tags["seed"]] = run.info.run_id
    runs = {cell: dict(sorted(seeds.items(), key=lambda kv: int(kv[0]))) for cell, seeds in sorted(runs.items())}
    return {
        "tracking_uri": redact(uri),
        "experiment_name": claim,
        "experiment_id": experiment_id,
        "parent_run_id": parent_id,
        "fingerprint": current,
        "n_runs": 1 + sum(len(seeds) for seeds in runs.values()),
        "runs": runs,
    }


def _log_claim(client, experiment_id: str, files: ClaimFiles, verdict: dict, seeds_per_cell, digest, counter) -> str:
    """Log a claim's parent run, its artifacts and its child runs; finish the parent last."""
    timestamp = int(time.time() * 1000)
    parent = parent_run(verdict, files.context, timestamp)
    parent.tags.update({FINGERPRINT_TAG: digest, "seeds_per_cell": str(seeds_per_cell or "all")})
    parent_id = _log_run(client, experiment_id, parent, counter)
    for path in _artifacts(files, verdict):
        client.log_artifact(parent_id, str(path))
    for cell, (npz, js) in files.cells.items():
        for run in cell_runs(verdict["claim"], cell, npz, js, files.context, timestamp, seeds_per_cell):
            _log_run(client, experiment_id, run, counter, parent_id)
    client.set_terminated(parent_id, RunStatus.to_string(RunStatus.FINISHED))
    return parent_id


def _artifacts(files: ClaimFiles, verdict: dict) -> list[Path]:
    """The files logged as the parent run's artifacts: ``verdict.json`` and the claim's figures."""
    return [files.verdict] + [files.verdict.parent / fig["path"] for fig in verdict.get("figures", [])]


def _has_artifacts(client: MlflowClient, run_id: str, paths: list[Path]) -> bool:
    """Whether the run's artifact store still holds a file of each name (they may have been deleted)."""
    stored = {info.path for info in client.list_artifacts(run_id)}
    return {path.name for path in paths} <= stored


def run_context(rule: str, claim: dict, seed: int, datasets: dict) -> dict[str, str]:
    """Tags shared by a claim's runs: code version, configuration hash and the logging rule.

    ``config_hash`` is the first 12 hex digits of the SHA-256 of the resolved claim, the global
    seed and the specs of the data sets it uses: it changes exactly when the claim's results may.
    """
    blob = json.dumps({"claim": claim, "seed": seed, "datasets": datasets}, sort_keys=True, default=str)
    commit = git_commit()
    return {
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        "config_hash": hashlib.sha256(blob.encode()).hexdigest()[:12],
        "actlab_version": _package_version(),
        "snakemake_rule": rule,
    }


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


def parent_run(verdict: dict, context: dict[str, str], timestamp: int) -> RunData:
    """The claim's parent run: verdict and statement as tags, decision rule as params, CI as metrics."""
    claim = verdict["claim"]
    low, high = verdict["ci95"]
    values = {
        "estimate": verdict["estimate"],
        "ci95_low": low,
        "ci95_high": high,
        "diverged_runs": verdict.get("diverged_runs"),
    }
    tags = {
        **context,
        "verdict": verdict["verdict"],
        "kind": verdict.get("kind", "claim"),
        "statement": verdict["statement"],
        "source": ", ".join(verdict["source"]),
        "experiment_type": verdict["experiment"],
        "group": str(verdict.get("group")),
        "headline_condition": verdict["headline_condition"],
        "mlflow.note.content": _description(verdict),
    }
    params = flatten(verdict["decision"], "decision.")
    params.update({"n_seeds": str(verdict["n_seeds"]), "n_cells": str(len(verdict["cells"]))})
    metrics = [Metric(key, float(value), timestamp, 0) for key, value in values.items() if value is not None]
    return RunData(claim, {"claim": claim, **tags}, params, metrics)


def _description(verdict: dict) -> str:
    """The parent run's Markdown description, as the MLflow UI shows it."""
    low, high = verdict["ci95"]
    return (
        f"**{verdict['verdict']}**: {verdict['statement']}\n\n"
        f"Decision: {verdict['metric']} ({verdict['metric_meaning']}) {verdict['compare']} "
        f"{verdict['threshold']}; estimate {verdict['estimate']}, 95% CI [{low}, {high}] "
        f"({verdict['headline_condition']}; {verdict['ci_method']}).\n\n"
        f"Sources: {', '.join(verdict['source'])}"
    )


def cell_runs(
    claim: str, cell: str, npz_path, json_path, context: dict[str, str], timestamp: int, seeds_per_cell: int | None
) -> list[RunData]:
    """One child run per seed of a trained cell, up to ``seeds_per_cell`` seeds: params, tags, metrics."""
    info = json.loads(Path(json_path).read_text())
    with np.load(npz_path) as data:
        arrays = {key: data[key] for key in data.files}
    n_seeds = int(info["n_seeds"])
    series = seed_metrics(arrays, n_seeds, info["params"].get("epochs"))
    params = flatten(info["params"])
    params.update({"n_seeds": str(n_seeds), "global_seed": str(info["seed_key"][0])})
    tags = {**context, **{f"setting.{axis}": str(label) for axis, label in info["setting"].items()}}
    tags["cell_file"] = str(npz_path)
    runs = []
    for seed in range(n_seeds if seeds_per_cell is None else min(n_seeds, seeds_per_cell)):
        metrics = [
            Metric(name, float(values[seed, t]), timestamp, int(step))
            for name, (steps, values) in series.items()
            for t, step in enumerate(steps)
        ]
        run_tags = {"claim": claim, "cell": cell, "seed": str(seed), **tags}
        runs.append(RunData(f"{cell}/seed-{seed}", run_tags, {**params, "seed_index": str(seed)}, metrics))
    return runs


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


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """Nested parameters as flat MLflow params: ``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``.

    Strings are kept as they are, every other value is written as JSON.
    """
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat


def batches(metrics: list, params: list) -> Iterator[tuple[list, list]]:
    """Split metrics and params into ``log_batch`` calls within MLflow's limits.

    Each call carries at most 1000 metrics and 100 params, and 1000 entities in all.
    """
    start, i = 0, 0
    while start < len(metrics) or i < len(params):
        batch_params = params[i : i + MAX_PARAMS_TAGS_PER_BATCH]
        room = min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - len(batch_params))
        yield metrics[start : start + room], batch_params
        start, i = start + room, i + MAX_PARAMS_TAGS_PER_BATCH


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, with a clear message, when ``uri`` is an HTTP(S) server that does not answer.

    Raises
    ------
    TrackingUnavailable
        No connection to ``{uri}/health`` within ``timeout`` seconds. A server that answers, even
        with an HTTP error, counts as reachable.
    """
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TrackingUnavailable(
            f"MLflow tracking server {redact(uri)} is unreachable ({reason}); nothing was logged. "
            "Every result stays on disk: fix the tracking URI (config key tracking.uri or "
            "MLFLOW_TRACKING_URI) and run again; only the tracking jobs re-run."
        ) from None


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    parts = urllib.parse.urlsplit(uri)
    if not parts.password:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(uri: str) -> Path | None:
    """The database file of an ``sqlite:///`` URI (relative to the working directory), else ``None``."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


def lock_path(uri: str) -> Path:
    """The lock file of a store: ``<db>.lock`` next to an SQLite file, else one per URI in the temp dir."""
    db = sqlite_path(uri)
    if db is not None:
        return db.with_name(db.name + ".lock")
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"actlab-mlflow-{digest}.lock"


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the store's lock file; the kernel drops it if the process dies."""
    path = lock_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def artifact_location(uri: str, claim: str) -> str | None:
    """Artifacts of an SQLite store go to ``mlartifacts/<claim>`` next to the database; others: the store's default."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent.resolve() / "mlartifacts" / claim).as_uri()


@contextlib.contextmanager
def _client_settings() -> Iterator[None]:
    """Apply :data:`CLIENT_ENV` where the environment does not set a value; restore on exit."""
    added = {key: value for key, value in CLIENT_ENV.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def _sqlite_tuning() -> Iterator[None]:
    """Every SQLite connection opened inside: WAL journal, ``synchronous=NORMAL``, a busy timeout.

    With the default rollback journal every commit waits for the disk (MLflow commits several
    times per run, and about a hundred times while migrating a fresh database), which made
    tracking several times slower. WAL keeps the database consistent if a process is killed and
    lets ``mlflow ui`` read while a job writes. It needs a local file system.
    """

    def tune(connection, _record) -> None:
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", tune)
    try:
        yield
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", tune)


def _experiment(client: MlflowClient, name: str, description: str, location: str | None) -> str:
    """Id of the claim's experiment, created (or restored from the trash) as needed."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = client.create_experiment(name, artifact_location=location, tags={"claim": name})
    else:
        experiment_id = experiment.experiment_id
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    client.set_experiment_tag(experiment_id, "mlflow.note.content", description)
    return experiment_id


def _claim_runs(client: MlflowClient, experiment_id: str, claim: str) -> list:
    """Every active run of the experiment tagged with the claim (all pages of the search)."""
    found, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], f"tags.claim = '{claim}'", ViewType.ACTIVE_ONLY, max_results=1000, page_token=token
        )
        found.extend(page)
        token = page.token
        if not token:
            return found


def _current_parent(runs: list, digest: str) -> str | None:
    """Id of the claim's parent run when ``runs`` are one complete logging of ``digest``, else ``None``.

    Complete means a single parent, FINISHED (it is finished after its last child), with the same
    fingerprint, and every other run a FINISHED child of it.
    """
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    if len(parents) != 1 or parents[0].data.tags.get(FINGERPRINT_TAG) != digest:
        return None
    parent_id = parents[0].info.run_id
    finished = RunStatus.to_string(RunStatus.FINISHED)
    complete = all(
        run.info.status == finished and (run is parents[0] or run.data.tags["mlflow.parentRunId"] == parent_id)
        for run in runs
    )
    return parent_id if complete else None


def _delete_runs(client: MlflowClient, runs: list) -> None:
    """Delete ``runs``; RUNNING ones (a killed call's) are marked KILLED first."""
    for run in runs:
        if run.info.status == RunStatus.to_string(RunStatus.RUNNING):
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        client.delete_run(run.info.run_id)


class _RunCounter:
    """Counts logged runs; with :data:`KILL_AFTER_RUNS_ENV` set, SIGKILLs the process (tests only)."""

    def __init__(self) -> None:
        self.count = 0
        self.kill_after = int(os.environ.get(KILL_AFTER_RUNS_ENV, "0"))

    def logged(self) -> None:
        self.count += 1
        if self.count == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def _log_run(
    client: MlflowClient, experiment_id: str, run: RunData, counter: _RunCounter, parent_id: str | None = None
) -> str:
    """Create one run with its tags, log its batches; a child is then set FINISHED at once."""
    tags = run.tags if parent_id is None else {**run.tags, "mlflow.parentRunId": parent_id}
    run_id = client.create_run(experiment_id, tags=tags, run_name=run.name).info.run_id
    params = [Param(key, value) for key, value in run.params.items()]
    for metrics, batch_params in batches(run.metrics, params):
        client.log_batch(run_id, metrics=metrics, params=batch_params)
    counter.logged()
    if parent_id is not None:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return run_id
