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

from pathlib import Path
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

    def figure(self, claim, cells, verdict, path: Path) -> str:
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        fig = plotting.plt.figure(figsize=(17, 8.5))
        grid = fig.add_gridspec(2, 4)
        doc = _pick(cells, model="weight", relu=True, lr=0.01)
        surf = _pick(cells, model="weight-bias", relu=True, lr=0.01)
        out = _pick(cells, model="output-layer", relu=True, lr=0.01)
        notes = []
        if doc is not None:
            notes.append(_document_panels(fig, grid, doc))
        if surf is not None:
            notes.append(_surface_panel(fig.add_subplot(grid[0, 2]), surf))
        if out is not None:
            notes.append(_output_layer_panel(fig.add_subplot(grid[0, 3]), out))
        for k, model in enumerate(MODELS):
            members = [c for c in cells if c.params["model"] == model]
            _rate_panel(self, fig.add_subplot(grid[1, k]), members, model, claim["decision"])
        ax = fig.add_subplot(grid[1, 3])
        _excess_panel(self, ax, cells)
        plotting.save(fig, path)
        diverged = int(sum(c.result.arrays["diverged"].sum() for c in cells))
        return (
            "Seed 002's single neuron learning relu(x) (SGD, MSE, fresh batches of 1000 N(0,1) inputs, "
            "100 steps per epoch, 20 epochs). (a, b) The document's plot: loss (log scale) and weight per "
            "epoch for the document's start w = -10 and for a random start with w > 0 (model weight, ReLU, "
            "lr 0.01). (c) Expected loss surface of relu(w x + b) with trajectories of random starts that "
            "succeed (blue) and fail (red); circles mark starts, crosses ends. (d) Output-layer model: "
            "outcome of each random start by the signs of its input weight w and output weight v. (e-g) "
            "Failure rate (final expected loss more than fail_margin above a run started at the target's "
            "own parameters) with 95% CI (exact binomial) vs learning rate, per activation and model; the "
            f"dotted lines bound the judged band; the {diverged} runs that diverged (NaN, inf or a loss above "
            "1e6) count as the decision rule says (as failures). "
            "(h) Final excess loss of every run. Measured mechanism: " + " ".join(n for n in notes if n)
        )


def _is_relu(cell: Cell) -> bool:
    return get_activation(cell.params["activation"]).name == "relu"


def _pick(cells: list[Cell], model: str, relu: bool, lr: float) -> Cell | None:
    """The cell of ``model`` with a plain ReLU at learning rate ``lr`` (the document's setting)."""
    for c in cells:
        if c.params["model"] == model and _is_relu(c) == relu and np.isclose(c.params["lr"], lr):
            return c
    return None


def _act_label(cell: Cell) -> str:
    spec = cell.params["activation"]
    return cell.setting.get("activation", spec if isinstance(spec, str) else spec["name"])


def _epochs(cell: Cell) -> np.ndarray:
    return np.arange(1, cell.params["epochs"] + 1)


def _document_panels(fig, grid, cell: Cell) -> str:
    """(a, b): the document's figure, loss (log) and weight vs epoch, for w = -10 and a good start."""
    a = cell.result.arrays
    ax_loss = fig.add_subplot(grid[0, 0])
    ax_w = fig.add_subplot(grid[0, 1])
    every = cell.params.get("snapshot_every", cell.params["steps_per_epoch"])
    per_epoch = cell.params["steps_per_epoch"] // every
    epochs = _epochs(cell)
    forward = np.flatnonzero(a["trajectory"][:, 0, 0] > 0)
    runs = [("document start w = -10", a["document_epoch_loss"], a["document_trajectory"], "tab:red")]
    if len(forward):
        i = forward[0]
        runs.append(
            (f"random start w = {a['trajectory'][i, 0, 0]:.2f}", a["epoch_loss"][i], a["trajectory"][i], "tab:blue")
        )
    for label, loss, traj, color in runs:
        ax_loss.semilogy(epochs, np.maximum(loss, 1e-30), color=color, marker="o", markersize=3, label=label)
        ax_w.plot(np.arange(len(epochs) + 1), traj[::per_epoch, 0], color=color, marker="o", markersize=3, label=label)
    ax_loss.set_xlabel("epoch (100 SGD steps)")
    ax_loss.set_ylabel("training loss (MSE, mean over the epoch's batches)")
    ax_loss.set_title("(a) ReLU learning ReLU: loss")
    ax_loss.legend(fontsize=7)
    ax_w.set_xlabel("epoch (0 = start)")
    ax_w.set_ylabel("weight w")
    ax_w.set_title("(b) ReLU learning ReLU: weight")
    ax_w.set_yscale("symlog", linthresh=1e-3)
    ax_w.legend(fontsize=7)
    w_end, l_end = a["document_trajectory"][-1, 0], a["document_expected_loss"][-1]
    steps = a["snapshot_step"]
    ratio = a["document_trajectory"][1:, 0] / a["document_trajectory"][:-1, 0]
    shrink = float(np.median(ratio) ** (1.0 / (steps[1] - steps[0])))
    back_w = a["trajectory"][backwards(a), -1, 0]
    text = (
        f"Model weight (ReLU, lr {cell.params['lr']:g}): from w = -10, w shrank by a factor {shrink:.5f} per step "
        f"(1 - lr = {1 - cell.params['lr']:.5f}) to {w_end:.2e} and never crossed 0, ending at expected loss "
        f"{l_end:.4f} (E relu(x)^2 = 0.5)."
    )
    if len(back_w):
        text += f" Every random start with w < 0 ended with w in [{back_w.min():.2e}, {back_w.max():.2e}]."
    return text


