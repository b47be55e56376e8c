"""Malformed configurations fail before any job runs, name the offending key, and write nothing.

The register cases run :func:`actlab.workflow.preflight.prepare` in-process (what ``rules/common.smk``
calls); a few cases of each kind run Snakemake itself, to show that it prints the same line and
writes nothing.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CLAIMS = yaml.safe_load((REPO / "config/claims.yaml").read_text())


def _claims_with(change) -> dict:
    register = copy.deepcopy(CLAIMS)
    change(register["claims"])
    return register


def _replication(claims: list) -> dict:
    """The register's scikit-learn replication of linear-collapse (edited in place by a case)."""
    return next(c for c in claims if c["id"] == "linear-collapse-sklearn")


def _set(path: list, value):
    def change(claims):
        target = claims
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


CLAIM_CASES = {
    "unknown activation": (_set([0, "grid", "activation", 0], "sigmoidd"), ["activation", "sigmoidd", "valid names"]),
    "unknown experiment type": (_set([0, "experiment"], "gradient_flood"), ["experiment", "gradient_flood"]),
    "duplicate id": (lambda c: c.append(copy.deepcopy(c[0])), ["id", "duplicate"]),
    "missing id": (lambda c: c[0].pop("id"), ["'id' is a required property"]),
    "id not kebab-case": (_set([0, "id"], "Sigmoid_Vanishing"), ["id", "Sigmoid_Vanishing"]),
    "negative learning rate": (_set([0, "params", "lr"], -0.1), ["lr", "-0.1"]),
    "seeds of the wrong type": (_set([0, "seeds"], "many"), ["seeds", "'many'"]),
    "zero seeds": (_set([0, "seeds"], 0), ["seeds"]),
    "threshold not a number": (_set([0, "decision", "threshold"], "high"), ["threshold", "'high'"]),
    "bad comparison": (_set([0, "decision", "compare"], "<="), ["compare"]),
    "unknown source file": (_set([0, "sources"], ["007"]), ["sources", "007"]),
    "unknown metric": (_set([0, "decision", "metric"], "vibes"), ["metric", "vibes"]),
    "decision on a missing axis": (_set([0, "decision", "split_by"], ["width"]), ["decision", "width"]),
    "where value not in grid": (_set([0, "decision", "where"], {"activation": "swish"}), ["where", "swish"]),
    "unknown initializer": (_set([0, "params", "init"], "glorot_fancy"), ["init", "glorot_fancy"]),
    "unknown key": (_set([0, "seed_count"], 3), ["seed_count"]),
    "depth not an integer": (_set([0, "grid", "depth"], [2.5]), ["depth", "2.5"]),
    # scope, controls, divergence and preregistration (the verdict-integrity rules)
    "headline missing": (lambda c: c[0]["decision"].pop("headline"), ["'headline' is a required property"]),
    "headline outside the judged scope": (
        _set([0, "decision", "headline"], {"activation": "tanh", "depth": 20}),
        ["sigmoid-vanishing-depth", "headline", "matches 0 judged conditions"],
    ),
    "no negative control": (lambda c: c[0]["decision"].pop("control"), ["sigmoid-vanishing-depth", "negative control"]),
    "control selecting an unknown value": (
        _set([0, "decision", "control"], {"where": {"activation": "swish"}}),
        ["control.where", "swish"],
    ),
    "divergence rule without a reason": (
        _set([0, "decision", "diverged"], {"count": "exclude"}),
        ["sigmoid-vanishing-depth", "diverged.reason"],
    ),
    "NaN threshold": (_set([0, "decision", "threshold"], float("nan")), ["threshold", "finite"]),
    "band comparison with one number": (_set([0, "decision", "compare"], "within"), ["within", "band"]),
    "amendment without a reason": (
        _set([0, "amendments", 0], {"date": "2026-11-30", "what": "changed something"}),
        ["'why' is a required property"],
    ),
    "fewer seeds than the minimum n": (_set([0, "seeds"], 5), ["sigmoid-vanishing-depth", "min_n", "raise seeds"]),
    "context seeds not below the claim's": (
        _set([0, "decision", "context", "seeds"], 24),
        ["sigmoid-vanishing-depth", "context.seeds", "not below the claim's 24 seeds"],
    ),
    "context seeds below the minimum n": (
        _set([0, "decision", "context", "seeds"], 6),
        ["sigmoid-vanishing-depth", "context.seeds", "minimum of 10 usable runs"],
    ),
    "training series skipped where the metric reads them": (
        lambda c: next(x for x in c if x["id"] == "leaky-slope")["params"].update(train_series="ends"),
        ["leaky-slope", "train_series", "mean_train_error reads the training-split series"],
    ),
    "leaderboard without paired seeds": (
        _set([0, "leaderboard"], {"over": "activation", "by": ["depth"]}),
        ["leaderboard", "paired_seeds"],
    ),
    "leaderboard leaving an axis out": (
        lambda c: c[0].update(paired_seeds=True, leaderboard={"over": "activation"}),
        ["leaderboard", "depth", "add them to 'by'"],
    ),
    "replication of an unknown claim": (
        lambda c: _replication(c).update(replicates="no-such-claim"),
        ["linear-collapse-sklearn", "replicates", "no-such-claim"],
    ),
    "replication judged by another rule": (
        lambda c: _replication(c)["decision"].update(threshold=0.2),
        ["linear-collapse-sklearn", "replicates", "decision.threshold differs"],
    ),
    "scikit-learn cell with an activation it lacks": (
        lambda c: _replication(c)["grid"].update(activation=["identity", "swish"]),
        ["linear-collapse-sklearn", "MLPClassifier has only", "swish"],
    ),
    "scikit-learn cell with actlab's initialization": (
        lambda c: _replication(c)["params"].update(init="he_normal"),
        ["linear-collapse-sklearn", "init: sklearn"],
    ),
    "scikit-learn cell asked for an internal metric": (
        lambda c: _replication(c)["decision"].update(metric="lost_units"),
        ["linear-collapse-sklearn", "reads the network's internals"],
    ),
    "leaderboard on a missing axis": (
        _set([0, "leaderboard"], {"over": "width"}),
        ["leaderboard", "'width' is not a grid axis"],
    ),
}

