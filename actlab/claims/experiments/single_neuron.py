"""A single ReLU neuron learning ReLU (seed 002): how often SGD gets stuck, and why.

Used by ``relu-learns-relu``. Seed 002 trains the simplest network there is to reproduce its own
activation: inputs ``x ~ N(0, 1)``, target ``y = relu(x)``, fresh batches of 1000 every step,
mean squared error, plain SGD at the Keras default rate 0.01, ``fit_generator`` with 100 steps
per epoch for 20 epochs. Its three models (``model`` parameter):

* ``weight``: ``f(x) = g(w x)`` (Keras ``Dense(1, use_bias=False)`` then ``ReLU``);
* ``weight-bias``: ``f(x) = g(w x + b)``;
* ``output-layer``: ``f(x) = v g(w x + b) + c`` (a hidden unit, then a linear output unit);

with ``g`` the activation (ReLU in the document). For ``weight`` with ReLU the expected loss is
known in closed form, since ``relu(w x) = w relu(x)`` for ``w > 0`` and ``|w| relu(-x)`` for
``w < 0`` (with ``E relu(x)^2 = E relu(-x)^2 = 1/2``)::

    L(w) = (w - 1)^2 / 2          (w >= 0),      L(w) = (w^2 + 1) / 2     (w <= 0),

so for ``w < 0`` the gradient ``dL/dw = w`` only shrinks ``|w|``: SGD multiplies ``w`` by about
``1 - lr`` per step and ``w`` creeps toward 0 from below without crossing it, where the loss is
``E relu(x)^2 = 1/2``, the loss of predicting 0. A leaky slope ``a`` adds ``-a`` to that gradient,
which pushes ``w`` across 0 (``dL/dw = (1 + a^2) w - a`` for ``w < 0``).

Every cell trains ``n_seeds`` random starts (each parameter drawn from ``init`` / ``bias_init``;
Keras' default ``glorot_uniform`` for a 1x1 kernel is ``U(-sqrt 3, sqrt 3)``) plus two extra
ensemble members: the *document start* (``w = document_start``, ``b = 0``, ``v = 1``, ``c = 0``)
and the *reference start* at the target's own parameters (``w = 1, b = 0, v = 1, c = 0``). The
reference run is what the architecture reaches when it starts at the answer; a run *fails* when
its final expected loss exceeds the lowest expected loss of the reference run by more than
``fail_margin`` (so an activation that cannot fit ``relu(x)`` exactly, like ELU, is not failing
for that reason).

Data: by default every member draws its own fresh batches (:class:`~actlab.engine.training.StreamData`;
the two extra members use seed indices ``EXTRA_INDEX`` and ``EXTRA_INDEX + 1`` of the cell's
key). With ``shared_batches`` one fresh batch per step, drawn from a stream of the cell's key, is
shared by all members (:class:`SharedBatches`): each run is still the document's procedure, the
members differ only in their starts, and sampling, which dominates the cost of a one-neuron
network, is paid once per step instead of once per seed.

The expected loss ``E (f(x) - relu(x))^2`` is measured at the start and after every epoch on
``eval_points`` normal quantiles ``x_i = Phi^-1((i - 1/2) / n)`` rescaled to unit second moment
(an equal-weight quadrature of the standard normal), so it is free of batch noise. Parameters
are recorded every ``snapshot_every`` SGD steps (training in sub-epochs of that many steps,
which draws exactly the same batches as whole epochs would).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from actlab.claims.experiments.base import EPOCHS, SPEC, Cell, CellResult, Experiment, metric
from actlab.engine.activations import get_activation
from actlab.engine.datasets import relu_1d_sample
from actlab.engine.network import MLP
from actlab.engine.seeding import Seeds
from actlab.engine.training import StreamData, train

MODELS = ("weight", "weight-bias", "output-layer")
#: parameter names stored per model, in the column order of the ``trajectory`` arrays
PARAM_NAMES = {"weight": ("w",), "weight-bias": ("w", "b"), "output-layer": ("w", "b", "v", "c")}
#: the target's own parameters: relu(1 * x + 0), then 1 * h + 0
TARGET = {"w": 1.0, "b": 0.0, "v": 1.0, "c": 0.0}
#: seed index of the document start; the reference start uses the next one
EXTRA_INDEX = 1_000_000


def normal_quantiles(n: int) -> np.ndarray:
    """``n`` standard-normal quantiles ``Phi^-1((i - 1/2) / n)``, scaled to mean square exactly 1.

    Their plain mean approximates an expectation over ``x ~ N(0, 1)`` (quantile quadrature); the
    rescaling corrects the truncated tails so that ``mean(relu(x)^2) = 1/2`` exactly.
    """
    dist = NormalDist()
    x = np.array([dist.inv_cdf((i + 0.5) / n) for i in range(n)])
    return x / np.sqrt(np.mean(x * x))


def build_net(model: str, activation, seeds: Seeds, init="glorot_uniform", bias_init="zeros") -> MLP:
    """The document's network ``model`` (see the module docstring) as a seed ensemble."""
    if model == "output-layer":
        return MLP(
            1, [1], 1, activation=activation, output_activation="identity", init=init, bias_init=bias_init, seeds=seeds
        )
    return MLP(
        1, [], 1, output_activation=activation, init=init, bias_init=bias_init, bias=model == "weight-bias", seeds=seeds
    )


