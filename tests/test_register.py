"""How a claim is viewed under a profile: the quick grid picks full-grid values by their label."""

from __future__ import annotations

from pathlib import Path

import yaml

from actlab.claims.register import expand_cells, profile_view
from actlab.claims.report import GROUPS

CLAIM = {
    "id": "c",
    "seeds": 24,
    "params": {"width": 64},
    "grid": {
        "activation": ["sigmoid", "tanh", {"label": "wide", "activation": "sigmoid", "width": 256}],
        "depth": [2, 5, 10],
    },
    "quick": {"seeds": 4, "grid": {"activation": ["sigmoid", "wide"], "depth": [10]}},
}


def test_the_quick_grid_picks_full_grid_entries_by_label():
    view = profile_view(CLAIM, "quick")
    assert view["seeds"] == 4 and view["profile"] == "quick"
    assert view["grid"]["activation"] == ["sigmoid", CLAIM["grid"]["activation"][2]]
    cells = expand_cells(view)
    assert sorted(cells) == ["activation-sigmoid_depth-10", "activation-wide_depth-10"]
    assert cells["activation-wide_depth-10"]["params"] == {"width": 256, "activation": "sigmoid", "depth": 10}


def test_the_full_view_is_the_claim_as_written():
    view = profile_view(CLAIM, "full")
    assert view["grid"] == CLAIM["grid"] and "quick" not in view and view["seeds"] == 24


def test_the_report_has_a_section_for_every_group_the_schema_allows():
    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/schemas/claims.schema.yaml").read_text())
    claim = schema["properties"]["claims"]["items"]
    allowed = claim["properties"]["group"]["enum"]
    assert list(GROUPS) == allowed, "config/schemas/claims.schema.yaml's group enum and actlab.claims.report.GROUPS"


def test_context_cells_train_the_first_context_seeds():
    decision = {
        "where": {"depth": [5, 10]},
        "control": {"where": {"activation": "wide", "depth": 2}},
        "context": {"where": {"depth": 2}, "seeds": 12},
    }
    cells = expand_cells({**CLAIM, "decision": decision})
    seeds = {cell_id: cell["seeds"] for cell_id, cell in cells.items()}
    assert seeds["activation-sigmoid_depth-5"] == seeds["activation-tanh_depth-10"] == 24  # judged
    assert seeds["activation-wide_depth-2"] == 24  # the control: context's filter also selects it
    assert seeds["activation-sigmoid_depth-2"] == seeds["activation-tanh_depth-2"] == 12
    quick = expand_cells({**profile_view(CLAIM, "quick"), "decision": decision})
    assert {cell["seeds"] for cell in quick.values()} == {4}  # never more than the claim's own seeds
    no_context_seeds = {**decision, "context": {"where": {"depth": 2}}}
    assert {cell["seeds"] for cell in expand_cells({**CLAIM, "decision": no_context_seeds}).values()} == {24}
