"""actlab: a NumPy laboratory for claims about activation functions and initializations.

The engine trains multilayer perceptrons as ensembles of independent seeds in one set of arrays,
with the activation, initializer and optimizer zoo the claims need, and instruments them
(gradient norms, dead units, sparsity, divergence).
"""

from actlab.activations import ACTIVATIONS, Activation, get_activation
from actlab.initializers import INITIALIZERS, Initializer, get_initializer
from actlab.losses import LOSSES, Loss, get_loss
from actlab.network import MLP
from actlab.optimizers import OPTIMIZERS, Optimizer, get_optimizer
from actlab.probes import probe
from actlab.seeding import Seeds
from actlab.training import ArrayData, History, StreamData, train

__version__ = "0.1.0"

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
