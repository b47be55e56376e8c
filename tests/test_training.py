"""Training: ensembles equal seeds trained alone, determinism, recorded divergence, probes, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from actlab.engine import MLP, ArrayData, History, Seeds, StreamData, get_loss, get_optimizer, probe, train
from actlab.engine.optimizers import SGD
from actlab.engine.training import EXPLODED_LOSS

KEY = (7, "x")
LRS = [0.05, 0.1, 0.2, 0.4]
HIDDEN = [16, 12]
ATOL = 1e-12


def ith_lr(spec: dict, i: int) -> dict:
    """The optimizer spec with its per-seed learning-rate list replaced by entry ``i``."""
    return {**spec, "lr": spec["lr"][i]}


def run(seeds: Seeds, data, optimizer: dict, *, net_kwargs=None, epochs: int = 6, **train_kwargs):
    """Build a 2-16-12-2 MLP (or ``net_kwargs["hidden"]``) for ``seeds``, train it, return ``(net, history)``."""
    net = MLP(n_inputs=2, n_outputs=2, seeds=seeds, **{"hidden": HIDDEN, **(net_kwargs or {})})
    history = train(net, data, loss="softmax_cross_entropy", optimizer=optimizer, epochs=epochs, **train_kwargs)
    return net, history


def assert_seed_equal(ensemble: MLP, i: int, alone: MLP, h_ens: History, h_alone: History) -> None:
    """Member ``i`` of the ensemble has the weights, state and history of the seed trained alone."""
    state_ens, state_alone = ensemble.get_state(), alone.get_state()
    assert state_ens.keys() == state_alone.keys()
    for name in state_ens:
        np.testing.assert_allclose(state_ens[name][i], state_alone[name][0], rtol=0, atol=ATOL, err_msg=name)
    assert h_ens.metrics.keys() == h_alone.metrics.keys()
    for name in h_ens.metrics:
        np.testing.assert_allclose(h_ens.metrics[name][i], h_alone.metrics[name][0], rtol=0, atol=ATOL, err_msg=name)
    assert h_ens.diverged[i] == h_alone.diverged[0]
    assert h_ens.diverged_epoch[i] == h_alone.diverged_epoch[0]
    np.testing.assert_array_equal(h_ens.probe_epochs, h_alone.probe_epochs)


# --------------------------------------------------------------------------- (a) ensemble == sequential

ENSEMBLE_CASES = {
    "sgd_momentum": ({"name": "sgd", "lr": LRS, "momentum": 0.9}, {}, {}),
    "sgd_nesterov_l2_l1": (
        {"name": "sgd", "lr": LRS, "momentum": 0.5, "nesterov": True},
        {"activation": "tanh"},
        {"l2": 1e-3, "l1_activation": 1e-3},
    ),
    "adam": ({"name": "adam", "lr": [lr / 10 for lr in LRS]}, {}, {}),
    "sgd_batchnorm_before": ({"name": "sgd", "lr": LRS, "momentum": 0.9}, {"batchnorm": "before"}, {}),
    "adam_batchnorm_after_prelu": (
        {"name": "adam", "lr": [lr / 10 for lr in LRS]},
        {"batchnorm": "after", "activation": "prelu"},
        {},
    ),
    # a 256 x 256 layer: plain SGD takes its factored update (SGD.step_factored)
    "sgd_factored_wide_layer": ({"name": "sgd", "lr": LRS}, {"hidden": [256, 256]}, {}),
}


@pytest.mark.parametrize("case", list(ENSEMBLE_CASES))
def test_batched_ensemble_equals_seeds_trained_alone(case, moons, moons_test):
    optimizer, net_kwargs, train_kwargs = ENSEMBLE_CASES[case]
    x, y = moons
    data = ArrayData(x, y, batch_size=32)  # 200 samples: six batches of 32 and a last one of 8
    assert data.shuffle
    common = dict(net_kwargs=net_kwargs, test=moons_test, probe=(x[:50], y[:50]), probe_every=2, **train_kwargs)
    ensemble, h_ens = run(Seeds(range(4), key=KEY), data, optimizer, **common)
    assert not h_ens.diverged.any()
    # The learning rates matter: the members end up different.
    assert len({h_ens.metrics["loss"][i, -1] for i in range(4)}) == 4
    for i in range(4):
        alone, h_alone = run(Seeds([i], key=KEY), data, ith_lr(optimizer, i), **common)
        assert_seed_equal(ensemble, i, alone, h_ens, h_alone)


def test_subset_of_seeds_equals_the_members(moons):
    x, y = moons
    data = ArrayData(x, y, batch_size=50)
    ensemble, h_ens = run(Seeds(range(4), key=KEY), data, {"name": "sgd", "lr": 0.1})
    pair, h_pair = run(Seeds(range(4), key=KEY).subset([1, 3]), data, {"name": "sgd", "lr": 0.1})
    for pos, i in enumerate([1, 3]):
        for p, q in zip(ensemble.parameters(), pair.parameters(), strict=True):
            np.testing.assert_allclose(p[i], q[pos], rtol=0, atol=ATOL)
        np.testing.assert_allclose(h_ens.metrics["loss"][i], h_pair.metrics["loss"][pos], rtol=0, atol=ATOL)


def test_shuffling_differs_between_seeds_and_epochs(moons):
    x, y = moons
    data = ArrayData(x, y, batch_size=20)
    rngs = Seeds(range(2), key=KEY).rngs("data")
    first = [bx.copy() for bx, _ in data.batches(rngs)]
    second = [bx.copy() for bx, _ in data.batches(rngs)]
    assert first[0].shape == (2, 20, 2)
    assert not np.array_equal(first[0][0], first[0][1])
    assert not np.array_equal(first[0], second[0])
    # Each epoch is a permutation of the whole set, per seed.
    epoch = np.concatenate(first, axis=1)
    for s in range(2):
        np.testing.assert_array_equal(np.sort(epoch[s], axis=0), np.sort(x, axis=0))


def test_full_batch_is_not_shuffled(moons):
    x, y = moons
    batches = list(ArrayData(x, y).batches(Seeds(2).rngs("data")))
    assert len(batches) == 1
    np.testing.assert_array_equal(batches[0][0], x)


# --------------------------------------------------------------------------- (b) determinism


def test_identical_runs_give_identical_bytes(moons, moons_test, tmp_path):
    x, y = moons
    files, states = [], []
    for run_id in range(2):
        net, history = run(
            Seeds(range(3), key=KEY),
            ArrayData(x, y, batch_size=32),
            {"name": "adam", "lr": 0.01},
            net_kwargs={"batchnorm": "before"},
            probe=(x[:40], y[:40]),
            test=moons_test,
            record_steps=True,
        )
        path = tmp_path / f"history{run_id}.npz"
        history.save(path)
        files.append(path)
        states.append(net.get_state())
    with np.load(files[0]) as first, np.load(files[1]) as second:
        assert sorted(first.files) == sorted(second.files)
        assert {"loss", "test_loss", "probe_loss", "step_loss", "diverged"} <= set(first.files)
        for name in first.files:
            assert first[name].dtype == second[name].dtype, name
            assert first[name].tobytes() == second[name].tobytes(), name
    for name in states[0]:
        assert states[0][name].tobytes() == states[1][name].tobytes(), name


def test_history_save_load_round_trip(moons, tmp_path):
    x, y = moons
    _, history = run(Seeds(2, key=KEY), ArrayData(x, y, batch_size=64), {"name": "sgd", "lr": 0.1}, probe=(x, y))
    history.save(tmp_path / "h.npz")
    loaded = History.load(tmp_path / "h.npz")
    assert loaded.metrics.keys() == history.metrics.keys()
    for name, value in history.metrics.items():
        np.testing.assert_array_equal(loaded.metrics[name], value)
    np.testing.assert_array_equal(loaded.probe_epochs, history.probe_epochs)
    np.testing.assert_array_equal(loaded.diverged, history.diverged)
    np.testing.assert_array_equal(loaded.diverged_epoch, history.diverged_epoch)


def test_different_key_gives_different_run(moons):
    x, y = moons
    data = ArrayData(x, y, batch_size=32)
    net_a, _ = run(Seeds([0], key=KEY), data, {"name": "sgd", "lr": 0.1}, epochs=1)
    net_b, _ = run(Seeds([0], key=(8, "x")), data, {"name": "sgd", "lr": 0.1}, epochs=1)
    assert not np.array_equal(net_a.W[0], net_b.W[0])


# --------------------------------------------------------------------------- (c) divergence


@pytest.mark.filterwarnings("error")  # divergence must not even warn
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_divergence_is_recorded_and_other_seeds_unaffected(momentum, moons):
    x, y = moons
    data = ArrayData(x, y, batch_size=32)
    optimizer = {"name": "sgd", "lr": [0.1, 1e6, 0.2], "momentum": momentum}

    def go(seeds, opt):
        net = MLP(2, HIDDEN, 2, seeds=seeds)
        history = train(net, data, loss="mse", optimizer=opt, epochs=5, probe=(x, y), test=(x, y))
        return net, history

    ensemble, h_ens = go(Seeds(range(3), key=KEY), optimizer)
    np.testing.assert_array_equal(h_ens.diverged, [False, True, False])
    assert h_ens.diverged_epoch[1] >= 1
    assert h_ens.diverged_epoch[0] == h_ens.diverged_epoch[2] == -1
    first = h_ens.diverged_epoch[1]
    assert np.all(np.isnan(h_ens.metrics["loss"][1, first - 1 :]))
    assert np.all(np.isnan(h_ens.metrics["test_loss"][1, first:]))
    assert np.all(np.isnan(h_ens.metrics["probe_loss"][1, first:]))
    assert h_ens.metrics["loss"].shape == (3, 5)
    for i in (0, 2):
        assert np.all(np.isfinite(h_ens.metrics["loss"][i]))
        assert h_ens.metrics["loss"][i, -1] < h_ens.metrics["loss"][i, 0]
        alone, h_alone = go(Seeds([i], key=KEY), ith_lr(optimizer, i))
        assert_seed_equal(ensemble, i, alone, h_ens, h_alone)
    # Trained alone, the unstable seed diverges the same way, without raising.
    _, h_bad = go(Seeds([1], key=KEY), ith_lr(optimizer, 1))
    assert h_bad.diverged[0] and h_bad.diverged_epoch[0] == first


@pytest.mark.filterwarnings("error")
def test_huge_init_diverges_every_seed_without_raising(moons):
    x, y = moons
    net = MLP(2, HIDDEN, 2, init={"name": "normal", "std": 1e200}, seeds=Seeds(3, key=KEY))
    history = train(net, ArrayData(x, y, batch_size=50), loss="mse", optimizer="sgd", epochs=4, test=(x, y))
    assert history.diverged.all()
    assert np.all(history.diverged_epoch == 1)
    # Training stops early but the per-epoch series keep their full length, padded with NaN.
    assert history.metrics["loss"].shape == (3, 4)
    assert np.all(np.isnan(history.metrics["loss"]))
    assert history.metrics["test_loss"].shape == (3, 5)
    assert np.all(np.isnan(history.metrics["test_loss"][:, 1:]))


def test_a_finite_explosion_counts_as_divergence(moons):
    """A loss above EXPLODED_LOSS (finite weights, e.g. 1e3 x 1e3 inputs) is divergence, not a result."""
    x, y = moons
    big = np.where(np.arange(3)[:, None, None] == 1, 1e4, 1.0)  # seed 1 starts with exploded weights
    net = MLP(2, HIDDEN, 2, init={"name": "normal", "std": 0.5}, seeds=Seeds(3, key=KEY))
    net.W[0] *= big
    net.W[1] *= big
    history = train(net, ArrayData(x, y, batch_size=50), loss="mse", optimizer={"name": "sgd", "lr": 1e-12}, epochs=2)
    assert EXPLODED_LOSS < 1e10 and np.isfinite(net.W[0]).all()
    np.testing.assert_array_equal(history.diverged, [False, True, False])


FREEZE_SPECS = [{"name": "sgd", "lr": 0.1}, {"name": "sgd", "lr": 0.1, "momentum": 0.9}, {"name": "adam", "lr": 0.1}]
FREEZE_IDS = ["sgd", "sgd_momentum", "adam"]


def warmed_up_optimizer(spec: dict) -> tuple[list[np.ndarray], object, np.random.Generator]:
    """Two 3-seed parameter arrays and an optimizer that has taken one step, then froze seed 1."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((3, 4, 2)), rng.standard_normal((3, 1, 2))]
    opt = get_optimizer(spec).bind(params)
    opt.step(params, [rng.standard_normal(p.shape) for p in params])  # builds momentum / Adam state
    opt.freeze(np.array([False, True, False]))
    return params, opt, rng


