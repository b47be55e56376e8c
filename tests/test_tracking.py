"""MLflow tracking (actlab.tracking, rule track_claims): run layout, idempotency, locking, failures.

The workflow tests log the session's shared quick run again to a fresh store, with ``--cores 8``
(the 8 claims with the fewest runs); later tests work on copies of it, so only the tracking job
runs again there.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy
import yaml
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from actlab import tracking
from actlab.claims.register import load_yaml, resolve
from actlab.tracking import log

QUICK_STORE = "results-quick/mlflow.db"
N_TRACKED = 8  # claims of the shared run (those with the fewest runs)
KILL_PLUGIN = Path(__file__).parent / "kill_tracking"  # its sitecustomize.py kills the tracking job


def kill_tracking_after(runs: int) -> dict[str, str]:
    """Environment of a Snakemake run whose tracking job dies (SIGKILL) as it creates its ``runs``-th
    MLflow run: ``tests/kill_tracking/sitecustomize.py`` on ``PYTHONPATH``, told when by a variable."""
    path = os.pathsep.join(filter(None, [str(KILL_PLUGIN), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "ACTLAB_TEST_KILL_TRACKING_AFTER_RUNS": str(runs)}


def snakemake(workdir: Path, *args: str, targets=(), configs=(), env=None) -> subprocess.CompletedProcess:
    """Run the quick profile (plus ``configs``); targets go first, as options take lists."""
    return subprocess.run(
        ["snakemake", *targets, *args, "--configfile", "config/quick.yaml", *configs],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Tracked:
    """A workflow copy run with tracking on ``claims`` (claim id -> expected child runs)."""

    workdir: Path
    claims: dict[str, int]

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.workdir / QUICK_STORE}"

    @property
    def small(self) -> list[str]:
        """The two claims with the fewest runs, for the tests that log again."""
        return sorted(self.claims, key=self.claims.get)[:2]

    def children(self, cap: int) -> dict[str, int]:
        """Claim id -> expected child runs of the tracked claims when ``cap`` seeds per cell are logged."""
        return {claim: n for claim, n in expected_children(self.workdir, cap).items() if claim in self.claims}

    def snakemake(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run the quick profile restricted to the tracked claims."""
        return snakemake(self.workdir, *args, "--config", f"only=[{','.join(self.claims)}]", **kwargs)

    def record(self, claim: str) -> dict:
        return json.loads((self.workdir / f"results-quick/claims/{claim}/mlflow.json").read_text())


def expected_children(workdir: Path, cap: int | None = None) -> dict[str, int]:
    """Claim id -> cells x logged seeds of the quick profile of the workflow copy in ``workdir``.

    ``cap`` is the seeds logged per cell; ``None`` takes the workflow's default.
    """
    register = load_yaml(workdir / "config/claims.yaml")
    sources = load_yaml(workdir / "config/sources.yaml")["sources"]
    cap = cap or load_yaml(workdir / "config/config.yaml")["tracking"]["seeds_per_cell"]
    return {c["id"]: len(c["cells"]) * min(c["seeds"], cap) for c in resolve(register, sources, "quick")}


