"""Log judged claims to MLflow: one experiment per claim, a parent run, child runs per cell x seed.

Files under ``results/`` stay the source of truth. :func:`track_claims` only reads each claim's
verdict, figures, cell files and data sets, and returns the run ids, which the workflow records in
``results/claims/{claim}/mlflow.json``.

* **Experiment** (named by the claim id): the statement as its description; the latest verdict,
  estimate and CI as tags.
* **Parent run** (``{claim}: {verdict}``): the statement, source, verdict and headline condition
  as tags (the description repeats them, with a link to the claim's report section), the decision
  rule as ``decision.*`` params, the estimate and its 95% CI as metrics, and ``verdict.json`` plus
  the claim's figures as artifacts.
* **Child runs** (``mlflow.parentRunId`` = the parent, named from the setting: ``tanh lr=0.5 s0``):
  one per cell and seed, for the first ``seeds_per_cell`` seeds of each cell, with every cell
  parameter as a param, the cell's per-seed arrays as metrics (:func:`seed_metrics`), its data
  sets as inputs, its files as artifacts (seed 0), and the training job's start and end times.
* **Tags** of every run: ``claim``, ``cell``, ``seed`` (children), ``git_commit``, ``config_hash``,
  ``actlab_version``, ``snakemake_rule`` (:func:`run_context`) and the :class:`Owner`.

Ownership: a workflow replaces only runs it owns, those logged from the same results directory
(:class:`actlab.tracking_uri.Owner`). A claim whose own complete runs carry the
:func:`fingerprint` of its current files is left as it is; otherwise it is logged again and its
own earlier runs are superseded: tagged ``actlab.superseded_by``, listed in the log, then deleted
(restorable until ``mlflow gc``). Other workflows' runs are never touched.

Writers of one store are serialized by an exclusive ``fcntl.flock`` (:func:`store_lock`) held
from opening the store (MLflow migrates a fresh database's schema then, which breaks when several
processes do it at once) until the last run is finished. A store that fails, at start or half-way,
raises :class:`TrackingUnavailable` with one message saying what was and was not logged.

This is the only actlab module that imports MLflow.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import requests
import sqlalchemy
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_ENTITIES_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

from actlab.tracking_uri import (
    LOCATION_TAG,
    OWNER_TAG,
    Owner,
    lock_path,
    redact,
    resolve_uri,
    sqlite_path,
    without_credentials,
)
from actlab.workflow import code_digest

__all__ = [
    "ClaimFiles",
    "Owner",
    "TrackingUnavailable",
    "fingerprint",
    "lock_path",
    "redact",
    "resolve_uri",
    "run_context",
    "seed_metrics",
    "track_claims",
]

#: Tests only: SIGKILL the tracking process once this many runs (the parent counts) are logged.
KILL_AFTER_RUNS_ENV = "ACTLAB_TEST_KILL_TRACKING_AFTER_RUNS"

#: MLflow client settings for batch jobs, applied unless the environment sets them: a lost server
#: fails a job within seconds instead of retrying for minutes, no usage telemetry is sent, and no
#: "View run ... at" lines are printed per run.
CLIENT_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}

#: Loggers silenced to errors while logging: urllib3's retry warnings, MLflow's per-request chatter.
QUIET_LOGGERS = ("urllib3", "mlflow")

#: Over HTTP (a server answers requests in parallel; SQLite does not): claims logged side by side,
#: and child runs of one claim logged side by side.
HTTP_CLAIMS = 4
HTTP_THREADS = 8

#: Largest third axis of a per-seed curve array logged index by index (layers of a depth-20
#: net: 21); a longer one (units of a layer) is logged as its mean.
MAX_SERIES_PER_ARRAY = 24

#: Tag of a claim's parent run: the :func:`fingerprint` of the files it was logged from.
FINGERPRINT_TAG = "actlab.fingerprint"
#: Tag of a parent run: how many child runs make it complete.
N_CHILDREN_TAG = "actlab.n_children"
#: Tag of every run: ``claim`` (a parent) or ``cell`` (a child); filter on ``tags.actlab.run = 'claim'``.
ROLE_TAG = "actlab.run"
#: Tag set on a run replaced by a newer logging of the same workflow: the new parent's id.
SUPERSEDED_TAG = "actlab.superseded_by"

#: Keys of a cell's JSON that depend on the machine or the clock, not on the results (wall-clock
#: timings): left out of the :func:`fingerprint`.
MACHINE_FIELDS = frozenset({"timing", "machine", "machines"})

#: What a verdict of wall-clock measurements (one listing its ``machines``) is fingerprinted by: its
#: rule, cells and labels, not its estimates, which differ between any two runs; see :func:`fingerprint`.
RULE_FIELDS = ("claim", "kind", "experiment", "statement", "decision", "amendments", "n_seeds", "cells", "verdict")

#: Values that mean "no value" in a cell's arrays (``diverged_epoch`` of a run that never
#: diverged): a seed's series made only of these is not logged.
PLACEHOLDER = -1

#: Milliseconds an SQLite connection waits for another writer (``mlflow ui``, say) before failing.
SQLITE_BUSY_TIMEOUT_MS = 60_000

#: What a failing store raises: connection errors over HTTP, database errors, failed artifact copies.
STORE_ERRORS = (MlflowException, requests.exceptions.RequestException, sqlalchemy.exc.SQLAlchemyError, OSError)


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached or failed; the message says what was and was not logged."""


