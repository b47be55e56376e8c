"""Activation functions, each with its forward pass and its backward pass on the pre-activation.

Every activation is an object with

* ``forward(z) -> a``: the output for pre-activations ``z``;
* ``backward(z, a, grad) -> grad_z``: the gradient with respect to ``z`` given the upstream
  gradient ``grad`` with respect to ``a`` (``a = forward(z)`` is passed so that activations whose
  derivative is cheapest from the output, such as tanh, can use it);
* ``formula`` (one line) and ``citation``.

Arrays have shape ``(n_seeds, n_samples, n_units)`` inside a network, but every stateless
activation accepts any shape. Learnable activations (PReLU) and group-wise ones (``Mixed``) are
built per layer with :meth:`Activation.build`; their parameters live in ``params`` and the
gradients of the last backward pass in ``grads``.

All functions are written to be finite for ``|z|`` up to ``1e4`` in float32 and float64 without
overflow warnings (exponentials are only ever taken of non-positive numbers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from actlab.engine import registry


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function via ``sigmoid(z) = (1 + tanh(z / 2)) / 2``: exact, and never overflows."""
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF ``Phi(z)`` (scipy's ``ndtr``, imported on first use: only GELU needs it)."""
    from scipy.special import ndtr

    return ndtr(z)


class Activation:
    """Base class: a stateless element-wise activation.

    Subclasses set ``name``, ``formula`` and ``citation`` and implement :meth:`forward` and
    :meth:`backward`.
    """

    name = "activation"
    formula = ""
    citation = ""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def build(self, n_seeds: int, n_units: int, dtype: np.dtype) -> Activation:
        """Allocate per-layer state (nothing for stateless activations); returns ``self``."""
        return self

    def forward(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Element-wise derivative ``f'(z)`` (the backward pass applied to a gradient of ones)."""
        z = np.asarray(z)
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(float)
        return self.backward(z, self.forward(z), np.ones_like(z))

    def config(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this activation with :func:`get_activation`."""
        return {}

    def spec(self) -> dict[str, Any]:
        """``{"name": ..., **config}``, a JSON-able description."""
        return {"name": self.name, **self.config()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


class Identity(Activation):
    name = "identity"
    formula = "f(z) = z"
    citation = "linear unit; a stack of them is one linear map (Goodfellow et al. 2016, ch. 6)"

    def forward(self, z):
        return z.copy()

    def backward(self, z, a, grad):
        return grad


class Sigmoid(Activation):
    name = "sigmoid"
    formula = "f(z) = 1 / (1 + exp(-z)),  f'(z) = f(z) (1 - f(z)) <= 1/4"
    citation = "logistic function; LeCun et al. 1998, Efficient BackProp"

    def forward(self, z):
        return sigmoid(z)

    def backward(self, z, a, grad):
        return grad * a * (1 - a)


class CenteredSigmoid(Activation):
    name = "centered_sigmoid"
    formula = "f(z) = 1 / (1 + exp(-z)) - 1/2  (= tanh(z/2) / 2)"
    citation = "sigmoid shifted to zero mean, to isolate centering from shape (LeCun et al. 1998)"

    def forward(self, z):
        return sigmoid(z) - 0.5

    def backward(self, z, a, grad):
        return grad * (0.25 - a * a)


class Tanh(Activation):
    name = "tanh"
    formula = "f(z) = tanh(z),  f'(z) = 1 - f(z)^2"
    citation = "LeCun et al. 1998, Efficient BackProp"

    def forward(self, z):
        return np.tanh(z)

    def backward(self, z, a, grad):
        return grad * (1 - a * a)


class ReLU(Activation):
    name = "relu"
    formula = "f(z) = max(z, 0),  f'(z) = [z > 0]"
    citation = "Nair & Hinton 2010; Glorot, Bordes & Bengio 2011"

    def forward(self, z):
        return np.maximum(z, 0)

    def backward(self, z, a, grad):
        return grad * (z > 0)


class LeakyReLU(Activation):
    name = "leaky_relu"
    formula = "f(z) = z if z > 0 else slope * z"
    citation = "Maas, Hannun & Ng 2013, Rectifier nonlinearities improve neural network acoustic models"

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = float(slope)

    def config(self):
        return {"slope": self.slope}

    def forward(self, z):
        if 0 <= self.slope <= 1:  # max(z, slope z): the same values, 10-20x faster than np.where's masked pick
            return np.maximum(z, self.slope * z)
        return np.where(z > 0, z, self.slope * z)

    def backward(self, z, a, grad):
        if 0 <= self.slope <= 1:  # f' = max([z > 0], slope) is 1 or slope exactly
            return grad * np.maximum(z > 0, np.asarray(self.slope, dtype=grad.dtype))
        return np.where(z > 0, grad, self.slope * grad)


class NecroReLU(Activation):
    name = "necro_relu"
    formula = "f(z) = max(z, 0) forward, but f'(z) = 1 if z > 0 else slope backward"
    citation = "proposed in seed 000 (a ReLU whose units cannot die); a straight-through estimator"

    def __init__(self, slope: float = 0.1) -> None:
        super().__init__()
        self.slope = float(slope)

    def config(self):
        return {"slope": self.slope}

    def forward(self, z):
        return np.maximum(z, 0)

    def backward(self, z, a, grad):
        return np.where(z > 0, grad, self.slope * grad)


class PReLU(Activation):
    """Parametric ReLU: one learned negative slope per unit (and per seed)."""

    name = "prelu"
    formula = "f(z) = z if z > 0 else s_j * z,  dL/ds_j = sum_n dL/da_nj * min(z_nj, 0)"
    citation = "He, Zhang, Ren & Sun 2015, Delving deep into rectifiers"

    def __init__(self, slope: float = 0.25) -> None:
        super().__init__()
        self.slope = float(slope)

    def config(self):
        return {"slope": self.slope}

    def build(self, n_seeds, n_units, dtype):
        self.params = {"slope": np.full((n_seeds, 1, n_units), self.slope, dtype=dtype)}
        self.grads = {"slope": np.zeros_like(self.params["slope"])}
        return self

    def _slope(self, z):
        if "slope" not in self.params:  # used outside a network: a scalar slope
            return self.slope
        return self.params["slope"]

    def forward(self, z):
        return np.where(z > 0, z, self._slope(z) * z)

    def backward(self, z, a, grad):
        if "slope" in self.params:
            neg = np.minimum(z, 0)
            np.sum(grad * neg, axis=-2, keepdims=True, out=self.grads["slope"])
        return np.where(z > 0, grad, self._slope(z) * grad)


class ELU(Activation):
    name = "elu"
    formula = "f(z) = z if z > 0 else alpha (exp(z) - 1)"
    citation = "Clevert, Unterthiner & Hochreiter 2016, Fast and accurate deep network learning by ELUs"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def config(self):
        return {"alpha": self.alpha}

    def forward(self, z):
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def backward(self, z, a, grad):
        return np.where(z > 0, grad, grad * self.alpha * np.exp(np.minimum(z, 0)))


class SELU(Activation):
    name = "selu"
    formula = "f(z) = scale * (z if z > 0 else alpha (exp(z) - 1)), alpha=1.6733, scale=1.0507"
    citation = "Klambauer, Unterthiner, Mayr & Hochreiter 2017, Self-normalizing neural networks"

    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946

    def forward(self, z):
        return self.scale * np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def backward(self, z, a, grad):
        slope = np.where(z > 0, 1.0, self.alpha * np.exp(np.minimum(z, 0)))
        return grad * (self.scale * slope)


class Softplus(Activation):
    name = "softplus"
    formula = "f(z) = log(1 + exp(z)),  f'(z) = sigmoid(z)"
    citation = "Dugas et al. 2001; Glorot, Bordes & Bengio 2011"

    def forward(self, z):
        return np.logaddexp(0, z)

    def backward(self, z, a, grad):
        return grad * sigmoid(z)


class ReLU6(Activation):
    name = "relu6"
    formula = "f(z) = min(max(z, 0), 6)"
    citation = "Krizhevsky 2010, Convolutional deep belief networks on CIFAR-10"

    def forward(self, z):
        return np.clip(z, 0, 6)

    def backward(self, z, a, grad):
        return grad * ((z > 0) & (z < 6))


class LeakyReLU6(Activation):
    name = "leaky_relu6"
    formula = "f(z) = slope * z if z < 0, z if 0 <= z <= 6, 6 if z > 6"
    citation = "leaky ReLU below zero, ReLU6 cap above: the combination proposed in seed 001"

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = float(slope)

    def config(self):
        return {"slope": self.slope}

    def forward(self, z):
        return np.where(z > 0, np.minimum(z, 6), self.slope * z)

    def backward(self, z, a, grad):
        return np.where(z > 0, grad * (z < 6), self.slope * grad)


class Swish(Activation):
    name = "swish"
    formula = "f(z) = z * sigmoid(beta z),  f'(z) = s + beta z s (1 - s), s = sigmoid(beta z)"
    citation = "Ramachandran, Zoph & Le 2017, Searching for activation functions (SiLU at beta=1)"

    def __init__(self, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = float(beta)

    def config(self):
        return {"beta": self.beta}

    def forward(self, z):
        return z * sigmoid(self.beta * z)

    def backward(self, z, a, grad):
        s = sigmoid(self.beta * z)
        return grad * (s + self.beta * z * s * (1 - s))


class HardSwish(Activation):
    name = "hard_swish"
    formula = "f(z) = z * relu6(z + 3) / 6"
    citation = "Howard et al. 2019, Searching for MobileNetV3"

    def forward(self, z):
        return z * np.clip(z + 3, 0, 6) / 6

    def backward(self, z, a, grad):
        slope = np.where(z <= -3, 0.0, np.where(z >= 3, 1.0, (2 * z + 3) / 6))
        return grad * slope


class GELU(Activation):
    name = "gelu"
    formula = "f(z) = z * Phi(z),  f'(z) = Phi(z) + z * phi(z)  (Phi: standard normal CDF)"
    citation = "Hendrycks & Gimpel 2016, Gaussian error linear units"

    def forward(self, z):
        return z * normal_cdf(z)

    def backward(self, z, a, grad):
        pdf = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        return grad * (normal_cdf(z) + z * pdf)


class Abs(Activation):
    name = "abs"
    formula = "f(z) = |z|,  f'(z) = sign(z)"
    citation = "absolute-value rectification; Jarrett et al. 2009, What is the best multi-stage architecture"

    def forward(self, z):
        return np.abs(z)

    def backward(self, z, a, grad):
        return grad * np.sign(z)


class Scaled(Activation):
    """A gain-scaled activation ``gain * f(z)``, for the slope-product claim."""

    name = "scaled"
    formula = "g(z) = gain * f(z),  g'(z) = gain * f'(z)"
    citation = "backprop multiplies one slope per layer: |dL/dx| ~ prod_l gain * f'(z_l) (seed 000)"

    def __init__(self, base: Activation | str | dict = "identity", gain: float = 1.0) -> None:
        super().__init__()
        self.base = get_activation(base)
        self.gain = float(gain)
        if self.gain == 0:
            raise ValueError("scaled activation needs a non-zero gain")

    def config(self):
        return {"base": self.base.spec(), "gain": self.gain}

    def build(self, n_seeds, n_units, dtype):
        self.base.build(n_seeds, n_units, dtype)
        self.params, self.grads = self.base.params, self.base.grads
        return self

    def forward(self, z):
        return self.gain * self.base.forward(z)

    def backward(self, z, a, grad):
        return self.base.backward(z, a / self.gain, grad * self.gain)


class Mixed(Activation):
    """Units of one layer split into consecutive groups, each with its own activation.

    ``groups`` is a list of ``[activation, fraction]`` pairs; fractions are normalised and the
    group sizes rounded so that they add up to the layer width (the last group takes the rest).
    """

    name = "mixed"
    formula = "f(z)_j = f_g(z_j) for unit j in group g"
    citation = "several activations in one layer, the speculation of seed 000"

    def __init__(self, groups: list) -> None:
        super().__init__()
        if not groups:
            raise ValueError("mixed activation needs at least one group")
        self.members = [get_activation(g[0] if isinstance(g, list | tuple) else g) for g in groups]
        weights = [float(g[1]) if isinstance(g, list | tuple) else 1.0 for g in groups]
        total = sum(weights)
        self.fractions = [w / total for w in weights]
        self.slices: list[slice] = []

    def config(self):
        return {"groups": [[m.spec(), f] for m, f in zip(self.members, self.fractions, strict=True)]}

    def build(self, n_seeds, n_units, dtype):
        bounds = np.round(np.cumsum([0.0, *self.fractions]) * n_units).astype(int)
        bounds[-1] = n_units
        self.slices = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        self.params, self.grads = {}, {}
        for i, (member, sl) in enumerate(zip(self.members, self.slices, strict=True)):
            member.build(n_seeds, sl.stop - sl.start, dtype)
            for key in member.params:
                self.params[f"{i}.{key}"] = member.params[key]
                self.grads[f"{i}.{key}"] = member.grads[key]
        return self

    def _require_built(self, z):
        if not self.slices or self.slices[-1].stop != z.shape[-1]:
            self.build(1, z.shape[-1], z.dtype)

    def forward(self, z):
        self._require_built(z)
        a = np.empty_like(z)
        for member, sl in zip(self.members, self.slices, strict=True):
            a[..., sl] = member.forward(z[..., sl])
        return a

    def backward(self, z, a, grad):
        self._require_built(z)
        out = np.empty_like(grad)
        for member, sl in zip(self.members, self.slices, strict=True):
            out[..., sl] = member.backward(z[..., sl], a[..., sl], grad[..., sl])
        return out


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (
        Identity,
        Sigmoid,
        CenteredSigmoid,
        Tanh,
        ReLU,
        LeakyReLU,
        NecroReLU,
        PReLU,
        ELU,
        SELU,
        Softplus,
        ReLU6,
        LeakyReLU6,
        Swish,
        HardSwish,
        GELU,
        Abs,
        Scaled,
        Mixed,
    )
}
ALIASES = {"linear": "identity", "logistic": "sigmoid", "silu": "swish", "leaky": "leaky_relu"}


def get_activation(spec: str | dict | Activation) -> Activation:
    """Build a fresh activation from a name, a ``{"name": ..., **kwargs}`` dict or an instance.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid names) or unknown keyword arguments.
    """
    if isinstance(spec, Activation):
        spec = spec.spec()  # a fresh copy: learnable state belongs to one layer
    return registry.build("activation", spec, ACTIVATIONS, ALIASES)
