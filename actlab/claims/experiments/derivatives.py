"""Exact extrema of every activation's derivative, measured from the forward and the backward pass.

Used by ``sigmoid-derivative-bound`` (sources 003 and 000): the logistic sigmoid has
``sigma'(z) = sigma(z) (1 - sigma(z)) <= 1/4`` with equality at ``z = 0``, tanh has
``tanh'(z) = 1 - tanh(z)^2 <= 1`` (equality at 0), and ReLU has ``relu'(z) = [z > 0]``, whose
values are exactly 0 and 1 (LeCun, Bottou, Orr & Mueller 1998, Efficient BackProp; Nair & Hinton
2010).

For every activation ``f`` of a cell (``activations``: a list of specs, or ``"zoo"`` for every
registered activation except the composite ``mixed`` and ``scaled``, with default parameters) the
derivative is measured twice on the grid ``z_k = k dz``, ``|z_k| <= R``:

* numerically, from the forward pass alone, by central differences
  ``D(z) = (f(z + h) - f(z - h)) / ((z + h) - (z - h))`` (truncation ``O(h^2 f''')``, rounding
  ``O(eps |f| / h)``; Nocedal & Wright 2006, sec. 8.1);
* analytically, from the activation's backward pass, ``f'(z) = backward(z, f(z), 1)``.

A grid point is a *kink* (a point where ``f`` is not differentiable) when the one-sided slopes
``(f(z + m) - f(z)) / m`` and ``(f(z) - f(z - m)) / m`` (``m = 10 h``) differ by more than
``KINK_TOL``: for a smooth ``f`` they differ by about ``|f''| m <= 2 m`` (every ``|f''|`` of the zoo
is below 2), while the zoo's kinks have jumps of at least 0.5 (hard-swish at -3 and 3). At a kink
the central difference mixes two slopes, so the numerical value set holds the one-sided
derivatives ``D(z -+ 2m)`` there instead.

The extrema are the grid extrema, refined by bounded Brent search (``scipy.optimize.minimize_scalar``,
Brent 1973) on the two grid intervals around the grid extremum, so a maximum between grid points
(sigmoid, swish, gelu) or a supremum approached at a kink (hard-swish at ``3^-``, SELU at ``0^-``)
is found to about ``1e-9`` (central differences: to about ``|f'| h`` next to a kink). A supremum
approached at infinity (softplus -> 1) is reported as the value at the range edge ``R``.
"""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments.base import SPEC, Cell, CellResult, Experiment, metric
from actlab.engine.activations import ACTIVATIONS, get_activation

#: registered activations that are built from others and have no meaningful default
COMPOSITES = ("mixed", "scaled")
#: one-sided slopes differing by more than this mark a kink
KINK_TOL = 1e-3
#: grid values within this of the extremum count as attaining it (a plateau such as ReLU's z > 0)
PLATEAU_TOL = 1e-9


def zoo() -> list[str]:
    """Every registered activation name except the composite ones, in registry order."""
    return [name for name in ACTIVATIONS if name not in COMPOSITES]


def activation_specs(params: dict) -> list:
    """The activation specs of a cell: ``params["activations"]``, with ``"zoo"`` expanded."""
    specs = params["activations"]
    return zoo() if specs == "zoo" else list(specs)


def central_difference(f, z: np.ndarray, h: float) -> np.ndarray:
    """``(f(z + h) - f(z - h)) / ((z + h) - (z - h))``: the step actually taken as denominator."""
    up, down = z + h, z - h
    return (f(up) - f(down)) / (up - down)


def kink_mask(f, z: np.ndarray, m: float) -> np.ndarray:
    """Grid points where the one-sided slopes of step ``m`` differ by more than :data:`KINK_TOL`."""
    fz = f(z)
    right = (f(z + m) - fz) / m
    left = (fz - f(z - m)) / m
    return np.abs(right - left) > KINK_TOL