def active_runs(uri: str, claims=None, view=ViewType.ACTIVE_ONLY) -> dict[str, list]:
    """Claim id -> its runs in the store (every claim experiment, or those of ``claims``)."""
    client = MlflowClient(uri)
    names = claims or [e.name for e in client.search_experiments() if e.name != "Default"]
    found = {}
    for name in names:
        experiment = client.get_experiment_by_name(name)
        runs, token = [], None
        while True:
            page = client.search_runs([experiment.experiment_id], "", view, max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                break
        found[name] = runs
    return found


def check_layout(uri: str, workdir: Path, claims: dict[str, int]) -> None:
    """One finished parent per claim, its children linked to it, one per cell x seed, as mlflow.json says."""
    stored = active_runs(uri, list(claims))
    for claim, n_children in claims.items():
        runs = stored[claim]
        parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert len(parents) == 1, claim
        assert len(children) == n_children, claim
        assert {r.info.status for r in runs} == {"FINISHED"}, claim
        parent = parents[0]
        assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
        keys = Counter((r.data.tags["cell"], r.data.tags["seed"]) for r in children)
        assert max(keys.values()) == 1, f"{claim}: duplicated cell/seed runs"
        record = json.loads((workdir / f"results-quick/claims/{claim}/mlflow.json").read_text())
        assert record["parent_run_id"] == parent.info.run_id
        recorded = {run_id for seeds in record["runs"].values() for run_id in seeds.values()}
        assert recorded == {r.info.run_id for r in children}
        for key in ("verdict", "statement", "source", "git_commit", "config_hash", "actlab_version", "snakemake_rule"):
            assert parent.data.tags.get(key), (claim, key)
        assert "decision.metric" in parent.data.params


def sqlite_healthy(path: Path) -> bool:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def job_counts(dry_run: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry run's job-stats table (empty when there is nothing to do)."""
    lines = (dry_run.stdout + dry_run.stderr).splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Job stats:")), len(lines))
    counts = {}
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def tracking_config(workdir: Path, **settings) -> str:
    """A config file with these ``tracking`` settings; returns its name for --configfile."""
    (workdir / "tracking.yaml").write_text(yaml.safe_dump({"tracking": settings}))
    return "tracking.yaml"


def mlflow_json(claims: list[str]) -> list[str]:
    """The claims' mlflow.json: as targets, Snakemake runs what they need and leaves the rest alone."""
    return [f"results-quick/claims/{claim}/mlflow.json" for claim in claims]


def result_hashes(workdir: Path) -> dict[str, str]:
    """SHA-256 of every result file except tracking's own (mlflow.json, the store, its artifacts)."""
    root = workdir / "results-quick"
    skip = ("mlflow.db", "mlartifacts", "benchmarks/track_claims")
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "mlflow.json" and not str(p.relative_to(root)).startswith(skip)
    }


@pytest.fixture(scope="module")
def tracked_run(shared_quick_run, tmp_path_factory, copy_run) -> Tracked:
    """The session's quick run, its store and records removed, logged again to a fresh store on 8 cores."""
    workdir = copy_run(shared_quick_run, tmp_path_factory.mktemp("tracked") / "workflow")
    for path in [workdir / QUICK_STORE, *(workdir / "results-quick/claims").glob("*/mlflow.json")]:
        path.unlink()
    shutil.rmtree(workdir / "results-quick/mlartifacts", ignore_errors=True)
    tracked = Tracked(workdir, dict(sorted(expected_children(workdir).items(), key=lambda kv: kv[1])[:N_TRACKED]))
    planned = job_counts(tracked.snakemake("--cores", "8", "-n"))  # tracking and the subset's report, no training
    assert planned == {"track_claims": 1, "render_report": 1, "all": 1}, planned
    result = tracked.snakemake("--cores", "8")
    assert result.returncode == 0, result.stderr[-4000:]
    return tracked


@pytest.fixture
def tracked_copy(tracked_run, tmp_path) -> Tracked:
    """A copy of the tracked run (results, store and Snakemake's records) to log again in."""
    return Tracked(Path(shutil.copytree(tracked_run.workdir, tmp_path / "copy", symlinks=True)), tracked_run.claims)


@pytest.fixture
def mlflow_server(request, tmp_path):
    """Start ``mlflow server`` on a free loopback port with the given backend store; yield its URL.

    The server runs in ``tmp_path``, where a relative SQLite store is created. A PostgreSQL
    database is emptied first, so runs of an earlier test session cannot be found there.
    """
    if request.param.startswith("postgresql"):
        engine = sqlalchemy.create_engine(request.param)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [
            "mlflow", "server", "--backend-store-uri", request.param, "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1", "--artifacts-destination", str(tmp_path / "artifacts"),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    request.node.mlflow_server_process = server  # for tests that stop the server half-way
    request.node.mlflow_server_db = tmp_path / "server.db"  # an SQLite backend's file
    try:
        _wait_for(url, server, tmp_path / "server.log")
        yield url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        log.close()


def _wait_for(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} did not start: {log.read_text()[-3000:]}")


def server_stores() -> list:
    """Backend stores of the server test: SQLite always, PostgreSQL when CI provides one."""
    postgres = os.environ.get("ACTLAB_TEST_POSTGRES_URI")
    reason = "no PostgreSQL: set ACTLAB_TEST_POSTGRES_URI (.ci/run starts one) to test an mlflow server on it"
    return [
        pytest.param("sqlite:///server.db", id="sqlite"),
        pytest.param(postgres, id="postgresql", marks=pytest.mark.skipif(not postgres, reason=reason)),
    ]


# ---------------------------------------------------------------------------------------------
# Units


def test_seed_metrics_follow_the_declared_dims():
    s, e = 3, 4
    arrays = {
        "loss": np.ones((s, e)),
        "test_accuracy": np.ones((s, e + 1)),
        "grad_norm": np.arange(s * 3 * 2.0).reshape(s, 3, 2),
        "probe_epochs": np.array([0, 2, 4]),
        "diverged": np.array([False, True, False]),
        "rel_change": np.ones((s, 5)),  # per layer, not per epoch: stays in the .npz, although 5 = e + 1
        "curve": np.ones((s, 601)),
        "plot_z": np.ones(601),
        "act_var": np.ones((s, 2, 30)),  # more layers than MAX_SERIES_PER_ARRAY: their mean
        "dead0": np.arange(s * (e + 1) * 64).reshape(s, e + 1, 64) % 4 == 0,  # per unit: logged as the fraction
    }
    dims = {
        "loss": ("seed", "train_epoch"),
        "test_accuracy": ("seed", "epoch"),
        "grad_norm": ("seed", "probe", "layer"),
        "probe_epochs": ("probe",),
        "diverged": ("seed",),
        "rel_change": ("seed", "layer"),
        "curve": ("seed", "grid"),
        "plot_z": ("grid",),
        "act_var": ("seed", "stage", "layer"),
        "dead0": ("seed", "epoch", "unit"),
    }
    series = tracking.seed_metrics(arrays, dims, e)
    expected = ["act_var_mean", "dead0_mean", "diverged", "grad_norm_l0", "grad_norm_l1", "loss", "test_accuracy"]
    assert sorted(series) == expected
    assert list(series["loss"][0]) == [1, 2, 3, 4]
    assert list(series["test_accuracy"][0]) == [0, 1, 2, 3, 4]
    steps, values = series["grad_norm_l1"]
    assert list(steps) == [0, 2, 4] and values.shape == (s, 3) and values[1, 2] == arrays["grad_norm"][1, 2, 1]
    assert list(series["act_var_mean"][0]) == [0, 4]
    assert np.all(series["dead0_mean"][1] == 0.25) and list(series["dead0_mean"][0]) == [0, 1, 2, 3, 4]
    assert list(series["diverged"][0]) == [0] and series["diverged"][1][1, 0]


def test_an_epoch_axis_cut_short_gives_the_first_epochs():
    """A training that stopped when every seed diverged (after epoch 1 of 5) leaves a shorter axis."""
    series = tracking.seed_metrics({"loss": np.ones((2, 2))}, {"loss": ("seed", "epoch")}, 5)
    assert list(series["loss"][0]) == [0, 1]


def test_batches_respect_mlflow_limits():
    metrics, params = list(range(2500)), [f"p{i}" for i in range(250)]
    calls = list(tracking.batches(metrics, params))
    for m, p in calls:
        assert len(m) <= 1000 and len(p) <= 100 and len(m) + len(p) <= 1000
    assert [x for m, _ in calls for x in m] == metrics
    assert [x for _, p in calls for x in p] == params
    assert list(tracking.batches([], [])) == []


def test_flatten_lock_path_and_redact(tmp_path):
    assert tracking.flatten({"activation": {"name": "leaky_relu", "slope": 0.1}, "hidden": [8, 8], "lr": 0.5}) == {
        "activation.name": "leaky_relu",
        "activation.slope": "0.1",
        "hidden": "[8, 8]",
        "lr": "0.5",
    }
    assert tracking.lock_path("sqlite:///results-quick/mlflow.db") == Path("results-quick/mlflow.db.lock")
    assert tracking.lock_path("sqlite:////abs/m.db?timeout=5") == Path("/abs/m.db.lock")
    assert tracking.lock_path("http://host:5000").parent == Path(tempfile.gettempdir())
    assert tracking.redact("postgresql://user:secret@db/mlflow") == "postgresql://user:***@db/mlflow"
    assert tracking.redact("http://host:5000") == "http://host:5000"


MOUNTS = """sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw 0 0
nas:/home /home nfs4 rw 0 0
mds@tcp:/scratch /scratch lustre rw 0 0
/dev/sdb1 /scratch/local ext4 rw 0 0
"""


def test_sqlite_on_a_network_file_system_is_refused_for_cluster_runs():
    assert tracking.filesystem_type("/home/me/actlab/mlflow.db", MOUNTS) == "nfs4"
    assert tracking.filesystem_type("/scratch/local/mlflow.db", MOUNTS) == "ext4"  # the longest mount wins
    assert tracking.filesystem_type("/homeless/mlflow.db", MOUNTS) == "ext4"
    with pytest.raises(ValueError, match="network file system.*nfs4.*MLflow server.*tracking.uri"):
        tracking.check_cluster_store("sqlite:////home/me/actlab/mlflow.db", MOUNTS)
    with pytest.raises(ValueError, match="lustre"):
        tracking.check_cluster_store("sqlite:////scratch/me/mlflow.db", MOUNTS)
    tracking.check_cluster_store("sqlite:////scratch/local/mlflow.db", MOUNTS)  # a local disk is fine
    tracking.check_cluster_store("http://host:5000", MOUNTS)
    tracking.check_cluster_store("postgresql://u:p@db/mlflow", MOUNTS)


def test_the_workflow_reads_the_tracking_uri_without_importing_mlflow():
    """The Snakefile parses with ``actlab.tracking``'s URI functions; MLflow (2 s) is imported by the job."""
    code = "import sys; from actlab import tracking; tracking.redact(tracking.resolve_uri(None)); print(*sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "actlab.tracking.uri" in loaded and "mlflow" not in loaded


def test_unreachable_server_fails_fast_with_a_clear_message():
    uri = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailable, match="unreachable.*nothing was logged"):
        tracking.check_reachable(uri)
    assert time.monotonic() - start < 10


# ---------------------------------------------------------------------------------------------
# The library under parallel writers, outside Snakemake

WRITER = """
import sys, time
from pathlib import Path
from actlab import tracking
uri, folder, claim, n_ready = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
(folder / f"ready-{sys.argv[5]}").touch()
while len(list(folder.glob("ready-*"))) < n_ready:
    time.sleep(0.01)
cells = {c: (folder / claim / f"{c}.npz", folder / claim / f"{c}.json") for c in ("a", "b")}
context = {"git_commit": "x", "config_hash": "y", "actlab_version": "0", "snakemake_rule": "test"}
tracking.track_claims(uri, [tracking.ClaimFiles(folder / claim / "verdict.json", cells, context)])
"""


def claim_files(folder: Path) -> tracking.ClaimFiles:
    """The ClaimFiles of a claim written by :func:`write_claim`."""
    cells = {c: (folder / f"{c}.npz", folder / f"{c}.json") for c in ("a", "b")}
    context = {"git_commit": "x", "config_hash": "y", "actlab_version": "0", "snakemake_rule": "test"}
    return tracking.ClaimFiles(folder / "verdict.json", cells, context)


def write_claim(folder: Path, claim: str, n_seeds: int = 2, epochs: int = 3) -> None:
    """A judged claim of two cells on disk, as judge_claim and train_cell leave it."""
    folder.mkdir(parents=True)
    for cell in ("a", "b"):
        np.savez(folder / f"{cell}.npz", loss=np.ones((n_seeds, epochs)), diverged=np.zeros(n_seeds, bool))
        info = {"n_seeds": n_seeds, "params": {"epochs": epochs, "lr": 0.1}, "setting": {"x": cell}, "seed_key": [1]}
        (folder / f"{cell}.json").write_text(json.dumps(info))
    (folder / "figure.png").write_bytes(b"png")
    verdict = {
        "claim": claim, "statement": "s", "source": ["000"], "group": "G", "experiment": "convergence_speed",
        "verdict": "supported", "metric": "m", "metric_meaning": "meaning", "compare": "<", "estimate": 0.1,
        "ci95": [0.0, 0.2], "headline_condition": "all", "threshold": 1.0, "n_seeds": n_seeds,
        "ci_method": "bootstrap", "decision": {"metric": "m", "compare": "<", "threshold": 1.0},
        "cells": ["a", "b"], "figures": [{"path": "figure.png", "caption": "c"}], "diverged_runs": 0,
    }  # fmt: skip
    (folder / "verdict.json").write_text(json.dumps(verdict))


@pytest.mark.e2e
def test_eight_writers_on_a_fresh_store(tmp_path):
    """8 processes open one fresh SQLite store at once (2 of them log the same claim)."""
    claims = [f"claim-{i}" for i in range(6)]
    for claim in claims:
        write_claim(tmp_path / claim, claim)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    jobs = claims + claims[:2]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, str(tmp_path), claim, str(len(jobs)), str(i)], stderr=subprocess.PIPE
        )
        for i, claim in enumerate(jobs)
    ]
    errors = [w.communicate(timeout=300)[1].decode() for w in writers]
    assert all(w.returncode == 0 for w in writers), "\n".join(errors)[-4000:]
    assert sqlite_healthy(tmp_path / "mlflow.db")
    stored = active_runs(uri)
    assert sorted(stored) == claims
    for claim in claims:
        runs = stored[claim]
        assert len(runs) == 1 + 2 * 2 and {r.info.status for r in runs} == {"FINISHED"}
        child = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
        history = MlflowClient(uri).get_metric_history(child.info.run_id, "loss")
        assert [m.step for m in history] == [1, 2, 3]


