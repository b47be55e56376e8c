"""Weight initializers.

An initializer draws one network's weight matrix of shape ``(fan_in, fan_out)`` from a
``numpy.random.Generator``; the network stacks one draw per seed, so an ensemble of seeds is
initialised exactly as the same seeds trained one at a time. ``fan_in`` is the number of inputs of
a unit and ``fan_out`` the number of units of the layer.

Gains follow He et al. 2015: a unit with leaky-ReLU slope ``a`` keeps the forward variance
when ``Var(w) = gain^2 / fan_in`` with ``gain = sqrt(2 / (1 + a^2))`` (``a = 0`` is ReLU's
``sqrt(2)``, ``a = 1`` the linear unit's 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.engine import registry


def leaky_relu_gain(slope: float = 0.0) -> float:
    """He et al. 2015, eq. 10: ``gain = sqrt(2 / (1 + slope^2))``."""
    return math.sqrt(2.0 / (1.0 + slope * slope))


class Initializer:
    """Base class. Subclasses implement :meth:`weights` and set ``name``/``formula``/``citation``."""

    name = "initializer"
    formula = ""
    citation = ""

    def weights(self, rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
        """Draw a ``(fan_in, fan_out)`` float64 matrix."""
        raise NotImplementedError

    def weights_and_bias(
        self, rng: np.random.Generator, fan_in: int, fan_out: int, bias: Initializer
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``W`` of shape ``(fan_in, fan_out)`` then ``b`` of shape ``(fan_out,)`` from ``bias``."""
        w = self.weights(rng, fan_in, fan_out)
        return w, bias.weights(rng, 1, fan_out)[0]

    def config(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.config()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    name = "zeros"
    formula = "w = 0"
    citation = "symmetric start: every unit of a layer stays identical (Goodfellow et al. 2016, 8.4)"

    def weights(self, rng, fan_in, fan_out):
        return np.zeros((fan_in, fan_out))


class Constant(Initializer):
    name = "constant"
    formula = "w = value"
    citation = "symmetric start: every unit of a layer stays identical (Goodfellow et al. 2016, 8.4)"

    def __init__(self, value: float = 0.1) -> None:
        self.value = float(value)

    def weights(self, rng, fan_in, fan_out):
        return np.full((fan_in, fan_out), self.value)


class Normal(Initializer):
    name = "normal"
    formula = "w ~ N(mean, std^2)"
    citation = "plain Gaussian init, as in seed 003's |w| < 1 argument"

    def __init__(self, std: float = 1.0, mean: float = 0.0) -> None:
        self.std = float(std)
        self.mean = float(mean)

    def weights(self, rng, fan_in, fan_out):
        return rng.normal(self.mean, self.std, size=(fan_in, fan_out))


class Uniform(Initializer):
    name = "uniform"
    formula = "w ~ U(-limit, limit),  Var = limit^2 / 3"
    citation = "symmetric uniform init, as in seed 000's 'half of the outputs are zero'"

    def __init__(self, limit: float = 0.05) -> None:
        self.limit = float(limit)

    def weights(self, rng, fan_in, fan_out):
        return rng.uniform(-self.limit, self.limit, size=(fan_in, fan_out))


class GlorotUniform(Initializer):
    name = "glorot_uniform"
    formula = "w ~ U(-l, l),  l = gain * sqrt(6 / (fan_in + fan_out)),  Var = 2 gain^2 / (fan_in + fan_out)"
    citation = "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward networks"

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def weights(self, rng, fan_in, fan_out):
        limit = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))


class GlorotNormal(Initializer):
    name = "glorot_normal"
    formula = "w ~ N(0, 2 gain^2 / (fan_in + fan_out))"
    citation = "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward networks"

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def weights(self, rng, fan_in, fan_out):
        std = self.gain * math.sqrt(2.0 / (fan_in + fan_out))
        return rng.normal(0.0, std, size=(fan_in, fan_out))


class HeUniform(Initializer):
    name = "he_uniform"
    formula = "w ~ U(-l, l),  l = sqrt(3) * gain / sqrt(fan_in),  gain = sqrt(2 / (1 + slope^2))"
    citation = "He, Zhang, Ren & Sun 2015, Delving deep into rectifiers (eq. 10)"

    def __init__(self, slope: float = 0.0) -> None:
        self.slope = float(slope)

    def weights(self, rng, fan_in, fan_out):
        limit = math.sqrt(3.0) * leaky_relu_gain(self.slope) / math.sqrt(fan_in)
        return rng.uniform(-limit, limit, size=(fan_in, fan_out))


