"""Reading incident.io bodies into timeline events.

An incident body gives one `status_change` event per timestamp value it holds ("Impact started",
"Fixed at", "Resolved at", ...); an incident-updates body gives one `status_change` per update,
with its message and the new status and severity; a follow-ups body gives one
`ticket_created` event per follow-up (`attrs.follow_up`), which the draft takes as a stated
action item. Follow-ups of an incident other than the bundle's own are skipped and counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Final

from retro.connector import Doc, ReadContext, filed_follow_up, shape_error
from retro.models import Actor, Provenance, TimelineEvent

# The milestone an incident timestamp records, by its name ("Impact started", "Fixed at").
# "Reported at" is when someone reported the incident to incident.io, by default when it was
# created: the draft takes it as the detection unless an alert came shortly before it.
STAMPS = (
    ("impact_start", re.compile(r"impact start", re.I)),
    ("declared", re.compile(r"declar", re.I)),
    ("detected", re.compile(r"detect", re.I)),
    ("reported", re.compile(r"report", re.I)),
    ("acknowledged", re.compile(r"accept|acknowledg", re.I)),
    ("mitigated", re.compile(r"fixed|mitigat|stabili[sz]", re.I)),
    ("resolved", re.compile(r"resolved", re.I)),
)


DECLARED = STAMPS[1][1]

# Status categories of an incident that never was one (the history import leaves it out),
# and with "closed" those that end the record rather than the impact.
LEFT_OUT = frozenset({"declined", "merged", "canceled", "cancelled"})
_ENDED = LEFT_OUT | {"closed"}
_ENDED_NAME = re.compile(rf"^\s*({'|'.join(sorted(_ENDED))})\b", re.I)


def _person(user: Any) -> Actor | None:
    """The incident.io user who posted an update or filed a follow-up."""
    if not isinstance(user, dict) or not (user.get("id") or user.get("email")):
        return None
    return Actor(
        source=SOURCE,
        id=str(user.get("id") or user.get("email")),
        name=user.get("name"),
        email=user.get("email"),
    )


def stamp_milestone(name: str) -> str | None:
    """The retro milestone an incident.io timestamp records, or None for one it does not."""
    return next((m for m, pattern in STAMPS if pattern.search(name)), None)


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


def is_follow_up(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj.get("id"))
        and bool(obj.get("title"))
        and "incident_id" in obj
        and "status" in obj
    )


def records(data: Any) -> list[dict[str, Any]] | None:
    if not isinstance(data, dict):
        return None
    if is_incident(data.get("incident")):
        return [data["incident"]]
    if is_follow_up(data.get("follow_up")):
        return [data["follow_up"]]
    for key, test in (
        ("incidents", is_incident),
        ("incident_updates", is_update),
        ("follow_ups", is_follow_up),
    ):
        items = data.get(key)
        if isinstance(items, list) and items and all(test(i) for i in items):
            return list(items)
    return None


def claims(doc: Doc) -> bool:
    return doc.fmt == "json" and records(doc.data) is not None


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    ours = {
        str(item["id"]) for doc in docs for item in records(doc.data) or [] if is_incident(item)
    }

    def events(
        item: dict[str, Any], doc: Doc, ctx: ReadContext, record: str
    ) -> Iterator[TimelineEvent]:
        if is_follow_up(item) and ours and str(item.get("incident_id")) not in ours:
            ctx.report.skip("follow-up of another incident")
            return iter(())
        return _events(item, doc, ctx, record)

    return ctx.each_record(docs, records, events, lambda n, item: f"[{n}] {item.get('id')}")


def _follow_up(item: dict[str, Any], doc: Doc, ctx: ReadContext, record: str) -> TimelineEvent:
    """A follow-up the team filed in incident.io: the action stage takes it as stated."""
    at = ctx.time(item.get("created_at"), doc=doc, record=record, field_name="created_at")
    reference = item.get("external_issue_reference") or {}
    return filed_follow_up(
        event_key=f"incident_io:follow_up:{item['id']}",
        at=at,
        source=SOURCE,
        title=str(item["title"]),
        doc=doc,
        record=record,
        url=reference.get("issue_permalink"),
        issuetype="Follow-up",
        key=reference.get("issue_name") or str(item["id"]),
        status=str(item.get("status") or ""),
        priority=str((item.get("priority") or {}).get("name") or ""),
        owner_team=str((item.get("assignee_team") or {}).get("name") or ""),
        description=str(item.get("description") or ""),
        incident=item.get("incident_id"),
        actor=_person((item.get("creator") or {}).get("user")),
    )


def _events(
    item: dict[str, Any], doc: Doc, ctx: ReadContext, record: str
) -> Iterator[TimelineEvent]:
    prov = Provenance.of(doc.rel, record)
    if is_follow_up(item):
        yield _follow_up(item, doc, ctx, record)
        return
    if is_update(item):
        at = ctx.time(item.get("created_at"), doc=doc, record=record)
        new_status = item.get("new_incident_status") or {}
        status = new_status.get("name") or ""
        text = f"Status {status}: {item.get('message') or ''}".strip()
        # "Closed" (after the review, days later), "Declined", "Merged" end the record, not
        # the impact: only a live or post-incident state is a state of the incident
        ended = str(new_status.get("category") or "").casefold() in _ENDED or _ENDED_NAME.match(
            status
        )
        yield TimelineEvent.of(
            key=f"incident_io:update:{item['id']}",
            at=at,
            source=SOURCE,
            kind="status_change",
            text=text,
            provenance=prov,
            attrs={"status": status, "incident": item.get("incident_id")}
            | ({} if ended else {"to": status}),
            actor=_person((item.get("updater") or {}).get("user")),
        )
        return
    yield from _declared(item, doc, ctx, record)
    for n, stamp in enumerate(item.get("incident_timestamp_values") or []):
        if not isinstance(stamp, dict):
            raise shape_error(doc, record, "a timestamp value must be an object", "save it as is")
        name = str((stamp.get("incident_timestamp") or {}).get("name") or f"timestamp {n}")
        value = (stamp.get("value") or {}).get("value")
        if not value:
            continue
        at = ctx.time(value, doc=doc, record=record, field_name=name)
        yield _stamp(item, name, name, at, prov, stamp_milestone(name))


def _declared(
    item: dict[str, Any], doc: Doc, ctx: ReadContext, record: str
) -> Iterator[TimelineEvent]:
    """Creating an incident in incident.io is declaring it: `created_at` is the declaration,
    as the history import reads it, unless a timestamp says when it was declared or the
    incident was recorded after the fact (mode `retrospective`)."""
    names = [
        str((stamp.get("incident_timestamp") or {}).get("name") or "")
        for stamp in item.get("incident_timestamp_values") or []
        if isinstance(stamp, dict)
    ]
    created = item.get("created_at")
    if not created or item.get("mode") == "retrospective" or any(DECLARED.search(n) for n in names):
        return
    at = ctx.time(created, doc=doc, record=record, field_name="created_at")
    yield _stamp(item, "created_at", "Declared", at, Provenance.of(doc.rel, record), "declared")


def _stamp(
    item: dict[str, Any],
    field: str,
    label: str,
    at: Any,
    prov: Provenance,
    milestone: str | None,
) -> TimelineEvent:
    """One of an incident's times as a status change: "<label>: <incident name>"."""
    return TimelineEvent.of(
        key=f"incident_io:{item['id']}:{field}",
        at=at,
        source=SOURCE,
        kind="status_change",
        text=f"{label}: {item.get('name') or ''}".strip(),
        url=item.get("permalink"),
        provenance=prov,
        attrs={"timestamp": field} | ({"milestone": milestone} if milestone else {}),
    )
