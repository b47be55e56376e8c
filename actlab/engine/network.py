"""A multilayer perceptron trained as an ensemble of independent seeds in one set of arrays.

Shapes: ``S`` seeds, ``B`` samples, layer widths ``n_0 (inputs), n_1, ..., n_L, n_out``.
Weights ``W[l]`` are ``(S, n_l, n_{l+1})``, biases ``b[l]`` are ``(S, 1, n_{l+1})``, activations
``(S, B, n_l)``. Inputs may be ``(B, n_0)`` (the same batch for every seed) or ``(S, B, n_0)``.

Hidden layer ``l`` computes ``u = a_{l-1} W + b``, then, with batch norm placed "before",
``z = BN(u)``, else ``z = u``; ``a = f(z)``, and with batch norm "after", ``a <- BN(a)``.
The output layer is ``o = g(a_L W + b)`` with ``g`` the output activation (identity by default;
the loss applies softmax or sigmoid itself).

Backpropagation follows the recurrence of seed 000 and Rumelhart, Hinton & Williams 1986:
``delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l)``, ``dL/dW_l = a_{l-1}^T delta_l``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from actlab.engine.activations import Activation, get_activation
from actlab.engine.batchnorm import BatchNorm
from actlab.engine.checks import check_array, check_int
from actlab.engine.initializers import get_initializer
from actlab.engine.seeding import Seeds, seed_indices

BATCHNORM_PLACES = (None, "before", "after")


def batch_sum(delta: np.ndarray) -> np.ndarray:
    """``delta.sum(axis=1, keepdims=True)`` for ``delta`` of shape ``(S, B, n)``, with the same bytes.

    For a C-ordered ``delta`` with ``n > 1``, NumPy's reduction adds the ``B`` rows one after
    another, with an inner loop of only ``n`` elements: slow for a seed ensemble of narrow layers.
    ``einsum`` adds in the same order, several times faster. Otherwise (``n == 1``, other layouts)
    NumPy may sum pairwise, so ``sum`` is kept.
    """
    if delta.shape[2] > 1 and delta.flags.c_contiguous:
        return np.einsum("sbj->sj", delta)[:, None, :]
    return delta.sum(axis=1, keepdims=True)


def matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x @ y`` over the last two axes, leading axes broadcast, as ``np.matmul``, with the same bytes.

    Shapes ``(..., m, k) @ (..., k, n) -> (..., m, n)``. When ``k == 1`` the product is an outer
    product, for which ``np.matmul`` takes 2-3 times as long as a broadcast multiply (one small
    BLAS call per seed: a single neuron's 200 seeds x 1000 samples, 0.59 ms against 0.25 ms). So
    it is formed as ``x * y + 0.0``: each entry is one correctly rounded product, as BLAS makes it,
    and adding ``+0.0`` turns a ``-0.0`` product into ``+0.0``, as BLAS's accumulator (which
    starts at ``+0.0``) does. Checked bit for bit, NaN, infinities and subnormals included, in
    ``tests/test_network_gradients.py``.
    """
    if x.shape[-1] == 1:
        z = x * y
        z += 0.0
        return z
    return np.matmul(x, y)


@dataclass
class ForwardCache:
    """What one forward pass keeps for the backward pass (lists indexed by layer)."""

    inputs: list[np.ndarray]  # input of each dense layer, a_{l-1}
    pre: list[np.ndarray]  # pre-activation z_l of each hidden layer (after a "before" batch norm)
    post: list[np.ndarray]  # activation f(z_l) of each hidden layer (before an "after" batch norm)
    out_pre: np.ndarray  # output layer pre-activation
    out: np.ndarray  # network output g(out_pre)
    train: bool


