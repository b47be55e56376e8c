"""What every figure shares: one look, drawing the value types of :mod:`actlab.claims.figures.base`, saving.

Also the two figures every claim gets whatever its experiment type: the verdict summary and the
leaderboard. Every interval drawn comes from :func:`actlab.claims.stats.interval` (through the
verdict, or :func:`actlab.claims.figures.base.mean_interval`): exact Clopper-Pearson for 0/1
metrics, BCa bootstrap of the mean otherwise.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "font.size": 9,
        "svg.hashsalt": "actlab",
    }
)


def yerr(means, los, his) -> np.ndarray:
    """``errorbar``'s ``yerr`` (or ``xerr``), shape ``(2, n)``, drawing the intervals ``[lo, hi]`` around ``means``.

    A BCa interval need not contain the sample mean; in that rare case the bar is stretched to
    reach the mean (a negative length would be an error). NaN intervals draw no bar.
    """
    means, los, his = (np.atleast_1d(np.asarray(a, float)) for a in (means, los, his))
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.maximum(np.stack([means - los, his - means]), 0.0), nan=0.0)


def draw_band(ax, band) -> None:
    """Draw a :class:`actlab.claims.figures.base.Band`: its median line and, in the line's colour, its band."""
    if band.mid.size == 0:
        return
    (line,) = ax.plot(band.x, band.mid, label=band.label, **band.style)
    ax.fill_between(band.x, band.lo, band.hi, color=line.get_color(), alpha=0.2, linewidth=0)


def draw_points(ax, points, **kwargs) -> None:
    """Draw :class:`actlab.claims.figures.base.Points`: means with interval bars (``kwargs`` override its style)."""
    ax.errorbar(
        points.x,
        points.mean,
        yerr=yerr(points.mean, points.lo, points.hi),
        label=points.label,
        **{"capsize": 3, "marker": "o", "markersize": 3, **points.style, **kwargs},
    )


def save(fig, path: Path) -> str:
    """Save ``fig`` as a PNG without timestamps in the metadata (stable bytes); returns the path.

    A figure title (``suptitle``) keeps about 0.5 inch of its own above the panels. A figure made
    with a layout engine (``layout="constrained"``, needed for a legend outside the panels) keeps it.
    """
    if fig.get_layout_engine() is None:
        top = 1 - 0.5 / fig.get_figheight() if fig.get_suptitle() else 1
        fig.tight_layout(rect=(0, 0, 1, top))
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return str(path)


#: colour of each condition verdict (claims: supported/refuted/inconclusive; checks: verified/violated)
VERDICT_COLORS = {
    "supported": "tab:green",
    "refuted": "tab:red",
    "inconclusive": "tab:gray",
    "verified": "tab:green",
    "violated": "tab:red",
}


def _number(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _drawn_interval(c: dict) -> tuple[list[float] | None, float | None]:
    """The interval a condition is drawn with and its level: ``decision_ci``, else ``ci95``, else none."""
    for key, level in (("decision_ci", c.get("decision_level")), ("ci95", 0.95)):
        ci = [_number(x) for x in c.get(key) or [None, None]]
        if None not in ci:
            return ci, level
    return None, None


def _usable(n) -> int:
    """Usable runs of a condition: the smaller side of a contrast."""
    return min(n) if isinstance(n, list) else int(n or 0)


def verdict_figure(verdict: dict, path: Path) -> str:
    """Every claim's summary plot: each condition's estimate and interval against the threshold.

    A claim's condition is drawn with its ``decision_ci`` (the interval at the Holm-adjusted
    level its verdict was decided at, written next to it), else its ``ci95``, else as a bare
    point; a check's condition is its worst value over every seed (no interval). Colour is the
    condition's verdict; judged conditions are filled, control and context ones hollow with
    their role in the tick label. A ``within`` threshold is a band: both edges are drawn.
    """
    check = verdict.get("kind") == "check"
    panels: dict[str, list[dict]] = {}
    for c in verdict["conditions"]:  # one panel per judged metric (a rule's ``also`` parts)
        panels.setdefault(c.get("metric", verdict["metric"]), []).append(c)
    heights = [0.45 * max(len(conds), 2) + 1.0 for conds in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, sum(heights) + 0.5), height_ratios=heights, squeeze=False)
    for ax, (metric, conds) in zip(axes[:, 0], panels.items(), strict=True):
        first = conds[0]
        _verdict_panel(
            ax,
            conds,
            metric,
            first.get("compare", verdict["compare"]),
            first.get("threshold", verdict["threshold"]),
            check,
        )
    how = (
        "worst value over every seed"
        if check
        else "mean over seeds; interval at the Holm-adjusted level used for the verdict"
    )
    fig.suptitle(f"{verdict['claim']}: {verdict['verdict']}\n({how})", fontsize=9)
    return save(fig, path)


