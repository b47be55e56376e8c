"""The figure of ``single_neuron`` claims (``relu-learns-relu``): the document's plot, how random starts
fail, and the failure rate over the whole grid."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.claims import judging, plotting
from actlab.claims.experiments.base import Cell
from actlab.claims.experiments.single_neuron import MODELS, backwards, expected_loss, normal_quantiles
from actlab.claims.figures.base import Figure, Points
from actlab.engine.activations import get_activation


def active_fraction(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Fraction of inputs ``x`` on which the (hidden) unit ``w x + b`` of rows ``theta`` is positive."""
    b = theta[:, 1:2] if theta.shape[1] > 1 else 0.0
    return np.mean(theta[:, :1] * x + b > 0, axis=1)


def _pick(cells: list[Cell], model: str) -> Cell | None:
    """The cell of ``model`` with a plain ReLU at learning rate 0.01 (the document's setting)."""
    for c in cells:
        relu = get_activation(c.params["activation"]).name == "relu"
        if c.params["model"] == model and relu and np.isclose(c.params["lr"], 0.01):
            return c
    return None


def _act_label(cell: Cell) -> str:
    spec = cell.params["activation"]
    return cell.setting.get("activation", spec if isinstance(spec, str) else spec["name"])


def _median(values: np.ndarray) -> str:
    return f"{np.median(values):.3f}" if len(values) else "n/a"


@dataclass(frozen=True)
class DocumentRuns:
    """Panels (a, b), the document's plot: training loss and weight per epoch of model weight with ReLU.

    Attributes
    ----------
    runs : list of (str, ndarray, ndarray, str)
        ``(label, loss, weight, colour)`` per run: the document's start, then the first random
        start with ``w > 0`` if there is one. ``loss`` shape (E,): the mean training loss of each
        epoch, floored at 1e-30 for the log scale; ``weight`` shape (E + 1,): ``w`` at the start
        and after each epoch.
    note : str
        What the runs measured (the caption's "measured mechanism" for this model).
    """

    runs: list
    note: str

    @classmethod
    def from_cell(cls, cell: Cell) -> DocumentRuns:
        """The runs of the cell of model weight, ReLU, lr 0.01."""
        a = cell.result.arrays
        every = cell.params.get("snapshot_every", cell.params["steps_per_epoch"])
        per_epoch = cell.params["steps_per_epoch"] // every
        forward = np.flatnonzero(a["trajectory"][:, 0, 0] > 0)
        runs = [("document start w = -10", a["document_epoch_loss"], a["document_trajectory"], "tab:red")]
        if len(forward):
            i = forward[0]
            runs.append(
                (f"random start w = {a['trajectory'][i, 0, 0]:.2f}", a["epoch_loss"][i], a["trajectory"][i], "tab:blue")
            )
        w_end, l_end = a["document_trajectory"][-1, 0], a["document_expected_loss"][-1]
        steps = a["snapshot_step"]
        ratio = a["document_trajectory"][1:, 0] / a["document_trajectory"][:-1, 0]
        shrink = float(np.median(ratio) ** (1.0 / (steps[1] - steps[0])))
        back_w = a["trajectory"][backwards(a), -1, 0]
        note = (
            f"Model weight (ReLU, lr {cell.params['lr']:g}): from w = -10, w shrank by a factor {shrink:.5f} per step "
            f"(1 - lr = {1 - cell.params['lr']:.5f}) to {w_end:.2e} and never crossed 0, ending at expected loss "
            f"{l_end:.4f} (E relu(x)^2 = 0.5)."
        )
        if len(back_w):
            note += f" Every random start with w < 0 ended with w in [{back_w.min():.2e}, {back_w.max():.2e}]."
        drawn = [(label, np.maximum(loss, 1e-30), traj[::per_epoch, 0], color) for label, loss, traj, color in runs]
        return cls(drawn, note)

    def draw(self, ax_loss, ax_w) -> None:
        for label, loss, weight, color in self.runs:
            ax_loss.semilogy(np.arange(1, len(loss) + 1), loss, color=color, marker="o", markersize=3, label=label)
            ax_w.plot(np.arange(len(weight)), weight, color=color, marker="o", markersize=3, label=label)
        ax_loss.set_xlabel("epoch (100 SGD steps)")
        ax_loss.set_ylabel("training loss (MSE, mean over the epoch's batches)")
        ax_loss.set_title("(a) ReLU learning ReLU: loss")
        ax_loss.legend(fontsize=7)
        ax_w.set_xlabel("epoch (0 = start)")
        ax_w.set_ylabel("weight w")
        ax_w.set_title("(b) ReLU learning ReLU: weight")
        ax_w.set_yscale("symlog", linthresh=1e-3)
        ax_w.legend(fontsize=7)


