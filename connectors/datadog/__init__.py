"""Datadog: events v2 (monitor notifications), monitors, and incidents v2, as timeline events.

- `read.py`: file mode. API bodies recognised by content; monitor notifications become
  `alert_firing` / `alert_resolved` pairs per monitor, group and alert cycle.
- `incidents.py`: incidents, to-dos and impacts, with the milestones they state in `attrs`.
- `live.py`: live mode. Fetches the same bodies with httpx (on any Datadog site) and writes
  them under out/datadog/, so harvest -> read_bundle round-trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.datadog import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["DatadogConnector"]


class DatadogConnector(Connector):
    """Monitor notifications, monitors and incidents from the Datadog API."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "Datadog"
    display: ClassVar[str] = "Datadog"
    roles: ClassVar[frozenset[str]] = frozenset({"monitor", "alerts"})
    order: ClassVar[int] = 45
    harvest_help: ClassVar[str] = (
        "incident:<number or UUID>, monitor:<id> or events:<query> "
        "(e.g. incident:4217, monitor:34822915, events:source:alert service:checkout)"
    )
    Config: ClassVar[type[BaseModel]] = live.DatadogConfig
    docs_url: ClassVar[str] = "https://docs.datadoghq.com/api/latest/"

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
