"""Shared figure helpers: one look for every figure, medians with interquartile bands."""

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


def band(ax, x: np.ndarray, values: np.ndarray, label: str, **kwargs) -> None:
    """Plot the median over seeds of ``values`` ``(n_seeds, len(x))`` with a 25-75% band."""
    values = np.asarray(values, float)
    finite = np.isfinite(values).any(axis=0)
    x, values = np.asarray(x)[finite], values[:, finite]
    if values.size == 0:
        return
    lo, mid, hi = np.nanpercentile(values, [25, 50, 75], axis=0)
    (line,) = ax.plot(x, mid, label=label, **kwargs)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def mean_ci(ax, x: np.ndarray, values: list[np.ndarray], label: str, **kwargs) -> None:
    """Plot seed means with 95% normal-approximation error bars (one sample array per x)."""
    means, errs = [], []
    for v in values:
        v = np.asarray(v, float)
        v = v[np.isfinite(v)]
        means.append(v.mean() if len(v) else np.nan)
        errs.append(1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0)
    ax.errorbar(x, means, yerr=errs, label=label, **{"capsize": 3, "marker": "o", "markersize": 3, **kwargs})


def save(fig, path: Path) -> str:
    """Save ``fig`` as a PNG without timestamps in the metadata (stable bytes); returns the path."""
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return str(path)


def verdict_figure(verdict: dict, path: Path) -> str:
    """Every claim's summary plot: each condition's estimate and 95% CI against the threshold."""
    conds = [c for c in verdict["conditions"] if c["estimate"] is not None]
    fig, ax = plt.subplots(figsize=(6, 0.45 * max(len(conds), 2) + 1.3))
    y = np.arange(len(conds))
    colors = {"supported": "tab:green", "refuted": "tab:red", "inconclusive": "tab:gray"}
    for i, c in enumerate(conds):
        lo, hi = c["ci95"]
        ax.errorbar(
            c["estimate"],
            i,
            xerr=[[c["estimate"] - lo], [hi - c["estimate"]]],
            fmt="o",
            color=colors[c["verdict"]],
            capsize=4,
        )
    ax.axvline(verdict["threshold"], color="black", linestyle="--", linewidth=1, label="threshold")
    ends = [x for c in conds for x in (*c["ci95"], c["estimate"])] + [verdict["threshold"]]
    if min(ends) > 0 and max(ends) / min(ends) > 100:  # errors and ratios spanning decades
        ax.set_xscale("log")
    ax.set_yticks(y, [c["condition"] for c in conds])
    ax.invert_yaxis()
    ax.set_xlabel(f"{verdict['metric']} (claim: {verdict['compare']} {verdict['threshold']})")
    ax.set_title(f"{verdict['claim']}: {verdict['verdict']}\n(mean over seeds with 95% bootstrap CI)", fontsize=9)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=v) for v, c in colors.items()]
    ax.legend(handles=[*handles, ax.get_lines()[-1]], loc="best", fontsize=7)
    return save(fig, path)
