"""Tests of :mod:`actlab.engine.datasets`: every generator, the split, scaling, determinism and the openml path.

The openml test runs offline: it lays out scikit-learn's own iris test fixtures (data id 61) as
the cache ``fetch_openml`` reads under ``data_home`` and makes any network access raise.
"""

from __future__ import annotations

import math
import socket
import urllib.request
from importlib import resources

import numpy as np
import pytest

from actlab.engine.datasets import GENERATORS, UNSCALED, Dataset, make_dataset, one_hot, relu_1d_sample

TEST_FRACTION = 0.25

# Small, fast specs for every generator except openml (which is tested from a local cache below).
SPECS: dict[str, dict] = {
    "xor": {"n_samples": 400, "noise": 0.1},
    "parity": {"n_bits": 4, "n_samples": 400},
    "circles": {"n_samples": 400, "noise": 0.1},
    "moons": {"n_samples": 400, "noise": 0.2},
    "spirals": {"n_samples": 600, "n_arms": 3},
    "smoker": {"n_samples": 600},
    "classification": {"n_samples": 400, "n_features": 8, "n_informative": 4, "n_classes": 3},
    "digits": {"n_samples": 500},
}
# (n_samples, n_inputs, n_classes) each spec must give
SHAPES: dict[str, tuple[int, int, int]] = {
    "xor": (400, 2, 2),
    "parity": (400, 4, 2),
    "circles": (400, 2, 2),
    "moons": (400, 2, 2),
    "spirals": (600, 2, 3),
    "smoker": (600, 3, 2),
    "classification": (400, 8, 3),
    "digits": (500, 64, 10),
}
KINDS = sorted(SPECS)


def build(kind: str, seed: int = 0, name: str | None = None, **overrides) -> Dataset:
    spec = {"kind": kind, "test_fraction": TEST_FRACTION, **SPECS[kind], **overrides}
    return make_dataset(kind if name is None else name, spec, seed)


def labels_of(y: np.ndarray) -> np.ndarray:
    return np.argmax(y, axis=1)


def test_specs_cover_every_generator_but_openml():
    assert set(SPECS) == set(SHAPES) == set(GENERATORS) - {"openml"}
    assert UNSCALED <= set(GENERATORS)


# ---------------------------------------------------------------------------------------- the split


@pytest.mark.parametrize("kind", KINDS)
def test_split_sizes_and_stratification(kind):
    n_samples, n_inputs, n_classes = SHAPES[kind]
    data = build(kind)
    n_train, n_test = len(data.x_train), len(data.x_test)
    assert n_train + n_test == n_samples
    assert n_test == math.ceil(TEST_FRACTION * n_samples)
    assert data.x_train.shape == (n_train, n_inputs) and data.x_test.shape == (n_test, n_inputs)
    assert data.y_train.shape == (n_train, n_classes) and data.y_test.shape == (n_test, n_classes)
    assert (data.n_inputs, data.n_outputs) == (n_inputs, n_classes)
    assert data.name == kind and data.task == "classification" and data.loss == "softmax_cross_entropy"
    # stratified: every class is in the test split in proportion, up to rounding (one sample)
    per_class_test = data.y_test.sum(axis=0)
    per_class_all = per_class_test + data.y_train.sum(axis=0)
    assert np.all(per_class_test >= 1) and np.all(per_class_all - per_class_test >= 1)
    np.testing.assert_array_less(np.abs(per_class_test - TEST_FRACTION * per_class_all), 1.0 + 1e-9)


@pytest.mark.parametrize("test_fraction", [0.1, 0.3, 0.5])
def test_requested_test_fraction(test_fraction):
    data = make_dataset("moons", {"kind": "moons", "n_samples": 300, "test_fraction": test_fraction}, seed=3)
    assert len(data.x_test) == math.ceil(test_fraction * 300)
    assert len(data.x_train) == 300 - len(data.x_test)
    np.testing.assert_allclose(data.y_test.mean(axis=0), [0.5, 0.5], atol=1 / len(data.x_test))


def test_default_test_fraction_and_kind_from_name():
    data = make_dataset("moons", {"n_samples": 200}, seed=0)
    assert len(data.x_test) == math.ceil(0.3 * 200)


# ---------------------------------------------------------------------------------------- targets


