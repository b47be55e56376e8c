"""The README's verdict tables say what the committed report says.

The README's first screens quote every claim's verdict, headline estimate and interval from
``reports/claims.md``. They are written by hand when a new report is committed, so this test
compares them cell by cell: a report committed without its README (or the reverse) fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[([^\]]+)\]\(([^)]*)\)")
GROUP = re.compile(r"^## ([A-Z])\. ")


def _rows(markdown: str, header: str) -> dict[str, list[str]]:
    """Every table that starts with ``header``: entry id -> its cells, links as their text.

    A row's entry id is its first link's text; its first cell is replaced by the section letter
    (``## G. ...``) the table stands under, or "" outside a lettered section. Each id appears once,
    and its link points at its own anchor.
    """
    rows, in_table, group = {}, False, ""
    for line in markdown.splitlines():
        if GROUP.match(line):
            group = GROUP.match(line).group(1)
        if line.startswith(header):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            entry, target = LINK.search(line).groups()
            assert target.endswith(f"#{entry}"), f"{entry} links to {target}"
            assert entry not in rows, f"{entry} twice in the tables under {header!r}"
            cells = [LINK.sub(r"\1", c).strip() for c in line.strip().strip("|").split("|")]
            rows[entry] = [group, *cells]
    assert rows, f"no table starting with {header!r}"
    return rows


def test_the_readme_quotes_every_claim_of_the_committed_report():
    readme = (ROOT / "README.md").read_text()
    report = (ROOT / "reports" / "claims.md").read_text()
    quoted = _rows(readme, "| group | claim | verdict |")
    reported = _rows(report, "| claim | verdict |")
    assert quoted.keys() == reported.keys()
    for claim, (_, group, _, verdict, metric, estimate, holds, control) in quoted.items():
        r_group, _, r_verdict, r_metric, r_estimate, r_interval, r_holds, _, r_control, _, _ = reported[claim]
        assert (group, verdict, metric, estimate, holds, control) == (
            r_group,
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
        assert cells[2:7] == r_checks[check][2:7], check
    replications = _rows(readme, "| replication with scikit-learn |")
    r_replications = _rows(report, "| replication | of |")
    assert replications.keys() == r_replications.keys()
    for entry, (_, _, of, verdict, original, agreement) in replications.items():
        _, _, r_of, r_verdict, r_original, r_agreement = r_replications[entry]
        assert (of, verdict, original) == (r_of, r_verdict, r_original), entry
        assert agreement.split()[0].rstrip(":") == r_agreement.split()[0], entry
