"""Reading PagerDuty REST API v2 bodies (and v3 webhooks) into timeline events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from connectors._support import Collector
from retro.connector import Doc, ReadContext, first, shape_error
from retro.errors import BundleError
from retro.models import Actor, EventKind, Provenance, TimelineEvent

SOURCE: Final = "pagerduty"
_EXPORT_HINT = "export the PagerDuty API response body unchanged"

LOG_KINDS: dict[str, EventKind] = {
    "trigger_log_entry": "page_triggered",
    "acknowledge_log_entry": "page_acknowledged",
    "unacknowledge_log_entry": "page_unacknowledged",
    "escalate_log_entry": "page_escalated",
    "assign_log_entry": "page_assigned",
    "reassign_log_entry": "page_assigned",
    "delegate_log_entry": "page_assigned",
    "notify_log_entry": "page_notified",
    "responder_request_log_entry": "page_notified",
    "resolve_log_entry": "page_resolved",
    "annotate_log_entry": "note",
    "priority_change_log_entry": "priority_change",
    "urgency_change_log_entry": "priority_change",
    "field_value_change_log_entry": "field_change",
    "custom_field_value_change_log_entry": "field_change",
    "status_update_log_entry": "status_page_update",
}

WEBHOOK_KINDS: dict[str, EventKind] = {
    "incident.triggered": "page_triggered",
    "incident.acknowledged": "page_acknowledged",
    "incident.unacknowledged": "page_unacknowledged",
    "incident.escalated": "page_escalated",
    "incident.reassigned": "page_assigned",
    "incident.delegated": "page_assigned",
    "incident.responder.added": "page_notified",
    "incident.resolved": "page_resolved",
    "incident.annotated": "note",
    "incident.priority_updated": "priority_change",
    "incident.status_update_published": "status_page_update",
    "incident.reopened": "status_change",
}

# When two records describe one happening (same key), the higher rank wins and the other's
# attrs fill the gaps: a log entry knows more than the incident summary that implies it.
RANK_INCIDENT, RANK_WEBHOOK, RANK_LOG, RANK_NOTE = 1, 2, 3, 4

_REF_NUMBER = re.compile(r"^\[#(\d+)\]\s*(.*)$")
_LABEL_LINE = re.compile(r"^\s*-\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


# --- recognizing documents -----------------------------------------------------------------------


def _is_pd_url(obj: dict[str, Any]) -> bool:
    return "pagerduty" in str(obj.get("self") or obj.get("html_url") or "")


def is_incident(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj.get("id"))
        and "created_at" in obj
        and (obj.get("type") == "incident" or "incident_number" in obj)
    )


def _is_log_entry(obj: Any) -> bool:
    return isinstance(obj, dict) and str(obj.get("type") or "").endswith("_log_entry")


def _is_alert(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("type") == "alert" and "created_at" in obj


def _is_note(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and "content" in obj
        and "created_at" in obj
        and ("user" in obj or "channel" in obj)
    )


def _is_user(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("type") == "user" and "email" in obj and "id" in obj


def _is_lookup(obj: Any) -> bool:
    """Services, teams and priorities: PagerDuty reference data, read for names only."""
    return (
        isinstance(obj, dict)
        and str(obj.get("type") or "").split("_reference")[0] in {"service", "team", "priority"}
        and _is_pd_url(obj)
    )


_ITEM_TESTS = {
    "incidents": is_incident,
    "log_entries": _is_log_entry,
    "alerts": _is_alert,
    "notes": _is_note,
    "users": _is_user,
}
SINGLE = {
    "incident": is_incident,
    "log_entry": _is_log_entry,
    "alert": _is_alert,
    "user": _is_user,
}


def _any(items: Any, test: Any) -> bool:
    return isinstance(items, list) and any(test(i) for i in items[:50])


def _empty_page(name: str, data: dict[str, Any]) -> bool:
    """An empty list answer still looks like PagerDuty: pagination keys, or a notes reference."""
    if name == "notes":
        return isinstance(data.get("incident"), dict) and "id" in data["incident"]
    return name != "users" and {"limit", "offset", "more"} <= data.keys()


def classify(data: Any) -> str | None:
    """Name of the PagerDuty body this is ("log_entries", "incident", …), or None."""
    if isinstance(data, list):
        for name, test in (*_ITEM_TESTS.items(), ("lookups", _is_lookup)):
            if _any(data, test):
                return name
        return None
    if not isinstance(data, dict):
        return None
    for name, test in _ITEM_TESTS.items():
        items = data.get(name)
        if _any(items, test):
            return name
        if items == [] and _empty_page(name, data):
            return name
    for name, test in SINGLE.items():
        if test(data.get(name)):
            return name
    if _any(
        data.get("change_events"), lambda o: isinstance(o, dict) and o.get("type") == "change_event"
    ):
        return "change_events"
    event = data.get("event")
    if isinstance(event, dict) and str(event.get("event_type") or "").startswith("incident."):
        return "webhook"
    return None


def records_of(data: Any, name: str) -> list[tuple[Any, str]]:
    """The records of a classified body, each with its provenance label."""
    if isinstance(data, list):
        return [(rec, f"[{i}]") for i, rec in enumerate(data)]
    if name in SINGLE:
        return [(data[name], name)]
    if name == "webhook":
        return [(data["event"], "event")]
    return [(rec, f"{name}[{i}]") for i, rec in enumerate(data.get(name) or [])]


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class _Index:
    """What the bundle says about incidents, users and services, gathered before events."""

    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def add_user(self, obj: Any) -> None:
        if isinstance(obj, dict) and obj.get("id") and (obj.get("email") or obj.get("name")):
            known = self.users.setdefault(str(obj["id"]), {})
            for key in ("name", "email", "job_title"):
                if obj.get(key):
                    known[key] = obj[key]

    def only_incident(self) -> str | None:
        ids = set(self.incidents) | set(self.refs)
        return next(iter(ids)) if len(ids) == 1 else None


class _Base:
    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.idx = _Index()
        self.out = Collector(ctx)

    # -- pass 1: index --------------------------------------------------------------------------
    def index(self, name: str, records: list[tuple[Any, str]], container: Any) -> None:
        if isinstance(container, dict) and isinstance(container.get("incident"), dict):
            self._ref(container["incident"])
        for rec, _ in records:
            if not isinstance(rec, dict):
                continue
            if name in ("incident", "incidents") and rec.get("id"):
                self.idx.incidents[str(rec["id"])] = rec
            elif name in ("user", "users"):
                self.idx.add_user(rec)
            elif name == "lookups" and rec.get("id"):
                self.idx.names[str(rec["id"])] = str(first(rec, "name", "summary", default=""))
            elif name in ("log_entry", "log_entries"):
                self._ref(rec.get("incident"))
                self.idx.add_user(rec.get("user"))
            elif name in ("alert", "alerts"):
                self._ref(rec.get("incident"))

    def _ref(self, ref: Any) -> None:
        if isinstance(ref, dict) and ref.get("id"):
            self.idx.refs.setdefault(str(ref["id"]), ref)

    # -- helpers --------------------------------------------------------------------------------
    def actor(self, ref: Any) -> Actor | None:
        if not isinstance(ref, dict) or not (ref.get("id") or ref.get("summary")):
            return None
        rtype = str(ref.get("type") or "user_reference")
        rid = str(ref["id"]) if ref.get("id") else None
        known = self.idx.users.get(rid or "", {})
        return Actor(
            source=SOURCE,
            id=rid,
            name=known.get("name") or ref.get("summary") or ref.get("name"),
            email=known.get("email") or ref.get("email"),
            title=known.get("job_title"),
            is_bot=not rtype.startswith("user"),
        )

    def incident_attrs(self, inc_id: str | None) -> dict[str, Any]:
        if not inc_id:
            return {}
        attrs: dict[str, Any] = {"incident_id": inc_id}
        inc = self.idx.incidents.get(inc_id)
        if inc is None:
            match = _REF_NUMBER.match(str((self.idx.refs.get(inc_id) or {}).get("summary") or ""))
            if match:
                attrs.update(incident_number=int(match.group(1)), incident_title=match.group(2))
            return attrs
        attrs["incident_number"] = inc.get("incident_number")
        attrs["incident_title"] = first(inc, "title", "summary")
        service = inc.get("service") or {}
        attrs["service"] = self.idx.names.get(str(service.get("id")), service.get("summary"))
        attrs["service_id"] = service.get("id")
        attrs["urgency"] = inc.get("urgency")
        attrs["priority"] = (inc.get("priority") or {}).get("summary")
        attrs["incident_key"] = inc.get("incident_key")
        return {k: v for k, v in attrs.items() if v not in (None, "")}

    def incident_url(self, inc_id: str | None) -> str | None:
        inc = self.idx.incidents.get(inc_id or "") or self.idx.refs.get(inc_id or "") or {}
        return inc.get("html_url")

    def label(self, inc_id: str | None) -> str:
        attrs = self.incident_attrs(inc_id)
        number = attrs.get("incident_number")
        return f"Incident #{number}" if number else f"Incident {inc_id or '(unknown)'}"

    def time(self, value: Any, doc: Doc, record: str, name: str) -> datetime:
        return self.ctx.time(value, doc=doc, record=record, field_name=name)

    def emit(self, doc: Doc, record: str, rank: int, **kw: Any) -> None:
        """Build one event (empty attrs dropped) and hand it to the collector."""
        attrs = {k: v for k, v in kw.pop("attrs", {}).items() if v not in (None, "", [], {})}
        provenance = Provenance(file=doc.rel, record=record)
        self.out.add(TimelineEvent(source=SOURCE, provenance=provenance, attrs=attrs, **kw), rank)


def _ack_key(inc_id: str | None, who: Any, at: datetime) -> str:
    """Same key for an incident's acknowledgement and the log entry that recorded it."""
    who_id = who.get("id") if isinstance(who, dict) else None
    return f"pagerduty:{inc_id}:acknowledged:{who_id}:{at:%Y%m%dT%H%M%S}"


