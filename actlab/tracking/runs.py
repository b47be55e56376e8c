"""What a claim's runs contain: a parent run per claim, a child run per cell and seed.

* **Parent run** (:func:`parent_run`, ``{claim}: {verdict}``): the statement, source, verdict and
  headline condition as tags (the description repeats them, with a link to the claim's report
  section), the decision rule as ``decision.*`` params, the estimate and its 95% CI as metrics.
* **Child runs** (:func:`cell_runs`, named from the setting: ``tanh lr=0.5 s0``): one per cell and
  seed, for the first ``seeds_per_cell`` seeds of each cell, with every cell parameter as a param,
  the cell's per-seed arrays as metrics (:func:`actlab.tracking.series.seed_metrics`), its data
  sets as inputs, its files as artifacts (seed 0), and the training job's start and end times.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

from actlab.claims.experiments.base import Experiment
from actlab.tracking.series import placeholder, seed_metrics

#: Tag of every run: ``claim`` (a parent) or ``cell`` (a child); filter on ``tags.actlab.run = 'claim'``.
ROLE_TAG = "actlab.run"


@dataclass
class RunData:
    """What one run logs: name, tags, params, metrics, inputs, artifacts and the times it spans."""

    name: str
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    start: int | None = None
    end: int | None = None
    inputs: list[DatasetInput] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)


@dataclass
class ClaimFiles:
    """What the workflow wrote for one judged claim, and the tags its runs share.

    Attributes
    ----------
    verdict : Path
        The claim's ``verdict.json``; the figures it lists are read from its folder.
    cells : dict
        Cell id -> ``(npz, json)`` paths of the trained cell.
    context : dict
        Tags of every run of the claim (:func:`actlab.tracking.context.run_context`).
    data : dict
        Cell id -> data set name -> its file (``results/data/{name}.npz``), logged as inputs.
    benchmarks : dict
        Cell id -> the training job's Snakemake benchmark (``.tsv``): its seconds give the child
        runs' durations. A missing file gives a duration of zero.
    report : str or None
        Where the claim's report section is (a URL or a path with ``#claim``), tagged ``report``.
    """

    verdict: Path
    cells: dict[str, tuple[Path, Path]]
    context: dict[str, str]
    data: dict[str, dict[str, Path]] = field(default_factory=dict)
    benchmarks: dict[str, Path] = field(default_factory=dict)
    report: str | None = None


def parent_run(
    verdict: dict, context: dict[str, str], timestamp: int | None = None, report: str | None = None
) -> RunData:
    """The claim's parent run, ``{claim}: {verdict}``: verdict and statement as tags, rule as params, CI as metrics."""
    claim = verdict["claim"]
    timestamp = timestamp or int(time.time() * 1000)
    low, high = verdict["ci95"]
    values = {
        "estimate": verdict["estimate"],
        "ci95_low": low,
        "ci95_high": high,
        "diverged_runs": verdict.get("diverged_runs"),
    }
    tags = {
        **context,
        ROLE_TAG: "claim",
        "verdict": verdict["verdict"],
        "kind": verdict.get("kind", "claim"),
        "statement": verdict["statement"],
        "source": ", ".join(verdict["source"]),
        "experiment_type": verdict["experiment"],
        "group": str(verdict.get("group")),
        "headline_condition": verdict["headline_condition"],
        "mlflow.note.content": _description(verdict, report),
    }
    if report:
        tags["report"] = report
    params = flatten(verdict["decision"], "decision.")
    params.update({"n_seeds": str(verdict["n_seeds"]), "n_cells": str(len(verdict["cells"]))})
    metrics = [Metric(key, float(value), timestamp, 0) for key, value in values.items() if value is not None]
    return RunData(f"{claim}: {verdict['verdict']}", {"claim": claim, **tags}, params, metrics)


def _description(verdict: dict, report: str | None = None) -> str:
    """The parent run's Markdown description, as the MLflow UI shows it."""
    low, high = verdict["ci95"]
    text = (
        f"**{verdict['verdict']}**: {verdict['statement']}\n\n"
        f"Decision: {verdict['metric']} ({verdict['metric_meaning']}) {verdict['compare']} "
        f"{verdict['threshold']}; estimate {verdict['estimate']}, 95% CI [{low}, {high}] "
        f"({verdict['headline_condition']}; {verdict['ci_method']}).\n\n"
        f"Sources: {', '.join(verdict['source'])}"
    )
    return text + (f"\n\n[The claim in the report]({report})" if report else "")


