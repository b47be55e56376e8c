"""Where MLflow runs go and who owns them, without importing MLflow (the workflow reads it at parse time).

* :func:`resolve_uri`: the tracking URI from the config, the environment or the default.
* :func:`redact`: a URI with its password masked; the only form that reaches Snakemake's params,
  logs, metadata, ``mlflow.json`` and MLflow tags.
* :class:`Owner`: the identity of a results directory, which decides which runs a workflow may
  replace (:mod:`actlab.tracking`).
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

#: The store used when neither the config key ``tracking.uri`` nor the environment names one.
DEFAULT_URI = "sqlite:///mlflow.db"

#: File in a results directory holding its owner id (a random UUID, written on first logging).
OWNER_FILE = ".mlflow-owner"


def resolve_uri(configured: str | None) -> str:
    """The tracking URI: ``configured`` (config key ``tracking.uri``), else ``$MLFLOW_TRACKING_URI``, else default."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***``."""
    parts = urllib.parse.urlsplit(uri)
    if not parts.password:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def without_credentials(uri: str) -> str:
    """``uri`` without its ``user:password@`` part (for a plain HTTP health check)."""
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


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
    digest = hashlib.sha256(redact(uri).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"actlab-mlflow-{digest}.lock"


@dataclass(frozen=True)
class Owner:
    """The results directory a workflow logs from: the runs it may replace are those it owns.

    Attributes
    ----------
    id : str
        A random UUID kept in the directory's :data:`OWNER_FILE`: a copy of the directory
        (``cp -r``, with its store) is the same owner, another working copy is not.
    location : str
        ``host:/absolute/path`` of the directory: after the directory was deleted and run again
        (a new id), its runs are still recognized as its own.
    """

    id: str
    location: str

    @classmethod
    def of(cls, results: str | Path) -> Owner:
        """The owner of ``results``, whose id file is created when missing."""
        folder = Path(results).resolve()
        path = folder / OWNER_FILE
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(uuid.uuid4().hex + "\n")
        return cls(path.read_text().strip(), f"{socket.gethostname()}:{folder}")

    def owns(self, tags: dict[str, str]) -> bool:
        """Whether a run with these tags was logged from this results directory."""
        return tags.get(OWNER_TAG) == self.id or tags.get(LOCATION_TAG) == self.location


#: File system types that several machines share over a network. SQLite's locks, and the
#: shared-memory index of its WAL journal, are not safe there (https://www.sqlite.org/wal.html,
#: "WAL does not work over a network filesystem"; https://www.sqlite.org/faq.html#q5).
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs", "fuse.glusterfs",
     "fuse.sshfs", "fuse.s3fs", "9p", "afs", "orangefs", "pvfs2", "panfs", "wekafs"}
)  # fmt: skip


def filesystem_type(path: str | Path, mounts: str | None = None) -> str | None:
    """The type of the file system holding ``path``: that of the longest mount point above it.

    Parameters
    ----------
    path : str or Path
        A file or folder, which need not exist yet.
    mounts : str, optional
        The mount table in ``/proc/mounts`` format (device, mount point, type, ...); default:
        this machine's. ``None`` is returned where there is none (not Linux).
    """
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    target = Path(os.path.abspath(path))
    best, kind = None, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(fields[1].replace("\\040", " "))
        if (target == point or point in target.parents) and (best is None or len(point.parts) > len(best.parts)):
            best, kind = point, fields[2]
    return kind


def check_cluster_store(uri: str, mounts: str | None = None) -> None:
    """Refuse an SQLite store on a network file system, for runs whose jobs go to a cluster.

    Raises
    ------
    ValueError
        ``uri`` is an SQLite file on one of :data:`NETWORK_FILESYSTEMS`; the message says why and
        what to use instead (an MLflow server).
    """
    db = sqlite_path(uri)
    kind = None if db is None else filesystem_type(db, mounts)
    if kind in NETWORK_FILESYSTEMS:
        raise ValueError(
            f"MLflow tracking store {redact(uri)} is an SQLite file on a network file system "
            f"({kind}: {Path(os.path.abspath(db)).parent}). With jobs on a cluster that folder is "
            "shared between machines, and SQLite cannot lock a database there safely (its WAL journal "
            "needs one machine). Start an MLflow server with its database on a local disk "
            "(mlflow server --backend-store-uri sqlite:////local/disk/mlflow.db --host 0.0.0.0) and "
            "set tracking.uri (or MLFLOW_TRACKING_URI) to its URL, e.g. http://host:5000; or turn "
            "tracking off: --configfile config/no-tracking.yaml."
        )


#: Run tags naming the :class:`Owner` of a run.
OWNER_TAG = "actlab.owner"
LOCATION_TAG = "actlab.results_dir"
