"""Stages 1-2 wired together: read a bundle with every connector, then normalize it.

Stages never print; they report through `progress`. The draft's stages are wired in
retro/draft/pipeline.py.
"""

from __future__ import annotations

from pathlib import Path

from retro import registry
from retro.models import Progress, Timeline, no_progress
from retro.timeline import bundle as bundle_mod
from retro.timeline.normalize import build_timeline


def read_timeline(
    path: Path, *, lenient: bool = False, progress: Progress = no_progress
) -> Timeline:
    """Stages 1-2: read the bundle with every connector, then normalize."""
    raw = bundle_mod.load(
        path, connectors=registry.connectors(), lenient=lenient, progress=progress
    )
    reports = list(raw.reports)
    if raw.bundle_report.skipped:
        reports.append(raw.bundle_report)
    progress("normalize", 0, None)
    return build_timeline(
        incident=raw.incident, events=raw.events, reports=reports, sources=registry.source_info()
    )
