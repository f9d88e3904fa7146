"""Statuspage: incidents and their customer-facing updates (investigating, identified,
monitoring, resolved).

- `read.py`: file mode. Manage API `GET /v1/pages/{id}/incidents` bodies, public status API
  `/api/v2/incidents.json` or `/api/v2/summary.json` bodies, recognised by `incident_updates`.
- `history.py`: history import for `retro import statuspage` (Manage API or a public page).
- `live.py`: live mode for `retro harvest --from statuspage=…` (Manage API or a public page),
  writing the same bodies under out/statuspage/ so harvest -> read_bundle round-trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.statuspage import history, live, read
from retro.connector import (
    Connector,
    Doc,
    HistoryQuery,
    ImportedIncident,
    IncidentRef,
    ReadContext,
)
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["StatuspageConnector"]


class StatuspageConnector(Connector):
    """Customer-facing incident updates from Atlassian Statuspage."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "Statuspage"
    display: ClassVar[str] = "the status page"
    roles: ClassVar[frozenset[str]] = frozenset({"status_page"})
    order: ClassVar[int] = 70
    Config: ClassVar[type[BaseModel]] = history.StatuspageConfig
    docs_url: ClassVar[str] = "docs/report.md"
    history_help: ClassVar[str] = "incidents with their updates: started, monitoring, resolved"
    harvest_help: ClassVar[str] = (
        "a public page URL (https://status.example.com, or …/incidents/<id>), "
        "a page id, or <page id>/<incident id> (Manage API)"
    )

    def claims(self, doc: Doc) -> bool:
        return read.claims(doc)

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return read.read_bundle(docs, ctx)

    def import_history(
        self, query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
    ) -> Iterator[ImportedIncident]:
        return history.import_history(query, config, progress)

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
