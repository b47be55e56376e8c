"""Optimizers updating a list of parameter arrays in place.

Every parameter has a leading seed axis, shape ``(n_seeds, ...)``; the learning rate is a
scalar or one value per seed, so an ensemble can sweep learning rates in one set of arrays.
"""

from __future__ import annotations

import numpy as np

from actlab.engine import registry

FACTORED_MIN_SIZE = 1 << 16
"""Weight matrices with at least this many entries per seed (256 x 256, 64 x 1024) get plain SGD's
factored update (:meth:`SGD.step_factored`). Smaller ones keep the textbook update, whose bytes
every experiment's results were computed with."""


def per_seed(value: float | np.ndarray, n_seeds: int, ndim: int) -> np.ndarray:
    """A scalar or ``(n_seeds,)`` value as an array that broadcasts against ``(n_seeds, ...)``."""
    arr = np.broadcast_to(np.asarray(value, dtype=float), (n_seeds,))
    return arr.reshape((n_seeds,) + (1,) * (ndim - 1))


class Optimizer:
    name = "optimizer"
    formula = ""
    citation = ""

    def __init__(self, lr: float | list[float] | np.ndarray = 0.01) -> None:
        self.lr = np.asarray(lr, dtype=float)
        if np.any(~np.isfinite(self.lr)) or np.any(self.lr < 0):
            raise ValueError(f"learning rate must be finite and >= 0, got {lr!r}")
        self._lr: list[np.ndarray] = []
        self._frozen: np.ndarray | None = None

    def bind(self, params: list[np.ndarray]) -> Optimizer:
        """Allocate state for ``params`` (each ``(n_seeds, ...)``); returns ``self``."""
        self._lr = [per_seed(self.lr, p.shape[0], p.ndim).astype(p.dtype) for p in params]
        self._frozen = None
        return self

    def _state(self) -> list[list[np.ndarray]]:
        """Per-parameter state arrays (velocities, moments) with a leading seed axis."""
        return []

    def step(self, params: list[np.ndarray], grads: list[np.ndarray | None]) -> None:
        """Update ``params`` in place from ``grads`` (same shapes). ``grads`` may be overwritten.

        A None gradient marks a weight matrix that :meth:`factored` listed and that
        ``step_factored`` updates instead.
        """
        if self._frozen is not None:
            for g in grads:
                if g is not None:
                    g[self._frozen] = 0  # also turns a frozen seed's NaN gradients into no-ops
        self._update(params, grads)

    def factored(self, weights: list[np.ndarray]) -> list[int]:
        """Indices of the weight matrices this optimizer updates from their gradient's factors.

        ``weights`` are the first bound parameters (the order of :meth:`MLP.parameters`); the
        training loop then leaves their gradients unformed and calls ``step_factored`` instead
        (see :meth:`SGD.step_factored`). None here.
        """
        return []

    def _update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        raise NotImplementedError

    def freeze(self, seeds: np.ndarray) -> None:
        """Stop updating the given seeds for good (a boolean mask of shape ``(n_seeds,)``).

        Their learning rates and optimizer state (momentum, moments) are zeroed and their
        gradients ignored, so a diverged seed keeps its last parameters.
        """
        self._frozen = seeds.copy() if self._frozen is None else self._frozen | seeds
        for lr in self._lr:
            lr[seeds] = 0
        for arrays in self._state():
            for a in arrays:
                a[seeds] = 0


