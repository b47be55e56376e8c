"""benchmarks/suite_time.py on a real run: the session's quick-profile run, read as a user would."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def suite_time(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "suite_time.py"), "--results", "results-quick", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_job_of_a_run_is_accounted_for(shared_quick_run):
    result = suite_time(shared_quick_run, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    results = shared_quick_run / "results-quick"
    cells = Counter(path.parent.name for path in (results / "runs").glob("*/*.npz"))
    claims = sorted(path.parent.name for path in (results / "claims").glob("*/verdict.json"))

    assert summary["cores"] == 2
    assert {claim: row["cells"] for claim, row in summary["claims"].items() if row["cells"]} == dict(cells)
    assert sorted(summary["claims"]) == claims  # every claim was judged, so every claim has a row
    rules = summary["rules"]
    assert rules["train_cell"]["jobs"] == sum(cells.values())
    assert rules["judge_claim"]["jobs"] == len(claims)
    for rule in ("train_cell", "judge_claim", "make_dataset", "render_report", "track_claims"):
        assert rules[rule]["from_log"] == 0, f"{rule}: a job without its benchmark file"
    # Training time is the benchmark files' own seconds, and the shares add up to the capacity.
    seconds = 0.0
    for tsv in (results / "benchmarks" / "train_cell").glob("*/*.tsv"):
        seconds += float(list(csv.DictReader(tsv.open(), delimiter="\t"))[-1]["s"])
    assert sum(row["train_s"] for row in summary["claims"].values()) == pytest.approx(seconds)
    assert summary["capacity_core_s"] == pytest.approx(2 * summary["wall_s"])
    shares = sum(rule["share"] for rule in rules.values()) + summary["snakemake_and_idle_share"]
    assert shares == pytest.approx(1.0)
    assert 0 <= summary["snakemake_and_idle_share"] < 1


def test_markdown_names_every_claim_and_a_missing_log_is_an_error(shared_quick_run, tmp_path):
    result = suite_time(shared_quick_run)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Wall time ")
    for verdict in (shared_quick_run / "results-quick" / "claims").glob("*/verdict.json"):
        assert f"| {verdict.parent.name} |" in result.stdout
    empty = suite_time(tmp_path)  # no .snakemake/log here
    assert empty.returncode != 0
    assert "no Snakemake log" in empty.stderr
