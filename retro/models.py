"""Pydantic models shared by connectors, the pipeline, engines, stores and the CLI.

Connectors import only this module and `retro.errors`. Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

Source = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
"""A source is any registered connector's name (see retro.registry)."""

SourceRole = Literal[
    "chat",
    "monitor",
    "pager",
    "alerts",
    "tracker",
    "status_page",
    "changes",
    "transcript",
    "errors",
    "events",
]
"""What a source's events mean, declared by its connector (`Connector.roles`):

- chat: people talking (Slack, Teams); messages are evidence in people's words.
- monitor: a system that watches metrics and fires alerts (Alertmanager, Grafana, Datadog).
- pager: on-call paging; its alert and page events may copy a monitor's alert (PagerDuty).
- alerts: its alert_firing / alert_resolved events pair up by key into an alert's lifecycle.
- tracker: tickets whose status changes mean resolution (Jira).
- status_page: customer-facing status updates (Statuspage).
- changes: deploys, merges and releases: candidates for a trigger (GitHub).
- transcript: speech-to-text of a call; may support a milestone but is never its only evidence.
- errors: an error tracker's issues (Sentry): onset evidence for impact start.
- events: anything else written as generic records.
"""


class SourceInfo(BaseModel):
    """A registered source: what a draft calls it, and what its events mean."""

    model_config = ConfigDict(frozen=True)

    name: str
    title: str = Field(description="What a draft calls the source, e.g. 'PagerDuty'")
    roles: frozenset[str] = frozenset()
    order: int = 500
    low_trust: bool = False


EventKind = Literal[
    "message",
    "bot_message",
    "alert_firing",
    "alert_resolved",
    "page_triggered",
    "page_acknowledged",
    "page_unacknowledged",
    "page_escalated",
    "page_assigned",
    "page_notified",
    "page_resolved",
    "ticket_created",
    "status_change",
    "priority_change",
    "assignee_change",
    "field_change",
    "comment",
    "change_deployed",
    "note",
    "status_page_update",
    "error_spike",  # an error tracker saw errors start, come back or surge (Sentry)
    "membership",
    "other",
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]

CHAT_KINDS = frozenset({"message", "bot_message"})
# Tracker issue types that plan or record a change (a change request, a release): their
# tickets are never a signal that an incident began, nor a report of its symptoms.
CHANGE_TICKET = re.compile(r"change|deploy|release|maintenance", re.IGNORECASE)


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


UTCDateTime = Annotated[datetime, AfterValidator(_require_utc)]
_M = TypeVar("_M", bound=BaseModel)


def stable_hash(*parts: str, length: int = 12) -> str:
    """Short hex digest of the parts; stable across runs and machines."""
    digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:length]


class Actor(BaseModel):
    """Who did something, as one source names them."""

    model_config = ConfigDict(frozen=False)

    source: Source
    id: str | None = None
    name: str | None = None
    email: str | None = None
    title: str | None = None
    handle: str | None = Field(default=None, description="Chat handle, e.g. Slack display name")
    is_bot: bool = False
    is_human: bool = Field(
        default=False, description="The source says a person holds this account (GitHub 'User')"
    )
    person: str | None = Field(
        default=None, description="Key of the joined Person, set by the timeline stage"
    )

    def account(self) -> str | None:
        return f"{self.source}:{self.id}" if self.id else None


class Person(BaseModel):
    """One human (or bot) joined across sources by email, then by name."""

    key: str
    name: str | None = None
    handle: str | None = None
    handles: list[str] = Field(default_factory=list, description="Every chat handle seen")
    emails: list[str] = Field(default_factory=list)
    titles: list[str] = Field(default_factory=list)
    roles: list[str] = Field(
        default_factory=list, description="Incident roles, e.g. incident commander"
    )
    accounts: list[str] = Field(default_factory=list, description="source:id pairs")
    is_bot: bool = False


class Provenance(BaseModel):
    """Where an event came from: the bundle file and the record inside it."""

    file: str
    record: str

    @classmethod
    def of(cls, file: str, record: str) -> Provenance:
        """A Provenance from values that are str by their types, without re-validating them."""
        return _trusted(cls, {"file": file, "record": record})


