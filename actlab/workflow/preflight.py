"""Everything the workflow checks before any job runs, with one-line errors that say the fix.

``rules/common.smk`` calls :func:`prepare` once per invocation. It turns the merged Snakemake
config into the claims to run, or raises :class:`PreflightError` with a single line naming the
file, the claim id, the key and what to write instead. Nothing is written before it passes, so
a malformed input can never cost a trained cell.

In order: command-line strings are read as YAML (Snakemake passes ``--config
'tracking={enabled: false}'`` as strings); the config, the sources list and the claims register
are checked against their JSON Schemas (``config/schemas``), which also fill in defaults; the
register's semantics (:mod:`actlab.claims.register`, including the decision rule dry-applied to the
expanded cells); the data sets, the tracking URI and the output directories; and last, once the
register is well formed, the preregistration ledger (:mod:`actlab.claims.ledger`).
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import urllib.parse
from pathlib import Path
from typing import Any

import yaml

from actlab.claims import ledger, register
from actlab.claims import schema as schema_check
from actlab.claims.experiments import EXPERIMENTS
from actlab.engine import datasets

#: MLflow tracking URI schemes the workflow accepts (a bare path is a file store)
TRACKING_SCHEMES = ("sqlite", "file", "http", "https", "postgresql", "mysql", "mssql", "databricks")

#: the file in a results directory that says which profile wrote it (rule mark_results)
PROFILE_MARK = "profile.json"


class PreflightError(ValueError):
    """An input the workflow refuses before any job runs; the message is one line with the fix."""


def prepare(config: dict, schema_dir: str | Path, *, check: bool = True) -> dict[str, dict]:
    """Check and complete ``config`` in place; return claim id -> claim (with its cells) to run.

    Parameters
    ----------
    config : dict
        Snakemake's merged config (config files, then ``--config``); defaults are filled in.
    schema_dir : str or Path
        The directory of ``config.schema.yaml``, ``claims.schema.yaml`` and ``sources.schema.yaml``.
    check : bool
        Run the checks beyond the schemas (the register's semantics, data sets, tracking URI,
        results profile, ledger). A cluster job step passes False: the Snakemake that submitted it
        ran them on the same files, and they were half a second of every cell's start-up. The
        schemas always run, since they fill in the defaults.

    Raises
    ------
    PreflightError
        The first problem found, in one line.
    """
    schema_dir = Path(schema_dir)
    config_schema = read_yaml(schema_dir / "config.schema.yaml", "schema")
    config.update(from_command_line(config, config_schema))
    validate(config, config_schema, "config")
    check_directories(config)

    raw = read_yaml(config["claims"], "claims register")
    sources = read_yaml(config["sources"], "sources list")
    validate(sources, read_yaml(schema_dir / "sources.schema.yaml", "schema"), config["sources"])
    filled = copy.deepcopy(raw)
    validate(filled, read_yaml(schema_dir / "claims.schema.yaml", "schema"), config["claims"])
    try:
        claims = {c["id"]: c for c in register.resolve(filled, sources["sources"], config["profile"], check=check)}
    except register.RegisterError as err:
        raise PreflightError(f"{config['claims']}: {err}") from None

    unknown = sorted(set(config["only"]) - set(claims))
    if unknown:
        raise PreflightError(f"config key 'only': unknown claim ids {unknown}; known: {sorted(claims)}")
    if config["only"]:
        claims = {cid: claims[cid] for cid in config["only"]}
    if not check:
        return claims
    check_datasets(claims, config["datasets"], config["claims"])
    check_tracking_uri(config["tracking"]["uri"])
    check_profile(config["results"], config["profile"])
    # Last, once the register is well formed: the ledger hashes the register as written.
    try:
        ledger.check(raw, config["ledger"])
    except ledger.LedgerError as err:
        raise PreflightError(f"{config['claims']}: {err}") from None
    return claims


def read_yaml(path: str | Path, what: str) -> Any:
    """The YAML document at ``path``; an absent, unreadable, invalid or empty file is a :class:`PreflightError`."""
    try:
        document = register.load_yaml(path)
    except register.RegisterError as err:
        raise PreflightError(f"{what}: {err}") from None
    if document is None:
        raise PreflightError(f"{what} {path} is empty")
    return document


def from_command_line(value: Any, schema: dict) -> Any:
    """``value`` with the strings Snakemake's ``--config`` left unparsed read as YAML where the schema wants no string.

    Snakemake parses ``--config key={a: 1}`` with YAML's base loader, so nested scalars arrive as
    strings (``{"a": "1"}``); a string where ``schema`` allows no string is read again with
    :func:`yaml.safe_load` (if that fails, the string stays and the schema names it).
    """
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(value, str) and types and "string" not in types:
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            k: from_command_line(v, props.get(k, extra if isinstance(extra, dict) else {})) for k, v in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [from_command_line(v, schema["items"]) for v in value]
    return value


def validate(instance: Any, schema: dict, where: str) -> None:
    """Check ``instance`` against ``schema`` (filling in defaults); raise the first problem in one line.

    The line names ``where`` (a file or "config"), then :func:`actlab.claims.schema.first_problem`'s key
    path, problem and fix.
    """
    problem = schema_check.first_problem(instance, schema, fill_defaults=True)
    if problem:
        raise PreflightError(f"{where}: {problem}")


def check_directories(config: dict) -> None:
    """``results`` and ``reports`` are non-empty relative-or-absolute paths that are not the file-system root."""
    for key in ("results", "reports"):
        value = str(config[key]).strip().rstrip("/")
        if value in ("", "."):
            raise PreflightError(
                f"config key {key!r}: {config[key]!r} is not a usable directory; give a directory of its own "
                f"(default {key})"
            )
        config[key] = value
    if Path(config["reports"]).resolve() == Path(config["results"]).resolve():
        raise PreflightError("config keys 'results' and 'reports' must be different directories")


def check_datasets(claims: dict[str, dict], specs: dict[str, dict], register_path: str) -> None:
    """Every data set a cell uses is in the config, of a known kind, with arguments its generator takes."""
    for name, spec in specs.items():
        kind = spec["kind"]
        if kind not in datasets.GENERATORS:
            close = difflib.get_close_matches(kind, datasets.GENERATORS, n=1)
            raise PreflightError(
                f"config datasets.{name}.kind: unknown kind {kind!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; valid kinds: {', '.join(sorted(datasets.GENERATORS))}"
            )
        arguments = {k: v for k, v in spec.items() if k not in ("kind", "test_fraction")}
        try:
            inspect.signature(datasets.GENERATORS[kind]).bind(None, **arguments)
        except TypeError as err:
            raise PreflightError(f"config datasets.{name}: {err} (kind {kind!r})") from None
    for claim in claims.values():
        experiment = EXPERIMENTS[claim["experiment"]]
        for cell_id, cell in claim["cells"].items():
            for name in experiment.datasets(cell["params"]):
                if name not in specs:
                    raise PreflightError(
                        f"{register_path}: claim {claim['id']!r} (cell {cell_id}) uses dataset {name!r}, which is "
                        f"not in the config's 'datasets' ({', '.join(sorted(specs))})"
                    )


def check_tracking_uri(uri: str | None) -> None:
    """A tracking URI (if given) has a scheme MLflow stores accept, or is a plain path."""
    if not uri:
        return
    scheme = urllib.parse.urlsplit(uri).scheme.split("+", 1)[0]
    if scheme and scheme not in TRACKING_SCHEMES:
        raise PreflightError(
            f"config key tracking.uri: scheme {scheme!r} is not a tracking store MLflow accepts; "
            f"use one of {', '.join(s + '://' for s in TRACKING_SCHEMES)} (e.g. sqlite:///mlflow.db or "
            "http://host:5000)"
        )


def profile_mark(profile: str) -> str:
    """The content of a results directory's :data:`PROFILE_MARK` for ``profile``."""
    return json.dumps({"profile": profile})


def check_profile(results: str, profile: str) -> None:
    """Refuse to write one profile's cells into a results directory another profile wrote.

    A quick run into the full profile's ``results/`` would replace its cells with tiny ones.
    """
    mark = Path(results) / PROFILE_MARK
    if not mark.exists():
        return
    try:
        written = json.loads(mark.read_text())["profile"]
    except (ValueError, KeyError, TypeError):
        return  # unreadable: rule mark_results writes it again
    if written != profile:
        own = "--configfile config/quick.yaml" if profile == "quick" else "the default config/config.yaml"
        raise PreflightError(
            f"{results}/ holds results of the {written!r} profile and this run is the {profile!r} profile; "
            f"it would overwrite them. Run the {profile} profile with {own}, or set config key 'results' "
            "to another directory"
        )
