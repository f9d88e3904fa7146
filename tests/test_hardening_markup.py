"""Issue 12, item 10: chat markup never reaches the draft, and CSV output runs no formulas."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from bundle_factory import CHAT, msg, write_bundle
from click.testing import CliRunner

from retro.cli.main import cli
from retro.draft.engines.offline import OfflineEngine
from retro.draft.pipeline import generate

HOSTILE = [
    msg("U02", 9, "Pool graph: ![](https://track.example/pixel.gif?u=42) saturated at 5 of 5"),
    msg("U02", 10, "Root cause details [in the runbook](javascript:alert(document.cookie)) here"),
    # Slack escapes what a person types: raw HTML arrives as &lt;…&gt;.
    msg("U01", 11, 'See &lt;img src="https://track.example/o.png" alt="pool chart"&gt; for it'),
    msg("U01", 12, "Deploy log \x1b[31mERROR\x1b[0m pool size 5\x00 confirmed"),
    msg("U03", 13, "Invoice file \u202egnp.exe\u202c and \u2066isolated\u2069 text"),
    msg("U02", 14, "Open <javascript:alert(1)> or data:text/html;base64,PHNjcmlwdD4= for details"),
]


@pytest.fixture(scope="module")
def draft(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("markup")
    bundle = write_bundle(root / "b", chat=[*CHAT, *HOSTILE])
    return generate(bundle=bundle, engine=OfflineEngine(), out=root / "d.md").markdown


@pytest.mark.parametrize(
    "needle",
    [
        "javascript:",
        "track.example",
        "pixel.gif",
        "<img",
        "data:text/html",
        "\x00",
        "\x1b",
        "\u202e",
        "\u202c",
        "\u2066",
        "\u2069",
    ],
)
def test_hostile_markup_does_not_reach_the_draft(draft: str, needle: str) -> None:
    assert needle not in draft


def test_what_a_reader_saw_is_kept(draft: str) -> None:
    assert "in the runbook" in draft  # a link's visible text
    assert "pool chart" in draft  # an image's alt text
    assert "ERROR pool size 5 confirmed" in draft  # text around colour codes and NUL


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text stays", "plain text stays"),
        ("see ![chart](https://t.example/p.gif) now", "see chart now"),
        ("[docs](https://wiki.example/a) ok", "docs (https://wiki.example/a) ok"),
        ("[x](javascript:alert(1))", "x"),
        ("[x](JaVaScRiPt:alert(1))", "x"),
        ("[x](vbscript:msgbox)", "x"),
        ("a <a href='javascript:x'>link</a> b", "a link b"),
        ("<https://ok.example/path>", "https://ok.example/path"),
        ("latency < 200ms and 5 > 3", "latency < 200ms and 5 > 3"),
        ("red \x1b[1;31mbold\x1b[0m", "red bold"),
        ("title \x1b]0;pwned\x07 set", "title  set"),
        ("nul\x00byte and bell\x07", "nulbyte and bell"),
        ("keep\ttabs\nand lines", "keep\ttabs\nand lines"),
        ("abc\u202egnp.exe", "abcgnp.exe"),
        ("x\u2067y\u2068z", "xyz"),
    ],
)
def test_sanitize(raw: str, clean: str) -> None:
    from retro.draft.evidence import sanitize

    assert sanitize(raw) == clean


def test_strip_controls_keeps_crlf_and_markdown() -> None:
    from retro.draft.evidence import strip_controls

    text = "| a | [b](https://x) |\r\n![i](u)\x1b[2J\r\n"
    assert strip_controls(text) == "| a | [b](https://x) |\r\n![i](u)\r\n"


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cells_that_start_a_formula_are_neutralised(lead: str) -> None:
    from retro.timeline.output import csv_cell

    assert csv_cell(lead + 'HYPERLINK("http://x")') == "'" + lead + 'HYPERLINK("http://x")'
    assert csv_cell("ok " + lead) == "ok " + lead
    assert csv_cell(None) == ""


def test_timeline_csv_output_neutralises_formulas(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    rows = [
        {"at": "2024-05-01T14:05:00Z", "text": '=HYPERLINK("http://evil.example","click")'},
        {"at": "2024-05-01T14:06:00Z", "text": "+1 from the on-call", "actor": "@oncall"},
        {"at": "2024-05-01T14:07:00Z", "text": "-5% error budget"},
    ]
    (bundle / "events.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = CliRunner().invoke(cli, ["timeline", "--bundle", str(bundle), "--format", "csv"])
    assert result.exit_code == 0, result.output
    cells = [cell for row in csv.reader(io.StringIO(result.stdout)) for cell in row]
    assert '\'=HYPERLINK("http://evil.example","click")' in cells
    assert "'+1 from the on-call" in cells and "'-5% error budget" in cells
    assert not any(c[:1] in ("=", "+", "-", "@", "\t", "\r") for c in cells)
