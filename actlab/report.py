"""Render the verdicts into a self-contained HTML report and a GitHub-readable Markdown table.

Every number and figure in the report is read from a claim's ``verdict.json`` and its figure
files, the outputs of rule ``judge_claim``; each claim links back to its register entry, its
experiment code and the rule that produced it (the showyourwork idea).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import jinja2

from actlab.experiments import EXPERIMENTS

GROUPS = {"G": "Gradient flow and initialization", "D": "Dying ReLU and sparsity", "A": "The activation zoo compared"}


def load_verdicts(paths: list[str]) -> list[dict]:
    """Read every verdict JSON, each with its folder (``_dir``) for the figures."""
    verdicts = []
    for path in paths:
        verdict = json.loads(Path(path).read_text())
        verdict["_dir"] = str(Path(path).parent)
        verdict["experiment_code"] = (
            f"actlab/experiments/{EXPERIMENTS[verdict['experiment']].__module__.split('.')[-1]}.py"
        )
        verdicts.append(verdict)
    return verdicts


def fmt(x) -> str:
    """A number as the report shows it (4 significant digits)."""
    if x is None:
        return "n/a"
    if isinstance(x, int | float):
        return f"{x:.4g}"
    return str(x)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("actlab", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    return env


def render(verdict_paths: list[str], html_path: str, markdown_path: str, figure_dir: str, profile: str) -> None:
    """Write ``index.html`` (figures embedded), ``claims.md`` and a copy of the figures for it."""
    verdicts = load_verdicts(verdict_paths)
    figure_dir = Path(figure_dir)
    figure_dir.mkdir(parents=True, exist_ok=True)
    for v in verdicts:
        for fig in v["figures"]:
            source = Path(v["_dir"]) / fig["path"]
            fig["file"] = f"{v['claim']}-{fig['path']}"
            shutil.copyfile(source, figure_dir / fig["file"])
            fig["data"] = base64.b64encode(source.read_bytes()).decode()
    groups = [(key, title, [v for v in verdicts if v["group"] == key]) for key, title in GROUPS.items()]
    groups = [g for g in groups if g[2]]
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in ("supported", "refuted", "mixed", "inconclusive")}
    context = {
        "groups": groups,
        "counts": counts,
        "n_claims": len(verdicts),
        "profile": profile,
        "figure_dir": figure_dir.name,
    }
    env = _environment()
    Path(html_path).write_text(env.get_template("report.html.j2").render(**context))
    Path(markdown_path).write_text(env.get_template("claims.md.j2").render(**context))
