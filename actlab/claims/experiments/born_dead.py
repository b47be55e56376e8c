"""Born dead: how often a freshly initialized deep, narrow ReLU net computes a constant function.

Used by ``born-dead-depth`` (beyond the sources: Lu, Shin, Su & Karniadakis 2020, Dying ReLU and
initialization: theory and numerical examples, Commun. Comput. Phys. 28, on seed 000's dead units).
Lu et al. call a network *born dead* on an input domain ``Omega`` when it is a constant function on
``Omega`` at initialization; for ReLU units this happens when some hidden layer outputs zero in
every unit for every input (a *dead layer*: everything after it sees a constant), and no gradient
can then reach the layers below it. They prove that, at a fixed width, the probability tends to 1
as the depth grows, and propose the randomized asymmetric initialization (RAI,
:class:`actlab.engine.initializers.RandomizedAsymmetric`) against it.

The formula quoted with the claim. Take one input ``x != 0``, hidden layers of ``N`` units, weights
drawn independently from a distribution symmetric about 0 without an atom at 0, and biases either
zero or drawn from such a distribution. Given a non-zero output ``a`` of the previous layer, the
pre-activations ``w_j . a + b_j`` of a layer's units are independent, symmetric about 0 and almost
surely non-zero, so all ``N`` units output 0 at ``x`` with probability ``2^-N`` independently of the
layers before: the first all-zero layer has a geometric distribution, and with ``L - 1`` hidden
layers (Lu et al. count the output layer in ``L``, so ``L - 1`` is this module's ``depth``)

.. math:: P(\\text{some hidden layer is all zero at } x) = 1 - (1 - 2^{-N})^{L-1}.

A net constant on a set ``Omega`` of inputs has such a layer at every ``x`` in ``Omega``, so over a
domain this is an *upper bound* on the born-dead probability, reached when ``Omega`` lies on one
ray from the origin and the biases are zero (a bias-free ReLU net is positively homogeneous). The
bound tends to 1 as ``L -> infinity`` at fixed ``N`` and to 0 as ``N -> infinity`` at fixed ``L``;
the born-dead probability itself tends to 1 with depth (Lu et al.'s theorem; the gap to the bound
closes because a deep narrow net maps the whole domain onto nearly one ray) and to 0 with width (it
is below the bound). Asymmetric initializations such as RAI violate the symmetry assumption.

A cell is one depth. For every width in ``widths`` it draws ``n_seeds`` independent nets of
``depth`` hidden layers with ``n_inputs`` inputs and one output from the claim's ``init`` (and, for
the figure, :mod:`actlab.claims.figures.born_dead`, nets from a ``contrast_init`` on the first
``contrast_seeds`` seeds), and runs them on a probe set of ``probe_size`` inputs drawn uniformly
from ``[-input_limit, input_limit]^n_inputs`` (each seed its own set, from its ``"probe"`` stream).
Nothing is trained. Per net it records whether the output is the same for every probe input (*born
dead*; a finite probe set can only over-count, and with one input dimension and zero biases two
probe inputs of opposite sign already decide it exactly), the first hidden layer that is constant
over the probe set, and whether some hidden layer is all zero at the first probe input (the event
whose probability is the formula above).
"""

from __future__ import annotations

import math

import numpy as np

from actlab.claims.experiments.base import DEPTH, SPEC, WIDTH, Cell, CellResult, Experiment, _check_spec, metric
from actlab.engine.initializers import get_initializer
from actlab.engine.network import MLP
from actlab.engine.seeding import Seeds

#: which initializers a cell draws, and under which array-name suffix
INIT_KEYS = {"init": "", "contrast_init": "_contrast"}


def lu_formula(width: int | np.ndarray, depth: int | np.ndarray) -> np.ndarray:
    """``1 - (1 - 2^-width)^depth``: probability that one of ``depth`` hidden layers is all zero at one input."""
    return 1.0 - (1.0 - 2.0 ** -np.asarray(width, float)) ** np.asarray(depth, float)