@pytest.mark.parametrize("spec", FREEZE_SPECS, ids=FREEZE_IDS)
def test_frozen_seeds_are_not_updated(spec):
    """A frozen (diverged) seed stops moving, momentum included; the others keep training."""
    params, opt, rng = warmed_up_optimizer(spec)
    before = [p.copy() for p in params]
    opt.step(params, [rng.standard_normal(p.shape) for p in params])
    for p, old in zip(params, before, strict=True):
        np.testing.assert_array_equal(p[1], old[1])  # the frozen seed is unchanged
        assert not np.array_equal(p[0], old[0])  # the others still train


@pytest.mark.parametrize("spec", FREEZE_SPECS, ids=FREEZE_IDS)
def test_frozen_seeds_ignore_non_finite_gradients(spec):
    """A frozen seed's NaN gradients neither reach its weights (0 * nan) nor other seeds."""
    params, opt, rng = warmed_up_optimizer(spec)
    before = [p.copy() for p in params]
    grads = [rng.standard_normal(p.shape) for p in params]
    for g in grads:
        g[1] = np.nan
    with np.errstate(invalid="ignore"):
        opt.step(params, grads)
    for p, old in zip(params, before, strict=True):
        assert np.all(np.isfinite(p[[0, 2]]))  # NaN stays in its own seed
        np.testing.assert_array_equal(p[1], old[1])