class TimelineEvent(BaseModel):
    """One thing that happened, from one source, normalized."""

    id: str = Field(
        default="", description="Short stable id such as E3fa9c; set by the timeline stage"
    )
    key: str = Field(description="Source-native unique key; the stable id derives from it")
    at: UTCDateTime
    source: Source
    kind: EventKind
    actor: Actor | None = None
    text: str = ""
    url: str | None = None
    thread: str | None = Field(default=None, description="Key of the thread's root event")
    parent: str | None = Field(default=None, description="Key of the event this one replies to")
    provenance: Provenance
    attrs: dict[str, Any] = Field(default_factory=dict)
    links: list[str] = Field(
        default_factory=list, description="Ids of the same happening seen by other sources"
    )
    duplicate_of: str | None = Field(
        default=None, description="Id of the primary event when linked"
    )
    is_bot: bool = False
    edited: bool = False

    @classmethod
    def of(
        cls,
        *,
        key: str,
        at: datetime,
        source: Source,
        kind: EventKind,
        provenance: Provenance,
        actor: Actor | None = None,
        text: str = "",
        url: str | None = None,
        thread: str | None = None,
        parent: str | None = None,
        attrs: dict[str, Any] | None = None,
        is_bot: bool = False,
        edited: bool = False,
    ) -> TimelineEvent:
        """An event from values that already have their declared types.

        Connectors build one event per record, so validating each one again would cost more
        than reading it: a connector checks the raw record at the boundary (times, shapes) and
        hands over typed values, which mypy checks at every call. Only the one invariant that
        types cannot express, an aware UTC `at`, is checked here.
        """
        if at.tzinfo is not UTC:
            at = _require_utc(at)
        values = {
            "id": "",
            "key": key,
            "at": at,
            "source": source,
            "kind": kind,
            "actor": actor,
            "text": text,
            "url": url,
            "thread": thread,
            "parent": parent,
            "provenance": provenance,
            "attrs": {} if attrs is None else attrs,
            "links": [],
            "duplicate_of": None,
            "is_bot": is_bot,
            "edited": edited,
        }
        return _trusted(cls, values)


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """An instance of cls holding values (every field, in field order) without validation.

    The same as cls.model_construct(**values) for a complete set of values, minus the
    per-call work model_construct does for defaults, which is most of its cost.
    """
    obj = _new(cls)
    _set(obj, "__dict__", values)
    # Every field is set, so every instance can share one set: pydantic only ever adds the
    # name of an assigned field to it, which is already there. A set per event would cost
    # 0.7 kB each, a fifth of a big timeline's memory.
    every = _ALL_SET.get(cls)
    if every is None:
        every = _ALL_SET[cls] = set(cls.__pydantic_fields__)
    _set(obj, "__pydantic_fields_set__", every)
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


_new = object.__new__  # BaseModel defines no __new__; object's, called directly, is cheaper
_set = object.__setattr__
_ALL_SET: dict[type[BaseModel], set[str]] = {}


class SourceReport(BaseModel):
    """What one source contributed: files read, events made, records skipped and why."""

    name: str
    status: Literal["ok", "partial", "failed", "empty"] = "ok"
    files: list[str] = Field(default_factory=list)
    records: int = 0
    events: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    error: str | None = None

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def counts(self) -> str:
        """What was skipped, then, apart, the copies merged into an event already read (repeated
        notifications, the same message in two files): those are not lost."""
        merged = {r: n for r, n in self.skipped.items() if _MERGED.search(r)}
        skipped = {r: n for r, n in self.skipped.items() if r not in merged}
        text = "skipped: " + (", ".join(f"{n} {r}" for r, n in sorted(skipped.items())) or "none")
        if merged:
            text += "; merged: " + ", ".join(f"{n} {r}" for r, n in sorted(merged.items()))
        return text


_MERGED = re.compile(r"^(?!conflicting)(?=.*\b(merged|duplicate|repeated)\b)", re.I)


class WindowSpec(BaseModel):
    start: UTCDateTime | None = None
    end: UTCDateTime | None = None


class IncidentMeta(BaseModel):
    """The contents of a bundle's incident.yaml."""

    model_config = ConfigDict(extra="allow")

    id: str
    title: str | None = None
    severity: str | None = None
    services: list[str] = Field(default_factory=list)
    timezone: str | None = None
    window: WindowSpec = Field(default_factory=WindowSpec)
    slack_channels: list[str] = Field(default_factory=list)
    pagerduty_incidents: list[str] = Field(default_factory=list)
    opsgenie_alerts: list[str] = Field(default_factory=list)
    jira_keys: list[str] = Field(default_factory=list)
    people: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Extra identities: source id -> {name, email, title}"
    )


class Window(BaseModel):
    start: UTCDateTime
    end: UTCDateTime
    reason: str


class Timeline(BaseModel):
    """The normalized, deduplicated, windowed timeline of one incident."""

    incident: IncidentMeta
    events: list[TimelineEvent]
    people: dict[str, Person] = Field(default_factory=dict)
    window: Window | None = None
    sources: list[SourceReport] = Field(default_factory=list)
    dropped: dict[str, int] = Field(
        default_factory=dict, description="reason -> count, after reading"
    )
    source_info: dict[str, SourceInfo] = Field(
        default_factory=dict, description="What each source's events mean (from its connector)"
    )

    def by_id(self) -> dict[str, TimelineEvent]:
        return {e.id: e for e in self.events}

    def with_role(self, role: str) -> frozenset[str]:
        """The sources whose connector declares `role` (every registered one when unknown)."""
        infos = self.source_info
        if not infos:
            from retro import registry  # a hand-built timeline: ask the registry

            infos = registry.source_info()
        return frozenset(name for name, info in infos.items() if role in info.roles)

    def title_of(self, source: str) -> str:
        """What a draft calls a source: its connector's display title, else the name."""
        info = self.source_info.get(source)
        if info is None:
            from retro import registry

            info = registry.source_info().get(source)
        return info.title if info is not None else source


