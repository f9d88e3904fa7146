"""A third-party connector: `{"demo_log": [{"at", "who", "said"}]}` files become chat events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import BaseModel

from retro.connector import Connector, Doc, ReadContext
from retro.models import Actor, Provenance, TimelineEvent


class DemoConfig(BaseModel):
    """No settings: file mode only."""


class DemoConnector(Connector):
    name: ClassVar[str] = "demo"
    title: ClassVar[str] = "Demo log"
    Config: ClassVar[type[BaseModel]] = DemoConfig
    roles: ClassVar[frozenset[str]] = frozenset({"chat"})

    def claims(self, doc: Doc) -> bool:
        return doc.fmt == "json" and isinstance(doc.data, dict) and "demo_log" in doc.data

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        for doc in docs:
            for i, rec in enumerate(doc.data["demo_log"]):
                ctx.report.records += 1
                record = f"demo_log[{i}]"
                yield TimelineEvent(
                    key=f"demo:{doc.rel}:{i}",
                    at=ctx.time(rec["at"], doc=doc, record=record, field_name="at"),
                    source="demo",
                    kind="message",
                    actor=Actor(source="demo", id=rec["who"], name=rec["who"]),
                    text=rec["said"],
                    provenance=Provenance(file=doc.rel, record=record),
                )