def get_params(net: MLP, model: str) -> np.ndarray:
    """The parameters as columns ``PARAM_NAMES[model]``, shape ``(S, P)``."""
    if model == "output-layer":
        cols = [net.W[0], net.b[0], net.W[1], net.b[1]]
    else:
        cols = [net.W[0], net.b[0]] if model == "weight-bias" else [net.W[0]]
    return np.stack([c.reshape(net.n_seeds) for c in cols], axis=1)


def set_params(net: MLP, model: str, member: int, values: dict) -> None:
    """Overwrite ensemble member ``member``'s parameters from ``{"w": .., "b": .., ...}``."""
    arrays = [net.W[0], net.b[0], net.W[1], net.b[1]] if model == "output-layer" else [net.W[0], net.b[0]]
    for name, arr in zip(PARAM_NAMES[model], arrays, strict=False):
        arr[member] = values[name]


def net_output(theta: np.ndarray, model: str, activation, x: np.ndarray) -> np.ndarray:
    """``f(x)`` for parameter rows ``theta`` ``(..., P)`` and inputs ``x`` ``(n,)``: shape ``(..., n)``."""
    g = get_activation(activation)
    w = theta[..., 0:1]
    b = theta[..., 1:2] if model != "weight" else 0.0
    h = g.forward(w * x + b)
    if model == "output-layer":
        return theta[..., 2:3] * h + theta[..., 3:4]
    return h


def expected_loss(theta: np.ndarray, model: str, activation, x: np.ndarray) -> np.ndarray:
    """``E (f(x) - relu(x))^2`` on quadrature points ``x``, one value per parameter row."""
    with np.errstate(all="ignore"):
        diff = net_output(theta, model, activation, x) - np.maximum(x, 0)
        return np.mean(diff * diff, axis=-1)


class SharedBatches:
    """A :class:`~actlab.engine.training.StreamData` whose every batch is shared by all ensemble members.

    Each step draws one fresh batch from ``rng`` and hands the same ``(1, B, n)`` arrays to every
    seed (the network broadcasts a shared batch), so sampling costs one draw per step instead of
    one per seed. Each seed's run is still a faithful replicate of the document's (fresh
    ``N(0, 1)`` batches every step); the seeds differ only in their starts.
    """

    def __init__(self, stream: StreamData, rng: np.random.Generator) -> None:
        self.stream, self.rng = stream, rng

    def batches(self, rngs):
        return self.stream.batches([self.rng])


def excess_loss(arrays: dict) -> np.ndarray:
    """Final expected loss minus the reference level, per seed; NaN for diverged seeds.

    The reference level is the lowest expected loss the reference run (started at the target's
    parameters) reached at any snapshot: its final loss when it trains stably, and the loss
    before it blew up when the learning rate makes even that start diverge.
    """
    final = arrays["expected_loss"][:, -1]
    with np.errstate(invalid="ignore"):
        excess = final - np.nanmin(arrays["reference_expected_loss"])
    return np.where(arrays["diverged"] | ~np.isfinite(final), np.nan, excess)


def backwards(arrays: dict) -> np.ndarray:
    """Whether each random start points away from the target (``w < 0``), shape ``(S,)``."""
    return arrays["trajectory"][:, 0, 0] < 0