def test_logging_again_keeps_current_claims_and_replaces_stale_ones(tmp_path):
    for claim in ("claim-a", "claim-b"):
        write_claim(tmp_path / claim, claim, n_seeds=4)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    files = [claim_files(tmp_path / claim) for claim in ("claim-a", "claim-b")]
    first = tracking.track_claims(uri, files, seeds_per_cell=3)
    assert [first[c]["n_runs"] for c in ("claim-a", "claim-b")] == [1 + 2 * 3, 1 + 2 * 3]
    assert sorted(first["claim-a"]["runs"]["a"]) == ["0", "1", "2"]
    assert tracking.track_claims(uri, files, seeds_per_cell=3) == first

    np.savez(tmp_path / "claim-b/a.npz", loss=np.full((4, 3), 0.5), diverged=np.zeros(4, bool))
    second = tracking.track_claims(uri, files, seeds_per_cell=3)
    assert second["claim-a"] == first["claim-a"]
    assert second["claim-b"]["parent_run_id"] != first["claim-b"]["parent_run_id"]
    stored = active_runs(uri)
    assert {c: len(runs) for c, runs in stored.items()} == {"claim-a": 7, "claim-b": 7}
    assert len(active_runs(uri, ["claim-b"], ViewType.DELETED_ONLY)["claim-b"]) == 7
    history = MlflowClient(uri).get_metric_history(second["claim-b"]["runs"]["a"]["2"], "loss")
    assert [m.value for m in history] == [0.5, 0.5, 0.5]

    every = tracking.track_claims(uri, files, seeds_per_cell=None)
    assert [every[c]["n_runs"] for c in ("claim-a", "claim-b")] == [1 + 2 * 4, 1 + 2 * 4]
    assert {c: len(runs) for c, runs in active_runs(uri).items()} == {"claim-a": 9, "claim-b": 9}