class BornDead(Experiment):
    name = "born_dead"
    description = "fraction of deep narrow ReLU nets that are constant functions at initialization"
    params_schema = {
        "type": "object",
        "required": ["depth", "widths", "width", "init"],
        "properties": {
            "depth": DEPTH,
            "widths": {"type": "array", "minItems": 1, "items": WIDTH},
            "width": WIDTH,
            "activation": SPEC,
            "init": SPEC,
            "contrast_init": SPEC,
            "contrast_seeds": {"type": "integer", "minimum": 1},
            "bias_init": SPEC,
            "n_inputs": {"type": "integer", "minimum": 1},
            "probe_size": {"type": "integer", "minimum": 2},
            "input_limit": {"type": "number", "exclusiveMinimum": 0},
        },
    }

    def check(self, params):
        super().check(params)
        if "contrast_init" in params:
            _check_spec(get_initializer, params["contrast_init"], "contrast_init")
        if params["width"] not in params["widths"]:
            raise ValueError(f"width: the judged width {params['width']} is not among widths {params['widths']}")

    dims = {
        "widths": ("width",),
        "born_dead": ("seed", "width"),
        "dead_at_one_input": ("seed", "width"),
        "first_constant_layer": ("seed", "width"),
        "born_dead_contrast": ("first_seeds", "width"),
        "dead_at_one_input_contrast": ("first_seeds", "width"),
        "first_constant_layer_contrast": ("first_seeds", "width"),
    }
    #: the contrast arrays: only with a contrast_init
    optional_arrays = frozenset({"born_dead_contrast", "dead_at_one_input_contrast", "first_constant_layer_contrast"})

    def run(self, params, seeds, data):
        widths = list(params["widths"])
        n_inputs = params.get("n_inputs", 1)
        limit = params.get("input_limit", math.sqrt(3.0))
        size = params.get("probe_size", 64)
        x = np.stack([rng.uniform(-limit, limit, size=(size, n_inputs)) for rng in seeds.rngs("probe")])
        arrays = {"widths": np.array(widths)}
        for key, suffix in INIT_KEYS.items():
            if key not in params:
                continue
            n = len(seeds) if key == "init" else min(params.get("contrast_seeds", len(seeds)), len(seeds))
            columns = [
                _born_dead(
                    params, params[key], width, Seeds(seeds.indices[:n], (*seeds.key, key, f"width{width}")), x[:n]
                )
                for width in widths
            ]
            for name in ("born_dead", "dead_at_one_input", "first_constant_layer"):
                arrays[name + suffix] = np.stack([c[name] for c in columns], axis=1)
        return CellResult(arrays, {"formula": [float(lu_formula(w, params["depth"])) for w in widths]})

    @metric(
        "1 if the net's output is the same for every probe input at init (born dead), else 0; at the judged width, "
        "with `init`",
        binary=True,
    )
    def born_dead(self, cell: Cell) -> np.ndarray:
        return _at_judged_width(cell, "born_dead").astype(float)

    @metric("born dead (0/1) at the judged width with `contrast_init`", binary=True)
    def born_dead_contrast(self, cell: Cell) -> np.ndarray:
        return _at_judged_width(cell, "born_dead_contrast").astype(float)

    @metric(
        "1 if some hidden layer outputs all zeros at the first probe input, else 0 (probability 1 - (1 - 2^-N)^depth "
        "under Lu et al.'s assumptions)",
        binary=True,
    )
    def dead_at_one_input(self, cell: Cell) -> np.ndarray:
        return _at_judged_width(cell, "dead_at_one_input").astype(float)

    @metric("born dead (0/1) minus 1 - (1 - 2^-N)^depth; its mean is the measured rate minus the formula")
    def born_dead_minus_formula(self, cell: Cell) -> np.ndarray:
        return _at_judged_width(cell, "born_dead") - lu_formula(cell.params["width"], cell.params["depth"])


def _at_judged_width(cell: Cell, key: str) -> np.ndarray:
    """Array ``key`` ``(S, n_widths)`` of a cell at its judged ``width``, shape ``(S,)``."""
    a = cell.result.arrays
    return a[key][:, list(a["widths"]).index(cell.params["width"])]


def _born_dead(params: dict, init, width: int, seeds: Seeds, x: np.ndarray) -> dict[str, np.ndarray]:
    """Draw ``len(seeds)`` nets of the cell's depth at ``width`` and test them on the probe inputs ``x``.

    Only the current layer's output is kept (deep ensembles of thousands of nets would not fit
    in memory with a full forward cache).
    """
    net = MLP(
        x.shape[2],
        [width] * params["depth"],
        1,
        activation=params.get("activation", "relu"),
        init=init,
        bias_init=params.get("bias_init", "zeros"),
        seeds=seeds,
    )
    first_constant = np.zeros(len(seeds), int)
    zero_at_one = np.zeros(len(seeds), bool)
    a = x
    for layer in range(net.n_hidden):
        a = net.activations[layer].forward(_dense(net, a, layer))
        constant = np.all(a == a[:, :1, :], axis=(1, 2))
        first_constant[(first_constant == 0) & constant] = layer + 1
        zero_at_one |= np.all(a[:, 0, :] == 0, axis=1)
    out = _dense(net, a, net.n_hidden)
    born_dead = np.all(out == out[:, :1, :], axis=(1, 2))
    return {"born_dead": born_dead, "dead_at_one_input": zero_at_one, "first_constant_layer": first_constant}


def _dense(net: MLP, a: np.ndarray, layer: int) -> np.ndarray:
    """``a W_l + b_l`` of dense layer ``layer`` (no bias when the net has none)."""
    z = np.matmul(a, net.W[layer])
    return z if net.b[layer] is None else z + net.b[layer]