def test_frozen_seed_ignores_non_finite_deltas_in_a_factored_update():
    """SGD.step_factored leaves a frozen seed alone even when its deltas are NaN."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 8, 5))
    opt = get_optimizer({"name": "sgd", "lr": 0.1}).bind([w])
    opt.freeze(np.array([False, True, False]))
    before = w.copy()
    delta = rng.standard_normal((3, 4, 5))
    delta[1] = np.nan
    with np.errstate(invalid="ignore"):
        opt.step_factored(0, w, rng.standard_normal((1, 4, 8)), delta)
    np.testing.assert_array_equal(w[1], before[1])
    assert np.all(np.isfinite(w)) and not np.array_equal(w[[0, 2]], before[[0, 2]])


# --------------------------------------------------------------------------- (c2) the factored SGD update


def test_only_large_weights_under_plain_sgd_are_factored():
    small, large = np.zeros((2, 16, 16)), np.zeros((2, 64, 1024))
    assert get_optimizer("sgd").bind([small, large]).factored([small, large]) == [1]
    for spec in ({"name": "sgd", "momentum": 0.9}, "adam"):
        assert get_optimizer(spec).bind([small, large]).factored([small, large]) == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_factored_update_equals_the_textbook_step(dtype, moons, monkeypatch):
    """Training through SGD.step_factored ends where ``g *= lr; W -= g`` on the formed gradient does.

    The two differ only in rounding (the learning rate scales the deltas before the batch sum).
    """
    x, y = moons
    net_kwargs = {"hidden": [256, 256], "dtype": dtype}
    spec = {"name": "sgd", "lr": [0.1, 0.3]}
    seeds = Seeds(range(2), key=KEY)
    initial = MLP(n_inputs=2, n_outputs=2, seeds=seeds, **net_kwargs)
    assert get_optimizer(spec).bind(initial.parameters()).factored(initial.W) == [1]
    calls = []
    step_factored = SGD.step_factored
    monkeypatch.setattr(
        SGD, "step_factored", lambda opt, index, *a: calls.append(index) or step_factored(opt, index, *a)
    )
    factored, _ = run(seeds, ArrayData(x, y, batch_size=32), spec, net_kwargs=net_kwargs, epochs=3)
    assert calls == [1] * 3 * 7  # 3 epochs of 7 batches, the 256 x 256 layer only
    monkeypatch.setattr("actlab.engine.optimizers.FACTORED_MIN_SIZE", 10**9)  # every layer takes the textbook step
    textbook, _ = run(seeds, ArrayData(x, y, batch_size=32), spec, net_kwargs=net_kwargs, epochs=3)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for w_fac, w_text, w_init in zip(factored.W, textbook.W, initial.W, strict=True):
        assert w_fac.dtype == dtype
        assert not np.allclose(w_fac, w_init)  # it trained
        np.testing.assert_allclose(w_fac, w_text, rtol=rtol, atol=rtol * np.abs(w_text).max())


# --------------------------------------------------------------------------- (d) instrumentation


def test_probe_metric_shapes(moons, moons_test):
    x, y = moons
    epochs, sizes = 4, [8, 6]
    net = MLP(2, sizes, 2, activation="tanh", seeds=Seeds(3, key=KEY))
    h = train(
        net,
        ArrayData(x, y, batch_size=40),
        loss="softmax_cross_entropy",
        optimizer={"name": "sgd", "lr": 0.1},
        epochs=epochs,
        probe=(x[:30], y[:30]),
        test=moons_test,
        record_steps=True,
    )
    m = h.metrics
    np.testing.assert_array_equal(h.probe_epochs, np.arange(epochs + 1))
    assert m["loss"].shape == (3, epochs)
    assert m["test_loss"].shape == m["test_accuracy"].shape == (3, epochs + 1)
    assert m["probe_loss"].shape == m["probe_accuracy"].shape == (3, epochs + 1)
    for name in ("grad_norm", "delta_norm"):
        assert m[f"probe_{name}"].shape == (3, epochs + 1, len(sizes) + 1)
    for name in ("act_mean", "act_std", "zero_frac", "dead_frac", "max_abs_act"):
        assert m[f"probe_{name}"].shape == (3, epochs + 1, len(sizes))
    for layer, width in enumerate(sizes):
        assert m[f"probe_dead_mask{layer}"].shape == (3, epochs + 1, width)
        assert m[f"probe_dead_mask{layer}"].dtype == bool
    steps = epochs * 5  # 200 samples in batches of 40
    assert m["step_loss"].shape == (3, steps)
    assert m["step_grad_norm"].shape == (3, steps, len(sizes) + 1)
    assert np.all((m["probe_accuracy"] >= 0) & (m["probe_accuracy"] <= 1))
    # The epoch loss is the mean of that epoch's step losses.
    np.testing.assert_allclose(m["loss"], m["step_loss"].reshape(3, epochs, 5).mean(axis=2), rtol=1e-12)

    h2 = train(net, ArrayData(x, y, batch_size=40), optimizer="sgd", epochs=5, probe=(x, y), probe_every=2)
    np.testing.assert_array_equal(h2.probe_epochs, [0, 2, 4])
    assert h2.metrics["probe_loss"].shape == (3, 3)
    assert np.all(np.isnan(h2.metrics["probe_accuracy"]))  # mse is a regression loss


@pytest.mark.parametrize(
    "net_kwargs, optimizer",
    [
        ({"activation": "relu"}, {"name": "sgd", "lr": 0.1}),
        # a probe runs a backward pass, which also sets PReLU's slope gradients and batch norm's
        ({"activation": "prelu", "batchnorm": "before"}, {"name": "adam", "lr": 0.01}),
    ],
)
def test_probing_changes_nothing_in_training(moons, net_kwargs, optimizer):
    """How often a net is probed decides what is measured, never how it trains (gradient_flow probes the ends only)."""
    x, y = moons
    epochs = 4
    runs = {}
    for every in (None, 1, epochs):
        probe_kwargs = {} if every is None else {"probe": (x[:30], y[:30]), "probe_every": every}
        runs[every] = run(
            Seeds(3, key=KEY),
            ArrayData(x, y, batch_size=40),
            optimizer,
            net_kwargs=net_kwargs,
            epochs=epochs,
            **probe_kwargs,
        )
    (bare, h_bare), (each, h_each), (ends, h_ends) = runs.values()
    for net in (each, ends):
        for name, value in bare.get_state().items():
            np.testing.assert_array_equal(net.get_state()[name], value, err_msg=name)
    np.testing.assert_array_equal(h_each.metrics["loss"], h_bare.metrics["loss"])
    np.testing.assert_array_equal(h_ends.probe_epochs, [0, epochs])
    for name, value in h_ends.metrics.items():
        np.testing.assert_array_equal(
            value,
            h_each.metrics[name][:, [0, epochs]] if name.startswith("probe_") else h_each.metrics[name],
            err_msg=name,
        )


def test_probe_values_mean_what_they_say(moons):
    x, y = moons[0][:24], moons[1][:24]
    net = MLP(2, [7, 5], 2, activation="relu", seeds=Seeds(2, key=KEY))
    loss = get_loss("mse")
    result = probe(net, loss, x, y)
    cache = net.forward(x, train=False)
    values, grad_out = loss(cache.out, np.broadcast_to(y, cache.out.shape))
    grads, _ = net.backward(cache, grad_out)
    np.testing.assert_allclose(result["loss"], values, rtol=1e-14)
    for layer in range(3):
        np.testing.assert_allclose(result["grad_norm"][:, layer], np.linalg.norm(grads[layer], axis=(1, 2)))
    for layer in range(2):
        a = cache.post[layer]
        np.testing.assert_allclose(result["zero_frac"][:, layer], np.mean(a == 0, axis=(1, 2)))
        np.testing.assert_allclose(result["act_mean"][:, layer], a.mean(axis=(1, 2)))
        np.testing.assert_allclose(result["max_abs_act"][:, layer], np.abs(a).max(axis=(1, 2)))
        never_active = np.all(cache.pre[layer] <= 0, axis=1)
        np.testing.assert_array_equal(result["dead_masks"][layer], never_active)
        np.testing.assert_allclose(result["dead_frac"][:, layer], never_active.mean(axis=1))
    # delta_norm: root mean square over samples of the per-example error ||dL_n/du_l||.
    per_example = np.stack([probe(net, loss, x[n : n + 1], y[n : n + 1])["delta_norm"] for n in range(len(x))])
    np.testing.assert_allclose(result["delta_norm"], np.sqrt(np.mean(per_example**2, axis=0)), rtol=1e-12)
    # Probing changes nothing.
    np.testing.assert_array_equal(net.predict(x), cache.out)


@pytest.mark.parametrize(("activation", "dead"), [("relu", 1.0), ("leaky_relu", 0.0), ("necro_relu", 0.0)])
def test_dead_units_from_large_negative_bias(activation, dead, moons):
    x, y = moons
    net = MLP(2, [8, 8], 2, activation=activation, bias_init={"name": "constant", "value": -100}, seeds=Seeds(2))
    before = [w.copy() for w in net.W[:2]]
    h = train(net, ArrayData(x, y, batch_size=50), optimizer={"name": "sgd", "lr": 0.1}, epochs=3, probe=(x, y))
    np.testing.assert_array_equal(h.metrics["probe_dead_frac"], dead)
    if activation == "leaky_relu":
        np.testing.assert_array_equal(h.metrics["probe_zero_frac"], 0.0)
    else:
        np.testing.assert_array_equal(h.metrics["probe_zero_frac"], 1.0)
    if activation == "relu":
        # Dead units pass no gradient: their incoming weights never change.
        for w, w0 in zip(net.W[:2], before, strict=True):
            np.testing.assert_array_equal(w, w0)


# --------------------------------------------------------------------------- (e) zero init


def test_zero_init_relu_without_bias_stays_at_zero(moons):
    x, y = moons
    net = MLP(2, [8, 8], 2, activation="relu", init="zeros", bias=False, seeds=Seeds(2))
    h = train(net, ArrayData(x, y, batch_size=32), loss="mse", optimizer={"name": "sgd", "lr": 0.5}, epochs=4)
    np.testing.assert_array_equal(net.predict(x), 0.0)
    for w in net.W:
        np.testing.assert_array_equal(w, 0.0)
    # Zero output: every epoch's loss is mean(y^2) = 1/2 for one-hot targets over two outputs.
    np.testing.assert_allclose(h.metrics["loss"], 0.5, rtol=1e-14)


def test_zero_init_relu_with_bias_only_learns_output_bias(moons):
    x, y = moons
    net = MLP(2, [8, 8], 2, activation="relu", init="zeros", seeds=Seeds(2))
    # Full batch: the output bias b follows b <- b - lr * mean(b - y), converging to mean(y).
    train(net, ArrayData(x, y), loss="mse", optimizer={"name": "sgd", "lr": 0.5}, epochs=30)
    for w in net.W:
        np.testing.assert_array_equal(w, 0.0)
    for b in net.b[:2]:
        np.testing.assert_array_equal(b, 0.0)
    out = net.predict(x)
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1], out.shape))  # same output for every input
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(y.mean(axis=0), (2, 2)), rtol=1e-6)


# --------------------------------------------------------------------------- (f) float32


@pytest.mark.parametrize(
    ("optimizer", "batchnorm"), [({"name": "sgd", "lr": 0.1, "momentum": 0.9}, None), ({"name": "adam"}, "before")]
)
def test_float32_training_stays_float32(optimizer, batchnorm, moons):
    x, y = moons
    net = MLP(2, HIDDEN, 2, activation="prelu", batchnorm=batchnorm, dtype=np.float32, seeds=Seeds(2))
    h = train(net, ArrayData(x, y, batch_size=32), loss="softmax_cross_entropy", optimizer=optimizer, epochs=3)
    for name, p in zip(net.parameter_names(), net.parameters(), strict=True):
        assert p.dtype == np.float32, name
    for bn in net.norms:
        assert bn.running_mean.dtype == bn.running_var.dtype == np.float32
    assert net.predict(x).dtype == np.float32
    assert not h.diverged.any()
    assert np.all(h.metrics["loss"][:, -1] < h.metrics["loss"][:, 0])


# --------------------------------------------------------------------------- (g) bad inputs


@pytest.mark.parametrize(
    ("kind", "call", "valid"),
    [
        ("optimizer", lambda net, data: train(net, data, optimizer="rmsprop"), ["adam", "sgd"]),
        (
            "loss",
            lambda net, data: train(net, data, loss="hinge"),
            ["half_squared_error", "mse", "sigmoid_cross_entropy", "softmax_cross_entropy"],
        ),
        ("activation", lambda net, data: MLP(2, [3], 2, activation="sine"), ["relu", "tanh", "gelu"]),
        ("initializer", lambda net, data: MLP(2, [3], 2, init="he"), ["he_normal", "he_uniform"]),
    ],
    ids=["optimizer", "loss", "activation", "initializer"],
)
def test_unknown_names_list_valid_names(kind, call, valid, moons):
    net, data = MLP(2, [3], 2), ArrayData(*moons)
    with pytest.raises(ValueError, match=f"unknown {kind}") as info:
        call(net, data)
    for name in valid:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "sgd", "lr": -0.1},
        {"name": "adam", "lr": -1e-3},
        {"name": "sgd", "lr": [0.1, -0.1]},
        {"name": "sgd", "lr": float("nan")},
        {"name": "sgd", "lr": 0.1, "momentum": 1.0},
        {"name": "sgd", "lr": 0.1, "momentum": -0.5},
        {"name": "sgd", "learning_rate": 0.1},
    ],
    ids=repr,
)
def test_bad_optimizer_specs_rejected(spec, moons):
    with pytest.raises(ValueError):
        train(MLP(2, [3], 2, seeds=2), ArrayData(*moons), optimizer=spec, epochs=1)


def test_per_seed_learning_rates_must_match_the_ensemble(moons):
    with pytest.raises(ValueError):
        train(MLP(2, [3], 2, seeds=3), ArrayData(*moons), optimizer={"name": "sgd", "lr": [0.1, 0.2]}, epochs=1)


@pytest.mark.parametrize(
    ("x_shape", "y_shape"), [((10, 2), (9, 2)), ((10,), (10, 1)), ((10, 2), (10,)), ((2, 10, 2), (2, 10, 2))]
)
def test_mismatched_data_shapes_rejected(x_shape, y_shape):
    with pytest.raises(ValueError):
        ArrayData(np.zeros(x_shape), np.zeros(y_shape))


def test_data_not_matching_the_network_rejected(moons):
    x, y = moons
    with pytest.raises(ValueError):
        train(MLP(3, [4], 2), ArrayData(x, y), epochs=1)  # 2 input features, 3 inputs
    with pytest.raises(ValueError):
        train(MLP(2, [4], 3), ArrayData(x, y), epochs=1)  # 2 targets, 3 outputs


@pytest.mark.parametrize(
    "kwargs",
    [{"epochs": -1}, {"probe_every": 0}, {"l2": -1.0}, {"l1_activation": -0.1}],
    ids=lambda k: next(iter(k)),
)
def test_bad_training_arguments_rejected(kwargs, moons):
    with pytest.raises(ValueError):
        train(MLP(2, [3], 2), ArrayData(*moons), **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"batchnorm": "middle"}, {"dtype": np.int64}, {"activation": ["relu"]}, {"init": ["zeros"]}, {"hidden": [0]}],
    ids=lambda k: next(iter(k)),
)
def test_bad_network_arguments_rejected(kwargs):
    kwargs = {"hidden": [3, 4], **kwargs}
    with pytest.raises(ValueError):
        MLP(2, kwargs.pop("hidden"), 2, **kwargs)


def test_bad_batch_size_rejected(moons):
    with pytest.raises(ValueError):
        ArrayData(*moons, batch_size=0)


# --------------------------------------------------------------------------- (h) StreamData


def relu_target_sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh ``x ~ N(0, 1)`` of shape ``(n, 1)`` with target ``relu(x)``."""
    x = rng.standard_normal((n, 1))
    return x, np.maximum(x, 0)


