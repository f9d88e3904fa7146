"""Reading incident.io bodies into timeline events.

An incident body gives one `status_change` event per timestamp value it holds ("Impact started",
"Fixed at", "Resolved at", ...); an incident-updates body gives one `status_change` per update,
with its message and the new status and severity.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from retro.connector import Doc, ReadContext, shape_error
from retro.models import Provenance, TimelineEvent

SOURCE: Final = "incident_io"


def is_incident(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj.get("id"))
        and "incident_status" in obj
        and ("reference" in obj or "incident_timestamp_values" in obj)
    )


def is_update(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj.get("id")) and "new_incident_status" in obj


def records(data: Any) -> list[dict[str, Any]] | None:
    if not isinstance(data, dict):
        return None
    if is_incident(data.get("incident")):
        return [data["incident"]]
    for key, test in (("incidents", is_incident), ("incident_updates", is_update)):
        items = data.get(key)
        if isinstance(items, list) and items and all(test(i) for i in items):
            return list(items)
    return None


def claims(doc: Doc) -> bool:
    return doc.fmt == "json" and records(doc.data) is not None


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    return ctx.each_record(docs, records, _events, lambda n, item: f"[{n}] {item.get('id')}")


def _events(
    item: dict[str, Any], doc: Doc, ctx: ReadContext, record: str
) -> Iterator[TimelineEvent]:
    prov = Provenance.of(doc.rel, record)
    if is_update(item):
        at = ctx.time(item.get("created_at"), doc=doc, record=record)
        status = (item.get("new_incident_status") or {}).get("name") or ""
        text = f"Status {status}: {item.get('message') or ''}".strip()
        yield TimelineEvent.of(
            key=f"incident_io:update:{item['id']}",
            at=at,
            source=SOURCE,
            kind="status_change",
            text=text,
            provenance=prov,
            attrs={"status": status, "incident": item.get("incident_id")},
        )
        return
    for n, stamp in enumerate(item.get("incident_timestamp_values") or []):
        if not isinstance(stamp, dict):
            raise shape_error(doc, record, "a timestamp value must be an object", "save it as is")
        name = str((stamp.get("incident_timestamp") or {}).get("name") or f"timestamp {n}")
        value = (stamp.get("value") or {}).get("value")
        if not value:
            continue
        at = ctx.time(value, doc=doc, record=record, field_name=name)
        yield TimelineEvent.of(
            key=f"incident_io:{item['id']}:{name}",
            at=at,
            source=SOURCE,
            kind="status_change",
            text=f"{name}: {item.get('name') or ''}".strip(),
            url=item.get("permalink"),
            provenance=prov,
            attrs={"timestamp": name},
        )