@pytest.mark.parametrize("kind", KINDS)
def test_targets_are_one_hot(kind):
    data = build(kind)
    for y in (data.y_train, data.y_test):
        assert np.isin(y, [0.0, 1.0]).all()
        np.testing.assert_array_equal(y.sum(axis=1), 1.0)


def test_one_hot_helper():
    np.testing.assert_array_equal(one_hot(np.array([2, 0, 1])), np.eye(3)[[2, 0, 1]])
    assert one_hot(np.array([0, 1]), n_classes=4).shape == (2, 4)


# ---------------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_finite(kind):
    data = build(kind)
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()
    assert data.x_train.dtype == np.float64 and data.x_test.dtype == np.float64


@pytest.mark.parametrize("kind", sorted(set(KINDS) - UNSCALED))
def test_standardized_kinds_have_unit_train_statistics(kind):
    data = build(kind)
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1.0, rtol=1e-10)
    # the test split uses the training statistics: close to, but not exactly, standardized
    np.testing.assert_allclose(data.x_test.mean(axis=0), 0.0, atol=0.5)
    np.testing.assert_allclose(data.x_test.std(axis=0), 1.0, atol=0.5)


def test_unscaled_kinds_are_the_expected_ones():
    assert {"xor", "parity", "digits"} == UNSCALED


def test_digits_keep_pixel_range():
    data = build("digits")
    x = np.vstack([data.x_train, data.x_test])
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(x * 16, np.round(x * 16))  # pixels / 16
    assert not np.allclose(data.x_train.mean(axis=0), 0.0)  # not standardized


def test_full_digits():
    data = make_dataset("digits", {"kind": "digits"}, seed=0)
    assert len(data.x_train) + len(data.x_test) == 1797
    assert (data.n_inputs, data.n_outputs) == (64, 10)


def test_parity_keeps_pm1_inputs():
    data = build("parity")
    assert np.isin(np.vstack([data.x_train, data.x_test]), [-1.0, 1.0]).all()


def test_xor_keeps_corner_scale():
    data = build("xor")
    x = np.vstack([data.x_train, data.x_test])
    # jitter of 0.1 around ±1: every coordinate stays near a corner, unshifted and unrescaled
    assert np.all(np.abs(np.abs(x) - 1.0) < 0.6)
    assert not np.allclose(data.x_train.std(axis=0), 1.0, rtol=1e-10)


# ---------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_arrays(kind):
    a, b = build(kind, seed=7), build(kind, seed=7)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("kind", KINDS)
def test_different_seed_different_arrays(kind):
    a, b = build(kind, seed=7), build(kind, seed=8)
    assert a.x_train.shape == b.x_train.shape
    assert not np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_test, b.x_test)


def test_name_is_part_of_the_seed():
    a, b = build("moons", seed=7, name="moons_a"), build("moons", seed=7, name="moons_b")
    assert not np.array_equal(a.x_train, b.x_train)


# ---------------------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, tmp_path):
    data = build(kind, name=f"my_{kind}")
    path = tmp_path / f"{kind}.npz"
    data.save(path)
    back = Dataset.load(path)
    assert isinstance(back.name, str) and back.name == f"my_{kind}"
    assert isinstance(back.task, str) and back.task == data.task
    for field in ("x_train", "y_train", "x_test", "y_test"):
        got, want = getattr(back, field), getattr(data, field)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert (back.n_inputs, back.n_outputs, back.loss) == (data.n_inputs, data.n_outputs, data.loss)


def test_save_load_str_path(tmp_path):
    data = build("moons")
    path = str(tmp_path / "moons.npz")
    data.save(path)
    np.testing.assert_array_equal(Dataset.load(path).x_test, data.x_test)


# ---------------------------------------------------------------------------------------- labels


def test_xor_label_is_sign_product_of_clean_corners():
    data = build("xor", noise=0.0)
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        assert np.isin(x, [-1.0, 1.0]).all()
        np.testing.assert_array_equal(labels_of(y), (x[:, 0] * x[:, 1] < 0).astype(int))
    assert set(labels_of(data.y_train)) == {0, 1}


def test_xor_label_with_jitter_follows_the_quadrant():
    # noise 0.1 is ten standard deviations from flipping a sign
    data = build("xor", noise=0.1)
    x, y = data.x_train, data.y_train
    np.testing.assert_array_equal(labels_of(y), (np.sign(x[:, 0]) * np.sign(x[:, 1]) < 0).astype(int))


