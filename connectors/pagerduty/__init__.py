"""PagerDuty: REST API v2 incidents, log entries, alerts, notes and users, as timeline events.

- `read.py`: file mode. The REST v2 bodies (and v3 webhooks), recognised by content (see
  docs/connectors/pagerduty.md).
- `live.py`: live mode. Fetches the same bodies with httpx and writes them under
  out/pagerduty/, so harvest -> read_bundle round-trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.pagerduty import history, live, read
from retro.connector import (
    Connector,
    Doc,
    HistoryQuery,
    ImportedIncident,
    IncidentRef,
    ReadContext,
)
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["PagerDutyConnector"]


class PagerDutyConnector(Connector):
    """Incidents, log entries, alerts and notes from the PagerDuty REST API v2."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "PagerDuty"
    display: ClassVar[str] = "PagerDuty"
    roles: ClassVar[frozenset[str]] = frozenset({"pager"})
    order: ClassVar[int] = 20
    harvest_help: ClassVar[str] = "an incident id"
    Config: ClassVar[type[BaseModel]] = live.PagerDutyConfig
    docs_url: ClassVar[str] = "https://developer.pagerduty.com/api-reference/"

    def claims(self, doc: Doc) -> bool:
        return read.claims(doc)

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return read.read_bundle(docs, ctx)

    def harvest(
        self,
        ref: IncidentRef,
        out: Path,
        config: BaseModel,
        progress: Progress = no_progress,
    ) -> SourceReport:
        return live.harvest(ref, out, config, progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check(config)

    history_help: ClassVar[str] = "incidents: created, acknowledged, resolved, service, priority"

    def import_history(
        self, query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
    ) -> Iterator[ImportedIncident]:
        return history.import_history(query, config, progress)
