"""The figure of ``backprop_check`` claims (``backprop-recurrence``): every gradient check's relative
error per seed and activation, and the timing of the two forms of tanh'."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import plotting
from actlab.claims.experiments.backprop import ERRORS, TIMED
from actlab.claims.experiments.base import cell_roles
from actlab.claims.figures.base import Figure

#: errors of exactly 0 are drawn here on the log scale
FLOOR = 1e-18
#: marker, colour and legend entry of each check, in the order of :data:`actlab.claims.experiments.backprop.ERRORS`
STYLES = {
    "max_rel_error": ("o", "tab:blue", "backward vs central differences of the loss"),
    "recurrence_error": ("s", "tab:orange", "hand-written recurrence vs engine deltas"),
    "tanh_trick_error": ("^", "tab:green", "tanh': 1 - a^2 vs 1/cosh(z)^2"),
}


@dataclass(frozen=True)
class TanhTiming:
    """The wall-clock time of the forms of tanh' (:data:`actlab.claims.experiments.backprop.TIMED`).

    Attributes
    ----------
    labels : list of str
        The forms, one bar each.
    medians : list of float
        Median nanoseconds per element of each form.
    runs : list of ndarray
        Nanoseconds per element of each form in every repeat, shape (repeats,) each.
    size : int
        The number of values timed.
    ratio : float
        Median ratio of ``1/cosh(z)**2``'s time to ``1 - a*a``'s.
    """

    labels: list
    medians: list
    runs: list
    size: int
    ratio: float

    @classmethod
    def from_info(cls, timing: dict) -> TanhTiming:
        """The timing a cell recorded in ``info["timing"]``."""
        labels = list(TIMED)
        return cls(
            labels,
            [timing["median_seconds_per_element"][k] * 1e9 for k in labels],
            [np.array(timing["seconds_per_element"][k]) * 1e9 for k in labels],
            timing["size"],
            timing["ratio_cosh_over_output"],
        )


@dataclass(frozen=True)
class BackpropFigure(Figure):
    """Left: each check's relative error per seed, one column per activation; right: tanh' timing.

    Attributes
    ----------
    names : list of str
        The activations, one column each, in the order of the cells.
    errors : list of dict
        Per column, check (:data:`STYLES`) -> its finite per-seed relative errors, floored at
        :data:`FLOOR`, shape (n,) (n may be 0: a check undefined for the activation).
    shaded : list of bool
        Per column, whether its cell is outside the verdict's judged conditions (shaded).
    threshold : float
        The claimed bound on the errors.
    sizes : list of int
        The layer sizes of the nets checked.
    timing : TanhTiming or None
        The timing of the last cell that recorded one.
    """

    experiment = "backprop_check"
    names: list
    errors: list
    shaded: list
    threshold: float
    sizes: list
    timing: TanhTiming | None

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        roles = cell_roles(verdict)
        names, errors, shaded = [], [], []
        timing = None
        for c in cells:
            for i, spec in enumerate(c.result.info["activations"]):
                names.append(spec["name"])
                column = {e: c.result.arrays[e][:, i] for e in ERRORS}
                errors.append({e: np.maximum(v[np.isfinite(v)], FLOOR) for e, v in column.items()})
                shaded.append(roles.get(c.id) != "judged")
            timing = c.result.info.get("timing", timing)
        return cls(
            names,
            errors,
            shaded,
            claim["decision"]["threshold"],
            cells[0].result.info["sizes"],
            None if timing is None else TanhTiming.from_info(timing),
        )

    def plot(self, path: Path) -> str:
        fig, (ax, tax) = plotting.plt.subplots(
            1,
            2,
            figsize=(max(9, 0.55 * len(self.names) + 5), 4.8),
            gridspec_kw={"width_ratios": [max(4, 0.5 * len(self.names)), 2]},
        )
        for x, (errors, shaded) in enumerate(zip(self.errors, self.shaded, strict=True)):
            for offset, (key, (marker, color, _)) in zip((-0.22, 0.0, 0.22), STYLES.items(), strict=True):
                if errors[key].size:
                    ax.plot(
                        np.full(errors[key].size, x + offset), errors[key], marker, color=color, alpha=0.5, markersize=3
                    )
            if shaded:
                ax.axvspan(x - 0.45, x + 0.45, color="0.9", zorder=0)
        ax.axhline(self.threshold, color="tab:red", linestyle="--", linewidth=1)
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 3, 10)
        ax.set_xticks(range(len(self.names)), self.names, rotation=45, ha="right")
        ax.set_ylabel("relative error per seed (log; exact 0 drawn at 1e-18)")
        ax.set_title("gradient checks, float64 nets " + "-".join(str(s) for s in self.sizes))
        handles = [plotting.plt.Line2D([], [], marker=m, color=c, linestyle="", label=t) for m, c, t in STYLES.values()]
        handles.append(
            plotting.plt.Line2D([], [], color="tab:red", linestyle="--", label=f"claim: < {self.threshold:g}")
        )
        if any(self.shaded):
            handles.append(plotting.plt.Rectangle((0, 0), 1, 1, color="0.9", label="not judged (negative control)"))
        ax.legend(handles=handles, fontsize=7, loc="upper left")
        if self.timing is not None:
            t = self.timing
            colors = ["tab:green" if lab.startswith("from output") else "0.6" for lab in t.labels]
            tax.bar(range(len(t.labels)), t.medians, color=colors)
            for i, runs in enumerate(t.runs):
                tax.plot(np.full(len(runs), i), runs, "k.", markersize=3)
            tax.set_xticks(range(len(t.labels)), [lab.replace(": ", ":\n") for lab in t.labels], fontsize=7)
            tax.set_ylabel("ns per element (bar: median; dots: repeats)")
            tax.set_title(
                f"tanh' on {t.size:.0e} values:\n1/cosh^2 takes "
                f"{t.ratio:.1f}x the time of 1 - a^2\n"
                "(median ratio; wall clock, not in the verdict)",
                fontsize=8,
            )
        else:
            tax.axis("off")
            tax.text(0.5, 0.5, "no timing in these cells", ha="center", va="center")
        plotting.save(fig, path)
        return (
            "Left: per-seed relative errors of the back-propagated gradient for every activation (log scale): "
            "engine backward vs central differences of the loss, the recurrence delta_l = (delta_{l+1} W^T) f'(z_l) "
            "written out by hand (tanh' = 1 - a^2, relu' = where(a > 0, 1, 0) as in source 000), and tanh' from "
            f"the output vs from the input; dashed: the claimed {self.threshold:g}. Shaded columns are not part of "
            "the verdict "
            "(NecroReLU, whose backward is by design not the derivative of its forward, shows that the check "
            "can fail). Seeds with a pre-activation within 20 h of a kink have no finite-difference point "
            "(undefined there). Right: wall-clock time of the two tanh' forms (varies between runs)."
        )
