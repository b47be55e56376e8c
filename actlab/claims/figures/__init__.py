"""Each experiment type's figure, drawn by the judge job from the judged claim (:mod:`.base`).

Figures live apart from the experiments, so that editing one re-runs the judge jobs that draw it
and never the training (:mod:`actlab.workflow.code_digest`: a training job's digest covers its
experiment module and what that imports).
"""

from __future__ import annotations

from pathlib import Path

from actlab.claims.experiments.base import Cell, Experiment
from actlab.claims.figures.backprop import BackpropFigure
from actlab.claims.figures.base import Figure
from actlab.claims.figures.born_dead import BornDeadFigure
from actlab.claims.figures.convergence import ConvergenceFigure
from actlab.claims.figures.cost import CostFigure
from actlab.claims.figures.derivatives import DerivativesFigure
from actlab.claims.figures.dying import DyingFigure
from actlab.claims.figures.gradient_flow import GradientFlowFigure
from actlab.claims.figures.init_variance import InitVarianceFigure
from actlab.claims.figures.single_neuron import SingleNeuronFigure
from actlab.claims.figures.sparsity import InitSparsityFigure, L1SparsityFigure, SparsityFamilyFigure
from actlab.claims.figures.symmetry import SymmetryFigure
from actlab.claims.figures.zoo import ZooFigure

#: experiment type -> the figure of its claims
FIGURES: dict[str, type[Figure]] = {
    figure.experiment: figure
    for figure in (
        GradientFlowFigure,
        DerivativesFigure,
        BackpropFigure,
        InitVarianceFigure,
        SymmetryFigure,
        ConvergenceFigure,
        SingleNeuronFigure,
        BornDeadFigure,
        DyingFigure,
        InitSparsityFigure,
        L1SparsityFigure,
        SparsityFamilyFigure,
        ZooFigure,
        CostFigure,
    )
}


def draw(experiment: Experiment, claim: dict, cells: list[Cell], verdict: dict, path: Path) -> str:
    """Compute and draw the figure of a judged claim to ``path``; return its caption."""
    return FIGURES[experiment.name].from_verdict(experiment, claim, cells, verdict).plot(path)


__all__ = ["FIGURES", "Figure", "draw"]
