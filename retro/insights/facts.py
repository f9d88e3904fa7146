"""What the report knows about one incident: its times, who set them, its action items and its
postmortem. Built from a draft (drafts.py) or from an imported record (`from_import`), and
merged so that an imported record never overwrites a postmortem's own milestones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from retro.connector import ImportedIncident

Origin = Literal["inferred", "edited", "imported"]
"""Who set a milestone's time: retro's rules (inferred), a person editing the draft (edited),
or the tool it was imported from (imported)."""

ReviewSource = Literal["front matter", "git", "vendor"]
CLOSED = frozenset({"done", "wontfix", "skipped"})
# Times a record may carry: the draft's milestones plus the end of customer impact.
TIME_NAMES = (
    "impact_start",
    "detected",
    "acknowledged",
    "declared",
    "mitigated",
    "resolved",
    "impact_end",
)


class ActionFact(BaseModel):
    """One action item as the report counts it."""

    title: str
    status: str = "proposed"
    priority: str = ""
    owner: str = ""
    tracking: str = ""
    created: datetime | None = None
    due: datetime | None = None
    closed: datetime | None = Field(default=None, description="When its status became closed")

    @property
    def is_closed(self) -> bool:
        return self.status.lower() in CLOSED

    def open_at(self, at: datetime) -> bool | None:
        """Was it still open at `at`? None when it is closed and nobody knows since when."""
        if not self.is_closed:
            return True
        if self.closed is None:
            return None
        return self.closed > at


class IncidentFacts(BaseModel):
    """One incident for the report."""

    id: str
    title: str
    origin: str = Field(description="draft, or the connector an imported record came from")
    kind: str = "incident"
    path: str | None = Field(default=None, description="The draft's file, or the record's URL")
    severity: str | None = None
    services: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    times: dict[str, datetime] = Field(default_factory=dict)
    origins: dict[str, Origin] = Field(default_factory=dict)
    has_postmortem: bool = False
    status: str | None = Field(default=None, description="The postmortem's status: draft, final")
    reviewed_at: datetime | None = None
    reviewed_from: ReviewSource | None = None
    actions: list[ActionFact] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    imported_from: list[str] = Field(
        default_factory=list, description="Connectors whose records were merged into this one"
    )
    cause: str = Field(default="", description="Root cause text, for repeat detection")
    summary: str = ""

    @property
    def start(self) -> datetime | None:
        """When the incident began, for grouping and ordering: impact start, else the earliest
        of detected and declared, else any time it has."""
        for name in ("impact_start",):
            if name in self.times:
                return self.times[name]
        early = [self.times[n] for n in ("detected", "declared") if n in self.times]
        if early:
            return min(early)
        return min(self.times.values()) if self.times else None

    @property
    def is_final(self) -> bool:
        return (self.status or "").lower() in FINAL_STATUSES


FINAL_STATUSES = frozenset({"final", "reviewed", "published", "approved"})


def from_import(rec: ImportedIncident) -> IncidentFacts:
    """An imported record as report facts: every time it states counts as imported."""
    pm = rec.postmortem
    return IncidentFacts(
        id=f"{rec.source}:{rec.id}",
        title=rec.title,
        origin=rec.source,
        kind=rec.kind,
        path=rec.url,
        severity=rec.severity,
        services=list(rec.services),
        teams=list(rec.teams),
        times=dict(rec.times),
        origins=dict.fromkeys(rec.times, "imported"),
        has_postmortem=pm is not None,
        status=pm.status if pm else None,
        reviewed_at=pm.reviewed_at if pm else None,
        reviewed_from="vendor" if pm and pm.reviewed_at else None,
        actions=[
            ActionFact(
                title=a.title,
                status=a.status,
                priority=a.priority or "",
                owner=a.owner or "",
                tracking=a.tracking,
                created=a.created,
                due=a.due,
                closed=a.closed,
            )
            for a in rec.action_items
        ],
        aliases=[rec.id, *rec.aliases],
        imported_from=[rec.source],
        summary=rec.description,
    )


def merge(draft: IncidentFacts, imported: IncidentFacts) -> IncidentFacts:
    """The draft with the imported record's gaps filled: the draft's milestones always win."""
    times = dict(draft.times)
    origins = dict(draft.origins)
    for name, at in imported.times.items():
        if name not in times:
            times[name] = at
            origins[name] = "imported"
    update: dict[str, Any] = {
        "times": times,
        "origins": origins,
        "severity": draft.severity or imported.severity,
        "services": draft.services or imported.services,
        "teams": draft.teams or imported.teams,
        "aliases": list(dict.fromkeys([*draft.aliases, imported.id, *imported.aliases])),
        "imported_from": list(dict.fromkeys([*draft.imported_from, *imported.imported_from])),
    }
    if not draft.actions:
        update["actions"] = imported.actions
    return draft.model_copy(update=update)