def _surface_panel(ax, cell: Cell) -> str:
    """(c): expected loss of relu(w x + b) over the (w, b) plane with random-start trajectories."""
    a = cell.result.arrays
    act = cell.params["activation"]
    x = normal_quantiles(400)
    w, b = np.meshgrid(np.linspace(-3, 3, 121), np.linspace(-3, 3, 121))
    surface = expected_loss(np.stack([w, b], axis=-1), "weight-bias", act, x)
    levels = np.linspace(-3, 1, 17)
    filled = ax.contourf(w, b, np.log10(surface + 1e-3), levels=levels, cmap="Greys_r", extend="both")
    ax.figure.colorbar(filled, ax=ax, label="log10(expected MSE + 0.001)")
    fail = failures(excess_loss(cell.result.arrays), cell.params["fail_margin"])
    for i in range(len(fail)):
        if not np.isfinite(fail[i]):
            continue
        color = "tab:red" if fail[i] else "tab:blue"
        traj = a["trajectory"][i]
        ax.plot(traj[:, 0], traj[:, 1], color=color, linewidth=0.8, alpha=0.8)
        ax.plot(*traj[0], "o", color=color, markersize=3)
        ax.plot(*traj[-1], "x", color=color, markersize=4)
    ax.plot(1, 0, "*", color="gold", markersize=12, markeredgecolor="black", label="global minimum (1, 0)")
    ax.plot([], [], color="tab:blue", label="random start, success")
    ax.plot([], [], color="tab:red", label="random start, failure")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_xlabel("input weight w")
    ax.set_ylabel("bias b")
    ax.set_title(f"(c) relu(w x + b): loss surface, lr {cell.params['lr']:g}")
    ax.legend(fontsize=7, loc="lower left")
    ok = np.isfinite(fail)
    failed = ok & (fail == 1)
    back = backwards(a)
    x_eval = normal_quantiles(cell.params.get("eval_points", 2000))
    start, end = (active_fraction(a["trajectory"][:, k], x_eval) for k in (0, -1))
    rescued = ok & back & ~failed
    text = (
        f"Model weight-bias (ReLU, lr {cell.params['lr']:g}): {failed.sum()} of {ok.sum()} random starts failed, "
        f"{np.sum(failed & back)} of the {np.sum(back & ok)} with w < 0 and {np.sum(failed & ~back)} with w > 0 "
        f"(of which {np.sum(failed & ~back & (start == 0))} dead from the start); "
        f"{np.sum(failed & (end < 0.01))} failures ended with the unit active on under 1% of inputs (output 0, "
        f"loss 0.5)."
    )
    lost = failed & back
    if lost.any():
        w0, w1 = a["trajectory"][lost, 0, 0], a["trajectory"][lost, -1, 0]
        b0, b1 = a["trajectory"][lost, 0, 1], a["trajectory"][lost, -1, 1]
        text += (
            f" In the failures with w < 0 the bias fell in {np.sum(b1 < b0)} of {lost.sum()} runs (median change "
            f"{np.median(b1 - b0):+.2f}) and |w| shrank by a median factor {np.median(w1 / w0):.2f} without w "
            f"changing sign ({np.sum(w1 < 0)} of {lost.sum()} still negative), so the unit's active side slid off "
            f"the inputs."
        )
    if rescued.any():
        text += (
            f" The {rescued.sum()} starts with w < 0 that succeeded were active on a median "
            f"{np.median(start[rescued]):.0%} of inputs at the start (failed ones: "
            f"{np.median(start[failed & back]):.0%}): a unit active on most inputs is pulled toward the positive "
            f"side and turns over."
        )
    return text


