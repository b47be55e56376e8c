"""Turn a claim's trained cells into its verdict, following the preregistered decision rule.

The rule (``decision`` in the register) is applied in this order:

1. ``where``: keep the cells whose settings match (a value or a list of values per grid axis);
2. ``tune``: within each group of the other axes keep the value of ``tune.over`` whose mean
   metric is best (``pick: min`` or ``max``) - e.g. a learning rate tuned per activation;
3. ``contrast``: compare ``treatment`` cells with the ``baseline`` cell of axis ``over``
   (``op``: ``difference`` or ``ratio`` of the seed means, bootstrapped independently);
4. ``split_by``: one condition per value of these axes, so the verdict can be ``mixed``.

Each condition's estimate and 95% interval are checked against ``compare`` / ``threshold`` by
:mod:`actlab.stats`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from actlab import stats
from actlab.experiments.base import Cell, Experiment
from actlab.seeding import key_to_ints

OPS = {"difference": lambda t, b: t - b, "ratio": lambda t, b: t / b}


def _matches(params: dict, where: dict) -> bool:
    for key, wanted in where.items():
        allowed = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
        if str(params[key]) not in allowed:
            return False
    return True


def _group_key(params: dict, axes: list[str], drop: set[str]) -> tuple:
    return tuple((a, params[a]) for a in axes if a not in drop)


def conditions(claim: dict, cells: list[Cell], experiment: Experiment) -> list[dict[str, Any]]:
    """Apply the decision rule; returns one dict per condition with the per-seed samples.

    Each dict has ``label``, ``setting`` (axis -> value), ``values`` (per-seed metric of the
    treatment) and, for a contrast, ``baseline`` values and the ``op``.
    """
    decision = claim["decision"]
    axes = list(claim.get("grid", {}) or {})
    chosen = [c for c in cells if _matches(c.setting, decision.get("where") or {})]
    values = {c.id: experiment.metric(decision["metric"], c) for c in chosen}

    tune = decision.get("tune")
    if tune:
        groups = defaultdict(list)
        for c in chosen:
            groups[_group_key(c.setting, axes, {tune["over"]})].append(c)
        pick = np.nanargmin if tune.get("pick", "min") == "min" else np.nanargmax
        chosen = []
        for group in groups.values():
            means = [np.nanmean(values[c.id]) if np.isfinite(values[c.id]).any() else np.nan for c in group]
            chosen.append(group[int(pick(means))] if np.isfinite(means).any() else group[0])

    split = list(decision.get("split_by") or [])
    contrast = decision.get("contrast")
    out = []
    if contrast:
        over = contrast["over"]
        treatments = contrast["treatment"] if isinstance(contrast["treatment"], list) else [contrast["treatment"]]
        groups = defaultdict(dict)
        for c in chosen:
            groups[_group_key(c.setting, split, set())][c.setting[over]] = c
        for key, members in groups.items():
            base = members[str(contrast["baseline"])]
            for treatment in treatments:
                t = members[str(treatment)]
                setting = {**dict(key), over: f"{treatment} vs {contrast['baseline']}"}
                out.append(
                    {
                        "label": _label(setting),
                        "setting": _setting(setting, t, base, tune),
                        "values": values[t.id],
                        "baseline": values[base.id],
                        "op": contrast.get("op", "difference"),
                    }
                )
        return out
    groups = defaultdict(list)
    for c in chosen:
        groups[_group_key(c.setting, split, set())].append(c)
    for key, members in groups.items():
        if len(members) != 1:
            ids = ", ".join(m.id for m in members)
            raise ValueError(f"decision leaves several cells per condition ({ids}); add where/split_by/tune")
        setting = dict(key)
        out.append(
            {
                "label": _label(setting) or "all",
                "setting": _setting(setting, members[0], None, tune),
                "values": values[members[0].id],
            }
        )
    return out


def _label(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items())


def _setting(setting: dict, treatment: Cell, baseline: Cell | None, tune: dict | None) -> dict:
    result = {k: v for k, v in setting.items()}
    if tune:
        result[f"tuned {tune['over']}"] = treatment.setting[tune["over"]]
        if baseline is not None:
            result[f"tuned {tune['over']} (baseline)"] = baseline.setting[tune["over"]]
    return result


def summarize(condition: dict, rng: np.random.Generator, compare: str, threshold: float) -> dict:
    """Estimate, 95% interval and verdict of one condition (see :mod:`actlab.stats`)."""
    t = np.asarray(condition["values"], float)
    t = t[np.isfinite(t)]
    base = condition.get("baseline")
    summary = {"condition": condition["label"], "setting": condition["setting"]}
    if base is None:
        summary["n"] = int(len(t))
        if len(t) == 0:
            return {**summary, "estimate": None, "ci95": [None, None], "verdict": "inconclusive"}
        estimate, ci = float(t.mean()), stats.bootstrap_ci(t, rng)
    else:
        b = np.asarray(base, float)
        b = b[np.isfinite(b)]
        summary["n"] = [int(len(t)), int(len(b))]
        if len(t) == 0 or len(b) == 0:
            return {**summary, "estimate": None, "ci95": [None, None], "verdict": "inconclusive"}
        op = OPS[condition["op"]]
        estimate = float(op(t.mean(), b.mean()))
        ci = stats.bootstrap_contrast_ci(t, b, op, rng)
    summary.update(
        {
            "estimate": stats.round_sig(estimate),
            "ci95": [stats.round_sig(ci[0]), stats.round_sig(ci[1])],
            "verdict": stats.side_of(ci, compare, threshold),
        }
    )
    return summary


def _headline(summaries: list[dict], wanted: dict) -> dict:
    """The condition the report's one-line summary shows: ``decision.headline`` or the last one."""
    for summary in summaries if wanted else []:
        if all(str(summary["setting"].get(k)) == str(v) for k, v in wanted.items()):
            return summary
    return summaries[-1]


def judge(claim: dict, cells: list[Cell], experiment: Experiment, global_seed: int) -> dict:
    """The verdict dictionary of a claim (the contract read by tracking and the report)."""
    decision = claim["decision"]
    rng = np.random.default_rng(key_to_ints([global_seed, "judge", claim["id"]]))
    conds = conditions(claim, cells, experiment)
    summaries = [summarize(c, rng, decision["compare"], decision["threshold"]) for c in conds]
    verdict = stats.combine([s["verdict"] for s in summaries])
    headline = _headline(summaries, decision.get("headline") or {})
    result = {
        "claim": claim["id"],
        "statement": claim["statement"].strip(),
        "source": claim["source_files"],
        "group": claim.get("group"),
        "experiment": claim["experiment"],
        "verdict": verdict,
        "metric": decision["metric"],
        "metric_meaning": experiment.metrics[decision["metric"]],
        "compare": decision["compare"],
        "estimate": headline["estimate"],
        "ci95": headline["ci95"],
        "headline_condition": headline["condition"],
        "threshold": decision["threshold"],
        "n_seeds": claim["seeds"],
        "ci_method": "percentile bootstrap over seeds, 4000 resamples, 95%",
        "decision": decision,
        "conditions": summaries,
        "cells": [c.id for c in cells],
    }
    if verdict == "mixed":
        result["boundary"] = stats.boundary(summaries)
    return result
