"""The claims register: loading, semantic validation and expansion of each claim into cells.

The register (``config/claims.yaml``) is first checked against ``config/schemas/claims.schema.yaml``
(types, required keys, ranges); :func:`check_register` then checks what a schema cannot: unique
ids, known sources and experiment types, parameters the experiment accepts (activation and
initializer names resolve), and a decision rule that refers to existing metrics and grid keys.
Every error names the offending claim and key.
"""

from __future__ import annotations

import copy
import itertools
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from actlab.experiments import EXPERIMENTS

CELL_ID = re.compile(r"^[A-Za-z0-9.+\-_]+$")


class RegisterError(ValueError):
    """A malformed claims register; the message names the claim and the key."""


def load_yaml(path: str | Path) -> Any:
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except FileNotFoundError:
        raise RegisterError(f"file not found: {path}") from None
    except yaml.YAMLError as err:
        raise RegisterError(f"{path} is not valid YAML: {err}") from None


def profile_view(claim: dict, profile: str) -> dict:
    """The claim as run under ``profile``: "full" as written, "quick" with its ``quick`` overrides.

    ``quick.seeds`` replaces ``seeds``, ``quick.params`` is merged into ``params`` and each axis of
    ``quick.grid`` replaces that axis of ``grid``.
    """
    view = copy.deepcopy(claim)
    overrides = view.pop("quick", {}) or {}
    if profile == "quick":
        view["seeds"] = overrides.get("seeds", view["seeds"])
        view["params"] = {**view.get("params", {}), **overrides.get("params", {})}
        view["grid"] = {**view.get("grid", {}), **overrides.get("grid", {})}
    return view


def slug(value: Any) -> str:
    """How a grid value appears in a cell id: a mapping by its ``label``, a scalar as written."""
    if isinstance(value, dict):
        return str(value["label"])
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def expand_cells(claim: dict) -> dict[str, dict]:
    """Cell id -> ``{"setting": axis -> label, "params": merged params}`` for every grid point.

    A scalar axis value sets ``params[axis]``; a mapping value merges its keys (but ``label``)
    into the params. ``setting`` holds each axis's label, which the decision rule refers to.
    The id is ``axis-label`` pairs joined by ``_`` (``"all"`` for an empty grid).
    """
    grid = claim.get("grid", {}) or {}
    cells = {}
    for point in itertools.product(*grid.values()):
        params = copy.deepcopy(claim.get("params", {}) or {})
        setting = {}
        for axis, value in zip(grid, point, strict=True):
            setting[axis] = slug(value)
            if isinstance(value, dict):
                params.update({k: copy.deepcopy(v) for k, v in value.items() if k != "label"})
            else:
                params[axis] = value
        cell_id = "_".join(f"{axis}-{label}" for axis, label in setting.items()) or "all"
        cells[cell_id] = {"setting": setting, "params": params}
    return cells


def check_register(register: dict, sources: dict, profile: str = "full") -> None:
    """Semantic checks of a schema-valid register; raises :class:`RegisterError`."""
    seen = set()
    for index, raw in enumerate(register["claims"]):
        where = f"claims[{index}] (id {raw.get('id')!r})"
        if raw["id"] in seen:
            raise RegisterError(f"{where}.id: duplicate claim id {raw['id']!r}")
        seen.add(raw["id"])
        for source in raw["sources"]:
            if source not in sources:
                raise RegisterError(f"{where}.sources: unknown source {source!r}; known: {', '.join(sorted(sources))}")
        if raw["experiment"] not in EXPERIMENTS:
            raise RegisterError(
                f"{where}.experiment: unknown experiment type {raw['experiment']!r}; "
                f"valid types: {', '.join(sorted(EXPERIMENTS))}"
            )
        for prof in ("full", "quick"):
            _check_claim(profile_view(raw, prof), f"{where} [{prof} profile]")


def _check_claim(claim: dict, where: str) -> None:
    experiment = EXPERIMENTS[claim["experiment"]]
    cells = expand_cells(claim)
    for cell_id, cell in cells.items():
        params = cell["params"]
        if not CELL_ID.match(cell_id):
            raise RegisterError(f"{where}.grid: cell id {cell_id!r} has characters outside [A-Za-z0-9.+-_]")
        try:
            jsonschema.validate(params, experiment.params_schema)
        except jsonschema.ValidationError as err:
            key = ".".join(str(p) for p in err.absolute_path) or "params"
            raise RegisterError(f"{where}.params.{key} (cell {cell_id}): {err.message}") from None
        try:
            experiment.check(params)
        except ValueError as err:
            raise RegisterError(f"{where}.params.{err} (cell {cell_id})") from None
    _check_decision(claim, experiment, where)


def _check_decision(claim: dict, experiment, where: str) -> None:
    decision = claim["decision"]
    grid = claim.get("grid", {}) or {}
    labels = {axis: [slug(v) for v in values] for axis, values in grid.items()}
    if decision["metric"] not in experiment.metrics:
        raise RegisterError(
            f"{where}.decision.metric: {decision['metric']!r} is not a metric of {experiment.name}; "
            f"valid metrics: {', '.join(sorted(experiment.metrics))}"
        )
    keys = [*(decision.get("where") or {}), *(decision.get("headline") or {}), *(decision.get("split_by") or [])]
    for part in ("tune", "contrast"):
        if decision.get(part):
            keys.append(decision[part]["over"])
    for key in keys:
        if key not in grid:
            raise RegisterError(f"{where}.decision: {key!r} is not a grid axis; axes: {', '.join(grid) or 'none'}")
    for key, wanted in (decision.get("where") or {}).items():
        for value in wanted if isinstance(wanted, list) else [wanted]:
            if str(value) not in labels[key]:
                raise RegisterError(f"{where}.decision.where.{key}: {value!r} is not among {labels[key]}")
    contrast = decision.get("contrast")
    if contrast:
        axis = contrast["over"]
        treatments = contrast["treatment"] if isinstance(contrast["treatment"], list) else [contrast["treatment"]]
        for value in [*treatments, contrast["baseline"]]:
            if str(value) not in labels[axis]:
                raise RegisterError(f"{where}.decision.contrast: {value!r} is not among {axis} values {labels[axis]}")


def resolve(register: dict, sources: dict, profile: str) -> list[dict]:
    """Check a schema-valid register and return its claims as run under ``profile``.

    Each returned claim carries ``cells`` (from :func:`expand_cells`) and ``source_files``.
    Raises :class:`RegisterError` naming the claim and key of the first problem.
    """
    check_register(register, sources, profile)
    claims = []
    for raw in register["claims"]:
        view = profile_view(raw, profile)
        view["cells"] = expand_cells(view)
        view["source_files"] = [sources[s]["file"] for s in view["sources"]]
        claims.append(view)
    return claims
