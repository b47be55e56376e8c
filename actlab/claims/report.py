"""Render the verdicts into a self-contained HTML report and a GitHub-readable Markdown table.

Every number and figure in the report is read from a claim's ``verdict.json`` and its figure
files, the outputs of rule ``judge_claim``; each claim links back to its register entry, its
experiment code and the rule that produced it (the showyourwork idea).
"""

from __future__ import annotations

import base64
import datetime
import json
import shutil
from pathlib import Path

import jinja2

from actlab.claims.experiments import EXPERIMENTS

GROUPS = {"G": "Gradient flow and initialization", "D": "Dying ReLU and sparsity", "A": "The activation zoo compared"}


def load_verdicts(paths: list[str]) -> list[dict]:
    """Read every verdict JSON, each with its folder (``_dir``) for the figures."""
    verdicts = []
    for path in paths:
        verdict = json.loads(Path(path).read_text())
        verdict["_dir"] = str(Path(path).parent)
        verdict["experiment_code"] = (
            f"actlab/claims/experiments/{EXPERIMENTS[verdict['experiment']].__module__.split('.')[-1]}.py"
        )
        verdicts.append(verdict)
    return verdicts


CLAIM_LABELS = ("supported", "partly supported", "mixed", "partly refuted", "refuted", "inconclusive")
CHECK_LABELS = ("verified", "violated", "inconclusive")


def threshold_text(rule: dict) -> str:
    """How the report writes a rule's side: ``< 1.0`` or ``within [0.35, 0.65]``."""
    threshold = rule["threshold"]
    if rule["compare"] == "within":
        return f"within [{fmt(threshold[0])}, {fmt(threshold[1])}]"
    return f"{rule['compare']} {fmt(threshold)}"


def interval_text(summary: dict) -> str:
    """A condition's interval as the report shows it: the one its verdict used, with its level."""
    lo, hi = summary.get("decision_ci") or [None, None]
    level = summary.get("decision_level")
    if lo is None:
        lo, hi = summary.get("ci95") or [None, None]
        level = 0.95
    if lo is None:
        return "—"
    return f"[{fmt(lo)}, {fmt(hi)}] ({100 * level:.3g}%)"


def finding(verdict: dict) -> str:
    """A plain-language paragraph of what the verdict rests on and what it does not show."""
    conds = verdict["conditions"]
    judged = [c for c in conds if c["role"] == "judged"]
    counts: dict[str, int] = {}
    for c in judged:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    tally = ", ".join(f"{n} {label}" for label, n in counts.items())
    if verdict["kind"] == "check":
        text = (
            f"An identity, checked on {len(judged)} condition(s): {tally}. The worst value over every seed is "
            f"{fmt(verdict['estimate'])} (the rule: {threshold_text(verdict)}). It is not evidence about trained "
            "networks: it could only fail through a bug or a wrong formula."
        )
    else:
        diverged = sum(_total(c["n_diverged"]) for c in judged)
        text = (
            f"{len(judged)} judged condition(s): {tally}. At the headline condition ({verdict['headline_condition']}) "
            f"the estimate is {fmt(verdict['estimate'])} on {fmt(verdict['n_used'])} usable runs"
            f"{f'; {diverged} diverged runs across the judged conditions' if diverged else ''}."
        )
    control = [c for c in conds if c["role"] == "control"]
    if control:
        must = "violated" if verdict["kind"] == "check" else "refuted"
        outcome = verdict.get("control_verdict")
        text += f" The negative control ({'; '.join(c['condition'] for c in control)}) came out {outcome}" + (
            ", so the rule can fail." if outcome == must else f", not {must}: the rule could not be shown to fail."
        )
    elif verdict["kind"] != "check":
        text += f" No negative control condition: {verdict['decision'].get('no_control', '')}"
    context = [c for c in conds if c["role"] == "context"]
    if context:
        text += f" {len(context)} context condition(s) are drawn and summarized but do not enter the verdict"
        fewer = verdict.get("context_seeds", verdict["n_seeds"]) < verdict["n_seeds"]
        text += (
            f"; the cells outside the judged and control conditions trained the first {verdict['context_seeds']} seeds."
            if fewer
            else "."
        )
    return text


def _total(n) -> int:
    return sum(n) if isinstance(n, list) else int(n or 0)


def read_benchmark(path: str | Path) -> dict[str, float] | None:
    """The measurements of a Snakemake benchmark file (a header, then ``s<TAB>h:m:s<TAB>...``).

    Returns the first row's numeric columns (``s``, ``max_rss``, ``cpu_time``, ...) by name, or
    None for a missing file or one without a row. The workflow's rules run each job once, so a
    file has one row.
    """
    path = Path(path)
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        return None
    row = {}
    for name, value in zip(lines[0].split("\t"), lines[1].split("\t"), strict=True):
        try:
            row[name] = float(value)
        except ValueError:  # h:m:s, and "-" where Snakemake could not measure
            pass
    return row


