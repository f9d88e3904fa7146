"""Prometheus Alertmanager: webhook payloads and API v2 bodies in file mode; API v2 live.

Alertmanager re-sends the same alert in many notifications. Every copy of one alert (the same
fingerprint and startsAt) gets the same event key, so repeats collapse into one event; the
connector also merges them itself and counts them in attrs["notifications"].

- `read.py`: file mode, and the alert reading Grafana's connector shares.
- `live.py`: live mode (API v2: the current alerts only; Alertmanager keeps no history).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.alertmanager import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["AlertmanagerConnector"]


class AlertmanagerConnector(Connector):
    """Prometheus Alertmanager alerts: webhook notifications and API v2 bodies."""

    name: ClassVar[str] = "alertmanager"
    title: ClassVar[str] = "Prometheus Alertmanager"
    display: ClassVar[str] = "Alertmanager"
    roles: ClassVar[frozenset[str]] = frozenset({"monitor", "alerts"})
    order: ClassVar[int] = 40
    harvest_help: ClassVar[str] = "current (a snapshot of the alerts firing now)"
    Config: ClassVar[type[BaseModel]] = live.AlertmanagerConfig
    docs_url: ClassVar[str] = "https://prometheus.io/docs/alerting/latest/clients/"

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
