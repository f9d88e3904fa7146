"""Datadog incidents v2 (and their to-dos and impacts) as milestone-bearing events.

Each time an incident records (declared, detected, customer impact start and end, state changes,
resolved) becomes one event whose `attrs["milestone"]` names the retro milestone it states:
`declared`, `detected`, `impact_start`, `mitigated` or `resolved`. `attrs["vendor_field"]` keeps
Datadog's own name for it. Every incident event also carries all of the incident's times under
clear names (`declared_at`, `detected_at`, `customer_impact_start`, `customer_impact_end`,
`resolved_at`), its severity, state, commander and non-empty fields.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from retro.connector import Doc, shape_error
from retro.models import Actor

if TYPE_CHECKING:
    from connectors.datadog.read import Reader

_HINT = "export the Datadog incidents API response body unchanged"
RANK_SPAN, RANK_FIELD = 1, 2
# Datadog's incident states as retro's milestones: `stable` means customer impact is over.
STATE_MILESTONE = {"stable": "mitigated", "resolved": "resolved"}


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def _fields(attrs: dict[str, Any]) -> dict[str, Any]:
    """The incident's fields as {name: value}, empty ones left out."""
    out: dict[str, Any] = {}
    for name, spec in (attrs.get("fields") or {}).items():
        value = spec.get("value") if isinstance(spec, dict) else spec
        if value not in (None, "", [], {}):
            out[str(name)] = value
    return out


def label(attrs: dict[str, Any]) -> str:
    slug = _fields(attrs).get("slug")
    return f"Incident {slug}" if slug else f"Incident #{attrs.get('public_id')}"


# (Datadog field, event kind, what happened, the retro milestone it states)
_TIMES: tuple[tuple[str, str, str, str], ...] = (
    ("detected", "note", "detected", "detected"),
    ("customer_impact_start", "note", "customer impact started", "impact_start"),
    ("customer_impact_end", "note", "customer impact ended", "mitigated"),
    ("resolved", "status_change", "resolved", "resolved"),
)


def incident(r: Reader, doc: Doc, rec: dict[str, Any], record: str) -> None:
    """Events for one incident: declared, detected, customer impact, states, resolved."""
    attrs = rec.get("attributes")
    if not isinstance(attrs, dict) or not rec.get("id"):
        raise shape_error(doc, record, "incident has no id or attributes", _HINT)
    names = ("declared", *(t[0] for t in _TIMES))
    times = {n: r.maybe_time(attrs.get(n), doc, record, n) for n in names}
    base = _base_attrs(r, rec, attrs, times)
    name = label(attrs)
    prefix = f"datadog:incident:{rec['id']}"

    def emit(
        key: str, at: datetime, kind: str, text: str, rank: int = RANK_FIELD, **extra: Any
    ) -> None:
        actor = extra.pop("actor", None)
        r.emit(
            doc,
            record,
            rank,
            key=f"{prefix}:{key}",
            at=at,
            kind=kind,
            text=text,
            actor=actor,
            attrs={**base, **extra},
        )

    # the body holds the severity the incident has now, not the one it was declared with
    sev = (
        f" (severity now {attrs['severity']})"
        if attrs.get("severity") not in (None, "UNKNOWN")
        else ""
    )
    declared = times["declared"] or r.time(attrs.get("created"), doc, record, "created")
    emit(
        "declared",
        declared,
        "ticket_created",
        f"{name} declared{sev}: {attrs.get('title') or ''}",
        milestone="declared",
        vendor_field="declared",
        issuetype="incident",
        actor=_declarer(r, attrs, rec.get("relationships") or {}),
    )
    scope = f" ({attrs['customer_impact_scope']})" if attrs.get("customer_impact_scope") else ""
    for field_name, kind, what, milestone in _TIMES:
        at = times[field_name]
        if at is not None:
            text = f"{name}: {what}" + (scope if field_name.startswith("customer") else "")
            to = "resolved" if kind == "status_change" else None
            emit(field_name, at, kind, text, milestone=milestone, vendor_field=field_name, to=to)
    for state, at in _state_spans(r, doc, record, attrs):
        key = "resolved" if state == "resolved" else f"state:{state}:{at:%Y%m%dT%H%M%S}"
        emit(
            key,
            at,
            "status_change",
            f"{name}: state {state}",
            RANK_SPAN,
            to=state,
            milestone=STATE_MILESTONE.get(state),
            vendor_field=f"state:{state}",
        )


def _state_spans(r: Reader, doc: Doc, record: str, attrs: dict[str, Any]) -> list[tuple[str, Any]]:
    """(state, start) for each span in `field_analytics.state`: the incident's state history."""
    states = ((attrs.get("field_analytics") or {}).get("state")) or {}
    found = []
    for state, info in states.items() if isinstance(states, dict) else ():
        for i, span in enumerate((info or {}).get("spans") or []):
            if isinstance(span, dict) and span.get("start"):
                where = f"field_analytics.state.{state}.spans[{i}]"
                found.append((str(state), r.time(span["start"], doc, record, where)))
    return sorted(found, key=lambda pair: pair[1])


