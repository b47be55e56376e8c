"""The figure of ``derivative_bounds`` claims (``sigmoid-derivative-bound``): every activation's
derivative, and the table of its extrema against the claimed bounds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.base import Cell, cell_roles
from actlab.claims.experiments.derivatives import PLATEAU_TOL
from actlab.claims.figures.base import Figure

#: panels per row of the derivative plots
N_COLS = 6
#: how a claimed maximum is drawn: the claim's own bounds, and a negative control's wrong one
CLAIM_LINES = {
    "judged": {"color": "tab:red", "linestyle": "--", "linewidth": 1},
    "control": {"color": "tab:purple", "linestyle": ":", "linewidth": 1.4},
}
#: table row colour of a claimed activation, by the verdict of the condition measured on its cell
ROW_COLORS = {"verified": "#d9f2d9", "supported": "#d9f2d9", "violated": "#f8d7d7", "refuted": "#f8d7d7"}


def _merge(cells: list[Cell]) -> tuple[dict, dict]:
    """Activation name -> measured row (first cell wins) and -> the cells naming it alone with a claim.

    Several cells may claim bounds for one activation (a true bound and a negative control's
    wrong one, say); each keeps its own claim.
    """
    table, claims = {}, {}
    for c in cells:
        a = c.result.arrays
        for i, spec in enumerate(c.result.info["activations"]):
            name = spec["name"]
            if len(c.result.info["activations"]) == 1 and any(k.startswith("claimed_") for k in c.params):
                claims.setdefault(name, []).append(c)
            if name in table:
                continue
            row = {k: a[k][i] for k in a if k not in ("plot_z", "seeds")}
            row.update(z=a["plot_z"], kinks=c.result.info["kinks"][name])
            table[name] = row
    return table, claims


def _fmt(x: float) -> str:
    return f"{x:.7g}"


def _where(lo: float, hi: float, z_max: float, kinks: list) -> str:
    """Where an extremum is attained: a point, an interval, a ray to the searched range's edge, a kink."""
    low_edge, high_edge = lo <= -z_max + 1e-9, hi >= z_max - 1e-9
    if low_edge and high_edge:
        return "every z"
    if high_edge:
        return f"z >= {lo:.3g} (to the edge)"
    if low_edge:
        return f"z <= {hi:.3g} (to the edge)"
    if hi - lo < 1e-2:
        near = [k for k, _, _ in kinks if abs(k - lo) < 1e-2]
        return f"z -> {near[0]:.3g} (kink)" if near else f"z = {lo:.4g}"
    return f"z in [{lo:.3g}, {hi:.3g}]"


def _claim_text(claim: dict) -> str:
    """The claimed bounds of one activation (a cell's params), as the table writes them."""
    parts = []
    if claim.get("claimed_max") is not None:
        parts.append(f"max = {claim['claimed_max']:g}")
    if claim.get("claimed_min") is not None:
        parts.append(f"min = {claim['claimed_min']:g}")
    if claim.get("claimed_values"):
        parts.append("f' in {" + ", ".join(f"{v:g}" for v in claim["claimed_values"]) + "}")
    return ", ".join(parts)


@dataclass(frozen=True)
class DerivativePanel:
    """One activation's derivative on the plot grid.

    Attributes
    ----------
    name : str
        The activation.
    z, analytic : ndarray, shape (n,)
        The plot grid and ``f'`` there from the backward pass.
    z_dots, numeric : ndarray, shape (m,)
        Every 25th grid point and the central difference of the forward pass there (NaN at kinks).
    claimed_max : list of (float, str)
        Each claimed maximum of ``f'`` for this activation and the role of the condition measured
        on the claiming cell (``control`` for a negative control's wrong bound, else ``judged``).
    max_analytic : float
        The refined maximum of ``f'`` from the backward pass.
    mismatch : bool
        Backward and central differences differ by more than 1e-3 away from kinks (backward is
        not the derivative of forward).
    """

    name: str
    z: np.ndarray
    analytic: np.ndarray
    z_dots: np.ndarray
    numeric: np.ndarray
    claimed_max: list
    max_analytic: float
    mismatch: bool