CONFIG_CASES = {
    "unknown profile": ("profile=huge", ["profile", "huge"]),
    "unknown claim in only": ("only=[no-such-claim]", ["only", "no-such-claim"]),
    "negative global seed": ("seed=-1", ["seed", "-1"]),
}


def _run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["snakemake", "--cores", "1", "--configfile", "config/quick.yaml", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, copy_workflow) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("badconfig"))


def _assert_rejected(result: subprocess.CompletedProcess, workdir: Path, needles: list[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"
    assert not (workdir / "results-quick").exists()
    assert not (workdir / "results").exists()


@pytest.mark.parametrize("case", sorted(CLAIM_CASES))
def test_malformed_register_is_rejected(tmp_path, case):
    from actlab.workflow import preflight

    change, needles = CLAIM_CASES[case]
    bad = tmp_path / "claims.yaml"
    bad.write_text(yaml.safe_dump(_claims_with(change), sort_keys=False))
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config.update(claims=str(bad), sources=str(REPO / "config/sources.yaml"), ledger=str(REPO / "config/ledger.yaml"))
    config.update(results=str(tmp_path / "results"))
    with pytest.raises(preflight.PreflightError) as info:
        preflight.prepare(config, REPO / "config/schemas")
    for needle in needles:
        assert needle in str(info.value), f"{needle!r} not in {info.value}"
    assert not (tmp_path / "results").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["unknown activation", "seeds of the wrong type", "fewer seeds than the minimum n"])
def test_snakemake_shows_the_register_error_and_writes_nothing(workdir, case):
    change, needles = CLAIM_CASES[case]
    bad = workdir / f"bad-{case.replace(' ', '-')}.yaml"
    bad.write_text(yaml.safe_dump(_claims_with(change), sort_keys=False))
    _assert_rejected(_run(workdir, "--config", f"claims={bad.name}"), workdir, [bad.name, *needles])


@pytest.mark.e2e
@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_malformed_config_is_rejected(workdir, case):
    setting, needles = CONFIG_CASES[case]
    _assert_rejected(_run(workdir, "--config", setting), workdir, needles)


@pytest.mark.e2e
def test_invalid_yaml_is_rejected(workdir):
    bad = workdir / "broken.yaml"
    bad.write_text("claims:\n  - id: [unclosed\n")
    _assert_rejected(_run(workdir, "--config", f"claims={bad.name}"), workdir, ["broken.yaml", "YAML"])


@pytest.mark.e2e
def test_missing_dataset_is_rejected(workdir):
    bad = workdir / "bad-dataset.yaml"
    bad.write_text(yaml.safe_dump(_claims_with(_set([0, "params", "dataset"], "imagenet")), sort_keys=False))
    _assert_rejected(_run(workdir, "--config", f"claims={bad.name}"), workdir, ["dataset", "imagenet"])


@pytest.mark.e2e
def test_a_frozen_rule_changed_without_amendment_is_rejected(workdir):
    """The ledger freezes a rule; changing it needs a dated amendment, which the run then accepts."""
    from actlab.claims import ledger

    register = copy.deepcopy(CLAIMS)
    frozen = workdir / "ledger-test.yaml"
    ledger.record(register, frozen, commit="abc1234", date="2026-11-30")
    unchanged = _run(workdir, "-n", "--config", f"ledger={frozen.name}")
    assert unchanged.returncode == 0, (unchanged.stdout + unchanged.stderr)[-2000:]
    register["claims"][0]["decision"]["threshold"] = -2.0
    changed = workdir / "changed-rule.yaml"
    changed.write_text(yaml.safe_dump(register, sort_keys=False))
    args = ("--config", f"claims={changed.name}", f"ledger={frozen.name}")
    _assert_rejected(_run(workdir, *args), workdir, ["sigmoid-vanishing-depth", "amendments", "abc1234"])
    register["claims"][0]["amendments"].append({"date": "2026-12-01", "what": "threshold -1 -> -2", "why": "a test"})
    changed.write_text(yaml.safe_dump(register, sort_keys=False))
    result = _run(workdir, "-n", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
