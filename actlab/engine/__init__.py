"""The engine: a NumPy library of multilayer perceptrons, usable alone.

It trains MLPs as ensembles of independent seeds in one set of arrays, with the activation,
initializer, loss and optimizer zoo the claims need, the data sets they train on, and probes of
what happens inside (gradient norms, dead units, sparsity, divergence). Nothing here imports the
rest of actlab.
"""

from actlab.engine.activations import ACTIVATIONS, Activation, get_activation
from actlab.engine.initializers import INITIALIZERS, Initializer, get_initializer
from actlab.engine.losses import LOSSES, Loss, get_loss
from actlab.engine.network import MLP
from actlab.engine.optimizers import OPTIMIZERS, Optimizer, get_optimizer
from actlab.engine.probes import probe
from actlab.engine.seeding import Seeds
from actlab.engine.training import ArrayData, History, StreamData, train

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "LOSSES",
    "MLP",
    "OPTIMIZERS",
    "Activation",
    "ArrayData",
    "History",
    "Initializer",
    "Loss",
    "Optimizer",
    "Seeds",
    "StreamData",
    "get_activation",
    "get_initializer",
    "get_loss",
    "get_optimizer",
    "probe",
    "train",
]