@dataclass(frozen=True)
class LossSurface:
    """Panel (c): the expected loss of ``relu(w x + b)`` over the ``(w, b)`` plane, with the random starts' paths.

    Attributes
    ----------
    w, b : ndarray, shape (121, 121)
        The grid over ``[-3, 3]^2``.
    log_loss : ndarray, shape (121, 121)
        ``log10(expected loss + 0.001)`` there.
    paths : list of (ndarray, str)
        ``(trajectory, colour)`` of every random start that did not diverge: its ``(w, b)`` per
        snapshot, shape (T + 1, 2), red if it failed, blue if not.
    lr : float
        The cell's learning rate.
    note : str
        What the starts measured (the caption's "measured mechanism" for this model).
    """

    w: np.ndarray
    b: np.ndarray
    log_loss: np.ndarray
    paths: list
    lr: float
    note: str

    @classmethod
    def from_cell(cls, experiment, cell: Cell) -> LossSurface:
        """The surface and paths of the cell of model weight-bias, ReLU, lr 0.01."""
        a = cell.result.arrays
        w, b = np.meshgrid(np.linspace(-3, 3, 121), np.linspace(-3, 3, 121))
        surface = expected_loss(
            np.stack([w, b], axis=-1), "weight-bias", cell.params["activation"], normal_quantiles(400)
        )
        fail = experiment.metric("failure", cell)
        paths = [
            (a["trajectory"][i], "tab:red" if fail[i] else "tab:blue") for i in range(len(fail)) if np.isfinite(fail[i])
        ]
        ok = np.isfinite(fail)
        failed = ok & (fail == 1)
        back = backwards(a)
        x_eval = normal_quantiles(cell.params.get("eval_points", 2000))
        start, end = (active_fraction(a["trajectory"][:, k], x_eval) for k in (0, -1))
        rescued = ok & back & ~failed
        note = (
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
            note += (
                f" In the failures with w < 0 the bias fell in {np.sum(b1 < b0)} of {lost.sum()} runs (median change "
                f"{np.median(b1 - b0):+.2f}) and |w| shrank by a median factor {np.median(w1 / w0):.2f} without w "
                f"changing sign ({np.sum(w1 < 0)} of {lost.sum()} still negative), so the unit's active side slid off "
                f"the inputs."
            )
        if rescued.any():
            note += (
                f" The {rescued.sum()} starts with w < 0 that succeeded were active on a median "
                f"{np.median(start[rescued]):.0%} of inputs at the start (failed ones: "
                f"{np.median(start[failed & back]):.0%}): a unit active on most inputs is pulled toward the positive "
                f"side and turns over."
            )
        return cls(w, b, np.log10(surface + 1e-3), paths, cell.params["lr"], note)

    def draw(self, ax) -> None:
        levels = np.linspace(-3, 1, 17)
        filled = ax.contourf(self.w, self.b, self.log_loss, levels=levels, cmap="Greys_r", extend="both")
        ax.figure.colorbar(filled, ax=ax, label="log10(expected MSE + 0.001)")
        for traj, color in self.paths:
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
        ax.set_title(f"(c) relu(w x + b): loss surface, lr {self.lr:g}")
        ax.legend(fontsize=7, loc="lower left")


@dataclass(frozen=True)
class StartOutcomes:
    """Panel (d): the outcome of each random start of the output-layer model by its starting ``w`` and ``v``.

    Attributes
    ----------
    groups : list of (str, str, ndarray, ndarray)
        ``(label, colour, w, v)`` for the successes, then the failures (diverged starts left out):
        the starting input and output weights, each shape (n,).
    lr : float
        The cell's learning rate.
    note : str
        What the starts measured (the caption's "measured mechanism" for this model).
    """

    groups: list
    lr: float
    note: str

    @classmethod
    def from_cell(cls, experiment, cell: Cell) -> StartOutcomes:
        """The outcomes of the cell of model output-layer, ReLU, lr 0.01."""
        a = cell.result.arrays
        fail = experiment.metric("failure", cell)
        start = a["trajectory"][:, 0, :]
        ok = np.isfinite(fail)
        groups = []
        for value, color, label in ((0, "tab:blue", "success"), (1, "tab:red", "failure")):
            sel = ok & (fail == value)
            groups.append((label, color, start[sel, 0], start[sel, 2]))
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
        excess = experiment.metric("excess_loss", cell)
        dead = failed & (end < 0.01)
        linear = failed & (end > 0.95) & (final[:, 0] < 0) & (final[:, 2] < 0)
        note = (
            f"Model output-layer (ReLU, lr {cell.params['lr']:g}): failure rate by the signs of the start's w and v: "
            f"{'; '.join(parts)}; {np.sum(flipped & (final[:, 0] < 0))} of {flipped.sum()} starts with w < 0 still "
            f"had w < 0 at the end, while v changed sign in "
            f"{np.sum(ok & (np.sign(start[:, 2]) != np.sign(final[:, 2])))} runs. Of {failed.sum()} failures, "
            f"{dead.sum()} ended with a dead hidden unit (active on under 1% of inputs; constant output c, median "
            f"excess loss {_median(excess[dead])}, the variance of relu(x) being 0.341) and {linear.sum()} with "
            f"w < 0, v < 0 and the unit active on over 95% of inputs, i.e. close to the best straight line (median "
            f"excess {_median(excess[linear])}; theory 0.341 - 1/4 = 0.091)."
        )
        return cls(groups, cell.params["lr"], note)

    def draw(self, ax) -> None:
        for label, color, w, v in self.groups:
            ax.scatter(w, v, s=14, color=color, label=label)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel("starting input weight w")
        ax.set_ylabel("starting output weight v")
        ax.set_title(f"(d) v relu(w x + b) + c: outcome by start, lr {self.lr:g}")
        ax.legend(fontsize=7)


@dataclass(frozen=True)
class FailureRates:
    """Panels (e-g): one model's failure rate against the learning rate, one series per activation.

    Attributes
    ----------
    model : str
        The model (one of :data:`actlab.claims.experiments.single_neuron.MODELS`).
    series : list of (Points, list of float)
        Per activation, its rates with their exact binomial 95% intervals (x: the learning rates,
        shifted sideways by a factor so that equal rates stay visible) and the learning rates
        where no run had a rate (annotated "all diverged"). Every run is counted as the rule
        counts it (:func:`actlab.claims.judging.samples`: diverged runs as failures).
    threshold : float or list of float
        The rule's threshold (a band: its two edges).
    """

    model: str
    series: list
    threshold: float | list

    @classmethod
    def from_cells(cls, experiment, cells: list[Cell], model: str, decision: dict) -> FailureRates:
        """The rates of the claim's ``cells`` of ``model`` under the rule ``decision``."""
        by_label = {}
        for c in cells:
            by_label.setdefault(_act_label(c), []).append(c)
        series = []
        for k, (label, members) in enumerate(by_label.items()):
            members.sort(key=lambda c: c.params["lr"])
            shift = 10 ** (0.04 * (k - (len(by_label) - 1) / 2))
            lrs = np.array([c.params["lr"] for c in members])
            values = [judging.samples(c, experiment, decision).values for c in members]
            points = Points.over_seeds(lrs * shift, values, label, binary=True, markersize=4)
            series.append((points, list(lrs[np.isnan(points.mean)])))
        return cls(model, series, decision["threshold"])

    def draw(self, ax) -> None:
        for points, no_rate in self.series:
            for lr in no_rate:
                ax.annotate(f"{points.label}: all diverged", (lr, 0.5), ha="right", fontsize=7, rotation=90)
            plotting.draw_points(ax, points)
        band = self.threshold if isinstance(self.threshold, list) else [self.threshold]
        for k, edge in enumerate(band):
            label = f"judged band [{band[0]:g}, {band[1]:g}]" if len(band) == 2 else f"decision threshold {edge:g}"
            ax.axhline(edge, color="black", linestyle=":", linewidth=1, label=label if k == 0 else None)
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("learning rate (plain SGD; series shifted sideways)")
        ax.set_ylabel("failure rate over random starts\n(95% CI (exact binomial))")
        ax.set_title(f"({'efg'[MODELS.index(self.model)]}) model {self.model}")
        ax.legend(title="activation", fontsize=7)


@dataclass(frozen=True)
class ExcessLosses:
    """Panel (h): every run's final excess loss, to show that the failure margin separates two clusters.

    Attributes
    ----------
    values : list of ndarray
        Per cell, the finite excess losses of its random starts, floored at 1e-12 for the log
        scale, shape (n,) each.
    labels : list of str
        The cells' tick labels.
    margin : float
        The failure margin ``fail_margin``.
    """

    values: list
    labels: list
    margin: float

    @classmethod
    def from_cells(cls, experiment, cells: list[Cell]) -> ExcessLosses:
        """The excess losses of every cell of the claim."""
        values = []
        for c in cells:
            e = experiment.metric("excess_loss", c)
            values.append(np.maximum(e[np.isfinite(e)], 1e-12))
        labels = [c.id.replace("model-", "").replace("_activation-", " ").replace("_lr-", " lr") for c in cells]
        return cls(values, labels, cells[0].params["fail_margin"])

    def draw(self, ax) -> None:
        for k, e in enumerate(self.values):
            ax.plot(np.full(len(e), k), e, "_", color="tab:gray", markersize=8, alpha=0.6)
        ax.axhline(self.margin, color="tab:red", linestyle="--", linewidth=1, label=f"fail_margin {self.margin:g}")
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(self.labels)), self.labels, rotation=90, fontsize=6)
        ax.set_ylabel("final excess loss: expected MSE - reference level\n(values <= 1e-12 drawn at 1e-12)")
        ax.set_title("(h) final excess loss of every random start")
        ax.legend(fontsize=7)


