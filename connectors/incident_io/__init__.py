"""incident.io: incidents with their timestamps and updates, follow-ups, and postmortem
documents (whose content the API returns as Markdown).

- `read.py`: file mode. Saved `GET /v2/incidents[/{id}]` and `GET /v2/incident_updates` bodies
  become timeline events (custom timestamps, status and severity updates).
- `live.py`: settings and the API client (`Authorization: Bearer`, `after` cursor pagination).
- `history.py`: history import for `retro import incident_io`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import BaseModel

from connectors.incident_io import history, live, read
from retro.connector import Connector, Doc, HistoryQuery, ImportedIncident, ReadContext
from retro.models import Progress, TimelineEvent, no_progress

__all__ = ["IncidentIoConnector"]


class IncidentIoConnector(Connector):
    """Incidents, updates, follow-ups and postmortem documents from incident.io."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "incident.io"
    display: ClassVar[str] = "incident.io"
    roles: ClassVar[frozenset[str]] = frozenset({"tracker"})
    order: ClassVar[int] = 66
    Config: ClassVar[type[BaseModel]] = live.IncidentIoConfig
    docs_url: ClassVar[str] = "docs/connectors/incident_io.md"
    history_help: ClassVar[str] = "incidents with timestamps, follow-ups and postmortem documents"

    def claims(self, doc: Doc) -> bool:
        return read.claims(doc)

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return read.read_bundle(docs, ctx)

    def import_history(
        self, query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
    ) -> Iterator[ImportedIncident]:
        return history.import_history(query, config, progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check(config)
