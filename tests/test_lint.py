"""`retro check`: a linter for drafts that people edited."""

from __future__ import annotations

from pathlib import Path

from bundle_factory import write_bundle
from click.testing import CliRunner

from retro.cli.main import cli
from retro.draft.engines.offline import OfflineEngine
from retro.draft.lint import check_text
from retro.draft.pipeline import generate


def _draft(tmp_path: Path) -> tuple[Path, str]:
    out = tmp_path / "d.md"
    text = generate(bundle=write_bundle(tmp_path / "b"), engine=OfflineEngine(), out=out).markdown
    return out, text


def test_clean_generated_draft_has_no_errors(tmp_path: Path) -> None:
    out, _ = _draft(tmp_path)
    result = CliRunner().invoke(cli, ["check", str(out), "--bundle", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output


def test_each_problem_is_reported_with_file_and_line(tmp_path: Path) -> None:
    out, text = _draft(tmp_path)
    lines = text.splitlines()
    summary_at = lines.index("## Summary") + 2
    lines[summary_at] = (
        "Dana Whitfield should have checked the pool size before deploying. [Edeadbe]"
    )
    # Break the first two action items: a person as owner, then no owner and a vague end state.
    rows = [i for i, line in enumerate(lines) if line.startswith(("| 1 |", "| 2 |"))]
    assert len(rows) == 2, "the sample draft has at least two action items"
    for i, (owner, end) in zip(rows, (("Priya Raman", None), ("", "improve things")), strict=True):
        cells = lines[i].split(" | ")
        cells[4] = owner  # | # | Action | Type | Priority | Owner | End state | …
        if end is not None:
            cells[5] = end
        lines[i] = " | ".join(cells)
    text = "\n".join(lines).replace("## Where we got lucky", "## Luck")
    out.write_text(text)
    result = CliRunner().invoke(cli, ["check", str(out), "--bundle", str(tmp_path / "b")])
    assert result.exit_code == 1
    report = result.stdout
    line_no = summary_at + 1
    assert f"{out}:{line_no}: error: blame wording" in report
    assert (
        f"{out}:{line_no}: error: citation [Edeadbe] is not an event in the Timeline table"
        in report
    )
    assert "name “Dana Whitfield” appears" in report
    assert "missing section: ## Where we got lucky" in report
    assert "looks like a person" in report
    assert "has no owner" in report
    assert "is not verifiable" in report


def test_blame_and_handles_without_a_bundle() -> None:
    text = "# X\n\n## Summary\n\nThe outage was human error by @jdoe. [E1]\n"
    found = [f.message for f in check_text(text)]
    assert any(m.startswith("blame wording") for m in found)
    assert any("@jdoe" in m for m in found)
    assert any("citation [E1]" in m for m in found)


def test_quoted_evidence_is_not_treated_as_our_own_blame() -> None:
    text = "## Summary\n\nA responder wrote: “we should have caught this”. [E1]\n"
    assert not [f for f in check_text(text) if "wording" in f.message]


def test_a_release_name_is_not_an_email_address() -> None:
    """Error trackers name releases "package@version"; only a mail domain is an address."""
    text = (
        "## Summary\n\nThe regression shipped in checkout-web@2024.11.05.3 and "
        "billing-svc@4.2.0. [E1] Write to ops.lead@acme.example. [E1]\n"
    )
    found = [f.message for f in check_text(text) if "email" in f.message]
    assert found == ["personal email address: ops.lead@acme.example"]


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "nope.md")])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.output


def test_an_owner_named_with_accented_letters_looks_like_a_person(tmp_path: Path) -> None:
    out, text = _draft(tmp_path)
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("| 1 |"))
    cells = lines[row].split(" | ")
    cells[4] = "Zoë Brandt"
    lines[row] = " | ".join(cells)
    out.write_text("\n".join(lines))
    result = CliRunner().invoke(cli, ["check", str(out), "--bundle", str(tmp_path / "b")])
    assert "looks like a person" in result.stdout