@dataclass
class RunData:
    """What one run logs: name, tags, params, metrics, inputs, artifacts and the times it spans."""

    name: str
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    start: int | None = None
    end: int | None = None
    inputs: list[DatasetInput] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)


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
    data : dict
        Cell id -> data set name -> its file (``results/data/{name}.npz``), logged as inputs.
    benchmarks : dict
        Cell id -> the training job's Snakemake benchmark (``.tsv``): its seconds give the child
        runs' durations. A missing file gives a duration of zero.
    report : str or None
        Where the claim's report section is (a URL or a path with ``#claim``), tagged ``report``.
    """

    verdict: Path
    cells: dict[str, tuple[Path, Path]]
    context: dict[str, str]
    data: dict[str, dict[str, Path]] = field(default_factory=dict)
    benchmarks: dict[str, Path] = field(default_factory=dict)
    report: str | None = None


def track_claims(
    uri: str, claims: list[ClaimFiles], seeds_per_cell: int | None = None, results: str | Path | None = None
) -> dict[str, dict]:
    """Log judged claims to one store, each as a parent run and child runs; keep what is current.

    A claim whose own runs in the store (logged from ``results``, :class:`Owner`) were logged from
    the same files (same :func:`fingerprint`), are complete and still have their parent's
    artifacts is left alone. Otherwise it is logged again and its own earlier runs are superseded
    (tagged, listed on stdout, deleted); runs of other workflows are never touched. Over HTTP,
    :data:`HTTP_CLAIMS` claims are logged side by side (each its own experiment); after a failure
    no further claim is started.

    Parameters
    ----------
    uri : str
        MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``, ``postgresql://...``).
    claims : list of ClaimFiles
        The claims to log.
    seeds_per_cell : int or None
        Child runs are logged for the seeds ``0 .. seeds_per_cell - 1`` of each cell; ``None``
        logs every seed. All seeds stay in the cell files either way.
    results : str or Path, optional
        The results directory whose :class:`Owner` logs; default: the folder holding the claims'
        folders (``results/claims`` in the workflow).

    Returns
    -------
    dict
        Claim id -> the record written to its ``mlflow.json``: tracking URI (password masked),
        experiment name and id, ``parent_run_id``, ``n_runs`` and ``runs`` (cell -> seed -> run id).

    Raises
    ------
    TrackingUnavailable
        When the store cannot be reached, or fails half-way; the message says which claims were
        logged and which were not.
    """
    if results is None:
        results = os.path.commonpath([str(Path(files.verdict).resolve().parent.parent) for files in claims])
    owner = Owner.of(results)
    check_reachable(uri)
    names = [json.loads(Path(files.verdict).read_text())["claim"] for files in claims]
    workers = HTTP_CLAIMS if is_http(uri) else 1
    with _client_settings(), store_lock(uri), _sqlite_tuning():
        try:
            client = MlflowClient(tracking_uri=uri)
        except STORE_ERRORS as err:
            raise TrackingUnavailable(failure_message(uri, names, [], err)) from None
        counter = _RunCounter()
        with ThreadPoolExecutor(workers) as pool:
            futures = {name: pool.submit(_track, client, uri, files, seeds_per_cell, owner, counter)
                       for name, files in zip(names, claims, strict=True)}  # fmt: skip
            wait(futures.values(), return_when=FIRST_EXCEPTION)
            for future in futures.values():  # after a failure, claims not yet started are not started
                future.cancel()
    finished = {name: future for name, future in futures.items() if not future.cancelled()}
    errors = [future.exception() for future in finished.values() if future.exception() is not None]
    if errors:
        if isinstance(errors[0], STORE_ERRORS):
            done = [name for name, future in finished.items() if future.exception() is None]
            raise TrackingUnavailable(failure_message(uri, names, done, errors[0])) from None
        raise errors[0]
    return {name: future.result() for name, future in futures.items()}


def is_http(uri: str) -> bool:
    """Whether ``uri`` is an MLflow server's address."""
    return uri.startswith(("http://", "https://"))


