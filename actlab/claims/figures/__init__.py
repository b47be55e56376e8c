"""Each experiment type's figure, drawn by the judge job from the judged claim (:mod:`.base`).

Figures live apart from the experiments, so that editing one re-runs the judge jobs that draw it
and never the training (:mod:`actlab.workflow.code_digest`: a training job's digest covers its
experiment module and what that imports).
"""

from __future__ import annotations

from pathlib import Path

from actlab.claims.experiments.base import Cell, Experiment
from actlab.claims.figures.base import Figure
from actlab.claims.figures.cost import CostFigure
from actlab.claims.figures.sparsity import InitSparsityFigure, L1SparsityFigure, SparsityFamilyFigure
from actlab.claims.figures.symmetry import SymmetryFigure
from actlab.claims.figures.zoo import ZooFigure

#: experiment type -> the figure of its claims
FIGURES: dict[str, type[Figure]] = {
    figure.experiment: figure
    for figure in (CostFigure, InitSparsityFigure, L1SparsityFigure, SparsityFamilyFigure, SymmetryFigure, ZooFigure)
}


def draw(experiment: Experiment, claim: dict, cells: list[Cell], verdict: dict, path: Path) -> str:
    """Compute and draw the figure of a judged claim to ``path``; return its caption."""
    if experiment.name not in FIGURES:  # TRANSITION: removed once every experiment's figure is here
        return experiment.figure(claim, cells, verdict, path)
    return FIGURES[experiment.name].from_verdict(experiment, claim, cells, verdict).plot(path)


__all__ = ["FIGURES", "Figure", "draw"]