def test_a_claim_whose_artifacts_were_deleted_is_logged_again(tmp_path):
    for claim in ("claim-a", "claim-b"):
        write_claim(tmp_path / claim, claim)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    files = [claim_files(tmp_path / claim) for claim in ("claim-a", "claim-b")]
    first = tracking.track_claims(uri, files)
    client = MlflowClient(uri)
    artifact_dir = Path(urllib.parse.urlparse(client.get_run(first["claim-a"]["parent_run_id"]).info.artifact_uri).path)
    (artifact_dir / "figure.png").unlink()

    second = tracking.track_claims(uri, files)
    assert second["claim-b"] == first["claim-b"]
    assert second["claim-a"]["parent_run_id"] != first["claim-a"]["parent_run_id"]
    assert {a.path for a in client.list_artifacts(second["claim-a"]["parent_run_id"])} == {"figure.png", "verdict.json"}
    assert {c: len(runs) for c, runs in active_runs(uri).items()} == {"claim-a": 1 + 2 * 2, "claim-b": 1 + 2 * 2}


# ---------------------------------------------------------------------------------------------
# Ownership, fingerprints, failures and what the UI shows (library)


def test_fingerprint_ignores_timings_and_zip_bytes(tmp_path):
    write_claim(tmp_path / "c", "c")
    files = claim_files(tmp_path / "c")
    first = tracking.fingerprint(files, 1)
    info = json.loads((tmp_path / "c/a.json").read_text())
    (tmp_path / "c/a.json").write_text(json.dumps({**info, "timing": {"seconds_per_element": time.time()}}))
    with np.load(tmp_path / "c/a.npz") as data:
        arrays = {key: data[key] for key in data.files}
    time.sleep(1.1)  # another zip timestamp, other compression: other bytes, same content
    np.savez_compressed(tmp_path / "c/a.npz", **arrays)
    assert tracking.fingerprint(files, 1) == first
    np.savez(tmp_path / "c/a.npz", **{**arrays, "loss": arrays["loss"] + 1})
    assert tracking.fingerprint(files, 1) != first


