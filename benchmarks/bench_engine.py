"""Speed of the actlab engine against scikit-learn, PyTorch CPU and the bare NumPy matmuls.

Run ``python benchmarks/bench_engine.py`` (``--help`` for options). Every comparison runs in this
one process: the jobs of a case are warmed up once, then timed in interleaved rounds (the order
rotates each round) and each job's median is reported, so a busy shared machine slows both sides
of a ratio alike. One JSON line per comparison goes to stdout; progress, skipped peers and the
target summary go to stderr. The exit status is 1 when a sanity check failed (a job did not
train, or two jobs did not take the same number of steps), whatever the timings.

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
"""

from __future__ import annotations

import argparse
import cProfile
import fnmatch
import gc
import io
import json
import math
import os
import platform
import pstats
import statistics
import sys
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


def actlab_digits_job(x, y, onehot, hidden: int, epochs: int) -> Job:
    def run(n_epochs):
        net = engine.MLP(64, [hidden, hidden], 10, activation="relu", init="he_normal", seeds=engine.Seeds(1, key=(0,)))
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
        acc = float(np.mean(net.predict(x)[0].argmax(axis=1) == y))
        return acc, data.steps

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


def gemm_floor_job(n: int, hidden: int, epochs: int, sgd_update: bool = False) -> Job:
    """Only the matmuls of the job, with the engine's shapes, into preallocated outputs.

    With ``sgd_update`` each step also applies the textbook plain SGD update to the weights in
    place (``g *= lr; W -= g``: two element-wise passes over every weight matrix).
    """
    sizes = [64, hidden, hidden, 10]
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((m, k)) / math.sqrt(m) for m, k in zip(sizes[:-1], sizes[1:], strict=True)]
    grad_w = [np.empty_like(w) for w in weights]
    buffers = {}
    for b in set(batch_sizes(n, DIGITS_BATCH)):
        buffers[b] = types.SimpleNamespace(
            a=[rng.standard_normal((b, k)) for k in sizes[:-1]],  # input of each dense layer
            z=[np.empty((b, k)) for k in sizes[1:]],  # output of each dense layer
            delta=[rng.standard_normal((b, k)) for k in sizes[1:]],  # dL/dz of each dense layer
            grad_a=[np.empty((b, k)) for k in sizes[1:-1]],  # dL/da of each hidden layer
        )
    schedule = [buffers[b] for b in batch_sizes(n, DIGITS_BATCH)]
    matmul = np.matmul

    def run(n_epochs):
        steps = 0
        for _ in range(n_epochs):
            for buf in schedule:
                a, z, delta, grad_a = buf.a, buf.z, buf.delta, buf.grad_a
                matmul(a[0], weights[0], out=z[0])
                matmul(a[1], weights[1], out=z[1])
                matmul(a[2], weights[2], out=z[2])
                matmul(a[2].T, delta[2], out=grad_w[2])
                matmul(delta[2], weights[2].T, out=grad_a[1])
                matmul(a[1].T, delta[1], out=grad_w[1])
                matmul(delta[1], weights[1].T, out=grad_a[0])
                matmul(a[0].T, delta[0], out=grad_w[0])
                if sgd_update:
                    for w, g in zip(weights, grad_w, strict=True):
                        g *= DIGITS_LR
                        w -= g
                steps += 1
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


def ensemble_jobs(x, y, epochs: int) -> tuple[Job, Job]:
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
# Timing


def time_interleaved(jobs: list[Job], repeats: int, label: str) -> None:
    """Warm every job up once, then time ``repeats`` rounds, rotating the order each round."""
    for job in jobs:
        (job.warmup or job.train)()
    for r in range(repeats):
        for job in jobs[r % len(jobs) :] + jobs[: r % len(jobs)]:
            gc.collect()
            start = time.perf_counter()
            state = job.train()
            elapsed = time.perf_counter() - start
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