def _log_key(ltype: str, rec: dict[str, Any], inc_id: str | None, at: datetime) -> str:
    """Once-per-incident happenings get keys that incident bodies and webhooks share."""
    agent = rec.get("agent") or {}
    if ltype == "trigger_log_entry":
        return f"pagerduty:{inc_id}:triggered"
    if ltype == "resolve_log_entry":
        return f"pagerduty:{inc_id}:resolved"
    if ltype == "acknowledge_log_entry":
        return _ack_key(inc_id, agent, at)
    if ltype == "annotate_log_entry":
        return f"pagerduty:{inc_id}:note:{agent.get('id')}:{at:%Y%m%dT%H%M%S}"
    return f"pagerduty:log:{rec['id']}"


def _alert_attrs(rec: dict[str, Any]) -> dict[str, Any]:
    body = rec.get("body") or {}
    details = body.get("details") or (body.get("cef_details") or {}).get("details")
    labels = _prometheus_labels(details)
    attrs = {
        "alert_id": rec["id"],
        "alert_key": rec.get("alert_key"),
        "dedup_key": rec.get("alert_key"),
        "summary": rec.get("summary"),
        "severity": rec.get("severity"),
        "status": rec.get("status"),
        "service": (rec.get("service") or {}).get("summary"),
        "integration": (rec.get("integration") or {}).get("summary"),
        "suppressed": rec.get("suppressed") or None,
        "details": details,
        "labels": labels,
        "alertname": labels.get("alertname"),
    }
    return {k: v for k, v in attrs.items() if v not in (None, "", [], {})}


