"""The connector interface, and helpers every connector shares.

A connector turns one source's raw data into `TimelineEvent`s. It has two modes:
- file mode (`read_bundle`): parse the vendor's own JSON that lies in an incident bundle;
- live mode (`harvest`): call the vendor's API and write that JSON into a bundle.

A connector may also offer `import_history`: past incident records (`ImportedIncident`, not
timelines) for `retro import` and the reliability report, from the live API or saved bodies.

Connectors import only `retro.models`, `retro.errors` and this module.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from retro.errors import BundleError, ConfigError
from retro.models import (
    Actor,
    IncidentMeta,
    Progress,
    Provenance,
    SourceInfo,
    SourceReport,
    TimelineEvent,
    UTCDateTime,
    no_progress,
)

DocFormat = Literal["json", "jsonl", "csv", "text"]
"""How a Doc's data was parsed; "text" (a .vtt, .srt or .txt file) holds the decoded str."""


@dataclass
class Doc:
    """One parsed file of a bundle (or one member of a Slack export zip)."""

    rel: str
    data: Any
    fmt: DocFormat = "json"
    path: Path | None = None


class IncidentRef(BaseModel):
    """What to harvest for one incident from live APIs.

    `targets` maps a source's name to what its connector should fetch, in the form the
    connector's `harvest_help` describes: Slack channel names, PagerDuty incident ids,
    Opsgenie `alert:<id>` / `incident:<id>`, Jira issue keys, and so on. A third-party
    connector reads its own entry the same way.
    """

    incident_id: str
    targets: dict[str, list[str]] = Field(default_factory=dict)
    since: UTCDateTime | None = None
    until: UTCDateTime | None = None

    def of(self, source: str) -> list[str]:
        """What `source` is asked to fetch; empty when it is not part of this harvest."""
        return list(self.targets.get(source, []))


class HistoryQuery(BaseModel):
    """What `retro import` asks a connector for: a time range, and saved files or the live API."""

    since: UTCDateTime | None = None
    until: UTCDateTime | None = None
    files: list[Path] = Field(
        default_factory=list, description="Bodies saved from the vendor's API; empty: live API"
    )
    what: list[str] = Field(
        default_factory=list,
        description="Which kinds of record, as the connector's history_help names them; empty: "
        "its default",
    )
    filter: str | None = Field(
        default=None, description="A vendor-side filter, e.g. Jira JQL or an Opsgenie query"
    )
    skipped: dict[str, int] = Field(
        default_factory=dict, description="reason -> count of records the connector left out"
    )

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def wants(self, at: datetime | None) -> bool:
        """True when a record that started at `at` lies inside the range (unknown: kept)."""
        if at is None:
            return True
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


class ImportedAction(BaseModel):
    """One follow-up / action item of an imported incident."""

    title: str
    status: Literal["open", "in_progress", "done", "wontfix"] = "open"
    priority: str | None = Field(default=None, description="As the vendor names it, e.g. high")
    owner: str | None = Field(default=None, description="Owning team, never a person's name")
    created: UTCDateTime | None = None
    due: UTCDateTime | None = None
    closed: UTCDateTime | None = None
    tracking: str = Field(default="", description="Issue key or URL in a tracker, if any")


class ImportedPostmortem(BaseModel):
    """The incident's postmortem / retrospective in the vendor's tool."""

    status: Literal["draft", "final"] = "draft"
    url: str | None = None
    reviewed_at: UTCDateTime | None = Field(
        default=None, description="When it became final (published / completed)"
    )
    markdown: str = Field(default="", description="The document's content, when the API has it")


class ImportedIncident(BaseModel):
    """One past incident as a vendor's API describes it: what the report needs, no timeline.

    `times` uses the draft's milestone names (impact_start, detected, acknowledged, declared,
    mitigated, resolved), plus `impact_end` when the vendor records customer impact separately.
    A connector fills only what the vendor states; it never guesses a missing time.
    """

    source: str = Field(description="The connector's name")
    id: str = Field(description="The vendor's id; stable across imports")
    title: str
    description: str = ""
    url: str | None = None
    severity: str | None = None
    priority: str | None = None
    status: str | None = None
    kind: str = Field(default="incident", description="incident, or alert (Opsgenie alerts)")
    services: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    times: dict[str, UTCDateTime] = Field(default_factory=dict)
    action_items: list[ImportedAction] = Field(default_factory=list)
    postmortem: ImportedPostmortem | None = None
    aliases: list[str] = Field(
        default_factory=list, description="Other names of the incident: reference, number, key"
    )
    updates: int = Field(default=0, description="Customer-facing status updates posted")
    provenance: str = Field(default="", description="The file and record, or the API path")


