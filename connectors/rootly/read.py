"""Reading Rootly JSON:API bodies into timeline events.

An incident body gives one `status_change` event per milestone timestamp it states (started,
detected, acknowledged, mitigated, resolved) and one for its creation (the declaration), with
`attrs.milestone` naming the retro milestone it records (started_at is the impact start). An
incident-events body gives one `note` per event of the log, or a `status_change` for an event
that records one ("Status changed from Mitigated to Started"). An action-items body gives one
`ticket_created` event per item (`attrs.follow_up`), which the draft takes as a stated action
item.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Final

from retro.connector import Doc, ReadContext, filed_follow_up, shape_error
from retro.models import Actor, EventKind, Provenance, TimelineEvent

SOURCE: Final = "rootly"
# Each timestamp field of an incident, its wording, and the milestone it records.
STAMPS = (
    ("started_at", "Incident started", "impact_start"),
    ("detected_at", "Incident detected", "detected"),
    ("acknowledged_at", "Incident acknowledged", "acknowledged"),
    ("mitigated_at", "Incident mitigated", "mitigated"),
    ("resolved_at", "Incident resolved", "resolved"),
)
# A status change as Rootly's incident log records it: "Status changed from Started to
# Mitigated", "Status changed to resolved by <name>."
STATUS_CHANGED = re.compile(
    r"^\s*(?:incident\s+)?status\s+changed\s+(?:from\s+(?P<old>[a-z_]+)\s+)?to\s+"
    r"(?P<new>[a-z_]+)\b",
    re.I,
)
DEFAULTED = timedelta(minutes=1)  # a started_at this close to created_at was not entered
_TYPES = frozenset({"incidents", "incident_events", "incident_action_items"})


def resources(data: Any) -> list[dict[str, Any]] | None:
    """The JSON:API resources of a Rootly body, when its `data` holds incidents or events."""
    if not isinstance(data, dict) or "data" not in data:
        return None
    items = data["data"] if isinstance(data["data"], list) else [data["data"]]
    ok = [i for i in items if isinstance(i, dict) and i.get("type") in _TYPES]
    if (
        not ok
        or len(ok) != len(items)
        or not all(isinstance(i.get("attributes"), dict) for i in ok)
    ):
        return None
    return ok


def incident_of(item: dict[str, Any]) -> Any:
    """The incident a resource belongs to: `attributes.incident_id`, or JSON:API's
    `relationships.incident.data.id`."""
    found = item["attributes"].get("incident_id")
    if found is None:
        rel = (item.get("relationships") or {}).get("incident")
        data = rel.get("data") if isinstance(rel, dict) else None
        found = data.get("id") if isinstance(data, dict) else None
    return found


def claims(doc: Doc) -> bool:
    return doc.fmt == "json" and resources(doc.data) is not None


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    ours = {
        str(item.get("id"))
        for doc in docs
        for item in resources(doc.data) or []
        if item.get("type") == "incidents"
    }

    def events(
        item: dict[str, Any], doc: Doc, ctx: ReadContext, record: str
    ) -> Iterator[TimelineEvent]:
        incident = incident_of(item)
        # an item that names no incident (GET /incidents/{id}/action_items returns them so) is
        # the bundle's own; one that names another incident is counted and left out
        other = incident is not None and str(incident) not in ours
        if item.get("type") == "incident_action_items" and ours and other:
            ctx.report.skip("action item of another incident")
            return iter(())
        return _events(item, doc, ctx, record)

    return ctx.each_record(docs, resources, events, lambda n, item: f"{item.get('type')} [{n}]")


def _events(
    item: dict[str, Any], doc: Doc, ctx: ReadContext, record: str
) -> Iterator[TimelineEvent]:
    attrs = item["attributes"]
    rid = item.get("id")
    if not rid:
        raise shape_error(doc, record, "a resource needs an id", "save the API body unchanged")
    if item["type"] == "incident_action_items":
        yield _action_item(rid, attrs, doc, ctx, record, incident_of(item))
        return
    if item["type"] == "incident_events":
        at = ctx.time(attrs.get("occurred_at") or attrs.get("created_at"), doc=doc, record=record)
        text = str(attrs.get("event") or "")
        # the log's own record of a status change ("Status changed from Mitigated to Started")
        # is a state of the incident, as a ticket's transition is
        moved = STATUS_CHANGED.match(text)
        if moved:
            state = {"from": moved["old"] or "", "to": moved["new"], "status": moved["new"]}
            event = _event(f"rootly:event:{rid}", at, "status_change", text, doc, record, state)
        else:
            event = _event(f"rootly:event:{rid}", at, "note", text, doc, record)
        # who wrote it, by name only (Rootly's event body carries no user id or email)
        if name := str(attrs.get("user_display_name") or "").strip():
            event.actor = Actor(source=SOURCE, name=name)
        yield event
        return
    title = str(attrs.get("title") or "")
    created = attrs.get("created_at")
    opened = ctx.time(created, doc=doc, record=record, field_name="created_at") if created else None
    for field, label, milestone in STAMPS:
        value = attrs.get(field)
        if value in (None, ""):
            continue
        at = ctx.time(value, doc=doc, record=record, field_name=field)
        text = f"{label}: {title}" if title else label
        # Rootly sets started_at to the creation time unless someone enters when it started:
        # only an entered time says when the impact began
        entered = field != "started_at" or opened is None or abs(at - opened) > DEFAULTED
        marks = {"milestone": milestone} if entered else {}
        yield _event(f"rootly:{rid}:{field}", at, "status_change", text, doc, record, marks)
    # creating the incident in Rootly is declaring it, as the history import reads it, unless
    # it was recorded after the fact (kind `backfilled`)
    if opened is not None and attrs.get("kind") != "backfilled":
        text = f"Incident declared: {title}" if title else "Incident declared"
        marks = {"milestone": "declared"}
        yield _event(f"rootly:{rid}:created_at", opened, "status_change", text, doc, record, marks)


def _action_item(
    rid: Any, attrs: dict[str, Any], doc: Doc, ctx: ReadContext, record: str, incident: Any
) -> TimelineEvent:
    """An action item the team filed in Rootly: the action stage takes it as stated."""
    title = str(attrs.get("summary") or "").strip()
    if not title:
        raise shape_error(doc, record, "an action item needs a summary", "save the body unchanged")
    at = ctx.time(attrs.get("created_at"), doc=doc, record=record, field_name="created_at")
    return filed_follow_up(
        event_key=f"rootly:action_item:{rid}",
        at=at,
        source=SOURCE,
        title=title,
        doc=doc,
        record=record,
        url=attrs.get("jira_issue_url") or attrs.get("url"),
        issuetype="Action item",
        key=attrs.get("jira_issue_key") or str(rid),
        status=str(attrs.get("status") or ""),
        priority=str(attrs.get("priority") or ""),
        description=str(attrs.get("description") or ""),
        incident=incident,
    )


def _event(
    key: str,
    at: Any,
    kind: EventKind,
    text: str,
    doc: Doc,
    record: str,
    attrs: dict[str, Any] | None = None,
) -> TimelineEvent:
    return TimelineEvent.of(
        key=key,
        at=at,
        source=SOURCE,
        kind=kind,
        text=text,
        provenance=Provenance.of(doc.rel, record),
        attrs=attrs or {},
    )