def refine(fn, z: np.ndarray, values: np.ndarray, sign: float) -> tuple[float, float, float]:
    """Extremum of ``sign * fn`` near the best finite grid value, by bounded Brent search.

    Parameters
    ----------
    fn : callable
        Scalar-array function ``fn(array) -> array`` (a derivative estimate).
    z, values : ndarray
        The grid and ``fn`` on it (NaN where excluded).
    sign : float
        ``+1`` for the maximum, ``-1`` for the minimum.

    Returns
    -------
    best, lo, hi : float
        The extremum (the better of the grid value and the refined one) and the range of grid
        points attaining it within :data:`PLATEAU_TOL` (``lo == hi`` for an isolated extremum).
    """
    from scipy import optimize  # imported here: the other experiments' jobs need not load it

    scored = np.where(np.isfinite(values), sign * values, -np.inf)
    k = int(np.argmax(scored))
    lo_k, hi_k = max(k - 1, 0), min(k + 1, len(z) - 1)
    res = optimize.minimize_scalar(
        lambda t: -sign * float(fn(np.array([t]))[0]),
        bounds=(z[lo_k], z[hi_k]),
        method="bounded",
        options={"xatol": 1e-10},
    )
    best = sign * max(scored[k], -res.fun)
    attaining = z[scored >= scored[k] - PLATEAU_TOL]
    return float(best), float(attaining.min()), float(attaining.max())


def measure(spec, z_range: float, grid_step: float, fd_step: float, plot_range: float) -> dict:
    """Derivative extrema, kinks and plot curves of one activation (see the module docstring).

    Returns
    -------
    dict
        Scalars ``max_numeric``, ``max_analytic``, ``min_numeric``, ``min_analytic`` (refined
        extrema), ``argmax_lo/hi``, ``argmin_lo/hi`` (grid range attaining the analytic extremum),
        ``gap`` (largest ``|numeric - analytic|`` away from kinks); ``values_numeric`` and
        ``values_analytic`` (every derivative value seen: grid values, plus one-sided values at
        kinks for the numeric one); ``kinks`` (list of ``[z, f'(z-), f'(z+)]``); ``curve_numeric``
        (NaN at kinks) and ``curve_analytic`` on the :func:`plot_grid`.
    """
    act = get_activation(spec)
    f = act.forward
    n = int(round(z_range / grid_step))
    z = np.arange(-n, n + 1) * grid_step
    m = 10 * fd_step
    num = central_difference(f, z, fd_step)
    ana = act.derivative(z)
    kinks = kink_mask(f, z, m)
    left = central_difference(f, z[kinks] - 2 * m, fd_step)
    right = central_difference(f, z[kinks] + 2 * m, fd_step)
    one_sided = np.concatenate([left, right])
    smooth_num = np.where(kinks, np.nan, num)
    out = {
        "kinks": [[float(k), float(lv), float(rv)] for k, lv, rv in zip(z[kinks], left, right, strict=True)],
        "values_numeric": np.concatenate([num[~kinks], one_sided]),
        "values_analytic": ana,
        "gap": float(np.nanmax(np.abs(smooth_num - ana))),
    }
    for ext, sign in (("max", 1.0), ("min", -1.0)):
        best, _, _ = refine(lambda t: central_difference(f, t, fd_step), z, smooth_num, sign)
        out[f"{ext}_numeric"] = float(sign * np.max(sign * np.append(one_sided, best)))
        out[f"{ext}_analytic"], out[f"arg{ext}_lo"], out[f"arg{ext}_hi"] = refine(act.derivative, z, ana, sign)
    plot_z = plot_grid(plot_range, grid_step)
    out["curve_numeric"] = np.where(kink_mask(f, plot_z, m), np.nan, central_difference(f, plot_z, fd_step))
    out["curve_analytic"] = act.derivative(plot_z)
    return out


def plot_grid(plot_range: float, grid_step: float) -> np.ndarray:
    """The figure's ``z`` grid: every tenth search-grid step over ``[-plot_range, plot_range]``."""
    n = int(round(plot_range / (10 * grid_step)))
    return np.arange(-n, n + 1) * (10 * grid_step)


def set_distance(values: np.ndarray, allowed: list[float]) -> float:
    """Largest distance of a derivative value to the nearest allowed value."""
    allowed = np.asarray(allowed, float)
    return float(np.max(np.min(np.abs(values[:, None] - allowed[None, :]), axis=1)))


def _every_seed(cell: Cell, value: float) -> np.ndarray:
    """``value`` for every seed of the cell, shape ``(S,)``: a cell's measurements are the same for every seed."""
    return np.full(len(cell.result.arrays["seeds"]), value)