def active_fraction(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Fraction of inputs ``x`` on which the (hidden) unit ``w x + b`` of rows ``theta`` is positive."""
    b = theta[:, 1:2] if theta.shape[1] > 1 else 0.0
    return np.mean(theta[:, :1] * x + b > 0, axis=1)


def _output_layer_panel(ax, cell: Cell) -> str:
    """(d): outcome of the output-layer model by the signs of the start's w and v."""
    a = cell.result.arrays
    fail = failures(excess_loss(cell.result.arrays), cell.params["fail_margin"])
    start = a["trajectory"][:, 0, :]
    ok = np.isfinite(fail)
    for value, color, label in ((0, "tab:blue", "success"), (1, "tab:red", "failure")):
        sel = ok & (fail == value)
        ax.scatter(start[sel, 0], start[sel, 2], s=14, color=color, label=label)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("starting input weight w")
    ax.set_ylabel("starting output weight v")
    ax.set_title(f"(d) v relu(w x + b) + c: outcome by start, lr {cell.params['lr']:g}")
    ax.legend(fontsize=7)
    parts = []
    for sw, sv in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        sel = ok & (np.sign(start[:, 0]) == sw) & (np.sign(start[:, 2]) == sv)
        if sel.any():
            parts.append(
                f"w{'>' if sw > 0 else '<'}0, v{'>' if sv > 0 else '<'}0: {fail[sel].mean():.0%} of {sel.sum()}"
            )
    flipped = ok & (start[:, 0] < 0)
    failed = ok & (fail == 1)
    final = a["trajectory"][:, -1, :]
    end = active_fraction(final, normal_quantiles(cell.params.get("eval_points", 2000)))
    excess = excess_loss(a)
    dead = failed & (end < 0.01)
    linear = failed & (end > 0.95) & (final[:, 0] < 0) & (final[:, 2] < 0)
    return (
        f"Model output-layer (ReLU, lr {cell.params['lr']:g}): failure rate by the signs of the start's w and v: "
        f"{'; '.join(parts)}; {np.sum(flipped & (final[:, 0] < 0))} of {flipped.sum()} starts with w < 0 still had "
        f"w < 0 at the end, while v changed sign in {np.sum(ok & (np.sign(start[:, 2]) != np.sign(final[:, 2])))} "
        f"runs. Of {failed.sum()} failures, {dead.sum()} ended with a dead hidden unit (active on under 1% of "
        f"inputs; constant output c, median excess loss {_median(excess[dead])}, the variance of relu(x) being "
        f"0.341) and {linear.sum()} with w < 0, v < 0 and the unit active on over 95% of inputs, i.e. close to the "
        f"best straight line (median excess {_median(excess[linear])}; theory 0.341 - 1/4 = 0.091)."
    )


def _median(values: np.ndarray) -> str:
    return f"{np.median(values):.3f}" if len(values) else "n/a"


def _rate_panel(exp: SingleNeuron, ax, cells: list[Cell], model: str, decision: dict) -> None:
    """(e-g): failure rate vs learning rate, one line per activation, every run counted as the rule says."""
    from actlab.claims import judging, plotting  # matplotlib: loaded by figure() already

    threshold = decision["threshold"]
    series = {}
    for c in cells:
        series.setdefault(_act_label(c), []).append(c)
    for k, (label, members) in enumerate(series.items()):
        members.sort(key=lambda c: c.params["lr"])
        shift = 10 ** (0.04 * (k - (len(series) - 1) / 2))  # side by side, so equal rates stay visible
        lrs = np.array([c.params["lr"] for c in members]) * shift
        rates, lo, hi = (
            np.array([plotting.mean_interval(judging.samples(c, exp, decision).values, binary=True) for c in members])
            .reshape(-1, 3)
            .T
        )
        for c, rate in zip(members, rates, strict=True):
            if np.isnan(rate):
                ax.annotate(f"{label}: all diverged", (c.params["lr"], 0.5), ha="right", fontsize=7, rotation=90)
        ax.errorbar(lrs, rates, yerr=plotting.yerr(rates, lo, hi), marker="o", markersize=4, capsize=3, label=label)
    band = threshold if isinstance(threshold, list) else [threshold]
    for k, edge in enumerate(band):
        label = f"judged band [{band[0]:g}, {band[1]:g}]" if len(band) == 2 else f"decision threshold {edge:g}"
        ax.axhline(edge, color="black", linestyle=":", linewidth=1, label=label if k == 0 else None)
    ax.set_xscale("log")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("learning rate (plain SGD; series shifted sideways)")
    ax.set_ylabel("failure rate over random starts\n(95% CI (exact binomial))")
    ax.set_title(f"({'efg'[MODELS.index(model)]}) model {model}")
    ax.legend(title="activation", fontsize=7)


def _excess_panel(exp: SingleNeuron, ax, cells: list[Cell]) -> None:
    """(h): every run's final excess loss, to show the failure threshold separates two clusters."""
    labels = []
    for k, c in enumerate(cells):
        e = exp.metric("excess_loss", c)
        e = e[np.isfinite(e)]
        ax.plot(np.full(len(e), k), np.maximum(e, 1e-12), "_", color="tab:gray", markersize=8, alpha=0.6)
        labels.append(c.id.replace("model-", "").replace("_activation-", " ").replace("_lr-", " lr"))
    margin = cells[0].params["fail_margin"]
    ax.axhline(margin, color="tab:red", linestyle="--", linewidth=1, label=f"fail_margin {margin:g}")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(cells)), labels, rotation=90, fontsize=6)
    ax.set_ylabel("final excess loss: expected MSE - reference level\n(values <= 1e-12 drawn at 1e-12)")
    ax.set_title("(h) final excess loss of every random start")
    ax.legend(fontsize=7)