@pytest.mark.parametrize("n_bits", [2, 4, 7])
def test_parity_label_is_parity_of_bits(n_bits):
    data = build("parity", n_bits=n_bits)
    assert data.n_inputs == n_bits
    for x, y in ((data.x_train, data.y_train), (data.x_test, data.y_test)):
        bits = (x > 0).astype(int)
        np.testing.assert_array_equal(labels_of(y), bits.sum(axis=1) % 2)


def test_smoker_has_both_classes():
    data = build("smoker")
    assert data.n_inputs == 3 and data.n_outputs == 2
    for y in (data.y_train, data.y_test):
        share = y.mean(axis=0)
        assert np.all(share > 0.1), share


@pytest.mark.parametrize("n_arms", [2, 3, 5])
def test_spirals_have_one_class_per_arm(n_arms):
    data = build("spirals", n_arms=n_arms)
    assert data.n_outputs == n_arms
    assert set(labels_of(data.y_train)) == set(range(n_arms))
    assert set(labels_of(data.y_test)) == set(range(n_arms))


def test_classification_arguments_are_passed_through():
    data = build("classification", n_features=5, n_informative=3, n_classes=4)
    assert (data.n_inputs, data.n_outputs) == (5, 4)


# ---------------------------------------------------------------------------------------- relu-1d


@pytest.mark.parametrize("batch_size", [1, 7, 256])
def test_relu_1d_sample_shapes_and_target(batch_size):
    x, y = relu_1d_sample(np.random.default_rng(0), batch_size)
    assert x.shape == (batch_size, 1) and y.shape == (batch_size, 1)
    np.testing.assert_array_equal(y, np.maximum(x, 0.0))


def test_relu_1d_sample_is_seeded_standard_normal():
    x1, _ = relu_1d_sample(np.random.default_rng(5), 20_000)
    x2, _ = relu_1d_sample(np.random.default_rng(5), 20_000)
    np.testing.assert_array_equal(x1, x2)
    rng = np.random.default_rng(5)
    a, _ = relu_1d_sample(rng, 100)
    b, _ = relu_1d_sample(rng, 100)
    assert not np.array_equal(a, b)  # a stream: fresh batches
    assert abs(x1.mean()) < 0.05 and abs(x1.std() - 1.0) < 0.05
    assert 0.45 < (x1 > 0).mean() < 0.55


# ---------------------------------------------------------------------------------------- errors


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError, match="unknown dataset kind 'bogus'") as info:
        make_dataset("mine", {"kind": "bogus"}, seed=0)
    for kind in GENERATORS:
        assert kind in str(info.value)


def test_unknown_name_without_kind():
    with pytest.raises(ValueError, match="unknown dataset kind 'nonesuch'"):
        make_dataset("nonesuch", {}, seed=0)


@pytest.mark.parametrize("kind", [*KINDS, "openml"])
def test_bad_kwargs_name_the_dataset(kind):
    spec = {"kind": kind, "not_an_argument": 1}
    with pytest.raises(ValueError, match=rf"bad parameters for dataset 'my_{kind}' \(kind '{kind}'\)") as info:
        make_dataset(f"my_{kind}", spec, seed=0)
    assert "not_an_argument" in str(info.value)


def test_openml_without_name_is_a_bad_parameter():
    with pytest.raises(ValueError, match="bad parameters for dataset 'remote'"):
        make_dataset("remote", {"kind": "openml"}, seed=0)


# ---------------------------------------------------------------------------------------- openml, offline

