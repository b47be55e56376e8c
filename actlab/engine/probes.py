"""Instrumentation: what a network's layers are doing on a fixed probe set.

A probe runs one forward and backward pass in eval mode on the probe inputs, without updating
anything, and measures per seed and per layer the quantities the claims are about.
"""

from __future__ import annotations

import numpy as np

from actlab.engine.losses import Loss
from actlab.engine.network import MLP

#: per-seed scalars, shape (S,)
SCALAR_METRICS = ("loss", "accuracy")
#: per-seed, per-dense-layer values, shape (S, L + 1) (hidden layers then the output layer)
DENSE_METRICS = ("grad_norm", "delta_norm")
#: per-seed, per-hidden-layer values, shape (S, L)
HIDDEN_METRICS = ("act_mean", "act_std", "zero_frac", "dead_frac", "max_abs_act")


def dead_units(net: MLP, pre: list[np.ndarray], post: list[np.ndarray]) -> list[np.ndarray]:
    """Per hidden layer, a boolean mask ``(S, n_l)`` of units that pass no gradient on any input.

    A unit is dead when its activation's derivative is exactly zero for every probe sample
    (a ReLU unit with ``z <= 0`` everywhere; never a leaky unit), so no example can change its
    incoming weights (Lu et al. 2020, Definition 1, stated on gradients).
    """
    masks = []
    for act, z, a in zip(net.activations, pre, post, strict=True):
        slope = act.backward(z, a, np.ones_like(z))
        masks.append(np.all(slope == 0, axis=1))
    return masks


def probe(net: MLP, loss: Loss, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray | list[np.ndarray]]:
    """Measure the network on ``x`` (``(B, n_0)`` or ``(S, B, n_0)``) with targets ``y``.

    Returns
    -------
    dict
        ``loss`` and ``accuracy`` (NaN for regression), shape ``(S,)``;
        ``grad_norm`` (Frobenius norm of ``dL/dW_l``) and ``delta_norm`` (root mean square over
        samples of the per-example back-propagated error ``||dL_n/du_l||``), shape ``(S, L + 1)``;
        ``act_mean``, ``act_std``, ``zero_frac`` (exact zeros), ``dead_frac`` and
        ``max_abs_act`` of each hidden layer's output, shape ``(S, L)``;
        ``dead_masks``: a list of ``(S, n_l)`` boolean arrays.
    """
    cache = net.forward(x, train=False)
    loss_value, grad_out = loss(cache.out, np.broadcast_to(y, cache.out.shape))
    grads, deltas = net.backward(cache, grad_out)
    n_dense = net.n_hidden + 1
    batch = cache.out.shape[1]
    accuracy = loss.accuracy(cache.out, np.broadcast_to(y, cache.out.shape))
    masks = dead_units(net, cache.pre, cache.post)
    outputs = cache.inputs[1:]  # what each hidden layer hands to the next one
    result = {
        "loss": loss_value,
        "accuracy": np.full(net.n_seeds, np.nan) if accuracy is None else accuracy,
        "grad_norm": np.stack([np.sqrt(np.sum(g * g, axis=(1, 2))) for g in grads[:n_dense]], axis=1),
        "delta_norm": np.stack([np.sqrt(batch * np.sum(d * d, axis=(1, 2))) for d in deltas], axis=1),
        "act_mean": _per_layer(lambda a: a.mean(axis=(1, 2)), outputs, net.n_seeds),
        "act_std": _per_layer(lambda a: a.std(axis=(1, 2)), outputs, net.n_seeds),
        "zero_frac": _per_layer(lambda a: np.mean(a == 0, axis=(1, 2)), cache.post, net.n_seeds),
        "dead_frac": _per_layer(lambda m: m.mean(axis=1), masks, net.n_seeds),
        "max_abs_act": _per_layer(lambda a: np.abs(a).max(axis=(1, 2)), outputs, net.n_seeds),
        "dead_masks": masks,
    }
    return result


def _per_layer(fn, arrays: list[np.ndarray], n_seeds: int) -> np.ndarray:
    if not arrays:
        return np.zeros((n_seeds, 0))
    return np.stack([np.broadcast_to(fn(a), (n_seeds,)) for a in arrays], axis=1)
