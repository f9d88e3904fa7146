"""The window of changes a GitHub harvest fetches: `lookback_hours` before the start of impact.

The start of impact is `--since` when given. Otherwise it is the earliest signal in the files
this harvest's other sources already wrote under the bundle (they run first: GitHub's claim
order is late): the first page, or incident ticket opened, and any alert in the six hours
before it, as the timeline's window rule reads them. Those files are read with their own
connectors, found through the `retro.connectors` entry points like any plugin. With neither,
the window ends at `--until` (or now) and starts `lookback_hours` before it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import IncidentMeta, SourceReport

ANCHORS = frozenset({"page_triggered", "ticket_created"})
SIGNALS = ANCHORS | {"alert_firing"}
SIGNAL_LOOKBACK = timedelta(hours=6)  # alerts long before the first page are background noise
# Sources whose events can say when impact began; chat and transcripts are read by people.
SIGNAL_ROLES = frozenset({"pager", "alerts", "monitor", "tracker"})


def changes_window(
    ref: IncidentRef, out: Path, lookback_hours: float, report: SourceReport
) -> tuple[datetime, datetime]:
    """(start, end) of the changes to fetch."""
    end = ref.until or datetime.now(UTC)
    anchor = ref.since or earliest_signal(out, ref.incident_id, report)
    start = (anchor or end) - timedelta(hours=lookback_hours)
    return start, max(end, anchor or end)


def earliest_signal(out: Path, incident_id: str, report: SourceReport) -> datetime | None:
    """The earliest page, incident ticket or alert in the other sources' files under out/."""
    times: list[tuple[datetime, str]] = []
    for connector in _signal_sources(out):
        docs = _docs(out / connector.name)
        ctx = ReadContext(
            bundle=out,
            incident=IncidentMeta(id=incident_id),
            report=SourceReport(name=connector.name),
            lenient=True,
        )
        try:
            claimed = [d for d in docs if connector.claims(d)]
            times += [
                (e.at, e.kind) for e in connector.read_bundle(claimed, ctx) if e.kind in SIGNALS
            ]
        except Exception:  # another source's files must never break this one's harvest
            report.skip(f"could not read {connector.name} files for the window")
    anchors = [at for at, kind in times if kind in ANCHORS]
    floor = min(anchors) - SIGNAL_LOOKBACK if anchors else None
    return min((at for at, _ in times if floor is None or at >= floor), default=None)


def _signal_sources(out: Path) -> list[Connector]:
    from importlib.metadata import entry_points

    found = []
    for ep in entry_points(group="retro.connectors"):
        if ep.name == "github" or not (out / ep.name).is_dir():
            continue
        try:
            cls = ep.load()
        except Exception:
            continue
        if isinstance(cls, type) and issubclass(cls, Connector) and cls.roles & SIGNAL_ROLES:
            found.append(cls())
    return found


def _docs(folder: Path) -> list[Doc]:
    docs = []
    for path in sorted(folder.rglob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        docs.append(
            Doc(rel=f"{folder.name}/{path.relative_to(folder).as_posix()}", data=data, path=path)
        )
    return docs
