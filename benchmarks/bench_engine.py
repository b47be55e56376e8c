"""Speed of the actlab engine against scikit-learn, PyTorch CPU, JAX CPU and the bare NumPy matmuls.

Run ``python benchmarks/bench_engine.py`` (``--help`` for options). Every comparison runs in this
one process: the jobs of a case are warmed up once, then timed in interleaved rounds (the order
rotates each round) and each job's median is reported, so a busy shared machine slows both sides
of a ratio alike. One JSON line per comparison goes to stdout; progress, skipped peers and the
target summary go to stderr. The exit status is 1 when a sanity check failed (a job did not
train, or two jobs did not take the same number of steps), whatever the timings. PyTorch and JAX
are optional: without them their rows are skipped with a message on stderr.

Cases
-----
``digits-relu-H{H}``
    load_digits (X / 16, 1797 samples, 10 classes), 64-H-H-10 ReLU, 30 epochs, batch 64, plain
    SGD lr 0.1, float64, shuffled every epoch. Peers: ``sklearn`` (MLPClassifier), ``torch``
    (when installed) and ``gemm-floor``: exactly the 8 matrix products per step the engine must do
    (3 forward ``a @ W``, 3 ``a.T @ delta``, 2 ``delta @ W.T``) in NumPy with preallocated outputs,
    for the same number of steps and batch shapes: the ceiling for any NumPy engine; and
    ``gemm-sgd-floor``, the same plus the textbook in-place SGD update of the weights
    (``g *= lr; W -= g``). The engine's own update of its large layers takes one pass over ``W``
    instead of two (``SGD.step_factored``), so it can beat ``gemm-sgd-floor``. The extra row
    ``digits-relu-H{H}-torch-vs-floor`` compares PyTorch itself with ``gemm-floor``.
``moons-ensemble-S64``
    64 seeds of a 2-16-16-1 ReLU net on make_moons(256, noise=0.2), sigmoid cross-entropy,
    200 epochs, batch 32, SGD lr 0.1, trained as one batched ensemble (``ours``) against 64
    one-seed runs in a row (peer ``sequential``); both must end with the same weights.
``ensemble-S{S}-H{H}-{dtype}``
    S seeds of a 64-H-H-H-10 ReLU net on digits (as above: softmax cross-entropy, plain SGD lr 0.1,
    batch 64, He-normal, zero biases), 3 epochs, each seed shuffling its own batches, float64 or
    float32, one thread on every side. actlab trains them as one ensemble, ``MLP(..., seeds=Seeds(S,
    key=(0,)))``. Peers: ``jax`` (``jax.vmap`` over the seeds of one net's whole training, jitted;
    compiled in the warm-up), ``torch`` (batched ``baddbmm``/``bmm`` over the seeds, backward
    written out) and ``gemm-floor`` with a seed axis (the 11 batched products per step, nothing
    else). Grid: S in {4, 16, 64} at H in {16, 32, 64}, S in {4, 16} at H = 256; ``--full-grid``:
    S in {4, 8, 16, 32, 64} at every H. Targets: <= 1 against jax and torch, <= 2 against
    ``gemm-floor`` at H <= 64.

Threads: the digits and moons cases run BLAS with NumPy's thread count (``--threads``); the
ensemble cases limit NumPy (threadpoolctl) and PyTorch (``torch.set_num_threads``) to one thread,
and JAX's CPU backend is started with one intra-op thread (see :func:`load_jax`). JAX is imported
only then, when an ensemble case runs.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import fnmatch
import gc
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import platform
import pstats
import re
import statistics
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sklearn
import threadpoolctl
from sklearn.datasets import load_digits, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import actlab
from actlab import engine
from actlab.engine.memory import keep_freed_memory

try:  # optional peer, never a dependency
    import torch
    from torch import nn
except ImportError:
    torch = None
    nn = None

DIGITS_BATCH = 64
DIGITS_LR = 0.1
DIGITS_EPOCHS = 30
DIGITS_MIN_ACC = 0.9  # final training accuracy every digits job must exceed after 30 epochs
DIGITS_MIN_ACC_SHORT = 0.5  # ... and after fewer epochs (--quick, --epochs): well above chance (0.1)
MOONS_SEEDS = 64
MOONS_BATCH = 32
MOONS_LR = 0.1
MOONS_MIN_ACC = 0.8  # mean final training accuracy over the 64 seeds
ENSEMBLE_DEPTH = 3  # hidden layers of the ensemble cases: 64-H-H-H-10
ENSEMBLE_EPOCHS = 3
ENSEMBLE_MIN_ACC = 0.3  # mean final training accuracy over the seeds after 3 epochs (chance: 0.1)
ENSEMBLE_MIN_ACC_SHORT = 0.15  # ... after fewer epochs
ENSEMBLE_DTYPES = ("float64", "float32")
# hidden width -> seed counts
ENSEMBLE_GRID = {16: (4, 16, 64), 32: (4, 16, 64), 64: (4, 16, 64), 256: (4, 16)}
ENSEMBLE_FULL_GRID = {hidden: (4, 8, 16, 32, 64) for hidden in (16, 32, 64, 256)}
ENSEMBLE_QUICK_GRID = {32: (16,), 256: (16,)}
ENSEMBLE_NAME = re.compile(r"ensemble-S(\d+)-H(\d+)-(float32|float64)")
ENSEMBLE_FLOOR_MAX_H = 64  # the "within 2x of the bare matmuls" target holds for the small widths
# The XLA flags long given for a single-threaded JAX on CPU. With jaxlib 0.10 they are accepted but
# do not keep a jitted function on one thread: see load_jax.
JAX_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: how the process allocates memory, set once by main() and recorded in every row
ALLOCATOR: dict[str, str] = {"allocator": "system default"}
JAX_CACHE = os.path.join(tempfile.gettempdir(), "actlab-bench-jax-cache")


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Jobs: ``train()`` is what is timed; ``check(state)`` runs afterwards, untimed, and returns the
# final training accuracy and the number of optimizer steps the job took.


@dataclass
class Job:
    name: str
    train: Callable[[], object]
    check: Callable[[object], tuple[float | None, int]]
    warmup: Callable[[], object] | None = None  # a short run of the same code; defaults to train
    times: list[float] = field(default_factory=list)
    accs: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-minute load average after each timed run
    cpu_times: list[float] = field(default_factory=list)  # CPU seconds of the process (all threads) per run
    case_loads: tuple[float, float] | None = None  # 1-minute load average at the start and end of the case
    last_state: object = None


class CountingArrayData(engine.ArrayData):
    """engine.ArrayData that also counts the batches it serves (one generator layer, ~0.1 us a step)."""

    steps = 0

    def batches(self, rngs):
        for batch in super().batches(rngs):
            self.steps += 1
            yield batch


def digits_data():
    digits = load_digits()
    x = digits.data / 16.0
    y = digits.target.astype(np.int64)
    return x, y, np.eye(10)[y]


def batch_sizes(n: int, batch: int) -> list[int]:
    return [min(batch, n - start) for start in range(0, n, batch)]


def actlab_digits_job(x, y, onehot, hidden: list[int], epochs: int, seeds: int = 1, dtype=np.float64) -> Job:
    """64-hidden-10 ReLU on digits; with ``seeds`` > 1 one batched ensemble ``Seeds(seeds, key=(0,))``.

    ``x`` and ``onehot`` should already be of ``dtype``. Accuracy is the mean over the seeds, steps
    are seed-steps (steps x seeds).
    """

    def run(n_epochs):
        net = engine.MLP(
            64, hidden, 10, activation="relu", init="he_normal", seeds=engine.Seeds(seeds, key=(0,)), dtype=dtype
        )
        data = CountingArrayData(x, onehot, batch_size=DIGITS_BATCH, shuffle=True)
        engine.train(
            net,
            data,
            loss="softmax_cross_entropy",
            optimizer={"name": "sgd", "lr": DIGITS_LR},
            epochs=n_epochs,
        )
        return net, data

    def check(state):
        net, data = state
        if net.W[0].dtype != dtype:
            raise AssertionError(f"actlab trained in {net.W[0].dtype}, not {np.dtype(dtype)}")
        acc = float(np.mean(net.predict(x).argmax(axis=2) == y))  # over seeds and samples
        return acc, data.steps * net.n_seeds

    return Job("actlab", lambda: run(epochs), check, lambda: run(1))


def sklearn_digits_job(x, y, hidden: int, epochs: int) -> Job:
    def run(n_epochs):
        clf = MLPClassifier(
            hidden_layer_sizes=(hidden, hidden),
            activation="relu",
            solver="sgd",
            alpha=0.0,
            batch_size=DIGITS_BATCH,
            learning_rate="constant",
            learning_rate_init=DIGITS_LR,
            momentum=0.0,
            nesterovs_momentum=False,
            max_iter=n_epochs,
            shuffle=True,
            tol=0.0,
            n_iter_no_change=10**9,  # never stops early: runs all max_iter epochs
            early_stopping=False,
            random_state=0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x, y)
        return clf

    def check(clf):
        if clf.t_ != clf.n_iter_ * len(x):
            raise AssertionError(f"sklearn saw {clf.t_} samples in {clf.n_iter_} epochs of {len(x)}")
        return float(clf.score(x, y)), clf.n_iter_ * len(batch_sizes(len(x), DIGITS_BATCH))

    return Job("sklearn", lambda: run(epochs), check, lambda: run(1))


def torch_digits_job(x, y, hidden: int, epochs: int) -> Job:
    xt = torch.tensor(x, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.int64)
    n = len(xt)

    def run(n_epochs):
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )
        opt = torch.optim.SGD(model.parameters(), lr=DIGITS_LR)  # momentum 0, no weight decay
        criterion = nn.CrossEntropyLoss()
        steps = 0
        for _ in range(n_epochs):
            perm = torch.randperm(n)
            for start in range(0, n, DIGITS_BATCH):
                idx = perm[start : start + DIGITS_BATCH]
                opt.zero_grad()
                loss = criterion(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                steps += 1
        return model, steps

    def check(state):
        model, steps = state
        with torch.no_grad():
            acc = float((model(xt).argmax(dim=1) == yt).double().mean())
        return acc, steps

    return Job("torch", lambda: run(epochs), check, lambda: run(1))


def gemm_floor_job(
    n: int, sizes: list[int], epochs: int, sgd_update: bool = False, seeds: int | None = None, dtype=np.float64
) -> Job:
    """Only the matmuls of the job, with the engine's shapes, into preallocated outputs.

    ``sizes`` are the layer widths, inputs to outputs. Per step: ``a @ W`` for every dense layer,
    then, from the top layer down, ``a.T @ delta`` for every layer and ``delta @ W.T`` for every
    layer but the first. With ``seeds`` every array gets a leading seed axis and the products are
    batched over it (``np.matmul`` on ``(S, B, n) @ (S, n, k)``), as in the engine's ensemble; the
    first layer's input is per seed too (each seed shuffles its own batches).

    With ``sgd_update`` each step also applies the textbook plain SGD update to the weights in
    place (``g *= lr; W -= g``: two element-wise passes over every weight matrix).
    """
    dtype = np.dtype(dtype).type
    lead = () if seeds is None else (seeds,)
    rng = np.random.default_rng(0)
    weights = [
        rng.standard_normal((*lead, m, k), dtype=dtype) / dtype(math.sqrt(m))
        for m, k in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    grad_w = [np.empty_like(w) for w in weights]

    def products(b: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(x, y, out)`` of every product of a step on a batch of ``b``, in the engine's order."""
        a = [rng.standard_normal((*lead, b, k), dtype=dtype) for k in sizes[:-1]]  # input of each dense layer
        z = [np.empty((*lead, b, k), dtype=dtype) for k in sizes[1:]]  # output of each dense layer
        delta = [rng.standard_normal((*lead, b, k), dtype=dtype) for k in sizes[1:]]  # dL/dz of each layer
        grad_a = [np.empty((*lead, b, k), dtype=dtype) for k in sizes[1:-1]]  # dL/da of each hidden layer
        ops = [(a[i], weights[i], z[i]) for i in range(len(weights))]
        for i in range(len(weights) - 1, -1, -1):
            ops.append((np.swapaxes(a[i], -1, -2), delta[i], grad_w[i]))
            if i:
                ops.append((delta[i], np.swapaxes(weights[i], -1, -2), grad_a[i - 1]))
        return ops

    by_size = {b: products(b) for b in sorted(set(batch_sizes(n, DIGITS_BATCH)))}
    schedule = [by_size[b] for b in batch_sizes(n, DIGITS_BATCH)]
    matmul = np.matmul
    per_step = 1 if seeds is None else seeds  # seed-steps

    def run(n_epochs):
        steps = 0
        for _ in range(n_epochs):
            for ops in schedule:
                for x, y, out in ops:
                    matmul(x, y, out=out)
                if sgd_update:
                    for w, g in zip(weights, grad_w, strict=True):
                        g *= DIGITS_LR
                        w -= g
                steps += per_step
        return steps

    name = "gemm-sgd-floor" if sgd_update else "gemm-floor"
    return Job(name, lambda: run(epochs), lambda steps: (None, steps), lambda: run(1))


