"""The action items table: reading rows, rewriting single cells, markers, descriptions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.jira.adf import adf_to_text
from retro.actions.describe import Brief, adf, wiki, wiki_escape
from retro.actions.jira import DUPLICATE_THRESHOLD
from retro.actions.table import (
    is_open,
    load,
    marker,
    normalize_title,
    set_cells,
    similarity,
    split_cells,
    update_row,
)
from retro.cli.main import cli
from retro.errors import BundleError
from retro.models import ActionItem
from tests.test_jira_actions import write_draft

COLUMNS = {"title": 1, "tracking": 7, "status": 8}


def cell_texts(line: str) -> list[str]:
    return [line[a:b] for a, b in split_cells(line)]


def test_split_cells_handles_escaped_pipes_and_optional_borders() -> None:
    assert cell_texts("| a | b \\| c | d |") == [" a ", " b \\| c ", " d "]
    assert cell_texts("a | b") == ["a ", " b"]
    assert cell_texts("| a | b") == [" a ", " b"]
    assert cell_texts("| a |  |\r") == [" a ", "  "]


def test_set_cells_changes_only_the_target_cells() -> None:
    line = "|  1 |Fix **x** \\| y|detect|P1|db|done when z|[E1]|   -   |proposed|\r"
    out = set_cells(line, COLUMNS, {"tracking": "OPS-7", "status": "open"})
    assert out == "|  1 |Fix **x** \\| y|detect|P1|db|done when z|[E1]|   OPS-7   |open|\r"
    short = set_cells("| 1 | t | x |", COLUMNS, {"status": "open"})
    assert cell_texts(short)[8] == " open " and cell_texts(short)[:3] == [" 1 ", " t ", " x "]
    assert set_cells("| a |", {"status": 0}, {"status": "x|y"}) == "| x\\|y |"


def test_marker_is_stable_across_cosmetic_edits() -> None:
    title = "Add an alert on DB pool saturation for checkout-api"
    assert normalize_title("  add an ALERT on db pool saturation, for checkout api. ") == (
        normalize_title(title)
    )
    assert marker("INC-1", title) == marker(
        "INC-1", "Add an alert on DB pool saturation for checkout-api!"
    )
    assert marker("INC-1", title) != marker("INC-2", title)
    assert marker("INC-1", title).startswith("retro-") and len(marker("INC-1", title)) == 18


def test_similarity_threshold_examples() -> None:
    a = "Add an alert on DB pool saturation for checkout-api"
    # retro.text's content words: add, alert, pool, saturation, checkout-api ("db" is too short)
    assert similarity(a, "Alert on DB pool saturation for checkout-api") == pytest.approx(4 / 5)
    assert similarity(a, "Add a canary stage for config changes to checkout-api") < 0.3
    assert similarity(a, "") == 0.0
    docs = (Path(__file__).parents[1] / "docs" / "jira-actions.md").read_text()
    assert f"threshold is {DUPLICATE_THRESHOLD}" in docs  # the documented one is the code's


def test_is_open() -> None:
    assert is_open("proposed") and is_open("in_progress") and is_open("open") and is_open("")
    assert not is_open("done") and not is_open("WONTFIX") and not is_open("skipped")
    item = ActionItem(title="t", type="detect", priority="P1", owner="o", end_state="e")
    assert is_open(item) and not is_open(item.model_copy(update={"status": "done"}))


def test_crlf_file_keeps_its_line_endings(tmp_path: Path) -> None:
    draft = write_draft(tmp_path / "INC-101.md")
    crlf = draft.read_text().replace("\n", "\r\n")
    draft.write_bytes(crlf.encode())
    draft.chmod(0o640)
    pm = load(draft)
    row = pm.rows[1]
    update_row(
        draft, row, {"tracking": "OPS-9", "status": "open"}, find=lambda r: r.line == row.line
    )
    after = draft.read_bytes().decode()
    assert after.count("\r\n") == crlf.count("\r\n") and "\n" not in after.replace("\r\n", "")
    assert [(r.tracking, r.status) for r in load(draft).rows] == [
        ("", "proposed"),
        ("OPS-9", "open"),
    ]
    assert (draft.stat().st_mode & 0o777) == 0o640
    assert not list(tmp_path.glob(".INC-101.md.*"))  # no temp file left behind


def test_table_without_tracking_column_is_a_clear_error(tmp_path: Path) -> None:
    draft = write_draft(tmp_path / "INC-101.md")
    draft.write_text(draft.read_text().replace("| Tracking |", "| Ticket |"))
    with pytest.raises(BundleError, match="has no tracking column"):
        load(draft)
    result = CliRunner().invoke(cli, ["file-actions", str(draft), "--project", "OPS"])
    assert result.exit_code == 2 and "has no tracking column" in result.stderr


def test_no_action_items_needs_no_jira(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    draft = write_draft(tmp_path / "INC-101.md", items=[])
    result = CliRunner().invoke(cli, ["file-actions", str(draft), "--project", "OPS"])
    assert result.exit_code == 0 and "No action items" in result.stdout
    result = CliRunner().invoke(cli, ["sync-actions", str(draft)])
    assert result.exit_code == 0 and "No tracked action items" in result.stderr


def test_descriptions_hold_end_state_incident_path_and_evidence(tmp_path: Path) -> None:
    pm = load(write_draft(tmp_path / "INC-101.md"))
    brief = Brief.of(pm, pm.rows[1], "https://wiki/pm")
    assert brief.evidence == [
        (
            "E2f7d9",
            "2024-05-01 14:31:00 UTC",
            "We need a canary stage for config changes [to] checkout-api {now}",
        ),
        ("Eabc12", "", "(not in the Timeline table)"),
    ]
    text = adf_to_text(adf(brief))
    assert "Config changes to checkout-api go through a canary stage." in text
    assert "INC-101.md" in text and "https://wiki/pm" in text and brief.marker in text
    markup = wiki(brief)
    assert "[https://wiki/pm|https://wiki/pm]" in markup and "h3. Evidence" in markup
    assert wiki_escape("a*b* [c|d] {e} -f- _g_") == r"a\*b\* \[c\|d\] \{e\} -f- \_g\_"
    empty = adf(Brief.of(pm, pm.rows[0], None).__class__(**{**brief.__dict__, "end_state": ""}))
    assert "(no end state written yet)" in adf_to_text(empty)