def half_normal_sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh non-negative ``x = |N(0, 1)|`` of shape ``(n, 1)`` with target ``relu(x) = x``."""
    x = np.abs(rng.standard_normal((n, 1)))
    return x, x.copy()


def single_neuron(w0: float, seeds: int = 2) -> MLP:
    """The one-weight model ``y = relu(w x)`` with ``w`` initialised to ``w0``."""
    return MLP(
        1,
        [],
        1,
        activation="relu",
        output_activation="relu",
        bias=False,
        init={"name": "constant", "value": w0},
        seeds=Seeds(seeds, key=(2, "stream")),
    )


def train_neuron(net: MLP, sample, epochs: int = 10) -> History:
    """SGD with lr 0.01 on fresh batches of 1000, 100 steps per epoch, loss mse."""
    data = StreamData(sample, batch_size=1000, steps_per_epoch=100)
    return train(net, data, loss="mse", optimizer={"name": "sgd", "lr": 0.01}, epochs=epochs, record_steps=True)


def test_stream_data_batches_are_fresh_and_per_seed():
    data = StreamData(relu_target_sample, batch_size=5, steps_per_epoch=3)
    rngs = Seeds(2, key=(2, "stream")).rngs("data")
    batches = list(data.batches(rngs))
    assert len(batches) == 3
    assert batches[0][0].shape == (2, 5, 1) and batches[0][1].shape == (2, 5, 1)
    assert not np.array_equal(batches[0][0], batches[1][0])
    assert not np.array_equal(batches[0][0][0], batches[0][0][1])


def test_relu_neuron_from_positive_weight_converges_to_one():
    net = single_neuron(0.5)
    h = train_neuron(net, relu_target_sample)
    # For w > 0, dL/dw = (w - 1) in expectation, so w - 1 shrinks by (1 - lr) per step.
    np.testing.assert_allclose(net.W[0].ravel(), 1.0, atol=1e-3)
    assert np.all(h.metrics["loss"][:, -1] < 1e-4)


def test_relu_neuron_from_negative_weight_never_learns_the_positive_side():
    # With x ~ N(0, 1) a neuron with w = -10 is NOT dead: relu(w x) = -10 x > 0 for every x < 0,
    # where the target is 0. Its expected gradient is dL/dw = 2 w E[x^2; x < 0] = w (non-zero), so
    # w decays geometrically towards 0 from below and never crosses to the positive side: it cannot
    # learn relu(x), and the loss falls from E[100 x^2; x < 0] + E[x^2; x > 0] = 50.5 to
    # E[relu(x)^2] = 0.5, the loss of the zero function.
    net = single_neuron(-10.0)
    h = train_neuron(net, relu_target_sample)
    w = net.W[0].ravel()
    assert np.all(w < 0)
    assert np.all(w > -0.01)
    np.testing.assert_allclose(h.metrics["step_loss"][:, 0], 50.5, rtol=0.1)
    np.testing.assert_allclose(h.metrics["loss"][:, -3:], 0.5, atol=0.05)


def test_relu_neuron_with_negative_weight_on_non_negative_inputs_is_dead():
    # Here relu(w x) = 0 for every input, the gradient is exactly zero and w stays at -10;
    # the loss stays at E[x^2] = 1 for x = |N(0, 1)|.
    net = single_neuron(-10.0)
    h = train_neuron(net, half_normal_sample, epochs=3)
    np.testing.assert_array_equal(net.W[0], -10.0)
    np.testing.assert_array_equal(h.metrics["step_grad_norm"], 0.0)
    np.testing.assert_allclose(h.metrics["loss"], 1.0, atol=0.02)


def test_on_epoch_sees_every_epoch_and_equals_a_plain_run(moons):
    """The callback runs at init and after each epoch, and observing does not change training."""
    x, y = moons
    seen = []
    watched = MLP(2, [5], 2, activation="tanh", seeds=Seeds(3, key=KEY))
    plain = MLP(2, [5], 2, activation="tanh", seeds=Seeds(3, key=KEY))
    kwargs = {"loss": "softmax_cross_entropy", "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 3}
    train(watched, ArrayData(x, y, 16), on_epoch=lambda epoch, net: seen.append((epoch, net.W[0].copy())), **kwargs)
    train(plain, ArrayData(x, y, 16), **kwargs)
    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3]
    assert not np.array_equal(seen[0][1], seen[-1][1])
    np.testing.assert_array_equal(seen[-1][1], plain.W[0])
