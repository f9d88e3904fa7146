"""New Relic: alert issues and incidents (NerdGraph `aiIssues`) and webhook payloads.

- `read.py`: file mode. NerdGraph answers and workflow / legacy alert webhook payloads (one per
  file, a JSON list, or JSONL), recognised by content; times are epoch milliseconds.
- `live.py`: live mode. Queries NerdGraph (US or EU) with cursor paging and writes the answers
  under out/newrelic/, so harvest -> read_bundle round-trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.newrelic import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["NewRelicConnector"]


class NewRelicConnector(Connector):
    """Alert issues and incidents from New Relic."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "New Relic"
    display: ClassVar[str] = "New Relic"
    roles: ClassVar[frozenset[str]] = frozenset({"monitor", "alerts"})
    order: ClassVar[int] = 55
    harvest_help: ClassVar[str] = (
        "ACCOUNT_ID (issues and incidents in the window) or ACCOUNT_ID:ISSUE_ID"
    )
    Config: ClassVar[type[BaseModel]] = live.NewRelicConfig
    docs_url: ClassVar[str] = (
        "https://docs.newrelic.com/docs/apis/nerdgraph/examples/nerdgraph-issues-api-via-github/"
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
        return live.harvest(ref, out, config, progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check(config)