def failure_message(uri: str, claims: list[str], done: list[str], err: BaseException) -> str:
    """One message for a store that failed after the claims in ``done`` were logged completely."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    reason = reason.replace(uri, redact(uri))[:300]
    logged = f"{len(done)} of {len(claims)} claims were logged completely ({', '.join(done)})"
    rest = [claim for claim in claims if claim not in done]
    return (
        f"MLflow tracking store {redact(uri)} failed ({type(err).__name__}: {reason}); "
        f"{logged if done else 'nothing was logged'}; not logged: {', '.join(rest) or 'none'}. "
        "Every result stays on disk: once the store answers (or the tracking URI is fixed: "
        "config key tracking.uri or MLFLOW_TRACKING_URI), "
        "run snakemake again; only the tracking job re-runs, keeps what is complete and finishes the rest."
    )


def fingerprint(files: ClaimFiles, seeds_per_cell: int | None) -> str:
    """SHA-256 of the content a claim's runs are made of, never of clocks or machines.

    Covers the verdict, the cells' arrays (names, dtypes, shapes, bytes: not the ``.npz`` zip
    bytes) and descriptions without :data:`MACHINE_FIELDS` (wall-clock timings), the data files,
    the shared tags other than the git commit, the seed cap, and the code of this module (its
    syntax tree, :mod:`actlab.workflow.code_digest`). A new commit, a re-trained cell with the same numbers
    or another machine's timings therefore change nothing. A claim whose results are wall-clock
    measurements (its verdict lists ``machines``) is fingerprinted by its :data:`RULE_FIELDS`, its
    conditions' verdicts and its cell descriptions: every run measures other numbers, and the store
    keeps the first logging until a label changes.
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
    digest.update(code_digest.digest(["actlab.tracking"], []).encode())
    return digest.hexdigest()


