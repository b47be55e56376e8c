"""Experiment types, keyed by the name a claim's ``experiment`` field uses."""

from actlab.claims.experiments.backprop import BackpropCheck
from actlab.claims.experiments.base import Cell, CellResult, Experiment
from actlab.claims.experiments.born_dead import BornDead
from actlab.claims.experiments.convergence import ConvergenceSpeed
from actlab.claims.experiments.cost import ActivationCost
from actlab.claims.experiments.derivatives import DerivativeBounds
from actlab.claims.experiments.dying import DyingUnits
from actlab.claims.experiments.gradient_flow import GradientFlow
from actlab.claims.experiments.init_variance import InitVariance
from actlab.claims.experiments.single_neuron import SingleNeuron
from actlab.claims.experiments.sparsity import InitSparsity, L1Sparsity, SparsityFamily
from actlab.claims.experiments.symmetry import SymmetricInit
from actlab.claims.experiments.zoo import ActivationZoo

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
