"""Initializers: moments against their formulas, He gains, orthogonality, RAI, determinism, errors.

Statistical tolerances. For ``n`` i.i.d. draws with variance ``s2`` and kurtosis ``k``, the sample
mean has standard error ``sqrt(s2 / n)`` and the sample variance ``s2 * sqrt((k - 1) / n)``
(normal: ``k = 3``, uniform: ``k = 9/5``). Tests allow ``Z = 6`` standard errors: a correct
initializer fails with probability below 1e-8 whatever the seed, while with ``n = 1.2e6`` a wrong
formula (a gain off by 2 %, a factor 2 or 3 in the variance) is many tolerances away.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from actlab.engine import INITIALIZERS, MLP, Seeds, get_initializer
from actlab.engine.initializers import leaky_relu_gain

FAN_IN, FAN_OUT, DRAWS = 400, 300, 10
Z = 6.0
KURTOSIS = {"normal": 3.0, "uniform": 1.8}


def he_var(slope: float, fan_in: int = FAN_IN) -> float:
    """He et al. 2015 variance ``gain^2 / fan_in`` with ``gain^2 = 2 / (1 + slope^2)``."""
    return 2.0 / (1.0 + slope * slope) / fan_in


GLOROT_VAR = 2.0 / (FAN_IN + FAN_OUT)
RAI_MEAN = (2 / 3) / (FAN_IN + 1)
RAI_VAR = (0.5 + 1.5) / (FAN_IN + 1) - RAI_MEAN**2
KURTOSIS["rai"] = (1 / 3 + FAN_IN * 3 * (1.5 / FAN_IN) ** 2) / (FAN_IN + 1) / RAI_VAR**2

# (spec, expected mean, expected variance, distribution family or "exact")
MOMENT_CASES = [
    ("zeros", 0.0, 0.0, "exact"),
    ({"name": "constant", "value": -0.7}, -0.7, 0.0, "exact"),
    ("normal", 0.0, 1.0, "normal"),
    ({"name": "normal", "std": 0.3, "mean": 0.2}, 0.2, 0.09, "normal"),
    ("uniform", 0.0, 0.05**2 / 3, "uniform"),
    ({"name": "uniform", "limit": 2.0}, 0.0, 4.0 / 3, "uniform"),
    ("glorot_uniform", 0.0, GLOROT_VAR, "uniform"),
    ({"name": "glorot_uniform", "gain": 1.5}, 0.0, 2.25 * GLOROT_VAR, "uniform"),
    ("glorot_normal", 0.0, GLOROT_VAR, "normal"),
    ({"name": "glorot_normal", "gain": 0.5}, 0.0, 0.25 * GLOROT_VAR, "normal"),
    ("lecun_normal", 0.0, 1.0 / FAN_IN, "normal"),
    # Haar orthogonal entries are close to N(0, 1 / max(fan_in, fan_out)).
    ("orthogonal", 0.0, 1.0 / max(FAN_IN, FAN_OUT), "normal"),
    ({"name": "orthogonal", "gain": 2.0}, 0.0, 4.0 / max(FAN_IN, FAN_OUT), "normal"),
    # Per entry: a fraction 1/(fan_in + 1) of Beta(2, 1) (mean 2/3, E[x^2] 1/2, E[x^4] 1/3), the rest
    # N(0, 1.5 / fan_in): a heavy-tailed mixture, hence its own kurtosis.
    ("randomized_asymmetric", RAI_MEAN, RAI_VAR, "rai"),
]
for _slope in (0.0, 0.01, 0.2, 1.0):
    MOMENT_CASES.append(({"name": "he_normal", "slope": _slope}, 0.0, he_var(_slope), "normal"))
    MOMENT_CASES.append(({"name": "he_uniform", "slope": _slope}, 0.0, he_var(_slope), "uniform"))


def spec_id(spec: str | dict) -> str:
    """A readable pytest id for an initializer spec."""
    if isinstance(spec, str):
        return spec
    return "-".join(str(v) for v in spec.values())


def draw(spec: str | dict, seed: int = 0, fan_in: int = FAN_IN, fan_out: int = FAN_OUT, draws: int = DRAWS):
    """``draws`` independent weight matrices from one seeded Generator, stacked."""
    init = get_initializer(spec)
    rng = np.random.default_rng(seed)
    return np.stack([init.weights(rng, fan_in, fan_out) for _ in range(draws)])


def test_every_registered_initializer_has_a_moment_case():
    covered = {get_initializer(spec).name for spec, *_ in MOMENT_CASES}
    missing = set(INITIALIZERS) - covered
    assert not missing, f"add the expected mean/variance of {sorted(missing)} to MOMENT_CASES"


@pytest.mark.parametrize(("spec", "mean", "var", "family"), MOMENT_CASES, ids=[spec_id(c[0]) for c in MOMENT_CASES])
def test_empirical_moments_match_formula(spec, mean, var, family):
    if get_initializer(spec).name == "orthogonal":
        # QR factorisations are the slow part: two draws (n = 240000) on one BLAS thread, which
        # stays fast on a busy machine where multi-threaded OpenBLAS can stall for seconds.
        with threadpool_limits(limits=1):
            w = draw(spec, draws=2)
    else:
        w = draw(spec)
    n = w.size
    if family == "exact":
        np.testing.assert_array_equal(w, mean)
        return
    mean_tol = Z * math.sqrt(var / n)
    var_tol = Z * var * math.sqrt((KURTOSIS[family] - 1) / n)
    assert abs(w.mean() - mean) < mean_tol
    assert abs(w.var() - var) < var_tol, f"variance {w.var():.6g} vs formula {var:.6g} (tol {var_tol:.2g})"


@pytest.mark.parametrize("name", ["he_normal", "he_uniform"])
@pytest.mark.parametrize("slope", [0.01, 0.2, 1.0])
def test_he_gain_honours_leaky_slope_exactly(name, slope):
    # Same generator state: the draws differ only by the gain, so the ratio is the gain ratio.
    relu = draw({"name": name, "slope": 0.0}, seed=3, draws=1)
    leaky = draw({"name": name, "slope": slope}, seed=3, draws=1)
    np.testing.assert_allclose(leaky, relu * math.sqrt(1.0 / (1.0 + slope * slope)), rtol=1e-12, atol=1e-15)


def test_leaky_relu_gain_formula():
    assert leaky_relu_gain(0.0) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    assert leaky_relu_gain(1.0) == pytest.approx(1.0, rel=1e-15)
    assert leaky_relu_gain(0.2) == pytest.approx(math.sqrt(2.0 / 1.04), rel=1e-15)


@pytest.mark.parametrize(
    ("spec", "limit"),
    [
        ({"name": "uniform", "limit": 0.3}, 0.3),
        ("glorot_uniform", math.sqrt(6.0 / (FAN_IN + FAN_OUT))),
        ({"name": "glorot_uniform", "gain": 2.0}, 2.0 * math.sqrt(6.0 / (FAN_IN + FAN_OUT))),
        ("he_uniform", math.sqrt(6.0 / FAN_IN)),
        ({"name": "he_uniform", "slope": 0.2}, math.sqrt(3.0) * math.sqrt(2.0 / 1.04) / math.sqrt(FAN_IN)),
    ],
    ids=lambda v: spec_id(v) if isinstance(v, str | dict) else f"{v:.4g}",
)
def test_uniform_support(spec, limit):
    w = draw(spec, draws=2)
    assert np.abs(w).max() <= limit
    # 240000 uniform draws: the largest |w| is within limit * 1e-4 of the bound (P(miss) ~ exp(-24)).
    assert np.abs(w).max() > limit * (1 - 1e-4)


@pytest.mark.parametrize(("fan_in", "fan_out"), [(50, 30), (30, 50), (40, 40)])
@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_orthogonal_is_orthogonal(fan_in, fan_out, gain):
    w = get_initializer({"name": "orthogonal", "gain": gain}).weights(np.random.default_rng(4), fan_in, fan_out)
    assert w.shape == (fan_in, fan_out)
    gram = w.T @ w if fan_in >= fan_out else w @ w.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(fan_in, fan_out)), atol=1e-12)


def test_orthogonal_is_sign_corrected_haar():
    # Without the sign correction of the QR factor, diagonal entries of square draws are biased
    # (Mezzadri 2007); with it, each entry of a Haar matrix has mean 0.
    init = get_initializer("orthogonal")
    rng = np.random.default_rng(5)
    diag = np.concatenate([np.diag(init.weights(rng, 8, 8)) for _ in range(2000)])
    # Var(Q_ii) = 1/8 for a Haar 8x8 matrix; 16000 entries.
    assert abs(diag.mean()) < Z * math.sqrt(1 / 8 / diag.size)


def test_randomized_asymmetric_units():
    fan_in, fan_out = 50, 20000
    init = get_initializer("randomized_asymmetric")
    w, b = init.weights_and_bias(np.random.default_rng(6), fan_in, fan_out, get_initializer("zeros"))
    assert w.shape == (fan_in, fan_out) and b.shape == (fan_out,)
    rows = np.concatenate([w.T, b[:, None]], axis=1)  # one row per unit: incoming weights then bias
    assert np.all(np.any(rows > 0, axis=1))
    # The bias is part of the RAI row (not the zeros bias initializer passed in).
    assert np.count_nonzero(b) == fan_out
    # E||v||^2 = fan_in * 1.5 / fan_in + E[Beta(2,1)^2] = 2; Var(||v||^2) = 2 * 1.5^2 / fan_in + 1/12.
    sq = np.sum(rows * rows, axis=1)
    se = math.sqrt((2 * 1.5**2 / fan_in + 1 / 12) / fan_out)
    assert abs(sq.mean() - 2.0) < Z * se


def test_randomized_asymmetric_guarantees_a_positive_entry_in_narrow_layers():
    # With fan_in = 2 a symmetric init leaves all three row entries negative for 1/8 of the units
    # (about 2500 of 20000); RAI's Beta(2, 1) entry leaves none.
    w, b = get_initializer("rai").weights_and_bias(np.random.default_rng(8), 2, 20000, get_initializer("zeros"))
    rows = np.concatenate([w.T, b[:, None]], axis=1)
    assert np.all(rows.max(axis=1) > 0)
    he_w = get_initializer("he_normal").weights(np.random.default_rng(8), 3, 20000)
    assert np.sum(he_w.max(axis=0) <= 0) > 2000  # the comparison is not vacuous


def test_randomized_asymmetric_weights_is_the_weight_part_of_the_rows():
    init = get_initializer("randomized_asymmetric")
    w_only = init.weights(np.random.default_rng(7), 6, 5)
    w, _ = init.weights_and_bias(np.random.default_rng(7), 6, 5, get_initializer("zeros"))
    np.testing.assert_array_equal(w_only, w)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_shape_dtype_and_determinism(name):
    init = get_initializer(name)
    w1 = init.weights(np.random.default_rng(11), 7, 5)
    w2 = init.weights(np.random.default_rng(11), 7, 5)
    assert w1.shape == (7, 5)
    assert w1.dtype == np.float64
    assert np.all(np.isfinite(w1))
    assert w1.tobytes() == w2.tobytes()
    wb1 = init.weights_and_bias(np.random.default_rng(11), 7, 5, get_initializer({"name": "normal", "std": 0.1}))
    wb2 = init.weights_and_bias(np.random.default_rng(11), 7, 5, get_initializer({"name": "normal", "std": 0.1}))
    assert wb1[0].shape == (7, 5) and wb1[1].shape == (5,)
    assert wb1[0].tobytes() == wb2[0].tobytes() and wb1[1].tobytes() == wb2[1].tobytes()
    w3 = init.weights(np.random.default_rng(12), 7, 5)
    if name in ("zeros", "constant"):
        assert w3.tobytes() == w1.tobytes()
    else:
        assert not np.array_equal(w3, w1)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_spec_round_trip(name):
    init = get_initializer(name)
    again = get_initializer(init.spec())
    w = init.weights(np.random.default_rng(13), 9, 4)
    np.testing.assert_array_equal(again.weights(np.random.default_rng(13), 9, 4), w)


@pytest.mark.parametrize("init", ["he_normal", "glorot_uniform", "orthogonal", "randomized_asymmetric"])
def test_ensemble_initialised_as_seeds_alone(init):
    kwargs = dict(activation="relu", init=init, bias_init={"name": "uniform", "limit": 0.1})
    ensemble = MLP(3, [6, 5], 2, seeds=Seeds(range(3), key=(1, "init")), **kwargs)
    for i in range(3):
        alone = MLP(3, [6, 5], 2, seeds=Seeds([i], key=(1, "init")), **kwargs)
        for p, q in zip(ensemble.parameters(), alone.parameters(), strict=True):
            assert p[i].tobytes() == q[0].tobytes()
    # Different seeds get different weights.
    assert not np.array_equal(ensemble.W[0][0], ensemble.W[0][1])


def test_network_uses_bias_init_and_per_layer_inits():
    net = MLP(
        3, [4], 2, init=["zeros", {"name": "constant", "value": 0.5}], bias_init={"name": "constant", "value": -2}
    )
    np.testing.assert_array_equal(net.W[0], 0.0)
    np.testing.assert_array_equal(net.W[1], 0.5)
    np.testing.assert_array_equal(net.b[0], -2.0)
    np.testing.assert_array_equal(net.b[1], -2.0)


def test_aliases():
    for alias, name in [
        ("xavier_uniform", "glorot_uniform"),
        ("xavier_normal", "glorot_normal"),
        ("kaiming_uniform", "he_uniform"),
        ("kaiming_normal", "he_normal"),
        ("rai", "randomized_asymmetric"),
    ]:
        assert type(get_initializer(alias)) is INITIALIZERS[name]


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown initializer 'glorot'") as info:
        get_initializer("glorot")
    for name in INITIALIZERS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    "spec", [{"name": "he_normal", "gain": 2.0}, {"name": "zeros", "value": 1}, {"std": 1.0}, None], ids=repr
)
def test_bad_specs_raise_value_error(spec):
    with pytest.raises(ValueError):
        get_initializer(spec)