def _json_content(source: Path | dict) -> bytes:
    """A JSON file (or its parsed content) as canonical bytes, without the :data:`MACHINE_FIELDS`
    of its top level."""
    content = source if isinstance(source, dict) else json.loads(Path(source).read_text())
    if isinstance(content, dict):
        content = {key: value for key, value in content.items() if key not in MACHINE_FIELDS}
    return json.dumps(content, sort_keys=True).encode()


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _track(
    client: MlflowClient, uri: str, files: ClaimFiles, seeds_per_cell: int | None, owner: Owner, counter
) -> dict:
    """Log one claim unless its owner's current runs are complete and from the same files; its record."""
    verdict = json.loads(files.verdict.read_text())
    claim = verdict["claim"]
    current = fingerprint(files, seeds_per_cell)
    experiment_id = _experiment(client, uri, verdict, artifact_location(uri, claim), owner)
    existing = _claim_runs(client, experiment_id, claim)
    mine = [run for run in existing if owner.owns(run.data.tags)]
    others = len(existing) - len(mine)
    parent_id = _current_parent(mine, current)
    if parent_id is not None and not _has_artifacts(client, parent_id, _artifacts(files, verdict)):
        parent_id = None
    kept = parent_id is not None
    if not kept:
        parent_id = _log_claim(client, uri, experiment_id, files, verdict, seeds_per_cell, current, owner, counter)
    children = _children(client, experiment_id, claim, parent_id)
    stale = [run for run in mine if run.info.run_id != parent_id and run.info.run_id not in children.values()]
    _supersede(client, stale, parent_id)
    runs: dict[str, dict[str, str]] = {}
    for (cell, seed), run_id in children.items():
        runs.setdefault(cell, {})[seed] = run_id
    runs = {cell: dict(sorted(seeds.items(), key=lambda kv: int(kv[0]))) for cell, seeds in sorted(runs.items())}
    n_runs = 1 + len(children)
    lines = [
        f"{claim}: {'kept' if kept else 'logged'} {n_runs} runs (parent {parent_id}, {verdict['verdict']})"
        + (f"; superseded {len(stale)} earlier runs of this workflow" if stale else "")
        + (f"; left {others} runs of other workflows alone" if others else "")
    ]
    lines += [f"  superseded {run.info.run_id} ({run.info.run_name}, {run.info.status})" for run in stale]
    print("\n".join(lines), flush=True)  # one write: claims logged side by side do not interleave lines
    return {
        "tracking_uri": redact(uri),
        "experiment_name": claim,
        "experiment_id": experiment_id,
        "parent_run_id": parent_id,
        "fingerprint": current,
        "n_runs": n_runs,
        "runs": runs,
    }


def _children(client: MlflowClient, experiment_id: str, claim: str, parent_id: str) -> dict[tuple[str, str], str]:
    """``(cell, seed)`` -> run id of the parent's active child runs."""
    found = _search(client, experiment_id, f"tags.claim = '{claim}' and tags.mlflow.parentRunId = '{parent_id}'")
    return {(run.data.tags["cell"], run.data.tags["seed"]): run.info.run_id for run in found}


def _supersede(client: MlflowClient, runs: list, parent_id: str) -> None:
    """Tag ``runs`` as superseded by ``parent_id`` and delete them; RUNNING ones are marked KILLED first."""
    for run in runs:
        client.set_tag(run.info.run_id, SUPERSEDED_TAG, parent_id)
        if run.info.status == RunStatus.to_string(RunStatus.RUNNING):
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        client.delete_run(run.info.run_id)


def _log_claim(
    client, uri, experiment_id: str, files: ClaimFiles, verdict: dict, seeds_per_cell, digest, owner, counter
) -> str:
    """Log a claim's parent run, its artifacts and its child runs; finish the parent last."""
    ownership = {OWNER_TAG: owner.id, LOCATION_TAG: owner.location}
    children = [
        run
        for cell, (npz, js) in files.cells.items()
        for run in cell_runs(
            verdict["claim"],
            cell,
            npz,
            js,
            files.context,
            seeds_per_cell,
            data=files.data.get(cell, {}),
            benchmark=files.benchmarks.get(cell),
        )
    ]
    parent = parent_run(verdict, files.context, report=files.report)
    parent.tags.update(ownership)
    parent.tags.update(
        {FINGERPRINT_TAG: digest, "seeds_per_cell": str(seeds_per_cell or "all"), N_CHILDREN_TAG: str(len(children))}
    )
    if children:  # the parent spans the training of its cells
        parent.start = min(run.start for run in children)
        parent.end = max(run.end for run in children)
    parent_id = _log_run(client, experiment_id, parent, counter)
    for path in _artifacts(files, verdict):
        client.log_artifact(parent_id, str(path))
    for run in children:
        run.tags.update(ownership)
    threads = HTTP_THREADS if is_http(uri) else 1
    # The first run of each data set goes alone: parallel requests would race to create its row.
    seen: set[str] = set()
    first = []
    for run in children:
        digests = {data.dataset.digest for data in run.inputs}
        if digests - seen:
            first.append(run)
            seen |= digests
    for run in first:
        _log_run(client, experiment_id, run, counter, parent_id)
    rest = [run for run in children if all(run is not other for other in first)]
    if threads > 1 and len(rest) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda run: _log_run(client, experiment_id, run, counter, parent_id), rest))
    else:
        for run in rest:
            _log_run(client, experiment_id, run, counter, parent_id)
    client.set_terminated(parent_id, RunStatus.to_string(RunStatus.FINISHED), end_time=parent.end)
    return parent_id


