"""Turn a claim's trained cells into its verdict, following the preregistered decision rule.

The rule (``decision`` in the register) groups cells into *conditions*:

1. ``where``: the cells inside the claim's scope (a value or a list of values per grid axis);
   ``control.where`` and ``context.where`` select the negative control's and the context's cells,
   which the same rule turns into conditions of their own;
2. ``tune``: within each group of the other axes keep the value of ``tune.over`` whose mean
   metric is best (``pick: min`` or ``max``), measured on the first ``tune.seeds`` seeds only,
   which are then left out of the comparison (tuning and comparing on disjoint seeds);
3. ``contrast``: compare ``treatment`` cells with the ``baseline`` cell of axis ``over``
   (``op``: ``difference`` or ``ratio`` of the seed means);
4. ``split_by``: one condition per value of these axes.

Every run counts: a seed whose net diverged (see :meth:`Experiment.diverged`) is counted as the
claim's ``diverged`` rule says (a stated value, the worst value seen, or excluded for a stated
reason), and a condition with fewer than ``min_n`` usable seeds is ``inconclusive``, with the reason.

An empirical claim's judged conditions are decided by :func:`actlab.claims.stats.holm_step_down` and
combined by :func:`actlab.claims.stats.combine`; its negative control must come out ``refuted`` by the
same rule, or the claim's label is ``inconclusive`` (the rule could not have failed). A check
(``kind: check``) is ``verified`` when the worst value over every seed of every judged condition
lies on the claimed side, else ``violated``: no interval, since nothing in it is random.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actlab.claims import stats
from actlab.claims.experiments.base import Cell, Experiment
from actlab.engine.seeding import key_to_ints

ROLES = ("judged", "control", "context")
DEFAULT_MIN_N = 10


class DecisionError(ValueError):
    """A decision rule that does not fit the claim's grid; the message names the key."""


@dataclass
class Planned:
    """A condition before any metric is read: its label, role and candidate cells.

    ``treatment`` (and ``baseline``, for a contrast) hold more than one cell only when the rule
    tunes an axis: the candidates differ in ``tune.over`` alone.
    """

    label: str
    role: str
    setting: dict[str, str]
    treatment: list[Cell]
    baseline: list[Cell] = field(default_factory=list)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(setting: dict, where: dict | list[dict]) -> bool:
    """Whether a cell's setting passes a filter: a mapping, or a list of mappings (any of them)."""
    return any(
        all(str(setting[key]) in [str(w) for w in _as_list(wanted)] for key, wanted in one.items())
        for one in _as_list(where)
    )