class SGD(Optimizer):
    name = "sgd"
    formula = "v <- mu v - lr g;  w <- w + v  (Nesterov: w <- w + mu v - lr g)"
    citation = "Robbins & Monro 1951; Polyak 1964; Sutskever et al. 2013 (Nesterov form)"

    def __init__(self, lr=0.01, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self._velocity: list[np.ndarray] = []
        self._buffers: dict[int, np.ndarray] = {}  # step_factored's products, by parameter index

    def bind(self, params):
        super().bind(params)
        self._velocity = [np.zeros_like(p) for p in params] if self.momentum else []
        self._buffers = {}
        return self

    def _state(self):
        return [self._velocity]

    def _update(self, params, grads):
        if not self.momentum:
            for p, g, lr in zip(params, grads, self._lr, strict=True):
                if g is not None:
                    g *= lr
                    p -= g
            return
        mu = self.momentum
        for p, g, v, lr in zip(params, grads, self._velocity, self._lr, strict=True):
            g *= lr
            v *= mu
            v -= g
            if self.nesterov:  # the update scikit-learn and Sutskever et al. 2013 use
                p += mu * v - g
            else:
                p += v

    def factored(self, weights: list[np.ndarray]) -> list[int]:
        """Indices of the ``weights`` (the first bound parameters) that :meth:`step_factored` updates.

        Plain SGD only (no momentum), and only matrices of at least :data:`FACTORED_MIN_SIZE`
        entries per seed.
        """
        if self.momentum:
            return []
        return [i for i, w in enumerate(weights) if w[0].size >= FACTORED_MIN_SIZE]

    def step_factored(self, index: int, w: np.ndarray, a_in: np.ndarray, delta: np.ndarray) -> None:
        """Plain SGD on the weight matrix ``w = params[index]`` from the factors of its gradient.

        ``W_s <- W_s - a_s^T (lr_s delta_s)`` for every seed ``s``. The learning rate scales
        ``delta`` (``B x n_out``) before the product rather than the gradient (``n_in x n_out``)
        after it, and the product goes into a buffer kept from step to step: one element-wise pass
        over ``W`` instead of two, and no gradient allocated per step (8 MB for a 1024 x 1024
        float64 layer). The result equals :meth:`step` on ``a_s^T delta_s`` up to rounding.

        Parameters
        ----------
        index : int
            Position of ``w`` among the bound parameters (its learning rate).
        w : ndarray, shape (S, n_in, n_out)
            The weights, updated in place.
        a_in : ndarray, shape (S, B, n_in) or (1, B, n_in)
            The layer's input, per seed or shared by every seed.
        delta : ndarray, shape (S, B, n_out)
            ``dL/du`` at the layer's output.
        """
        g = self._buffers.get(index)
        if g is None:
            g = self._buffers[index] = np.empty_like(w)
        np.matmul(a_in.transpose(0, 2, 1), delta * self._lr[index], out=g)
        if self._frozen is not None:
            g[self._frozen] = 0  # a frozen seed's NaN deltas change nothing
        w -= g


class Adam(Optimizer):
    name = "adam"
    formula = "m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2; w <- w - lr_t m / (sqrt(v) + eps)"
    citation = "Kingma & Ba 2015, Adam: a method for stochastic optimization (Algorithm 1)"

    def __init__(self, lr=0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self._m: list[np.ndarray] = []
        self._v: list[np.ndarray] = []
        self._t = 0

    def bind(self, params):
        super().bind(params)
        self._m = [np.zeros_like(p) for p in params]
        self._v = [np.zeros_like(p) for p in params]
        self._t = 0
        return self

    def _state(self):
        return [self._m, self._v]

    def _update(self, params, grads):
        self._t += 1
        b1, b2 = self.beta1, self.beta2
        correction = np.sqrt(1 - b2**self._t) / (1 - b1**self._t)
        for p, g, m, v, lr in zip(params, grads, self._m, self._v, self._lr, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= (lr * correction) * m / (np.sqrt(v) + self.eps)


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam)}


def get_optimizer(spec: str | dict | Optimizer) -> Optimizer:
    """Build an optimizer from ``"sgd"`` or ``{"name": "adam", "lr": 1e-3}``.

    Raises ``ValueError`` for an unknown name (listing the valid ones) or bad parameters.
    """
    if isinstance(spec, Optimizer):
        return spec
    return registry.build("optimizer", spec, OPTIMIZERS, {})