def moons_data():
    x, y = make_moons(n_samples=256, noise=0.2, random_state=0)
    return x, y.astype(float)[:, None]


def moons_net(seeds: engine.Seeds) -> engine.MLP:
    return engine.MLP(2, [16, 16], 1, activation="relu", init="he_normal", seeds=seeds)


def moons_train(net: engine.MLP, x, y, epochs: int) -> CountingArrayData:
    data = CountingArrayData(x, y, batch_size=MOONS_BATCH, shuffle=True)
    engine.train(net, data, loss="sigmoid_cross_entropy", optimizer={"name": "sgd", "lr": MOONS_LR}, epochs=epochs)
    return data


def moons_accuracy(net: engine.MLP, x, y) -> np.ndarray:
    return np.mean((net.predict(x)[..., 0] > 0) == (y[:, 0] > 0.5), axis=1)


def moons_jobs(x, y, epochs: int) -> tuple[Job, Job]:
    def batched(n_epochs):
        net = moons_net(engine.Seeds(MOONS_SEEDS, key=(1,)))
        return [(net, moons_train(net, x, y, n_epochs))]

    def sequential(n_epochs):
        runs = []
        for i in range(MOONS_SEEDS):
            net = moons_net(engine.Seeds([i], key=(1,)))
            runs.append((net, moons_train(net, x, y, n_epochs)))
        return runs

    def check(runs):
        acc = np.concatenate([moons_accuracy(net, x, y) for net, _ in runs])
        # seed-steps: one step of a 64-seed ensemble trains 64 seeds
        return float(acc.mean()), sum(data.steps * net.n_seeds for net, data in runs)

    return (
        Job("actlab", lambda: batched(epochs), check, lambda: batched(2)),
        Job("sequential", lambda: sequential(epochs), check, lambda: sequential(2)),
    )


