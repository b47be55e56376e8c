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
import math
import re
from pathlib import Path
from typing import Any

import yaml

from actlab.claims import judging, schema
from actlab.claims.experiments import EXPERIMENTS, Cell

CELL_ID = re.compile(r"^[A-Za-z0-9.+\-_]+$")
MAX_CELL_ID = 150


class RegisterError(ValueError):
    """A malformed claims register; the message names the claim and the key."""


def load_yaml(path: str | Path) -> Any:
    try:
        with open(path) as f:
            # libyaml's loader where PyYAML has it: the same documents, 5-10x faster (a workflow
            # parse reads the register once per job)
            return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        raise RegisterError(f"file not found: {path}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or " ".join(str(err).split())
        raise RegisterError(f"{path} is not valid YAML: {problem}{where}") from None


def profile_view(claim: dict, profile: str) -> dict:
    """The claim as run under ``profile``: "full" as written, "quick" with its ``quick`` overrides.

    ``quick.seeds`` replaces ``seeds``, ``quick.params`` is merged into ``params`` and each axis of
    ``quick.grid`` replaces that axis of ``grid``; a value there that is the label of a full-grid
    value stands for that value (``[sigmoid, sigmoid-n01-wide]`` picks two entries, mappings
    included). The view records its ``profile``.
    """
    view = copy.deepcopy(claim)
    view["profile"] = profile
    overrides = view.pop("quick", {}) or {}
    if profile == "quick":
        view["seeds"] = overrides.get("seeds", view["seeds"])
        view["params"] = {**view.get("params", {}), **overrides.get("params", {})}
        grid = view.get("grid", {}) or {}
        for axis, values in (overrides.get("grid") or {}).items():
            by_label = {slug(v): v for v in grid.get(axis, [])}
            grid[axis] = [by_label.get(slug(v), v) for v in values]
        view["grid"] = grid
    return view


def slug(value: Any) -> str:
    """How a grid value appears in a cell id: a mapping by its ``label``, a scalar as written."""
    if isinstance(value, dict):
        return str(value["label"])
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def expand_cells(claim: dict) -> dict[str, dict]:
    """Cell id -> ``{"setting": axis -> label, "params": merged params, "stream": seed stream, "seeds": n}``.

    One entry per grid point. A scalar axis value sets ``params[axis]``; a mapping value merges
    its keys (but ``label``) into the params. ``setting`` holds each axis's label, which the
    decision rule refers to. The id is ``axis-label`` pairs joined by ``_`` (``"all"`` for an empty
    grid). ``stream`` names the random streams the cell's seeds draw from: the cell's own id, or
    ``"paired"`` for every cell of a claim with ``paired_seeds: true``, whose seed ``k`` then starts
    from the same draws (initial weights of the same shapes, data order) in every cell.
    ``seeds`` is how many of the claim's seeds the cell trains: all of them for a cell the judged or
    control filter selects (:func:`actlab.claims.judging.decides`), else the first
    ``decision.context.seeds`` when the rule gives that number.
    """
    grid = claim.get("grid", {}) or {}
    decision, context_seeds = claim.get("decision") or {}, judging.context_seeds(claim)
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
        cells[cell_id] = {
            "setting": setting,
            "params": params,
            "stream": "paired" if claim.get("paired_seeds") else cell_id,
            "seeds": claim["seeds"] if judging.decides(setting, decision) else context_seeds,
        }
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
        if "quote" in raw and raw["quote"]["source"] not in raw["sources"]:
            raise RegisterError(f"{where}.quote.source: {raw['quote']['source']!r} is not among the claim's sources")
        if raw["experiment"] not in EXPERIMENTS:
            raise RegisterError(
                f"{where}.experiment: unknown experiment type {raw['experiment']!r}; "
                f"valid types: {', '.join(sorted(EXPERIMENTS))}"
            )
        for prof in ("full", "quick"):
            _check_claim(profile_view(raw, prof), f"{where} [{prof} profile]", prof)
    _check_replications(register["claims"])


#: the parts of a decision rule a replication must share with the claim it replicates (its
#: conditions may be a subset: another trainer may lack some activations)
REPLICATED_RULE = ("metric", "compare", "threshold", "split_by", "diverged")


def _check_replications(claims: list[dict]) -> None:
    """A ``replicates`` entry names another claim and judges it by the same rule."""
    by_id = {c["id"]: c for c in claims}
    for index, raw in enumerate(claims):
        target = raw.get("replicates")
        if target is None:
            continue
        where = f"claims[{index}] (id {raw['id']!r}).replicates"
        original = by_id.get(target)
        if original is None or original.get("replicates") or original.get("kind", "claim") != "claim":
            raise RegisterError(f"{where}: {target!r} is not a claim of the register that is not itself a replication")
        mine, theirs = raw["decision"], original["decision"]
        for key in REPLICATED_RULE:
            if mine.get(key) != theirs.get(key):
                raise RegisterError(
                    f"{where}: decision.{key} differs from {target!r}'s; a replication judges by the same rule"
                )
        for key in ("over", "baseline", "op"):
            if (mine.get("contrast") or {}).get(key) != (theirs.get("contrast") or {}).get(key):
                raise RegisterError(f"{where}: decision.contrast.{key} differs from {target!r}'s")


def _check_claim(claim: dict, where: str, profile: str) -> None:
    experiment = EXPERIMENTS[claim["experiment"]]
    for axis, values in (claim.get("grid") or {}).items():
        labels = [slug(v) for v in values]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise RegisterError(
                f'{where}.grid.{axis}: the label(s) {repeated} appear more than once (0.5, 0.50 and "0.5" are '
                "one label); two settings with one label would be one cell and one of them would never run"
            )
    cells = expand_cells(claim)
    for cell_id, cell in cells.items():
        params = cell["params"]
        if not CELL_ID.match(cell_id) or len(cell_id) > MAX_CELL_ID:
            raise RegisterError(
                f"{where}.grid: cell id {cell_id!r} must be at most {MAX_CELL_ID} characters of [A-Za-z0-9.+-_] "
                "(it is a file name); shorten the labels"
            )
        # a key the experiment does not declare is refused (a typo would otherwise be ignored)
        problem = schema.first_problem(
            params, {"additionalProperties": False, **experiment.params_schema}, root="params"
        )
        if problem:
            raise RegisterError(f"{where}.{problem} (cell {cell_id})")
        try:
            experiment.check(params)
        except ValueError as err:
            raise RegisterError(f"{where}.params.{err} (cell {cell_id})") from None
    _check_decision(claim, experiment, where, profile)


def _check_decision(claim: dict, experiment, where: str, profile: str) -> None:
    decision = claim["decision"]
    _check_rule(claim, experiment, f"{where}.decision", profile)
    grid = claim.get("grid", {}) or {}
    labels = {axis: [slug(v) for v in values] for axis, values in grid.items()}
    for k, part in enumerate(judging.parts(decision)):
        if part["metric"] not in experiment.metrics:
            key = f"also[{k - 1}].metric" if k else "metric"
            raise RegisterError(
                f"{where}.decision.{key}: {part['metric']!r} is not a metric of {experiment.name}; "
                f"valid metrics: {', '.join(sorted(experiment.metrics))}"
            )
    filters = [
        decision.get("where") or {},
        *((decision.get(k) or {}).get("where") or {} for k in ("control", "context")),
    ]
    filters = [f if isinstance(f, list) else [f] for f in filters]
    keys = [
        *(k for f in filters for one in f for k in one),
        *(decision.get("headline") or {}),
        *(decision.get("split_by") or []),
    ]
    for part in ("tune", "contrast"):
        if decision.get(part):
            keys.append(decision[part]["over"])
    for key in keys:
        if key not in grid:
            raise RegisterError(f"{where}.decision: {key!r} is not a grid axis; axes: {', '.join(grid) or 'none'}")
    for name, filt in zip(("where", "control.where", "context.where"), filters, strict=True):
        for key, wanted in (item for one in filt for item in one.items()):
            for value in wanted if isinstance(wanted, list) else [wanted]:
                if profile == "full" and str(value) not in labels[key]:  # quick grids are subsets
                    raise RegisterError(f"{where}.decision.{name}.{key}: {value!r} is not among {labels[key]}")
    contrast = decision.get("contrast")
    if contrast:
        axis = contrast["over"]
        treatments = contrast["treatment"] if isinstance(contrast["treatment"], list) else [contrast["treatment"]]
        for value in [*treatments, contrast["baseline"]]:
            if profile == "full" and str(value) not in labels[axis]:
                raise RegisterError(f"{where}.decision.contrast: {value!r} is not among {axis} values {labels[axis]}")
    board = claim.get("leaderboard")
    if board:
        for key in [board["over"], *(board.get("by") or [])]:
            if key not in grid:
                raise RegisterError(f"{where}.leaderboard: {key!r} is not a grid axis; axes: {', '.join(grid)}")
        if not claim.get("paired_seeds"):
            raise RegisterError(f"{where}.leaderboard: ranks are taken over paired seeds; set paired_seeds: true")
        rest = [a for a in grid if a not in (board["over"], *(board.get("by") or []))]
        if rest:
            raise RegisterError(
                f"{where}.leaderboard: axes {rest} would give several cells per competitor; add them to 'by'"
            )
    cells = [Cell(cid, cell["setting"], cell["params"]) for cid, cell in expand_cells(claim).items()]
    for part in judging.parts(decision):
        for cell in cells:
            try:
                experiment.check_metric(part["metric"], cell.params)
            except ValueError as err:
                raise RegisterError(f"{where}.params.{err} (cell {cell.id})") from None
    try:
        planned = judging.plan(claim, cells)
        if claim.get("kind", "claim") == "claim":
            judging.headline(claim, planned)
    except judging.DecisionError as err:
        raise RegisterError(f"{where}.{err}") from None


def _check_rule(claim: dict, experiment, where: str, profile: str) -> None:
    """What the schema cannot say about scope, controls, divergence, thresholds and seeds."""
    decision = claim["decision"]
    kind = claim.get("kind", "claim")
    for k, part in enumerate(judging.parts(decision)):
        at = f"{where}.also[{k - 1}]" if k else where
        threshold, compare = part["threshold"], part["compare"]
        band = threshold if isinstance(threshold, list) else [threshold]
        if not all(math.isfinite(t) for t in band):
            raise RegisterError(f"{at}.threshold: must be finite, got {threshold!r}")
        if (compare == "within") != isinstance(threshold, list):
            raise RegisterError(f"{at}.threshold: compare 'within' takes a band [low, high], '<' and '>' a number")
        if compare == "within" and not band[0] < band[1]:
            raise RegisterError(f"{at}.threshold: the band {threshold} must have low < high")
    compare = decision["compare"]
    if kind == "check":
        for key in ("no_control", "diverged", "tune", "contrast"):
            if key in decision:
                raise RegisterError(f"{where}.{key}: a check is a deterministic identity and takes no {key}")
        return
    if ("control" in decision) == ("no_control" in decision):
        raise RegisterError(
            f"{where}: an empirical claim needs a negative control (control: {{where: ...}}, cells where the "
            "rule must come out refuted) or no_control: the reason it cannot have one"
        )
    rule = decision.get("diverged")
    if rule is None:
        raise RegisterError(
            f"{where}.diverged: say how a diverged run counts (count: value, worst or exclude with a reason)"
        )
    if rule["count"] == "value" and "value" not in rule:
        raise RegisterError(f"{where}.diverged.value: count 'value' needs the value a diverged run counts as")
    if rule["count"] == "value" and decision["metric"] in experiment.binary_metrics and rule["value"] not in (0, 1):
        raise RegisterError(f"{where}.diverged.value: {decision['metric']} is 0/1, so a diverged run counts as 0 or 1")
    if rule["count"] in ("exclude", "keep") and "reason" not in rule:
        raise RegisterError(f"{where}.diverged.reason: count '{rule['count']}' needs the reason why that is fair")
    if rule["count"] == "worst" and compare == "within":
        raise RegisterError(f"{where}.diverged.count: 'worst' has no meaning for compare 'within'")
    min_n = decision.get("min_n", judging.DEFAULT_MIN_N)
    tuned = (decision.get("tune") or {}).get("seeds") or 0  # seeds spent on tuning, left out of the comparison
    compared = claim["seeds"] - tuned
    if profile == "full" and compared < min_n:
        raise RegisterError(
            f"{where}.min_n: {compared} compared seeds can never reach the minimum of {min_n} usable runs; raise seeds"
        )
    context_seeds = (decision.get("context") or {}).get("seeds")
    if context_seeds is not None and profile == "full":
        if context_seeds >= claim["seeds"]:
            raise RegisterError(
                f"{where}.context.seeds: {context_seeds} is not below the claim's {claim['seeds']} seeds; drop it"
            )
        if context_seeds - tuned < min_n:
            raise RegisterError(
                f"{where}.context.seeds: {context_seeds} seeds leave the context conditions below the minimum of "
                f"{min_n} usable runs; raise it"
            )


def resolve(register: dict, sources: dict, profile: str, check: bool = True) -> list[dict]:
    """Check a schema-valid register (unless ``check`` is False) and return its claims as run under ``profile``.

    Each returned claim carries ``cells`` (from :func:`expand_cells`) and ``source_files``.
    Raises :class:`RegisterError` naming the claim and key of the first problem.
    """
    if check:
        check_register(register, sources, profile)
    claims = []
    for raw in register["claims"]:
        view = profile_view(raw, profile)
        view["cells"] = expand_cells(view)
        view["source_files"] = [sources[s]["file"] for s in view["sources"]]
        if "quote" in view:
            view["quote"] = {**view["quote"], "file": sources[view["quote"]["source"]]["file"]}
        claims.append(view)
    return claims
