"""Activations: backward against central differences, learnable slopes, stability, known values, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actlab.engine import ACTIVATIONS, get_activation
from actlab.engine.activations import Activation

# Activations whose constructor needs arguments to be interesting get an explicit spec; every
# other registered name is built with its defaults, so new registry entries are covered.
SPECIAL_SPECS = {
    "mixed": {"name": "mixed", "groups": [["relu", 1], ["tanh", 1], ["abs", 1]]},
    "scaled": {"name": "scaled", "base": "tanh", "gain": 1.7},
}
# Non-default parameters, to catch a parameter that is stored but ignored.
EXTRA_SPECS = [
    {"name": "leaky_relu", "slope": 0.2},
    {"name": "leaky_relu6", "slope": 0.3},
    {"name": "prelu", "slope": 0.4},
    {"name": "elu", "alpha": 0.5},
    {"name": "swish", "beta": 2.5},
    {"name": "scaled", "base": "relu6", "gain": -0.5},
    {"name": "mixed", "groups": [["sigmoid", 2], ["hard_swish", 1], ["elu", 3]]},
]
# NecroReLU's backward is by design not the derivative of its forward (tested separately).
NOT_A_GRADIENT = {"necro_relu"}
# Points where some registered activation is not differentiable.
KINKS = (0.0, -3.0, 3.0, 6.0)
MARGIN = 1e-2
H = 1e-6


def spec_of(name: str) -> str | dict:
    """The spec used to build registered activation ``name`` in these tests."""
    return SPECIAL_SPECS.get(name, name)


def spec_id(spec: str | dict) -> str:
    """A readable pytest id for an activation spec."""
    if isinstance(spec, str):
        return spec
    return "-".join(f"{v}" for v in spec.values() if not isinstance(v, list)) or spec["name"]


ALL_SPECS = [spec_of(name) for name in sorted(ACTIVATIONS)]
GRADIENT_SPECS = [spec_of(name) for name in sorted(ACTIVATIONS) if name not in NOT_A_GRADIENT] + EXTRA_SPECS


def away_from_kinks(z: np.ndarray) -> np.ndarray:
    """Shift entries within ``MARGIN`` of a kink to at least ``MARGIN`` past it (kinks are 3 apart)."""
    z = z.copy()
    for kink in KINKS:
        near = np.abs(z - kink) < MARGIN
        z[near] = kink + np.where(z[near] >= kink, MARGIN, -MARGIN) * 2
    return z


def sample_z(seed: int, shape: tuple[int, ...] = (2, 50, 6), scale: float = 8.0) -> np.ndarray:
    """Pre-activations uniform in ``(-scale, scale)``, away from kinks, float64."""
    rng = np.random.default_rng(seed)
    return away_from_kinks(rng.uniform(-scale, scale, size=shape))


def test_registry_covers_the_documented_zoo():
    expected = {
        "identity",
        "sigmoid",
        "centered_sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "necro_relu",
        "prelu",
        "elu",
        "selu",
        "softplus",
        "relu6",
        "leaky_relu6",
        "swish",
        "hard_swish",
        "gelu",
        "abs",
        "scaled",
        "mixed",
    }
    assert expected <= set(ACTIVATIONS)
    for name, cls in ACTIVATIONS.items():
        assert cls.name == name
        assert issubclass(cls, Activation)


@pytest.mark.parametrize("spec", GRADIENT_SPECS, ids=spec_id)
def test_backward_matches_central_difference(spec):
    act = get_activation(spec)
    z = sample_z(1)
    grad = np.random.default_rng(2).standard_normal(z.shape)
    a = act.forward(z)
    analytic = act.backward(z, a, grad)
    # Every activation is element-wise, so perturbing all entries at once gives every partial derivative.
    numeric = grad * (act.forward(z + H) - act.forward(z - H)) / (2 * H)
    assert analytic.shape == z.shape
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spec", GRADIENT_SPECS, ids=spec_id)
def test_backward_is_linear_in_upstream_gradient(spec):
    act = get_activation(spec)
    z = sample_z(3)
    a = act.forward(z)
    g = np.random.default_rng(4).standard_normal(z.shape)
    slope = act.backward(z, a, np.ones_like(z))
    np.testing.assert_allclose(act.backward(z, a, g), g * slope, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(act.derivative(z), slope, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("slope", [0.1, 0.3])
def test_necro_relu_backward_is_leaky_where_forward_is_flat(slope):
    act = get_activation({"name": "necro_relu", "slope": slope})
    z = sample_z(5)
    grad = np.random.default_rng(6).standard_normal(z.shape)
    a = act.forward(z)
    np.testing.assert_array_equal(a, np.maximum(z, 0))
    back = act.backward(z, a, grad)
    np.testing.assert_array_equal(back, np.where(z > 0, grad, slope * grad))
    numeric = (act.forward(z + H) - act.forward(z - H)) / (2 * H)
    # Forward is flat below zero (true derivative 0) while backward passes slope * grad there.
    assert np.all(numeric[z < 0] == 0)
    assert np.all(back[z < 0] != 0)
    np.testing.assert_allclose(back[z > 0], (grad * numeric)[z > 0], rtol=1e-6)


def test_prelu_slope_gradient_matches_central_difference(numgrad):
    rng = np.random.default_rng(7)
    act = get_activation("prelu").build(n_seeds=2, n_units=3, dtype=np.float64)
    assert act.params["slope"].shape == (2, 1, 3)
    np.testing.assert_array_equal(act.params["slope"], 0.25)
    act.params["slope"][...] = rng.uniform(0.05, 0.6, size=(2, 1, 3))
    z = away_from_kinks(rng.normal(0, 2, size=(2, 9, 3)))
    grad = rng.standard_normal(z.shape)

    def objective():
        return np.sum(grad * act.forward(z))

    back = act.backward(z, act.forward(z), grad)
    (numeric_slope,) = numgrad(objective, [act.params["slope"]])
    np.testing.assert_allclose(act.grads["slope"], numeric_slope, rtol=1e-6, atol=1e-8)
    # The slope gradient is the sum over samples of grad * min(z, 0), per seed and unit.
    np.testing.assert_allclose(act.grads["slope"], np.sum(grad * np.minimum(z, 0), axis=1, keepdims=True))
    # And the input gradient uses each unit's own slope.
    (numeric_z,) = numgrad(objective, [z])
    np.testing.assert_allclose(back, numeric_z, rtol=1e-6, atol=1e-8)


def test_prelu_slope_inside_mixed_is_exposed_and_differentiated(numgrad):
    rng = np.random.default_rng(8)
    act = get_activation({"name": "mixed", "groups": [["tanh", 1], ["prelu", 1]]}).build(2, 4, np.float64)
    assert list(act.params) == ["1.slope"]
    assert act.params["1.slope"].shape == (2, 1, 2)
    act.params["1.slope"][...] = rng.uniform(0.05, 0.6, size=(2, 1, 2))
    z = away_from_kinks(rng.normal(0, 2, size=(2, 7, 4)))
    grad = rng.standard_normal(z.shape)
    act.backward(z, act.forward(z), grad)
    (numeric,) = numgrad(lambda: np.sum(grad * act.forward(z)), [act.params["1.slope"]])
    np.testing.assert_allclose(act.grads["1.slope"], numeric, rtol=1e-6, atol=1e-8)


def test_mixed_splits_units_into_groups():
    act = get_activation(SPECIAL_SPECS["mixed"]).build(1, 6, np.float64)
    z = sample_z(9, shape=(1, 5, 6))
    a = act.forward(z)
    np.testing.assert_array_equal(a[..., 0:2], np.maximum(z[..., 0:2], 0))
    np.testing.assert_array_equal(a[..., 2:4], np.tanh(z[..., 2:4]))
    np.testing.assert_array_equal(a[..., 4:6], np.abs(z[..., 4:6]))
    # Uneven fractions still cover every unit exactly once.
    act = get_activation({"name": "mixed", "groups": [["relu", 1], ["tanh", 2]]}).build(1, 7, np.float64)
    sizes = [s.stop - s.start for s in act.slices]
    assert sum(sizes) == 7 and act.slices[0].start == 0 and act.slices[-1].stop == 7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", ALL_SPECS + EXTRA_SPECS, ids=spec_id)
def test_finite_and_dtype_preserving_for_large_inputs(spec, dtype):
    act = get_activation(spec)
    special = [-1e4, -1e3, -100.0, -40.0, -3.0, -1e-30, 0.0, 1e-30, 3.0, 6.0, 40.0, 100.0, 1e3, 1e4]
    z = np.concatenate([np.linspace(-1e4, 1e4, 2001), special, -np.logspace(-3, 4, 50), np.logspace(-3, 4, 50)])
    z = z.astype(dtype).reshape(1, -1, 3)  # last axis 3: three units, one per Mixed group
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a = act.forward(z)
        g = act.backward(z, a, np.ones_like(z))
        d = act.derivative(z)
    assert a.dtype == dtype
    assert g.dtype == dtype
    assert np.all(np.isfinite(a))
    assert np.all(np.isfinite(g))
    assert np.all(np.isfinite(d))


def test_derivative_preserves_float32():
    """derivative() keeps float32 inputs in float32, like backward()."""
    z = np.linspace(-5, 5, 12, dtype=np.float32).reshape(1, 4, 3)
    wrong = [spec_id(s) for s in ALL_SPECS if get_activation(s).derivative(z).dtype != np.float32]
    assert wrong == []


def derivative_on(name: str, z: np.ndarray) -> np.ndarray:
    """``f'(z)`` of registered activation ``name`` (defaults)."""
    return get_activation(name).derivative(z)