@dataclass(frozen=True)
class SingleNeuronFigure(Figure):
    """Seed 002's single neuron: (a, b) the document's plot, (c, d) how starts fail, (e-g) failure rates, (h) excess.

    Panels (a-d) show the document's setting (ReLU at lr 0.01) of each model, when the claim has
    that cell; (e-h) every cell of the claim.

    Attributes
    ----------
    document : DocumentRuns or None
        Panels (a, b), from the cell of model weight.
    surface : LossSurface or None
        Panel (c), from the cell of model weight-bias.
    outcomes : StartOutcomes or None
        Panel (d), from the cell of model output-layer.
    rates : list of FailureRates
        Panels (e-g), one per model of :data:`actlab.claims.experiments.single_neuron.MODELS`.
    excess : ExcessLosses
        Panel (h).
    diverged : int
        Runs that diverged, over every cell.
    """

    experiment = "single_neuron"
    document: DocumentRuns | None
    surface: LossSurface | None
    outcomes: StartOutcomes | None
    rates: list
    excess: ExcessLosses
    diverged: int

    @classmethod
    def from_verdict(cls, experiment, claim, cells, verdict):
        doc, surf, out = (_pick(cells, model) for model in MODELS)
        return cls(
            None if doc is None else DocumentRuns.from_cell(doc),
            None if surf is None else LossSurface.from_cell(experiment, surf),
            None if out is None else StartOutcomes.from_cell(experiment, out),
            [
                FailureRates.from_cells(experiment, [c for c in cells if c.params["model"] == m], m, claim["decision"])
                for m in MODELS
            ],
            ExcessLosses.from_cells(experiment, cells),
            int(sum(c.result.arrays["diverged"].sum() for c in cells)),
        )

    def plot(self, path: Path) -> str:
        fig = plotting.plt.figure(figsize=(17, 8.5))
        grid = fig.add_gridspec(2, 4)
        if self.document is not None:
            self.document.draw(fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]))
        if self.surface is not None:
            self.surface.draw(fig.add_subplot(grid[0, 2]))
        if self.outcomes is not None:
            self.outcomes.draw(fig.add_subplot(grid[0, 3]))
        for k, rates in enumerate(self.rates):
            rates.draw(fig.add_subplot(grid[1, k]))
        self.excess.draw(fig.add_subplot(grid[1, 3]))
        plotting.save(fig, path)
        notes = [panel.note for panel in (self.document, self.surface, self.outcomes) if panel is not None]
        return (
            "Seed 002's single neuron learning relu(x) (SGD, MSE, fresh batches of 1000 N(0,1) inputs, "
            "100 steps per epoch, 20 epochs). (a, b) The document's plot: loss (log scale) and weight per "
            "epoch for the document's start w = -10 and for a random start with w > 0 (model weight, ReLU, "
            "lr 0.01). (c) Expected loss surface of relu(w x + b) with trajectories of random starts that "
            "succeed (blue) and fail (red); circles mark starts, crosses ends. (d) Output-layer model: "
            "outcome of each random start by the signs of its input weight w and output weight v. (e-g) "
            "Failure rate (final expected loss more than fail_margin above a run started at the target's "
            "own parameters) with 95% CI (exact binomial) vs learning rate, per activation and model; the "
            f"dotted lines bound the judged band; the {self.diverged} runs that diverged (NaN, inf or a loss above "
            "1e6) count as the decision rule says (as failures). "
            "(h) Final excess loss of every run. Measured mechanism: " + " ".join(notes)
        )