def max_weight_difference(batched_runs, sequential_runs) -> float:
    """Largest |W_batched - W_sequential| over every weight of every seed."""
    (net, _), worst = batched_runs[0], 0.0
    for i, (single, _) in enumerate(sequential_runs):
        for w_all, w_one in zip(net.W + net.b, single.W + single.b, strict=True):
            worst = max(worst, float(np.max(np.abs(w_all[i] - w_one[0]))))
    return worst


# --------------------------------------------------------------------------------------------
# Ensembles of 64-H-H-H-10 ReLU nets on digits: one network per seed, trained side by side.
# Every side draws He-normal weights (zero biases) and one shuffle per seed and epoch, then takes
# the same plain SGD steps (lr 0.1, batch 64: 28 batches of 64 and one of 5 per epoch) on the
# softmax cross-entropy, in the same dtype. Inits and shuffles differ between sides (their random
# streams differ), not the work.

_jax = None  # the jax module, once load_jax() has started its CPU backend


def load_jax(cache_dir: str | None = None):
    """Import JAX with a single-threaded CPU backend; None when it is not installed.

    ``cache_dir``: JAX's persistent compilation cache, so that later runs skip the compilation of
    the ensemble jobs (about 8 s each on the 2-core machine, never timed). Only the first call
    configures JAX.

    The flags in ``JAX_XLA_FLAGS`` are set before the import, as long documented, but with
    jaxlib 0.10 they do not keep a jitted function on one thread (measured: CPU time 1.8-1.9 times
    the wall time with or without them). What does: XLA sizes its intra-op thread pool from the
    CPUs that the thread starting the backend may run on. So the backend is started with this
    thread pinned to one CPU, and then every thread of the process gets the original CPUs back:
    the pool keeps one worker, and no thread stays pinned to a core that others may be busy on.
    """
    global _jax
    if _jax is not None:
        return _jax
    if importlib.util.find_spec("jax") is None:
        return None
    if "jax" in sys.modules:
        log("warning: jax was imported before load_jax(): its CPU thread pool may use every core")
    flags = os.environ.get("XLA_FLAGS", "")
    if JAX_XLA_FLAGS not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {JAX_XLA_FLAGS}".strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 arrays stay float64
    if cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if cpus is not None and len(cpus) > 1:
        os.sched_setaffinity(0, {min(cpus)})  # this thread only
    try:
        square = jax.jit(lambda a: a @ a)  # starts the backend and its thread pools
        square(jax.numpy.ones((4, 4))).block_until_ready()
    finally:
        if cpus is not None and len(cpus) > 1:
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError):  # a thread that has ended
                    os.sched_setaffinity(int(tid), cpus)
    _jax = jax
    return jax


