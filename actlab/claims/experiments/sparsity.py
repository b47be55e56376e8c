"""Sparsity of ReLU representations: exact zeros at initialization, under an L1 penalty, and generalization.

Used by three claims. Seed 000 quotes Glorot, Bordes & Bengio (2011, Deep sparse rectifier neural
networks): after a uniform initialization of the weights about 50% of the hidden units' outputs are
exact zeros (``init-sparsity-half``), and a sparsity-inducing penalty raises this fraction easily
(``l1-raises-sparsity``). Seed 003 adds that the more neurons output zero after training, the
better the network generalizes (``sparsity-generalizes``).

Sparsity is the fraction of exact zeros among the hidden outputs of a network on a set of inputs,

.. math:: s = \\frac{1}{B \\sum_l n_l} \\sum_l \\sum_{b=1}^{B} \\sum_{j=1}^{n_l} [a_{lbj} = 0],

pooled over all ``depth`` hidden layers (of equal width ``n``), measured in eval mode by
:func:`actlab.engine.probes.probe`.

Why one half at initialization. With zero biases and weights drawn from any distribution symmetric
about 0 without an atom at 0 (uniform, normal, Glorot, He: the scale does not matter, ReLU is
positively homogeneous), the pre-activation ``z = w . a`` of a unit on an input whose previous-layer
output ``a`` is non-zero is symmetric about 0, so ``P(z <= 0) = 1/2``: the *expected* fraction of
zeros is exactly 1/2 in the first layer, whatever the inputs (non-negative digit pixels included),
and in every later layer except on the inputs for which a whole earlier layer is already zero
(then ``a = 0`` and every later unit outputs exactly 0). That happens with probability ``2^-n`` per
layer (the born-dead mechanism, :mod:`actlab.claims.experiments.born_dead`), so only narrow nets have
more zeros in their deeper layers.

A single network's fraction fluctuates around 1/2, because a unit keeps its weights across inputs:
with strongly correlated inputs (raw pixels share a large common component; deep layers align
their inputs further) each unit is either mostly on or mostly off, and the fraction behaves like
the mean of ``n depth`` fair coins, ``E|s - 1/2| ~ sqrt(2 / pi) / (2 sqrt(n depth))``, and more in
narrow nets, where a silent layer silences every later one on that input. Standardized inputs
decorrelate the first layer. A positive bias breaks the symmetry (fewer zeros), the more so the
smaller the weights.

The L1 penalty is the engine's activation penalty ``l1 * sum_l mean_b sum_j |a_lbj|`` added to the
loss (:func:`actlab.engine.training.train`), the sparsity-inducing regularizer of Glorot et al. 2011.
"""

from __future__ import annotations

import numpy as np

from actlab.claims.experiments.base import (
    DEPTH,
    EPOCHS,
    SPEC,
    WIDTH,
    Cell,
    CellResult,
    Experiment,
    build_mlp,
    metric,
)
from actlab.engine import probes
from actlab.engine.initializers import get_initializer
from actlab.engine.losses import get_loss
from actlab.engine.training import ArrayData, train

NET_PROPERTIES = {
    "dataset": {"type": "string"},
    "depth": DEPTH,
    "activation": SPEC,
    "init": SPEC,
    "bias_init": SPEC,
    "dtype": {"enum": ["float32", "float64"]},
}
TRAIN_PROPERTIES = {
    **NET_PROPERTIES,
    "epochs": {**EPOCHS, "minimum": 1},
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "momentum": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    "batch_size": {"type": "integer", "minimum": 1},
}
TRAIN_REQUIRED = ["dataset", "depth", "init", "epochs", "lr", "batch_size"]
#: how a family's members are grouped before ranking: by equal width, by equal L1, or not at all
STRATA = ("width", "l1", "none")


def train_and_measure(params: dict, ds, width: int, l1: float, seeds) -> dict[str, np.ndarray]:
    """Train one ensemble with activation penalty ``l1`` and measure its sparsity and accuracy.

    Returns per-seed arrays: ``zero_frac`` and ``dead_frac`` on the test inputs, ``(S, 2, depth)``
    (at initialization and after training); ``test_accuracy`` ``(S, 2)``; ``train_accuracy`` on the
    whole training split after training and ``diverged``, ``(S,)``. Diverged seeds have NaN
    measurements.
    """
    net = build_mlp(params, ds, seeds, width=width)
    epochs = params["epochs"]
    history = train(
        net,
        ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
        loss=ds.loss,
        optimizer={"name": "sgd", "lr": params["lr"], "momentum": params.get("momentum", 0.0)},
        epochs=epochs,
        l1_activation=l1,
        probe=(ds.x_test, ds.y_test),
        probe_every=epochs,
    )
    on_train = probes.probe(net, get_loss(ds.loss), ds.x_train, ds.y_train)
    diverged = history.diverged
    train_accuracy = np.where(diverged, np.nan, on_train["accuracy"])
    return {
        "zero_frac": history.metrics["probe_zero_frac"],
        "dead_frac": history.metrics["probe_dead_frac"],
        "test_accuracy": history.metrics["probe_accuracy"],
        "train_accuracy": train_accuracy,
        "diverged": diverged,
    }


