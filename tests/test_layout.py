"""The package's parts import in one direction: engine <- claims <- workflow <- tracking (actlab/__init__.py)."""

from __future__ import annotations

import pkgutil

import actlab
import actlab.claims.experiments
import actlab.engine
from actlab.workflow import code_digest

LAYERS = ["engine", "claims", "workflow", "tracking"]


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_each_part_imports_only_the_parts_below_it():
    modules = [m.name for m in pkgutil.walk_packages(actlab.__path__, "actlab.")]
    assert {_part(m) for m in modules} <= set(LAYERS), "a module outside the four parts"
    wrong = []
    for module in modules:
        layer = LAYERS.index(_part(module))
        for imported in code_digest.imports(module):
            part = _part(imported)
            if part and LAYERS.index(part) > layer:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, wrong


def test_the_engine_is_usable_alone():
    used = code_digest.closure([f"actlab.engine.{m.name}" for m in pkgutil.iter_modules(actlab.engine.__path__)])
    assert {_part(m) for m in used} <= {"", "engine"}, used


def test_training_never_loads_figure_code():
    """A training job's code digest covers its experiment module and what that imports
    (rules/common.smk, ``experiment_code``): no figure or plotting module may be among them, so
    that editing a figure re-runs the judge jobs only."""
    experiments = [
        f"actlab.claims.experiments.{m.name}" for m in pkgutil.iter_modules(actlab.claims.experiments.__path__)
    ]
    used = code_digest.closure(experiments)
    assert not [m for m in used if m.startswith(("actlab.claims.figures", "actlab.claims.plotting"))], used
