"""Opsgenie: alerts with their logs and notes, and incidents with their timelines, as events.

- `read.py`: file mode. The API's JSON bodies, recognised by content (see
  docs/connectors/opsgenie.md).
- `live.py`: live mode. Fetches them with httpx and writes one file per alert, `{"data":
  {alert}, "logs": {"data": [...]}, "notes": {"data": [...]}}`, and one per incident, `{"data":
  {incident}, "timeline": {"data": {"entries": [...]}}}`, because a logs, notes or timeline body
  alone does not say which alert or incident it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.opsgenie import history, live, read
from retro.connector import (
    Connector,
    Doc,
    HistoryQuery,
    ImportedIncident,
    IncidentRef,
    ReadContext,
)
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["OpsgenieConnector"]


class OpsgenieConnector(Connector):
    """Alerts, alert logs and notes, incidents and incident timelines from the Opsgenie API."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "Opsgenie"
    display: ClassVar[str] = "Opsgenie"
    roles: ClassVar[frozenset[str]] = frozenset({"pager", "alerts"})
    order: ClassVar[int] = 30
    harvest_help: ClassVar[str] = "alert:<id> or incident:<id>"
    Config: ClassVar[type[BaseModel]] = live.OpsgenieConfig
    docs_url: ClassVar[str] = "https://docs.opsgenie.com/docs/alert-api"

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

    history_help: ClassVar[str] = (
        "incidents (default) and alerts: created, acknowledged, closed, priority"
    )

    def import_history(
        self, query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
    ) -> Iterator[ImportedIncident]:
        return history.import_history(query, config, progress)
