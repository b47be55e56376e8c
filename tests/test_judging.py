"""The decision rule: scope, negative controls, every run counted, checks, and that every registered
rule can come out supported, refuted or inconclusive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from actlab.claims import judging, report
from actlab.claims.experiments import EXPERIMENTS
from actlab.claims.experiments.base import Cell, CellResult, Experiment, cell_roles, metric
from actlab.claims.register import expand_cells, load_yaml, resolve

REPO = Path(__file__).resolve().parents[1]
REGISTER = yaml.safe_load((REPO / "config/claims.yaml").read_text())
SOURCES = load_yaml(REPO / "config/sources.yaml")["sources"]


class _Table(Experiment):
    """A fake experiment whose metrics and divergence flags are stored arrays."""

    name = "table"

    @metric("stored values")
    def m(self, cell):
        return cell.result.arrays["m"]

    @metric("stored 0/1 values", binary=True)
    def b(self, cell):
        return cell.result.arrays["b"]


def _cell(setting: dict, values, diverged=None) -> Cell:
    arrays = {"m": np.asarray(values, float)}
    if diverged is not None:
        arrays["diverged"] = np.asarray(diverged, bool)
    cid = "_".join(f"{k}-{v}" for k, v in setting.items())
    return Cell(cid, setting, dict(setting), CellResult(arrays))


def _claim(grid: dict, **decision) -> dict:
    base = {"metric": "m", "compare": "<", "threshold": 1.0, "headline": {}, "no_control": "a test fixture"}
    return {
        "id": "t",
        "statement": "a statement",
        "source_files": ["f"],
        "experiment": "table",
        "seeds": 12,
        "grid": grid,
        "decision": {**base, **decision},
    }


def _noise(center: float, n: int = 12, seed: int = 0) -> np.ndarray:
    return center + np.random.default_rng(seed).normal(0, 0.05, n)


def test_out_of_scope_conditions_are_context_and_never_decide_the_label():
    cells = [_cell({"depth": "2"}, _noise(3.0)), _cell({"depth": "8"}, _noise(0.2))]
    claim = _claim(
        {"depth": ["2", "8"]},
        where={"depth": "8"},
        context={"where": {"depth": "2"}},
        split_by=["depth"],
        headline={"depth": 8},
    )
    verdict = judging.judge(claim, cells, _Table(), global_seed=0)
    assert verdict["verdict"] == "supported"
    roles = {c["condition"]: (c["role"], c["verdict"]) for c in verdict["conditions"]}
    assert roles == {"depth=8": ("judged", "supported"), "depth=2": ("context", "refuted")}


def test_a_negative_control_that_is_not_refuted_makes_the_claim_inconclusive():
    grid = {"init": ["he", "tiny"]}
    claim = _claim(
        grid, where={"init": "he"}, control={"where": {"init": "tiny"}}, split_by=["init"], headline={"init": "he"}
    )
    claim["decision"].pop("no_control")
    good = [_cell({"init": "he"}, _noise(0.2)), _cell({"init": "tiny"}, _noise(5.0))]
    verdict = judging.judge(claim, good, _Table(), 0)
    assert (verdict["verdict"], verdict["control_verdict"]) == ("supported", "refuted")
    blind = [_cell({"init": "he"}, _noise(0.2)), _cell({"init": "tiny"}, _noise(0.3))]
    verdict = judging.judge(claim, blind, _Table(), 0)
    assert verdict["verdict"] == "inconclusive"
    assert "negative control" in verdict["reason"] and "'supported'" in verdict["reason"]


@pytest.mark.parametrize(
    ("rule", "used", "n_diverged", "n_undefined"),
    [
        ({"count": "value", "value": 9.0}, [0.5] * 8 + [9.0] * 3, 3, 1),
        ({"count": "worst"}, [0.5] * 8 + [0.5] * 3, 3, 1),  # compare "<": the largest value the cell saw
        ({"count": "exclude", "reason": "left out for a test"}, [0.5] * 8, 3, 1),
        ({"count": "keep", "reason": "read before training"}, [0.5] * 8 + [1e30], 3, 1),  # counted, own value
    ],
)
def test_diverged_runs_count_as_the_claim_declares(rule, used, n_diverged, n_undefined):
    # 8 good seeds, one whose metric is undefined (NaN) without diverging, three diverged ones
    values = np.array([0.5] * 8 + [np.nan] + [np.nan, np.inf, 1e30])
    diverged = np.array([False] * 9 + [True] * 3)
    samples = judging.samples(
        _cell({"a": "x"}, values, diverged), _Table(), {"metric": "m", "compare": "<", "diverged": rule}
    )
    assert sorted(samples.values) == sorted(used)
    assert (samples.n_diverged, samples.n_undefined, samples.n_seeds) == (n_diverged, n_undefined, 12)


def test_a_kept_metric_of_nets_that_all_diverged_is_judged_and_their_divergence_shown():
    """Under keep the metric reads a diverged net itself (e.g. every unit lost): such a condition is
    judged on those readings, and its diverged runs are counted in the report, never hidden."""
    cell = _cell({"a": "x"}, np.full(12, 2.0), np.ones(12, bool))
    keep = {"count": "keep", "reason": "the metric reads a diverged net as 2.0"}
    verdict = judging.judge(_claim({"a": ["x"]}, diverged=keep), [cell], _Table(), 0)
    (summary,) = verdict["conditions"]
    assert (summary["n"], summary["n_diverged"], summary["estimate"]) == (12, 12, 2.0)
    assert summary["verdict"] == "refuted" and "reason" not in summary  # the test claim wants < threshold
    stand_in = {"count": "value", "value": 2.0}
    verdict = judging.judge(_claim({"a": ["x"]}, diverged=stand_in), [cell], _Table(), 0)
    assert verdict["conditions"][0]["verdict"] == "inconclusive"  # a stand-in value is no measurement


def test_a_condition_below_its_minimum_n_is_inconclusive_with_the_reason():
    values = np.r_[_noise(0.2, 4), [np.nan] * 8]
    cell = _cell({"a": "x"}, values, [False] * 4 + [True] * 8)
    claim = _claim({"a": ["x"]}, diverged={"count": "exclude", "reason": "for a test"})
    verdict = judging.judge(claim, [cell], _Table(), 0)
    (summary,) = verdict["conditions"]
    assert verdict["verdict"] == "inconclusive"
    assert summary["reason"] == "4 usable runs of 12 (8 diverged), fewer than the minimum 10"
    assert summary["estimate"] == pytest.approx(0.2, abs=0.1)  # still shown, never judged


@pytest.mark.parametrize(
    "rule",
    [
        {"count": "exclude", "reason": "for a test"},
        {"count": "value", "value": 0.0},  # would otherwise read as a perfect, zero-width estimate
        {"count": "worst"},
    ],
)
def test_a_condition_whose_every_run_diverged_is_inconclusive_with_no_estimate(rule):
    cell = _cell({"a": "x"}, np.full(12, np.nan), np.ones(12, bool))
    other = _cell({"a": "y"}, _noise(0.2, 12))  # gives "worst" a value to use
    claim = _claim({"a": ["x", "y"]}, where={"a": "x"}, context={"where": {"a": "y"}}, diverged=rule)
    verdict = judging.judge(claim, [cell, other], _Table(), 0)
    judged = next(c for c in verdict["conditions"] if c["role"] == "judged")
    assert verdict["verdict"] == "inconclusive" and verdict["estimate"] is None
    assert judged["ci95"] == [None, None] and judged["reason"].startswith("every run diverged (12 of 12)")


def test_too_few_runs_get_no_interval():
    """One usable run would otherwise give a zero-width interval."""
    cell = _cell({"a": "x"}, np.r_[0.2, [np.nan] * 11], [False] + [True] * 11)
    claim = _claim({"a": ["x"]}, diverged={"count": "exclude", "reason": "for a test"})
    verdict = judging.judge(claim, [cell], _Table(), 0)
    assert verdict["verdict"] == "inconclusive"
    assert verdict["estimate"] == pytest.approx(0.2) and verdict["ci95"] == [None, None]


def test_tuning_and_comparing_use_disjoint_seeds():
    """The lr is chosen on the first seeds only; the compared values are the other seeds."""
    fast_first = np.r_[np.full(4, 1.0), np.full(8, 50.0)]  # looks best on the tuning seeds only
    steady = np.full(12, 10.0)
    cells = [
        _cell({"act": "relu", "lr": "0.1"}, fast_first),
        _cell({"act": "relu", "lr": "1.0"}, steady),
        _cell({"act": "tanh", "lr": "0.1"}, np.full(12, 20.0)),
        _cell({"act": "tanh", "lr": "1.0"}, np.full(12, 30.0)),
    ]
    claim = _claim(
        {"act": ["relu", "tanh"], "lr": ["0.1", "1.0"]},
        tune={"over": "lr", "pick": "min", "seeds": 4},
        contrast={"over": "act", "treatment": "tanh", "baseline": "relu", "op": "ratio"},
        headline={"act": "tanh vs relu"},
        compare=">",
        min_n=8,
    )
    (cond,) = judging.conditions(claim, cells, _Table())
    assert cond["setting"]["tuned lr (baseline)"] == "0.1"
    assert list(cond["baseline"]) == [50.0] * 8  # the tuning seeds are not compared
    verdict = judging.judge(claim, cells, _Table(), 0)
    assert verdict["verdict"] == "refuted"
    # the verdict names the cells it measured (what figures draw): the tuned treatment, then baseline
    assert verdict["conditions"][0]["cells"] == ["act-tanh_lr-0.1", "act-relu_lr-0.1"]
    assert cell_roles(verdict) == {"act-tanh_lr-0.1": "judged", "act-relu_lr-0.1": "judged"}


def test_checks_take_the_worst_seed_and_their_control_must_fail():
    cells = [_cell({"act": "tanh"}, np.r_[np.full(11, 1e-10), 3e-7]), _cell({"act": "necro"}, np.full(12, 0.3))]
    claim = _claim(
        {"act": ["tanh", "necro"]},
        where={"act": "tanh"},
        control={"where": {"act": "necro"}},
        split_by=["act"],
        threshold=1e-6,
    )
    claim["kind"] = "check"
    claim["decision"].pop("no_control")
    verdict = judging.judge(claim, cells, _Table(), 0)
    assert (verdict["verdict"], verdict["estimate"], verdict["control_verdict"]) == ("verified", 3e-7, "violated")
    assert verdict["ci95"] == [None, None]
    cells[0].result.arrays["m"][3] = 2e-6
    assert judging.judge(claim, cells, _Table(), 0)["verdict"] == "violated"


def test_headline_must_name_one_judged_condition():
    cells = [_cell({"depth": d}, _noise(0.2)) for d in ("2", "8")]
    claim = _claim(
        {"depth": ["2", "8"]},
        where={"depth": "8"},
        context={"where": {"depth": "2"}},
        split_by=["depth"],
        headline={"depth": 2},
    )
    with pytest.raises(judging.DecisionError, match="matches 0 judged conditions"):
        judging.judge(claim, cells, _Table(), 0)


# ----------------------------------------------------------------- every registered rule can fail


def _world(claim: dict, judged_holds: bool, control_holds: bool) -> list[Cell]:
    """Cells whose metrics put judged and control conditions on the chosen side of every part of the rule."""
    cells = None
    for part in judging.parts(claim["decision"]):
        part_cells = _part_world(claim, part, judged_holds, control_holds)
        if cells is None:
            cells = part_cells
        for cell, part_cell in zip(cells, part_cells, strict=True):
            cell.result.arrays[part["metric"]] = part_cell.result.arrays["m"]
    return cells


def _part_world(claim: dict, decision: dict, judged_holds: bool, control_holds: bool) -> list[Cell]:
    experiment = EXPERIMENTS[claim["experiment"]]
    binary = decision["metric"] in experiment.binary_metrics
    contrast = decision.get("contrast")
    n = claim["seeds"]
    threshold, compare = decision["threshold"], decision["compare"]

    def values(holds: bool) -> np.ndarray:
        if compare == "within":
            low, high = threshold
            target = (low + high) / 2 if holds else high + (high - low)
        elif contrast and contrast.get("op") == "ratio":
            target = threshold * (2.0 if (compare == ">") == holds else 0.5)
        else:
            margin = max(abs(threshold), 0.1)
            target = threshold + (margin if (compare == ">") == holds else -margin)
        if binary and compare != "within":  # every run on one side: the clearest world a 0/1 rule can show
            return np.full(n, 1.0 if (compare == ">") == holds else 0.0)
        if binary:
            ones = int(round(min(max(target, 0.0), 1.0) * n))
            return np.r_[np.ones(ones), np.zeros(n - ones)]
        base = 10.0 if contrast else 0.0
        spread = np.random.default_rng(0).normal(0, 0.02 * max(abs(target), 0.1), n)
        return (base * target if contrast and contrast.get("op") == "ratio" else base + target) + spread

    cells = []
    filters = judging.role_filters(decision)
    for cid, spec in claim["cells"].items():
        setting = spec["setting"]
        if contrast and str(setting[contrast["over"]]) == str(contrast["baseline"]):
            noise = 0.1 * (threshold[1] - threshold[0]) if compare == "within" else 0.05  # well inside a band
            v = np.full(n, 10.0) + np.random.default_rng(1).normal(0, noise, n)
        elif filters["control"] is not None and judging._matches(setting, filters["control"]):
            v = values(control_holds)
        else:
            v = values(judged_holds)
        cells.append(Cell(cid, setting, spec["params"], CellResult({"m": v})))
    return cells


class _Stored:
    """Wraps a registered experiment type so that its metric reads the constructed values."""

    def __init__(self, experiment: Experiment):
        self.metrics = experiment.metrics
        self.binary_metrics = experiment.binary_metrics

    def metric(self, name, cell):
        return cell.result.arrays[name]

    def diverged(self, cell):
        return None


CLAIMS = resolve(REGISTER, SOURCES, "full")


@pytest.mark.parametrize("claim", CLAIMS, ids=[c["id"] for c in CLAIMS])
def test_every_registered_rule_can_come_out_either_way(claim):
    """Constructed data on the claimed side must be supported (verified), on the other side refuted
    (violated), and a control that does not fail must make the verdict inconclusive."""
    experiment = _Stored(EXPERIMENTS[claim["experiment"]])
    has_control = "control" in claim["decision"]
    yes, no = ("verified", "violated") if claim.get("kind") == "check" else ("supported", "refuted")
    holds = judging.judge(claim, _world(claim, True, False), experiment, 0)
    assert holds["verdict"] == yes, holds["conditions"]
    fails = judging.judge(claim, _world(claim, False, False), experiment, 0)
    assert fails["verdict"] == no, fails["conditions"]
    if has_control:
        assert holds["control_verdict"] == no
        blind = judging.judge(claim, _world(claim, True, True), experiment, 0)
        assert blind["verdict"] == "inconclusive" and "negative control" in blind["reason"]


def test_every_claim_has_a_control_or_says_why_not():
    for claim in CLAIMS:
        decision = claim["decision"]
        assert ("control" in decision) != ("no_control" in decision) or claim.get("kind") == "check", claim["id"]
        assert expand_cells(claim)


def test_a_second_part_is_judged_in_the_same_family():
    """``also`` judges a second metric on the same conditions; its label names the metric."""
    cells = [_cell({"depth": d}, _noise(0.2, seed=k)) for k, d in enumerate(("5", "20"))]
    for c in cells:
        c.result.arrays["b"] = np.r_[np.ones(11), np.zeros(1)]

    claim = _claim(
        {"depth": ["5", "20"]},
        split_by=["depth"],
        headline={"depth": 20},
        also=[{"metric": "b", "compare": "<", "threshold": 0.5}],
    )
    verdict = judging.judge(claim, cells, _Table(), 0)
    labels = {c["condition"]: c["verdict"] for c in verdict["conditions"]}
    assert labels == {
        "depth=5": "supported",
        "depth=20": "supported",
        "b: depth=5": "refuted",
        "b: depth=20": "refuted",
    }
    assert verdict["verdict"] == "mixed" and "b: depth=20" in verdict["boundary"]
    assert all(c["decision_level"] == pytest.approx(1 - 0.05 / 4) for c in verdict["conditions"])


def test_paired_seeds_compare_each_seed_with_itself():
    """A small, consistent per-seed difference under a large between-seed spread: only the paired
    comparison sees it, and a seed unusable on either side leaves the pair."""
    spread = np.random.default_rng(3).normal(0, 1.0, 12)
    cells = [
        _cell({"act": "new"}, 5.0 + spread + 0.1),
        _cell({"act": "old"}, 5.0 + spread, diverged=[True] + [False] * 11),
    ]
    claim = _claim(
        {"act": ["new", "old"]},
        contrast={"over": "act", "treatment": "new", "baseline": "old"},
        compare=">",
        threshold=0.0,
        headline={"act": "new vs old"},
    )
    unpaired = judging.judge(claim, cells, _Table(), 0)
    paired = judging.judge({**claim, "paired_seeds": True}, cells, _Table(), 0)
    assert unpaired["verdict"] == "inconclusive"
    assert paired["verdict"] == "supported"
    assert paired["estimate"] == pytest.approx(0.1)
    (cond,) = judging.conditions({**claim, "paired_seeds": True}, cells, _Table())
    assert len(cond["values"]) == len(cond["baseline"]) == 11  # seed 0 diverged in the baseline cell


def test_a_context_cell_with_fewer_seeds_is_paired_on_the_seeds_both_trained():
    """A context treatment trained on the first 10 seeds (context.seeds) against a judged baseline
    trained on all 12: the paired condition and the leaderboard use seeds 0-9, each with itself."""
    spread = np.random.default_rng(5).normal(0, 1.0, 12)
    cells = [
        _cell({"act": "new", "depth": "8"}, 5.0 + spread + 0.1),
        _cell({"act": "old", "depth": "8"}, 5.0 + spread),
        _cell({"act": "new", "depth": "2"}, (5.0 + spread + 0.2)[:10]),  # context: the first 10 seeds
        _cell({"act": "old", "depth": "2"}, 5.0 + spread),  # also 12: here the judged filter selects it
    ]
    claim = _claim(
        {"act": ["new", "old"], "depth": ["8", "2"]},
        where=[{"depth": "8"}, {"act": "old"}],
        context={"where": {"depth": "2"}, "seeds": 10},
        contrast={"over": "act", "treatment": "new", "baseline": "old"},
        split_by=["depth"],
        compare=">",
        threshold=0.0,
        headline={"depth": "8", "act": "new vs old"},
    )
    claim.update(paired_seeds=True, leaderboard={"over": "act", "by": ["depth"], "best": "max"})
    verdict = judging.judge(claim, cells, _Table(), 0)
    context = next(c for c in verdict["conditions"] if c["role"] == "context")
    assert context["n"] == [10, 10] and context["estimate"] == pytest.approx(0.2)
    assert verdict["context_seeds"] == 10 and verdict["n_seeds"] == 12
    assert "outside the judged and control conditions trained the first 10 seeds" in report.finding(verdict)
    board = {tuple(g["group"].values()): g["rows"] for g in verdict["leaderboard"]["groups"]}
    assert [(r["label"], r["n"]) for r in board[("2",)]] == [("new", 10), ("old", 10)]
    assert [(r["label"], r["n"]) for r in board[("8",)]] == [("new", 12), ("old", 12)]


def test_a_leaderboard_ranks_every_competitor_per_group_counting_every_run():
    """Per group of ``by``, competitors ranked best first on the seeds usable for all of them; a
    diverged run counts by the claim's rule (here the worst value of its cell)."""
    spread = np.random.default_rng(4).normal(0, 0.01, 12)
    means = {"a": 0.9, "b": 0.8, "c": 0.5}
    cells = [
        _cell({"act": act, "task": task}, m + spread + (0.05 if task == "y" and act == "c" else 0))
        for task in ("x", "y")
        for act, m in means.items()
    ]
    cells[0].result.arrays["diverged"] = np.r_[True, np.zeros(11, bool)]  # act a, task x: one run diverged
    claim = _claim(
        {"act": list(means), "task": ["x", "y"]},
        split_by=["act", "task"],
        headline={"act": "a", "task": "x"},
        diverged={"count": "worst", "reason": "a diverged net counts as its cell's worst run"},
        compare=">",
        threshold=0.0,
    )
    claim.update(paired_seeds=True, leaderboard={"over": "act", "by": ["task"], "best": "max"})
    board = judging.judge(claim, cells, _Table(), 0)["leaderboard"]
    assert board["over"] == "act" and [g["group"] for g in board["groups"]] == [{"task": "x"}, {"task": "y"}]
    x = board["groups"][0]["rows"]
    assert [r["label"] for r in x] == ["a", "b", "c"] and [r["rank"] for r in x] == [1.0, 2.0, 3.0]
    assert all(r["n"] == 12 for r in x) and x[0]["rank_ci95"] == [1.0, 1.0]
    assert x[0]["mean"] == pytest.approx(0.9 + (spread[1:].sum() + spread[1:].min()) / 12, abs=1e-6)
    assert x[0]["ci95"][0] <= x[0]["mean"] <= x[0]["ci95"][1]

    claim["decision"]["diverged"] = {"count": "exclude", "reason": "a diverged net has no accuracy"}
    cells[3].result.arrays["diverged"] = np.r_[np.ones(3, bool), np.zeros(9, bool)]  # act a, task y: 9 left
    y = judging.judge(claim, cells, _Table(), 0)["leaderboard"]["groups"][1]["rows"]
    assert [r["label"] for r in y] == ["b", "c", "a"] and "rank" not in y[2]
    assert "9 usable runs of 12, fewer than the minimum 10" in y[2]["reason"]
    assert [r["n"] for r in y[:2]] == [12, 12]