@dataclass
class ReadContext:
    """What a connector needs while it reads a bundle."""

    bundle: Path
    incident: IncidentMeta
    report: SourceReport
    tz: tzinfo | None = None
    lenient: bool = False
    progress: Progress = no_progress
    extra: dict[str, Any] = field(default_factory=dict)

    def time(self, value: Any, *, doc: Doc, record: str, field_name: str = "time") -> datetime:
        """Parse a timestamp from any common form into aware UTC, or raise BundleError."""
        return parse_time(value, tz=self.tz, path=doc.rel, record=record, field_name=field_name)

    def reject(self, err: BundleError, reason: str = "invalid record") -> None:
        """Strict mode: raise err. Lenient mode (--lenient): count the record as skipped."""
        if not self.lenient:
            raise err
        self.report.skip(f"{reason}: {err.message}"[:160])

    def each_record(
        self,
        docs: list[Doc],
        records_of: Callable[[Any], list[dict[str, Any]] | None],
        events_of: Callable[[dict[str, Any], Doc, ReadContext, str], Iterator[TimelineEvent]],
        label: Callable[[int, dict[str, Any]], str],
    ) -> Iterator[TimelineEvent]:
        """The events of every record in the docs: a record whose events raise BundleError is
        rejected whole (`reject`), and an event whose key was already read is counted as a
        duplicate, not read twice."""
        seen: set[str] = set()
        listed = set(self.report.files)  # the bundle reader lists the files it handed over
        for doc in docs:
            if doc.rel not in listed:
                listed.add(doc.rel)
                self.report.files.append(doc.rel)
            for n, item in enumerate(records_of(doc.data) or []):
                record = label(n, item)
                self.report.records += 1
                try:
                    events = list(events_of(item, doc, self, record))
                except BundleError as err:
                    self.reject(err)
                    continue
                for event in events:
                    if event.key in seen:
                        self.report.skip("duplicate record")
                        continue
                    seen.add(event.key)
                    self.report.events += 1
                    yield event


class Connector(ABC):
    """One source. Metadata as class attributes, as llm's model plugins do."""

    name: ClassVar[str]
    title: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    docs_url: ClassVar[str] = ""
    display: ClassVar[str] = ""  # what a draft calls the source ("PagerDuty"); default: title
    roles: ClassVar[frozenset[str]] = frozenset()  # what its events mean: see models.SourceRole
    order: ClassVar[int] = 500  # claim order (low first); also breaks ties at the same time
    low_trust: ClassVar[bool] = False  # its events never stand alone as a milestone's evidence
    harvest_help: ClassVar[str] = ""  # what `retro harvest --from NAME=VALUE` takes, if anything

    @classmethod
    def info(cls) -> SourceInfo:
        """What the pipeline needs to know about this source's events."""
        return SourceInfo(
            name=cls.name,
            title=cls.display or cls.title,
            roles=cls.roles,
            order=cls.order,
            low_trust=cls.low_trust,
        )

    @abstractmethod
    def claims(self, doc: Doc) -> bool:
        """True when this connector recognizes the document by its content."""

    @abstractmethod
    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        """Turn the claimed documents into events. Count what is skipped in ctx.report."""

    def harvest(
        self,
        ref: IncidentRef,
        out: Path,
        config: BaseModel,
        progress: Progress = no_progress,
    ) -> SourceReport:
        """Fetch the incident's data from the live API and write it under out/<name>/."""
        raise ConfigError(f"{self.name}: live harvest is not supported by this connector")

    def check(self, config: BaseModel) -> list[str]:
        """Verify credentials and scopes; return what was verified. Raise on failure."""
        raise ConfigError(f"{self.name}: `sources check` is not supported by this connector")

    def client(self, config: BaseModel) -> Any:
        """Optional: a connected client of the source's API, for core features that act on the
        source rather than read it (e.g. `retro file-actions` files issues through Jira's).

        The connector decides what the client is and documents it (retries, what it exposes);
        the caller closes it. Raise MissingCredential or ConfigError when the settings cannot
        make one, ConnectorError when the source cannot be reached.
        """
        raise ConfigError(f"{self.name}: this connector offers no API client")

    # -- optional: history import (`retro import`) ------------------------------------------------
    history_help: ClassVar[str] = ""  # what `retro import NAME` brings in, for --help and docs

    def import_history(
        self,
        query: HistoryQuery,
        config: BaseModel,
        progress: Progress = no_progress,
    ) -> Iterator[ImportedIncident]:
        """Past incident records (not bundles) for the reliability report.

        Optional. File mode when `query.files` is set (bodies saved from the vendor's API),
        live mode otherwise (paginated, under retro.retry). Records outside `query.since` /
        `query.until` are left out; each record's `id` is stable, so a second import of the
        same history replaces records instead of adding them.
        """
        raise ConfigError(
            f"{self.name}: history import is not supported by this connector",
            hint="run `retro import --help` for the sources that support it",
        )

    @classmethod
    def imports_history(cls) -> bool:
        """True when the connector overrides `import_history`."""
        return cls.import_history is not Connector.import_history


