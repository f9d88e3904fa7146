"""`retro generate` links similar past incidents, and says so when one repeats with items open."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_factory import write_bundle
from click.testing import CliRunner

from retro.cli.draft import sample_bundle
from retro.cli.main import cli

pytestmark = pytest.mark.slow


def test_a_new_draft_links_the_indexed_past_incident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRO_DATABASE_URL", f"sqlite:///{tmp_path / 'index.db'}")
    runner = CliRunner()
    past = tmp_path / "INC-1432.md"
    assert (
        runner.invoke(
            cli, ["generate", "--bundle", str(sample_bundle()), "--out", str(past)]
        ).exit_code
        == 0
    )
    added = runner.invoke(cli, ["index", "add", str(past)])
    assert added.exit_code == 0, added.output

    new = tmp_path / "INC-101.md"
    result = runner.invoke(
        cli, ["generate", "--bundle", str(write_bundle(tmp_path / "b")), "--out", str(new)]
    )
    assert result.exit_code == 0, result.output
    text = new.read_text()
    section = text.split("## Similar past incidents", 1)[1].split("## Sources", 1)[0]
    assert "INC-1432" in section
    assert "This repeats INC-1432" in section and "is still open" in section


def test_no_index_leaves_the_placeholder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRO_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    out = tmp_path / "d.md"
    result = CliRunner().invoke(
        cli, ["generate", "--bundle", str(write_bundle(tmp_path / "b")), "--out", str(out)]
    )
    assert result.exit_code == 0
    assert "No similar past incidents found" in out.read_text()
    assert not (tmp_path / "none.db").exists()
