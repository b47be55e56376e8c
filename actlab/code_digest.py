"""A digest of the package code a rule runs, so that editing that code re-runs the rule.

Snakemake re-runs a job when its script changes, not when a module the script imports does: an
edited metric would leave every verdict stale, silently. Each rule therefore carries, among its
``params``, :func:`digest` of the ``actlab`` modules it runs - the modules named and every
``actlab`` module they import, transitively - and Snakemake's ``params`` re-run trigger does the
rest. The digest is taken over each module's syntax tree without docstrings, so comments,
docstrings and formatting do not re-run anything; any change to what the code does, does.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

PACKAGE = "actlab"


@cache
def _source(module: str) -> tuple[Path, ast.Module]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module named {module!r}")
    path = Path(spec.origin)
    return path, ast.parse(path.read_text(), filename=str(path))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@cache
def imports(module: str) -> frozenset[str]:
    """The ``actlab`` modules that ``module`` imports (anywhere in its body, function scope included)."""
    found = set()
    for node in ast.walk(_source(module)[1]):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}"))
    return frozenset(found)


def closure(modules: list[str]) -> list[str]:
    """``modules`` and every ``actlab`` module they import, transitively, sorted."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(imports(name) - seen)
    return sorted(seen)


def normalized(source: str) -> str:
    """What the code does, as text: the syntax tree of ``source`` without docstrings (and comments)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


@cache
def _normalized_module(module: str) -> bytes:
    # cached: the workflow's rules share most modules (a parse of the Snakefile took 4 s without)
    return normalized(_source(module)[0].read_text()).encode()


def digest(modules: list[str], files: list[str] = ()) -> str:
    """SHA-256 (16 hex digits) of the code of ``modules``' closure, plus the raw bytes of ``files``.

    Parameters
    ----------
    modules : list of str
        Dotted module names, e.g. ``["actlab.experiments.dying"]``.
    files : list of str
        Non-Python files the rule reads (templates), relative to the package's directory, hashed
        as they are.
    """
    return _digest(tuple(modules), tuple(files))


@cache
def _digest(modules: tuple[str, ...], files: tuple[str, ...]) -> str:
    # cached: the workflow asks once per job, and a process sees one version of the code
    h = hashlib.sha256()
    for name in closure(list(modules)):
        h.update(name.encode() + b"\0" + _normalized_module(name) + b"\0")
    package_dir = _source(PACKAGE)[0].parent
    for name in files:
        h.update(name.encode() + b"\0" + (package_dir / name).read_bytes())
    return h.hexdigest()[:16]
