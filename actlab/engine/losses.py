"""Losses on network outputs of shape ``(n_seeds, n_samples, n_outputs)``.

Each loss returns the per-seed mean loss, shape ``(n_seeds,)``, and the gradient with respect to
the output (already divided by the batch size), shape like the output. Targets have the output's
shape (one-hot rows for classification).
"""

from __future__ import annotations

import numpy as np

from actlab.engine import registry
from actlab.engine.activations import sigmoid


def log_softmax(out: np.ndarray) -> np.ndarray:
    """``o - logsumexp(o)`` over the last axis, shifted by the row maximum so exp never overflows."""
    shifted = out - out.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Loss:
    name = "loss"
    formula = ""
    classification = False

    def __call__(self, out: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def predict(self, out: np.ndarray) -> np.ndarray:
        """The prediction made from raw outputs (probabilities for classification losses)."""
        return out

    def accuracy(self, out: np.ndarray, target: np.ndarray) -> np.ndarray | None:
        """Per-seed fraction of correct predictions, shape ``(n_seeds,)``; None for regression."""
        return None


class MeanSquaredError(Loss):
    name = "mse"
    formula = "L = mean over samples and outputs of (y_hat - y)^2   (Keras / PyTorch convention)"

    def __call__(self, out, target):
        diff = out - target
        loss = np.mean(diff * diff, axis=(1, 2))
        return loss, diff * (2.0 / (diff.shape[1] * diff.shape[2]))


class HalfSquaredError(Loss):
    name = "half_squared_error"
    formula = "L = mean over samples of sum over outputs of (y_hat - y)^2 / 2   (scikit-learn)"

    def __call__(self, out, target):
        diff = out - target
        loss = 0.5 * np.sum(diff * diff, axis=(1, 2)) / diff.shape[1]
        return loss, diff / diff.shape[1]


class SoftmaxCrossEntropy(Loss):
    name = "softmax_cross_entropy"
    formula = "L = -mean_n sum_k y_nk log softmax(o_n)_k,  dL/do = (softmax(o) - y) / n"
    classification = True

    def __call__(self, out, target):
        log_p = log_softmax(out)
        loss = -np.sum(target * log_p, axis=(1, 2)) / out.shape[1]
        grad = np.exp(log_p)
        grad -= target
        grad /= out.shape[1]
        return loss, grad

    def predict(self, out):
        return np.exp(log_softmax(out))

    def accuracy(self, out, target):
        return np.mean(np.argmax(out, axis=2) == np.argmax(target, axis=2), axis=1)


class SigmoidCrossEntropy(Loss):
    name = "sigmoid_cross_entropy"
    formula = "L = mean_n [log(1 + exp(o)) - y o],  dL/do = (sigmoid(o) - y) / n"
    classification = True

    def __call__(self, out, target):
        loss = np.sum(np.logaddexp(0, out) - target * out, axis=(1, 2)) / out.shape[1]
        return loss, (sigmoid(out) - target) / out.shape[1]

    def predict(self, out):
        return sigmoid(out)

    def accuracy(self, out, target):
        return np.mean(np.all((out > 0) == (target > 0.5), axis=2), axis=1)


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls for cls in (MeanSquaredError, HalfSquaredError, SoftmaxCrossEntropy, SigmoidCrossEntropy)
}
ALIASES = {"cross_entropy": "softmax_cross_entropy", "log_loss": "softmax_cross_entropy"}


def get_loss(spec: str | dict | Loss) -> Loss:
    """Build a loss from its name; unknown names raise ``ValueError`` listing the valid ones."""
    if isinstance(spec, Loss):
        return spec
    return registry.build("loss", spec, LOSSES, ALIASES)