def _base_attrs(
    r: Reader, rec: dict[str, Any], attrs: dict[str, Any], times: dict[str, Any]
) -> dict[str, Any]:
    rels = rec.get("relationships") or {}
    commander = r.user(attrs.get("commander") or rels.get("commander_user"))
    fields = _fields(attrs)
    return {
        "incident_id": str(rec["id"]),
        "public_id": attrs.get("public_id"),
        "incident_title": attrs.get("title"),
        "severity": attrs.get("severity") or fields.get("severity"),
        "state": attrs.get("state") or fields.get("state"),
        "customer_impacted": attrs.get("customer_impacted"),
        "customer_impact_scope": attrs.get("customer_impact_scope"),
        "declared_at": _iso(times["declared"]),
        "detected_at": _iso(times["detected"]),
        "customer_impact_start": _iso(times["customer_impact_start"]),
        "customer_impact_end": _iso(times["customer_impact_end"]),
        "resolved_at": _iso(times["resolved"]),
        "commander": (commander.name or commander.email) if commander else None,
        "commander_email": commander.email if commander else None,
        "fields": fields,
    }


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def todo(r: Reader, doc: Doc, rec: dict[str, Any], record: str) -> None:
    """An incident to-do: a `note` when created, and an `other` event when completed."""
    attrs = rec.get("attributes") or {}
    if not rec.get("id") or "content" not in attrs:
        raise shape_error(doc, record, "to-do has no id or content", _HINT)
    inc_id = str(attrs.get("incident_id") or "")
    created = r.time(attrs.get("created"), doc, record, "created")
    completed = r.maybe_time(attrs.get("completed"), doc, record, "completed")
    # a due date is a deadline, often a calendar day with no time or zone: kept as written
    raw_due = attrs.get("due_date")
    due_at: str | None
    if isinstance(raw_due, str) and _DAY.fullmatch(raw_due.strip()):
        due_at = raw_due.strip()
    else:
        due_at = _iso(r.maybe_time(raw_due, doc, record, "due_date"))
    assignees = [
        a if isinstance(a, str) else (a.get("name") or a.get("id"))
        for a in attrs.get("assignees") or []
        if isinstance(a, str | dict)
    ]
    extra = {
        "incident_id": inc_id,
        "todo_id": str(rec["id"]),
        "todo": attrs["content"],
        "assignees": assignees,
        "due_date": due_at,
        "completed_at": _iso(completed),
        "action_item": True,
    }
    known = r.idx.incidents.get(inc_id)
    if known:
        extra["incident_title"] = (known.get("attributes") or {}).get("title")
    actor = r.user(
        attrs.get("created_by") or (rec.get("relationships") or {}).get("created_by_user")
    )
    r.emit(
        doc,
        record,
        RANK_FIELD,
        key=f"datadog:todo:{rec['id']}",
        at=created,
        kind="note",
        text=f"To-do: {attrs['content']}",
        actor=actor,
        attrs=extra,
    )
    if completed:
        r.emit(
            doc,
            record,
            RANK_FIELD,
            key=f"datadog:todo:{rec['id']}:completed",
            at=completed,
            kind="other",
            text=f"To-do completed: {attrs['content']}",
            attrs=extra,
        )


def impact(r: Reader, doc: Doc, rec: dict[str, Any], record: str) -> None:
    """An incident impact: its start and end; a customer impact states impact_start/mitigated."""
    attrs = rec.get("attributes") or {}
    if not rec.get("id") or "start_at" not in attrs:
        raise shape_error(doc, record, "impact has no id or start_at", _HINT)
    inc = (((rec.get("relationships") or {}).get("incident") or {}).get("data") or {}).get("id")
    customer = attrs.get("impact_type") == "customer"
    start = r.time(attrs["start_at"], doc, record, "start_at")
    end = r.maybe_time(attrs.get("end_at"), doc, record, "end_at")
    what = attrs.get("description") or f"{attrs.get('impact_type') or 'an'} impact"
    extra = {
        "incident_id": inc,
        "impact_id": str(rec["id"]),
        "impact_type": attrs.get("impact_type"),
        "impact_start": _iso(start),
        "impact_end": _iso(end),
    }
    key = f"datadog:incident:{inc}:impact:{rec['id']}"
    r.emit(
        doc,
        record,
        RANK_FIELD,
        key=f"{key}:start",
        at=start,
        kind="note",
        text=f"Impact started: {what}",
        attrs={
            **extra,
            "milestone": "impact_start" if customer else None,
            "vendor_field": "impact.start_at",
        },
    )
    if end:
        r.emit(
            doc,
            record,
            RANK_FIELD,
            key=f"{key}:end",
            at=end,
            kind="note",
            text=f"Impact ended: {what}",
            attrs={
                **extra,
                "milestone": "mitigated" if customer else None,
                "vendor_field": "impact.end_at",
            },
        )


def _declarer(r: Reader, attrs: dict[str, Any], rels: dict[str, Any]) -> Actor | None:
    """Who declared the incident: the `declared_by_user` relationship (a user the body
    includes), else `declared_by_uuid`, else `attributes.declared_by`, which the API gives as
    a name and an avatar only (`{"name": …, "image_48_px": …}`)."""
    actor = r.user(rels.get("declared_by_user")) or r.user(
        {"data": {"id": attrs.get("declared_by_uuid")}}
    )
    if actor is not None:
        return actor
    named = attrs.get("declared_by")
    if isinstance(named, dict) and "data" in named:
        return r.user(named)
    name = named.get("name") if isinstance(named, dict) else None
    if not isinstance(name, str) or not name.strip():
        return None
    key = str(attrs.get("declared_by_uuid") or name.strip())
    return Actor(source="datadog", id=key, name=name.strip())
