"""Snapshot of the sample incident's draft. Review its diffs like code.

Regenerate after an intended change with: RETRO_UPDATE_SNAPSHOTS=1 pytest tests/test_snapshot.py
"""

from __future__ import annotations

import os
from pathlib import Path

from retro.cli.draft import sample_bundle
from retro.draft.engines.offline import OfflineEngine
from retro.draft.pipeline import generate

SNAPSHOT = Path(__file__).parent / "snapshots" / "sample-offline.md"


def test_sample_draft_matches_the_snapshot(tmp_path: Path) -> None:
    markdown = generate(
        bundle=sample_bundle(), engine=OfflineEngine(), out=tmp_path / "d.md"
    ).markdown
    if os.environ.get("RETRO_UPDATE_SNAPSHOTS") or not SNAPSHOT.exists():
        SNAPSHOT.write_text(markdown, encoding="utf-8")
    assert markdown == SNAPSHOT.read_text(encoding="utf-8"), (
        "the sample draft changed; review the diff and run with RETRO_UPDATE_SNAPSHOTS=1 if intended"
    )
