"""The tasks the experiments train on, generated locally (no download) and split reproducibly.

Every dataset is a :class:`Dataset` with float inputs ``x`` ``(N, n_in)``, targets ``y``
``(N, n_out)`` (one-hot for classification) and a train/test split. ``relu-1d`` is a stream
(fresh standard-normal batches, target ``relu(x)``, seed 002) and is sampled with
:func:`relu_1d_sample` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actlab.engine.seeding import key_to_ints

# scikit-learn is imported inside the generators: a training job only loads a saved Dataset and
# should not pay for importing scikit-learn (about a second per job, hundreds of jobs per run).


@dataclass
class Dataset:
    """A train/test split. ``task`` is "classification" (one-hot ``y``) or "regression"."""

    name: str
    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_inputs(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.y_train.shape[1]

    @property
    def loss(self) -> str:
        """The loss the experiments use: softmax cross-entropy for classes, MSE for regression."""
        return "softmax_cross_entropy" if self.task == "classification" else "mse"

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            name=self.name,
            task=self.task,
            x_train=self.x_train,
            y_train=self.y_train,
            x_test=self.x_test,
            y_test=self.y_test,
        )

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        with np.load(path) as d:
            return cls(str(d["name"]), str(d["task"]), d["x_train"], d["y_train"], d["x_test"], d["y_test"])


def one_hot(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Integer labels ``(N,)`` to one-hot rows ``(N, n_classes)``."""
    labels = np.asarray(labels).astype(int)
    n_classes = int(labels.max()) + 1 if n_classes is None else n_classes
    return np.eye(n_classes)[labels]


def relu_1d_sample(rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Seed 002's data: ``x ~ N(0, 1)``, ``y = relu(x)``, shapes ``(batch_size, 1)``."""
    x = rng.standard_normal((batch_size, 1))
    return x, np.maximum(x, 0)


def _xor(rng, n_samples=1000, noise=0.1):
    """Two-bit XOR with Gaussian jitter around the corners of [-1, 1]^2."""
    bits = rng.integers(0, 2, size=(n_samples, 2))
    x = 2.0 * bits - 1 + noise * rng.standard_normal((n_samples, 2))
    return x, bits[:, 0] ^ bits[:, 1]


def _parity(rng, n_bits=6, n_samples=2000):
    """n-bit parity of random ±1 vectors."""
    bits = rng.integers(0, 2, size=(n_samples, n_bits))
    return 2.0 * bits - 1, bits.sum(axis=1) % 2


def _circles(rng, n_samples=1000, noise=0.1, factor=0.5):
    from sklearn import datasets as skd

    return skd.make_circles(n_samples=n_samples, noise=noise, factor=factor, random_state=_seed(rng))


def _moons(rng, n_samples=1000, noise=0.2):
    from sklearn import datasets as skd

    return skd.make_moons(n_samples=n_samples, noise=noise, random_state=_seed(rng))


def _spirals(rng, n_samples=1000, n_arms=2, noise=0.2, turns=1.5):
    """Interleaved Archimedean spirals, one class per arm."""
    labels = rng.integers(0, n_arms, size=n_samples)
    t = rng.uniform(0.1, 1.0, size=n_samples)
    angle = 2 * np.pi * turns * t + 2 * np.pi * labels / n_arms
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) * 3
    return x + noise * rng.standard_normal(x.shape) * t[:, None], labels


def _smoker(rng, n_samples=2000):
    """Seed 001's tabular example: weight (kg), blood pressure (mmHg), age (years) -> smoker.

    The label is a non-linear function of the three: positive when the standardized
    ``(bp - 120)/15 * (age - 45)/15 + ((weight - 75)/12)^2 - 0.5`` is positive, with 5% label noise.
    """
    weight = rng.normal(75, 12, n_samples)
    bp = rng.normal(120, 15, n_samples)
    age = rng.uniform(18, 80, n_samples)
    score = (bp - 120) / 15 * (age - 45) / 15 + ((weight - 75) / 12) ** 2 - 0.5
    label = (score > 0).astype(int)
    flip = rng.random(n_samples) < 0.05
    return np.stack([weight, bp, age], axis=1), np.where(flip, 1 - label, label)


def _classification(rng, n_samples=1000, n_features=20, n_informative=10, n_classes=2):
    from sklearn import datasets as skd

    return skd.make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_classes=n_classes,
        random_state=_seed(rng),
    )


def _digits(rng, n_samples=None):
    """scikit-learn's 8x8 digits (1797 images, 10 classes), pixels / 16; optionally a subset."""
    from sklearn import datasets as skd

    x, y = skd.load_digits(return_X_y=True)
    if n_samples is not None:
        keep = rng.permutation(len(x))[:n_samples]
        x, y = x[keep], y[keep]
    return x / 16.0, y


def _openml(rng, name, version=1, data_home=None, n_samples=None):
    """A data set from openml.org through scikit-learn's cache (``data_home``); needs internet once."""
    from sklearn import datasets as skd

    bunch = skd.fetch_openml(name=name, version=version, data_home=data_home, as_frame=False, parser="liac-arff")
    x, y = np.asarray(bunch.data, dtype=float), bunch.target
    _, labels = np.unique(y, return_inverse=True)
    if n_samples is not None:
        keep = rng.permutation(len(x))[:n_samples]
        x, labels = x[keep], labels[keep]
    return x, labels


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


GENERATORS = {
    "xor": _xor,
    "parity": _parity,
    "circles": _circles,
    "moons": _moons,
    "spirals": _spirals,
    "smoker": _smoker,
    "classification": _classification,
    "digits": _digits,
    "openml": _openml,
}
#: generators whose inputs are already on a common scale (the others are standardized)
UNSCALED = {"xor", "parity", "digits"}


def make_dataset(name: str, spec: dict, seed: int) -> Dataset:
    """Generate the data set ``spec = {"kind": ..., "test_fraction": 0.3, **generator kwargs}``.

    Inputs are standardized with the training split's statistics unless the kind is in
    ``UNSCALED``. The split is stratified for classification.

    Raises
    ------
    ValueError
        For an unknown kind (listing the valid kinds) or bad generator arguments.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    spec = dict(spec)
    kind = spec.pop("kind", name)
    test_fraction = float(spec.pop("test_fraction", 0.3))
    if kind not in GENERATORS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid kinds: {', '.join(sorted(GENERATORS))}")
    rng = np.random.default_rng(key_to_ints([seed, "dataset", name]))
    try:
        x, labels = GENERATORS[kind](rng, **spec)
    except TypeError as err:
        raise ValueError(f"bad parameters for dataset {name!r} (kind {kind!r}): {err}") from None
    x = np.asarray(x, dtype=float)
    x_tr, x_te, l_tr, l_te = train_test_split(
        x, labels, test_size=test_fraction, random_state=_seed(rng), stratify=labels
    )
    if kind not in UNSCALED:
        scaler = StandardScaler().fit(x_tr)
        x_tr, x_te = scaler.transform(x_tr), scaler.transform(x_te)
    n_classes = int(np.max(labels)) + 1
    return Dataset(name, "classification", x_tr, one_hot(l_tr, n_classes), x_te, one_hot(l_te, n_classes))
