"""The back-propagation recurrence, checked against finite differences and written out by hand.

Used by ``backprop-recurrence`` (source 000). With hidden pre-activations ``z_l = a_{l-1} W_l + b_l``
(row vectors, one row per example), ``a_l = f(z_l)`` and output ``o = a_L W_{L+1} + b_{L+1}``, the
error signal ``delta_l = dL/dz_l`` obeys (Rumelhart, Hinton & Williams 1986)

    delta_{L+1} = dL/do,    delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l),

and ``dL/dW_l = a_{l-1}^T delta_l``. Source 000 writes it as ``W_{l+1}^T (delta_{l+1} (.) f'(s_l))``
with ``f' = 1 - a^2`` for tanh and ``numpy.where(a > 0, 1, 0)`` for ReLU: the derivative taken from
the unit's output, so tanh needs no second transcendental call (LeCun et al. 1998). Read with
``delta = dL/ds``, that bracketing pairs ``delta_{l+1}`` with ``f'(s_l)``, one layer off; it is
consistent for the error ``g_l = dL/da_l`` with the slope one layer up, ``g_l = (g_{l+1} *
f'(z_{l+1})) W_{l+1}^T``. Both consistent readings are checked.

For every activation of a cell and every seed, a small float64 net (``n_inputs``-``hidden``-
``n_outputs``) is evaluated on a random batch with a softmax cross-entropy loss, and three
relative errors are recorded:

* ``max_rel_error``: the engine's gradient (:meth:`actlab.MLP.backward`) against central
  differences of the loss, ``(L(theta + h e_i) - L(theta - h e_i)) / 2h``, for every parameter:
  ``max_i |g_i - d_i| / max_i |d_i|`` (truncation ``O(h^2)``, rounding ``O(eps L / h)``; Nocedal &
  Wright 2006, sec. 8.1);
* ``recurrence_error``: both readings of the recurrence computed by hand in NumPy from the loss's
  ``dL/do``, against the engine's deltas and ``dL/da``, ``max_l max |x - x_engine| / max |x_engine|``;
  ``f'`` is the source's ``1 - a^2`` (tanh) or ``where(a > 0, 1, 0)`` (ReLU), and for every other
  activation a central difference of its forward pass (independent of its backward);
* ``tanh_trick_error`` (tanh only): ``max |(1 - a^2) - 1 / cosh(z)^2| / max 1 / cosh(z)^2`` over the
  net's pre-activations (``1 - tanh^2 = sech^2``).

Central differences are meaningless across a kink. A seed whose batch has a pre-activation within
``20 h`` of one (one-sided slopes differ by more than ``KINK_TOL``) gets NaN for the
finite-difference errors of that activation; the count is in ``info["n_near_kink"]``.

Timing (``timing_size > 0``, tanh only): the median over ``timing_repeats`` of ``1 - a*a`` (from
the cached output), ``1 / cosh(z)**2`` and ``1 - tanh(z)**2`` (from the input) on an array of
``timing_size`` pre-activations ``z ~ N(0, 2^2)``, each written into a preallocated buffer.
Wall-clock values vary between runs, so they go to ``info["timing"]`` only, never into arrays or
metrics.
"""

from __future__ import annotations

import timeit

import numpy as np

from actlab.claims.experiments.base import SPEC, Cell, CellResult, Experiment, metric
from actlab.engine.activations import get_activation
from actlab.engine.losses import get_loss
from actlab.engine.network import MLP

#: one-sided slopes differing by more than this mark a pre-activation near a kink
KINK_TOL = 1e-3
#: kink margin in units of the finite-difference step: a parameter step h moves a pre-activation by
#: h times an input or weight magnitude, far below 20 h in these small nets
KINK_MARGIN_STEPS = 20
#: how often each timed expression runs per repeat
TIMING_NUMBER = 3
ERRORS = ("max_rel_error", "recurrence_error", "tanh_trick_error")
#: the timed forms of tanh', written into a preallocated ``buf`` so that the allocator's page faults
#: on fresh megabyte temporaries (which dominate and swamp ``1 - a * a``) are not timed
TIMED = {
    "from output: 1 - a*a": "np.multiply(a, a, out=buf); np.subtract(1, buf, out=buf)",
    "from input: 1/cosh(z)**2": "np.cosh(z, out=buf); np.square(buf, out=buf); np.divide(1, buf, out=buf)",
    "from input: 1 - tanh(z)**2": "np.tanh(z, out=buf); np.square(buf, out=buf); np.subtract(1, buf, out=buf)",
}


def source_derivative(act, z: np.ndarray, a: np.ndarray, h: float) -> np.ndarray:
    """``f'(z)`` as source 000 writes it, from the output ``a``; other activations by central differences.

    tanh: ``1 - a^2``; ReLU: ``numpy.where(a > 0, 1, 0)``; otherwise ``(f(z + h) - f(z - h)) / 2h``
    of the forward pass, which does not use the activation's backward.
    """
    if act.name == "tanh":
        return 1 - a**2
    if act.name == "relu":
        return np.where(a > 0, 1, 0)
    up, down = z + h, z - h
    return (act.forward(up) - act.forward(down)) / (up - down)


