"""Every malformed input is refused before any job runs, in one line with the file, claim, key and fix.

These call :func:`actlab.workflow.preflight.prepare` directly, as ``rules/common.smk`` does; the end-to-end
tests (``test_config_validation.py``) check that Snakemake shows the same line and writes nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from actlab.workflow import preflight

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "config/schemas"
REGISTER = yaml.safe_load((REPO / "config/claims.yaml").read_text())
SOURCES = yaml.safe_load((REPO / "config/sources.yaml").read_text())


def _config(tmp_path: Path, register=REGISTER, sources=SOURCES, **overrides) -> dict:
    """The full profile's config with the register and sources written to ``tmp_path``."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    for name, document in (("claims", register), ("sources", sources)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
        config[name] = str(path)
    config.update(ledger=str(REPO / "config/ledger.yaml"), results=str(tmp_path / "results"))
    config.update(overrides)
    return config


def _claim(register: dict, claim_id: str) -> dict:
    return next(c for c in register["claims"] if c["id"] == claim_id)


def _rejected(config: dict, *needles: str) -> str:
    with pytest.raises(preflight.PreflightError) as info:
        preflight.prepare(config, SCHEMAS)
    message = str(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def test_the_repository_config_passes_under_both_profiles(tmp_path):
    claims = preflight.prepare(_config(tmp_path), SCHEMAS)
    assert set(claims) == {c["id"] for c in REGISTER["claims"]}
    quick = _config(tmp_path, profile="quick", results=str(tmp_path / "results-quick"))
    assert set(preflight.prepare(quick, SCHEMAS)) == set(claims)


def test_a_cluster_job_step_sees_the_same_claims_and_defaults_without_the_checks(tmp_path):
    """``check=False`` (a job step, whose submitter checked) skips the checks, not the defaults."""
    for profile in ("full", "quick"):
        checked = _config(tmp_path, profile=profile, results=str(tmp_path / profile))
        unchecked = copy.deepcopy(checked)
        assert preflight.prepare(unchecked, SCHEMAS, check=False) == preflight.prepare(checked, SCHEMAS)
        assert unchecked == checked
    # what it skips: a semantic error (a metric the experiment lacks) passes unchecked only
    register = copy.deepcopy(REGISTER)
    _claim(register, "relu-trains-faster")["decision"]["metric"] = "no_such_metric"
    assert "relu-trains-faster" in preflight.prepare(_config(tmp_path, register), SCHEMAS, check=False)
    _rejected(_config(tmp_path, register), "no_such_metric")


# --- the register: schema errors name the file, the claim id and the key, with a fix -------------


def _edited(edit) -> dict:
    register = copy.deepcopy(REGISTER)
    edit(register)
    return register


SCHEMA_CASES = {
    "missing statement": (
        lambda r: _claim(r, "relu-trains-faster").pop("statement"),
        ["claims.yaml", "(id 'relu-trains-faster')", "'statement' is a required property"],
    ),
    "seeds not a number": (
        lambda r: _claim(r, "slope-product").update(seeds="ten"),
        ["(id 'slope-product').seeds", "'ten' is not of type 'integer'"],
    ),
    "exponent YAML reads as a string": (
        lambda r: _claim(r, "slope-product")["decision"].update(threshold="1e-6"),
        ["(id 'slope-product').decision.threshold", "write 1.0e-6"],
    ),
    "quick grid value not a list": (
        lambda r: _claim(r, "zero-init-stalls")["quick"].update(grid={"activation": "relu"}),
        ["(id 'zero-init-stalls').quick.grid.activation", "write a list: [relu]"],
    ),
    "misspelt key": (
        lambda r: _claim(r, "slope-product").update(statment=_claim(r, "slope-product")["statement"]),
        ["(id 'slope-product')", "'statment' -> 'statement'"],
    ),
    "misspelt experiment parameter": (
        lambda r: _claim(r, "relu-trains-faster")["params"].update(epoch=5),
        ["(id 'relu-trains-faster')", ".params", "'epoch' -> 'epochs'"],
    ),
    "a metric the cells' activation cannot give": (
        lambda r: _claim(r, "slope-product-linear")["grid"]["gain"].append({"label": "relu", "activation": "relu"}),
        ["(id 'slope-product-linear')", "delta_factor_rel_error", "'relu' has none", "scaled"],
    ),
    "absurd seed count": (lambda r: _claim(r, "slope-product").update(seeds=10**9), ["seeds", "maximum"]),
    "id too long": (lambda r: _claim(r, "slope-product").update(id="a-" * 135 + "b"), ["id", "too long"]),
    "float width": (
        lambda r: _claim(r, "relu-trains-faster")["params"].update(width=32.7),
        ["relu-trains-faster", "width", "32.7", "integer"],
    ),
    "absurd epochs": (
        lambda r: _claim(r, "relu-trains-faster")["params"].update(epochs=10**9),
        ["relu-trains-faster", "epochs", "maximum of 10000"],
    ),
    "two grid entries with one label": (
        lambda r: _claim(r, "relu-trains-faster")["grid"]["lr"].append(
            str(_claim(r, "relu-trains-faster")["grid"]["lr"][0])
        ),
        ["relu-trains-faster", "grid.lr", "more than once"],
    ),
    "a boolean and its string": (
        lambda r: _claim(r, "relu-trains-faster")["grid"].update(flag=[True, "true"]),
        ["grid.flag", "['true']", "more than once"],
    ),
}


@pytest.mark.parametrize("case", sorted(SCHEMA_CASES))
def test_a_malformed_register_is_refused_in_one_line(tmp_path, case):
    edit, needles = SCHEMA_CASES[case]
    _rejected(_config(tmp_path, register=_edited(edit)), *needles)


@pytest.mark.parametrize(
    ("register", "sources", "needles"),
    [
        ("", SOURCES, ["claims register", "is empty"]),
        ("- id: x\n", SOURCES, ["claims.yaml", "top level", "not of type 'object'"]),
        ("claims: [unclosed\n", SOURCES, ["claims.yaml", "not valid YAML"]),
        (REGISTER, "", ["sources list", "is empty"]),
        (REGISTER, {"sources": {"000": {"language": "Bengali"}}}, ["sources.yaml", "sources.000", "'file'"]),
        (REGISTER, {"sources": []}, ["sources.yaml", "sources", "not of type 'object'"]),
    ],
    ids=[
        "empty register",
        "register is a list",
        "register not YAML",
        "empty sources",
        "source without file",
        "sources a list",
    ],
)
def test_a_malformed_register_or_sources_file_is_refused(tmp_path, register, sources, needles):
    _rejected(_config(tmp_path, register=register, sources=sources), *needles)


# --- the config: command-line values, data sets, tracking, directories ----------------------------


def test_command_line_strings_are_read_as_yaml_where_the_schema_wants_no_string(tmp_path):
    # what Snakemake hands over for --config 'tracking={enabled: false, seeds_per_cell: 3}' only=[a]
    config = _config(tmp_path, tracking={"enabled": "false", "seeds_per_cell": "3", "uri": "sqlite:///x.db"})
    preflight.prepare(config, SCHEMAS)
    assert config["tracking"] == {"enabled": False, "seeds_per_cell": 3, "uri": "sqlite:///x.db"}


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"datasets": {"digits": {"kind": "digitz"}}}, ["datasets.digits.kind", "did you mean 'digits'"]),
        ({"datasets": {"moons": {"kind": "moons", "n_sample": 5}}}, ["datasets.moons", "n_sample"]),
        ({"tracking": {"uri": "bogus://x"}}, ["tracking.uri", "'bogus'", "sqlite://"]),
        ({"results": ""}, ["'results'", "not a usable directory"]),
        ({"results": "/"}, ["'results'", "not a usable directory"]),
        ({"reports": "results"}, ["must be different directories"]),
        ({"only": ["no-such-claim"]}, ["only", "no-such-claim"]),
        ({"seed": "abc"}, ["config: seed", "'abc'"]),
        ({"profil": "quick"}, ["'profil' -> 'profile'"]),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, dict) else None,
)
def test_a_malformed_config_is_refused(tmp_path, overrides, needles):
    config = _config(tmp_path)
    if "results" in overrides and overrides["results"] in ("", "/"):
        config["results"] = overrides["results"]
    elif "reports" in overrides:
        config["reports"] = config["results"]
    else:
        config.update(overrides)
    _rejected(config, *needles)


def test_a_dataset_the_config_lacks_is_refused(tmp_path):
    config = _config(tmp_path)
    del config["datasets"]["digits"]
    _rejected(config, "uses dataset 'digits'", "not in the config's 'datasets'")


def test_one_profile_never_writes_into_another_profiles_results(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / preflight.PROFILE_MARK).write_text(preflight.profile_mark("full"))
    preflight.prepare(_config(tmp_path), SCHEMAS)  # the full profile again: fine
    _rejected(
        _config(tmp_path, profile="quick"),
        "holds results of the 'full' profile",
        "--configfile config/quick.yaml",
    )