def test_sigmoid_derivative_peaks_at_a_quarter_at_zero():
    z = np.linspace(-10, 10, 20001)
    d = derivative_on("sigmoid", z)
    assert d.max() == pytest.approx(0.25, abs=1e-15)
    assert z[np.argmax(d)] == pytest.approx(0.0, abs=1e-12)
    assert np.all(d <= 0.25)


def test_tanh_derivative_peaks_at_one():
    z = np.linspace(-10, 10, 20001)
    d = derivative_on("tanh", z)
    assert d.max() == pytest.approx(1.0, abs=1e-15)
    assert z[np.argmax(d)] == pytest.approx(0.0, abs=1e-12)


def test_relu_derivative_is_an_indicator_and_zero_at_zero():
    z = np.linspace(-5, 5, 1001)
    d = derivative_on("relu", z)
    assert set(np.unique(d)) <= {0.0, 1.0}
    np.testing.assert_array_equal(d, (z > 0).astype(float))
    assert derivative_on("relu", np.array([0.0]))[0] == 0.0


def test_hard_swish_is_close_to_swish():
    z = np.linspace(-20, 20, 40001)
    diff = np.abs(get_activation("hard_swish").forward(z) - get_activation("swish").forward(z))
    assert diff.max() < 0.15
    # Both are the identity far right and zero far left.
    assert diff[np.abs(z) > 10].max() < 1e-3


