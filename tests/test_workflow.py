"""End-to-end runs of the Snakemake workflow on the quick profile, in temporary directories."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the quick profile in ``workdir``; ``env``: variables added to this process's environment."""
    return subprocess.run(
        ["snakemake", "--configfile", "config/quick.yaml", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=900,
        env=None if env is None else {**os.environ, **env},
    )


#: What another CPU's own choice of kernels looks like here: OpenBLAS's Sandybridge (AVX) kernels
#: and NumPy without AVX-512, where this machine would pick SkylakeX kernels and AVX-512.
OTHER_CPU = {"OPENBLAS_CORETYPE": "Sandybridge", "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}


def verdicts(workdir: Path) -> dict[str, Path]:
    return {p.parent.name: p for p in sorted((workdir / "results-quick/claims").glob("*/verdict.json"))}


@pytest.fixture(scope="module")
def quick_run(shared_quick_run, tmp_path_factory, copy_run) -> Path:
    """A copy of the session's quick run (2 cores); later tests inspect, damage and re-run it."""
    return copy_run(shared_quick_run, tmp_path_factory.mktemp("quick2") / "workflow")


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

    from actlab.claims import stats
    from actlab.claims.register import load_yaml

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
    markdown = (quick_run / "results-quick/report/claims.md").read_text()
    replications = {c: json.loads(p.read_text()) for c, p in found.items() if "replicates" in json.loads(p.read_text())}
    assert replications and "## Replications with scikit-learn" in markdown
    for claim, verdict in replications.items():  # next to the claim it replicates: agrees or differs
        original = json.loads(found[verdict["replicates"]].read_text())["verdict"]
        agreement = "agrees" if original == verdict["verdict"] else f"differs ({original} vs {verdict['verdict']})"
        assert f"[{agreement}](#{claim})" in markdown, claim


def test_second_invocation_has_nothing_to_do(quick_run):
    result = snakemake(quick_run, "--cores", "2", "-n")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


def test_cores_1_and_other_cpu_kernels_give_identical_bytes(quick_run, tmp_path, copy_workflow, smallest_claims):
    """Serial and parallel runs give the same bytes, on one claim of every experiment type, even
    where the machine would pick other kernels (cpu_kernels: portable, the default)."""
    claims = smallest_claims
    other = copy_workflow(tmp_path / "quick1")
    only = f"only=[{','.join(claims)}]"
    result = snakemake(other, "--cores", "1", "--config", only, "tracking={enabled: false}", env=OTHER_CPU)
    assert result.returncode == 0, result.stderr[-4000:]
    theirs = verdicts(other)
    mine = {claim: path for claim, path in verdicts(quick_run).items() if claim in theirs}
    assert sorted(mine) == sorted(theirs) == claims
    timed = {claim for claim, path in mine.items() if "machines" in json.loads(path.read_text())}
    assert timed == {"activation-compute-cost"}  # wall-clock measurements: the one declared exception
    for claim in sorted(set(mine) - timed):
        assert filecmp.cmp(mine[claim], theirs[claim], shallow=False), claim
        for cell in (quick_run / "results-quick/runs" / claim).glob("*.npz"):
            assert filecmp.cmp(cell, other / "results-quick/runs" / claim / cell.name, shallow=False), cell


def test_native_cpu_kernels_give_other_bytes_under_other_kernels(quick_run, tmp_path, copy_workflow):
    """The negative control of the test above: with cpu_kernels: native the kernels decide the bytes."""
    claim = "relu-trains-faster"
    other = copy_workflow(tmp_path / "native")
    config = ["--config", f"only=[{claim}]", "tracking={enabled: false}", "cpu_kernels=native"]
    result = snakemake(other, "--cores", "2", *config, env=OTHER_CPU)
    assert result.returncode == 0, result.stderr[-4000:]
    cells = sorted((quick_run / "results-quick/runs" / claim).glob("*.npz"))
    same = [cell.name for cell in cells if filecmp.cmp(cell, other / "results-quick/runs" / claim / cell.name, False)]
    assert len(same) < len(cells), "other kernels left every cell's bytes unchanged: the test above proves nothing"


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


# --- faults: nothing good is deleted by something bad (README, "What the workflow guarantees") ----


def test_unreadable_files_are_set_aside_and_only_they_and_their_dependents_rebuilt(quick_run):
    cell = sorted((quick_run / "results-quick/runs").glob("*/*.npz"))[0]
    verdict = next(p for c, p in verdicts(quick_run).items() if c != cell.parent.name)
    before = {cell: cell.read_bytes(), verdict: verdict.read_bytes()}
    cell.write_bytes(before[cell][:500])
    verdict.write_text("garbage")
    dry = snakemake(quick_run, "--cores", "2", "-n")
    text = dry.stdout + dry.stderr
    assert dry.returncode == 0, text[-3000:]
    assert f"{cell.relative_to(quick_run)} is unreadable" in text
    assert (_job_count(text, "train_cell"), _job_count(text, "judge_claim")) == (1, 2)
    run = snakemake(quick_run, "--cores", "2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert cell.read_bytes() == before[cell] and verdict.read_bytes() == before[verdict]  # rebuilt, same bytes
    assert (quick_run / "results-quick/unreadable" / cell.relative_to(quick_run / "results-quick")).exists()


def test_a_failing_judge_keeps_the_previous_verdict_and_figures(quick_run):
    import numpy as np

    claim = "relu-trains-faster"
    cell = sorted((quick_run / f"results-quick/runs/{claim}").glob("*.npz"))[0]
    outputs = {p: p.read_bytes() for p in (quick_run / f"results-quick/claims/{claim}").glob("*.*")}
    good = cell.read_bytes()
    np.savez(cell, unrelated=np.zeros(3))  # readable, but not a cell: the judge fails on it
    failed = snakemake(quick_run, "--cores", "2")
    assert failed.returncode != 0
    assert "judge_claim" in failed.stdout + failed.stderr
    for path, data in outputs.items():
        assert path.read_bytes() == data, f"{path.name} was not kept"
    cell.write_bytes(good)
    healed = snakemake(quick_run, "--cores", "2")
    assert healed.returncode == 0, healed.stderr[-3000:]


def test_a_subset_run_leaves_the_report_alone(quick_run):
    report = quick_run / "results-quick/report"
    before = {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()}
    result = snakemake(quick_run, "--cores", "2", "--config", "only=[slope-product]", "tracking={enabled: false}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p: p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()} == before
    subset = (quick_run / "results-quick/subset-report/claims.md").read_text()
    assert "slope-product" in subset and "relu-trains-faster" not in subset


def test_another_profile_cannot_overwrite_these_results(quick_run):
    result = snakemake(quick_run, "--cores", "2", "-n", "--config", "profile=full")
    assert result.returncode != 0
    assert "holds results of the 'quick' profile" in result.stdout + result.stderr


def test_editing_package_code_reruns_what_it_affects(quick_run, tmp_path):
    """The workflow runs a copy of the package: unchanged, nothing to do; a metric module edited,
    its claims' cells re-train and every claim is judged again; a docstring edited, nothing."""
    import os
    import shutil

    from actlab.claims.experiments import EXPERIMENTS
    from actlab.claims.register import load_yaml
    from actlab.workflow import code_digest

    shutil.copytree(REPO / "actlab", tmp_path / "actlab", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def dry_run() -> str:
        result = subprocess.run(
            ["snakemake", "--configfile", "config/quick.yaml", "-n", "--cores", "1"],
            cwd=quick_run,
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        used = subprocess.run(
            ["python", "-c", "import actlab; print(actlab.__file__)"],
            cwd=quick_run,
            capture_output=True,
            text=True,
            env=env,
        )
        assert str(tmp_path / "actlab") in used.stdout
        return result.stdout + result.stderr

    assert "Nothing to be done" in dry_run()
    module = tmp_path / "actlab/claims/experiments/gradient_flow.py"
    source = module.read_text()
    module.write_text(source.replace('"""', '"""Edited docstring. ', 1))
    assert "Nothing to be done" in dry_run()
    module.write_text(source + "\nEDITED = True\n")
    text = dry_run()
    yaml_claims = load_yaml(REPO / "config/claims.yaml")["claims"]
    affected = [  # claims whose experiment module is, or imports, the edited one
        c["id"]
        for c in yaml_claims
        if "actlab.claims.experiments.gradient_flow"
        in code_digest.closure([type(EXPERIMENTS[c["experiment"]]).__module__])
    ]
    n_cells = sum(len(list((quick_run / f"results-quick/runs/{c}").glob("*.npz"))) for c in affected)
    assert len(affected) < len(yaml_claims)
    assert _job_count(text, "train_cell") == n_cells > 0
    assert _job_count(text, "judge_claim") == len(yaml_claims)
