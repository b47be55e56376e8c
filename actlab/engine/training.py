"""Training loop for seed ensembles, with optional instrumentation and recorded divergence."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actlab.engine import probes
from actlab.engine.checks import check_array, check_int
from actlab.engine.losses import Loss, get_loss
from actlab.engine.network import MLP
from actlab.engine.optimizers import Optimizer, get_optimizer

#: A training loss above this is an explosion, recorded as divergence like a NaN or infinite one.
#: Every experiment's net starts far below it (cross-entropy of 10 classes: about 2.3; the single
#: neuron's squared error from w = -10: tens), and a net that reaches it has weights that
#: have grown without bound (e.g. ELU nets at lr 1 reaching losses of 1e73 while staying finite).
EXPLODED_LOSS = 1e6


class ArrayData:
    """A fixed training set ``x`` ``(N, n_in)``, ``y`` ``(N, n_out)``, served in mini-batches.

    Each seed shuffles with its own "data" stream every epoch (``shuffle=True``) so an ensemble
    sees the same batches as its seeds trained one at a time. ``batch_size=None`` is full-batch
    gradient descent; the last batch of an epoch may be smaller (as in scikit-learn).

    Parameters
    ----------
    x : array_like, shape (N, n_in)
        Inputs: real, finite, at least one row.
    y : array_like, shape (N, n_out)
        Targets for the same rows (one-hot rows for classification): real and finite.
    batch_size : int or None
        Samples per batch (``>= 1``; larger than ``N`` means full batch), or None for full batch.
    shuffle : bool
        Reshuffle every epoch, per seed (only when there is more than one batch).

    Raises
    ------
    TypeError
        For non-numeric arrays or a batch size that is not an int (``32.7``, ``True``).
    ValueError
        For arrays that are not 2-D, are empty, disagree on ``N`` or hold NaN or inf, or a
        batch size below 1. Whether the widths fit a network is checked by :func:`train`.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int | None = None, shuffle: bool = True):
        self.x = check_array(x, "ArrayData: x", finite=True)
        rows = (len(self.x), f"x has {len(self.x)} rows")
        self.y = check_array(y, "ArrayData: y", shape=(rows, None), finite=True)
        if batch_size is not None:
            batch_size = check_int(batch_size, "ArrayData: batch_size (None for full batch)", minimum=1)
        self.batch_size = len(self.x) if batch_size is None else min(batch_size, len(self.x))
        self.shuffle = shuffle and self.batch_size < len(self.x)

    def batches(self, rngs: list[np.random.Generator]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of ``(x, y)`` batches: ``(S, B, n)`` when shuffled per seed, else ``(B, n)``."""
        n, size = len(self.x), self.batch_size
        if not self.shuffle:
            for start in range(0, n, size):
                yield self.x[start : start + size], self.y[start : start + size]
            return
        order = np.empty((len(rngs), n), dtype=np.int64)
        order[:] = np.arange(n)
        for rng, row in zip(rngs, order, strict=True):
            rng.shuffle(row)  # in place: the same numbers as rng.permutation(n), without a copy
        for start in range(0, n, size):
            idx = order[:, start : start + size]
            yield np.take(self.x, idx, axis=0), np.take(self.y, idx, axis=0)  # faster than x[idx]


class StreamData:
    """Fresh samples every step: ``sample(rng, batch_size) -> (x (B, n_in), y (B, n_out))``.

    Each seed draws from its own "data" stream, ``steps_per_epoch`` batches per epoch (the
    Keras ``fit_generator`` protocol of seed 002).

    Parameters
    ----------
    sample : callable
        ``sample(rng, batch_size) -> (x, y)``.
    batch_size, steps_per_epoch : int
        Both ``>= 1``.

    Raises
    ------
    TypeError
        If ``sample`` is not callable or a count is not an int.
    ValueError
        If a count is below 1.

    The batches are drawn during training, so their shapes are checked by :func:`train` step by
    step, but not their finiteness (NaN samples are recorded as divergence).
    """

    def __init__(self, sample: Callable, batch_size: int, steps_per_epoch: int):
        if not callable(sample):
            raise TypeError(f"StreamData: sample must be a function (rng, batch_size) -> (x, y), got {sample!r}")
        self.sample = sample
        self.batch_size = check_int(batch_size, "StreamData: batch_size", minimum=1)
        self.steps_per_epoch = check_int(steps_per_epoch, "StreamData: steps_per_epoch", minimum=1)

    def batches(self, rngs):
        for _ in range(self.steps_per_epoch):
            drawn = [self.sample(rng, self.batch_size) for rng in rngs]
            yield np.stack([x for x, _ in drawn]), np.stack([y for _, y in drawn])


@dataclass
class History:
    """Everything recorded during training, one row per seed.

    Attributes
    ----------
    metrics : dict of str to ndarray
        ``loss``: mean training-batch loss of each epoch, ``(S, E)`` (data term only, without
        penalties). ``test_loss`` / ``test_accuracy``: ``(S, E + 1)`` when a test set is given.
        ``probe_*``: every metric of :func:`actlab.engine.probes.probe` at epochs ``probe_epochs``,
        ``(S, P, ...)``; ``probe_dead_mask{l}``: ``(S, P, n_l)`` booleans per hidden layer.
        ``step_loss`` and ``step_grad_norm``: ``(S, steps)`` and ``(S, steps, L + 1)`` with
        ``record_steps``.
    probe_epochs : ndarray
        Epochs at which the probe ran (0 is the initialization).
    diverged : ndarray of bool, shape (S,)
        The loss or a parameter became NaN or infinite; the seed was frozen from then on.
    diverged_epoch : ndarray of int, shape (S,)
        Epoch (1-based) in which it happened, -1 if never.
    """

    metrics: dict[str, np.ndarray] = field(default_factory=dict)
    probe_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, int))
    diverged: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    diverged_epoch: np.ndarray = field(default_factory=lambda: np.zeros(0, int))

    def save(self, path: str | Path) -> None:
        """Write every array to one ``.npz`` file."""
        np.savez_compressed(
            path,
            probe_epochs=self.probe_epochs,
            diverged=self.diverged,
            diverged_epoch=self.diverged_epoch,
            **self.metrics,
        )

    @classmethod
    def load(cls, path: str | Path) -> History:
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        return cls(
            probe_epochs=arrays.pop("probe_epochs"),
            diverged=arrays.pop("diverged"),
            diverged_epoch=arrays.pop("diverged_epoch"),
            metrics=arrays,
        )


class _Recorder:
    """Collects per-epoch rows into ``(S, n_rows, ...)`` arrays."""

    def __init__(self) -> None:
        self.rows: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, value: np.ndarray) -> None:
        self.rows.setdefault(name, []).append(np.array(value, dtype=float if value.dtype != bool else bool))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.stack(v, axis=1) for k, v in self.rows.items()}


def _record_probe(rec: _Recorder, net: MLP, loss: Loss, data: tuple[np.ndarray, np.ndarray], frozen: np.ndarray):
    result = probes.probe(net, loss, *data)
    for name, value in result.items():
        if name == "dead_masks":
            for layer, mask in enumerate(value):
                rec.add(f"probe_dead_mask{layer}", mask & ~frozen[:, None])  # a NaN unit is not "dead"
        else:
            value = np.array(value, dtype=float)
            value[frozen] = np.nan
            rec.add(f"probe_{name}", value)


def _record_test(rec: _Recorder, net: MLP, loss: Loss, data: tuple[np.ndarray, np.ndarray], frozen: np.ndarray):
    out = net.predict(data[0])
    target = np.broadcast_to(data[1], out.shape)
    value, _ = loss(out, target)
    acc = loss.accuracy(out, target)
    acc = np.full(net.n_seeds, np.nan) if acc is None else np.array(acc, dtype=float)
    value = np.array(value, dtype=float)
    value[frozen] = np.nan
    acc[frozen] = np.nan
    rec.add("test_loss", value)
    rec.add("test_accuracy", acc)


def _nonfinite_params(net: MLP) -> np.ndarray:
    bad = np.zeros(net.n_seeds, bool)
    for p in net.parameters():
        bad |= ~np.isfinite(p).reshape(net.n_seeds, -1).all(axis=1)
    return bad


def train(
    net: MLP,
    data: ArrayData | StreamData,
    *,
    loss: str | Loss = "mse",
    optimizer: str | dict | Optimizer = "sgd",
    epochs: int = 10,
    l2: float = 0.0,
    l1_activation: float = 0.0,
    probe: tuple[np.ndarray, np.ndarray] | None = None,
    probe_every: int = 1,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    record_steps: bool = False,
    on_epoch: Callable[[int, MLP], None] | None = None,
) -> History:
    """Train every seed of ``net`` in place and return its :class:`History`.

    Parameters
    ----------
    net : MLP
        The ensemble; its ``seeds`` also seed the shuffling ("data" stream).
    data : ArrayData or StreamData
        Where training batches come from.
    loss, optimizer : name, spec or instance
        See :mod:`actlab.engine.losses` and :mod:`actlab.engine.optimizers` (the learning rate may be one value
        per seed).
    epochs : int
        Passes over ``data``.
    l2 : float
        Weight decay: adds ``l2 / 2 * sum ||W||^2`` (weights only, not biases or other parameters).
    l1_activation : float
        Adds ``l1_activation * sum_l mean_n sum_j |a_nj|`` over hidden activations.
    probe : (x, y), optional
        Probe set for full instrumentation at epoch 0 (init) and every ``probe_every`` epochs.
        Nothing is probed when None, which keeps training at full speed.
    test : (x, y), optional
        Held-out set whose loss and accuracy are recorded at epoch 0 and after every epoch.
    record_steps : bool
        Also record every step's batch loss and weight-gradient norms.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, net)`` at epoch 0 (init) and after every epoch, for
        measurements of an experiment's own (e.g. snapshots of the weights).

    Divergence (a NaN or infinite loss or parameter, or a loss above :data:`EXPLODED_LOSS`) never
    raises: the seed is marked in ``History.diverged``, frozen (learning rate 0) and its later
    metrics are NaN.

    Raises
    ------
    TypeError
        For arguments of the wrong type: ``net`` not an :class:`MLP`, ``data`` without a
        ``batches`` method (e.g. a bare ``(x, y)``), a non-int count, a non-numeric array or penalty.
    ValueError
        Before training, for data that cannot be trained on: inputs whose width is not the
        network's ``n_inputs``, targets whose shape is not ``(N, n_outputs)``, empty arrays, NaN or
        infinite entries in ``data`` (an :class:`ArrayData`), ``probe`` or ``test``, and negative or
        non-finite penalties or counts. During training, for a batch (of a :class:`StreamData` or
        other source) whose shapes do not fit the network.
    """
    if not isinstance(net, MLP):
        raise TypeError(f"train: net must be an MLP, got {type(net).__name__}")
    if not callable(getattr(data, "batches", None)):
        raise TypeError(
            f"train: data must be an ArrayData, a StreamData or have a batches(rngs) method, "
            f"got {type(data).__name__}; wrap arrays as ArrayData(x, y, batch_size)"
        )
    epochs = check_int(epochs, "train: epochs")
    probe_every = check_int(probe_every, "train: probe_every", minimum=1)
    for name, value in (("l2", l2), ("l1_activation", l1_activation)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"train: {name} must be a real number >= 0, got {value!r} ({type(value).__name__})")
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"train: {name} must be a finite number >= 0, got {value}")
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"train: on_epoch must be a function (epoch, net) or None, got {on_epoch!r}")
    # Every fixed data set, once per call (ArrayData checked itself, but not against this network).
    sets = [("data.x", "data.y", (data.x, data.y))] if isinstance(data, ArrayData) else []
    for name, pair in (("probe", probe), ("test", test)):
        if pair is not None:
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"train: {name} must be a pair (x, y) of arrays or None, got {type(pair).__name__}")
            sets.append((f"{name}[0] (x)", f"{name}[1] (y)", pair))
    for x_name, y_name, (x_set, y_set) in sets:
        x_set = net.check_inputs(x_set, f"train: {x_name}", finite=True)
        net.check_targets(y_set, f"train: {y_name}", x_set.shape[-2], finite=True)
    loss = get_loss(loss)
    params = net.parameters()
    opt = get_optimizer(optimizer).bind(params)
    n_weights = len(net.W)
    # Large weight matrices under plain SGD are updated from their gradient's factors (one pass
    # over W), unless the gradient itself is needed (weight decay, per-step gradient norms).
    factored = [] if l2 or record_steps else opt.factored(net.W)
    rngs = net.seeds.rngs("data")
    rec = _Recorder()
    diverged = np.zeros(net.n_seeds, bool)
    diverged_epoch = np.full(net.n_seeds, -1)
    probe_epochs = []

    def measure(epoch: int) -> None:
        if probe is not None and epoch % probe_every == 0:
            _record_probe(rec, net, loss, probe, diverged)
            probe_epochs.append(epoch)
        if test is not None:
            _record_test(rec, net, loss, test, diverged)
        if on_epoch is not None:
            on_epoch(epoch, net)

    with np.errstate(all="ignore"):  # overflow is detected below and recorded as divergence
        measure(0)
        for epoch in range(1, epochs + 1):
            total = np.zeros(net.n_seeds)
            n_steps = 0
            for x, y in data.batches(rngs):
                cache = net.forward(x, train=True)  # checks the shape of x
                out_shape = cache.out.shape  # y must be (B, n_out), (1, B, n_out) or (S, B, n_out)
                if np.shape(y) not in (out_shape[1:], out_shape, (1, *out_shape[1:])):  # no pass over y
                    net.check_targets(y, "train: y of a batch from data", out_shape[1])  # raises
                values, grad_out = loss(cache.out, y)
                grads, deltas = net.backward(cache, grad_out, l1_activation, skip_weight_grads=factored)
                for layer in factored:
                    opt.step_factored(layer, net.W[layer], cache.inputs[layer], deltas[layer])
                if l2:
                    for g, w in zip(grads[:n_weights], net.W, strict=True):
                        g += l2 * w
                if record_steps:
                    rec.add("step_loss", values)
                    rec.add(
                        "step_grad_norm", np.stack([np.sqrt(np.sum(g * g, axis=(1, 2))) for g in grads[:n_weights]], 1)
                    )
                opt.step(params, grads)
                total += values
                n_steps += 1
                newly = ~(np.abs(values) < EXPLODED_LOSS) & ~diverged  # NaN, inf or exploded
                if newly.any():
                    _mark_diverged(newly, epoch, diverged, diverged_epoch, opt)
            newly = _nonfinite_params(net) & ~diverged
            if newly.any():
                _mark_diverged(newly, epoch, diverged, diverged_epoch, opt)
            epoch_loss = total / max(n_steps, 1)
            epoch_loss[diverged] = np.nan
            rec.add("loss", epoch_loss)
            measure(epoch)
            if diverged.all():
                break
    metrics = rec.arrays()
    metrics.setdefault("loss", np.zeros((net.n_seeds, 0)))
    if metrics["loss"].shape[1] < epochs:  # every seed diverged and training stopped: pad with NaN
        probe_epochs = [e for e in range(epochs + 1) if e % probe_every == 0] if probe is not None else []
        metrics = _pad_epochs(metrics, epochs, len(probe_epochs))
    return History(metrics, np.array(probe_epochs, dtype=int), diverged, diverged_epoch)


def _mark_diverged(newly, epoch, diverged, diverged_epoch, opt: Optimizer) -> None:
    diverged |= newly
    diverged_epoch[newly] = epoch
    opt.freeze(newly)


def _pad_epochs(metrics: dict[str, np.ndarray], epochs: int, n_probes: int) -> dict[str, np.ndarray]:
    """Extend the series of a run stopped early (every seed diverged): NaN, or False for masks."""
    targets = {"loss": epochs, "test_loss": epochs + 1, "test_accuracy": epochs + 1}
    padded = {}
    for name, value in metrics.items():
        target = n_probes if name.startswith("probe_") else targets.get(name, value.shape[1])
        shape = (value.shape[0], target - value.shape[1], *value.shape[2:])
        fill = np.zeros(shape, bool) if value.dtype == bool else np.full(shape, np.nan)
        padded[name] = np.concatenate([value, fill], axis=1)
    return padded
