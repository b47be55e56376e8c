"""The SLURM profile on a real SLURM: training goes through ``sbatch``, nothing hangs, same verdicts.

``.ci/run`` starts a single-node SLURM (``.ci/start_slurm.sh``, as root: Debian's slurm-wlm and
munge, no accounting daemon). Elsewhere the test skips and says how to start one; under CI as
root it fails instead, since the set-up should have started one.
"""

from __future__ import annotations

import filecmp
import getpass
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # a real SLURM and the session's quick run: not part of the fast loop

REPO = Path(__file__).resolve().parents[1]
#: A hang (a status poll that never sees its jobs finish) fails the test instead of blocking CI.
TIMEOUT_S = 900


def slurm_missing() -> str | None:
    """Why the profile cannot run here, or ``None`` when a SLURM node is up and the plugin installed."""
    if shutil.which("sinfo") is None:
        return "no SLURM client (sinfo) on PATH"
    state = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    if state.returncode != 0 or not re.search(r"^(idle|mix|alloc)", state.stdout, re.M):
        return f"no SLURM node is up ({(state.stderr or state.stdout).strip()[:200]})"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "the SLURM executor plugin is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def slurm_ready() -> None:
    reason = slurm_missing()
    if reason is None:
        return
    hint = f"{reason}; start a single-node SLURM with `sudo .ci/start_slurm.sh`"
    if os.environ.get("CI") == "true" and os.geteuid() == 0:
        pytest.fail(f"CI runs as root, so .ci/run should have started SLURM: {hint}")
    pytest.skip(hint)


def cancel_my_jobs() -> None:
    subprocess.run(["scancel", "-u", getpass.getuser()], capture_output=True)


@pytest.fixture(scope="module")
def slurm_run(slurm_ready, tmp_path_factory, copy_workflow, smallest_claims) -> tuple[Path, str, float]:
    """The smallest claims of four experiment types through ``--profile profiles/slurm``."""
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm"))
    shutil.copytree(REPO / "profiles/slurm", workdir / "profiles/slurm")
    claims = [claim for claim in smallest_claims if claim != "activation-compute-cost"][:4]
    command = [
        "snakemake", "--profile", "profiles/slurm", "--configfile", "config/quick.yaml",
        "config/no-tracking.yaml", "--config", f"only=[{','.join(claims)}]",
    ]  # fmt: skip
    start = time.monotonic()
    process = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        log, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        log, _ = process.communicate()
        cancel_my_jobs()
        pytest.fail(f"snakemake --profile profiles/slurm hung for {TIMEOUT_S} s:\n{log[-4000:]}")
    assert process.returncode == 0, log[-4000:]
    return workdir, log, time.monotonic() - start


def test_every_training_job_went_through_sbatch_and_finished(slurm_run):
    workdir, log, seconds = slurm_run
    print(f"quick subset through SLURM: {seconds:.0f} s")
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert job_ids, log[-4000:]
    assert "localrule train_cell" not in log, "a training job ran outside SLURM"
    n_cells = len(list((workdir / "results-quick/runs").glob("*/*.npz")))
    assert n_cells > len(job_ids), f"{n_cells} cells in {len(job_ids)} SLURM jobs: cells are not batched"
    for job_id in job_ids:
        shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
        assert "JobState=COMPLETED" in shown, shown


def test_verdicts_are_the_local_runs_bytes(slurm_run, shared_quick_run):
    workdir, _, _ = slurm_run
    theirs = sorted((workdir / "results-quick/claims").glob("*/verdict.json"))
    assert len(theirs) == 4
    for path in theirs:
        mine = shared_quick_run / "results-quick/claims" / path.parent.name / "verdict.json"
        assert "machines" not in json.loads(path.read_text())  # no wall-clock claim in the subset
        assert filecmp.cmp(mine, path, shallow=False), path.parent.name