@contextlib.contextmanager
def single_threaded():
    """One BLAS thread for NumPy (threadpoolctl) and one intra-op thread for PyTorch, restored after."""
    saved = torch.get_num_threads() if torch is not None else None
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(saved)


def jax_ensemble_job(x, y, onehot, sizes: list[int], seeds: int, epochs: int, dtype) -> Job:
    """``jax.vmap`` over the seeds of one net's whole training, jitted: init, shuffles and SGD steps.

    The epochs run in a ``lax.fori_loop`` (the epoch count is traced, so the 1-epoch warm-up
    compiles what the timed runs execute), each a ``lax.scan`` over the 28 full batches and one
    step on the last 5 samples; the gradient is ``jax.grad`` of the loss.
    """
    jax = load_jax()
    jnp, lax = jax.numpy, jax.lax
    xj, yj = jnp.asarray(x, dtype=dtype), jnp.asarray(onehot, dtype=dtype)
    n = len(x)
    n_full = n // DIGITS_BATCH
    full = n_full * DIGITS_BATCH

    def logits(params, a):
        for w, b in params[:-1]:
            a = jax.nn.relu(a @ w + b)
        w, b = params[-1]
        return a @ w + b

    def loss(params, xb, yb):
        return -jnp.sum(yb * jax.nn.log_softmax(logits(params, xb))) / xb.shape[0]

    def sgd_step(carry, batch):
        params, steps = carry
        grads = jax.grad(loss)(params, *batch)
        return (jax.tree.map(lambda p, g: p - DIGITS_LR * g, params, grads), steps + 1), None

    def train_one(key, n_epochs):  # one seed
        init_key, data_key = jax.random.split(key)
        params = [
            (jax.random.normal(k, (m, h), dtype) * math.sqrt(2.0 / m), jnp.zeros(h, dtype))
            for k, m, h in zip(jax.random.split(init_key, len(sizes) - 1), sizes[:-1], sizes[1:], strict=True)
        ]

        def epoch(i, carry):
            perm = jax.random.permutation(jax.random.fold_in(data_key, i), n)  # this seed's shuffle
            xs, ys = xj[perm], yj[perm]
            batches = (xs[:full].reshape(n_full, DIGITS_BATCH, -1), ys[:full].reshape(n_full, DIGITS_BATCH, -1))
            carry, _ = lax.scan(sgd_step, carry, batches)
            if full < n:
                carry, _ = sgd_step(carry, (xs[full:], ys[full:]))
            return carry

        return lax.fori_loop(0, n_epochs, epoch, (params, jnp.zeros((), jnp.int32)))

    train = jax.jit(jax.vmap(train_one, in_axes=(0, None)))
    predict = jax.jit(jax.vmap(logits, in_axes=(0, None)))

    def run(n_epochs):
        keys = jax.random.split(jax.random.key(0), seeds)
        return jax.block_until_ready(train(keys, n_epochs))

    def check(state):
        params, steps = state
        if params[0][0].dtype != dtype:
            raise AssertionError(f"jax trained in {params[0][0].dtype}, not {np.dtype(dtype)}")
        acc = float(np.mean(np.asarray(predict(params, xj)).argmax(axis=2) == y))
        return acc, int(np.sum(steps))

    return Job("jax", lambda: run(epochs), check, lambda: run(1))


