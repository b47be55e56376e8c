"""Batch normalization over the sample axis, one set of statistics per seed and unit."""

from __future__ import annotations

import numpy as np


class BatchNorm:
    """Ioffe & Szegedy 2015: ``y = gamma * (x - mu_B) / sqrt(var_B + eps) + beta``.

    In training mode ``mu_B`` and ``var_B`` (biased) are the batch statistics and the running
    averages are updated as ``r <- (1 - momentum) r + momentum * stat`` (the running variance uses
    the unbiased batch variance, as PyTorch does). In eval mode the running averages are used.

    Parameters
    ----------
    n_seeds, n_units : int
        Parameters have shape ``(n_seeds, 1, n_units)``.
    """

    def __init__(self, n_seeds: int, n_units: int, dtype=np.float64, momentum: float = 0.1, eps: float = 1e-5):
        shape = (n_seeds, 1, n_units)
        self.params = {"gamma": np.ones(shape, dtype), "beta": np.zeros(shape, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.running_mean = np.zeros(shape, dtype)
        self.running_var = np.ones(shape, dtype)
        self.momentum, self.eps = momentum, eps
        self._cache: tuple = ()

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        """Normalize ``x`` of shape ``(n_seeds, n_samples, n_units)``."""
        if train:
            mean = x.mean(axis=1, keepdims=True)
            var = x.var(axis=1, keepdims=True)
            n = x.shape[1]
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += m * var * (n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mean) * inv_std
        self._cache = (xhat, inv_std, train)
        return self.params["gamma"] * xhat + self.params["beta"]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """Gradient with respect to the input of the last forward call; fills ``self.grads``."""
        xhat, inv_std, train = self._cache
        np.sum(grad * xhat, axis=1, keepdims=True, out=self.grads["gamma"])
        np.sum(grad, axis=1, keepdims=True, out=self.grads["beta"])
        g = grad * self.params["gamma"]
        if not train:
            return g * inv_std
        n = grad.shape[1]
        # d/dx of the normalized batch (Ioffe & Szegedy 2015, section 3):
        # dx = inv_std / n * (n g - sum(g) - xhat * sum(g * xhat))
        return (inv_std / n) * (n * g - g.sum(axis=1, keepdims=True) - xhat * np.sum(g * xhat, axis=1, keepdims=True))
