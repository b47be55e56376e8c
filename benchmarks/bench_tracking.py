"""What MLflow tracking costs the workflow, in two cases.

Run ``python benchmarks/bench_tracking.py`` (``--help`` for options); one JSON line per case goes
to stdout, progress to stderr; medians over rounds whose order alternates, so a busy machine slows
both sides alike. The exit status is 1 when a sanity check fails (a run failed, or tracking did
not record every claim), whatever the timings.

* ``overhead`` (default): every round runs the whole workflow twice from scratch, each time in a
  fresh copy of the workflow in a temporary folder: once as configured (tracking on, into a fresh
  store) and once with ``config/no-tracking.yaml``.
* ``server``: the workflow runs once without tracking; then every round logs its judged claims
  (``snakemake --forcerun track_claims``) into a fresh local SQLite file and into a fresh
  ``mlflow server`` on loopback (backed by its own SQLite file). Both stores are created before
  the timing starts, so the job's time (its benchmark file) is the logging alone, per run logged.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "envs", "report")
TARGET = 1.05  # tracking may cost at most 5% of the pipeline's time
SERVER_TARGET = 2.0  # logging to a server may cost at most twice as much per run as to SQLite


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config/quick.yaml", help="profile to run (default: quick)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (with, without) runs (default 3)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--only", default="", help="comma-separated claim ids (default: every claim)")
    parser.add_argument("--case", choices=("overhead", "server"), default="overhead", help="what to measure")
    parser.add_argument("--server-workers", type=int, default=4, help="mlflow server --workers (default 4)")
    return parser.parse_args(argv)


def workflow_copy(root: Path) -> Path:
    """A fresh copy of the workflow, as a user's checkout would be before the first run."""
    root.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    return root


def run_pipeline(workdir: Path, args: argparse.Namespace, tracked: bool, *extra: str) -> float:
    """Wall-clock seconds of one complete ``snakemake`` invocation (``extra``: more arguments)."""
    command = ["snakemake", "--cores", str(args.cores), *extra]
    if args.only:
        command += ["--config", f"only=[{args.only}]"]
    command += ["--configfile", args.configfile] + ([] if tracked else ["config/no-tracking.yaml"])
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"snakemake failed in {workdir}:\n{done.stderr[-3000:]}")
    return seconds


def tracking_record(workdir: Path, results: str) -> tuple[int, int, int, float]:
    """Judged claims, claims with an mlflow.json, runs they list, and the tracking job's wall time."""
    claims = workdir / results / "claims"
    records = [json.loads(p.read_text()) for p in claims.glob("*/mlflow.json")]
    benchmark = (workdir / results / "benchmarks/track_claims.tsv").read_text()
    n_judged = len(list(claims.glob("*/verdict.json")))
    return n_judged, len(records), sum(r["n_runs"] for r in records), float(benchmark.splitlines()[1].split("\t")[0])


def main(argv=None) -> int:
    args = parse_args(argv)
    config = yaml.safe_load((REPO / args.configfile).read_text())
    profile, results = config.get("profile", "full"), config.get("results", "results")
    row = (overhead if args.case == "overhead" else server_cost)(args, profile, results)
    print(json.dumps(row), flush=True)
    return 0 if row["ok"] else 1