def test_selu_constants():
    act = get_activation("selu")
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    assert act.forward(np.array([1.0]))[0] == pytest.approx(scale, rel=1e-15)
    assert act.forward(np.array([-50.0]))[0] == pytest.approx(-scale * alpha, rel=1e-15)
    assert act.derivative(np.array([-1e-12]))[0] == pytest.approx(scale * alpha, rel=1e-10)
    assert act.derivative(np.array([2.0]))[0] == pytest.approx(scale, rel=1e-15)
    # Self-normalizing fixed point (Klambauer et al. 2017): N(0, 1) in -> mean 0, variance 1 out.
    z = np.random.default_rng(10).standard_normal(1_000_000)
    a = act.forward(z)
    assert abs(a.mean()) < 0.01
    assert a.var() == pytest.approx(1.0, abs=0.01)


def test_known_values():
    one = np.array([1.0])
    assert get_activation("gelu").forward(one)[0] == pytest.approx(0.8413447460685429, rel=1e-14)
    assert get_activation("sigmoid").forward(np.array([0.0]))[0] == 0.5
    assert get_activation("centered_sigmoid").forward(one)[0] == pytest.approx(math.tanh(0.5) / 2, rel=1e-14)
    assert get_activation("softplus").forward(np.array([0.0]))[0] == pytest.approx(math.log(2), rel=1e-15)
    assert get_activation("swish").forward(one)[0] == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-15)
    assert get_activation("elu").forward(np.array([-1.0]))[0] == pytest.approx(math.exp(-1) - 1, rel=1e-15)
    np.testing.assert_array_equal(get_activation("relu6").forward(np.array([-1.0, 3.0, 9.0])), [0.0, 3.0, 6.0])
    np.testing.assert_allclose(
        get_activation("leaky_relu6").forward(np.array([-1.0, 3.0, 9.0])), [-0.01, 3.0, 6.0], rtol=1e-15
    )
    np.testing.assert_array_equal(get_activation("hard_swish").forward(np.array([-4.0, 0.0, 4.0])), [0.0, 0.0, 4.0])
    assert get_activation("hard_swish").forward(np.array([1.0]))[0] == pytest.approx(4 / 6, rel=1e-15)
    np.testing.assert_allclose(
        get_activation(SPECIAL_SPECS["scaled"]).forward(np.array([0.3])), 1.7 * np.tanh([0.3]), rtol=1e-15
    )


@pytest.mark.parametrize("spec", ALL_SPECS + EXTRA_SPECS, ids=spec_id)
def test_spec_round_trip_rebuilds_the_same_function(spec):
    act = get_activation(spec)
    again = get_activation(act.spec())
    assert again is not act
    assert again.spec() == act.spec()
    z = sample_z(11, shape=(1, 20, 6))
    np.testing.assert_array_equal(again.forward(z), act.forward(z))


def test_aliases():
    z = sample_z(12)
    for alias, name in [("linear", "identity"), ("logistic", "sigmoid"), ("silu", "swish"), ("leaky", "leaky_relu")]:
        np.testing.assert_array_equal(get_activation(alias).forward(z), get_activation(name).forward(z))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'not_an_activation'") as info:
        get_activation("not_an_activation")
    for name in ACTIVATIONS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        {"name": "relu", "slope": 0.1},
        {"name": "leaky_relu", "negative_slope": 0.1},
        {"name": "scaled", "base": "tanh", "gain": 0.0},
        {"name": "scaled", "base": "nope"},
        {"name": "mixed", "groups": []},
        {"name": "mixed"},
        {"slope": 0.1},
        3,
    ],
    ids=repr,
)
def test_bad_specs_raise_value_error(spec):
    with pytest.raises(ValueError):
        get_activation(spec)


def test_instance_spec_gives_a_fresh_copy():
    act = get_activation("prelu").build(1, 2, np.float64)
    copy = get_activation(act)
    assert copy is not act
    assert copy.params == {}