def near_kink(act, z: np.ndarray, margin: float) -> np.ndarray:
    """Per seed (axis 0 of ``z``): whether some entry lies within about ``margin`` of a kink.

    A kink lies within ``margin`` of ``z`` when the one-sided slopes of step ``margin`` differ by
    more than :data:`KINK_TOL` (for a smooth ``f`` they differ by about ``|f''| margin``).
    """
    fz = act.forward(z)
    right = (act.forward(z + margin) - fz) / margin
    left = (fz - act.forward(z - margin)) / margin
    return (np.abs(right - left) > KINK_TOL).reshape(len(z), -1).any(axis=1)


def _rel(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per seed ``max |x - ref| / max |ref|`` over every axis but the first."""
    axes = tuple(range(1, x.ndim))
    return np.max(np.abs(x - ref), axis=axes) / np.max(np.abs(ref), axis=axes)


def finite_difference_error(net: MLP, x: np.ndarray, y: np.ndarray, loss, grads: list, h: float) -> np.ndarray:
    """Per seed ``max_i |g_i - d_i| / max_i |d_i|`` over every parameter entry ``i``.

    ``d_i`` is the central difference of the per-seed loss; one entry is perturbed in every seed at
    once, which is exact because the seeds' losses are independent.
    """
    n_seeds = net.n_seeds
    worst_diff, worst_ref = np.zeros(n_seeds), np.zeros(n_seeds)
    for param, grad in zip(net.parameters(), grads, strict=True):
        for idx in np.ndindex(param.shape[1:]):
            at = (slice(None), *idx)
            orig = param[at].copy()
            param[at] = orig + h
            up = loss(net.forward(x).out, y)[0]
            param[at] = orig - h
            down = loss(net.forward(x).out, y)[0]
            param[at] = orig
            numeric = (up - down) / (2 * h)
            worst_diff = np.maximum(worst_diff, np.abs(grad[at] - numeric))
            worst_ref = np.maximum(worst_ref, np.abs(numeric))
    return worst_diff / worst_ref


def recurrence_error(net: MLP, cache, grad_out: np.ndarray, deltas: list, h: float) -> np.ndarray:
    """Per seed: the hand-written recurrence (both readings) against the engine, worst layer.

    ``delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l)`` against the engine's ``delta_l`` and
    ``g_l = (g_{l+1} * f'(z_{l+1})) W_{l+1}^T``, ``g_L = delta_out W_out^T``, against the engine's
    ``dL/da_l = delta_{l+1} W_{l+1}^T``; ``f'`` from :func:`source_derivative`.
    """
    n_hidden = net.n_hidden
    slopes = [source_derivative(act, z, a, h) for act, z, a in zip(net.activations, cache.pre, cache.post, strict=True)]
    errors = []
    delta = grad_out
    for layer in range(n_hidden - 1, -1, -1):
        delta = np.matmul(delta, net.W[layer + 1].transpose(0, 2, 1)) * slopes[layer]
        errors.append(_rel(delta, deltas[layer]))
    g = np.matmul(grad_out, net.W[n_hidden].transpose(0, 2, 1))
    for layer in range(n_hidden - 1, -1, -1):
        if layer < n_hidden - 1:
            g = np.matmul(g * slopes[layer + 1], net.W[layer + 1].transpose(0, 2, 1))
        errors.append(_rel(g, np.matmul(deltas[layer + 1], net.W[layer + 1].transpose(0, 2, 1))))
    return np.max(errors, axis=0)


def time_tanh_derivative(z: np.ndarray, repeats: int) -> dict:
    """Seconds per element of each form of :data:`TIMED` (``a = tanh(z)`` is cached), ``repeats`` times.

    The forms are timed in turn within each repeat, so a ratio of two forms is taken between
    neighbouring measurements; the reported ratios are medians over repeats, robust to load changes.
    """
    names = {"np": np, "z": z, "a": np.tanh(z), "buf": np.empty_like(z)}
    timers = {label: timeit.Timer(expr, globals=names) for label, expr in TIMED.items()}
    runs = {label: [] for label in TIMED}
    for _ in range(repeats):
        for label, timer in timers.items():
            runs[label].append(timer.timeit(TIMING_NUMBER) / (TIMING_NUMBER * z.size))
    out = np.array(runs["from output: 1 - a*a"])
    return {
        "size": int(z.size),
        "repeats": repeats,
        "number": TIMING_NUMBER,
        "seconds_per_element": runs,
        "median_seconds_per_element": {label: float(np.median(r)) for label, r in runs.items()},
        "ratio_cosh_over_output": float(np.median(np.array(runs["from input: 1/cosh(z)**2"]) / out)),
        "ratio_tanh_over_output": float(np.median(np.array(runs["from input: 1 - tanh(z)**2"]) / out)),
    }


class BackpropCheck(Experiment):
    name = "backprop_check"
    description = "engine backward vs finite differences and vs the recurrence written out by hand"
    params_schema = {
        "type": "object",
        "required": ["activations"],
        "properties": {
            "activations": {"type": "array", "minItems": 1, "items": SPEC},
            "n_inputs": {"type": "integer", "minimum": 1},
            "hidden": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}},
            "n_outputs": {"type": "integer", "minimum": 2},
            "batch_size": {"type": "integer", "minimum": 1},
            "init": SPEC,
            "bias_init": SPEC,
            "fd_step": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e-3},
            "timing_size": {"type": "integer", "minimum": 0},
            "timing_repeats": {"type": "integer", "minimum": 1},
        },
    }
    defaults = {
        "n_inputs": 5,
        "hidden": [8, 8],
        "n_outputs": 3,
        "batch_size": 16,
        "init": "glorot_normal",
        "bias_init": {"name": "normal", "std": 0.5},
        "fd_step": 1e-6,
        "timing_size": 0,
        "timing_repeats": 9,
    }

    def check(self, params):
        super().check(params)
        for i, spec in enumerate(params["activations"]):
            try:
                get_activation(spec)
            except ValueError as err:
                raise ValueError(f"activations[{i}]: {err}") from None
            if get_activation(spec).name in ("mixed", "scaled"):
                raise ValueError(f"activations[{i}]: composite activations have no single f' to check")

    dims = {key: ("seed", "activation") for key in (*ERRORS, "near_kink", "loss")}

    def run(self, params, seeds, data):
        p = {**self.defaults, **params}
        loss = get_loss("softmax_cross_entropy")
        rng = seeds.rngs("data")
        x = np.stack([r.standard_normal((p["batch_size"], p["n_inputs"])) for r in rng])
        y = np.stack([np.eye(p["n_outputs"])[r.integers(0, p["n_outputs"], p["batch_size"])] for r in rng])
        results = {key: [] for key in (*ERRORS, "near_kink", "loss")}
        names, n_params = [], []
        for spec in params["activations"]:
            net = MLP(
                p["n_inputs"],
                p["hidden"],
                p["n_outputs"],
                activation=spec,
                init=p["init"],
                bias_init=p["bias_init"],
                seeds=seeds,
            )
            act = net.activations[0]
            cache = net.forward(x)
            value, grad_out = loss(cache.out, y)
            grads, deltas = net.backward(cache, grad_out)
            margin = KINK_MARGIN_STEPS * p["fd_step"]
            kink = np.any([near_kink(f, z, margin) for f, z in zip(net.activations, cache.pre, strict=True)], axis=0)
            fd = finite_difference_error(net, x, y, loss, grads, p["fd_step"])
            rec = recurrence_error(net, cache, grad_out, deltas, p["fd_step"])
            if act.name == "tanh":
                trick = np.max(
                    [_rel(1 - a**2, 1 / np.cosh(z) ** 2) for z, a in zip(cache.pre, cache.post, strict=True)], axis=0
                )
            else:
                trick = np.full(len(seeds), np.nan)
            uses_fd_slope = act.name not in ("tanh", "relu")
            results["max_rel_error"].append(np.where(kink, np.nan, fd))
            results["recurrence_error"].append(np.where(kink & uses_fd_slope, np.nan, rec))
            results["tanh_trick_error"].append(trick)
            results["near_kink"].append(kink)
            results["loss"].append(value)
            names.append(act.spec())
            n_params.append(int(sum(q[0].size for q in net.parameters())))
        arrays = {key: np.stack(v, axis=1) for key, v in results.items()}
        info = {
            "activations": names,
            "n_parameters": n_params,
            "n_near_kink": int(arrays["near_kink"].sum()),
            "sizes": [p["n_inputs"], *p["hidden"], p["n_outputs"]],
        }
        if p["timing_size"] and "tanh" in [n["name"] for n in names]:
            z = seeds.rngs("timing")[0].normal(0.0, 2.0, p["timing_size"])
            info["timing"] = time_tanh_derivative(z, p["timing_repeats"])
        return CellResult(arrays, info)

    @metric("engine gradient vs central differences of the loss: max |g - d| / max |d| (worst activation)")
    def max_rel_error(self, cell: Cell) -> np.ndarray:
        return _worst(cell.result.arrays["max_rel_error"])

    @metric("hand-written recurrence vs engine deltas, relative, worst layer and activation")
    def recurrence_error(self, cell: Cell) -> np.ndarray:
        return _worst(cell.result.arrays["recurrence_error"])

    @metric("tanh' from the output (1 - a^2) vs from the input (1/cosh(z)^2), relative (NaN: no tanh)")
    def tanh_trick_error(self, cell: Cell) -> np.ndarray:
        return _worst(cell.result.arrays["tanh_trick_error"])

    @metric("largest of the three errors above for each seed (NaN where a check is undefined)")
    def worst_error(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        checks = np.maximum(a["max_rel_error"], a["recurrence_error"])
        return _worst(np.fmax(checks, a["tanh_trick_error"]))


def _worst(values: np.ndarray) -> np.ndarray:
    """Per seed the largest finite value over the activation axis (NaN when there is none)."""
    finite = np.isfinite(values)
    return np.where(finite.any(axis=1), np.max(np.where(finite, values, -np.inf), axis=1), np.nan)