def overhead(args: argparse.Namespace, profile: str, results: str) -> dict:
    """The ``overhead`` case: the workflow with tracking against the workflow without."""
    times = {True: [], False: []}
    track_seconds, problems, loads = [], [], []
    n_claims = n_runs = 0
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        for round_ in range(args.rounds):
            for tracked in (True, False) if round_ % 2 == 0 else (False, True):
                workdir = workflow_copy(Path(tmp) / f"r{round_}-{'with' if tracked else 'without'}")
                seconds = run_pipeline(workdir, args, tracked)
                times[tracked].append(seconds)
                loads.append(os.getloadavg()[0])
                log(f"round {round_}: {'with' if tracked else 'without'} tracking {seconds:.1f} s")
                if tracked:
                    n_judged, n_claims, n_runs, jobs = tracking_record(workdir, results)
                    track_seconds.append(jobs)
                    if n_claims == 0 or n_claims != n_judged:
                        problems.append(f"tracking recorded {n_claims} of {n_judged} judged claims")
                shutil.rmtree(workdir)
    ours, peer = statistics.median(times[True]), statistics.median(times[False])
    row = {
        "case": f"tracking-overhead-{profile}",
        "ours_s": round(ours, 2),
        "peer": "no-tracking",
        "peer_s": round(peer, 2),
        "ratio": round(ours / peer, 3),
        "repeats": args.rounds,
        "ours_min_s": round(min(times[True]), 2),
        "peer_min_s": round(min(times[False]), 2),
        "track_job_s": round(statistics.median(track_seconds), 2),
        "claims": n_claims,
        "runs_logged": n_runs,
    }
    return row | outcome(args, loads, problems, ours / peer, TARGET)


def server_cost(args: argparse.Namespace, profile: str, results: str) -> dict:
    """The ``server`` case: seconds per logged run, a fresh ``mlflow server`` against a fresh SQLite file."""
    seconds = {"server": [], "sqlite": []}
    problems, loads, n_runs = [], [], 0
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp:
        workdir = workflow_copy(Path(tmp) / "workflow")
        log(f"training and judging once, without tracking: {run_pipeline(workdir, args, False):.1f} s")
        for round_ in range(args.rounds):
            for store in ("server", "sqlite") if round_ % 2 == 0 else ("sqlite", "server"):
                folder = Path(tmp) / f"r{round_}-{store}"
                folder.mkdir()
                with fresh_store(store, folder, args.server_workers) as uri:
                    (workdir / "store.yaml").write_text(yaml.safe_dump({"tracking": {"uri": uri}}))
                    run_pipeline(workdir, args, True, "--forcerun", "track_claims", "--configfile", "store.yaml")
                n_judged, n_claims, n_runs, job = tracking_record(workdir, results)
                if n_claims == 0 or n_claims != n_judged:
                    problems.append(f"{store}: tracking recorded {n_claims} of {n_judged} judged claims")
                seconds[store].append(job / n_runs)
                loads.append(os.getloadavg()[0])
                log(f"round {round_}: {store} {job:.1f} s for {n_runs} runs ({1000 * job / n_runs:.0f} ms/run)")
    ours, peer = statistics.median(seconds["server"]), statistics.median(seconds["sqlite"])
    row = {
        "case": f"tracking-server-vs-sqlite-{profile}",
        "ours_s": round(ours, 4),
        "peer": "sqlite",
        "peer_s": round(peer, 4),
        "ratio": round(ours / peer, 3),
        "unit": "seconds per logged run",
        "repeats": args.rounds,
        "runs_logged": n_runs,
        "server_workers": args.server_workers,
    }
    return row | outcome(args, loads, problems, ours / peer, SERVER_TARGET)


def outcome(args: argparse.Namespace, loads: list[float], problems: list[str], ratio: float, target: float) -> dict:
    """The fields every case ends its row with: the machine's load, the sanity checks, the target."""
    row = {"cores": args.cores, "load_max": round(max(loads), 2), "ok": not problems}
    row |= {"target": f"ratio <= {target}", "met": ratio <= target}
    return row | ({"problems": problems} if problems else {})


@contextlib.contextmanager
def fresh_store(kind: str, folder: Path, workers: int) -> Iterator[str]:
    """A new, already created store: an SQLite file, or ``mlflow server`` on a free loopback port."""
    db = f"sqlite:///{folder / 'mlflow.db'}"
    subprocess.run([sys.executable, "-c", f"import mlflow; mlflow.MlflowClient({db!r}).search_experiments()"],
                   check=True, capture_output=True)  # fmt: skip
    if kind == "sqlite":
        yield db
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["mlflow", "server", "--backend-store-uri", db, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--artifacts-destination", str(folder / "artifacts")]  # fmt: skip
    with open(folder / "server.log", "w") as server_log:
        server = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow server did not start:\n{(folder / 'server.log').read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
