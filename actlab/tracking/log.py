"""Log judged claims to MLflow: one experiment per claim, a parent run, child runs per cell x seed.

Files under ``results/`` stay the source of truth. :func:`track_claims` only reads each claim's
verdict, figures, cell files and data sets, and returns the run ids, which the workflow records in
``results/claims/{claim}/mlflow.json``. What the runs contain: :mod:`actlab.tracking.runs`.

* **Experiment** (named by the claim id): the statement as its description; the latest verdict,
  estimate and CI as tags.
* **Parent run**: also ``verdict.json`` and the claim's figures as artifacts, and it is finished
  after its last child.
* **Tags** of every run: ``claim``, ``cell``, ``seed`` (children), ``git_commit``, ``config_hash``,
  ``actlab_version``, ``snakemake_rule`` (:func:`actlab.tracking.context.run_context`) and the
  :class:`~actlab.tracking.owner.Owner`.

Ownership: a workflow replaces only runs it owns, those logged from the same results directory.
A claim whose own complete runs carry the :func:`~actlab.tracking.fingerprints.fingerprint` of its
current files is left as it is; otherwise it is logged again and its own earlier runs are
superseded (:mod:`actlab.tracking.current`): tagged ``actlab.superseded_by``, listed in the log,
then deleted (restorable until ``mlflow gc``). Other workflows' runs are never touched.

Writers of one store are serialized (:func:`actlab.tracking.store.store_lock`). A store that
fails, at start or half-way, raises :class:`~actlab.tracking.store.TrackingUnavailable` with one
message saying what was and was not logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from mlflow.entities import Param, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_ENTITIES_PER_BATCH, MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH

from actlab.claims.experiments import EXPERIMENTS
from actlab.tracking import current
from actlab.tracking.fingerprints import FINGERPRINT_TAG, fingerprint
from actlab.tracking.owner import Owner
from actlab.tracking.runs import ClaimFiles, RunData, cell_runs, parent_run
from actlab.tracking.store import (
    STORE_ERRORS,
    TrackingUnavailable,
    artifact_location,
    check_reachable,
    client_settings,
    failure_message,
    sqlite_tuning,
    store_lock,
)
from actlab.tracking.uri import is_http, redact

#: Over HTTP (a server answers requests in parallel; SQLite does not): claims logged side by side,
#: and child runs of one claim logged side by side.
HTTP_CLAIMS = 4
HTTP_THREADS = 8


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
    with client_settings(), store_lock(uri), sqlite_tuning():
        try:
            client = MlflowClient(tracking_uri=uri)
        except STORE_ERRORS as err:
            raise TrackingUnavailable(failure_message(uri, names, [], err)) from None
        with ThreadPoolExecutor(workers) as pool:
            futures = {name: pool.submit(_track, client, uri, files, seeds_per_cell, owner)
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


def _track(client: MlflowClient, uri: str, files: ClaimFiles, seeds_per_cell: int | None, owner: Owner) -> dict:
    """Log one claim unless its owner's current runs are complete and from the same files; its record."""
    verdict = json.loads(files.verdict.read_text())
    claim = verdict["claim"]
    digest = fingerprint(files, seeds_per_cell)
    experiment_id = _experiment(client, uri, verdict, artifact_location(uri, claim), owner)
    existing = current.claim_runs(client, experiment_id, claim)
    mine = [run for run in existing if owner.owns(run.data.tags)]
    others = len(existing) - len(mine)
    parent_id = current.current_parent(mine, digest)
    if parent_id is not None and not current.has_artifacts(client, parent_id, _artifacts(files, verdict)):
        parent_id = None
    kept = parent_id is not None
    if not kept:
        parent_id = _log_claim(client, uri, experiment_id, files, verdict, seeds_per_cell, digest, owner)
    children = current.children(client, experiment_id, claim, parent_id)
    stale = [run for run in mine if run.info.run_id != parent_id and run.info.run_id not in children.values()]
    current.supersede(client, stale, parent_id)
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
        "fingerprint": digest,
        "n_runs": n_runs,
        "runs": runs,
    }


def _log_claim(client, uri, experiment_id: str, files: ClaimFiles, verdict: dict, seeds_per_cell, digest, owner) -> str:
    """Log a claim's parent run, its artifacts and its child runs; finish the parent last."""
    experiment = EXPERIMENTS[verdict["experiment"]]
    children = [
        run
        for cell, (npz, js) in files.cells.items()
        for run in cell_runs(
            verdict["claim"],
            cell,
            npz,
            js,
            files.context,
            experiment,
            seeds_per_cell,
            data=files.data.get(cell, {}),
            benchmark=files.benchmarks.get(cell),
        )
    ]
    parent = parent_run(verdict, files.context, report=files.report)
    parent.tags.update(owner.tags())
    parent.tags.update(
        {
            FINGERPRINT_TAG: digest,
            "seeds_per_cell": str(seeds_per_cell or "all"),
            current.N_CHILDREN_TAG: str(len(children)),
        }
    )
    if children:  # the parent spans the training of its cells
        parent.start = min(run.start for run in children)
        parent.end = max(run.end for run in children)
    parent_id = _log_run(client, experiment_id, parent)
    for path in _artifacts(files, verdict):
        client.log_artifact(parent_id, str(path))
    for run in children:
        run.tags.update(owner.tags())
    threads = HTTP_THREADS if is_http(uri) else 1
    # The first run of each data set goes alone: parallel requests would race to create its row.
    seen: set[str] = set()
    first, rest = [], []
    for run in children:
        digests = {data.dataset.digest for data in run.inputs}
        (first if digests - seen else rest).append(run)
        seen |= digests
    for run in first:
        _log_run(client, experiment_id, run, parent_id)
    if threads > 1 and len(rest) > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda run: _log_run(client, experiment_id, run, parent_id), rest))
    else:
        for run in rest:
            _log_run(client, experiment_id, run, parent_id)
    client.set_terminated(parent_id, RunStatus.to_string(RunStatus.FINISHED), end_time=parent.end)
    return parent_id


def _artifacts(files: ClaimFiles, verdict: dict) -> list[Path]:
    """The files logged as the parent run's artifacts: ``verdict.json`` and the claim's figures."""
    return [files.verdict] + [files.verdict.parent / fig["path"] for fig in verdict.get("figures", [])]


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


def _log_run(client: MlflowClient, experiment_id: str, run: RunData, parent_id: str | None = None) -> str:
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
    if parent_id is not None:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED), end_time=run.end)
    return run_id
