"""Rootly: incidents, their events, action items and retrospectives (JSON:API, `/v1`).

- `read.py`: file mode. Saved `GET /v1/incidents[/{id}]` and `/v1/incidents/{id}/events` bodies
  become timeline events (milestone timestamps and the incident's event log).
- `live.py`: settings and the API client (`Authorization: Bearer`, page[number] pagination).
- `history.py`: history import for `retro import rootly`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import BaseModel

from connectors.rootly import history, live, read
from retro.connector import Connector, Doc, HistoryQuery, ImportedIncident, ReadContext
from retro.models import Progress, TimelineEvent, no_progress

__all__ = ["RootlyConnector"]


class RootlyConnector(Connector):
    """Incidents, events, action items and retrospectives from Rootly."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "Rootly"
    display: ClassVar[str] = "Rootly"
    roles: ClassVar[frozenset[str]] = frozenset({"tracker"})
    order: ClassVar[int] = 65
    Config: ClassVar[type[BaseModel]] = live.RootlyConfig
    docs_url: ClassVar[str] = "docs/connectors/rootly.md"
    history_help: ClassVar[str] = "incidents with action items and retrospectives"

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
