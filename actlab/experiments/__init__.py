"""Experiment types, keyed by the name a claim's ``experiment`` field uses."""

from actlab.experiments.backprop import BackpropCheck
from actlab.experiments.base import Cell, CellResult, Experiment
from actlab.experiments.born_dead import BornDead
from actlab.experiments.convergence import ConvergenceSpeed
from actlab.experiments.cost import ActivationCost
from actlab.experiments.derivatives import DerivativeBounds
from actlab.experiments.dying import DyingUnits
from actlab.experiments.gradient_flow import GradientFlow
from actlab.experiments.init_variance import InitVariance
from actlab.experiments.single_neuron import SingleNeuron
from actlab.experiments.sparsity import InitSparsity, L1Sparsity, SparsityFamily
from actlab.experiments.symmetry import SymmetricInit
from actlab.experiments.zoo import ActivationZoo

EXPERIMENTS: dict[str, Experiment] = {
    exp.name: exp
    for exp in (
        GradientFlow(),
        DerivativeBounds(),
        BackpropCheck(),
        InitVariance(),
        SymmetricInit(),
        ConvergenceSpeed(),
        SingleNeuron(),
        BornDead(),
        DyingUnits(),
        InitSparsity(),
        L1Sparsity(),
        SparsityFamily(),
        ActivationZoo(),
        ActivationCost(),
    )
}

__all__ = ["EXPERIMENTS", "Cell", "CellResult", "Experiment"]
