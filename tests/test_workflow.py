"""End-to-end runs of the Snakemake workflow on the quick profile, in temporary directories."""

from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["snakemake", "--configfile", "config/quick.yaml", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
    )


def verdicts(workdir: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in sorted((workdir / "results-quick/claims").glob("*/verdict.json"))}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, copy_workflow) -> Path:
    """The quick profile run once with 2 cores; later tests inspect and re-run it."""
    workdir = copy_workflow(tmp_path_factory.mktemp("quick2"))
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_lint_and_dry_run():
    lint = subprocess.run(["snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "Congratulations" in lint.stdout + lint.stderr
    dry = subprocess.run(["snakemake", "-n", "--cores", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]


def test_snakefmt_clean():
    result = subprocess.run(
        ["snakefmt", "--check", "Snakefile", "rules"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_quick_run_writes_every_claim(quick_run):
    import json

    from actlab import stats
    from actlab.register import load_yaml

    claim_ids = [c["id"] for c in load_yaml(REPO / "config/claims.yaml")["claims"]]
    found = verdicts(quick_run)
    assert sorted(found) == sorted(claim_ids)
    for path in found.values():
        verdict = json.loads(path.read_text())
        for key in ("claim", "kind", "statement", "source", "verdict", "metric", "estimate", "ci95", "threshold"):
            assert key in verdict, key
        labels = stats.CHECK_VERDICTS if verdict["kind"] == "check" else stats.VERDICTS
        assert verdict["verdict"] in labels
        for cond in verdict["conditions"]:  # every condition accounts for every seed
            assert {"role", "n", "n_diverged", "n_undefined", "verdict"} <= set(cond), cond
        for fig in verdict["figures"]:
            assert (path.parent / fig["path"]).stat().st_size > 1000
    html = (quick_run / "results-quick/report/index.html").read_text()
    assert all(cid in html for cid in claim_ids)
    assert "data:image/png;base64," in html
    assert (quick_run / "results-quick/report/claims.md").exists()


def test_second_invocation_has_nothing_to_do(quick_run):
    result = snakemake(quick_run, "--cores", "2", "-n")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


def test_cores_1_gives_identical_verdicts(quick_run, tmp_path, copy_workflow):
    other = copy_workflow(tmp_path / "quick1")
    result = snakemake(other, "--cores", "1")
    assert result.returncode == 0, result.stderr[-4000:]
    mine, theirs = verdicts(quick_run), verdicts(other)
    assert sorted(mine) == sorted(theirs)
    for claim in mine:
        assert filecmp.cmp(mine[claim], theirs[claim], shallow=False), claim


def test_deleting_a_cell_reruns_only_its_dependents(quick_run):
    runs = sorted((quick_run / "results-quick/runs").glob("*/*.npz"))
    victim = runs[0]
    claim = victim.parent.name
    victim.unlink()
    result = snakemake(quick_run, "--cores", "2", "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr
    planned = result.stdout + result.stderr
    assert "train_cell" in planned and "judge_claim" in planned and "render_report" in planned
    summary = snakemake(quick_run, "--cores", "2", "-n")
    text = summary.stdout + summary.stderr
    # one training job (the deleted cell), one judge job (its claim), one report
    assert _job_count(text, "train_cell") == 1
    assert _job_count(text, "judge_claim") == 1
    assert _job_count(text, "render_report") == 1
    assert f"claim={claim}" in text or claim in text
    rerun = snakemake(quick_run, "--cores", "2")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert victim.exists()


def _job_count(dry_run_text: str, rule: str) -> int:
    """Read a rule's job count from the dry run's job-stats table."""
    for line in dry_run_text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == rule and parts[1].isdigit():
            return int(parts[1])
    return 0
