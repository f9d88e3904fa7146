"""Slack: workspace exports and Web API bodies (file mode); a slack_sdk harvest (live mode).

- `read.py`: file mode. An export folder (users.json, channels.json,
  <channel>/<YYYY-MM-DD>.json) or the raw bodies of conversations.history/replies,
  users.list/info and conversations.info/list; the export's other files
  (integration_logs.json, canvases.json, content_flags.json) are claimed and counted as skipped.
- `text.py`: mrkdwn, blocks and attachments to plain text.
- `live.py`: live mode. Harvest writes the export layout, so it reads back identically.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.slack import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["SlackConnector"]


class SlackConnector(Connector):
    """Slack channel history: messages, threads, bot posts, joins and edits."""

    name: ClassVar[str] = "slack"
    title: ClassVar[str] = "Slack"
    display: ClassVar[str] = "Slack"
    roles: ClassVar[frozenset[str]] = frozenset({"chat"})
    order: ClassVar[int] = 10
    harvest_help: ClassVar[str] = "a channel name or id"
    Config: ClassVar[type[BaseModel]] = live.SlackConfig
    docs_url: ClassVar[str] = "https://api.slack.com/methods/conversations.history"

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
        return live.harvest(ref, out, live.as_config(config), progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check(live.as_config(config))
