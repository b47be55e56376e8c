r"""Dying units: which hidden units stop responding during training, and whether they come back.

Used by ``dead-stays-dead`` (seed 000: a unit that never fires gets no gradient and "can never
change again"; a commenter doubts it is forever under SGD), ``high-lr-kills-units`` (seed 003:
"with a large learning rate as much as 40% of the neurons can die at the start of training") and
``leaky-prevents-dying`` (seeds 000, 001: leaky ReLU, PReLU and ELU do not die).

A cell is a plain MLP of ``depth`` hidden layers of ``width`` units trained with plain SGD
(``batch_size: null`` is full-batch gradient descent). Before training and after every epoch
``e = 0, 1, ..., E`` the whole training split ``x_1 .. x_N`` goes through the net in eval mode and
every hidden unit ``j`` of every layer gets two per-unit states:

* **dead**: its activation's derivative is exactly zero on every training input,
  ``f'(z_nj) = 0 for all n`` (:func:`actlab.engine.probes.dead_units`; Lu et al. 2020, Definition 1,
  stated on gradients). Then ``dL/dW_ij = sum_n a_ni delta_nj = 0`` and ``dL/db_j = 0`` on every
  mini-batch (every batch is a subset of the training split), so plain SGD leaves the unit's
  incoming weights unchanged. A ReLU unit is dead exactly when it is inactive; a leaky ReLU,
  PReLU or NecroReLU unit never is (its slope is non-zero everywhere); an ELU unit only when
  ``exp(z)`` underflows to 0 for every input (``z < -745`` in float64).
* **inactive**: its pre-activation is non-positive on every training input,
  ``max_n z_nj <= 0``: the forward analogue (ReLU and NecroReLU output exactly 0 there, leaky
  ReLU and PReLU a small ``s z``, ELU ``alpha (e^z - 1)``, close to the constant ``-alpha`` with
  a slope ``alpha e^z`` close to 0 when ``z << 0``).

Per seed, with ``U`` the hidden units of the layers a metric looks at (param ``layers``: ``all``,
the ``first`` or the ``last`` hidden layer) and ``D_e(j)``, ``I_e(j)`` the two states at snapshot
``e``, the metrics are

.. math:: \mathrm{dead}_e = \frac{1}{|U|} \sum_{j \in U} D_e(j), \qquad
          \mathrm{inactive}_e = \frac{1}{|U|} \sum_{j \in U} I_e(j),

at ``e = 0`` (init), 1 (``epoch1``) and ``E`` (``end``). A unit **revives** when it is dead at one
snapshot and not dead at a later one, ``exists t < t' : D_t(j) and not D_t'(j)`` (counted once per
unit), and

.. math:: \mathrm{revived\_frac} = \frac{\#\{j : \text{revives}\}}{\#\{j : \exists t < E,\ D_t(j)\}};

``recovered_frac`` is the same for inactivity. What decides ``dead-stays-dead``: a dead unit of
the *first* hidden layer sees the fixed inputs ``x_n`` through weights that no longer move, so it
stays dead for good, in full-batch and in mini-batch training alike; a dead unit of a deeper layer
keeps its weights too, but its inputs are outputs of earlier layers, which the gradients of other
units keep changing, so it can come back. The 40% of ``high-lr-kills-units`` goes back to the
CS231n notes (Karpathy, "Commonly used activation functions": "as much as 40% of your network can
be dead" with a high learning rate).

Divergence (a NaN or infinite loss or parameter, recorded by :func:`actlab.engine.training.train`)
freezes a seed. A diverged net's pre-activations are NaN, so "non-positive on every input" is
undefined; the probe's test would even call every ReLU unit dead (``NaN > 0`` is false), which
would count an explosion as dying. Snapshots from the epoch of divergence on are therefore
invalid, and every metric that needs them is NaN (the judge drops NaN seeds and reports ``n``);
how often nets diverged is the separate metric ``diverged``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from actlab.claims.experiments.base import (
    EPOCHS,
    TRAINED_MLP_PROPERTIES,
    TRAINED_MLP_REQUIRED,
    Cell,
    CellResult,
    Experiment,
    build_mlp,
    metric,
)
from actlab.engine import probes
from actlab.engine.activations import get_activation
from actlab.engine.losses import get_loss
from actlab.engine.network import MLP
from actlab.engine.training import ArrayData, train

LAYER_SCOPES = ("all", "first", "last")


class DyingUnits(Experiment):
    name = "dying_units"
    description = "per-unit dead/inactive status of every hidden unit through training: dying, revivals, loss"
    params_schema = {
        "type": "object",
        "required": [*TRAINED_MLP_REQUIRED],
        "properties": {
            **TRAINED_MLP_PROPERTIES,
            "epochs": {**EPOCHS, "minimum": 1},
            "batch_size": {"type": ["integer", "null"], "minimum": 1},
            "layers": {"enum": list(LAYER_SCOPES)},
        },
    }

    dims = {
        "dead{layer}": ("seed", "epoch", "unit"),
        "zmax{layer}": ("seed", "epoch", "unit"),
        "loss": ("seed", "epoch"),
        "accuracy": ("seed", "epoch"),
        "diverged": ("seed",),
        "diverged_epoch": ("seed",),
    }

    def run(self, params, seeds, data):
        """Train all seeds of the cell at once and snapshot every hidden unit after every epoch.

        Returns arrays, with ``P = epochs + 1`` snapshots (0 = initialization) and ``n_l`` units
        in hidden layer ``l`` (0-based): ``dead{l}`` ``(S, P, n_l)`` booleans; ``zmax{l}``
        ``(S, P, n_l)``, the largest pre-activation of each unit over the training split (NaN
        at invalid snapshots, see the module docstring); ``loss`` and ``accuracy`` ``(S, P)``
        on the training split in eval mode; ``diverged`` and ``diverged_epoch`` ``(S,)``.
        """
        ds = data[params["dataset"]]
        net = build_mlp(params, ds, seeds)
        loss = get_loss(ds.loss)
        target = np.broadcast_to(ds.y_train, (len(seeds), *ds.y_train.shape))
        rows = defaultdict(list)

        def snapshot(epoch: int, net: MLP) -> None:
            cache = net.forward(ds.x_train, train=False)
            rows["loss"].append(loss(cache.out, target)[0])
            rows["accuracy"].append(loss.accuracy(cache.out, target))
            for layer, mask in enumerate(probes.dead_units(net, cache.pre, cache.post)):
                rows[f"dead{layer}"].append(mask)
                rows[f"zmax{layer}"].append(cache.pre[layer].max(axis=1))

        history = train(
            net,
            ArrayData(ds.x_train, ds.y_train, params["batch_size"]),
            loss=loss,
            optimizer={"name": "sgd", "lr": params["lr"]},
            epochs=params["epochs"],
            on_epoch=snapshot,
        )
        n_snapshots = params["epochs"] + 1
        valid = snapshot_valid(history.diverged_epoch, n_snapshots)
        arrays = {}
        for name, values in rows.items():
            stacked = np.stack(values, axis=1)
            missing = n_snapshots - stacked.shape[1]  # every seed diverged and training stopped early
            if missing:
                pad = np.zeros((stacked.shape[0], missing, *stacked.shape[2:]), dtype=stacked.dtype)
                stacked = np.concatenate([stacked, pad], axis=1)
            if stacked.dtype != bool:
                stacked = stacked.astype(float)
                stacked[~valid] = np.nan
            arrays[name] = stacked
        arrays["diverged"] = history.diverged
        arrays["diverged_epoch"] = history.diverged_epoch
        info = {
            "n_diverged": int(history.diverged.sum()),
            "n_train": int(len(ds.x_train)),
            "n_classes": int(ds.n_outputs),
            "steps_per_epoch": int(np.ceil(len(ds.x_train) / (params["batch_size"] or len(ds.x_train)))),
        }
        return CellResult(arrays, info)

    @metric("fraction of hidden units (in `layers`) with f' = 0 on every training input at init")
    def dead_frac_init(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _dead(cell), 0)

    @metric(
        "fraction of hidden units (in `layers`) with f' = 0 on every training input after epoch 1 (NaN if the net "
        "diverged in epoch 1)"
    )
    def dead_frac_epoch1(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _dead(cell), 1)

    @metric(
        "fraction of the hidden units (in `layers`) alive at init that are dead after epoch 1, for a net that learns "
        "(final training loss below half the chance loss ln(classes)); NaN for a net that does not learn or diverged"
    )
    def new_dead_frac_epoch1(self, cell: Cell) -> np.ndarray:
        a, dead = cell.result.arrays, _dead(cell)
        alive = ~dead[:, 0]
        newly = (dead[:, 1] & alive).sum(axis=1) / np.maximum(alive.sum(axis=1), 1)
        with np.errstate(invalid="ignore"):
            learns = a["loss"][:, -1] < np.log(cell.result.info["n_classes"]) / 2
        valid = snapshot_valid(a["diverged_epoch"], dead.shape[1])
        return np.where(valid[:, 1] & learns, newly, np.nan)

    @metric(
        "fraction of hidden units (in `layers`) with f' = 0 on every training input after the last epoch (NaN for a "
        "diverged net)"
    )
    def dead_frac_end(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _dead(cell), -1)

    @metric("fraction of hidden units (in `layers`) with pre-activation <= 0 on every training input after epoch 1")
    def inactive_frac_epoch1(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _inactive(cell), 1)

    @metric(
        "fraction of hidden units (in `layers`) with pre-activation <= 0 on every training input after the last "
        "epoch: units left stuck in their negative regime by training"
    )
    def inactive_frac_end(self, cell: Cell) -> np.ndarray:
        return _fraction_at(cell, _inactive(cell), -1)

    @metric("number of hidden units (in `layers`) dead at one snapshot and not dead at a later one")
    def revived_units(self, cell: Cell) -> np.ndarray:
        return np.where(cell.result.arrays["diverged"], np.nan, revivals(_dead(cell))[1].sum(axis=1))

    @metric("revived units / units dead at some snapshot before the last (NaN when none was dead or the net diverged)")
    def revived_frac(self, cell: Cell) -> np.ndarray:
        return revived_share(_dead(cell), cell.result.arrays["diverged"])

    @metric("the same as revived_frac for inactivity: inactive units that become active later")
    def recovered_frac(self, cell: Cell) -> np.ndarray:
        return revived_share(_inactive(cell), cell.result.arrays["diverged"])

    @metric("training-split loss (eval mode) after the last epoch (NaN for a diverged net)")
    def final_loss(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["loss"][:, -1].astype(float)

    @metric("training-split accuracy after the last epoch (NaN for a diverged net)")
    def final_accuracy(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["accuracy"][:, -1].astype(float)

    @metric("1 if the loss or a parameter became NaN or infinite during training, else 0", binary=True, name="diverged")
    def diverged_metric(self, cell: Cell) -> np.ndarray:
        return cell.result.arrays["diverged"].astype(float)

    def figure(self, claim, cells, verdict, path: Path) -> str:
        """One PNG whose panels depend on the claim's grid.

        An ``activation`` axis: bars per activation (and learning rate). Else an ``lr`` axis: the
        learning-rate sweep. Else: dead units over time and revivals per setting and layer.
        """
        from actlab.claims import plotting  # matplotlib: needed by judge jobs only, not by training jobs

        grid = claim.get("grid", {}) or {}
        if "activation" in grid:
            return _activation_figure(self, plotting, claim["decision"], cells, path)
        if "lr" in grid:
            return _lr_figure(self, plotting, claim, cells, path)
        return _revival_figure(plotting, claim["decision"], cells, path)


def scope_layers(scope: str, depth: int) -> list[int]:
    """0-based hidden-layer indices of a scope: ``all`` layers, the ``first`` or the ``last`` one."""
    if scope not in LAYER_SCOPES:
        raise ValueError(f"layers must be one of {LAYER_SCOPES}, got {scope!r}")
    return {"all": list(range(depth)), "first": [0], "last": [depth - 1]}[scope]


def _dead(cell: Cell) -> np.ndarray:
    """Dead units of the layers in the cell's ``layers`` scope at every snapshot, ``(S, P, n)`` booleans."""
    layers = scope_layers(cell.params.get("layers", "all"), cell.params["depth"])
    return np.concatenate([cell.result.arrays[f"dead{k}"] for k in layers], axis=2)


