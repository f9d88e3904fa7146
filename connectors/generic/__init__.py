"""Generic events: hand-written or exported JSONL and CSV timelines (deploys, notes, status pages).

Each record needs a time (`at`, or `time`/`timestamp`) and a text (`text`, or `message`). Optional
columns: source, actor, actor_email, kind, id, url; any other column is kept in attrs.

- `read.py`: file mode. There is no live mode: anything can write these files.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import BaseModel

from connectors.generic import read
from retro.connector import Connector, Doc, ReadContext
from retro.models import TimelineEvent

__all__ = ["GenericConnector"]


class GenericConfig(BaseModel):
    """The generic connector reads files only; it has no settings."""


class GenericConnector(Connector):
    """Events from any system, written as JSONL or CSV with `at` and `text`."""

    name: ClassVar[str] = "generic"
    title: ClassVar[str] = "Generic JSONL/CSV events"
    display: ClassVar[str] = "An external system"
    roles: ClassVar[frozenset[str]] = frozenset({"events"})
    order: ClassVar[int] = 1000
    Config: ClassVar[type[BaseModel]] = GenericConfig

    def claims(self, doc: Doc) -> bool:
        return read.claims(doc)

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return read.read_bundle(docs, ctx)