def _artifacts(files: ClaimFiles, verdict: dict) -> list[Path]:
    """The files logged as the parent run's artifacts: ``verdict.json`` and the claim's figures."""
    return [files.verdict] + [files.verdict.parent / fig["path"] for fig in verdict.get("figures", [])]


def _has_artifacts(client: MlflowClient, run_id: str, paths: list[Path]) -> bool:
    """Whether the run's artifact store still holds a file of each name (they may have been deleted)."""
    stored = {info.path for info in client.list_artifacts(run_id)}
    return {path.name for path in paths} <= stored


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


def parent_run(
    verdict: dict, context: dict[str, str], timestamp: int | None = None, report: str | None = None
) -> RunData:
    """The claim's parent run, ``{claim}: {verdict}``: verdict and statement as tags, rule as params, CI as metrics."""
    claim = verdict["claim"]
    timestamp = timestamp or int(time.time() * 1000)
    low, high = verdict["ci95"]
    values = {
        "estimate": verdict["estimate"],
        "ci95_low": low,
        "ci95_high": high,
        "diverged_runs": verdict.get("diverged_runs"),
    }
    tags = {
        **context,
        ROLE_TAG: "claim",
        "verdict": verdict["verdict"],
        "kind": verdict.get("kind", "claim"),
        "statement": verdict["statement"],
        "source": ", ".join(verdict["source"]),
        "experiment_type": verdict["experiment"],
        "group": str(verdict.get("group")),
        "headline_condition": verdict["headline_condition"],
        "mlflow.note.content": _description(verdict, report),
    }
    if report:
        tags["report"] = report
    params = flatten(verdict["decision"], "decision.")
    params.update({"n_seeds": str(verdict["n_seeds"]), "n_cells": str(len(verdict["cells"]))})
    metrics = [Metric(key, float(value), timestamp, 0) for key, value in values.items() if value is not None]
    return RunData(f"{claim}: {verdict['verdict']}", {"claim": claim, **tags}, params, metrics)


def _description(verdict: dict, report: str | None = None) -> str:
    """The parent run's Markdown description, as the MLflow UI shows it."""
    low, high = verdict["ci95"]
    text = (
        f"**{verdict['verdict']}**: {verdict['statement']}\n\n"
        f"Decision: {verdict['metric']} ({verdict['metric_meaning']}) {verdict['compare']} "
        f"{verdict['threshold']}; estimate {verdict['estimate']}, 95% CI [{low}, {high}] "
        f"({verdict['headline_condition']}; {verdict['ci_method']}).\n\n"
        f"Sources: {', '.join(verdict['source'])}"
    )
    return text + (f"\n\n[The claim in the report]({report})" if report else "")


def child_name(setting: dict, seed: int, cell: str) -> str:
    """A child run's name from its setting: ``tanh lr=0.5 s0`` (the activation axis shows its label alone)."""
    parts = [str(label) if axis == "activation" else f"{axis}={label}" for axis, label in setting.items()]
    return " ".join(parts or [cell]) + f" s{seed}"


