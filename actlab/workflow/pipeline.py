"""The work of each Snakemake rule, as plain functions the thin scripts call (and tests can too)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from actlab.claims import judging
from actlab.claims.experiments import EXPERIMENTS, Cell, CellResult
from actlab.engine import memory
from actlab.engine.datasets import Dataset, make_dataset
from actlab.engine.seeding import Seeds
from actlab.workflow import cpu_kernels


@contextlib.contextmanager
def rule_context(log_path: str, threads: int = 1) -> Iterator[None]:
    """Send a rule's stdout/stderr to its log, cap BLAS threads at the rule's ``threads``, keep freed memory.

    Snakemake runs jobs side by side, one per core; a multi-threaded BLAS in every job would
    oversubscribe the cores (small matrix products then run up to 100 times slower). Freed array
    memory stays in the job's process (:func:`actlab.engine.memory.keep_freed_memory`, logged
    first): the same bytes, 14-19% less training time on the cells measured. A job given
    the portable kernels (:mod:`actlab.workflow.cpu_kernels`) on a node without AVX2 stops here, with a
    message, before a kernel the CPU cannot run crashes it.
    """
    from threadpoolctl import threadpool_limits

    with open(log_path, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        if os.environ.get("OPENBLAS_CORETYPE") == cpu_kernels.PORTABLE["OPENBLAS_CORETYPE"] and (
            missing := cpu_kernels.missing_flags()
        ):
            raise RuntimeError(
                f"{socket.gethostname()} lacks {', '.join(missing)}, which cpu_kernels: portable needs; "
                "run on nodes with AVX2, or with --config cpu_kernels=native"
            )
        print(f"allocator: {memory.keep_freed_memory()}")
        with threadpool_limits(limits=threads):
            try:
                yield
            except Exception:
                traceback.print_exc(file=log)
                raise


def dataset(name: str, spec: dict, seed: int, out: str | Path) -> None:
    """Rule ``make_dataset``: generate data set ``name`` from its config ``spec`` into ``out`` (``.npz``)."""
    make_dataset(name, spec, seed).save(out)


def train_cell(
    seed: int,
    claim_id: str,
    experiment: str,
    n_seeds: int,
    cell_id: str,
    cell: dict,
    dataset_paths: dict,
    out_npz,
    out_json,
) -> None:
    """Rule ``train_cell``: run every seed of one cell as one ensemble and save the result.

    The seeds are ``Seeds(n_seeds, key=(seed, claim_id, cell["stream"]))``, the stream being the
    cell's id or, for a claim with paired seeds, one shared by its cells
    (:func:`actlab.claims.register.expand_cells`): the same cell gives the same bytes whatever else runs,
    and in whichever order.
    """
    seeds = Seeds(n_seeds, key=(seed, claim_id, cell["stream"]))
    data = {name: Dataset.load(path) for name, path in dataset_paths.items()}
    result = EXPERIMENTS[experiment].run(cell["params"], seeds, data)
    result.info.update(
        {
            "claim": claim_id,
            "cell": cell_id,
            "setting": cell["setting"],
            "params": cell["params"],
            "n_seeds": n_seeds,
            "seed_key": [seed, claim_id, cell["stream"]],
        }
    )
    result.save(out_npz, out_json)


def judge_claim(seed: int, claim: dict, cell_paths: dict, outdir: str | Path) -> dict:
    """Rule ``judge_claim``: statistics over seeds, the verdict JSON and the figures."""
    from actlab.claims import figures, plotting  # matplotlib: only judge jobs draw

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    experiment = EXPERIMENTS[claim["experiment"]]
    cells = [
        Cell(cid, claim["cells"][cid]["setting"], claim["cells"][cid]["params"], CellResult.load(npz, js))
        for cid, (npz, js) in cell_paths.items()
    ]
    verdict = judging.judge(claim, cells, experiment, seed)
    if claim.get("replicates"):
        verdict["replicates"] = claim["replicates"]  # the report pairs it with the claim it replicates
    caption = figures.draw(experiment, claim, cells, verdict, outdir / "figure.png")
    plotting.verdict_figure(verdict, outdir / "verdict.png")
    verdict["figures"] = [
        {"path": "figure.png", "caption": caption},
        {
            "path": "verdict.png",
            "caption": "Each condition's estimate and interval (at the level its verdict used) against the "
            "threshold; the negative control and context conditions are hollow.",
        },
    ]
    if "leaderboard" in verdict:
        plotting.leaderboard_figure(verdict, outdir / "leaderboard.png")
        verdict["figures"].append(
            {
                "path": "leaderboard.png",
                "caption": "Every competitor's mean with its 95% CI, ranked per group (1 = best); the tick label "
                "gives the rank and its 95% percentile-bootstrap interval over paired seeds.",
            }
        )
    verdict["diverged_runs"] = int(sum(np.sum(c.result.arrays.get("diverged", 0)) for c in cells))
    if experiment.machine_dependent:  # wall-clock results: say where they were measured
        machines = {json.dumps(c.result.info["machine"], sort_keys=True) for c in cells}
        verdict["machines"] = [json.loads(m) for m in sorted(machines)]
    (outdir / "verdict.json").write_text(json.dumps(verdict, indent=2, sort_keys=False) + "\n")
    return verdict