def test_a_wall_clock_claim_is_fingerprinted_by_its_rule_and_cells_not_its_timings(tmp_path):
    """Every run of a machine-dependent claim measures other times: re-timed cells and estimates keep
    its fingerprint (the store keeps the first logging), a changed rule or label does not."""
    write_claim(tmp_path / "c", "c")
    verdict_path = tmp_path / "c/verdict.json"
    verdict = {**json.loads(verdict_path.read_text()), "machines": [{"cpu": "one"}]}
    verdict_path.write_text(json.dumps(verdict))
    files = claim_files(tmp_path / "c")
    first = tracking.fingerprint(files, 1)
    np.savez(tmp_path / "c/a.npz", loss=np.full((2, 3), 7.0), diverged=np.zeros(2, bool))
    verdict_path.write_text(json.dumps({**verdict, "estimate": 3.0, "machines": [{"cpu": "another"}]}))
    assert tracking.fingerprint(files, 1) == first
    verdict_path.write_text(json.dumps({**verdict, "decision": {**verdict["decision"], "threshold": 2.0}}))
    assert tracking.fingerprint(files, 1) != first
    verdict_path.write_text(json.dumps({**verdict, "verdict": "refuted"}))
    assert tracking.fingerprint(files, 1) != first


def test_names_and_placeholders():
    assert tracking.child_name({"activation": "tanh", "lr": "0.5"}, 0, "cell") == "tanh lr=0.5 s0"
    assert tracking.child_name({}, 2, "cell") == "cell s2"
    assert tracking.placeholder(np.array([-1])) and tracking.placeholder(np.full(3, np.nan))
    assert not tracking.placeholder(np.array([np.nan, 0.5])) and not tracking.placeholder(np.array([-1, 2]))


def owners_runs(uri: str, claim: str, view=ViewType.ACTIVE_ONLY) -> dict[str, list]:
    """Owner id -> that owner's runs of the claim."""
    found: dict[str, list] = {}
    for run in active_runs(uri, [claim], view)[claim]:
        found.setdefault(run.data.tags.get("actlab.owner"), []).append(run)
    return found


def test_two_results_directories_on_one_store_keep_their_own_runs(tmp_path):
    """Other settings in another results directory never replace a workflow's runs; its own are superseded."""
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    for copy in ("a", "b"):
        write_claim(tmp_path / copy / "c", "c", n_seeds=3)
    a, b = claim_files(tmp_path / "a/c"), claim_files(tmp_path / "b/c")
    first_a = tracking.track_claims(uri, [a], seeds_per_cell=1, results=tmp_path / "a")
    first_b = tracking.track_claims(uri, [b], seeds_per_cell=2, results=tmp_path / "b")
    assert tracking.track_claims(uri, [a], seeds_per_cell=1, results=tmp_path / "a") == first_a
    assert tracking.track_claims(uri, [b], seeds_per_cell=2, results=tmp_path / "b") == first_b
    owners = owners_runs(uri, "c")
    assert sorted(len(runs) for runs in owners.values()) == [1 + 2 * 1, 1 + 2 * 2]

    np.savez(tmp_path / "a/c/a.npz", loss=np.full((3, 3), 0.5), diverged=np.zeros(3, bool))
    second_a = tracking.track_claims(uri, [a], seeds_per_cell=1, results=tmp_path / "a")
    assert second_a["c"]["parent_run_id"] != first_a["c"]["parent_run_id"]
    superseded = active_runs(uri, ["c"], ViewType.DELETED_ONLY)["c"]
    assert len(superseded) == 3
    assert {r.data.tags["actlab.superseded_by"] for r in superseded} == {second_a["c"]["parent_run_id"]}
    assert tracking.track_claims(uri, [b], seeds_per_cell=2, results=tmp_path / "b") == first_b
    assert sorted(len(runs) for runs in owners_runs(uri, "c").values()) == [3, 5]