def _label(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "all"


def role_filters(decision: dict) -> dict[str, dict | None]:
    """Role -> the ``where`` filter that selects its cells (``None``: the role is absent)."""
    return {
        "judged": decision.get("where") or {},
        "control": (decision.get("control") or {}).get("where"),
        "context": (decision.get("context") or {}).get("where"),
    }


def context_seeds(claim: dict) -> int:
    """How many seeds a cell outside the judged and control filters trains: the first
    ``decision.context.seeds`` of the claim's seeds, or all of them (at most the claim's seeds,
    which a profile may lower)."""
    wanted = ((claim.get("decision") or {}).get("context") or {}).get("seeds")
    return min(wanted or claim["seeds"], claim["seeds"])


def decides(setting: dict, decision: dict) -> bool:
    """Whether a cell with this setting is selected by the judged or the control filter.

    Such a cell trains every seed of the claim; any other (context, or only drawn) trains the
    first ``context.seeds`` of them when the rule says so (:func:`actlab.claims.register.expand_cells`).
    """
    filters = role_filters(decision)
    return any(filters[role] is not None and _matches(setting, filters[role]) for role in ("judged", "control"))


def plan(claim: dict, cells: list[Cell]) -> list[Planned]:
    """Group the claim's cells into conditions of every role; raises :class:`DecisionError`.

    Needs only the cells' settings, so the register's validation runs it before any job.
    """
    decision = claim["decision"]
    tune = (decision.get("tune") or {}).get("over")
    contrast = decision.get("contrast")
    split = list(decision.get("split_by") or [])
    planned = []
    for role, where in role_filters(decision).items():
        if where is None:
            continue
        chosen = [c for c in cells if _matches(c.setting, where)]
        if not chosen and role != "context":  # a profile's smaller grid may leave no context
            raise DecisionError(f"decision: the {role} filter {where} selects no cell")
        groups: dict[tuple, dict[str, list[Cell]]] = defaultdict(lambda: defaultdict(list))
        for c in chosen:
            side = str(c.setting[contrast["over"]]) if contrast else ""
            groups[tuple((a, c.setting[a]) for a in split)][side].append(c)
        for key, sides in groups.items():
            for members in sides.values():
                rest = {tuple((a, v) for a, v in m.setting.items() if a != tune) for m in members}
                if len(rest) != 1:
                    ids = ", ".join(m.id for m in members)
                    raise DecisionError(
                        f"decision: the {role} conditions leave several cells per condition ({ids}); "
                        "add where, split_by or tune"
                    )
            if not contrast:
                planned.append(Planned(_label(dict(key)), role, dict(key), sides[""]))
                continue
            baseline = str(contrast["baseline"])
            for treatment in map(str, _as_list(contrast["treatment"])):
                if treatment not in sides or baseline not in sides:
                    continue  # this role's filter keeps only some sides of the contrast
                setting = {**dict(key), contrast["over"]: f"{treatment} vs {baseline}"}
                planned.append(Planned(_label(setting), role, setting, sides[treatment], sides[baseline]))
    labels = [(p.role, p.label) for p in planned]
    for role in ("judged", "control"):
        if role_filters(decision)[role] is not None and not any(r == role for r, _ in labels):
            raise DecisionError(f"decision: the {role} filter leaves no complete condition")
    if len(set(labels)) != len(labels):
        raise DecisionError("decision: two conditions share a label; grid labels must be unique")
    return planned


def headline(claim: dict, planned: list[Planned]) -> Planned:
    """The preregistered headline: the one judged condition whose setting matches ``decision.headline``.

    Under the quick profile, whose grids are subsets, a headline outside the grid falls back to
    the last judged condition.
    """
    wanted = claim["decision"]["headline"]
    judged = [p for p in planned if p.role == "judged"]
    found = [p for p in judged if all(str(p.setting.get(k)) == str(v) for k, v in wanted.items())]
    if not found and claim.get("profile") == "quick":
        return judged[-1]
    if len(found) != 1:
        raise DecisionError(
            f"decision.headline {wanted} matches {len(found)} judged conditions (must be exactly one); "
            f"judged conditions: {'; '.join(p.label for p in judged)}"
        )
    return found[0]


@dataclass
class Samples:
    """A cell's usable per-seed values after the divergence rule, with what was left out."""

    values: np.ndarray
    n_seeds: int
    n_diverged: int
    n_undefined: int
    #: which of the seeds asked for are usable (``values`` are ``all_values[usable]``), shape (n_seeds,)
    usable: np.ndarray
    #: every seed's value after the divergence rule, NaN where not usable, shape (n_seeds,)
    all_values: np.ndarray
    #: the rule is ``keep``: a diverged run's own value of the metric is a measurement (e.g. a
    #: metric that defines a diverged net as having lost every unit), not a stand-in
    diverged_kept: bool = False


def samples(
    cell: Cell, experiment: Experiment, decision: dict, seeds: slice = slice(None), baseline: bool = False
) -> Samples:
    """The decision metric of ``cell`` over ``seeds``, every run accounted for.

    Diverged seeds follow ``decision.diverged.count``: ``value`` (replaced by ``diverged.value``),
    ``worst`` (replaced by the value of the cell's other seeds least favourable to the claim: the
    smallest for ``>``, the largest for ``<``, and the reverse in a contrast's ``baseline``), ``exclude``, or
    ``keep`` (the metric's own value, e.g. read at initialization, or defined for a diverged net;
    a diverged run whose metric is not finite is left out). Diverged runs are counted under every
    rule. A non-finite value of a seed that did not diverge means the metric is undefined for that
    net (e.g. no dead unit to revive): it is left out and counted.
    """
    raw = np.asarray(experiment.metric(decision["metric"], cell), float)[seeds].copy()
    flags = experiment.diverged(cell)
    diverged = np.zeros(len(raw), bool) if flags is None else np.asarray(flags, bool)[seeds]
    rule = decision.get("diverged") or {"count": "exclude"}
    undefined = ~np.isfinite(raw) & ~diverged
    keep = ~undefined
    if rule["count"] == "value":
        raw[diverged] = rule["value"]
    elif rule["count"] == "worst":
        ok = raw[~diverged & ~undefined]
        low_is_worse = (decision["compare"] == ">") != baseline
        worst = (np.min(ok) if low_is_worse else np.max(ok)) if len(ok) else np.nan
        raw[diverged] = worst
        keep &= np.isfinite(raw)
    elif rule["count"] == "keep":
        keep &= np.isfinite(raw)
    else:
        keep &= ~diverged
    return Samples(
        raw[keep],
        len(raw),
        int(diverged.sum()),
        int(undefined.sum()),
        keep,
        np.where(keep, raw, np.nan),
        rule["count"] == "keep",
    )


def _tuned(candidates: list[Cell], experiment: Experiment, decision: dict) -> Cell:
    tune = decision.get("tune")
    if not tune or len(candidates) == 1:
        return candidates[0]
    seeds = slice(0, tune["seeds"]) if tune.get("seeds") else slice(None)
    means = [
        np.mean(s.values) if len(s.values) else np.nan
        for s in (samples(c, experiment, decision, seeds) for c in candidates)
    ]
    if not np.isfinite(means).any():
        return candidates[0]
    pick = np.nanargmin if tune.get("pick", "min") == "min" else np.nanargmax
    return candidates[int(pick(means))]


def parts(decision: dict) -> list[dict]:
    """The rule's parts: the decision itself, then one per ``also`` entry (its own metric, compare
    and threshold, the same scope, grouping, divergence rule and control)."""
    extra = [{**decision, **{k: a[k] for k in ("metric", "compare", "threshold")}} for a in decision.get("also") or []]
    return [decision, *extra]


def conditions(
    claim: dict, cells: list[Cell], experiment: Experiment, planned: list[Planned] | None = None
) -> list[dict[str, Any]]:
    """Apply the decision rule, every part of it; one dict per condition with its usable samples.

    Each dict has ``label`` (prefixed by the metric for an ``also`` part), ``role``, ``metric``,
    ``compare``, ``threshold``, ``setting`` (axis -> value, plus the tuned values), ``cells`` (the
    ids of the cells it was measured on: the tuned treatment, then the tuned baseline), ``values``
    (the treatment's usable per-seed values), ``counts`` and, for a contrast, ``baseline`` values
    and ``op``. ``planned`` is :func:`plan`'s result, if the caller has it already.
    """
    planned = plan(claim, cells) if planned is None else planned
    out = []
    for k, decision in enumerate(parts(claim["decision"])):
        prefix = f"{decision['metric']}: " if k else ""
        for cond in _part_conditions(planned, decision, experiment, bool(claim.get("paired_seeds"))):
            cond["label"] = prefix + cond["label"]
            out.append(cond)
    return out


def _part_conditions(
    planned: list[Planned], decision: dict, experiment: Experiment, paired: bool
) -> list[dict[str, Any]]:
    tune = decision.get("tune")
    compared = slice(tune["seeds"], None) if tune and tune.get("seeds") else slice(None)
    rule = {k: decision[k] for k in ("metric", "compare", "threshold")}
    binary = decision["metric"] in experiment.binary_metrics
    out = []
    for p in planned:
        t_cell = _tuned(p.treatment, experiment, decision)
        t = samples(t_cell, experiment, decision, compared)
        setting = dict(p.setting)
        if tune:
            setting[f"tuned {tune['over']}"] = t_cell.setting[tune["over"]]
        cond = {"label": p.label, "role": p.role, **rule, "binary": binary, "setting": setting}
        cond.update({"values": t.values, "counts": [t], "cells": [t_cell.id]})
        if p.baseline:
            b_cell = _tuned(p.baseline, experiment, decision)
            b = samples(b_cell, experiment, decision, compared, baseline=True)
            if tune:
                setting[f"tuned {tune['over']} (baseline)"] = b_cell.setting[tune["over"]]
            cond.update({"baseline": b.values, "op": decision["contrast"].get("op", "difference"), "counts": [t, b]})
            if paired:  # seed k of both cells started from the same draws: compare the seeds usable in both
                n = min(t.n_seeds, b.n_seeds)  # a context cell may train fewer seeds (context.seeds)
                both = t.usable[:n] & b.usable[:n]
                cond.update({"values": t.all_values[:n][both], "baseline": b.all_values[:n][both], "paired": True})
            cond["cells"].append(b_cell.id)
        out.append(cond)
    return out


def _all_diverged(cond: dict) -> bool:
    """Every run of the condition (or of one side of a contrast) diverged."""
    return any(_nothing_measured(s) for s in cond["counts"])


def _nothing_measured(s: Samples) -> bool:
    """Every run diverged and the rule put a stand-in in place of each (not ``keep``)."""
    return bool(s.n_seeds) and s.n_diverged == s.n_seeds and not s.diverged_kept


def _shortfall(cond: dict, min_n: int) -> str | None:
    """Why a condition cannot be judged (every run diverged, too few usable seeds), or None.

    A condition whose every run diverged is never judged under ``value``, ``worst`` or ``exclude``:
    its values would all be the stated or worst value, an estimate of the rule, not of the net.
    Under ``keep`` each diverged run's value is the metric's own reading of it, so it is judged.
    """
    for name, s in zip(("treatment", "baseline"), cond["counts"], strict=False):
        which = f" ({name})" if len(cond["counts"]) == 2 else ""
        if _nothing_measured(s):
            return f"every run{which} diverged ({s.n_diverged} of {s.n_seeds}): nothing was measured"
        if len(s.values) < min_n:
            lost = []
            if s.n_diverged:
                lost.append(f"{s.n_diverged} diverged")
            if s.n_undefined:
                lost.append(f"{s.n_undefined} with the metric undefined")
            return (
                f"{len(s.values)} usable runs{which} of {s.n_seeds}"
                + (f" ({', '.join(lost)})" if lost else "")
                + f", fewer than the minimum {min_n}"
            )
    if cond.get("paired") and len(cond["values"]) < min_n:
        return f"{len(cond['values'])} seeds usable in both cells of the pair, fewer than the minimum {min_n}"
    return None


def _summary_base(cond: dict) -> dict:
    counts = cond["counts"]
    pick = (lambda f: [f(s) for s in counts]) if len(counts) == 2 else (lambda f: f(counts[0]))
    n_used = [len(cond["values"])] * 2 if cond.get("paired") else pick(lambda s: len(s.values))
    return {
        "condition": cond["label"],
        "role": cond["role"],
        "metric": cond["metric"],
        "compare": cond["compare"],
        "threshold": cond["threshold"],
        "setting": cond["setting"],
        "cells": cond["cells"],
        "n": n_used,
        "n_seeds": pick(lambda s: s.n_seeds),
        "n_diverged": pick(lambda s: s.n_diverged),
        "n_undefined": pick(lambda s: s.n_undefined),
    }


def _interval_fn(cond: dict, seed: list):
    def at(level: float) -> tuple[float, float]:
        return stats.interval(
            cond["values"],
            binary=cond["binary"] and "baseline" not in cond,
            baseline=cond.get("baseline"),
            op=cond.get("op", "difference"),
            paired=cond.get("paired", False),
            level=level,
            seed=key_to_ints(seed),
        )

    return at


def judge_family(conds: list[dict], decision: dict, seed: list, holm: bool = True) -> list[dict]:
    """Summaries of one role's conditions, decided together under Holm's step-down (``holm``),
    or each on its own 95% interval (the context, which is summarized, never judged)."""
    min_n = decision.get("min_n", DEFAULT_MIN_N)
    summaries, testable, tests = [], [], []
    for cond in conds:
        summary = _summary_base(cond)
        reason = _shortfall(cond, min_n)
        fn = _interval_fn(cond, [*seed, cond["label"]])
        summary.update({"estimate": None, "ci95": [None, None]})
        if len(cond["values"]) and len(cond.get("baseline", [0.0])) and not _all_diverged(cond):
            est = stats.estimate(cond["values"], cond.get("baseline"), cond.get("op", "difference"))
            summary["estimate"] = stats.round_sig(est)
            if not reason:  # no interval from too few runs (one run would give a zero-width one)
                summary["ci95"] = [stats.round_sig(x) for x in fn(0.95)]
        if reason:
            summary.update({"verdict": "inconclusive", "reason": reason, "decision_ci": [None, None]})
            summary["decision_level"] = None
        else:
            testable.append(summary)
            tests.append((fn, cond["compare"], cond["threshold"]))
        summaries.append(summary)
    results = stats.holm_step_down(tests) if holm else [stats.holm_step_down([t])[0] for t in tests]
    for summary, result in zip(testable, results, strict=True):
        summary.update(
            {
                "verdict": result["verdict"],
                "decision_ci": [stats.round_sig(x) for x in result["ci"]],
                "decision_level": round(result["level"], 6),
            }
        )
    return summaries


def judge_check(conds: list[dict]) -> list[dict]:
    """Summaries of a check's conditions: the worst value over every seed, no interval."""
    summaries = []
    for cond in conds:
        summary = _summary_base(cond)
        values = cond["values"]
        counts = cond["counts"][0]
        if counts.n_diverged or not len(values):
            worst, verdict = None, "violated"
            summary["reason"] = f"{counts.n_diverged} of {counts.n_seeds} runs diverged, {len(values)} measured"
        else:
            worst = float(np.max(values) if cond["compare"] == "<" else np.min(values))
            verdict = (
                "verified"
                if stats.side_of((worst, worst), cond["compare"], cond["threshold"]) == "supported"
                else "violated"
            )
        estimate = None if worst is None else stats.round_sig(worst)
        summary.update({"estimate": estimate, "ci95": [None, None], "verdict": verdict})
        summaries.append(summary)
    return summaries


def leaderboard(claim: dict, cells: list[Cell], experiment: Experiment, global_seed: int) -> dict:
    """The claim's ``leaderboard``: per group of its ``by`` axes, every value of axis ``over`` ranked.

    Each competitor is measured on the decision metric, every run counted by the claim's
    ``diverged`` rule (a ``worst`` value is the least favourable in the leaderboard's direction,
    ``best``). A competitor with fewer than ``min_n`` usable seeds is listed with the reason and
    not ranked; the others are ranked on the seeds usable for all of them, among those every one
    trained (the claim has paired seeds), if at least ``min_n``: each mean gets the interval of
    :func:`actlab.claims.stats.interval` and each rank (1 = best) the percentile-bootstrap interval
    of :func:`actlab.claims.stats.rank_intervals`.

    Returns
    -------
    dict
        ``over``, ``best`` and ``groups``: one per group, with ``group`` (axis -> value) and
        ``rows``, ranked ones best first, each with ``label``, ``cell``, ``mean``, ``ci95``,
        ``rank``, ``rank_ci95`` and ``n`` (seeds used), or ``reason`` when not ranked.
    """
    spec = claim["leaderboard"]
    best = spec.get("best", "max")
    rule = {**claim["decision"], "compare": ">" if best == "max" else "<"}
    min_n = rule.get("min_n", DEFAULT_MIN_N)
    by = list(spec.get("by") or [])
    groups: dict[tuple, dict[str, Cell]] = defaultdict(dict)
    for cell in cells:
        groups[tuple((axis, cell.setting[axis]) for axis in by)][cell.setting[spec["over"]]] = cell
    out = []
    for key, members in groups.items():
        measured = {label: samples(cell, experiment, rule) for label, cell in members.items()}
        short = {label: s for label, s in measured.items() if len(s.values) < min_n}
        ranked = {label: s for label, s in measured.items() if label not in short}
        n = min((s.n_seeds for s in ranked.values()), default=0)  # the seeds every competitor trained
        usable = np.logical_and.reduce([s.usable[:n] for s in ranked.values()]) if ranked else np.zeros(0, bool)
        rows = [
            {
                "label": label,
                "cell": members[label].id,
                "n": len(s.values),
                "reason": f"{len(s.values)} usable runs of {s.n_seeds}, fewer than the minimum {min_n}",
            }
            for label, s in short.items()
        ]
        if ranked and usable.sum() >= min_n:
            table = np.stack([s.all_values[:n][usable] for s in ranked.values()])
            seed = key_to_ints([global_seed, "leaderboard", claim["id"], *(v for _, v in key)])
            rank, lo, hi = stats.rank_intervals(table, best=best, seed=seed)
            top = []
            for i, label in enumerate(ranked):
                top.append(
                    {
                        "label": label,
                        "cell": members[label].id,
                        "mean": stats.round_sig(float(np.mean(table[i]))),
                        "ci95": [stats.round_sig(x) for x in stats.interval(table[i], seed=seed)],
                        "rank": float(rank[i]),
                        "rank_ci95": [float(lo[i]), float(hi[i])],
                        "n": int(table.shape[1]),
                    }
                )
            rows = sorted(top, key=lambda r: r["rank"]) + rows
        elif ranked:
            rows += [
                {
                    "label": label,
                    "cell": members[label].id,
                    "n": int(usable.sum()),
                    "reason": f"{int(usable.sum())} seeds usable for every competitor, fewer than the minimum {min_n}",
                }
                for label in ranked
            ]
        out.append({"group": dict(key), "rows": rows})
    return {"over": spec["over"], "best": best, "groups": out}


def judge(claim: dict, cells: list[Cell], experiment: Experiment, global_seed: int) -> dict:
    """The verdict dictionary of a claim (the contract read by tracking and the report)."""
    decision = claim["decision"]
    kind = claim.get("kind", "claim")
    planned = plan(claim, cells)
    conds = conditions(claim, cells, experiment, planned)
    binary = decision["metric"] in experiment.binary_metrics
    by_role = {role: [c for c in conds if c["role"] == role] for role in ROLES}
    summaries: list[dict] = []
    for role in ROLES:
        if not by_role[role]:
            continue
        if kind == "check":
            summaries += judge_check(by_role[role])
        else:
            seed = [global_seed, "judge", claim["id"], role]
            summaries += judge_family(by_role[role], decision, seed, holm=role != "context")
    judged = [s for s in summaries if s["role"] == "judged"]
    controls = [s for s in summaries if s["role"] == "control"]
    if kind == "check":
        verdict = "verified" if all(s["verdict"] == "verified" for s in judged) else "violated"
        control_verdict = "violated" if all(s["verdict"] == "violated" for s in controls) else "verified"
        must, worst = "violated", [s["estimate"] for s in judged]
        estimate = None if None in worst else (max(worst) if decision["compare"] == "<" else min(worst))
        head = {"condition": "all judged conditions", "estimate": estimate, "ci95": [None, None]}
    else:
        verdict = stats.combine([s["verdict"] for s in judged])
        control_verdict = stats.combine([s["verdict"] for s in controls])
        must = "refuted"
        head_label = headline(claim, planned).label
        head = next(s for s in judged if s["condition"] == head_label)
    reason = None
    if controls and control_verdict != must:
        failed = ", ".join(f"{s['condition']} ({s['verdict']})" for s in controls if s["verdict"] != must)
        reason = (
            f"the negative control did not come out {must} ({failed}), so this rule could not be shown to "
            f"fail; the judged conditions alone would give '{verdict}'"
        )
        verdict = "inconclusive"
    result = {
        "claim": claim["id"],
        "kind": kind,
        "statement": claim["statement"].strip(),
        "source": claim["source_files"],
        "group": claim.get("group"),
        "experiment": claim["experiment"],
        "verdict": verdict,
        "metric": decision["metric"],
        "metric_meaning": experiment.metrics[decision["metric"]],
        "compare": decision["compare"],
        "threshold": decision["threshold"],
        "estimate": head["estimate"],
        "ci95": head["ci95"],
        "decision_ci": head.get("decision_ci", [None, None]),
        "decision_level": head.get("decision_level"),
        "headline_condition": head["condition"],
        "n_seeds": claim["seeds"],
        "context_seeds": context_seeds(claim),
        "n_used": head.get("n"),
        "ci_method": (
            "worst value over every seed (a check: no interval)"
            if kind == "check"
            else (
                "exact Clopper-Pearson interval of the proportion"
                if binary
                else "BCa bootstrap over seeds (10,000 resamples, at the expanded level of Hesterberg 2015)"
            )
            + "; verdicts use Holm's step-down across the judged conditions (family-wise 95%)"
        ),
        "decision": decision,
        "amendments": claim.get("amendments", []),
        "quote": claim.get("quote"),
        "conditions": summaries,
        "cells": [c.id for c in cells],
    }
    if reason:
        result["reason"] = reason
    if controls:
        result["control_verdict"] = control_verdict
    if verdict in ("mixed", "partly supported", "partly refuted"):
        result["boundary"] = stats.boundary(judged)
    if claim.get("leaderboard"):
        result["leaderboard"] = leaderboard(claim, cells, experiment, global_seed)
    return result