class HeNormal(Initializer):
    name = "he_normal"
    formula = "w ~ N(0, gain^2 / fan_in),  gain = sqrt(2 / (1 + slope^2))"
    citation = "He, Zhang, Ren & Sun 2015, Delving deep into rectifiers (eq. 10)"

    def __init__(self, slope: float = 0.0) -> None:
        self.slope = float(slope)

    def weights(self, rng, fan_in, fan_out):
        std = leaky_relu_gain(self.slope) / math.sqrt(fan_in)
        return rng.normal(0.0, std, size=(fan_in, fan_out))


class LeCunNormal(Initializer):
    name = "lecun_normal"
    formula = "w ~ N(0, 1 / fan_in)"
    citation = "LeCun et al. 1998, Efficient BackProp; Klambauer et al. 2017 (SELU)"

    def weights(self, rng, fan_in, fan_out):
        return rng.normal(0.0, 1.0 / math.sqrt(fan_in), size=(fan_in, fan_out))


class Orthogonal(Initializer):
    name = "orthogonal"
    formula = "W = gain * Q,  Q from the QR decomposition of a Gaussian matrix (sign-corrected)"
    citation = "Saxe, McClelland & Ganguli 2014, Exact solutions to the nonlinear dynamics of learning"

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = float(gain)

    def weights(self, rng, fan_in, fan_out):
        a = rng.normal(size=(max(fan_in, fan_out), min(fan_in, fan_out)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # Mezzadri 2007: makes Q Haar-distributed
        if fan_in < fan_out:
            q = q.T
        return self.gain * q


class RandomizedAsymmetric(Initializer):
    """Randomized asymmetric initialization (RAI) of Lu, Shin, Su & Karniadakis 2020.

    Each unit's row ``v = (w_1, ..., w_fan_in, b)`` gets one entry, at a uniformly random
    position, drawn positive from Beta(2, 1); the others are N(0, s^2). Here ``s^2`` is chosen so
    that the row's expected squared norm equals He's, ``fan_in * s^2 + E[xi^2] = 2`` with
    ``E[xi^2] = 1/2`` for Beta(2, 1). The asymmetric entry keeps the unit from being inactive for
    every input, which is how RAI prevents a deep narrow ReLU net from being "born dead".
    """

    name = "randomized_asymmetric"
    formula = "row v in R^(fan_in+1): v_k ~ Beta(2,1) at random k, other entries ~ N(0, 1.5 / fan_in)"
    citation = "Lu, Shin, Su & Karniadakis 2020, Dying ReLU and initialization, Commun. Comput. Phys. 28"

    def weights(self, rng, fan_in, fan_out):
        return self.weights_and_bias(rng, fan_in, fan_out, Zeros())[0]

    def weights_and_bias(self, rng, fan_in, fan_out, bias):
        std = math.sqrt(1.5 / fan_in)
        rows = rng.normal(0.0, std, size=(fan_out, fan_in + 1))
        k = rng.integers(0, fan_in + 1, size=fan_out)
        rows[np.arange(fan_out), k] = rng.beta(2.0, 1.0, size=fan_out)
        return rows[:, :fan_in].T.copy(), rows[:, fan_in].copy()


INITIALIZERS: dict[str, type[Initializer]] = {
    cls.name: cls
    for cls in (
        Zeros,
        Constant,
        Normal,
        Uniform,
        GlorotUniform,
        GlorotNormal,
        HeUniform,
        HeNormal,
        LeCunNormal,
        Orthogonal,
        RandomizedAsymmetric,
    )
}
ALIASES = {
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal": "he_normal",
    "rai": "randomized_asymmetric",
}


def get_initializer(spec: str | dict | Initializer) -> Initializer:
    """Build an initializer from a name, a ``{"name": ..., **kwargs}`` dict or an instance.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names) or unknown keyword arguments.
    """
    if isinstance(spec, Initializer):
        return spec
    return registry.build("initializer", spec, INITIALIZERS, ALIASES)