def _inactive(cell: Cell) -> np.ndarray:
    """Inactive units (pre-activation <= 0 on every input) of the cell's ``layers`` scope, ``(S, P, n)`` booleans."""
    layers = scope_layers(cell.params.get("layers", "all"), cell.params["depth"])
    with np.errstate(invalid="ignore"):
        return np.concatenate([cell.result.arrays[f"zmax{k}"] <= 0 for k in layers], axis=2)


def _fraction_at(cell: Cell, masks: np.ndarray, snapshot: int) -> np.ndarray:
    """Per seed, the fraction of units in ``masks`` ``(S, P, n)`` at ``snapshot``; NaN where it is invalid."""
    valid = snapshot_valid(cell.result.arrays["diverged_epoch"], masks.shape[1])
    return np.where(valid[:, snapshot], masks[:, snapshot].mean(axis=1), np.nan)


def snapshot_valid(diverged_epoch: np.ndarray, n_snapshots: int) -> np.ndarray:
    """``(S, P)`` booleans: snapshot ``e`` of a seed is valid unless it diverged in epoch ``<= e``.

    ``diverged_epoch`` is 1-based, -1 for a seed that never diverged (:class:`actlab.engine.training.History`).
    """
    epochs = np.arange(n_snapshots)[None, :]
    stop = np.where(diverged_epoch < 0, n_snapshots, diverged_epoch)[:, None]
    return epochs < stop