class DerivativeBounds(Experiment):
    name = "derivative_bounds"
    description = "exact extrema of activation derivatives, from central differences and from backward"
    params_schema = {
        "type": "object",
        "required": ["activations"],
        "properties": {
            "activations": {"anyOf": [{"const": "zoo"}, {"type": "array", "minItems": 1, "items": SPEC}]},
            "claimed_max": {"type": "number"},
            "claimed_min": {"type": "number"},
            "claimed_values": {"type": "array", "minItems": 1, "items": {"type": "number"}},
            "z_range": {"type": "number", "exclusiveMinimum": 0},
            "grid_step": {"type": "number", "exclusiveMinimum": 0},
            "fd_step": {"type": "number", "exclusiveMinimum": 0},
            "plot_range": {"type": "number", "exclusiveMinimum": 0},
        },
    }
    defaults = {"z_range": 20.0, "grid_step": 1e-3, "fd_step": 1e-6, "plot_range": 6.0}

    def check(self, params):
        super().check(params)
        for i, spec in enumerate(activation_specs(params)):
            try:
                get_activation(spec)
            except ValueError as err:
                raise ValueError(f"activations[{i}]: {err}") from None
        p = {**self.defaults, **params}
        if p["grid_step"] >= p["z_range"]:
            raise ValueError("grid_step: must be smaller than z_range")
        if 40 * p["fd_step"] >= p["grid_step"]:
            raise ValueError("fd_step: must be below grid_step / 40 (kink tests use 10 fd_step on each side)")
        if p["plot_range"] > p["z_range"]:
            raise ValueError("plot_range: must not exceed z_range")

    dims = {
        "max_numeric": ("activation",),
        "max_analytic": ("activation",),
        "min_numeric": ("activation",),
        "min_analytic": ("activation",),
        "argmax_lo": ("activation",),
        "argmax_hi": ("activation",),
        "argmin_lo": ("activation",),
        "argmin_hi": ("activation",),
        "gap": ("activation",),
        "set_distance_numeric": ("activation",),
        "set_distance_analytic": ("activation",),
        "curve_numeric": ("activation", "grid"),
        "curve_analytic": ("activation", "grid"),
        "plot_z": ("grid",),
        "seeds": ("seed",),
    }

    def run(self, params, seeds, data):
        p = {**self.defaults, **params}
        specs = activation_specs(params)
        found = [measure(s, p["z_range"], p["grid_step"], p["fd_step"], p["plot_range"]) for s in specs]
        scalars = (
            "max_numeric",
            "max_analytic",
            "min_numeric",
            "min_analytic",
            "argmax_lo",
            "argmax_hi",
            "argmin_lo",
            "argmin_hi",
            "gap",
        )
        arrays = {key: np.array([r[key] for r in found]) for key in scalars}
        claimed = params.get("claimed_values")
        for kind in ("numeric", "analytic"):
            arrays[f"set_distance_{kind}"] = np.array(
                [set_distance(r[f"values_{kind}"], claimed) if claimed else np.nan for r in found]
            )
            arrays[f"curve_{kind}"] = np.stack([r[f"curve_{kind}"] for r in found])
        arrays["plot_z"] = plot_grid(p["plot_range"], p["grid_step"])
        arrays["seeds"] = np.array(seeds.indices)
        info = {
            "activations": [get_activation(s).spec() for s in specs],
            "kinks": {get_activation(s).name: r["kinks"] for s, r in zip(specs, found, strict=True)},
            "deterministic": "no randomness: every seed of the cell gets the same values",
        }
        return CellResult(arrays, info)

    @metric(
        "largest |measured - claimed| over the claimed max f', min f' and value set of f' (numeric and analytic; "
        "NaN without a claim)"
    )
    def bound_error(self, cell: Cell) -> np.ndarray:
        a, params = cell.result.arrays, cell.params
        errors = []
        for key, claim in (("max", params.get("claimed_max")), ("min", params.get("claimed_min"))):
            if claim is not None:
                errors += [np.abs(a[f"{key}_numeric"] - claim), np.abs(a[f"{key}_analytic"] - claim)]
        if params.get("claimed_values"):
            errors += [a["set_distance_numeric"], a["set_distance_analytic"]]
        return _every_seed(cell, float(np.max(errors)) if errors else np.nan)

    @metric("largest max f'(z) (central differences, refined) over the cell's activations")
    def max_derivative(self, cell: Cell) -> np.ndarray:
        return _every_seed(cell, float(np.max(cell.result.arrays["max_numeric"])))

    @metric("largest |central difference - backward| of f' away from kinks")
    def numeric_analytic_gap(self, cell: Cell) -> np.ndarray:
        return _every_seed(cell, float(np.max(cell.result.arrays["gap"])))