def training_times(npz_path: Path, benchmark: Path | None) -> tuple[int, int]:
    """Start and end (ms since the epoch) of the job that trained a cell.

    The end is when the cell's ``.npz`` was written; the duration is the ``s`` column of the job's
    Snakemake benchmark, zero when there is none.
    """
    end = int(Path(npz_path).stat().st_mtime * 1000)
    seconds = 0.0
    if benchmark is not None and Path(benchmark).exists():
        lines = Path(benchmark).read_text().splitlines()
        with contextlib.suppress(ValueError, IndexError):
            seconds = float(lines[1].split("\t")[lines[0].split("\t").index("s")])
    return end - int(seconds * 1000), end


def dataset_input(name: str, path: Path, cell_params: dict) -> DatasetInput:
    """A data set file as an MLflow input: digest = the first 16 hex digits of the file's SHA-256."""
    profile = {key: value for key, value in cell_params.items() if key == "dataset"}
    dataset = Dataset(
        name=name,
        digest=file_digest(path)[:16],
        source_type="local",
        source=json.dumps({"uri": Path(path).resolve().as_uri()}),
        profile=json.dumps(profile) if profile else None,
    )
    return DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])


def cell_runs(
    claim: str,
    cell: str,
    npz_path,
    json_path,
    context: dict[str, str],
    seeds_per_cell: int | None = None,
    data: dict[str, Path] | None = None,
    benchmark: Path | None = None,
) -> list[RunData]:
    """One child run per seed of a trained cell, up to ``seeds_per_cell`` seeds.

    Params, tags, metrics (without placeholders: a seed's series of only NaN or
    :data:`PLACEHOLDER`), the training job's times, the data sets as inputs, and the cell's two
    files as artifacts of the seed-0 run.
    """
    info = json.loads(Path(json_path).read_text())
    with np.load(npz_path) as arrays_file:
        arrays = {key: arrays_file[key] for key in arrays_file.files}
    n_seeds = int(info["n_seeds"])
    series = seed_metrics(arrays, n_seeds, info["params"].get("epochs"))
    params = flatten(info["params"])
    params.update({"n_seeds": str(n_seeds), "global_seed": str(info["seed_key"][0])})
    tags = {**context, ROLE_TAG: "cell", **{f"setting.{axis}": str(label) for axis, label in info["setting"].items()}}
    tags["cell_file"] = str(npz_path)
    start, end = training_times(npz_path, benchmark)
    inputs = [dataset_input(name, path, info["params"]) for name, path in sorted((data or {}).items())]
    runs = []
    for seed in range(n_seeds if seeds_per_cell is None else min(n_seeds, seeds_per_cell)):
        metrics = [
            Metric(name, float(values[seed, t]), end, int(step))
            for name, (steps, values) in series.items()
            if not placeholder(values[seed])
            for t, step in enumerate(steps)
        ]
        run_tags = {"claim": claim, "cell": cell, "seed": str(seed), **tags}
        runs.append(
            RunData(
                child_name(info["setting"], seed, cell),
                run_tags,
                {**params, "seed_index": str(seed)},
                metrics,
                start,
                end,
                inputs,
                [Path(npz_path), Path(json_path)] if seed == 0 else [],
            )
        )
    return runs


def placeholder(values: np.ndarray) -> bool:
    """Whether a seed's series holds no value: every entry NaN or :data:`PLACEHOLDER`."""
    values = np.asarray(values, dtype=float)
    return bool(np.all(np.isnan(values) | (values == PLACEHOLDER)))


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
    if not is_http(uri):
        return
    try:
        with urllib.request.urlopen(f"{without_credentials(uri).rstrip('/')}/health", timeout=timeout):
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
    """Apply :data:`CLIENT_ENV` where the environment does not set it, quiet :data:`QUIET_LOGGERS`; restore on exit."""
    added = {key: value for key, value in CLIENT_ENV.items() if key not in os.environ}
    os.environ.update(added)
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


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