def cell_runs(
    claim: str,
    cell: str,
    npz_path,
    json_path,
    context: dict[str, str],
    experiment: Experiment,
    seeds_per_cell: int | None = None,
    data: dict[str, Path] | None = None,
    benchmark: Path | None = None,
) -> list[RunData]:
    """One child run per seed of a trained cell, up to ``seeds_per_cell`` seeds.

    Params, tags, metrics (the series of the arrays by the dimensions ``experiment`` declares,
    without placeholders: a seed's series of only NaN or
    :data:`~actlab.tracking.series.PLACEHOLDER`), the training job's times, the data sets as
    inputs, and the cell's two files as artifacts of the seed-0 run.
    """
    info = json.loads(Path(json_path).read_text())
    with np.load(npz_path) as arrays_file:
        arrays = {key: arrays_file[key] for key in arrays_file.files}
    n_seeds = int(info["n_seeds"])
    dims = {name: experiment.array_dims(name) for name in arrays}
    series = seed_metrics(arrays, dims, info["params"].get("epochs"))
    params = flatten(info["params"])
    params.update({"n_seeds": str(n_seeds), "global_seed": str(info["seed_key"][0])})
    tags = {**context, ROLE_TAG: "cell", **{f"setting.{axis}": str(label) for axis, label in info["setting"].items()}}
    tags["cell_file"] = str(npz_path)
    start, end = training_times(npz_path, benchmark)
    inputs = [dataset_input(name, path, info["params"]) for name, path in sorted((data or {}).items())]
    runs = []
    for seed in range(n_seeds if seeds_per_cell is None else min(n_seeds, seeds_per_cell)):
        metrics = [
            Metric(name, float(values[seed, t]), end, int(step))
            for name, (steps, values) in series.items()
            if not placeholder(values[seed])
            for t, step in enumerate(steps)
        ]
        run_tags = {"claim": claim, "cell": cell, "seed": str(seed), **tags}
        runs.append(
            RunData(
                child_name(info["setting"], seed, cell),
                run_tags,
                {**params, "seed_index": str(seed)},
                metrics,
                start,
                end,
                inputs,
                [Path(npz_path), Path(json_path)] if seed == 0 else [],
            )
        )
    return runs


def child_name(setting: dict, seed: int, cell: str) -> str:
    """A child run's name from its setting: ``tanh lr=0.5 s0`` (the activation axis shows its label alone)."""
    parts = [str(label) if axis == "activation" else f"{axis}={label}" for axis, label in setting.items()]
    return " ".join(parts or [cell]) + f" s{seed}"


def training_times(npz_path: Path, benchmark: Path | None) -> tuple[int, int]:
    """Start and end (ms since the epoch) of the job that trained a cell.

    The end is when the cell's ``.npz`` was written; the duration is the ``s`` column of the job's
    Snakemake benchmark, zero when there is none.
    """
    end = int(Path(npz_path).stat().st_mtime * 1000)
    seconds = 0.0
    if benchmark is not None and Path(benchmark).exists():
        lines = Path(benchmark).read_text().splitlines()
        with contextlib.suppress(ValueError, IndexError):
            seconds = float(lines[1].split("\t")[lines[0].split("\t").index("s")])
    return end - int(seconds * 1000), end


def dataset_input(name: str, path: Path, cell_params: dict) -> DatasetInput:
    """A data set file as an MLflow input: digest = the first 16 hex digits of the file's SHA-256."""
    profile = {key: value for key, value in cell_params.items() if key == "dataset"}
    dataset = Dataset(
        name=name,
        digest=file_digest(path)[:16],
        source_type="local",
        source=json.dumps({"uri": Path(path).resolve().as_uri()}),
        profile=json.dumps(profile) if profile else None,
    )
    return DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def flatten(params: dict, prefix: str = "") -> dict[str, str]:
    """Nested parameters as flat MLflow params: ``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``.

    Strings are kept as they are, every other value is written as JSON.
    """
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, str) else json.dumps(value)
    return flat
