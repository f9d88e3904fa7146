"""Reading Opsgenie alert, alert-log, alert-note, incident and timeline bodies into events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from connectors._support import Collector
from retro.connector import Doc, ReadContext, shape_error
from retro.errors import BundleError
from retro.models import Actor, EventKind, Provenance, TimelineEvent, stable_hash

SOURCE: Final = "opsgenie"
EXPORT_HINT = "export the Opsgenie API response body unchanged"

# Alert actions, as Opsgenie names them in webhooks and log types; "slot" actions happen once
# per alert, so the alert body's report and the log entry share one key.
ACTIONS: dict[str, EventKind] = {
    "create": "alert_firing",
    "close": "alert_resolved",
    "acknowledge": "page_acknowledged",
    "unacknowledge": "page_unacknowledged",
    "addnote": "note",
    "escalate": "page_escalated",
    "escalatenext": "page_escalated",
    "notify": "page_notified",
    "addrecipient": "page_notified",
    "addresponder": "page_assigned",
    "addteam": "page_assigned",
    "assignownership": "page_assigned",
    "takeownership": "page_assigned",
    "updatepriority": "priority_change",
    "addtags": "field_change",
    "removetags": "field_change",
    "adddetails": "field_change",
    "removedetails": "field_change",
    "updatemessage": "field_change",
    "updatedescription": "field_change",
}
SLOTS = {"alert_firing": "created", "page_acknowledged": "ack", "alert_resolved": "closed"}

# Log lines are free text ("Alert acknowledged via web"); the first pattern that matches wins.
LOG_PATTERNS: list[tuple[re.Pattern[str], EventKind]] = [
    (re.compile(r"\bnote\b", re.I), "note"),
    (re.compile(r"\bunacknowledged\b", re.I), "page_unacknowledged"),
    # "Escalated to next responder because alert was not acknowledged in 5 minutes"
    (re.compile(r"\b(?:not|never)\s+(?:been\s+)?acknowledged\b", re.I), "page_escalated"),
    (re.compile(r"\backnowledged\b", re.I), "page_acknowledged"),
    (re.compile(r"\bclosed\b", re.I), "alert_resolved"),
    (re.compile(r"\bcreated\b", re.I), "alert_firing"),
    (re.compile(r"escalat", re.I), "page_escalated"),
    (re.compile(r"notification|notified", re.I), "page_notified"),
    (re.compile(r"\bpriority\b", re.I), "priority_change"),
    (re.compile(r"owner|assigned|responder", re.I), "page_assigned"),
]

TIMELINE_KINDS: dict[str, EventKind] = {
    "IncidentOpened": "page_triggered",
    "IncidentCreated": "page_triggered",
    "IncidentResolved": "page_resolved",
    "IncidentClosed": "status_change",
    "IncidentReopened": "status_change",
    "IncidentEscalated": "page_escalated",
    "IncidentPriorityUpdated": "priority_change",
    "IncidentResponderUserAdded": "page_assigned",
    "IncidentResponderTeamAdded": "page_assigned",
    "ResponderAlertCreated": "page_notified",
    "ResponderAlertAcked": "page_acknowledged",
    "ResponderAlertUnAcked": "page_unacknowledged",
    "CustomUserEntry": "note",
}
GROUP_KINDS: dict[str, EventKind] = {"statusPage": "status_page_update", "custom": "note"}
TIMELINE_SLOTS = {
    "IncidentOpened": "opened",
    "IncidentCreated": "opened",
    "IncidentResolved": "resolved",
}

# A notes body holds the note's own text, so it beats the "AddNote" log line for the same note.
RANK_BODY, RANK_WEBHOOK, RANK_LOG, RANK_NOTE = 1, 2, 3, 4
UNLINKED_NOTE = "alert note without its alert (event kept, not linked)"


# --- recognizing documents -----------------------------------------------------------------------


def is_incident(obj: Any) -> bool:
    if not isinstance(obj, dict) or "tinyId" not in obj or "createdAt" not in obj:
        return False
    web = str((obj.get("links") or {}).get("web") or "")
    keys = ("impactStartDate", "impactedServices", "timelines")
    return any(k in obj for k in keys) or "/incident/" in web


def is_alert(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and "tinyId" in obj
        and "createdAt" in obj
        and any(k in obj for k in ("alias", "acknowledged", "report", "isSeen"))
        and not is_incident(obj)
    )


def _is_log(obj: Any) -> bool:
    return isinstance(obj, dict) and {"log", "offset", "createdAt"} <= obj.keys()


def _is_note(obj: Any) -> bool:
    return isinstance(obj, dict) and {"note", "offset", "createdAt"} <= obj.keys()


def _is_recipient(obj: Any) -> bool:
    # An Opsgenie user reference has a username; a GitHub pull request's `user` has a login.
    user = obj.get("user") if isinstance(obj, dict) else None
    return isinstance(user, dict) and "username" in user and "state" in obj


def _is_user(obj: Any) -> bool:
    return isinstance(obj, dict) and {"id", "username", "fullName"} <= obj.keys()


def _is_team(obj: Any) -> bool:
    web = str((obj.get("links") or {}).get("web") or "") if isinstance(obj, dict) else ""
    return "opsgenie.com/teams" in web


_LIST_TESTS = {
    "logs": _is_log,
    "notes": _is_note,
    "incidents": is_incident,
    "alerts": is_alert,
    "recipients": _is_recipient,
    "users": _is_user,
    "teams": _is_team,
}


def _list_kind(items: Any) -> str | None:
    if not isinstance(items, list):
        return None
    for name, test in _LIST_TESTS.items():
        if any(test(i) for i in items[:50]):
            return name
    return None


def classify(data: Any) -> str | None:
    """Name of the Opsgenie body this is ("alert", "logs", "incident", …), or None."""
    if isinstance(data, list):
        return _list_kind(data)
    if not isinstance(data, dict):
        return None
    alert = data.get("alert")
    if isinstance(data.get("action"), str) and isinstance(alert, dict) and "alertId" in alert:
        return "webhook"
    if "data" not in data:
        return None
    body = data["data"]
    if is_incident(body):
        return "incident"
    if is_alert(body):
        return "alert"
    if isinstance(body, dict) and isinstance(body.get("entries"), list):
        return "timeline"
    kind = _list_kind(body)
    if kind is None and body == [] and {"took", "requestId"} <= data.keys():
        return "empty"  # an Opsgenie list answer with nothing in it
    return kind


def records_of(data: Any, name: str) -> list[tuple[Any, str]]:
    """The records of a classified body, each with its provenance label."""
    if isinstance(data, list):
        return [(rec, f"[{i}]") for i, rec in enumerate(data)]
    if name in ("incident", "alert"):
        return [(data["data"], "data")]
    if name == "webhook":
        return [(data, "alert")]
    if name == "timeline":
        return [(e, f"data.entries[{i}]") for i, e in enumerate(data["data"]["entries"])]
    if name == "empty":
        return []
    return [(rec, f"data[{i}]") for i, rec in enumerate(data["data"])]


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class _People:
    """Opsgenie users by email and by full name, to give actors both."""

    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, user: Any) -> None:
        if _is_user(user):
            for key in (user["username"], user["fullName"]):
                self.by_key[str(key).lower()] = user

    def actor(self, who: Any, kind: str | None = None) -> Actor | None:
        """An actor from an email, a user name, or an {name, type} actor object."""
        name = who.get("name") if isinstance(who, dict) else who
        if not isinstance(name, str) or not name.strip():
            return None
        known = self.by_key.get(name.lower(), {})
        email = known.get("username") or (name if "@" in name else None)
        kind = kind or (who.get("type") if isinstance(who, dict) else None)
        bot = kind not in (None, "user") or name.lower() in ("system", "api", "opsgenie")
        return Actor(
            source=SOURCE,
            id=known.get("id") or name,
            name=known.get("fullName") or name,
            email=email,
            is_bot=bot,
        )


class Reader:
    """Two passes: index users (and alerts for their logs), then one method per record kind."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.people = _People()
        self.out = Collector(ctx)

    def index(self, name: str, records: list[tuple[Any, str]]) -> None:
        if name == "users":
            for rec, _ in records:
                self.people.add(rec)

    def time(self, value: Any, doc: Doc, record: str, name: str) -> datetime:
        if isinstance(value, int) and value > 10**17:  # webhooks write nanoseconds
            value = value // 1_000_000
        return self.ctx.time(value, doc=doc, record=record, field_name=name)

    def emit(self, doc: Doc, record: str, rank: int, **kw: Any) -> None:
        attrs = {k: v for k, v in kw.pop("attrs", {}).items() if v not in (None, "", [], {})}
        actor = kw.get("actor")
        event = TimelineEvent(
            source=SOURCE,
            provenance=Provenance(file=doc.rel, record=record),
            attrs=attrs,
            is_bot=bool(actor and actor.is_bot),
            **kw,
        )
        self.out.add(event, rank)

    def read(self, doc: Doc, name: str, rec: Any, record: str) -> None:
        """Turn one record of a classified body into events."""
        if not isinstance(rec, dict):
            what = f"expected an object, got {type(rec).__name__}"
            raise shape_error(doc, record, what, EXPORT_HINT)
        if name in ("alert", "alerts"):
            self.alert(doc, rec, record)
            for part in ("logs", "notes") if name == "alert" else ():
                if doc.data.get(part) is not None:
                    self.entries(doc, rec, doc.data[part], part)
        elif name == "logs":
            self.log(doc, None, rec, record)
        elif name == "notes":
            self.note(doc, None, rec, record)
        elif name in ("incident", "incidents"):
            self.incident(doc, rec, record)
        elif name == "timeline":
            self.timeline_entry(doc, None, rec, record)
        elif name == "recipients":
            self.recipient(doc, rec, record)
        elif name == "webhook":
            self.webhook(doc, rec, record)
        # users and teams fed the index; they make no events of their own

    # -- alerts -----------------------------------------------------------------------------
    def alert_attrs(self, alert: dict[str, Any]) -> dict[str, Any]:
        integration = alert.get("integration") or {}
        return {
            "alert_id": alert.get("id") or alert.get("alertId"),
            "tinyId": alert.get("tinyId"),
            "alias": alert.get("alias"),
            "message": alert.get("message"),
            "priority": _priority(alert.get("priority")),
            "status": alert.get("status"),
            "tags": alert.get("tags"),
            "source": alert.get("source"),
            "entity": alert.get("entity"),
            "owner": alert.get("owner"),
            "count": alert.get("count"),
            "integration": integration.get("name"),
            "integration_type": integration.get("type"),
            "details": alert.get("details"),
            "alertname": (alert.get("details") or {}).get("alertname"),
            "responders": [r.get("name") or r.get("id") for r in alert.get("responders") or []],
        }

    def alert(self, doc: Doc, alert: dict[str, Any], record: str) -> None:
        if not alert.get("id"):
            raise shape_error(doc, record, "alert has no id", EXPORT_HINT)
        created = self.time(alert.get("createdAt"), doc, record, "createdAt")
        attrs = self.alert_attrs(alert)
        label = f"Alert #{alert.get('tinyId')}"
        key = f"opsgenie:{alert['id']}"
        bot = self.people.actor((alert.get("integration") or {}).get("name"), "integration")
        text = f"{label} created: {alert.get('message', '')}"
        self.emit(
            doc,
            record,
            RANK_BODY,
            key=f"{key}:created",
            at=created,
            kind="alert_firing",
            actor=bot,
            text=text,
            attrs=attrs,
        )
        report = alert.get("report") or {}
        for slot, kind, ms, who, verb in (
            ("ack", "page_acknowledged", "ackTime", "acknowledgedBy", "acknowledged"),
            ("closed", "alert_resolved", "closeTime", "closedBy", "closed"),
        ):
            if isinstance(report.get(ms), int | float):
                actor = self.people.actor(report.get(who))
                by = f" by {actor.name}" if actor else ""
                self.emit(
                    doc,
                    f"{record}.report.{ms}",
                    RANK_BODY,
                    key=f"{key}:{slot}",
                    at=created + timedelta(milliseconds=report[ms]),
                    kind=kind,
                    actor=actor,
                    text=f"{label} {verb}{by}",
                    attrs=attrs,
                )

    def entries(self, doc: Doc, alert: dict[str, Any], body: Any, where: str) -> None:
        """The logs or notes embedded in an alert file, under `where` ("logs" or "notes")."""
        entries = body.get("data") if isinstance(body, dict) else body
        if not isinstance(entries, list):
            raise shape_error(doc, where, f"{where} hold no `data` list", EXPORT_HINT)
        seen_slots: set[str] = set()
        for i, entry in enumerate(entries):
            self.ctx.report.records += 1
            record = f"{where}.data[{i}]"
            try:
                if not isinstance(entry, dict):
                    raise shape_error(doc, record, f"{where[:-1]} is not an object", EXPORT_HINT)
                if where == "notes":
                    self.note(doc, alert, entry, record)
                else:
                    self.log(doc, alert, entry, record, seen_slots)
            except BundleError as err:
                self.ctx.reject(err, reason="invalid Opsgenie record")

    def note_key(self, alert: dict[str, Any] | None, at: datetime, owner: Any) -> str:
        """One key for a note, whether it came from a notes body or an "AddNote" log line."""
        # Owner and creation time (to the ms) are all the two records share: offsets differ in
        # form and the log text wraps the note ("Added note: ...").
        mark = stable_hash(str(owner or "").lower(), str(round(at.timestamp() * 1000)))
        return f"opsgenie:note:{mark}" if alert is None else f"opsgenie:{alert['id']}:note:{mark}"

    def note(
        self, doc: Doc, alert: dict[str, Any] | None, entry: dict[str, Any], record: str
    ) -> None:
        text = entry.get("note")
        if not isinstance(text, str):
            raise shape_error(doc, record, "note has no `note` text", EXPORT_HINT)
        at = self.time(entry.get("createdAt"), doc, record, "createdAt")
        attrs: dict[str, Any] = {"offset": str(entry.get("offset") or "")}
        if alert is None:
            self.ctx.report.skip(UNLINKED_NOTE)
        else:
            attrs = {**self.alert_attrs(alert), **attrs}
        self.emit(
            doc,
            record,
            RANK_NOTE,
            key=self.note_key(alert, at, entry.get("owner")),
            at=at,
            kind="note",
            actor=self.people.actor(entry.get("owner")),
            text=text,
            attrs=attrs,
        )

    def log(
        self,
        doc: Doc,
        alert: dict[str, Any] | None,
        entry: dict[str, Any],
        record: str,
        seen_slots: set[str] | None = None,
    ) -> None:
        text = str(entry.get("log") or "")
        at = self.time(entry.get("createdAt"), doc, record, "createdAt")
        kind = _log_kind(str(entry.get("type") or ""), text)
        offset = str(entry.get("offset") or "")
        attrs: dict[str, Any] = {"log": text, "log_type": entry.get("type"), "offset": offset}
        if alert is None:
            key = f"opsgenie:log:{stable_hash(offset, text)}"
            self.ctx.report.skip("alert log entry without its alert (event kept, not linked)")
            label = "Alert"
        else:
            attrs = {**self.alert_attrs(alert), **attrs}
            key = f"opsgenie:{alert['id']}:log:{offset}"
            slot = SLOTS.get(kind)
            if slot and seen_slots is not None and slot not in seen_slots:
                seen_slots.add(slot)
                key = f"opsgenie:{alert['id']}:{slot}"
            label = f"Alert #{alert.get('tinyId')}"
        if kind == "note":  # the same note may also come from a notes body
            key = self.note_key(alert, at, entry.get("owner"))
        actor = self.people.actor(entry.get("owner"))
        shown = text
        if alert is not None and kind in SLOTS:
            verb = {"alert_firing": "created", "page_acknowledged": "acknowledged"}.get(
                kind, "closed"
            )
            by = f" by {actor.name}" if actor and not actor.is_bot else ""
            shown = f"{label} {verb}{by}: {alert.get('message', '')}"
        self.emit(
            doc, record, RANK_LOG, key=key, at=at, kind=kind, actor=actor, text=shown, attrs=attrs
        )

    def recipient(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        user = rec["user"]
        who = self.people.actor(user.get("username"))
        at = self.time(rec.get("createdAt"), doc, record, "createdAt")
        attrs = {
            "user": user.get("username"),
            "user_id": user.get("id"),
            "state": rec.get("state"),
            "method": rec.get("method"),
        }
        key = f"opsgenie:recipient:{user.get('id')}:{rec.get('createdAt')}"
        self.emit(
            doc,
            record,
            RANK_BODY,
            key=key,
            at=at,
            kind="page_notified",
            actor=None,
            text=f"Alert recipient {user.get('username')} ({rec.get('state')})",
            attrs={**attrs, "user_email": who.email if who else None},
        )

    def webhook(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        alert = rec["alert"]
        action = str(rec["action"])
        kind: EventKind = ACTIONS.get(action.lower(), "other")
        alert_id = alert["alertId"]
        when = alert.get("createdAt") if kind == "alert_firing" else alert.get("updatedAt")
        at = self.time(when, doc, record, "createdAt")
        slot = (
            "created" if kind == "alert_firing" else "closed" if kind == "alert_resolved" else None
        )
        key = (
            f"opsgenie:{alert_id}:{slot}"
            if slot
            else f"opsgenie:webhook:{alert_id}:{action}:{when}"
        )
        attrs = {
            **self.alert_attrs(alert),
            "action": action,
            "integration": rec.get("integrationName"),
        }
        actor = self.people.actor(alert.get("username") or (rec.get("source") or {}).get("name"))
        label = f"Alert #{alert.get('tinyId')}"
        text = f"{label} {action}: {alert.get('message', '')}"
        if kind == "alert_firing":
            text = f"{label} created: {alert.get('message', '')}"
        self.emit(
            doc,
            record,
            RANK_WEBHOOK,
            key=key,
            at=at,
            kind=kind,
            actor=actor,
            text=text,
            attrs=attrs,
        )

    # -- incidents ----------------------------------------------------------------------------
    def incident(self, doc: Doc, inc: dict[str, Any], record: str) -> None:
        if not inc.get("id"):
            raise shape_error(doc, record, "incident has no id", EXPORT_HINT)
        attrs = self.incident_attrs(inc)
        url = (inc.get("links") or {}).get("web")
        at = self.time(inc.get("createdAt"), doc, record, "createdAt")
        text = f"Incident #{inc.get('tinyId')} opened: {inc.get('message', '')}"
        self.emit(
            doc,
            record,
            RANK_BODY,
            key=f"opsgenie:incident:{inc['id']}:opened",
            at=at,
            kind="page_triggered",
            text=text,
            url=url,
            attrs=attrs,
        )
        entries: list[tuple[Any, str]] = [
            (e, f"{record}.timelines[{i}]") for i, e in enumerate(inc.get("timelines") or [])
        ]
        timeline = (
            doc.data.get("timeline") if isinstance(doc.data, dict) and record == "data" else None
        )
        if isinstance(timeline, dict) and isinstance(timeline.get("data"), dict):
            found = timeline["data"].get("entries") or []
            entries += [(e, f"timeline.data.entries[{i}]") for i, e in enumerate(found)]
        for entry, where in entries:
            self.ctx.report.records += 1
            if not isinstance(entry, dict):
                self.ctx.reject(
                    shape_error(doc, where, "timeline entry is not an object", EXPORT_HINT)
                )
                continue
            self.timeline_entry(doc, inc, entry, where)

    def incident_attrs(self, inc: dict[str, Any]) -> dict[str, Any]:
        return {
            "incident_id": inc.get("id"),
            "tinyId": inc.get("tinyId"),
            "message": inc.get("message"),
            "priority": _priority(inc.get("priority")),
            "status": inc.get("status"),
            "tags": inc.get("tags"),
            "impacted_services": inc.get("impactedServices"),
            "impact_start": inc.get("impactStartDate"),
            "impact_end": inc.get("impactEndDate"),
            "owner_team": inc.get("ownerTeam"),
            "responders": [r.get("name") or r.get("id") for r in inc.get("responders") or []],
        }

    def timeline_entry(
        self, doc: Doc, inc: dict[str, Any] | None, entry: dict[str, Any], record: str
    ) -> None:
        etype = str(entry.get("type") or "")
        kind = TIMELINE_KINDS.get(etype) or GROUP_KINDS.get(str(entry.get("group")), "other")
        at = self.time(entry.get("eventTime"), doc, record, "eventTime")
        title = (entry.get("title") or {}).get("content")
        body = (entry.get("description") or {}).get("content")
        text = str(body or title or etype)
        attrs: dict[str, Any] = {
            "timeline_type": etype,
            "group": entry.get("group"),
            "title": title,
            "hidden": entry.get("hidden") or None,
        }
        key = f"opsgenie:timeline:{entry.get('id') or stable_hash(etype, str(at))}"
        url = None
        if inc is not None:
            attrs = {**self.incident_attrs(inc), **attrs}
            url = (inc.get("links") or {}).get("web")
            if etype in TIMELINE_SLOTS:
                key = f"opsgenie:incident:{inc['id']}:{TIMELINE_SLOTS[etype]}"
            if kind == "page_triggered":
                text = f"Incident #{inc.get('tinyId')} opened: {inc.get('message', '')}"
        else:
            self.ctx.report.skip("timeline entry without its incident (event kept, not linked)")
        actor = self.people.actor(entry.get("actor"))
        self.emit(
            doc,
            record,
            RANK_LOG,
            key=key,
            at=at,
            kind=kind,
            actor=actor,
            text=text,
            url=url,
            attrs=attrs,
        )


def _priority(value: Any) -> str | None:
    """Opsgenie priorities are P1..P5; webhooks send a bare number."""
    if value in (None, ""):
        return None
    text = str(value)
    return text if text.upper().startswith("P") else f"P{text}"


def _log_kind(log_type: str, text: str) -> EventKind:
    by_type = ACTIONS.get(log_type.lower())
    if by_type is not None:
        return by_type
    for pattern, kind in LOG_PATTERNS:
        if pattern.search(text):
            return kind
    return "other"


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
    for doc, name in parsed:  # first pass: users, so every actor gets an email
        reader.index(name, records_of(doc.data, name))
    for doc, name in parsed:
        for rec, record in records_of(doc.data, name):
            ctx.report.records += 1
            try:
                reader.read(doc, name, rec, record)
            except BundleError as err:
                ctx.reject(err, reason="invalid Opsgenie record")
    yield from reader.out.sorted()
