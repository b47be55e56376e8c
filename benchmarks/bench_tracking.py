"""What MLflow tracking costs the workflow: the pipeline with tracking against the same without.

Run ``python benchmarks/bench_tracking.py`` (``--help`` for options). Every round runs the whole
workflow twice from scratch, each time in a fresh copy of the workflow in a temporary folder: once
as configured (tracking on, into a fresh store) and once with ``config/no-tracking.yaml``. The
order alternates between rounds so a busy machine slows both sides alike; medians are reported.
One JSON line goes to stdout, progress to stderr. The exit status is 1 when a sanity check fails
(a run failed, or tracking did not record every claim), whatever the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "envs", "report")
TARGET = 1.05  # tracking may cost at most 5% of the pipeline's time


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config/quick.yaml", help="profile to run (default: quick)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (with, without) runs (default 3)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (default 2)")
    parser.add_argument("--only", default="", help="comma-separated claim ids (default: every claim)")
    return parser.parse_args(argv)


def workflow_copy(root: Path) -> Path:
    """A fresh copy of the workflow, as a user's checkout would be before the first run."""
    root.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    return root


def run_pipeline(workdir: Path, args: argparse.Namespace, tracked: bool) -> float:
    """Wall-clock seconds of one complete ``snakemake`` invocation."""
    command = ["snakemake", "--cores", str(args.cores)]
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
        "cores": args.cores,
        "load_max": round(max(loads), 2),
        "ok": not problems,
        "target": f"ratio <= {TARGET}",
        "met": ours / peer <= TARGET,
    }
    if problems:
        row["problems"] = problems
    print(json.dumps(row), flush=True)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