def torch_ensemble_job(x, y, onehot, sizes: list[int], seeds: int, epochs: int, dtype) -> Job:
    """The ensemble as batched matmuls over the seeds, with the backward pass written out.

    Forward ``torch.baddbmm(b, a, W)`` and an in-place ReLU per layer; backward ``bmm`` for
    ``delta @ W.T``, autograd's own ReLU backward (``aten.threshold_backward``) and the SGD step
    fused into the weight gradient, ``W.baddbmm_(a.T, delta, alpha=-lr)``. Faster than autograd
    (``torch.autograd.grad`` then ``torch._foreach_add_``, or ``backward`` with ``optim.SGD``) at
    every size tried; see benchmarks/README.md. Per batch, ``xt[idx]`` gathers the seeds' rows.
    """
    tdtype = {np.float64: torch.float64, np.float32: torch.float32}[np.dtype(dtype).type]
    xt, yt = torch.tensor(x, dtype=tdtype), torch.tensor(onehot, dtype=tdtype)
    n = len(x)
    bounds = [(start, min(start + DIGITS_BATCH, n)) for start in range(0, n, DIGITS_BATCH)]
    n_layers = len(sizes) - 1
    relu_backward = torch.ops.aten.threshold_backward  # ReLU's backward in autograd: 4-9x masked_fill_

    def forward(weights, biases, a):
        acts = [a]
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            acts.append(torch.baddbmm(b, acts[-1], w).relu_())
        return acts, torch.baddbmm(biases[-1], acts[-1], weights[-1])

    def run(n_epochs):
        gen = torch.Generator().manual_seed(0)
        weights = [
            torch.randn(seeds, m, h, generator=gen, dtype=tdtype).mul_(math.sqrt(2.0 / m))
            for m, h in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        biases = [torch.zeros(seeds, 1, h, dtype=tdtype) for h in sizes[1:]]
        steps = 0
        for _ in range(n_epochs):
            order = torch.argsort(torch.rand(seeds, n, generator=gen), dim=1)  # one permutation per seed
            for lo, hi in bounds:
                idx = order[:, lo:hi]
                acts, out = forward(weights, biases, xt[idx])
                delta = torch.softmax(out, dim=2).sub_(yt[idx]).div_(hi - lo)  # dL/d(out)
                for layer in range(n_layers - 1, -1, -1):
                    w, a = weights[layer], acts[layer]
                    grad_a = torch.bmm(delta, w.transpose(1, 2)) if layer else None  # with W before its step
                    w.baddbmm_(a.transpose(1, 2), delta, alpha=-DIGITS_LR)
                    biases[layer].sub_(delta.sum(dim=1, keepdim=True), alpha=DIGITS_LR)
                    if layer:
                        delta = relu_backward(grad_a, a, 0)  # grad_a where a > 0, else 0
                steps += 1
        return weights, biases, steps * seeds

    def check(state):
        weights, biases, steps = state
        if weights[0].dtype != tdtype:
            raise AssertionError(f"torch trained in {weights[0].dtype}, not {tdtype}")
        with torch.no_grad():
            _, out = forward(weights, biases, xt.expand(seeds, -1, -1))
        return float(np.mean(out.argmax(dim=2).numpy() == y)), steps

    return Job("torch", lambda: run(epochs), check, lambda: run(1))


# --------------------------------------------------------------------------------------------
# Timing


def time_interleaved(jobs: list[Job], repeats: int, label: str) -> None:
    """Warm every job up once, then time ``repeats`` rounds, rotating the order each round.

    Every job also records the 1-minute load average at the start and the end of the whole case.
    """
    load_start = os.getloadavg()[0]
    for job in jobs:
        (job.warmup or job.train)()
    for r in range(repeats):
        for job in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
            gc.collect()
            cpu_start = time.process_time()
            start = time.perf_counter()
            state = job.train()
            elapsed = time.perf_counter() - start
            job.cpu_times.append(time.process_time() - cpu_start)
            acc, steps = job.check(state)
            job.times.append(elapsed)
            job.accs.append(acc)
            job.steps.append(steps)
            job.loads.append(os.getloadavg()[0])
            job.last_state = state
            acc_text = "" if acc is None else f" acc {acc:.4f}"
            log(
                f"  {label} round {r + 1}/{repeats}: {job.name:<10} {elapsed:8.3f} s{acc_text} steps {steps}"
                f" load {job.loads[-1]:.2f}"
            )
    case_loads = (load_start, os.getloadavg()[0])
    for job in jobs:
        job.case_loads = case_loads


def row(
    case: str,
    ours: Job,
    peer: Job,
    min_acc: float | None,
    target: tuple[str, float] | None = None,
    extra: dict | None = None,
) -> dict:
    """One comparison as a JSON-ready dict; ``extra`` (e.g. the layer layout) follows ``case``."""
    ours_s, peer_s = statistics.median(ours.times), statistics.median(peer.times)
    result = {
        "case": case,
        **(extra or {}),
        "ours_s": round(ours_s, 4),
        "peer": peer.name,
        "peer_s": round(peer_s, 4),
        "ratio": round(ours_s / peer_s, 4),
        "repeats": len(ours.times),
        "ours_min_s": round(min(ours.times), 4),
        "peer_min_s": round(min(peer.times), 4),
        "ratio_min": round(min(ours.times) / min(peer.times), 4),
        "ours_cpu_s": round(statistics.median(ours.cpu_times), 4),
        "peer_cpu_s": round(statistics.median(peer.cpu_times), 4),
        "load_start": round(ours.case_loads[0], 2),
        "load_end": round(ours.case_loads[1], 2),
        "load_max": round(max(ours.loads + peer.loads), 2),
        **ALLOCATOR,
    }
    problems = []
    for side, job in (("ours", ours), ("peer", peer)):
        accs = [a for a in job.accs if a is not None]
        if accs:
            result[f"{side}_acc"] = round(min(accs), 4)  # the worst timed run
            if min_acc is not None and min(accs) <= min_acc:
                problems.append(f"{job.name} accuracy {min(accs):.4f} <= {min_acc}")
        result[f"{side}_steps"] = job.steps[0]
        if len(set(job.steps)) != 1:
            problems.append(f"{job.name} step counts differ between runs: {job.steps}")
    if ours.steps[0] != peer.steps[0]:
        problems.append(f"step counts differ: {ours.name} {ours.steps[0]}, {peer.name} {peer.steps[0]}")
    result["ok"] = not problems
    if problems:
        result["problems"] = problems
    if target is not None:
        op, bound = target
        result["target"] = f"ratio {op} {bound}"
        result["met"] = bool(ours_s / peer_s < bound if op == "<" else ours_s / peer_s <= bound)
    return result


def emit(result: dict) -> dict:
    print(json.dumps(result), flush=True)
    return result


def digits_case(hidden: int, args, data, with_torch: bool) -> list[dict]:
    x, y, onehot = data
    case = f"digits-relu-H{hidden}"
    ours = actlab_digits_job(x, y, onehot, [hidden, hidden], args.epochs)
    sk = sklearn_digits_job(x, y, hidden, args.epochs)
    sizes = [64, hidden, hidden, 10]
    floor = gemm_floor_job(len(x), sizes, args.epochs)
    sgd_floor = gemm_floor_job(len(x), sizes, args.epochs, sgd_update=True)
    jobs = [ours, sk]
    if with_torch:
        tch = torch_digits_job(x, y, hidden, args.epochs)
        jobs.append(tch)
    jobs += [floor, sgd_floor]
    repeats = args.large_repeats if hidden >= 1024 else args.repeats
    time_interleaved(jobs, repeats, case)
    min_acc = DIGITS_MIN_ACC if args.epochs >= DIGITS_EPOCHS else DIGITS_MIN_ACC_SHORT
    rows = [emit(row(case, ours, sk, min_acc, ("<", 1.0)))]
    if with_torch:
        rows.append(emit(row(case, ours, tch, min_acc, ("<=", 1.0) if hidden <= 256 else None)))
    else:
        log(f"  {case}: torch is not installed, skipping its rows (pip install torch==2.13.0)")
    rows.append(emit(row(case, ours, floor, min_acc, ("<=", 1.3) if hidden >= 1024 else None)))
    rows.append(emit(row(case, ours, sgd_floor, min_acc)))
    if with_torch:
        rows.append(emit(row(f"{case}-torch-vs-floor", tch, floor, min_acc)))
    return rows


def moons_case(args) -> list[dict]:
    x, y = moons_data()
    case = f"moons-ensemble-S{MOONS_SEEDS}"
    ours, seq = moons_jobs(x, y, args.moons_epochs)
    time_interleaved([ours, seq], args.repeats, case)
    result = row(case, ours, seq, MOONS_MIN_ACC, ("<=", 0.1))
    # the same seeds must end with the same weights: the two sides did the same work
    diff = max_weight_difference(ours.last_state, seq.last_state)
    result["max_weight_diff"] = float(f"{diff:.3g}")
    if not diff < 1e-8:
        result["ok"] = False
        result.setdefault("problems", []).append(f"batched and sequential weights differ by {diff:.3g}")
    return [emit(result)]


def ensemble_sizes(hidden: int) -> list[int]:
    return [64, *[hidden] * ENSEMBLE_DEPTH, 10]


def ensemble_name(seeds: int, hidden: int, dtype_name: str) -> str:
    return f"ensemble-S{seeds}-H{hidden}-{dtype_name}"


def ensemble_setup(name: str, data) -> tuple[int, int, type, tuple]:
    """Seeds, hidden width, dtype and the digits ``(x, y, onehot)`` in that dtype, for a case name."""
    seeds, hidden, dtype_name = ENSEMBLE_NAME.fullmatch(name).groups()
    dtype = np.dtype(dtype_name).type
    x, y, onehot = data
    return int(seeds), int(hidden), dtype, (x.astype(dtype), y, onehot.astype(dtype))


def ensemble_actlab_job(seeds: int, hidden: int, dtype, data, epochs: int) -> Job:
    return actlab_digits_job(*data, ensemble_sizes(hidden)[1:-1], epochs, seeds, dtype)


def ensemble_case(name: str, args, data, peers: dict[str, bool]) -> list[dict]:
    """One ``ensemble-S{S}-H{H}-{dtype}`` case, single-threaded on every side.

    ``peers`` tells which of ``jax`` and ``torch`` to run (False: skipped with a message).
    """
    seeds, hidden, dtype, data = ensemble_setup(name, data)
    sizes = ensemble_sizes(hidden)
    epochs = args.ensemble_epochs
    jobs = [ensemble_actlab_job(seeds, hidden, dtype, data, epochs)]
    for peer, build in (("jax", jax_ensemble_job), ("torch", torch_ensemble_job)):
        if peers[peer]:
            jobs.append(build(*data, sizes, seeds, epochs, dtype))
        else:
            log(f"  {name}: {peer} is not installed or was skipped: no {peer} row")
    jobs.append(gemm_floor_job(len(data[0]), sizes, epochs, seeds=seeds, dtype=dtype))
    targets = {
        "jax": ("<=", 1.0),
        "torch": ("<=", 1.0),
        "gemm-floor": ("<=", 2.0) if hidden <= ENSEMBLE_FLOOR_MAX_H else None,
    }
    with single_threaded():
        time_interleaved(jobs, args.repeats, name)
    min_acc = ENSEMBLE_MIN_ACC if epochs >= ENSEMBLE_EPOCHS else ENSEMBLE_MIN_ACC_SHORT
    layout = {"layers": sizes, "seeds": seeds, "dtype": np.dtype(dtype).name, "epochs": epochs, "threads": 1}
    ours = jobs[0]
    return [emit(row(name, ours, peer, min_acc, targets[peer.name], layout)) for peer in jobs[1:]]


# --------------------------------------------------------------------------------------------
# Profiling (--profile): where the actlab job's time goes


def profile_job(job: Job, title: str, top: int) -> None:
    """cProfile one actlab job; ``np.matmul`` calls in the engine show up as ``matmul``.

    NumPy ufuncs are invisible to cProfile (their time lands in the caller's tottime), so the
    numpy module of actlab.engine.network and actlab.engine.optimizers (``SGD.step_factored``) is
    swapped, for this run only, for a proxy whose ``matmul`` is a Python wrapper: its cumulative
    time is the engine's matmul time. Two tables follow: every function by own time, then the
    engine's functions by cumulative time.
    """
    import actlab.engine.network as network
    import actlab.engine.optimizers as optimizers

    def matmul(*a, **k):
        return np.matmul(*a, **k)

    proxy = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    proxy.matmul = matmul
    modules = (network, optimizers)
    (job.warmup or job.train)()
    for module in modules:
        module.np = proxy
    profiler = cProfile.Profile()
    try:
        start = time.perf_counter()
        profiler.enable()
        job.train()
        profiler.disable()
        total = time.perf_counter() - start
    finally:
        for module in modules:
            module.np = np
    stats = pstats.Stats(profiler, stream=io.StringIO())
    matmul_s = sum(v[3] for k, v in stats.stats.items() if k[2] == "matmul" and k[0] == __file__)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"actlab[/\\]engine", top)
    log(f"\n=== cProfile of the actlab job, {title} ===")
    log(f"wall {total:.3f} s under the profiler; np.matmul in actlab.engine: {matmul_s:.3f} s ({matmul_s / total:.0%})")
    log(out.getvalue())


