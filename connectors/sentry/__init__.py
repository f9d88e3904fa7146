"""Sentry: error issues, their first-seen times, regressions, escalations and activity.

- `read.py`: file mode. API 0 issue lists and issue details (with `activity`), and integration
  webhooks, recognised by content. Error onset becomes an `error_spike` event.
- `live.py`: live mode (sentry.io or self-hosted). Fetches the same bodies with httpx and writes
  them under out/sentry/, so harvest -> read_bundle round-trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.sentry import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["SentryConnector"]


class SentryConnector(Connector):
    """Error issues and their activity from Sentry."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "Sentry"
    display: ClassVar[str] = "Sentry"
    roles: ClassVar[frozenset[str]] = frozenset({"errors"})
    # Early: its shape is specific, and a looser reader must not take its issue details (an
    # issue with no participants has `"participants": []`, which a Meet reader also accepts).
    order: ClassVar[int] = 13
    harvest_help: ClassVar[str] = (
        "ORG/PROJECT (issues seen in the window), ORG, or ORG/issues/ISSUE_ID"
    )
    Config: ClassVar[type[BaseModel]] = live.SentryConfig
    docs_url: ClassVar[str] = "https://docs.sentry.io/api/events/list-an-organizations-issues/"

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
