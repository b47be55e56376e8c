"""The README's verdict tables say what the committed report says.

The README's first screens quote every claim's verdict, headline estimate and interval from
``reports/claims.md``. They are written by hand when a new report is committed, so this test
compares them cell by cell: a report committed without its README (or the reverse) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def _rows(markdown: str, header: str) -> dict[str, list[str]]:
    """Every table that starts with ``header``: entry id (its row's first link) -> its cells, links as text."""
    rows, in_table = {}, False
    for line in markdown.splitlines():
        if line.startswith(header):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            cells = [LINK.sub(r"\1", c).strip() for c in line.strip().strip("|").split("|")]
            rows[LINK.search(line).group(1)] = cells
    assert rows, f"no table starting with {header!r}"
    return rows


def test_the_readme_quotes_every_claim_of_the_committed_report():
    readme = (ROOT / "README.md").read_text()
    report = (ROOT / "reports" / "claims.md").read_text()
    quoted = _rows(readme, "| group | claim | verdict |")
    reported = _rows(report, "| claim | verdict |")
    assert quoted.keys() == reported.keys()
    for claim, (_, _, verdict, metric, estimate, holds, control) in quoted.items():
        _, r_verdict, r_metric, r_estimate, r_interval, r_holds, _, r_control, _, _ = reported[claim]
        assert (verdict, metric, estimate, holds, control) == (
            r_verdict,
            r_metric,
            f"{r_estimate} {r_interval}",
            r_holds,
            r_control,
        ), claim


def test_the_readme_quotes_every_check_and_replication_of_the_committed_report():
    readme = (ROOT / "README.md").read_text()
    report = (ROOT / "reports" / "claims.md").read_text()
    checks, r_checks = _rows(readme, "| check | verdict |"), _rows(report, "| check | verdict |")
    assert checks.keys() == r_checks.keys()
    for check, cells in checks.items():
        assert cells[1:6] == r_checks[check][1:6], check
    replications = _rows(readme, "| replication with scikit-learn |")
    r_replications = _rows(report, "| replication | of |")
    assert replications.keys() == r_replications.keys()
    for entry, (_, of, verdict, original, agreement) in replications.items():
        _, r_of, r_verdict, r_original, r_agreement = r_replications[entry]
        assert (of, verdict, original) == (r_of, r_verdict, r_original), entry
        assert agreement.split()[0].rstrip(":") == r_agreement.split()[0], entry
