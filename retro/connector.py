"""The connector interface, and helpers every connector shares.

A connector turns one source's raw data into `TimelineEvent`s. It has two modes:
- file mode (`read_bundle`): parse the vendor's own JSON that lies in an incident bundle;
- live mode (`harvest`): call the vendor's API and write that JSON into a bundle.

Connectors import only `retro.models`, `retro.errors` and this module.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from retro.errors import BundleError, ConfigError
from retro.models import (
    IncidentMeta,
    Progress,
    SourceInfo,
    SourceReport,
    TimelineEvent,
    UTCDateTime,
    no_progress,
)

DocFormat = Literal["json", "jsonl", "csv"]


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


# --- helpers -----------------------------------------------------------------------------------

_EPOCH = re.compile(r"^\d{9,13}(\.\d+)?$")
_NAIVE_HINT = "add a zone (Z or +00:00) or set `timezone:` in incident.yaml"


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
    silently shifts the whole timeline.
    """
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        dt = _from_epoch(float(value))
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if _EPOCH.match(text):
            dt = _from_epoch(float(text))
        else:
            dt = _from_iso(text, path=path, record=record, field_name=field_name)
    else:
        raise BundleError(
            path,
            f"{field_name} is missing or empty ({value!r})",
            record=record,
            hint="every record needs a timestamp",
        )
    if dt.tzinfo is None or dt.utcoffset() is None:
        if tz is None:
            raise BundleError(
                path, f"{field_name} {value!r} has no time zone", record=record, hint=_NAIVE_HINT
            )
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(UTC)


def _from_epoch(seconds: float) -> datetime:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000.0
    return datetime.fromtimestamp(seconds, tz=UTC)


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
            f"{field_name} {text!r} is not a valid timestamp",
            record=record,
            hint="use ISO 8601, e.g. 2024-05-01T14:03:00Z",
        ) from None


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
