"""The preregistration ledger: a claim's decision rule is frozen after its first full run.

``config/ledger.yaml`` records, for every claim that has had a full run, a hash of what decides
its verdict - the experiment, ``kind``, ``seeds``, ``params``, ``grid`` and the ``decision`` block
without its prose ``note`` - with the commit and the date of that run, and how many
``amendments`` the claim carried then. Before any job runs, :func:`check` refuses a register in
which such a claim's hash changed unless the claim carries a new, dated ``amendments`` entry
(what changed and why); the report lists every amendment next to the verdict.

After a full run, ``python -m actlab.claims.ledger`` records the claims that are new, the changed
ones whose amendment says why (it refuses the others, with the same message as :func:`check`), and
those that gained an amendment without a rule change (a change of how the rule is measured, say), so
that every amendment is spent by the run that follows it and a later rule change needs one of its own.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import yaml

FROZEN_KEYS = ("experiment", "kind", "seeds", "params", "grid", "decision")


class LedgerError(ValueError):
    """A frozen decision rule changed without an amendment; the message names the claim."""


def rule_hash(claim: dict) -> str:
    """SHA-256 (16 hex digits) of what decides a register entry's verdict under the full profile."""
    frozen = {key: claim.get(key) for key in FROZEN_KEYS}
    frozen["kind"] = claim.get("kind", "claim")
    frozen["decision"] = {k: v for k, v in (claim.get("decision") or {}).items() if k != "note"}
    if claim.get("paired_seeds"):  # only when set, so the rules frozen before the key existed keep their hash
        frozen["paired_seeds"] = True
    text = json.dumps(frozen, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load(path: str | Path) -> dict:
    """Claim id -> ledger entry; an absent file is an empty ledger."""
    path = Path(path)
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("claims", {}), dict):
        raise LedgerError(f"{path}: expected a mapping with a 'claims' mapping of claim id -> entry")
    return data.get("claims") or {}


def problems(register: dict, ledger: dict) -> list[str]:
    """One message per claim whose frozen rule changed without a new amendment."""
    out = []
    for claim in register["claims"]:
        entry = ledger.get(claim["id"])
        if entry is None or entry["hash"] == rule_hash(claim):
            continue
        if len(claim.get("amendments") or []) > entry.get("amendments", 0):
            continue
        out.append(
            f"claim {claim['id']!r}: its decision rule (experiment, seeds, params, grid or decision) changed "
            f"since it was frozen by the full run of {entry['date']} (commit {entry['commit']}); add an "
            "entry to its 'amendments' (date, what, why), or restore the rule"
        )
    return out


def check(register: dict, ledger_path: str | Path) -> None:
    """Raise :class:`LedgerError` if a frozen rule changed without an amendment."""
    found = problems(register, load(ledger_path))
    if found:
        raise LedgerError(f"{ledger_path}: " + "; ".join(found))


def record(register: dict, ledger_path: str | Path, commit: str, date: str) -> list[str]:
    """Freeze every claim that is new, changed or newly amended; returns the ids written. Refuses unamended changes."""
    ledger_path = Path(ledger_path)
    ledger = load(ledger_path)
    found = problems(register, ledger)
    if found:
        raise LedgerError("; ".join(found))
    written = []
    for claim in register["claims"]:
        entry = ledger.get(claim["id"])
        digest = rule_hash(claim)
        amendments = len(claim.get("amendments") or [])
        if entry is not None and (entry["hash"], entry.get("amendments", 0)) == (digest, amendments):
            continue
        ledger[claim["id"]] = {
            "hash": digest,
            "commit": commit,
            "date": date,
            "amendments": amendments,
        }
        written.append(claim["id"])
    header = (
        "# The preregistration ledger (actlab.claims.ledger): each claim's decision rule as frozen by its first\n"
        "# full run. Written by `python -m actlab.claims.ledger`; a later change needs an `amendments` entry.\n"
    )
    ledger_path.write_text(header + yaml.safe_dump({"claims": dict(sorted(ledger.items()))}, sort_keys=True))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--register", default="config/claims.yaml")
    parser.add_argument("--ledger", default="config/ledger.yaml")
    args = parser.parse_args(argv)
    register = yaml.safe_load(Path(args.register).read_text())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    try:
        written = record(register, args.ledger, commit or "unknown", datetime.date.today().isoformat())
    except LedgerError as err:
        print(f"ledger: {err}", file=sys.stderr)
        return 1
    print(f"ledger: froze {len(written)} claim(s): {', '.join(written) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
