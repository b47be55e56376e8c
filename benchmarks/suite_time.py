"""Where a workflow run's wall time went: per claim, per rule, and Snakemake's own share.

Run ``python benchmarks/suite_time.py`` in a workflow directory after ``snakemake --cores all``
(``--help`` for options). It reads two things the run left behind:

* the rules' benchmark files, ``{results}/benchmarks/{rule}/...tsv`` (and ``{rule}.tsv``), whose
  ``s`` column is the job's own wall time as Snakemake measured it around the job;
* the run's Snakemake log (the newest ``.snakemake/log/*.snakemake.log`` by default), for the
  run's wall time, the cores it was given, and each job's rule, wildcards, threads, start and end
  (to the second). A job without a benchmark file (``mark_results``, and ``judge_claim`` or
  ``render_report`` in runs made before they had one) is timed from the log.

The run's capacity is ``cores x wall``. Each job uses ``threads x seconds`` of it. What is left is
Snakemake's own share: building the DAG, checking and writing metadata and starting each job
between two jobs, plus the cores that sat idle because no job was ready (at the start, and at the
end while the last jobs ran). The log must be of a run that did every job from scratch for the
shares to describe the whole suite; jobs the log does not list (already up to date) are ignored.

Output: a Markdown report on stdout (the per-claim table is sorted by training time), or one JSON
object with ``--json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from actlab.claims.report import read_benchmark

TIMESTAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
RULE = re.compile(r"^(?:local)?rule (\w+):$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")
FIELD = re.compile(r"^    (jobid|wildcards|threads): (.*)$")
CORES = re.compile(r"^Provided cores: (\d+)$")


@dataclass
class Job:
    """One job of the run, as the log and (when there is one) its benchmark file describe it."""

    rule: str
    jobid: int
    wildcards: dict[str, str] = field(default_factory=dict)
    threads: int = 1
    start: datetime.datetime | None = None
    end: datetime.datetime | None = None
    seconds: float | None = None  # from the benchmark file

    @property
    def duration(self) -> float:
        """The benchmark's seconds, else the log's end minus start (whole seconds)."""
        if self.seconds is not None:
            return self.seconds
        if self.start is None or self.end is None:
            return 0.0
        return (self.end - self.start).total_seconds()


def parse_log(path: Path) -> tuple[list[Job], int | None]:
    """Every job that started in the Snakemake log, and the cores the run was given."""
    jobs: dict[int, Job] = {}
    cores = None
    stamp = None
    current: Job | None = None
    for line in path.read_text().splitlines():
        if match := CORES.match(line):
            cores = int(match.group(1))
        elif match := TIMESTAMP.match(line):
            stamp = datetime.datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            current = None
        elif match := RULE.match(line):
            current = Job(rule=match.group(1), jobid=-1, start=stamp)
        elif match := FINISHED.match(line):
            job = jobs.get(int(match.group(1)))
            if job is not None:
                job.end = stamp
        elif current is not None and (match := FIELD.match(line)):
            key, value = match.groups()
            if key == "jobid":
                current.jobid = int(value)
                jobs[current.jobid] = current
            elif key == "threads":
                current.threads = int(value)
            else:
                current.wildcards = dict(item.split("=", 1) for item in value.split(", "))
    return list(jobs.values()), cores


def benchmark_path(results: Path, job: Job) -> Path:
    """Where the workflow's rules write a job's benchmark file (see ``rules/*.smk``)."""
    parts = [job.wildcards[k] for k in ("claim", "cell", "dataset") if k in job.wildcards]
    if not parts:
        return results / "benchmarks" / f"{job.rule}.tsv"
    return results / "benchmarks" / job.rule / Path(*parts[:-1]) / f"{parts[-1]}.tsv"


def summarize(results: Path, log: Path, cores: int | None = None) -> dict:
    """The run's wall time, its capacity and how the jobs and Snakemake shared it."""
    jobs, log_cores = parse_log(log)
    cores = cores or log_cores
    if not jobs or cores is None:
        raise SystemExit(f"{log}: no jobs or no 'Provided cores' line: is it a Snakemake run log?")
    for job in jobs:
        row = read_benchmark(benchmark_path(results, job))
        if row is not None:
            job.seconds = row["s"]
    starts = [j.start for j in jobs if j.start is not None]
    ends = [j.end for j in jobs if j.end is not None]
    wall = (max(ends) - min(starts)).total_seconds()
    capacity = cores * wall
    by_rule: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "core_seconds": 0.0, "from_log": 0})
    claims: dict[str, dict] = defaultdict(lambda: {"cells": 0, "train_s": 0.0, "slowest_cell_s": 0.0, "judge_s": 0.0})
    for job in jobs:
        entry = by_rule[job.rule]
        entry["jobs"] += 1
        entry["core_seconds"] += job.threads * job.duration
        entry["from_log"] += job.seconds is None
        claim = job.wildcards.get("claim")
        if claim and job.rule == "train_cell":
            claims[claim]["cells"] += 1
            claims[claim]["train_s"] += job.duration
            claims[claim]["slowest_cell_s"] = max(claims[claim]["slowest_cell_s"], job.duration)
        elif claim and job.rule == "judge_claim":
            claims[claim]["judge_s"] += job.duration
    busy = sum(r["core_seconds"] for r in by_rule.values())
    for entry in by_rule.values():
        entry["share"] = entry["core_seconds"] / capacity
    return {
        "log": str(log),
        "wall_s": wall,
        "cores": cores,
        "capacity_core_s": capacity,
        "rules": dict(sorted(by_rule.items(), key=lambda kv: -kv[1]["core_seconds"])),
        "snakemake_and_idle_core_s": capacity - busy,
        "snakemake_and_idle_share": (capacity - busy) / capacity,
        "claims": dict(sorted(claims.items(), key=lambda kv: -kv[1]["train_s"])),
    }


def markdown(summary: dict) -> str:
    """The summary as Markdown: the totals, the rules' shares, then one row per claim."""
    wall, cores = summary["wall_s"], summary["cores"]
    lines = [
        f"Wall time {wall / 60:.1f} min on {cores} cores ({summary['capacity_core_s']:.0f} core-seconds), "
        f"from `{summary['log']}`.",
        "",
        "| where the core-seconds went | jobs | core-seconds | share |",
        "|---|---|---|---|",
    ]
    for rule, entry in summary["rules"].items():
        note = f" ({entry['from_log']} timed from the log)" if entry["from_log"] else ""
        lines.append(f"| `{rule}`{note} | {entry['jobs']} | {entry['core_seconds']:.0f} | {entry['share']:.1%} |")
    lines += [
        f"| Snakemake's own work between jobs, and idle cores | | "
        f"{summary['snakemake_and_idle_core_s']:.0f} | {summary['snakemake_and_idle_share']:.1%} |",
        "",
        "| claim | cells | training (job-seconds) | share of training | slowest cell (s) | judging (s) |",
        "|---|---|---|---|---|---|",
    ]
    train_total = sum(c["train_s"] for c in summary["claims"].values()) or 1.0
    for claim, c in summary["claims"].items():
        lines.append(
            f"| {claim} | {c['cells']} | {c['train_s']:.0f} | {c['train_s'] / train_total:.1%} "
            f"| {c['slowest_cell_s']:.1f} | {c['judge_s']:.1f} |"
        )
    return "\n".join(lines)


def newest_log(directory: Path) -> Path:
    logs = sorted((directory / ".snakemake" / "log").glob("*.snakemake.log"))
    if not logs:
        raise SystemExit(f"no Snakemake log under {directory / '.snakemake' / 'log'}: pass --log")
    return logs[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="the run's results directory (default: results)")
    parser.add_argument("--log", type=Path, help="the run's Snakemake log (default: the newest under .snakemake/log)")
    parser.add_argument("--cores", type=int, help="cores the run was given (default: read from the log)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    args = parser.parse_args(argv)
    summary = summarize(Path(args.results), args.log or newest_log(Path.cwd()), args.cores)
    print(json.dumps(summary, indent=1) if args.json else markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