class MLP:
    """A seed ensemble of fully connected networks.

    Parameters
    ----------
    n_inputs : int
        Input dimension ``n_0``.
    hidden : sequence of int
        Hidden layer widths ``n_1 .. n_L`` (may be empty: a single dense layer).
    n_outputs : int
        Output dimension. Every width is a Python or NumPy integer ``>= 1`` (not a float, not a bool).
    activation : str, dict, Activation or list of them
        Hidden activation, or one per hidden layer (see :mod:`actlab.engine.activations`).
    output_activation : str, dict or Activation
        Applied to the output layer (identity by default).
    init : str, dict or list of them
        Weight initializer, or one per dense layer (hidden layers then the output layer).
    bias_init : str or dict
        Bias initializer (zeros by default).
    bias : bool
        Whether dense layers have biases.
    batchnorm : None, "before" or "after"
        Batch norm in each hidden layer, before or after the activation.
    seeds : Seeds or int
        The ensemble members; each draws its initial weights from its own "init" stream.
    dtype : numpy dtype
        float64 (default) or float32.

    Raises
    ------
    TypeError
        For a width that is not an integer (``32.7``, ``16.0``, ``True``), ``hidden`` that is not a
        sequence, seeds that are neither a :class:`Seeds`, a count nor a sequence of indices, or an
        unknown dtype.
    ValueError
        For a width or seed count below 1, a negative seed index, a non-float dtype, an unknown
        batch-norm place, or activation / initializer lists of the wrong length.
    """

    def __init__(
        self,
        n_inputs: int,
        hidden: Sequence[int],
        n_outputs: int,
        *,
        activation="relu",
        output_activation="identity",
        init="he_normal",
        bias_init="zeros",
        bias: bool = True,
        batchnorm: str | None = None,
        seeds: Seeds | int = 1,
        dtype=np.float64,
    ) -> None:
        if batchnorm not in BATCHNORM_PLACES:
            raise ValueError(f"MLP: batchnorm must be one of {BATCHNORM_PLACES}, got {batchnorm!r}")
        self.seeds = seeds if isinstance(seeds, Seeds) else Seeds(seed_indices(seeds, "MLP: seeds"))
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"MLP: dtype must be float32 or float64, got {dtype!r}") from None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"MLP: dtype must be float32 or float64, got {self.dtype}")
        if isinstance(hidden, str | bytes) or not isinstance(hidden, Iterable):
            raise TypeError(
                f"MLP: hidden must be a sequence of layer widths (e.g. [32, 32], or [] for none), "
                f"got {hidden!r} ({type(hidden).__name__})"
            )
        self.sizes = [
            check_int(n_inputs, "MLP: n_inputs", minimum=1),
            *[check_int(h, f"MLP: hidden[{i}]", minimum=1) for i, h in enumerate(hidden)],
            check_int(n_outputs, "MLP: n_outputs", minimum=1),
        ]
        n_hidden = len(self.sizes) - 2
        n_seeds = len(self.seeds)
        act_specs = activation if isinstance(activation, list) else [activation] * n_hidden
        if len(act_specs) != n_hidden:
            raise ValueError(f"got {len(act_specs)} activations for {n_hidden} hidden layers")
        init_specs = init if isinstance(init, list) else [init] * (n_hidden + 1)
        if len(init_specs) != n_hidden + 1:
            raise ValueError(f"got {len(init_specs)} initializers for {n_hidden + 1} dense layers")
        self.activations: list[Activation] = [
            get_activation(spec).build(n_seeds, width, self.dtype)
            for spec, width in zip(act_specs, self.sizes[1:-1], strict=True)
        ]
        self.output_activation = get_activation(output_activation).build(n_seeds, n_outputs, self.dtype)
        self.batchnorm = batchnorm
        self.norms = [BatchNorm(n_seeds, w, self.dtype) for w in self.sizes[1:-1]] if batchnorm else []
        self.has_bias = bool(bias)
        self.W, self.b = self._initial_weights([get_initializer(s) for s in init_specs], get_initializer(bias_init))
        self.spec = {
            "sizes": self.sizes,
            "activation": [a.spec() for a in self.activations],
            "output_activation": self.output_activation.spec(),
            "init": [get_initializer(s).spec() for s in init_specs],
            "bias_init": get_initializer(bias_init).spec(),
            "bias": self.has_bias,
            "batchnorm": batchnorm,
            "dtype": self.dtype.name,
        }

    def _initial_weights(self, inits, bias_init):
        weights, biases = [], []
        rngs = self.seeds.rngs("init")
        for layer, (fan_in, fan_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            drawn = [inits[layer].weights_and_bias(rng, fan_in, fan_out, bias_init) for rng in rngs]
            weights.append(np.stack([w for w, _ in drawn]).astype(self.dtype))
            b = np.stack([b for _, b in drawn])[:, None, :].astype(self.dtype)
            biases.append(b if self.has_bias else None)
        return weights, biases

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def n_hidden(self) -> int:
        return len(self.sizes) - 2

    def check_inputs(self, x, name: str, *, finite: bool = False, allow_empty: bool = False) -> np.ndarray:
        """Check inputs ``x`` for this network: ``(B, n_0)`` or ``(S, B, n_0)`` (see :func:`check_array`).

        Parameters
        ----------
        x : array_like
            The inputs as passed.
        name : str
            How the error message names them, e.g. ``"train: test[0]"``.
        finite, allow_empty : bool
            As in :func:`check_array`.

        Returns
        -------
        ndarray
            ``np.asarray(x)``.
        """
        width = (self.sizes[0], f"the network has {self.sizes[0]} inputs")
        return check_array(
            x, name, ndim=(2, 3), shape=(None, width), n_seeds=self.n_seeds, finite=finite, allow_empty=allow_empty
        )

    def check_targets(self, y, name: str, n_rows: int, *, finite: bool = False) -> np.ndarray:
        """Check targets ``y`` for ``n_rows`` samples: ``(n_rows, n_out)`` or ``(S, n_rows, n_out)``.

        Parameters
        ----------
        y : array_like
            The targets as passed (one-hot rows for classification).
        name : str
            How the error message names them, e.g. ``"train: y"``.
        n_rows : int
            The number of samples of the matching inputs.
        finite : bool
            As in :func:`check_array`.

        Returns
        -------
        ndarray
            ``np.asarray(y)``.
        """
        n_out = self.sizes[-1]
        rows = (n_rows, f"the inputs have {n_rows} rows")
        width = (n_out, f"the network has {n_out} outputs (pass classes as one-hot rows)")
        return check_array(y, name, ndim=(2, 3), shape=(rows, width), n_seeds=self.n_seeds, finite=finite)

    def parameters(self) -> list[np.ndarray]:
        """Every learnable array (each ``(S, ...)``), in a fixed order matched by :meth:`backward`."""
        params = [w for w in self.W] + [b for b in self.b if b is not None]
        for module in [*self.activations, self.output_activation, *self.norms]:
            params += list(module.params.values())
        return params

    def parameter_names(self) -> list[str]:
        """Names for :meth:`parameters`, e.g. ``W0``, ``b0``, ``act1.slope``, ``bn0.gamma``."""
        names = [f"W{i}" for i in range(len(self.W))]
        names += [f"b{i}" for i, b in enumerate(self.b) if b is not None]
        for i, act in enumerate(self.activations):
            names += [f"act{i}.{k}" for k in act.params]
        names += [f"out_act.{k}" for k in self.output_activation.params]
        for i, bn in enumerate(self.norms):
            names += [f"bn{i}.{k}" for k in bn.params]
        return names

    def forward(self, x: np.ndarray, train: bool = True) -> ForwardCache:
        """Run the ensemble on ``x`` of shape ``(B, n_0)`` or ``(S, B, n_0)``.

        Returns the :class:`ForwardCache`; the output, shape ``(S, B, n_out)``, is ``cache.out``.
        Only the shape of ``x`` is checked (``ValueError`` naming the expected one): this runs
        every training step, so finiteness is checked by :func:`~actlab.engine.training.train` once.
        """
        x = np.asarray(x, dtype=self.dtype)
        if (
            x.ndim not in (2, 3)
            or x.shape[-1] != self.sizes[0]
            or (x.ndim == 3 and x.shape[0] not in (1, self.n_seeds))
        ):
            self.check_inputs(x, "MLP.forward/predict: x", allow_empty=True)  # raises, naming what is wrong
        if x.ndim == 2:
            x = x[None]
        inputs, pre, post = [], [], []
        a = x
        for layer in range(self.n_hidden):
            inputs.append(a)
            z = self._dense(a, layer)
            if self.batchnorm == "before":
                z = self.norms[layer].forward(z, train)
            a = self.activations[layer].forward(z)
            pre.append(z)
            post.append(a)
            if self.batchnorm == "after":
                a = self.norms[layer].forward(a, train)
        inputs.append(a)
        out_pre = self._dense(a, self.n_hidden)
        out = self.output_activation.forward(out_pre)
        return ForwardCache(inputs, pre, post, out_pre, out, train)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Eval-mode output, shape ``(S, B, n_out)``, for ``x`` as in :meth:`forward`."""
        return self.forward(x, train=False).out

    def _dense(self, a: np.ndarray, layer: int) -> np.ndarray:
        z = matmul(a, self.W[layer])
        if self.b[layer] is not None:
            z += self.b[layer]
        return z

    def backward(
        self,
        cache: ForwardCache,
        grad_out: np.ndarray,
        l1_activation: float = 0.0,
        skip_weight_grads: Collection[int] = (),
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Backpropagate ``grad_out = dL/d(output)``, shape ``(S, B, n_out)``.

        ``l1_activation`` adds the gradient of ``l1 * sum_l mean_n sum_j |a_nj|`` over hidden
        activations (the penalty's value is :meth:`l1_penalty`).

        ``skip_weight_grads`` lists dense layers whose weight gradient ``a_{l-1}^T delta_l`` is
        not formed: its entry in ``grads`` is None and the caller applies it from
        ``cache.inputs[l]`` and ``deltas[l]`` (see :meth:`actlab.engine.optimizers.SGD.step_factored`).

        Returns
        -------
        grads : list of ndarray or None
            Gradients matching :meth:`parameters` (None for the layers in ``skip_weight_grads``).
        deltas : list of ndarray
            ``dL/du_l`` for every dense layer ``l`` (hidden layers then output), ``(S, B, n_l)``.
        """
        n_layers = self.n_hidden + 1
        dW: list[np.ndarray] = [None] * n_layers
        db: list[np.ndarray] = [None] * n_layers
        deltas: list[np.ndarray] = [None] * n_layers
        delta = self.output_activation.backward(cache.out_pre, cache.out, grad_out)
        batch = grad_out.shape[1]
        for layer in range(n_layers - 1, -1, -1):
            if layer < n_layers - 1:
                grad_a = matmul(delta, self.W[layer + 1].transpose(0, 2, 1))
                if self.batchnorm == "after":
                    grad_a = self.norms[layer].backward(grad_a)
                if l1_activation:
                    grad_a += (l1_activation / batch) * np.sign(cache.post[layer])
                delta = self.activations[layer].backward(cache.pre[layer], cache.post[layer], grad_a)
                if self.batchnorm == "before":
                    delta = self.norms[layer].backward(delta)
            deltas[layer] = delta
            if layer not in skip_weight_grads:
                dW[layer] = matmul(cache.inputs[layer].transpose(0, 2, 1), delta)  # broadcasts a shared batch
            if self.b[layer] is not None:
                db[layer] = batch_sum(delta)
        grads = dW + [g for g in db if g is not None]
        for module in [*self.activations, self.output_activation, *self.norms]:
            grads += list(module.grads.values())
        return grads, deltas

    def l1_penalty(self, cache: ForwardCache) -> np.ndarray:
        """``sum_l mean_n sum_j |a_nj|`` over hidden activations, per seed, shape ``(S,)``."""
        total = np.zeros(self.n_seeds)
        for a in cache.post:
            total += np.abs(a).sum(axis=(1, 2)) / a.shape[1]
        return total

    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and batch-norm running statistic, keyed by name."""
        state = {n: p.copy() for n, p in zip(self.parameter_names(), self.parameters(), strict=True)}
        for i, bn in enumerate(self.norms):
            state[f"bn{i}.running_mean"] = bn.running_mean.copy()
            state[f"bn{i}.running_var"] = bn.running_var.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Overwrite parameters in place from :meth:`get_state`-style arrays (shapes must match)."""
        targets = dict(zip(self.parameter_names(), self.parameters(), strict=True))
        for i, bn in enumerate(self.norms):
            targets[f"bn{i}.running_mean"] = bn.running_mean
            targets[f"bn{i}.running_var"] = bn.running_var
        unknown = set(state) - set(targets)
        if unknown:
            raise KeyError(f"unknown parameters {sorted(unknown)}; this network has {sorted(targets)}")
        for name, value in state.items():
            targets[name][...] = value
