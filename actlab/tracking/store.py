"""The tracking store: one writer at a time, SQLite tuned, client settings, and what a failing store says.

* :func:`store_lock`: an exclusive ``fcntl.flock`` on the store's lock file (:func:`lock_path`),
  held from opening the store (MLflow migrates a fresh database's schema then, which breaks when
  several processes do it at once) until the last run is finished.
* :func:`sqlite_tuning`, :func:`client_settings`: WAL journaling, quiet and fast-failing clients.
* :func:`check_reachable`, :func:`failure_message`, :class:`TrackingUnavailable`: a store that
  cannot be reached, or fails half-way, ends the job with one message saying what was logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import sqlite3
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import requests
import sqlalchemy
from mlflow.exceptions import MlflowException

from actlab.tracking.uri import is_http, redact, sqlite_path, without_credentials

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

#: Milliseconds an SQLite connection waits for another writer (``mlflow ui``, say) before failing.
SQLITE_BUSY_TIMEOUT_MS = 60_000

#: What a failing store raises: connection errors over HTTP, database errors, failed artifact copies.
STORE_ERRORS = (MlflowException, requests.exceptions.RequestException, sqlalchemy.exc.SQLAlchemyError, OSError)


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached or failed; the message says what was and was not logged."""


def lock_path(uri: str) -> Path:
    """The lock file of a store: ``<db>.lock`` next to an SQLite file, else one per URI in the temp dir."""
    db = sqlite_path(uri)
    if db is not None:
        return db.with_name(db.name + ".lock")
    digest = hashlib.sha256(redact(uri).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"actlab-mlflow-{digest}.lock"


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the store's lock file; the kernel drops it if the process dies."""
    path = lock_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def client_settings() -> Iterator[None]:
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
def sqlite_tuning() -> Iterator[None]:
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


def artifact_location(uri: str, claim: str) -> str | None:
    """Artifacts of an SQLite store go to ``mlartifacts/<claim>`` next to the database; others: the store's default."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent.resolve() / "mlartifacts" / claim).as_uri()


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