def revivals(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which units were ever in a state and which left it later.

    Parameters
    ----------
    masks : ndarray of bool, shape (S, P, n)
        Per seed, snapshot and unit: is the unit dead (or inactive)?

    Returns
    -------
    ever : ndarray of bool, shape (S, n)
        In the state at some snapshot ``t < P - 1`` (a unit first in it at the last snapshot
        has no later snapshot to leave it in, so it does not count).
    back : ndarray of bool, shape (S, n)
        Revived: ``exists t < t'`` with ``masks[t]`` and not ``masks[t']``, i.e. out of the state
        at a snapshot after one where it was in it.
    """
    before = np.logical_or.accumulate(masks, axis=1)[:, :-1]  # in the state at some t' <= t
    back = (before & ~masks[:, 1:]).any(axis=1)
    return before[:, -1], back


def revived_share(masks: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Per seed, ``#{revived units} / #{units ever in the state}`` (:func:`revivals`), shape ``(S,)``.

    NaN for a seed with no unit ever in the state (nothing could revive) or that diverged.
    """
    ever, back = revivals(masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = back.sum(axis=1) / ever.sum(axis=1)
    return np.where(diverged, np.nan, share)


# ------------------------------------------------------------------------------------------ figures
def _epochs_axis(ax, plotting) -> None:
    ax.xaxis.set_major_locator(plotting.matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch (0 = initialization)")


def _revival_figure(plotting, decision: dict, cells: list[Cell], path: Path) -> str:
    modes = defaultdict(list)  # cells of one batch setting differ only in the judged layer scope
    for c in cells:
        modes[c.setting.get("batch", str(c.params["batch_size"]))].append(c)
    depth = cells[0].params["depth"]
    width = cells[0].params["width"]
    fig, axes = plotting.plt.subplots(2, 2, figsize=(13, 9))
    ax_time, ax_bar = axes[0]
    styles = ["-", "--", ":", "-."]
    bar_w = 0.8 / max(len(modes), 1)
    for m, (mode, members) in enumerate(modes.items()):
        arrays = [c.result.arrays for c in members]
        steps = members[0].result.info["steps_per_epoch"]
        for layer in range(depth):
            dead = np.concatenate([a[f"dead{layer}"] for a in arrays]).astype(float)
            valid = np.concatenate([snapshot_valid(a["diverged_epoch"], dead.shape[1]) for a in arrays])
            frac = np.where(valid, dead.mean(axis=2), np.nan)
            plotting.band(
                ax_time,
                np.arange(frac.shape[1]),
                frac,
                label=f"{mode} ({steps} step(s)/epoch), layer {layer + 1}",
                color=f"C{layer}",
                linestyle=styles[m % 4],
            )
            masks = np.concatenate([a[f"dead{layer}"] for a in arrays])
            diverged = np.concatenate([a["diverged"] for a in arrays])
            mean, lo, hi = plotting.mean_interval(revived_share(masks, diverged))
            ever, back = revivals(masks)
            x = layer + (m - (len(modes) - 1) / 2) * bar_w
            ax_bar.bar(
                x,
                mean,
                bar_w * 0.9,
                yerr=plotting.yerr(mean, lo, hi),
                capsize=3,
                color=f"C{layer}",
                hatch=["", "//"][m % 2],
                edgecolor="black",
                label=mode if layer == 0 else None,
            )
            n_ever = ever[~diverged].sum(axis=1).mean() if (~diverged).any() else np.nan
            n_back = back[~diverged].sum(axis=1).mean() if (~diverged).any() else np.nan
            ax_bar.text(x, np.nanmax([0.0, mean, hi]) + 0.02, f"{n_back:.1f}/{n_ever:.1f}", ha="center", fontsize=7)
        if m < 2:
            _raster(plotting, axes[1][m], mode, arrays, depth)
    ax_time.set_ylabel(f"fraction of the layer's {width} units dead\n(f' = 0 on every training input)")
    ax_time.set_title("dead units over training (median over seeds, 25-75% band)")
    _epochs_axis(ax_time, plotting)
    ax_time.legend(fontsize=7, title="batch, layer", title_fontsize=7)
    ax_bar.set_xticks(
        range(depth),
        [f"layer {i + 1}" + (" (first)" if i == 0 else " (last)" if i == depth - 1 else "") for i in range(depth)],
    )
    ax_bar.set_ylim(0, 1.12)
    ax_bar.set_ylabel("revived / ever dead\n(mean over nets, 95% CI (BCa bootstrap))")
    ax_bar.set_title(
        "revivals: units dead at one snapshot and alive at a later one\n"
        "(labels: mean revived / mean ever-dead units per net)"
    )
    hatches = [
        plotting.matplotlib.patches.Patch(facecolor="white", edgecolor="black", hatch=["", "//"][m % 2], label=mode)
        for m, mode in enumerate(modes)
    ]
    if decision["metric"] == "revived_frac":
        line = ax_bar.axhline(
            decision["threshold"],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"decision threshold ({decision['compare']} {decision['threshold']:g})",
        )
        hatches.append(line)
    ax_bar.legend(handles=hatches, fontsize=7, title="batch", title_fontsize=7)
    plotting.save(fig, path)
    lr = cells[0].params["lr"]
    return (
        f"ReLU MLPs ({depth} hidden layers of {width}, plain SGD, lr {lr:g}) trained full-batch and with "
        "mini-batches; a unit is dead when its derivative is 0 on every training input. Top left: dead "
        "fraction per layer over epochs. Top right: share of ever-dead units that came back, per layer. "
        "Bottom: every ever-dead unit of one representative net (median number of ever-dead units) over "
        "epochs, black = dead: first-layer units never come back, deeper ones do."
    )


def _raster(plotting, ax, mode: str, arrays: list[dict], depth: int) -> None:
    """Dead/alive map of every ever-dead unit of one net: the one with the median number of them."""
    nets = [(i, s) for i, a in enumerate(arrays) for s in range(len(a["diverged"])) if not a["diverged"][s]]
    if not nets:
        ax.set_title(f"{mode}: every net diverged")
        return
    counts = [sum(arrays[i][f"dead{k}"][s].any(axis=0).sum() for k in range(depth)) for i, s in nets]
    i, s = nets[int(np.argsort(counts, kind="stable")[len(counts) // 2])]
    rows, names = [], []
    for layer in range(depth):
        mask = arrays[i][f"dead{layer}"][s]  # (P, n)
        ever = mask.any(axis=0)
        rows.append(mask[:, ever].T.astype(float))
        names.append(f"layer {layer + 1}\n({int(ever.sum())} units)")
    image = np.concatenate(rows)
    ends = np.cumsum([len(r) for r in rows])
    ax.imshow(
        image if len(image) else np.zeros((1, mask.shape[0])),
        aspect="auto",
        cmap="Greys",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        extent=(-0.5, mask.shape[0] - 0.5, max(len(image), 1), 0),
    )
    for end in ends[:-1]:
        ax.axhline(end, color="tab:red", linewidth=1)
    ax.set_yticks((ends - np.array([len(r) for r in rows]) / 2).tolist(), names, fontsize=7)
    ax.grid(False)
    _epochs_axis(ax, plotting)
    ax.set_title(f"{mode}: one net's ever-dead units (rows), black = dead, white = alive", fontsize=9)


def _lr_figure(exp: DyingUnits, plotting, claim: dict, cells: list[Cell], path: Path) -> str:
    cells = sorted(cells, key=lambda c: float(c.params["lr"]))
    lrs = np.array([float(c.params["lr"]) for c in cells])
    depth = cells[0].params["depth"]
    threshold = claim["decision"]["threshold"]
    fig, (ax, ax_layer, ax_loss) = plotting.plt.subplots(1, 3, figsize=(16, 4.6))
    for stage, label, style in (("epoch1", "after epoch 1", "-"), ("end", "at the end", "--")):
        values = [exp.metric(f"dead_frac_{stage}", c) for c in cells]
        plotting.mean_ci(
            ax,
            lrs,
            values,
            label=f"{label} (epoch {cells[0].params['epochs']})" if stage == "end" else label,
            linestyle=style,
        )
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"claim: {threshold:.0%} of units")
    ax.set_ylabel("fraction of all hidden units dead\n(mean, 95% CI (BCa bootstrap))")
    ax.set_title("dead = f' = 0 on every training input")
    for layer in range(depth):
        values = [
            np.where(
                snapshot_valid(c.result.arrays["diverged_epoch"], 2)[:, 1],
                c.result.arrays[f"dead{layer}"][:, 1].mean(axis=1),
                np.nan,
            )
            for c in cells
        ]
        plotting.mean_ci(ax_layer, lrs, values, label=f"layer {layer + 1}")
    ax_layer.axhline(threshold, color="black", linestyle="--", linewidth=1)
    ax_layer.set_ylabel("fraction of the layer's units dead after epoch 1\n(mean, 95% CI (BCa bootstrap))")
    ax_layer.set_title("per hidden layer (1 = next to the input)")
    loss = np.stack([exp.metric("final_loss", c) for c in cells], axis=1)
    plotting.band(ax_loss, lrs, loss, label="final training loss", marker="o")
    chance = np.log(cells[0].result.info["n_classes"])
    ax_loss.axhline(
        chance, color="gray", linestyle=":", label=f"constant output, ln {cells[0].result.info['n_classes']}"
    )
    for lr, c in zip(lrs, cells, strict=True):
        if c.result.info["n_diverged"]:
            ax_loss.annotate(f"{c.result.info['n_diverged']} diverged", (lr, chance), fontsize=7, rotation=90)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("training cross-entropy after the last epoch\n(median, 25-75% band)")
    ax_loss.set_title("does the net still learn?")
    for a in (ax, ax_layer, ax_loss):
        a.set_xscale("log")
        a.set_xticks(lrs, [f"{v:g}" for v in lrs], rotation=45)
        a.minorticks_off()
        a.set_xlabel("SGD learning rate (log scale)")
        a.legend(fontsize=7)
    for a in (ax, ax_layer):
        a.set_ylim(-0.02, 1.02)
    plotting.save(fig, path)
    p = cells[0].params
    return (
        f"ReLU MLPs ({depth} hidden layers of {p['width']}, He init, plain SGD, batch {p['batch_size']}) on "
        f"{p['dataset']}, one cell per learning rate. Left: fraction of hidden units dead (derivative 0 on "
        "every training input) after the first epoch and at the end, with the claimed 40%. Middle: the same "
        "after epoch 1 per layer. Right: final training loss; ln(classes) is what a net with a constant "
        "output gets."
    )


def _activation_figure(exp: DyingUnits, plotting, decision: dict, cells: list[Cell], path: Path) -> str:
    acts = list(dict.fromkeys(c.setting["activation"] for c in cells))

    def rest(c: Cell) -> str:
        return ", ".join(f"{k}={v}" for k, v in c.setting.items() if k != "activation")

    others = list(dict.fromkeys(rest(c) for c in cells))
    table = {(c.setting["activation"], rest(c)): c for c in cells}
    names = {}
    for c in cells:
        act = get_activation(c.params["activation"])
        extra = ", ".join(f"{k} {v:g}" for k, v in act.config().items() if isinstance(v, float))
        names[c.setting["activation"]] = act.name + (f"\n({extra})" if extra else "")
    width = 0.8 / len(others)

    def slots():
        for k, other in enumerate(others):
            for i, act in enumerate(acts):
                if (act, other) in table:
                    yield k, other, i, table[(act, other)], i + (k - (len(others) - 1) / 2) * width

    fig, axes = plotting.plt.subplots(2, 2, figsize=(14, 9))
    panels = [
        (axes[0, 0], "dead_frac_end", "fraction of units dead at the end", "dead: f'(z) = 0 on every training input"),
        (
            axes[0, 1],
            "inactive_frac_end",
            "fraction of units inactive at the end",
            "inactive: z <= 0 on every training input (diamond: after epoch 1;\nn = nets that did not diverge)",
        ),
        (axes[1, 1], "diverged", "fraction of nets that diverged", "divergence: loss or weights NaN/inf"),
    ]
    for ax, name, ylabel, title in panels:
        for k, other, i, c, x in slots():
            mean, lo, hi = plotting.mean_interval(exp.metric(name, c), binary=name in exp.binary_metrics)
            ax.bar(
                x,
                mean,
                width * 0.9,
                yerr=plotting.yerr(mean, lo, hi),
                capsize=3,
                color=f"C{k}",
                edgecolor="black",
                label=other if i == 0 else None,
            )
            if np.isnan(mean):
                ax.text(x, 0.02, "all diverged", ha="center", fontsize=7, rotation=90)
            elif mean == 0:
                ax.text(x, 0.01, "0", ha="center", va="bottom", fontsize=8)
            if name == "inactive_frac_end" and not np.isnan(mean):
                n = int(np.isfinite(exp.metric(name, c)).sum())
                ax.text(x, 1.03, f"n={n}", ha="center", va="bottom", fontsize=7)
            if name == "inactive_frac_end":
                early, early_lo, early_hi = plotting.mean_interval(exp.metric("inactive_frac_epoch1", c))
                ax.errorbar(
                    x,
                    early,
                    yerr=plotting.yerr(early, early_lo, early_hi),
                    fmt="D",
                    color="black",
                    markersize=4,
                    capsize=2,
                    label="after epoch 1" if (i, k) == (0, 0) else None,
                )
        if name == decision["metric"]:
            ax.axhline(
                decision["threshold"],
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"decision threshold ({decision['compare']} {decision['threshold']:g})",
            )
        ax.set_ylim(0, 1.3)  # headroom for the legend and the n labels
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel(
            ylabel + "\n(share of nets, 95% CI (exact binomial))"
            if name in exp.binary_metrics
            else ylabel + "\n(mean over non-diverged nets, 95% CI (BCa bootstrap))"
        )
        ax.set_title(title)
    ax = axes[1, 0]
    cap = 1e3
    for k, other, i, c, x in slots():
        loss = exp.metric("final_loss", c)
        loss = loss[np.isfinite(loss)]
        if not len(loss):
            ax.text(x, 0.05, "all diverged", ha="center", fontsize=7, rotation=90, transform=ax.get_xaxis_transform())
            continue
        lo, mid, hi = np.minimum(np.percentile(loss, [25, 50, 75]), cap)
        ax.bar(
            x,
            mid,
            width * 0.9,
            color=f"C{k}",
            edgecolor="black",
            yerr=[[mid - lo], [hi - mid]],
            capsize=3,
            label=other if i == 0 else None,
        )
        if np.median(loss) > cap:
            ax.text(x, cap * 1.3, f"{np.median(loss):.0e}", ha="center", va="bottom", fontsize=7, rotation=90)
    n_classes = cells[0].result.info["n_classes"]
    ax.axhline(np.log(n_classes), color="gray", linestyle=":", label=f"constant output (ln {n_classes})")
    ax.set_yscale("log")
    ax.set_ylim(top=1e5)
    ax.set_ylabel("training cross-entropy after the last epoch\n(median, 25-75% of non-diverged nets)")
    ax.set_title(f"does the net still learn? (bars capped at {cap:g}, true median written above)")
    for ax in axes.flat:
        ax.set_xticks(range(len(acts)), [names[a] for a in acts])
        ax.legend(fontsize=7, loc="upper left", ncol=4)
    p = cells[0].params
    fig.suptitle(
        f"{p['depth']} hidden layers of {p['width']}, {p['init']} init, plain SGD, batch {p['batch_size']}, "
        f"{p['epochs']} epochs on {p['dataset']}",
        fontsize=10,
    )
    plotting.save(fig, path)
    return (
        "Each activation in the high-learning-rate regime where ReLU units die. Top left: units dead in the "
        "gradient sense (derivative 0 on every training input; impossible for leaky ReLU, PReLU and NecroReLU, "
        "possible for ELU only when exp(z) underflows). Top right: units inactive (pre-activation <= 0 on every "
        "input), the forward analogue, at the end and (diamonds) after epoch 1: did they recover? Bottom: "
        "final training loss and the share of nets that diverged (left out of the other panels)."
    )