def test_what_the_ui_shows(tmp_path):
    write_claim(tmp_path / "c", "c")
    files = claim_files(tmp_path / "c")
    (tmp_path / "data.npz").write_bytes(b"data set bytes")
    (tmp_path / "a.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t1.0\n")
    files.data = {"a": {"toy": tmp_path / "data.npz"}}
    files.benchmarks = {"a": tmp_path / "a.tsv"}
    files.report = "file:///report/index.html#c"
    np.savez(tmp_path / "c/b.npz", loss=np.full((2, 3), np.nan), diverged_epoch=np.full(2, -1))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record = tracking.track_claims(uri, [files])["c"]
    client = MlflowClient(uri)
    parent = client.get_run(record["parent_run_id"])
    assert parent.info.run_name == "c: supported" and parent.data.tags["report"] == files.report
    assert parent.data.tags["actlab.run"] == "claim"
    experiment = client.get_experiment(record["experiment_id"])
    assert experiment.tags["verdict"] == "supported" and experiment.tags["ci95"] == "[0.0, 0.2]"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    child = client.get_run(record["runs"]["a"]["0"])
    assert child.info.run_name == "x=a s0"
    assert child.info.end_time - child.info.start_time == 12_500
    assert child.info.end_time == int((tmp_path / "c/a.npz").stat().st_mtime * 1000)
    (dataset,) = child.inputs.dataset_inputs
    assert dataset.dataset.name == "toy"
    assert dataset.dataset.digest == hashlib.sha256(b"data set bytes").hexdigest()[:16]
    assert {a.path for a in client.list_artifacts(child.info.run_id, "cell")} == {"cell/a.npz", "cell/a.json"}
    placeholders = client.get_run(record["runs"]["b"]["0"])
    assert placeholders.info.run_name == "x=b s0" and placeholders.data.metrics == {}
    verdicts = mlflow_search_verdicts(uri)
    assert verdicts == [("c", "supported", 0.1)]


