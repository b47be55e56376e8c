"""Where MLflow runs go, without importing MLflow: the workflow reads this when it parses the Snakefile.

* :func:`resolve_uri`: the tracking URI from the config, the environment or the default.
* :func:`redact`: a URI with its password masked; the only form that reaches Snakemake's params,
  logs, metadata, ``mlflow.json`` and MLflow tags.
* :func:`check_cluster_store`: an SQLite store on a network file system is refused for cluster runs.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

#: The store used when neither the config key ``tracking.uri`` nor the environment names one.
DEFAULT_URI = "sqlite:///mlflow.db"


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


def is_http(uri: str) -> bool:
    """Whether ``uri`` is an MLflow server's address."""
    return uri.startswith(("http://", "https://"))


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