class InitSparsity(Experiment):
    name = "init_sparsity"
    description = "fraction of exact-zero ReLU outputs per hidden layer at initialization"
    params_schema = {
        "type": "object",
        "required": ["dataset", "depth", "width", "init"],
        "properties": {
            **NET_PROPERTIES,
            "width": WIDTH,
            "probe_size": {"type": "integer", "minimum": 1},
        },
    }

    dims = {"zero_frac": ("seed", "layer"), "zero_frac_standardized": ("seed", "layer")}

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        net = build_mlp(params, ds, seeds)
        n = min(params.get("probe_size", 512), len(ds.x_train))
        x, y = ds.x_train[:n], ds.y_train[:n]
        mean, std = ds.x_train.mean(axis=0), ds.x_train.std(axis=0)
        std[std == 0] = 1.0  # constant pixels (digits' corners) stay at 0
        loss = get_loss(ds.loss)
        given = probes.probe(net, loss, x, y)
        standardized = probes.probe(net, loss, (x - mean) / std, y)
        arrays = {
            "zero_frac": given["zero_frac"],
            "zero_frac_standardized": standardized["zero_frac"],
        }
        return CellResult(arrays, {"probe_size": n, "init_used": get_initializer(params["init"]).spec()})

    @metric("fraction of exact zeros among all hidden outputs at init, on the probe inputs as given")
    def zero_frac(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["zero_frac"].mean(axis=1)

    @metric("|fraction of exact zeros among all hidden outputs at init - 0.5|, inputs as given")
    def abs_dev_from_half(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac"].mean(axis=1) - 0.5)

    @metric("|fraction of exact zeros of the first hidden layer at init - 0.5|, inputs as given")
    def abs_dev_first_layer(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac"][:, 0] - 0.5)

    @metric("|fraction of exact zeros of the last hidden layer at init - 0.5|, inputs as given")
    def abs_dev_last_layer(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac"][:, -1] - 0.5)

    @metric(
        "|fraction of exact zeros among all hidden outputs at init - 0.5|, on the probe inputs standardized with "
        "the training split's mean and standard deviation"
    )
    def abs_dev_standardized(self, cell: Cell) -> np.ndarray:
        return np.abs(cell.result.arrays["zero_frac_standardized"].mean(axis=1) - 0.5)


class L1Sparsity(Experiment):
    name = "l1_sparsity"
    description = "sparsity of hidden outputs and accuracy after training with an L1 activation penalty"
    params_schema = {
        "type": "object",
        "required": [*TRAIN_REQUIRED, "width", "l1"],
        "properties": {
            **TRAIN_PROPERTIES,
            "width": WIDTH,
            "l1": {"type": "number", "minimum": 0},
        },
    }

    dims = {
        "zero_frac": ("seed", "stage", "layer"),
        "dead_frac": ("seed", "stage", "layer"),
        "test_accuracy": ("seed", "stage"),
        "train_accuracy": ("seed",),
        "diverged": ("seed",),
    }

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        arrays = train_and_measure(params, ds, params["width"], params["l1"], seeds)
        return CellResult(arrays, {"n_diverged": int(arrays["diverged"].sum())})

    @metric("fraction of exact zeros among all hidden outputs on the test inputs after training")
    def sparsity(self, cell: Cell) -> np.ndarray:
        return final_sparsity(cell.result.arrays)

    @metric("fraction of exact zeros among all hidden outputs on the test inputs at initialization")
    def sparsity_init(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["zero_frac"][:, 0].mean(axis=1)

    @metric("test-set accuracy after training")
    def test_accuracy(self, cell: Cell) -> np.ndarray:
        return final_test_accuracy(cell.result.arrays)

    @metric("training-set accuracy after training")
    def train_accuracy(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["train_accuracy"]

    @metric("training minus test accuracy after training")
    def generalization_gap(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["train_accuracy"] - final_test_accuracy(cell.result.arrays)

    @metric("fraction of hidden units that output 0 for every test input after training")
    def dead_frac(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["dead_frac"][:, -1].mean(axis=1)


class SparsityFamily(Experiment):
    name = "sparsity_family"
    description = "rank correlation of sparsity with test accuracy across a family of nets, one family per seed"
    params_schema = {
        "type": "object",
        "required": [*TRAIN_REQUIRED, "widths", "l1_values", "stratify"],
        "properties": {
            **TRAIN_PROPERTIES,
            "widths": {"type": "array", "minItems": 1, "items": WIDTH},
            "l1_values": {"type": "array", "minItems": 1, "items": {"type": "number", "minimum": 0}},
            "stratify": {"enum": list(STRATA)},
        },
    }

    def check(self, params):
        super().check(params)
        n_widths, n_l1 = len(set(params["widths"])), len(set(params["l1_values"]))
        size = {"width": n_l1, "l1": n_widths, "none": n_widths * n_l1}[params["stratify"]]
        if size < 3:
            raise ValueError(f"stratify: its strata have {size} members; a rank correlation needs at least 3")

    dims = {
        "sparsity": ("seed", "member"),
        "test_accuracy": ("seed", "member"),
        "train_accuracy": ("seed", "member"),
        "diverged": ("seed", "member"),
        "member_width": ("member",),
        "member_l1": ("member",),
    }

    def run(self, params, seeds, data):
        ds = data[params["dataset"]]
        members = [(w, l1) for w in params["widths"] for l1 in params["l1_values"]]
        # every member is trained from the same seeds: seed s is one replicate of the whole family
        runs = [train_and_measure(params, ds, w, l1, seeds) for w, l1 in members]
        arrays = {
            "sparsity": np.stack([final_sparsity(r) for r in runs], axis=1),
            "test_accuracy": np.stack([final_test_accuracy(r) for r in runs], axis=1),
            "train_accuracy": np.stack([r["train_accuracy"] for r in runs], axis=1),
        }
        arrays["member_width"] = np.array([w for w, _ in members])
        arrays["member_l1"] = np.array([l1 for _, l1 in members], float)
        arrays["diverged"] = np.stack([r["diverged"] for r in runs], axis=1)
        return CellResult(arrays, {"members": len(members), "n_diverged": int(arrays["diverged"].sum())})

    def diverged(self, cell):
        """A seed's family counts as diverged when any of its members diverged, shape ``(S,)``."""
        return cell.result.arrays["diverged"].any(axis=1)

    @metric(
        "Spearman rank correlation between sparsity (exact zeros on the test set) and test accuracy across the "
        "members of one seed's family, averaged over the strata named by `stratify`"
    )
    def rho_test_accuracy(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        return stratified_spearman(a["sparsity"], a["test_accuracy"], _strata(a, cell.params["stratify"]))

    @metric(
        "Spearman correlation between sparsity and the generalization gap (training minus test accuracy) across "
        "one seed's family, averaged over the strata named by `stratify`"
    )
    def rho_gap(self, cell: Cell) -> np.ndarray:
        a = cell.result.arrays
        gap = a["train_accuracy"] - a["test_accuracy"]
        return stratified_spearman(a["sparsity"], gap, _strata(a, cell.params["stratify"]))


def _strata(a: dict[str, np.ndarray], stratify: str) -> list[np.ndarray]:
    """Boolean member masks of the strata: members of equal width, of equal L1, or all members."""
    if stratify == "none":
        return [np.ones(len(a["member_width"]), bool)]
    key = a["member_width"] if stratify == "width" else a["member_l1"]
    return [key == v for v in np.unique(key) if np.sum(key == v) >= 3]


def stratified_spearman(x: np.ndarray, y: np.ndarray, strata: list[np.ndarray]) -> np.ndarray:
    """Per row, the mean over ``strata`` (member masks) of Spearman's rho of ``x`` and ``y`` within the stratum.

    A stratified (pooled-within) rank correlation: e.g. strata of equal width hold width fixed, so
    only what varies inside a stratum (the L1 coefficient) can drive the correlation.
    """
    return np.mean([spearman_rows(x[:, m], y[:, m]) for m in strata], axis=0)


def final_sparsity(a: dict[str, np.ndarray]) -> np.ndarray:
    """Fraction of exact zeros among all hidden outputs after training, ``(S,)``, from :func:`train_and_measure`."""
    return a["zero_frac"][:, -1].mean(axis=1)


def final_test_accuracy(a: dict[str, np.ndarray]) -> np.ndarray:
    """Test accuracy after training, ``(S,)``, from :func:`train_and_measure`'s arrays."""
    return a["test_accuracy"][:, -1]


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Ranks (1-based) along the last axis, tied values sharing their average rank (``scipy.stats.rankdata``).

    A value that occurs ``c`` times after ``e - c`` smaller ones occupies ranks ``e - c + 1 .. e``
    and gets their mean ``e - (c - 1) / 2``.
    """
    x = np.asarray(x, float)
    ranks = np.empty_like(x)
    for index in np.ndindex(x.shape[:-1]):
        _, inverse, counts = np.unique(x[index], return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        ranks[index] = (ends - (counts - 1) / 2)[inverse]
    return ranks


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of ``x[s]`` with ``y[s]`` for every row ``s`` (Pearson of average ranks).

    NaN for a row with a non-finite value (a diverged member) or a constant variable.
    """
    x, y = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
    bad = ~(np.isfinite(x).all(axis=1) & np.isfinite(y).all(axis=1))
    rx, ry = rank_rows(np.where(bad[:, None], 0, x)), rank_rows(np.where(bad[:, None], 0, y))
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.sum(rx * ry, axis=1) / np.sqrt(np.sum(rx * rx, axis=1) * np.sum(ry * ry, axis=1))
    rho[bad] = np.nan
    return rho