# --- helpers -----------------------------------------------------------------------------------

_EPOCH = re.compile(r"^\d{9,13}(\.\d+)?$")
_NAIVE_HINT = "add a zone (Z or +00:00) or set `timezone:` in incident.yaml"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""parse_time accepts times from EARLIEST up to LATEST: anything else is a corrupt or
placeholder value (Alertmanager's 0001-01-01, a year 9999), and the timeline's margins and
durations must never overflow the calendar."""


def parse_time(
    value: Any,
    *,
    tz: tzinfo | None = None,
    path: str = "?",
    record: str = "?",
    field_name: str = "time",
) -> datetime:
    """Parse ISO 8601 strings, epoch seconds/milliseconds (numbers or strings) and Slack ts values.

    Naive ISO times take `tz` when given; otherwise they are an error, since guessing a zone
    silently shifts the whole timeline. A time outside 1970-2199 is an error too.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        dt = _from_epoch(float(value), value, path=path, record=record, field_name=field_name)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if _EPOCH.match(text):
            dt = _from_epoch(float(text), value, path=path, record=record, field_name=field_name)
        else:
            dt = _from_iso(text, path=path, record=record, field_name=field_name)
    else:
        raise BundleError(
            path,
            f"{field_name} is missing or empty ({_short(value)})",
            record=record,
            hint="every record needs a timestamp",
        )
    if dt.tzinfo is None or dt.utcoffset() is None:
        if tz is None:
            raise BundleError(
                path,
                f"{field_name} {_short(value)} has no time zone",
                record=record,
                hint=_NAIVE_HINT,
            )
        dt = dt.replace(tzinfo=tz)
    try:
        dt = dt.astimezone(UTC)
    except (OverflowError, ValueError):
        raise _out_of_range(value, path, record, field_name) from None
    if not EARLIEST <= dt < LATEST:
        raise _out_of_range(value, path, record, field_name)
    return dt


def _short(value: Any) -> str:
    """repr of a value, cut so an error stays one line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _out_of_range(value: Any, path: str, record: str, field_name: str) -> BundleError:
    return BundleError(
        path,
        f"{field_name} {_short(value)} is outside the years 1970 to 2199",
        record=record,
        hint="the record holds a placeholder or corrupt time; fix or remove it",
    )


def _from_epoch(seconds: float, value: Any, *, path: str, record: str, field_name: str) -> datetime:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000.0
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, ValueError, OSError):
        raise _out_of_range(value, path, record, field_name) from None


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _from_iso(text: str, *, path: str, record: str, field_name: str) -> datetime:
    cleaned = text.replace("Z", "+00:00").replace("z", "+00:00")
    cleaned = _FRACTION.sub(r"\1", cleaned)  # Go and Alertmanager write nanoseconds
    if re.search(r"[+-]\d{4}$", cleaned):  # Jira writes +0000
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    try:
        return datetime.fromisoformat(cleaned)
    except ValueError:
        raise BundleError(
            path,
            f"{field_name} {_short(text)} is not a valid timestamp",
            record=record,
            hint="use ISO 8601, e.g. 2024-05-01T14:03:00Z",
        ) from None


def filed_follow_up(
    *,
    event_key: str,
    at: datetime,
    source: str,
    title: str,
    doc: Doc,
    record: str,
    url: Any,
    actor: Actor | None = None,
    **fields: Any,
) -> TimelineEvent:
    """A follow-up the team filed in its incident tool, as a `ticket_created` event marked
    `attrs.follow_up`: the draft takes it as an action item as written, whenever it was filed.
    `actor` is who filed it; `fields` (issuetype, key, status, …) are kept when they hold
    something."""
    attrs = {**fields, "follow_up": True}
    return TimelineEvent.of(
        key=event_key,
        at=at,
        source=source,
        kind="ticket_created",
        text=title,
        url=url or None,
        provenance=Provenance.of(doc.rel, record),
        attrs={k: v for k, v in attrs.items() if v not in (None, "")},
        actor=actor,
    )


def shape_error(doc: Doc, record: str, message: str, hint: str) -> BundleError:
    """A BundleError for a record whose structure is not what the vendor sends."""
    return BundleError(doc.rel, message, record=record, hint=hint)


def first(mapping: dict[str, Any], *keys: str, default: Any = None) -> Any:
    """The first present, non-empty value among keys."""
    for key in keys:
        value = mapping.get(key)
        if value not in (None, "", [], {}):
            return value
    return default
