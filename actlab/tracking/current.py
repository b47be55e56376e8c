"""A claim's runs already in the store: which parent is a current, complete logging, and superseding the rest.

A parent is current when it is FINISHED, carries the claim's current fingerprint, has all its
children FINISHED and still has its artifacts. A workflow supersedes its own other runs of the
claim: it tags them ``actlab.superseded_by`` (the current parent's id), marks those a killed job
left RUNNING as KILLED and deletes them (restorable until ``mlflow gc``).
"""

from __future__ import annotations

from pathlib import Path

from mlflow.entities import RunStatus, ViewType
from mlflow.tracking import MlflowClient

from actlab.tracking.fingerprints import FINGERPRINT_TAG

#: Tag of a parent run: how many child runs make it complete.
N_CHILDREN_TAG = "actlab.n_children"
#: Tag set on a run replaced by a newer logging of the same workflow: the new parent's id.
SUPERSEDED_TAG = "actlab.superseded_by"


def search(client: MlflowClient, experiment_id: str, query: str) -> list:
    """Every active run of the experiment matching ``query`` (all pages of the search)."""
    found, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def claim_runs(client: MlflowClient, experiment_id: str, claim: str) -> list:
    """Every active run of the experiment tagged with the claim."""
    return search(client, experiment_id, f"tags.claim = '{claim}'")


def current_parent(runs: list, digest: str) -> str | None:
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


def children(client: MlflowClient, experiment_id: str, claim: str, parent_id: str) -> dict[tuple[str, str], str]:
    """``(cell, seed)`` -> run id of the parent's active child runs."""
    found = search(client, experiment_id, f"tags.claim = '{claim}' and tags.mlflow.parentRunId = '{parent_id}'")
    return {(run.data.tags["cell"], run.data.tags["seed"]): run.info.run_id for run in found}


def has_artifacts(client: MlflowClient, run_id: str, paths: list[Path]) -> bool:
    """Whether the run's artifact store still holds a file of each name (they may have been deleted)."""
    stored = {info.path for info in client.list_artifacts(run_id)}
    return {path.name for path in paths} <= stored


def supersede(client: MlflowClient, runs: list, parent_id: str) -> None:
    """Tag ``runs`` as superseded by ``parent_id`` and delete them; RUNNING ones are marked KILLED first."""
    for run in runs:
        client.set_tag(run.info.run_id, SUPERSEDED_TAG, parent_id)
        if run.info.status == RunStatus.to_string(RunStatus.RUNNING):
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        client.delete_run(run.info.run_id)