# scikit-learn's test fixture for iris (data id 61) -> where fetch_openml(name="iris", version=1,
# data_home=H) looks for its cached copy. The cache path is
# ``H/openml/openml.org/<URL path>.gz`` (fetch_openml appends "openml" to data_home;
# ``_get_local_path(_openml_path_from_url(url), ...)``); cached files are gzipped, like the
# fixtures. The fixture names encode the URL the same way (see ``_file_name`` in
# sklearn/datasets/tests/test_openml.py): "api-v1-jd-61.json" is api/v1/json/data/61.
# The ARFF goes to two places: scikit-learn >= 1.6 caches it under the path of the description's
# "url" (data/v1/download/61/iris.arff), older releases under data/v1/download/<file_id>.
IRIS_FIXTURES = "sklearn.datasets.tests.data.openml.id_61"
IRIS_CACHE = {
    "api-v1-jdl-dn-iris-l-2-dv-1.json.gz": ["api/v1/json/data/list/data_name/iris/limit/2/data_version/1.gz"],
    "api-v1-jd-61.json.gz": ["api/v1/json/data/61.gz"],
    "api-v1-jdf-61.json.gz": ["api/v1/json/data/features/61.gz"],
    "api-v1-jdq-61.json.gz": ["api/v1/json/data/qualities/61.gz"],
    "data-v1-dl-61.arff.gz": ["data/v1/download/61/iris.arff.gz", "data/v1/download/61.gz"],
}


@pytest.fixture
def no_network(monkeypatch):
    """Make every network access raise (and record it); yields the list of attempts."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args[:1]))
        # not a URLError: scikit-learn would retry those with sleeps
        raise RuntimeError(f"test attempted network access: {args[:1]!r}")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    import sklearn.datasets._openml as sk_openml

    if hasattr(sk_openml, "urlopen"):
        monkeypatch.setattr(sk_openml, "urlopen", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture
def iris_data_home(tmp_path):
    """A data_home holding scikit-learn's iris fixtures as fetch_openml's cache."""
    try:
        fixtures = resources.files(IRIS_FIXTURES)
        blobs = {name: fixtures.joinpath(name).read_bytes() for name in IRIS_CACHE}
    except (ModuleNotFoundError, FileNotFoundError, OSError) as err:
        pytest.skip(f"scikit-learn's openml iris test fixtures ({IRIS_FIXTURES}) are not installed: {err}")
    data_home = tmp_path / "sklearn_data"
    root = data_home / "openml" / "openml.org"
    for name, targets in IRIS_CACHE.items():
        for target in targets:
            path = root / target
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blobs[name])
    return data_home


@pytest.mark.filterwarnings("error")  # an "Invalid cache, redownloading" warning means a cache miss
def test_openml_iris_from_local_cache(iris_data_home, no_network):
    spec = {"kind": "openml", "name": "iris", "version": 1, "data_home": str(iris_data_home)}
    data = make_dataset("iris", spec, seed=0)
    assert no_network == []
    assert data.name == "iris" and data.task == "classification"
    assert len(data.x_train) + len(data.x_test) == 150
    assert len(data.x_test) == math.ceil(0.3 * 150)
    assert (data.n_inputs, data.n_outputs) == (4, 3)
    np.testing.assert_array_equal(data.y_train.sum(axis=0), [35, 35, 35])  # stratified 50/50/50
    np.testing.assert_array_equal(data.y_test.sum(axis=0), [15, 15, 15])
    np.testing.assert_array_equal(data.y_train.sum(axis=1), 1.0)
    assert np.isfinite(data.x_train).all() and np.isfinite(data.x_test).all()
    np.testing.assert_allclose(data.x_train.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(data.x_train.std(axis=0), 1.0, rtol=1e-10)
    # it is Fisher's iris: per-column affine scaling keeps the feature correlations
    from sklearn.datasets import load_iris

    x = np.vstack([data.x_train, data.x_test])
    np.testing.assert_allclose(np.corrcoef(x.T), np.corrcoef(load_iris().data.T), atol=0.02)
    # and it is reproducible from the cache
    again = make_dataset("iris", spec, seed=0)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    assert no_network == []


def test_openml_subset(iris_data_home, no_network):
    spec = {"kind": "openml", "name": "iris", "version": 1, "data_home": str(iris_data_home), "n_samples": 60}
    data = make_dataset("iris_small", {**spec, "test_fraction": 0.5}, seed=1)
    assert no_network == []
    assert len(data.x_train) == len(data.x_test) == 30
    assert data.n_inputs == 4
    assert set(labels_of(data.y_train)) == set(labels_of(data.y_test))


def test_openml_cache_miss_does_not_reach_network(tmp_path, no_network):
    spec = {"kind": "openml", "name": "iris", "version": 1, "data_home": str(tmp_path / "empty")}
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="network access"):
        make_dataset("iris", spec, seed=0)
    assert no_network  # the guard did fire