@dataclass(frozen=True)
class DerivativesFigure(Figure):
    """Every activation's ``f'`` (backward and central differences), then the table of extrema and claims.

    Attributes
    ----------
    panels : list of DerivativePanel
        One per activation measured, in the order of the cells (the first cell measuring an
        activation provides it).
    rows : list of list of str
        The table, one row per activation and claim (the same order): name (with the claiming
        cell's label when it differs, and ``[control]`` for a negative control), maximum by
        central differences and by backward, where it is attained, the two minima, the kinks,
        the claim and its ``bound_error`` (the last two empty for an activation no cell claims alone).
    row_colors : list of str
        Per row, the verdict's colour (:data:`ROW_COLORS`) of the condition measured on the
        claiming cell; white when there is none.
    sources : str
        The claim's sources, as the table's header and the legend name them.
    threshold : float
        The rule's threshold on ``bound_error``.
    z_max : float
        The half-width of the searched range of ``z``.
    """

    experiment = "derivative_bounds"
    panels: list
    rows: list
    row_colors: list
    sources: str
    threshold: float
    z_max: float

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        table, claims = _merge(cells)
        outcome = {cell_id: cond["verdict"] for cond in verdict["conditions"] for cell_id in cond["cells"]}
        roles = cell_roles(verdict)
        z_max = max(c.params.get("z_range", experiment.defaults["z_range"]) for c in cells)
        panels, rows, colors = [], [], []
        for name, r in table.items():
            claiming = claims.get(name, [])
            panels.append(
                DerivativePanel(
                    name,
                    r["z"],
                    r["curve_analytic"],
                    r["z"][::25],
                    r["curve_numeric"][::25],
                    [
                        (c.params["claimed_max"], "control" if roles.get(c.id) == "control" else "judged")
                        for c in claiming
                        if c.params.get("claimed_max") is not None
                    ],
                    r["max_analytic"],
                    bool(r["gap"] > 1e-3),
                )
            )
            measured = [
                _fmt(r["max_numeric"]),
                _fmt(r["max_analytic"]),
                _where(r["argmax_lo"], r["argmax_hi"], z_max, r["kinks"]),
                _fmt(r["min_numeric"]),
                _fmt(r["min_analytic"]),
                ", ".join(f"{k:.3g} ({lv:.4g} | {rv:.4g})" for k, lv, rv in r["kinks"]) or "none",
            ]
            if not claiming:
                rows.append([name, *measured, "", ""])
                colors.append("white")
            for c in claiming:
                label = c.setting.get("activation", name)
                label = name if label == name else f"{name} ({label})"
                label += " [control]" if roles.get(c.id) == "control" else ""
                error = f"{float(experiment.metric('bound_error', c)[0]):.2g}"
                rows.append([label, *measured, _claim_text(c.params), error])
                colors.append(ROW_COLORS.get(outcome.get(c.id), "white"))
        sources = "sources " + ", ".join(claim.get("sources", [])) if claim.get("sources") else "the claim"
        return cls(panels, rows, colors, sources, claim["decision"]["threshold"], z_max)

    def plot(self, path: Path) -> str:
        n_rows = -(-(len(self.panels) + 1) // N_COLS)
        n = len(self.panels)
        fig = plotting.plt.figure(figsize=(17, 2.3 * n_rows + 0.32 * n + 1.2))
        grid = fig.add_gridspec(n_rows + 1, N_COLS, height_ratios=[1] * n_rows + [0.14 * n + 0.4])
        for i, p in enumerate(self.panels):
            ax = fig.add_subplot(grid[i // N_COLS, i % N_COLS])
            ax.plot(p.z, p.analytic, color="tab:blue", linewidth=1.6)
            ax.plot(p.z_dots, p.numeric, "o", color="tab:orange", markersize=2.5)
            for value, role in p.claimed_max:
                ax.axhline(value, **CLAIM_LINES[role])
            mismatch = "\nbackward is NOT d/dz of forward" if p.mismatch else ""
            ax.set_title(f"{p.name}: max f' = {_fmt(p.max_analytic)}{mismatch}", fontsize=9)
            if i % N_COLS == 0:
                ax.set_ylabel("f'(z)")
            if i // N_COLS == n_rows - 1 or i + N_COLS >= n:
                ax.set_xlabel("pre-activation z")
        legend_ax = fig.add_subplot(grid[n // N_COLS, n % N_COLS])
        legend_ax.axis("off")
        legend_ax.legend(
            handles=[
                plotting.plt.Line2D([], [], color="tab:blue", label="f'(z) from backward (analytic)"),
                plotting.plt.Line2D(
                    [], [], color="tab:orange", marker="o", linestyle="", label="central difference of forward"
                ),
                plotting.plt.Line2D([], [], **CLAIM_LINES["judged"], label=f"claimed max ({self.sources})"),
                *(
                    [plotting.plt.Line2D([], [], **CLAIM_LINES["control"], label="negative control's wrong max")]
                    if any(role == "control" for p in self.panels for _, role in p.claimed_max)
                    else []
                ),
            ],
            loc="center",
            fontsize=9,
        )
        self._table(fig.add_subplot(grid[n_rows, :]))
        plotting.save(fig, path)
        return (
            "Derivative f'(z) of every activation of the zoo (default parameters) on z in [-6, 6]: line from "
            "the activation's backward pass, dots from central differences of its forward pass. Table: the "
            f"exact extrema over z in [-{self.z_max:g}, {self.z_max:g}] (grid plus bounded Brent refinement), where "
            "they are attained, the kinks with their one-sided derivatives, and the claimed bounds with the error."
        )

    def _table(self, ax) -> None:
        """The extrema table; rows of claimed activations coloured by their condition's verdict."""
        ax.axis("off")
        header = [
            "activation",
            "max f' (central diff.)",
            "max f' (backward)",
            "attained at",
            "min f' (central diff.)",
            "min f' (backward)",
            "kinks: z (f'(z-) | f'(z+))",
            f"claim ({self.sources})",
            "bound_error",
        ]
        colors = [[color] * len(header) for color in self.row_colors]
        tab = ax.table(cellText=self.rows, colLabels=header, cellColours=colors, loc="center", cellLoc="left")
        tab.auto_set_font_size(False)
        tab.set_fontsize(8)
        tab.auto_set_column_width(list(range(len(header))))
        tab.scale(1, 1.25)
        ax.set_title(
            f"Extrema of f' over z in [-{self.z_max:g}, {self.z_max:g}]; 'attained at' lists the grid points within "
            f"{PLATEAU_TOL:g} of the maximum ('to the edge': a plateau or a supremum approached as |z| -> inf; "
            "'kink': a one-sided limit)"
            f"\ngreen: claim met within {self.threshold:g}, red: not met",
            fontsize=9,
        )
