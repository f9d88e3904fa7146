"""Microsoft Teams: channel and chat messages from Microsoft Graph (file and live mode).

- `read.py`: file mode. Graph chatMessage bodies (channel messages with `$expand=replies`,
  replies, chat messages, delta and export pages) and the CLI for Microsoft 365's JSON output;
  members, users, channels and chats as context (names, emails).
- `html.py`: HTML bodies, `<at>` mentions, cards and quoted replies to plain text.
- `events.py`: system event messages (`eventDetail`) to one line each.
- `graph.py`: the Graph client (client-credentials token, `@odata.nextLink` paging, retries);
  the transcripts connector uses it too.
- `live.py`: live mode. Harvest writes the same bodies, so they read back identically.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.teams import graph, live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["TeamsConnector"]


class TeamsConnector(Connector):
    """Teams channel threads and group chats: messages, replies, bots, edits, system events."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "Microsoft Teams"
    display: ClassVar[str] = "Microsoft Teams"
    roles: ClassVar[frozenset[str]] = frozenset({"chat"})
    order: ClassVar[int] = 12
    harvest_help: ClassVar[str] = "<team-id>/<channel-id> or chat:<chat-id>"
    Config: ClassVar[type[BaseModel]] = graph.GraphConfig
    docs_url: ClassVar[str] = "https://learn.microsoft.com/graph/api/resources/chatmessage"

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