def row(case: str, ours: Job, peer: Job, min_acc: float | None, target: tuple[str, float] | None = None) -> dict:
    ours_s, peer_s = statistics.median(ours.times), statistics.median(peer.times)
    result = {
        "case": case,
        "ours_s": round(ours_s, 4),
        "peer": peer.name,
        "peer_s": round(peer_s, 4),
        "ratio": round(ours_s / peer_s, 4),
        "repeats": len(ours.times),
        "ours_min_s": round(min(ours.times), 4),
        "peer_min_s": round(min(peer.times), 4),
        "ratio_min": round(min(ours.times) / min(peer.times), 4),
        "load_max": round(max(ours.loads + peer.loads), 2),
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
    ours = actlab_digits_job(x, y, onehot, hidden, args.epochs)
    sk = sklearn_digits_job(x, y, hidden, args.epochs)
    floor = gemm_floor_job(len(x), hidden, args.epochs)
    sgd_floor = gemm_floor_job(len(x), hidden, args.epochs, sgd_update=True)
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


def ensemble_case(args) -> list[dict]:
    x, y = moons_data()
    case = f"moons-ensemble-S{MOONS_SEEDS}"
    ours, seq = ensemble_jobs(x, y, args.moons_epochs)
    time_interleaved([ours, seq], args.repeats, case)
    result = row(case, ours, seq, MOONS_MIN_ACC, ("<=", 0.1))
    # the same seeds must end with the same weights: the two sides did the same work
    diff = max_weight_difference(ours.last_state, seq.last_state)
    result["max_weight_diff"] = float(f"{diff:.3g}")
    if not diff < 1e-8:
        result["ok"] = False
        result.setdefault("problems", []).append(f"batched and sequential weights differ by {diff:.3g}")
    return [emit(result)]


# --------------------------------------------------------------------------------------------
# Profiling (--profile): where the actlab job's time goes


def profile_job(job: Job, title: str, top: int) -> None:
    """cProfile one actlab job; ``np.matmul`` calls in actlab.engine.network show up as ``matmul``.

    NumPy ufuncs are invisible to cProfile (their time lands in the caller's tottime), so the
    engine's numpy module is swapped, for this run only, for a proxy whose ``matmul`` is a
    Python wrapper: its cumulative time is the engine's matmul time.
    """
    import actlab.engine.network as network

    def matmul(*a, **k):
        return np.matmul(*a, **k)

    proxy = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    proxy.matmul = matmul
    (job.warmup or job.train)()
    saved, network.np = network.np, proxy
    profiler = cProfile.Profile()
    try:
        start = time.perf_counter()
        profiler.enable()
        job.train()
        profiler.disable()
        total = time.perf_counter() - start
    finally:
        network.np = saved
    stats = pstats.Stats(profiler, stream=io.StringIO())
    matmul_s = sum(v[3] for k, v in stats.stats.items() if k[2] == "matmul" and k[0] == __file__)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    log(f"\n=== cProfile of the actlab job, {title} ===")
    log(
        f"wall {total:.3f} s under the profiler; np.matmul in actlab.engine.network: "
        f"{matmul_s:.3f} s ({matmul_s / total:.0%})"
    )
    log(out.getvalue())


# --------------------------------------------------------------------------------------------


def numpy_threads() -> int:
    for info in threadpoolctl.threadpool_info():
        if info["user_api"] == "blas" and "numpy" in info["filepath"]:
            return info["num_threads"]
    return max(info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas")


def case_names(hidden_sizes) -> list[str]:
    return [f"digits-relu-H{h}" for h in hidden_sizes] + [f"moons-ensemble-S{MOONS_SEEDS}"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 epochs, H in {32, 256}, 20 moons epochs")
    parser.add_argument("--cases", help="comma-separated case names or globs (default: all), e.g. 'digits-*'")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 5, quick 1)")
    parser.add_argument("--large-repeats", type=int, default=None, help="rounds for H >= 1024 (default 3)")
    parser.add_argument("--epochs", type=int, default=None, help="digits epochs (default 30, quick 10)")
    parser.add_argument("--moons-epochs", type=int, default=None, help="ensemble epochs (default 200, quick 20)")
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS threads for NumPy and PyTorch (default: NumPy's own)"
    )
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument("--profile", action="store_true", help="also cProfile the actlab job of each selected case")
    parser.add_argument("--profile-top", type=int, default=25, help="functions shown per profile")
    args = parser.parse_args(argv)
    hidden_sizes = [32, 256] if args.quick else [32, 256, 1024]
    args.repeats = args.repeats or (1 if args.quick else 5)
    args.large_repeats = args.large_repeats or (1 if args.quick else 3)
    args.epochs = args.epochs or (10 if args.quick else DIGITS_EPOCHS)
    args.moons_epochs = args.moons_epochs or (20 if args.quick else 200)
    names = case_names(hidden_sizes if not args.cases else [32, 256, 1024])
    if args.cases:
        patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
        unknown = [p for p in patterns if not fnmatch.filter(names, p)]
        if unknown:
            parser.error(f"no case matches {unknown}; cases are {names}")
        names = [n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]
    args.selected = names
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        threadpoolctl.threadpool_limits(limits=args.threads, user_api="blas")  # for the whole process
    threads = numpy_threads()
    with_torch = torch is not None and not args.no_torch
    if with_torch:
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(threads)
    log(
        f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
        f"actlab {actlab.__version__}, torch {torch.__version__ if torch is not None else 'not installed'}"
        f"{' (skipped)' if torch is not None and not with_torch else ''}; BLAS threads {threads}"
    )
    if torch is None:
        log("torch is not installed: its rows are skipped (pip install torch==2.13.0 to include them)")
    log(f"cases {args.selected}; repeats {args.repeats} (H >= 1024: {args.large_repeats}); epochs {args.epochs}")
    digits = digits_data()
    rows = []
    for name in args.selected:
        if name.startswith("digits-"):
            rows += digits_case(int(name.rsplit("H", 1)[1]), args, digits, with_torch)
        else:
            rows += ensemble_case(args)
    if args.profile:
        for name in args.selected:
            if name.startswith("digits-"):
                hidden = int(name.rsplit("H", 1)[1])
                job = actlab_digits_job(*digits, hidden, args.epochs)
                profile_job(job, f"{name}, {args.epochs} epochs", args.profile_top)
            else:
                job = ensemble_jobs(*moons_data(), args.moons_epochs)[0]
                profile_job(job, f"{name} (batched), {args.moons_epochs} epochs", args.profile_top)
    log("\nTargets:")
    for r in rows:
        if "target" in r:
            verdict = "met" if r["met"] else "MISSED"
            log(f"  {r['case']:<22} vs {r['peer']:<10} ratio {r['ratio']:7.3f}  {r['target']:<12} {verdict}")
    failed = [r for r in rows if not r["ok"]]
    for r in failed:
        log(f"SANITY CHECK FAILED: {r['case']} vs {r['peer']}: {'; '.join(r['problems'])}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