def _experiment(client: MlflowClient, uri: str, verdict: dict, location: str | None, owner: Owner) -> str:
    """Id of the claim's experiment, created (or restored from the trash) as needed, with its tags.

    The tags show the latest logged verdict, estimate and CI, and open the UI on its runs view
    (``mlflow.experimentKind``).

    Raises
    ------
    TrackingUnavailable
        When ``uri`` is a database whose experiment keeps its artifacts behind an MLflow server
        (``mlflow-artifacts:``), which only that server can write.
    """
    name = verdict["claim"]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = client.create_experiment(name, artifact_location=location, tags={"claim": name})
    else:
        experiment_id = experiment.experiment_id
        if experiment.artifact_location.startswith("mlflow-artifacts:") and not is_http(uri):
            raise TrackingUnavailable(
                f"The experiment {name} in {redact(uri)} stores its artifacts through an MLflow server "
                f"({experiment.artifact_location}), which a direct database URI cannot write; nothing "
                "more was logged. Set tracking.uri (or MLFLOW_TRACKING_URI) to that server's URL, "
                "e.g. http://host:5000, and run again."
            )
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    low, high = verdict["ci95"]
    tags = {
        "mlflow.note.content": verdict["statement"],
        "mlflow.experimentKind": "custom_model_development",
        "verdict": verdict["verdict"],
        "estimate": str(verdict["estimate"]),
        "ci95": f"[{low}, {high}]",
        "verdict_from": owner.location,
    }
    for key, value in tags.items():
        client.set_experiment_tag(experiment_id, key, value)
    return experiment_id


def _search(client: MlflowClient, experiment_id: str, query: str) -> list:
    """Every active run of the experiment matching ``query`` (all pages of the search)."""
    found, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _claim_runs(client: MlflowClient, experiment_id: str, claim: str) -> list:
    """Every active run of the experiment tagged with the claim."""
    return _search(client, experiment_id, f"tags.claim = '{claim}'")


def _current_parent(runs: list, digest: str) -> str | None:
    """Id of a parent among ``runs`` that is one complete logging of ``digest``, else ``None``.

    Complete means FINISHED (a parent is finished after its last child), with the same
    fingerprint, and with as many FINISHED children among ``runs`` as its ``actlab.n_children``.
    """
    finished = RunStatus.to_string(RunStatus.FINISHED)
    for parent in sorted(runs, key=lambda run: -run.info.start_time):
        tags = parent.data.tags
        if "mlflow.parentRunId" in tags or tags.get(FINGERPRINT_TAG) != digest or parent.info.status != finished:
            continue
        children = [run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        if all(run.info.status == finished for run in children) and str(len(children)) == tags.get(N_CHILDREN_TAG):
            return parent.info.run_id
    return None


class _RunCounter:
    """Counts logged runs; with :data:`KILL_AFTER_RUNS_ENV` set, SIGKILLs the process (tests only)."""

    def __init__(self) -> None:
        self.count = 0
        self.kill_after = int(os.environ.get(KILL_AFTER_RUNS_ENV, "0"))
        self.lock = threading.Lock()

    def logged(self) -> None:
        with self.lock:
            self.count += 1
            if self.count == self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)


def _log_run(
    client: MlflowClient, experiment_id: str, run: RunData, counter: _RunCounter, parent_id: str | None = None
) -> str:
    """Create one run with its tags, log its batches, inputs and artifacts; a child is then FINISHED at once."""
    tags = run.tags if parent_id is None else {**run.tags, "mlflow.parentRunId": parent_id}
    run_id = client.create_run(experiment_id, start_time=run.start, tags=tags, run_name=run.name).info.run_id
    params = [Param(key, value) for key, value in run.params.items()]
    for metrics, batch_params in batches(run.metrics, params):
        client.log_batch(run_id, metrics=metrics, params=batch_params)
    if run.inputs:
        client.log_inputs(run_id, datasets=run.inputs)
    for path in run.artifacts:
        client.log_artifact(run_id, str(path), "cell")
    counter.logged()
    if parent_id is not None:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED), end_time=run.end)
    return run_id
