"""Whole-network gradient checks: MLP.backward against central differences of the loss.

The objective is the sum over seeds of each seed's loss (plus ``l1 * l1_penalty`` when the L1
activation penalty is on). Seeds are independent, so its gradient with respect to one seed's
parameters is that seed's gradient, which is what :meth:`MLP.backward` returns; any leak between
seeds would show up as a mismatch.
"""

from __future__ import annotations

import numpy as np
import pytest

from actlab.engine import ACTIVATIONS, MLP, Seeds, get_loss

S, B = 2, 6
SIZES = (3, [4, 5], 2)
MIXED = {"name": "mixed", "groups": [["relu", 1], ["tanh", 1], ["abs", 1]]}

# id -> (MLP keyword arguments, loss, l1_activation)
CASES = {
    "relu": (dict(activation="relu"), "mse", 0.0),
    "tanh": (dict(activation="tanh"), "mse", 0.0),
    "sigmoid": (dict(activation="sigmoid"), "mse", 0.0),
    "gelu": (dict(activation="gelu"), "mse", 0.0),
    "swish": (dict(activation="swish"), "mse", 0.0),
    "bn_before_relu": (dict(activation="relu", batchnorm="before"), "mse", 0.0),
    "bn_after_relu": (dict(activation="relu", batchnorm="after"), "mse", 0.0),
    "bn_before_tanh": (dict(activation="tanh", batchnorm="before"), "softmax_cross_entropy", 0.0),
    "bn_after_tanh": (dict(activation="tanh", batchnorm="after"), "softmax_cross_entropy", 0.0),
    "mixed_layer": (dict(activation=[MIXED, "tanh"]), "mse", 0.0),
    "mixed_with_prelu": (
        dict(activation=[{"name": "mixed", "groups": [["prelu", 1], ["elu", 1]]}, "relu"]),
        "mse",
        0.0,
    ),
    "prelu": (dict(activation="prelu"), "mse", 0.0),
    "prelu_output": (dict(activation="prelu", output_activation="prelu"), "mse", 0.0),
    "l1_relu": (dict(activation="relu"), "mse", 0.05),
    "l1_tanh": (dict(activation="tanh"), "mse", 0.05),
    "l1_bn_after": (dict(activation="tanh", batchnorm="after"), "mse", 0.05),
    "l1_bn_before": (dict(activation="elu", batchnorm="before"), "mse", 0.05),
    "half_squared_error": (dict(activation="tanh"), "half_squared_error", 0.0),
    "softmax_cross_entropy": (dict(activation="relu"), "softmax_cross_entropy", 0.0),
    "sigmoid_cross_entropy": (dict(activation="relu"), "sigmoid_cross_entropy", 0.0),
    "relu_output_no_bias": (dict(activation="tanh", output_activation="relu", bias=False), "mse", 0.0),
    "no_bias": (dict(activation="softplus", bias=False), "mse", 0.0),
    "per_layer_activations": (dict(activation=["selu", "leaky_relu"]), "mse", 0.0),
}


