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
import json
import os
from functools import cache
from pathlib import Path

PACKAGE = "actlab"

#: the JSON file that keeps each module's digest and imports between processes (see :func:`use_cache`)
_cache_file: Path | None = None
_disk: dict[str, list] = {}  # "path:size:mtime_ns" -> [digest, imports]
_unsaved = False


def use_cache(path: str | Path | None) -> None:
    """Keep module digests in the JSON file ``path`` (None: in this process only).

    Each entry is keyed by the module file's path, size and modification time, so an edited file
    is parsed again. The workflow sets it (``.snakemake/actlab-code-digests.json``): every
    Snakemake process, a cluster job step included, then reads the digests of unchanged modules
    instead of parsing them (half a second per job step).
    """
    global _cache_file, _disk
    _cache_file = None if path is None else Path(path)
    try:
        _disk = json.loads(_cache_file.read_text()) if _cache_file else {}
    except (OSError, ValueError):
        _disk = {}  # absent or unreadable: rebuilt
    for cached in (_origin, _module, _digest):
        cached.cache_clear()


@cache
def _origin(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no module named {module!r}")
    return Path(spec.origin)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _imports_in(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == PACKAGE:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}"))
    return found


@cache
def _module(module: str) -> tuple[str, frozenset[str]]:
    """SHA-256 of ``module``'s :func:`normalized` code and the ``actlab`` modules it imports."""
    path = _origin(module)
    stat = path.stat()
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    if key not in _disk:
        tree = ast.parse(path.read_text(), filename=str(path))
        imported = sorted(_imports_in(tree))  # before _without_docstrings edits the tree
        _disk[key] = [hashlib.sha256(_without_docstrings(tree).encode()).hexdigest(), imported]
        global _unsaved
        _unsaved = True
    sha, imported = _disk[key]
    return sha, frozenset(imported)


def _save() -> None:
    """Write the cache file, without the entries of files that changed since (atomic replace)."""
    global _unsaved
    if _cache_file is None or not _unsaved:
        return
    current = {}
    for key, entry in _disk.items():
        path, size, mtime = key.rsplit(":", 2)
        try:
            stat = os.stat(path)
        except OSError:
            continue
        if (str(stat.st_size), str(stat.st_mtime_ns)) == (size, mtime):
            current[key] = entry
    try:
        _cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = _cache_file.with_name(f"{_cache_file.name}.{os.getpid()}")
        partial.write_text(json.dumps(current, sort_keys=True))
        os.replace(partial, _cache_file)  # a concurrent reader sees the old file or the new one
        _unsaved = False
    except OSError:
        pass  # a read-only working directory: every process then parses the modules itself


def imports(module: str) -> frozenset[str]:
    """The ``actlab`` modules that ``module`` imports (anywhere in its body, function scope included)."""
    return _module(module)[1]


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
    return _without_docstrings(ast.parse(source))


def _without_docstrings(tree: ast.Module) -> str:
    """:func:`ast.dump` of ``tree`` after removing its docstrings (in place)."""
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


def digest(modules: list[str], files: list[str] = ()) -> str:
    """SHA-256 (16 hex digits) of the code of ``modules``' closure, plus the raw bytes of ``files``.

    Parameters
    ----------
    modules : list of str
        Dotted module names, e.g. ``["actlab.claims.experiments.dying"]``.
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
        h.update(f"{name}\0{_module(name)[0]}\0".encode())
    package_dir = _origin(PACKAGE).parent
    for name in files:
        h.update(name.encode() + b"\0" + (package_dir / name).read_bytes())
    _save()
    return h.hexdigest()[:16]