def _prometheus_labels(details: Any) -> dict[str, str]:
    """Labels from an Alertmanager-sent alert: either plain keys or the `firing` text block."""
    if not isinstance(details, dict):
        return {}
    if isinstance(details.get("alertname"), str):
        return {k: str(v) for k, v in details.items() if isinstance(v, str | int | float)}
    text = details.get("firing")
    labels: dict[str, str] = {}
    if not isinstance(text, str) or "Labels:" not in text:
        return labels
    for line in text.split("Labels:", 1)[1].splitlines():
        if line.strip().startswith("Annotations:"):
            break
        match = _LABEL_LINE.match(line)
        if match:
            labels[match.group(1)] = match.group(2)
    return labels


class Reader(_Base):
    """Pass 2: one method per record kind, each adding events to the collector."""

    def log_entry(self, doc: Doc, rec: dict[str, Any], record: str, container: Any) -> None:
        ltype = str(rec.get("type") or "")
        if not rec.get("id") or not ltype:
            raise shape_error(doc, record, "log entry has no id or type", _EXPORT_HINT)
        inc_ref = rec.get("incident") or (container or {}).get("incident") or {}
        inc_id = str(inc_ref.get("id")) if inc_ref.get("id") else self.idx.only_incident()
        at = self.time(rec.get("created_at"), doc, record, "created_at")
        kind: EventKind = LOG_KINDS.get(ltype, "other")
        if "status_update" in ltype:
            kind = "status_page_update"
        agent = rec.get("agent")
        channel = rec.get("channel") or {}
        key = _log_key(ltype, rec, inc_id, at)
        attrs = self._log_attrs(rec, ltype, inc_id, container)
        text = self._log_text(ltype, rec, inc_id, channel)
        self.emit(
            doc,
            record,
            RANK_LOG,
            key=key,
            at=at,
            kind=kind,
            actor=self.actor(agent),
            text=text,
            url=rec.get("html_url") or self.incident_url(inc_id),
            attrs=attrs,
            is_bot=bool(agent) and not str((agent or {}).get("type") or "user").startswith("user"),
        )

    def _log_attrs(
        self, rec: dict[str, Any], ltype: str, inc_id: str | None, container: Any
    ) -> dict[str, Any]:
        channel = rec.get("channel") or {}
        service = rec.get("service") or (container or {}).get("service") or {}
        attrs = {
            "service": service.get("summary"),
            **self.incident_attrs(inc_id),
            "log_entry_id": rec["id"],
            "log_type": ltype,
            "channel": channel.get("type"),
            "channel_summary": channel.get("summary"),
            "notification": channel.get("notification") or rec.get("notification"),
            "note": rec.get("note"),
            "event_details": (rec.get("event_details") or {}).get("description"),
            "assignees": [
                a.get("summary") for a in rec.get("assignees") or [] if isinstance(a, dict)
            ],
            "teams": [t.get("summary") for t in rec.get("teams") or [] if isinstance(t, dict)],
        }
        target = self.actor(rec.get("user"))
        if target is not None:  # notify entries name the person paged, who is not the actor
            attrs.update(user=target.name, user_id=target.id, user_email=target.email)
        return attrs

    def _log_text(
        self, ltype: str, rec: dict[str, Any], inc_id: str | None, channel: dict[str, Any]
    ) -> str:
        summary = str(rec.get("summary") or ltype.replace("_log_entry", "").replace("_", " "))
        if ltype == "trigger_log_entry":
            title = self.incident_attrs(inc_id).get("incident_title") or channel.get("summary")
            return (
                f"{self.label(inc_id)} triggered: {title}"
                if title
                else f"{self.label(inc_id)} {summary}"
            )
        if ltype == "annotate_log_entry" and channel.get("summary"):
            return f"Note: {channel['summary']}"
        if ltype == "resolve_log_entry" and rec.get("note"):
            return f"{summary}: {rec['note']}"
        return summary

    def incident(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        inc_id = str(rec["id"])
        attrs = {
            **self.incident_attrs(inc_id),
            "status": rec.get("status"),
            "escalation_policy": (rec.get("escalation_policy") or {}).get("summary"),
            "teams": [t.get("summary") for t in rec.get("teams") or [] if isinstance(t, dict)],
            "assignees": [
                (a.get("assignee") or {}).get("summary") for a in rec.get("assignments") or []
            ],
            "incident_type": (rec.get("incident_type") or {}).get("name"),
        }
        created = self.time(rec.get("created_at"), doc, record, "created_at")
        title = first(rec, "title", "summary", default="")
        base = {"url": rec.get("html_url"), "attrs": attrs}
        self.emit(
            doc,
            record,
            RANK_INCIDENT,
            key=f"pagerduty:{inc_id}:triggered",
            at=created,
            kind="page_triggered",
            text=f"{self.label(inc_id)} triggered: {title}",
            **base,
        )
        self._acknowledgements(doc, rec, record, base)
        if rec.get("status") == "resolved":
            self._resolved(doc, rec, record, base)

    def _acknowledgements(
        self, doc: Doc, rec: dict[str, Any], record: str, base: dict[str, Any]
    ) -> None:
        inc_id = str(rec["id"])
        for i, ack in enumerate(rec.get("acknowledgements") or []):
            if not isinstance(ack, dict):
                continue
            at = self.time(ack.get("at"), doc, f"{record}.acknowledgements[{i}]", "at")
            who = self.actor(ack.get("acknowledger"))
            self.emit(
                doc,
                f"{record}.acknowledgements[{i}]",
                RANK_INCIDENT,
                key=_ack_key(inc_id, ack.get("acknowledger"), at),
                at=at,
                kind="page_acknowledged",
                actor=who,
                text=f"Acknowledged by {who.name if who else 'someone'}",
                **base,
            )

    def _resolved(self, doc: Doc, rec: dict[str, Any], record: str, base: dict[str, Any]) -> None:
        inc_id = str(rec["id"])
        when = first(rec, "resolved_at", "last_status_change_at")
        if when is None:
            self.ctx.report.skip("resolved incident without a resolve time")
            return
        who = self.actor(rec.get("last_status_change_by"))
        self.emit(
            doc,
            record,
            RANK_INCIDENT,
            key=f"pagerduty:{inc_id}:resolved",
            at=self.time(when, doc, record, "resolved_at"),
            kind="page_resolved",
            actor=who,
            text=f"{self.label(inc_id)} resolved",
            **base,
        )

    def alert(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        if not rec.get("id"):
            raise shape_error(doc, record, "alert has no id", _EXPORT_HINT)
        inc_id = (rec.get("incident") or {}).get("id") or self.idx.only_incident()
        summary = rec.get("summary") or ""
        attrs = {**self.incident_attrs(inc_id), **_alert_attrs(rec)}
        at = self.time(rec.get("created_at"), doc, record, "created_at")
        sev = f" ({rec['severity']})" if rec.get("severity") else ""
        base = {"url": rec.get("html_url"), "attrs": attrs}
        self.emit(
            doc,
            record,
            RANK_LOG,
            key=f"pagerduty:alert:{rec['id']}:firing",
            at=at,
            kind="alert_firing",
            text=f"Alert triggered: {summary}{sev}",
            **base,
        )
        if rec.get("status") != "resolved":
            return
        when = first(rec, "resolved_at")
        if when is not None:  # PagerDuty's alert body has none unless an export adds it
            self.emit(
                doc,
                record,
                RANK_LOG,
                key=f"pagerduty:alert:{rec['id']}:resolved",
                at=self.time(when, doc, record, "resolved_at"),
                kind="alert_resolved",
                text=f"Alert resolved: {summary}",
                **base,
            )

    def note(self, doc: Doc, rec: dict[str, Any], record: str, container: Any) -> None:
        ref = (container or {}).get("incident") if isinstance(container, dict) else None
        inc_id = (ref or {}).get("id") or self.idx.only_incident()
        at = self.time(rec.get("created_at"), doc, record, "created_at")
        user = rec.get("user")
        user_id = user.get("id") if isinstance(user, dict) else None
        key = (
            f"pagerduty:{inc_id}:note:{user_id}:{at:%Y%m%dT%H%M%S}"
            if inc_id
            else f"pagerduty:note:{rec.get('id')}"
        )
        attrs = {
            **self.incident_attrs(inc_id),
            "note_id": rec.get("id"),
            "channel_summary": (rec.get("channel") or {}).get("summary"),
        }
        actor = self.actor(user)
        self.emit(
            doc,
            record,
            RANK_NOTE,
            key=key,
            at=at,
            kind="note",
            actor=actor,
            text=str(rec.get("content") or ""),
            url=self.incident_url(inc_id),
            attrs=attrs,
            is_bot=bool(actor and actor.is_bot),
        )

    def change_event(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        links = [lk for lk in rec.get("links") or [] if isinstance(lk, dict)]
        attrs = {
            "change_id": rec.get("id"),
            "change_source": rec.get("source"),
            "services": [s.get("id") for s in rec.get("services") or [] if isinstance(s, dict)],
            "custom_details": rec.get("custom_details"),
            "correlation": (rec.get("correlation_reason") or {}).get("reason"),
            "links": [lk.get("href") for lk in links],
        }
        self.emit(
            doc,
            record,
            RANK_LOG,
            key=f"pagerduty:change:{rec.get('id')}",
            at=self.time(rec.get("timestamp"), doc, record, "timestamp"),
            kind="change_deployed",
            text=str(rec.get("summary") or "Change event"),
            url=links[0].get("href") if links else None,
            attrs=attrs,
        )

    def webhook(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        etype = str(rec.get("event_type"))
        data = rec.get("data") or {}
        inc_id = str(data.get("id")) if data.get("id") else None
        at = self.time(rec.get("occurred_at"), doc, record, "occurred_at")
        kind: EventKind = WEBHOOK_KINDS.get(etype, "other")
        key = {
            "incident.triggered": f"pagerduty:{inc_id}:triggered",
            "incident.resolved": f"pagerduty:{inc_id}:resolved",
            "incident.acknowledged": _ack_key(inc_id, rec.get("agent"), at),
        }.get(etype, f"pagerduty:webhook:{rec.get('id')}")
        attrs = {
            "incident_id": inc_id,
            "incident_number": data.get("number"),
            "incident_title": data.get("title"),
            "service": (data.get("service") or {}).get("summary"),
            "urgency": data.get("urgency"),
            "priority": (data.get("priority") or {}).get("summary"),
            "status": data.get("status"),
            "event_type": etype,
            "webhook_event_id": rec.get("id"),
            "assignees": [
                a.get("summary") for a in data.get("assignees") or [] if isinstance(a, dict)
            ],
        }
        label = f"Incident #{data['number']}" if data.get("number") else f"Incident {inc_id}"
        verb = etype.removeprefix("incident.").replace("_", " ").replace(".", " ")
        title = f": {data['title']}" if data.get("title") else ""
        self.emit(
            doc,
            record,
            RANK_WEBHOOK,
            key=key,
            at=at,
            kind=kind,
            actor=self.actor(rec.get("agent")),
            text=f"{label} {verb}{title}",
            url=data.get("html_url"),
            attrs=attrs,
        )

    def read(self, doc: Doc, name: str, rec: Any, record: str) -> None:
        """Turn one record of a classified body into events."""
        if not isinstance(rec, dict):
            raise shape_error(
                doc, record, f"expected an object, got {type(rec).__name__}", _EXPORT_HINT
            )
        container = doc.data if isinstance(doc.data, dict) else None
        if name in ("log_entries", "log_entry"):
            self.log_entry(doc, rec, record, container)
        elif name in ("incidents", "incident"):
            if not is_incident(rec):
                raise shape_error(doc, record, "incident has no id or created_at", _EXPORT_HINT)
            self.incident(doc, rec, record)
        elif name in ("alerts", "alert"):
            self.alert(doc, rec, record)
        elif name == "notes":
            self.note(doc, rec, record, container)
        elif name == "change_events":
            self.change_event(doc, rec, record)
        elif name == "webhook":
            self.webhook(doc, rec, record)
        # users and lookups fed the index pass; they make no events of their own


def claims(doc: Doc) -> bool:
    """True when this connector recognizes the document by its content."""
    if doc.fmt != "json":
        return False
    try:
        return classify(doc.data) is not None
    except Exception:  # claims must never raise, whatever the file holds
        return False


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Turn the claimed documents into events; count what is skipped in ctx.report."""
    reader = Reader(ctx)
    parsed = [(doc, name) for doc in docs if (name := classify(doc.data))]
    for doc, name in parsed:  # first pass: incidents, users, names, for every record
        reader.index(name, records_of(doc.data, name), doc.data)
    for doc, name in parsed:
        for rec, record in records_of(doc.data, name):
            ctx.report.records += 1
            try:
                reader.read(doc, name, rec, record)
            except BundleError as err:
                ctx.reject(err, reason="invalid PagerDuty record")
    yield from reader.out.sorted()
