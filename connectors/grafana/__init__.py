"""Grafana alerting: unified-alerting webhook payloads (and legacy webhooks) in file mode.

Grafana pushes notifications to a webhook contact point; there is no history API to pull, so
this connector has no live mode. Keys follow the Alertmanager contract (fingerprint + startsAt),
so repeated notifications of one alert collapse into one event.

- `read.py`: file mode (the alert reading itself is shared with connectors/alertmanager).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.grafana import read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.errors import ConfigError
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["GrafanaConnector"]


class GrafanaConfig(BaseModel):
    """Grafana has no live mode: capture its webhook notifications into the bundle instead."""


class GrafanaConnector(Connector):
    """Grafana unified-alerting webhook notifications (contact point type "webhook")."""

    name: ClassVar[str] = "grafana"
    title: ClassVar[str] = "Grafana alerting"
    display: ClassVar[str] = "Grafana"
    roles: ClassVar[frozenset[str]] = frozenset({"monitor", "alerts"})
    order: ClassVar[int] = 50
    Config: ClassVar[type[BaseModel]] = GrafanaConfig
    docs_url: ClassVar[str] = (
        "https://grafana.com/docs/grafana/latest/alerting/configure-notifications/"
        "manage-contact-points/integrations/webhook-notifier/"
    )

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
        raise ConfigError(
            "grafana: there is no live mode; Grafana pushes alerts to webhooks and keeps no "
            "notification history",
            hint="save webhook bodies as JSON files in the bundle; see docs/connectors/grafana.md",
        )