def failures(excess: np.ndarray, margin: float) -> np.ndarray:
    """1.0 where ``excess > margin``, 0.0 where not, NaN where ``excess`` is NaN."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(excess), np.nan, (excess > margin).astype(float))


class SingleNeuron(Experiment):
    name = "single_neuron"
    description = "seed 002's single neuron learning relu(x): failure rate over random starts, trajectories"
    params_schema = {
        "type": "object",
        "required": [
            "model",
            "activation",
            "lr",
            "batch_size",
            "steps_per_epoch",
            "epochs",
            "init",
            "bias_init",
            "document_start",
            "fail_margin",
        ],
        "properties": {
            "model": {"enum": list(MODELS)},
            "activation": SPEC,
            "lr": {"type": "number", "exclusiveMinimum": 0},
            "batch_size": {"type": "integer", "minimum": 1},
            "steps_per_epoch": {"type": "integer", "minimum": 1},
            "epochs": {**EPOCHS, "minimum": 1},
            "snapshot_every": {"type": "integer", "minimum": 1},
            "init": SPEC,
            "bias_init": SPEC,
            "document_start": {"type": "number"},
            "fail_margin": {"type": "number", "exclusiveMinimum": 0},
            "eval_points": {"type": "integer", "minimum": 10},
            "shared_batches": {"type": "boolean"},
        },
    }

    def check(self, params):
        super().check(params)
        every = params.get("snapshot_every", params["steps_per_epoch"])
        if params["steps_per_epoch"] % every:
            raise ValueError(f"snapshot_every: {every} does not divide steps_per_epoch {params['steps_per_epoch']}")

    dims = {
        "trajectory": ("seed", "snapshot", "parameter"),
        "expected_loss": ("seed", "epoch"),
        "epoch_loss": ("seed", "train_epoch"),
        "diverged": ("seed",),
        "document_trajectory": ("snapshot", "parameter"),
        "document_expected_loss": ("epoch",),
        "document_epoch_loss": ("train_epoch",),
        "reference_trajectory": ("snapshot", "parameter"),
        "reference_expected_loss": ("epoch",),
        "snapshot_step": ("snapshot",),
    }

    def run(self, params, seeds, data):
        model, act = params["model"], params["activation"]
        every = params.get("snapshot_every", params["steps_per_epoch"])
        n = len(seeds)
        members = Seeds([*seeds.indices, EXTRA_INDEX, EXTRA_INDEX + 1], seeds.key)
        net = build_net(model, act, members, params["init"], params["bias_init"])
        set_params(net, model, n, {**TARGET, "w": params["document_start"]})
        set_params(net, model, n + 1, TARGET)
        snaps = []

        def snapshot(epoch, net):
            snaps.append(get_params(net, model))

        stream = StreamData(relu_1d_sample, params["batch_size"], every)
        if params.get("shared_batches", False):
            stream = SharedBatches(stream, Seeds([0], (*seeds.key, "shared-batches")).rngs("data")[0])
        history = train(
            net,
            stream,
            loss="mse",
            optimizer={"name": "sgd", "lr": params["lr"]},
            epochs=params["epochs"] * params["steps_per_epoch"] // every,
            on_epoch=snapshot,
        )
        trajectory = np.stack(snaps, axis=1)  # (S + 2, T + 1, P)
        per_epoch = params["steps_per_epoch"] // every
        x_eval = normal_quantiles(params.get("eval_points", 2000))
        eloss = expected_loss(trajectory[:, ::per_epoch], model, act, x_eval)  # (S + 2, E + 1)
        # Keras' logs["loss"]: the mean training-batch loss over each epoch's steps
        epoch_loss = history.metrics["loss"].reshape(n + 2, params["epochs"], -1).mean(axis=2)
        arrays = {
            "trajectory": trajectory[:n],
            "expected_loss": eloss[:n],
            "epoch_loss": epoch_loss[:n],
            "diverged": history.diverged[:n],
            "document_trajectory": trajectory[n],
            "document_expected_loss": eloss[n],
            "document_epoch_loss": epoch_loss[n],
            "reference_trajectory": trajectory[n + 1],
            "reference_expected_loss": eloss[n + 1],
            "snapshot_step": np.arange(trajectory.shape[1]) * every,
        }
        info = {
            "n_diverged": int(history.diverged[:n].sum()),
            "document_start_diverged": bool(history.diverged[n]),
            "reference_diverged": bool(history.diverged[n + 1]),
            "reference_final_loss": float(eloss[n + 1, -1]),
            "parameters": list(PARAM_NAMES[model]),
        }
        return CellResult(arrays, info)

    @metric(
        "1 if the final expected MSE exceeds the lowest one of a run started at the target's parameters by more than "
        "fail_margin, else 0 (NaN if diverged)",
        binary=True,
    )
    def failure(self, cell: Cell) -> np.ndarray:
        return failures(excess_loss(cell.result.arrays), cell.params["fail_margin"])

    @metric("final expected MSE minus the lowest expected MSE of the run started at the target's parameters")
    def excess_loss(self, cell: Cell) -> np.ndarray:
        return excess_loss(cell.result.arrays)

    @metric("1 if the random start has w < 0 (the unit points away from the target), else 0", binary=True)
    def backwards_start(self, cell: Cell) -> np.ndarray:
        return backwards(cell.result.arrays).astype(float)