# --- Postmortem drafts -------------------------------------------------------------------------

MilestoneName = Literal[
    "impact_start", "detected", "acknowledged", "declared", "mitigated", "resolved", "first_update"
]
MILESTONES: tuple[str, ...] = (
    "impact_start",
    "detected",
    "acknowledged",
    "declared",
    "mitigated",
    "resolved",
    "first_update",
)
ActionType = Literal["investigate", "prevent", "mitigate", "repair", "detect", "process"]
Priority = Literal["P0", "P1", "P2"]
ActionStatus = Literal["proposed", "approved", "open", "in_progress", "done", "skipped", "wontfix"]


class Milestone(BaseModel):
    name: MilestoneName
    at: UTCDateTime | None = Field(default=None, description="When it happened, UTC")
    evidence: list[str] = Field(
        default_factory=list, description="Ids of supporting timeline events"
    )
    confidence: float = Field(default=0.0, ge=0.0, le=1.0, description="0..1")
    rule: str = Field(default="", description="The rule that chose this time")
    overridden: bool = Field(default=False, description="A person set this time in the Markdown")


class Metrics(BaseModel):
    time_to_detect_s: int | None = None
    time_to_acknowledge_s: int | None = None
    time_to_mitigate_s: int | None = None
    time_to_resolve_s: int | None = None
    duration_s: int | None = None
    time_to_first_update_s: int | None = Field(
        default=None, description="Impact start to the first customer-facing status update"
    )


class Claim(BaseModel):
    """One factual sentence with the ids of the events behind it."""

    text: str = Field(description="One sentence, blameless, with no citation markers inside")
    citations: list[str] = Field(
        default_factory=list, description="Timeline event ids, e.g. E3fa9c"
    )


class ActionItem(BaseModel):
    title: str = Field(description="Imperative, specific title")
    type: ActionType = Field(
        description="investigate, prevent, mitigate, repair, detect or process"
    )
    priority: Priority = Field(description="P0 (urgent) to P2")
    owner: str = Field(description="A role or team, never a person's name")
    end_state: str = Field(description="A verifiable end state: how anyone can tell it is done")
    tracking: str = Field(default="", description="Jira key once filed")
    status: ActionStatus = Field(default="proposed")
    citations: list[str] = Field(default_factory=list, description="Event ids that motivate it")
    origin: Literal["stated", "gap", "human"] = Field(
        default="gap",
        description="stated during the incident, a gap the evidence shows, or added by a human",
    )


class SimilarIncident(BaseModel):
    id: str
    title: str
    score: float
    url: str | None = None
    why: list[str] = Field(default_factory=list)
    open_action_items: list[str] = Field(default_factory=list)
    repeat: bool = Field(
        default=False,
        description="At or above the calibrated repeat threshold (retro.index.repeats)",
    )


# The Postmortem fields that hold cited claims, in the order the draft shows them.
CLAIM_FIELDS: tuple[str, ...] = (
    "summary",
    "impact",
    "detection",
    "response",
    "recovery",
    "trigger",
    "root_cause",
    "contributing_factors",
    "went_well",
    "went_poorly",
    "got_lucky",
)


class Postmortem(BaseModel):
    """A postmortem draft: what engines fill, what render writes and review reads back."""

    incident_id: str
    title: str
    severity: str | None = None
    status: str = "draft"
    services: list[str] = Field(default_factory=list)
    started: UTCDateTime | None = None
    ended: UTCDateTime | None = None
    engine: str = "offline"
    model: str | None = None
    generator_version: str = ""
    summary: list[Claim] = Field(default_factory=list)
    impact: list[Claim] = Field(default_factory=list)
    detection: list[Claim] = Field(default_factory=list)
    response: list[Claim] = Field(default_factory=list)
    recovery: list[Claim] = Field(default_factory=list)
    root_cause: list[Claim] = Field(default_factory=list)
    trigger: list[Claim] = Field(default_factory=list)
    contributing_factors: list[Claim] = Field(default_factory=list)
    went_well: list[Claim] = Field(default_factory=list)
    went_poorly: list[Claim] = Field(default_factory=list)
    got_lucky: list[Claim] = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    milestones: dict[str, Milestone] = Field(default_factory=dict)
    metrics: Metrics = Field(default_factory=Metrics)
    timeline: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Rows of the timeline table: id, at, source, kind, actor, text, key",
    )
    similar: list[SimilarIncident] = Field(default_factory=list)
    sources: list[SourceReport] = Field(default_factory=list)
    redactions: dict[str, int] = Field(default_factory=dict)


def seconds_between(a: datetime | None, b: datetime | None) -> int | None:
    if a is None or b is None:
        return None
    return int((b - a) / timedelta(seconds=1))


Progress = Callable[[str, int, int | None], None]
"""progress(label, done, total): stages and connectors report long work; the CLI draws it."""


def no_progress(label: str, done: int, total: int | None) -> None:
    """A progress callback that ignores everything."""