def mlflow_search_verdicts(uri: str) -> list[tuple]:
    """The README's search: every claim's verdict side by side."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    table = mlflow.search_runs(search_all_experiments=True, filter_string="tags.actlab.run = 'claim'")
    return [tuple(row) for row in table[["tags.claim", "tags.verdict", "metrics.estimate"]].itertuples(index=False)]


def test_a_direct_database_uri_on_a_server_store_says_to_use_the_server(tmp_path):
    write_claim(tmp_path / "c", "c")
    db = f"sqlite:///{tmp_path / 'server.db'}"
    client = MlflowClient(db)
    client.create_experiment("c", artifact_location="mlflow-artifacts:/c")
    with pytest.raises(tracking.TrackingUnavailable, match="server's URL"):
        tracking.track_claims(db, [claim_files(tmp_path / "c")])


@pytest.mark.e2e
@pytest.mark.parametrize("mlflow_server", server_stores()[:1], indirect=True)
def test_a_server_that_dies_mid_logging_gives_one_message(tmp_path, mlflow_server, monkeypatch, request):
    monkeypatch.setattr(log, "HTTP_CLAIMS", 1)  # one claim after the other: which one dies is known
    claims = ["claim-a", "claim-b"]
    for claim in claims:
        write_claim(tmp_path / claim, claim, n_seeds=3)
    files = [claim_files(tmp_path / claim) for claim in claims]
    created = itertools.count(1)
    create_run = MlflowClient.create_run

    def create_run_then_kill_server(self, *args, **kwargs):
        run = create_run(self, *args, **kwargs)
        if next(created) == 1 + 2 * 3 + 2:  # claim-a complete, claim-b's parent and first child created
            server = request.node.mlflow_server_process
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        return run

    monkeypatch.setattr(MlflowClient, "create_run", create_run_then_kill_server)
    start = time.monotonic()
    with pytest.raises(tracking.TrackingUnavailable) as failure:
        tracking.track_claims(mlflow_server, files, seeds_per_cell=3)
    message = str(failure.value)
    assert "1 of 2 claims were logged completely (claim-a)" in message and "not logged: claim-b" in message
    assert "run snakemake again" in message and "Traceback" not in message
    assert time.monotonic() - start < 120


@pytest.mark.e2e
@pytest.mark.parametrize("mlflow_server", server_stores()[:1], indirect=True)
def test_claims_logged_side_by_side_report_exactly_what_a_dead_server_kept(tmp_path, mlflow_server, request):
    """Four claims over HTTP at once, the server killed half-way: the message matches the store."""
    claims = [f"claim-{i}" for i in range(4)]
    for claim in claims:
        write_claim(tmp_path / claim, claim, n_seeds=4)
    files = [claim_files(tmp_path / claim) for claim in claims]
    done = []
    track = log._track

    def track_then_die(*args):
        record = track(*args)
        done.append(record["experiment_name"])
        if len(done) == 2:  # two claims complete, two others (probably) half-way
            server = request.node.mlflow_server_process
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(log, "_track", track_then_die)
        with pytest.raises(tracking.TrackingUnavailable) as failure:
            tracking.track_claims(mlflow_server, files, seeds_per_cell=4)
    message = str(failure.value)
    # Usually two claims are complete when the server dies. On a loaded machine the server may
    # fail every claim's requests before that (the message then says nothing was logged): the
    # message must match the store either way.
    if "nothing was logged" in message:
        logged = []
    else:
        logged = message.split("logged completely (")[1].split(")")[0].split(", ")
    not_logged = message.split("not logged: ")[1].split(".")[0].split(", ")
    assert sorted(logged + not_logged) == claims and sorted(logged) == sorted(done), message
    store = MlflowClient(f"sqlite:///{request.node.mlflow_server_db}")  # what the dead server had written
    for claim in logged:
        runs = store.search_runs([store.get_experiment_by_name(claim).experiment_id], f"tags.claim = '{claim}'")
        assert len(runs) == 1 + 2 * 4 and {run.info.status for run in runs} == {"FINISHED"}


# ---------------------------------------------------------------------------------------------
# The workflow


@pytest.mark.e2e
def test_quick_run_on_8_cores_logs_each_claim_once(tracked_run):
    assert sqlite_healthy(tracked_run.workdir / QUICK_STORE)
    assert sorted(active_runs(tracked_run.uri)) == sorted(tracked_run.claims)
    check_layout(tracked_run.uri, tracked_run.workdir, tracked_run.claims)
    parent_id = tracked_run.record(tracked_run.small[0])["parent_run_id"]
    artifacts = {a.path for a in MlflowClient(tracked_run.uri).list_artifacts(parent_id)}
    assert {"verdict.json", "figure.png", "verdict.png"} <= artifacts


@pytest.mark.e2e
def test_rerun_and_forced_tracking_change_nothing(tracked_copy):
    again = tracked_copy.snakemake("--cores", "8", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    before = {claim: tracked_copy.record(claim) for claim in tracked_copy.claims}
    forced = tracked_copy.snakemake("--cores", "8", "--forcerun", "track_claims")
    assert forced.returncode == 0, forced.stderr[-4000:]
    assert job_counts(tracked_copy.snakemake("--cores", "8", "-n")) == {}
    check_layout(tracked_copy.uri, tracked_copy.workdir, tracked_copy.claims)
    assert {claim: tracked_copy.record(claim) for claim in tracked_copy.claims} == before
    deleted = active_runs(tracked_copy.uri, list(tracked_copy.claims), ViewType.DELETED_ONLY)
    assert all(not runs for runs in deleted.values())


@pytest.mark.e2e
def test_changed_settings_replace_stale_runs(tracked_copy):
    config = tracking_config(tracked_copy.workdir, seeds_per_cell=2)
    assert job_counts(tracked_copy.snakemake("--cores", "2", "-n", configs=[config])) == {"track_claims": 1, "all": 1}
    result = tracked_copy.snakemake("--cores", "2", configs=[config])
    assert result.returncode == 0, result.stderr[-4000:]
    check_layout(tracked_copy.uri, tracked_copy.workdir, tracked_copy.children(cap=2))
    deleted = active_runs(tracked_copy.uri, list(tracked_copy.claims), ViewType.DELETED_ONLY)
    assert {claim: len(runs) for claim, runs in deleted.items()} == {c: 1 + n for c, n in tracked_copy.claims.items()}


@pytest.mark.e2e
def test_killed_tracking_job_is_cleaned_up_by_the_next_run(tracked_copy):
    config = tracking_config(tracked_copy.workdir, seeds_per_cell=2)  # not the default: every claim is logged again
    killed = tracked_copy.snakemake("--cores", "2", configs=[config], env=kill_tracking_after(3))
    assert killed.returncode != 0
    left = [run for runs in active_runs(tracked_copy.uri, list(tracked_copy.claims)).values() for run in runs]
    assert "RUNNING" in {r.info.status for r in left}, "the job was not killed mid-logging"
    assert not any((tracked_copy.workdir / path).exists() for path in mlflow_json(tracked_copy.claims))
    rerun = tracked_copy.snakemake("--cores", "2", configs=[config])
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    check_layout(tracked_copy.uri, tracked_copy.workdir, tracked_copy.children(cap=2))
    every = active_runs(tracked_copy.uri, list(tracked_copy.claims), ViewType.ALL)
    assert "RUNNING" not in {r.info.status for runs in every.values() for r in runs}


@pytest.mark.e2e
@pytest.mark.parametrize("mlflow_server", server_stores(), indirect=True)
def test_logging_to_an_mlflow_server(tracked_copy, mlflow_server):
    """Log a claim again, to a server on loopback: only tracking runs, the layout is the same."""
    claim = tracked_copy.small[-1]
    one = Tracked(tracked_copy.workdir, {claim: tracked_copy.claims[claim]})
    args = {"targets": mlflow_json([claim]), "configs": [tracking_config(one.workdir, uri=mlflow_server)]}
    assert job_counts(one.snakemake("--cores", "2", "-n", **args)) == {"track_claims": 1}
    result = one.snakemake("--cores", "2", **args)
    assert result.returncode == 0, result.stderr[-4000:]
    check_layout(mlflow_server, one.workdir, one.claims)
    record = one.record(claim)
    assert record["tracking_uri"] == mlflow_server
    artifacts = {a.path for a in MlflowClient(mlflow_server).list_artifacts(record["parent_run_id"])}
    assert {"verdict.json", "figure.png", "verdict.png"} <= artifacts


@pytest.mark.e2e
def test_unreachable_server_keeps_results_and_only_tracking_reruns(tracked_copy):
    before = result_hashes(tracked_copy.workdir)
    records = {claim: tracked_copy.record(claim) for claim in tracked_copy.claims}
    config = tracking_config(tracked_copy.workdir, uri=f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    failed = tracked_copy.snakemake("--cores", "2", configs=[config])
    assert failed.returncode != 0
    assert time.monotonic() - start < 120
    assert "is unreachable" in failed.stderr and "nothing was logged" in failed.stderr
    assert result_hashes(tracked_copy.workdir) == before
    assert not any((tracked_copy.workdir / path).exists() for path in mlflow_json(tracked_copy.claims))
    (tracked_copy.workdir / config).unlink()  # back to the quick profile's own store
    assert job_counts(tracked_copy.snakemake("--cores", "2", "-n")) == {"track_claims": 1, "all": 1}
    fixed = tracked_copy.snakemake("--cores", "2")
    assert fixed.returncode == 0, fixed.stderr[-4000:]
    assert result_hashes(tracked_copy.workdir) == before
    check_layout(tracked_copy.uri, tracked_copy.workdir, tracked_copy.claims)
    assert {claim: tracked_copy.record(claim) for claim in tracked_copy.claims} == records


# ---------------------------------------------------------------------------------------------
# Ownership and secrets in the workflow


@pytest.mark.e2e
def test_two_working_copies_with_different_settings_keep_both_sets(tracked_run, tracked_copy, tmp_path):
    """Another working copy logging other settings to this copy's store leaves this copy's runs alone."""
    claims = {claim: tracked_copy.claims[claim] for claim in tracked_copy.small}
    mine = Tracked(tracked_copy.workdir, claims)
    other = Tracked(Path(shutil.copytree(tracked_run.workdir, tmp_path / "other", symlinks=True)), claims)
    (other.workdir / "results-quick/.mlflow-owner").unlink()  # its own working copy, not a copy of this one
    before = {claim: mine.record(claim) for claim in claims}
    config = tracking_config(other.workdir, uri=mine.uri, seeds_per_cell=2)
    logged = other.snakemake("--cores", "2", targets=mlflow_json(list(claims)), configs=[config])
    assert logged.returncode == 0, logged.stderr[-4000:]
    forced = mine.snakemake("--cores", "2", "--forcerun", "track_claims", targets=mlflow_json(list(claims)))
    assert forced.returncode == 0, forced.stderr[-4000:]
    assert {claim: mine.record(claim) for claim in claims} == before
    for claim, n in claims.items():
        owners = owners_runs(mine.uri, claim)
        assert sorted(len(runs) for runs in owners.values()) == sorted([1 + n, 1 + other.children(cap=2)[claim]])
        parents = {r.info.run_id for runs in owners.values() for r in runs if "mlflow.parentRunId" not in r.data.tags}
        assert {before[claim]["parent_run_id"], other.record(claim)["parent_run_id"]} == parents
    assert not any(active_runs(mine.uri, list(claims), ViewType.DELETED_ONLY).values())


def assert_no_secret(workdir: Path, uri: str, secret: str) -> None:
    """``secret`` appears in no file Snakemake or the workflow wrote, nor in the store's tags and params."""
    for folder in (".snakemake", "logs", "results-quick"):
        for path in (workdir / folder).rglob("*"):
            if path.is_file() and path.suffix != ".db":
                assert secret.encode() not in path.read_bytes(), path
    for runs in active_runs(uri).values():
        for run in runs:
            assert secret not in json.dumps([run.data.tags, run.data.params]), run.info.run_id