def provenance(benchmark_paths: list[str]) -> dict:
    """Where and how the report's run was made: commit, date, versions, CPU, BLAS, job time."""
    import platform
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    from threadpoolctl import threadpool_info

    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    versions = {}
    for name in ("actlab", "numpy", "scipy", "scikit-learn", "matplotlib", "mlflow", "snakemake"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "absent"
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    blas = "; ".join(
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')})"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    )
    seconds = 0.0
    for tsv in benchmark_paths:
        row = read_benchmark(tsv)
        if row is not None:
            seconds += row["s"]
    commit = run("git", "rev-parse", "--short", "HEAD") or "unknown"
    code = ("actlab", "config", "rules", "scripts", "Snakefile", "pyproject.toml")  # not the report itself
    if run("git", "status", "--porcelain", "--untracked-files=no", "--", *code):
        commit += " (with uncommitted changes to the code or config)"
    return {
        "commit": commit,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "versions": versions,
        "cpu": cpu,
        "blas": blas or "unknown",
        "train_seconds": round(seconds),
    }


def replication_agreement(original: dict | None, replication: dict) -> str:
    """How a replication's verdict compares with the original's: agrees, differs, or no original."""
    if original is None:
        return f"{replication['replicates']} was not judged in this run"
    if original["verdict"] == replication["verdict"]:
        return "agrees"
    return f"differs ({original['verdict']} vs {replication['verdict']})"


def fmt(x) -> str:
    """A number as the report shows it (4 significant digits)."""
    if x is None:
        return "n/a"
    if isinstance(x, int | float):
        return f"{x:.4g}"
    return str(x)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("actlab.claims", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    env.filters["total"] = _total
    env.filters["css"] = lambda label: str(label).replace(" ", "-")
    return env


def render(
    verdict_paths: list[str],
    html_path: str,
    markdown_path: str,
    figure_dir: str,
    profile: str,
    benchmark_paths: list[str] = (),
) -> None:
    """Write ``index.html`` (figures embedded), ``claims.md`` and a copy of the figures for it.

    ``benchmark_paths`` are the training jobs' Snakemake benchmark files, whose total time the
    report's provenance states. ``figure_dir`` may hold the previous report's figures (the rule
    keeps its outputs until it succeeds); figures of claims no longer reported are removed.
    """
    verdicts = load_verdicts(verdict_paths)
    figure_dir = Path(figure_dir)
    figure_dir.mkdir(parents=True, exist_ok=True)
    for old in figure_dir.glob("*.png"):
        old.unlink()
    for v in verdicts:
        for fig in v["figures"]:
            source = Path(v["_dir"]) / fig["path"]
            fig["file"] = f"{v['claim']}-{fig['path']}"
            shutil.copyfile(source, figure_dir / fig["file"])
            fig["data"] = base64.b64encode(source.read_bytes()).decode()
    for v in verdicts:
        v["finding"] = finding(v)
        v["rule_text"] = threshold_text(v)
        v["interval_text"] = interval_text(v)
        meanings = EXPERIMENTS[v["experiment"]].metrics
        v["also"] = [
            {**a, "rule_text": threshold_text(a), "meaning": meanings.get(a["metric"], "")}
            for a in v["decision"].get("also") or []
        ]
        for c in v["conditions"]:
            c["interval_text"] = interval_text(c)
    replications = [v for v in verdicts if v.get("replicates")]
    claims = [v for v in verdicts if v["kind"] != "check" and not v.get("replicates")]
    checks = [v for v in verdicts if v["kind"] == "check"]
    by_id = {v["claim"]: v for v in claims}
    for r in replications:
        original = by_id.get(r["replicates"])
        r["agreement"] = replication_agreement(original, r)
        if original is not None:
            original["replication"] = {"claim": r["claim"], "agreement": r["agreement"]}
            r["original_verdict"] = original["verdict"]
    groups = [(key, title, [v for v in claims if v["group"] == key]) for key, title in GROUPS.items()]
    groups = [g for g in groups if g[2]]
    context = {
        "groups": groups,
        "checks": checks,
        "replications": replications,
        "ordered": [v for _, _, items in groups for v in items] + replications + checks,
        "counts": {k: sum(v["verdict"] == k for v in claims) for k in CLAIM_LABELS},
        "check_counts": {k: sum(v["verdict"] == k for v in checks) for k in CHECK_LABELS},
        "n_claims": len(claims),
        "n_checks": len(checks),
        "n_amended": sum(bool(v["amendments"]) for v in verdicts),
        "profile": profile,
        "figure_dir": figure_dir.name,
        "provenance": provenance(list(benchmark_paths)),
    }
    env = _environment()
    Path(html_path).write_text(env.get_template("report.html.j2").render(**context))
    Path(markdown_path).write_text(env.get_template("claims.md.j2").render(**context))