def leaderboard_figure(verdict: dict, path: Path) -> str:
    """A claim's leaderboard (:func:`actlab.claims.judging.leaderboard`): one panel per group, best first.

    Each competitor's mean with its 95% interval; the tick label carries its rank and the 95%
    interval of the rank.
    """
    groups = verdict["leaderboard"]["groups"]
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    n_rows = max(len(g["rows"]) for g in groups)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.4 * ncols, (0.28 * n_rows + 1.0) * nrows), squeeze=False, layout="constrained"
    )
    for ax, group in zip(axes.flat, groups, strict=False):
        rows = group["rows"]
        for i, row in enumerate(r for r in rows if "rank" in r):
            mean, (lo, hi) = row["mean"], row["ci95"]
            ax.errorbar(mean, i, xerr=[[mean - lo], [hi - mean]], fmt="o", capsize=3, color="tab:blue", markersize=4)
        ticks = [
            f"{r['label']}  #{r['rank']:g} [{r['rank_ci95'][0]:g}-{r['rank_ci95'][1]:g}]"
            if "rank" in r
            else f"{r['label']}  (not ranked: n = {r['n']})"
            for r in rows
        ]
        ax.set_yticks(np.arange(len(rows)), ticks, fontsize=7)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_title(", ".join(f"{k}={v}" for k, v in group["group"].items()) or "all", fontsize=9)
        ax.set_xlabel(f"{verdict['metric']} (mean, 95% CI)", fontsize=8)
    for ax in axes.flat[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(f"{verdict['claim']}: leaderboard (rank #, with its 95% bootstrap interval)", fontsize=9)
    return save(fig, path)


def _verdict_panel(ax, conds: list[dict], metric: str, compare: str, threshold, check: bool) -> None:
    """One metric's conditions: estimates, intervals, the threshold or band, a legend."""
    band = isinstance(threshold, list | tuple)
    edges = [float(t) for t in threshold] if band else [float(threshold)]
    ends = list(edges)
    for i, c in enumerate(conds):
        color = VERDICT_COLORS.get(c["verdict"], "tab:gray")
        judged = c.get("role", "judged") == "judged"
        estimate = _number(c["estimate"])
        ci, level = (None, None) if check else _drawn_interval(c)
        note = []
        if ci is not None:
            ax.plot(ci, [i, i], color=color, linewidth=1.6, marker="|", markersize=9)
            ends += ci
            note.append(f"{100 * level:.3g}%" if level is not None else "")
        if estimate is not None:
            ax.plot(
                estimate,
                i,
                "o",
                color=color,
                markerfacecolor=color if judged else "white",
                markeredgewidth=1.5,
                markersize=6,
                zorder=3,
            )
            ends.append(estimate)
        else:
            note.append("no estimate")
        if c.get("reason"):  # too few usable runs: the full reason is in the report's table
            note.append(f"n = {_usable(c.get('n'))} < minimum")
        if any(note):
            x = ci[1] if ci is not None else estimate
            ax.annotate(
                "  " + "; ".join(n for n in note if n),
                (x, i) if x is not None else (0.01, i),
                xycoords="data" if x is not None else ("axes fraction", "data"),
                va="center",
                fontsize=7,
                color="dimgray",
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7, "pad": 0.5},
            )
    lines = [ax.axvline(edge, color="black", linestyle="--", linewidth=1) for edge in edges]
    lines[0].set_label("band edges" if band else "threshold")
    if band:
        ax.axvspan(*edges, color="black", alpha=0.05, linewidth=0)
    if min(ends) > 0 and max(ends) / min(ends) > 100:  # errors and ratios spanning decades
        ax.set_xscale("log")
    ax.margins(x=0.15)  # room for the level written right of each interval
    ax.set_yticks(
        np.arange(len(conds)),
        [c["condition"] + ("" if c.get("role", "judged") == "judged" else f" [{c['role']}]") for c in conds],
    )
    ax.set_ylim(len(conds) - 0.5, -0.5)
    shown = f"[{edges[0]:g}, {edges[1]:g}]" if band else f"{edges[0]:g}"
    ax.set_xlabel(f"{metric} (claim: {compare} {shown})")
    present = list(dict.fromkeys(c["verdict"] for c in conds))
    handles = [
        plt.Line2D([], [], color=VERDICT_COLORS.get(v, "tab:gray"), marker="o", linestyle="", label=v) for v in present
    ]
    if any(c.get("role", "judged") != "judged" for c in conds):
        handles.append(
            plt.Line2D(
                [], [], color="black", marker="o", markerfacecolor="white", linestyle="", label="control / context"
            )
        )
    ax.legend(handles=[*handles, lines[0]], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7)