def log_with_secret_uri(tracked: Tracked, uri: str) -> Tracked:
    """Log one claim of ``tracked`` to ``uri`` (given in a config file); the tracked claim."""
    claim = tracked.small[0]
    one = Tracked(tracked.workdir, {claim: tracked.claims[claim]})
    result = one.snakemake(
        "--cores", "2", targets=mlflow_json([claim]), configs=[tracking_config(one.workdir, uri=uri)]
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert one.record(claim)["tracking_uri"] == tracking.redact(uri)
    return one


@pytest.mark.e2e
@pytest.mark.parametrize("mlflow_server", server_stores()[:1], indirect=True)
def test_no_password_in_snakemake_params_logs_or_tags(tracked_copy, mlflow_server):
    secret = "s3cret-pw-4711"
    uri = mlflow_server.replace("http://", f"http://actlab:{secret}@")
    one = log_with_secret_uri(tracked_copy, uri)
    check_layout(mlflow_server, one.workdir, one.claims)
    assert_no_secret(one.workdir, mlflow_server, secret)


@pytest.mark.e2e
@pytest.mark.skipif(
    not os.environ.get("ACTLAB_TEST_POSTGRES_URI"), reason="no PostgreSQL: set ACTLAB_TEST_POSTGRES_URI"
)
def test_no_password_with_a_direct_postgresql_uri(tracked_copy):
    uri = os.environ["ACTLAB_TEST_POSTGRES_URI"]
    engine = sqlalchemy.create_engine(uri)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    one = log_with_secret_uri(tracked_copy, uri)
    check_layout(uri, one.workdir, one.claims)
    parts = urllib.parse.urlsplit(uri)
    assert_no_secret(one.workdir, uri, f"{parts.username}:{parts.password}@")