def make_targets(loss_name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Targets suited to ``loss_name``: Gaussian, one-hot or independent 0/1 labels."""
    if loss_name == "softmax_cross_entropy":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[:-1])]
    if loss_name == "sigmoid_cross_entropy":
        return rng.integers(0, 2, size=shape).astype(float)
    return rng.standard_normal(shape)


def randomize_module_params(net: MLP, rng: np.random.Generator) -> None:
    """Give PReLU slopes and batch-norm scales/shifts distinct non-default values, so mix-ups show."""
    for module in [*net.activations, net.output_activation, *net.norms]:
        for p in module.params.values():
            p[...] = rng.uniform(0.1, 0.9, size=p.shape)


def check_gradients(net: MLP, x: np.ndarray, y: np.ndarray, loss_name: str, l1: float, numgrad, train=True):
    """Assert every gradient of ``net.backward`` equals the central difference of the objective."""
    loss = get_loss(loss_name)

    def objective() -> float:
        cache = net.forward(x, train=train)
        values, _ = loss(cache.out, np.broadcast_to(y, cache.out.shape))
        total = values.sum()
        if l1:
            total += l1 * net.l1_penalty(cache).sum()
        return total

    cache = net.forward(x, train=train)
    _, grad_out = loss(cache.out, np.broadcast_to(y, cache.out.shape))
    grads, deltas = net.backward(cache, grad_out, l1)
    grads = [g.copy() for g in grads]
    params = net.parameters()
    assert len(grads) == len(params) == len(net.parameter_names())
    numeric = numgrad(objective, params)
    for name, p, g, n in zip(net.parameter_names(), params, grads, numeric, strict=True):
        assert g.shape == p.shape, name
        np.testing.assert_allclose(g, n, rtol=1e-5, atol=1e-7, err_msg=f"gradient of {name}")
    assert len(deltas) == net.n_hidden + 1
    # The output delta is dL/du of the output layer: the loss gradient through the output activation.
    np.testing.assert_allclose(
        deltas[-1], net.output_activation.backward(cache.out_pre, cache.out, grad_out), rtol=1e-12, atol=1e-15
    )
    return grads


def build(kwargs: dict, seed: int = 0, sizes=SIZES) -> MLP:
    """An ``S``-seed float64 MLP with non-default module parameters."""
    net = MLP(*sizes, seeds=Seeds(range(S), key=(seed, "grad")), dtype=np.float64, **kwargs)
    randomize_module_params(net, np.random.default_rng(seed + 100))
    # Non-zero biases, so bias gradients flow through every kind of unit.
    for b in net.b:
        if b is not None:
            b[...] = np.random.default_rng(seed + 200).normal(0, 0.3, size=b.shape)
    return net


@pytest.mark.parametrize("shared", [False, True], ids=["per_seed_batch", "shared_batch"])
@pytest.mark.parametrize("case", list(CASES))
def test_backward_matches_central_differences(case, shared, numgrad):
    kwargs, loss_name, l1 = CASES[case]
    net = build(kwargs)
    rng = np.random.default_rng(1)
    n_in, n_out = SIZES[0], SIZES[2]
    x = rng.standard_normal((B, n_in) if shared else (S, B, n_in))
    y = make_targets(loss_name, (S, B, n_out), rng)
    check_gradients(net, x, y, loss_name, l1, numgrad)


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) - {"necro_relu", "mixed", "scaled"}))
def test_every_registered_activation_in_a_network(name, numgrad):
    # necro_relu's backward is a straight-through estimator, not a gradient (by design);
    # mixed and scaled need arguments and are covered by the cases above.
    net = build(dict(activation=name), seed=2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((S, B, SIZES[0]))
    check_gradients(net, x, make_targets("mse", (S, B, SIZES[2]), rng), "mse", 0.0, numgrad)


def test_scaled_activation_in_a_network(numgrad):
    net = build(dict(activation={"name": "scaled", "base": "tanh", "gain": 1.7}), seed=4)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((S, B, SIZES[0]))
    check_gradients(net, x, make_targets("mse", (S, B, SIZES[2]), rng), "mse", 0.0, numgrad)


@pytest.mark.parametrize("place", ["before", "after"])
def test_batchnorm_eval_mode_gradients(place, numgrad):
    net = build(dict(activation="tanh", batchnorm=place), seed=6)
    rng = np.random.default_rng(7)
    for _ in range(3):  # non-trivial running statistics
        net.forward(rng.normal(0.5, 2.0, size=(S, 10, SIZES[0])), train=True)
    x = rng.standard_normal((S, B, SIZES[0]))
    check_gradients(net, x, make_targets("mse", (S, B, SIZES[2]), rng), "mse", 0.0, numgrad, train=False)


@pytest.mark.parametrize("w0", [0.7, -0.4])
def test_single_relu_neuron_without_bias(w0, numgrad):
    # The one-weight model y = relu(w x) of the StreamData claim.
    net = MLP(
        1, [], 1, output_activation="relu", bias=False, init={"name": "constant", "value": w0}, seeds=Seeds(range(S))
    )
    assert net.parameter_names() == ["W0"]
    rng = np.random.default_rng(8)
    x = rng.standard_normal((20, 1))
    y = np.maximum(x, 0)
    grads = check_gradients(net, x, y, "mse", 0.0, numgrad)
    # Closed form: dL/dw = 2 mean(relu(w x) - relu(x)) x [w x > 0].
    expected = 2 * np.mean((np.maximum(w0 * x, 0) - y) * x * (w0 * x > 0))
    np.testing.assert_allclose(grads[0], expected, rtol=1e-12)


def test_linear_model_without_hidden_layers(numgrad):
    net = build(dict(activation="relu"), seed=9, sizes=(4, [], 3))
    rng = np.random.default_rng(10)
    x = rng.standard_normal((S, B, 4))
    check_gradients(net, x, make_targets("softmax_cross_entropy", (S, B, 3), rng), "softmax_cross_entropy", 0, numgrad)


def test_shared_batch_equals_the_batch_repeated_per_seed():
    net = build(dict(activation="tanh", batchnorm="before"), seed=11)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((B, SIZES[0]))
    y = rng.standard_normal((S, B, SIZES[2]))
    loss = get_loss("mse")
    results = []
    for inputs in (x, np.broadcast_to(x, (S, B, SIZES[0])).copy()):
        cache = net.forward(inputs, train=True)
        _, grad_out = loss(cache.out, y)
        grads, _ = net.backward(cache, grad_out, 0.01)
        results.append((cache.out.copy(), [g.copy() for g in grads]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-13, atol=1e-15)
    for g_shared, g_rep in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(g_shared, g_rep, rtol=1e-12, atol=1e-14)


def test_l1_penalty_value():
    net = build(dict(activation="tanh", batchnorm="after"), seed=13)
    x = np.random.default_rng(14).standard_normal((S, B, SIZES[0]))
    cache = net.forward(x, train=True)
    expected = sum(np.abs(a).sum(axis=(1, 2)) / B for a in cache.post)
    np.testing.assert_allclose(net.l1_penalty(cache), expected, rtol=1e-14)
    assert net.l1_penalty(cache).shape == (S,)


def test_single_unit_hidden_layer_with_one_output(numgrad):
    # 1-1-1: every product of forward and backward has an inner dimension of 1 (network.matmul's
    # broadcast path) but the weight gradients (inner dimension: the batch).
    net = build(dict(activation="elu"), seed=15, sizes=(1, [1], 1))
    rng = np.random.default_rng(16)
    for x in (rng.standard_normal((B, 1)), rng.standard_normal((S, B, 1))):
        check_gradients(net, x, make_targets("mse", (S, B, 1), rng), "mse", 0.0, numgrad)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e-300, 1e300, 3.5, -2.25])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "shapes",
    [((1, 40, 1), (7, 1, 9)), ((7, 40, 1), (7, 1, 9)), ((7, 40, 1), (7, 1, 1)), ((7, 1, 40), (7, 40, 3))],
    ids=["shared_input", "per_seed", "one_output", "inner_40"],
)
def test_matmul_has_the_bytes_of_np_matmul(shapes, dtype):
    # Signed zeros, NaN, infinities, subnormals and overflow: a broadcast multiply without the
    # +0.0 would give -0.0 where BLAS gives +0.0.
    from actlab.engine.network import matmul

    rng = np.random.default_rng(17)
    with np.errstate(all="ignore"):
        x, y = (rng.choice(SPECIAL, size=shape).astype(dtype) for shape in shapes)
        y_t = np.ascontiguousarray(np.swapaxes(y, 1, 2))  # the transposed view backward passes
        for left, right in ((x, y), (x, np.swapaxes(y_t, 1, 2))):
            expected = np.matmul(left, right)
            got = matmul(left, right)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert got.tobytes() == expected.tobytes()
