"""Snapshot of the sample incident's draft. Review its diffs like code.

Regenerate after an intended change with: RETRO_UPDATE_SNAPSHOTS=1 pytest tests/test_snapshot.py
A missing snapshot is a failure, never written silently: a test that writes what it compares
against would pass whatever the draft says.
"""

from __future__ import annotations

import os
from pathlib import Path

from retro.cli.draft import sample_bundle
from retro.draft.engines.offline import OfflineEngine
from retro.draft.pipeline import generate

SNAPSHOT = Path(__file__).parent / "snapshots" / "sample-offline.md"


def check_snapshot(markdown: str, snapshot: Path, *, update: bool) -> None:
    """Compare with the snapshot; write it only when asked to (RETRO_UPDATE_SNAPSHOTS=1)."""
    if update:
        snapshot.write_text(markdown, encoding="utf-8")
    assert snapshot.is_file(), (
        f"{snapshot} is missing: run with RETRO_UPDATE_SNAPSHOTS=1 to write it, then review it"
    )
    assert markdown == snapshot.read_text(encoding="utf-8"), (
        "the sample draft changed; review the diff and run with RETRO_UPDATE_SNAPSHOTS=1 if intended"
    )


def test_sample_draft_matches_the_snapshot(tmp_path: Path) -> None:
    markdown = generate(
        bundle=sample_bundle(), engine=OfflineEngine(), out=tmp_path / "d.md"
    ).markdown
    check_snapshot(markdown, SNAPSHOT, update=bool(os.environ.get("RETRO_UPDATE_SNAPSHOTS")))


def test_a_missing_snapshot_fails_and_is_not_written(tmp_path: Path) -> None:
    missing = tmp_path / "missing.md"
    try:
        check_snapshot("# draft\n", missing, update=False)
    except AssertionError as exc:
        assert "is missing" in str(exc)
    else:
        raise AssertionError("a missing snapshot passed")
    assert not missing.exists()