# --------------------------------------------------------------------------------------------


def numpy_threads() -> int:
    for info in threadpoolctl.threadpool_info():
        if info["user_api"] == "blas" and "numpy" in info["filepath"]:
            return info["num_threads"]
    return max(info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")


def case_names(hidden_sizes, grid: dict[int, tuple[int, ...]]) -> list[str]:
    names = [f"digits-relu-H{h}" for h in hidden_sizes] + [f"moons-ensemble-S{MOONS_SEEDS}"]
    for dtype_name in ENSEMBLE_DTYPES:
        names += [ensemble_name(s, h, dtype_name) for h, seed_counts in grid.items() for s in seed_counts]
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 10 epochs, H in {32, 256}, 20 moons epochs, ensembles of 16 seeds at H 32 and 256",
    )
    parser.add_argument(
        "--cases",
        help="comma-separated case names or globs (default: all), e.g. 'digits-*', 'ensemble-*-float32'; "
        "globs pick ensembles from the grid in use, an exact name may be any ensemble-S{S}-H{H}-{dtype}",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 5, quick 1)")
    parser.add_argument("--large-repeats", type=int, default=None, help="rounds for H >= 1024 (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="digits epochs (default 30, quick 10)")
    parser.add_argument("--moons-epochs", type=int, default=None, help="moons ensemble epochs (default 200, quick 20)")
    parser.add_argument(
        "--ensemble-epochs", type=int, default=ENSEMBLE_EPOCHS, help=f"ensemble-* epochs (default {ENSEMBLE_EPOCHS})"
    )
    parser.add_argument(
        "--full-grid",
        action="store_true",
        help="ensemble-* cases for S in {4, 8, 16, 32, 64} at every H in {16, 32, 64, 256} "
        "(default: S in {4, 16, 64} at H <= 64, S in {4, 16} at H 256)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS threads for NumPy and PyTorch (default: NumPy's own)"
    )
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="leave glibc's allocator at its defaults (by default freed memory is kept in the process, "
        "as in every workflow job: actlab.engine.memory)",
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX even when it is installed")
    parser.add_argument(
        "--jax-cache",
        default=JAX_CACHE,
        help=f"JAX's persistent compilation cache ('' for none; default {JAX_CACHE}): later runs skip compiling",
    )
    parser.add_argument("--profile", action="store_true", help="also cProfile the actlab job of each selected case")
    parser.add_argument("--profile-top", type=int, default=25, help="functions shown per profile")
    args = parser.parse_args(argv)
    hidden_sizes = [32, 256] if args.quick else [32, 256, 1024]
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.large_repeats = args.large_repeats or (1 if args.quick else 3)
    args.epochs = args.epochs or (10 if args.quick else DIGITS_EPOCHS)
    args.moons_epochs = args.moons_epochs or (20 if args.quick else 200)
    grid = ENSEMBLE_FULL_GRID if args.full_grid else ENSEMBLE_QUICK_GRID if args.quick else ENSEMBLE_GRID
    names = case_names(hidden_sizes if not args.cases else [32, 256, 1024], grid)
    if args.cases:
        patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
        exact = [p for p in patterns if ENSEMBLE_NAME.fullmatch(p) and p not in names]
        unknown = [p for p in patterns if p not in exact and not fnmatch.filter(names, p)]
        if unknown:
            parser.error(f"no case matches {unknown}; cases are {names} and any ensemble-S{{S}}-H{{H}}-float32|64")
        names = [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)] + exact
    args.selected = names
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")  # for the whole process
    # every side runs in this process, so every side gets the allocator the workflow's jobs have
    ALLOCATOR["allocator"] = "system default (--system-malloc)" if args.system_malloc else keep_freed_memory()
    threads = numpy_threads()
    with_torch = torch is not None and not args.no_torch
    jax_installed = importlib.util.find_spec("jax") is not None
    with_jax = jax_installed and not args.no_jax
    if with_torch:
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(threads)
    jax_version = importlib.metadata.version("jax") if jax_installed else "not installed"
    log(
        f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"actlab {actlab.__version__}, torch {torch.__version__ if torch is not None else 'not installed'}"
        f"{' (skipped)' if torch is not None and not with_torch else ''}, jax {jax_version}"
        f"{' (skipped)' if jax_installed and not with_jax else ''}; BLAS threads {threads} "
        f"(ensemble-* cases: 1 for every side); allocator {ALLOCATOR['allocator']}"
    )
    if torch is None:
        log("torch is not installed: its rows are skipped (pip install torch==2.13.0 to include them)")
    if not jax_installed:
        log('jax is not installed: its ensemble rows are skipped (pip install "jax[cpu]" to include them)')
    log(
        f"cases {args.selected}; repeats {args.repeats} (H >= 1024: {args.large_repeats}); epochs {args.epochs}"
        f" (ensemble-*: {args.ensemble_epochs})"
    )
    if with_jax and any(name.startswith("ensemble-") for name in args.selected):
        load_jax(args.jax_cache)
        log(f"jax: one intra-op thread; compilation cache {args.jax_cache or 'off'}")
    digits = digits_data()
    rows = []
    for name in args.selected:
        if name.startswith("digits-"):
            rows += digits_case(int(name.rsplit("H", 1)[1]), args, digits, with_torch)
        elif name.startswith("moons-"):
            rows += moons_case(args)
        else:
            rows += ensemble_case(name, args, digits, {"jax": with_jax, "torch": with_torch})
    if args.profile:
        for name in args.selected:
            if name.startswith("digits-"):
                hidden = int(name.rsplit("H", 1)[1])
                job = actlab_digits_job(*digits, [hidden, hidden], args.epochs)
                profile_job(job, f"{name}, {args.epochs} epochs", args.profile_top)
            elif name.startswith("moons-"):
                job = moons_jobs(*moons_data(), args.moons_epochs)[0]
                profile_job(job, f"{name} (batched), {args.moons_epochs} epochs", args.profile_top)
            else:
                seeds, hidden, dtype, data = ensemble_setup(name, digits)
                job = ensemble_actlab_job(seeds, hidden, dtype, data, args.ensemble_epochs)
                with single_threaded():
                    profile_job(job, f"{name}, {args.ensemble_epochs} epochs, 1 thread", args.profile_top)
    log("\nTargets:")
    for r in rows:
        if "target" in r:
            verdict = "met" if r["met"] else "MISSED"
            log(f"  {r['case']:<26} vs {r['peer']:<14} ratio {r['ratio']:7.3f}  {r['target']:<12} {verdict}")
    failed = [r for r in rows if not r["ok"]]
    for r in failed:
        log(f"SANITY CHECK FAILED: {r['case']} vs {r['peer']}: {'; '.join(r['problems'])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
