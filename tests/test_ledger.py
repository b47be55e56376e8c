"""The preregistration ledger: a frozen rule changes only with a dated amendment."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from actlab.claims import ledger

REGISTER = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/claims.yaml").read_text())


def _register() -> dict:
    return copy.deepcopy(REGISTER)


def test_recording_freezes_every_claim_once(tmp_path):
    path = tmp_path / "ledger.yaml"
    written = ledger.record(_register(), path, commit="abc1234", date="2026-11-30")
    assert written == [c["id"] for c in REGISTER["claims"]]
    assert ledger.record(_register(), path, commit="def5678", date="2026-12-01") == []
    entry = ledger.load(path)["relu-learns-relu"]
    amended = len(next(c for c in REGISTER["claims"] if c["id"] == "relu-learns-relu")["amendments"])
    assert (entry["commit"], entry["date"], entry["amendments"]) == ("abc1234", "2026-11-30", amended)
    ledger.check(_register(), path)  # unchanged: accepted


@pytest.mark.parametrize(
    ("key", "value"),
    [("threshold", 0.3), ("compare", "<"), ("where", {"activation": "relu"}), ("min_n", 20)],
)
def test_a_changed_rule_needs_an_amendment(tmp_path, key, value):
    path = tmp_path / "ledger.yaml"
    ledger.record(_register(), path, commit="abc1234", date="2026-11-30")
    register = _register()
    claim = next(c for c in register["claims"] if c["id"] == "relu-learns-relu")
    claim["decision"][key] = value
    with pytest.raises(ledger.LedgerError, match="relu-learns-relu.*abc1234.*amendments"):
        ledger.check(register, path)
    with pytest.raises(ledger.LedgerError):
        ledger.record(register, path, commit="def5678", date="2026-12-01")
    claim["amendments"].append({"date": "2026-12-01", "what": f"{key} changed", "why": "a test"})
    ledger.check(register, path)
    assert ledger.record(register, path, commit="def5678", date="2026-12-01") == ["relu-learns-relu"]
    assert ledger.load(path)["relu-learns-relu"]["amendments"] == len(claim["amendments"])


def test_an_amendment_without_a_rule_change_is_spent_by_the_next_record(tmp_path):
    """An amendment of how a rule is measured leaves its hash alone; recording counts it, so that a later
    change of the rule still needs an amendment of its own."""
    path = tmp_path / "ledger.yaml"
    ledger.record(_register(), path, commit="abc1234", date="2026-11-30")
    register = _register()
    claim = next(c for c in register["claims"] if c["id"] == "relu-learns-relu")
    claim["amendments"].append({"date": "2026-12-01", "what": "timed otherwise", "why": "a test"})
    assert ledger.record(register, path, commit="def5678", date="2026-12-01") == ["relu-learns-relu"]
    assert ledger.load(path)["relu-learns-relu"]["amendments"] == len(claim["amendments"])
    claim["decision"]["threshold"] = 0.3
    with pytest.raises(ledger.LedgerError, match="relu-learns-relu"):
        ledger.check(register, path)


def test_seeds_and_grid_are_frozen_too_but_prose_is_not(tmp_path):
    path = tmp_path / "ledger.yaml"
    ledger.record(_register(), path, commit="abc1234", date="2026-11-30")
    register = _register()
    register["claims"][0]["decision"]["note"] = "reworded"
    register["claims"][0]["statement"] = "reworded statement"
    ledger.check(register, path)
    register["claims"][0]["seeds"] = 48
    assert len(ledger.problems(register, ledger.load(path))) == 1


def test_the_committed_ledger_has_spent_every_amendment_of_an_unchanged_rule():
    """An amendment that the ledger has not counted would let a later rule change pass without one."""
    committed = ledger.load(Path(__file__).resolve().parents[1] / "config/ledger.yaml")
    unspent = [
        c["id"]
        for c in REGISTER["claims"]
        if c["id"] in committed
        and committed[c["id"]]["hash"] == ledger.rule_hash(c)
        and committed[c["id"]]["amendments"] != len(c.get("amendments") or [])
    ]
    assert not unspent, f"run `python -m actlab.claims.ledger` after the full run that judged them: {unspent}"
