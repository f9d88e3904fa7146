"""Reading New Relic alert data into timeline events: NerdGraph `aiIssues` issues and incidents,
workflow ("Issue") webhook payloads, and legacy alert-policy webhook payloads.

Times are epoch milliseconds. An issue (what a workflow notifies about) becomes `alert_firing` at
`createdAt`, `page_acknowledged` at `acknowledgedAt` and `alert_resolved` at `closedAt`; an
incident (one condition's violation) does the same when its issue is not in the bundle, and is
an `other` event inside its issue's lifecycle when it is, so one alert is never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from connectors._support import Collector
from retro.connector import Doc, ReadContext, shape_error
from retro.errors import BundleError
from retro.models import Actor, EventKind, Provenance, TimelineEvent

SOURCE: Final = "newrelic"
_HINT = "export the NerdGraph response or webhook payload unchanged (docs/connectors/newrelic.md)"
ISSUE_STATES = frozenset({"CREATED", "ACTIVATED", "DEACTIVATED", "CLOSED"})
RANK_WEBHOOK, RANK_API = 1, 2


# --- recognizing documents -----------------------------------------------------------------------


def is_webhook_issue(o: Any) -> bool:
    """A workflow webhook's default (or customised) issue payload."""
    return (
        isinstance(o, dict)
        and bool(o.get("id"))
        and str(o.get("state")) in ISSUE_STATES
        and isinstance(o.get("createdAt"), int)
        and ("issueUrl" in o or "totalIncidents" in o or "alertConditionNames" in o)
    )


def is_legacy(o: Any) -> bool:
    """A legacy alert-policy webhook (`current_state`: open, acknowledged, closed)."""
    return (
        isinstance(o, dict)
        and "incident_id" in o
        and str(o.get("current_state")) in ("open", "acknowledged", "closed")
        and "timestamp" in o
    )


def _ai(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
        return None
    account = ((data["data"].get("actor") or {}).get("account")) or {}
    ai = account.get("aiIssues") if isinstance(account, dict) else None
    return ai if isinstance(ai, dict) else None


def classify(data: Any) -> str | None:
    """ "issues", "incidents" (NerdGraph), "webhooks" (one, a list or JSONL), "legacy", or None."""
    ai = _ai(data)
    if ai is not None:
        for name in ("issues", "incidents"):
            block = ai.get(name)
            if isinstance(block, dict) and isinstance(block.get(name), list):
                return name
        return None
    rows = data if isinstance(data, list) else [data]
    if rows and all(is_webhook_issue(r) for r in rows[:50]):
        return "webhooks"
    if rows and all(is_legacy(r) for r in rows[:50]):
        return "legacy"
    return None


def records_of(data: Any, name: str) -> list[tuple[Any, str]]:
    if name in ("issues", "incidents"):
        ai = _ai(data) or {}
        items = ai[name][name]
        return [
            (rec, f"data.actor.account.aiIssues.{name}.{name}[{i}]") for i, rec in enumerate(items)
        ]
    if isinstance(data, list):
        return [(rec, f"[{i}]") for i, rec in enumerate(data)]
    return [(data, "payload")]


# --- reading ---------------------------------------------------------------------------------------


def _names(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)] if value not in (None, "") else []


# New Relic's priority as an alert level: a condition's critical threshold opens CRITICAL
# issues and its warning threshold HIGH ones; MEDIUM and LOW are below both.
_LEVEL = {"CRITICAL": "critical", "HIGH": "warning", "MEDIUM": "low", "LOW": "low"}


def _level(priority: Any) -> str | None:
    return _LEVEL.get(str(priority or "").upper())


def _issue_text(title: str, priority: Any) -> str:
    """The title first, as other alert texts have it: "High CPU on host-1 (critical issue)"."""
    return f"{title} ({str(priority or 'unknown').lower()} issue)"


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


class Reader:
    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.out = Collector(ctx)
        self.grouped: set[str] = set()  # incident ids that belong to an issue in the bundle

    def time(self, value: Any, doc: Doc, record: str, name: str) -> datetime:
        return self.ctx.time(value, doc=doc, record=record, field_name=name)

    def maybe(self, value: Any, doc: Doc, record: str, name: str) -> datetime | None:
        return None if value in (None, "", 0) else self.time(value, doc, record, name)

    def index(self, name: str, records: list[tuple[Any, str]]) -> None:
        if name == "issues":
            for rec, _ in records:
                if isinstance(rec, dict):
                    self.grouped.update(_names(rec.get("incidentIds")))

    def emit(self, doc: Doc, record: str, rank: int, **kw: Any) -> None:
        attrs = {k: v for k, v in kw.pop("attrs", {}).items() if v not in (None, "", [], {})}
        event = TimelineEvent.of(
            source=SOURCE, provenance=Provenance.of(doc.rel, record), attrs=attrs, **kw
        )
        self.out.add(event, rank)

    def lifecycle(
        self,
        doc: Doc,
        record: str,
        rank: int,
        prefix: str,
        times: dict[str, Any],
        text: str,
        attrs: dict[str, Any],
        people: dict[str, Any],
    ) -> None:
        """firing / acknowledged / resolved events from the times an issue or incident has."""
        steps: list[tuple[str, EventKind, str]] = [
            ("firing", "alert_firing", text),
            ("acknowledged", "page_acknowledged", f"Acknowledged: {text}"),
            ("resolved", "alert_resolved", f"Closed: {text}"),
        ]
        for step, kind, line in steps:
            at = times.get(step)
            if at is None:
                continue
            who = people.get(step)
            actor = _actor(who)
            self.emit(
                doc,
                record,
                rank,
                key=f"{prefix}:{step}",
                at=at,
                kind=kind,
                text=line,
                actor=actor,
                url=attrs.get("url"),
                attrs=attrs,
                is_bot=actor is None,
            )

    def issue(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        issue_id = rec.get("issueId")
        if not issue_id:
            raise shape_error(doc, record, "issue has no issueId", _HINT)
        times = {
            "firing": self.time(rec.get("createdAt"), doc, record, "createdAt"),
            "acknowledged": self.maybe(rec.get("acknowledgedAt"), doc, record, "acknowledgedAt"),
            "resolved": self.maybe(rec.get("closedAt"), doc, record, "closedAt"),
        }
        activated = self.maybe(rec.get("activatedAt"), doc, record, "activatedAt")
        title = " / ".join(_names(rec.get("title"))) or str(issue_id)
        attrs = {
            "issue_id": str(issue_id),
            "alert_name": title,
            "priority": rec.get("priority"),
            "severity": _level(rec.get("priority")),
            "state": rec.get("state"),
            "condition_names": _names(rec.get("conditionName")),
            "policy_names": _names(rec.get("policyName")),
            "entity_names": _names(rec.get("entityNames")),
            "sources": _names(rec.get("sources")),
            "incident_ids": _names(rec.get("incidentIds")),
            "total_incidents": rec.get("totalIncidents"),
            "activated_at": _iso(activated),
            "acknowledged_at": _iso(times["acknowledged"]),
            "closed_at": _iso(times["resolved"]),
            "muting_state": rec.get("mutingState"),
        }
        people = {"acknowledged": rec.get("acknowledgedBy"), "resolved": rec.get("closedBy")}
        text = _issue_text(title, rec.get("priority"))
        self.lifecycle(
            doc, record, RANK_API, f"newrelic:issue:{issue_id}", times, text, attrs, people
        )

    def incident(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        inc_id = rec.get("incidentId")
        if not inc_id:
            raise shape_error(doc, record, "incident has no incidentId", _HINT)
        created = self.time(rec.get("createdAt"), doc, record, "createdAt")
        closed = self.maybe(rec.get("closedAt"), doc, record, "closedAt")
        title = str(rec.get("title") or inc_id)
        attrs = {
            "incident_id": str(inc_id),
            "alert_name": title,
            "priority": rec.get("priority"),
            "severity": _level(rec.get("priority")),
            "state": rec.get("state"),
            "entity_names": _names(rec.get("entityNames")),
            "description": _names(rec.get("description")),
            "closed_at": _iso(closed),
        }
        prefix = f"newrelic:incident:{inc_id}"
        if str(inc_id) in self.grouped:  # part of an issue's alert: detail, not a second alert
            attrs["in_issue"] = True
            for step, at in (("opened", created), ("closed", closed)):
                if at is not None:
                    self.emit(
                        doc,
                        record,
                        RANK_API,
                        key=f"{prefix}:{step}",
                        at=at,
                        kind="other",
                        text=f"Incident {step}: {title}",
                        attrs=attrs,
                        is_bot=True,
                    )
            return
        times = {"firing": created, "resolved": closed}
        self.lifecycle(doc, record, RANK_API, prefix, times, f"{title} (incident)", attrs, {})

    def webhook(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        """A workflow payload: the issue's state when the workflow ran."""
        state, trigger = str(rec.get("state")), str(rec.get("trigger") or "")
        updated = self.maybe(rec.get("updatedAt"), doc, record, "updatedAt")
        acked = self.maybe(rec.get("acknowledgedAt"), doc, record, "acknowledgedAt")
        if acked is None and state == "ACTIVATED" and trigger == "USER_ACTION":
            acked = updated  # a person acted on an active issue: the acknowledgement
        closed = self.maybe(rec.get("closedAt"), doc, record, "closedAt")
        if closed is None and state == "CLOSED":
            closed = updated
        times = {
            "firing": self.time(rec.get("createdAt"), doc, record, "createdAt"),
            "acknowledged": acked,
            "resolved": closed,
        }
        title = str(rec.get("title") or rec["id"])
        attrs = {
            "issue_id": str(rec["id"]),
            "alert_name": title,
            "priority": rec.get("priority"),
            "severity": _level(rec.get("priority")),
            "state": state,
            "trigger": trigger,
            "condition_names": _names(rec.get("alertConditionNames")),
            "policy_names": _names(rec.get("alertPolicyNames")),
            "entity_names": _names(rec.get("impactedEntities")),
            "sources": _names(rec.get("sources")),
            "total_incidents": rec.get("totalIncidents"),
            "workflow": rec.get("workflowName"),
            "url": rec.get("issueUrl"),
        }
        people = {"acknowledged": rec.get("owner") if acked else None}
        text = _issue_text(title, rec.get("priority"))
        prefix = f"newrelic:issue:{rec['id']}"
        self.lifecycle(doc, record, RANK_WEBHOOK, prefix, times, text, attrs, people)

    def legacy(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        """A legacy alert-policy payload: one state change of one incident."""
        state = str(rec["current_state"])
        at = self.time(rec.get("timestamp"), doc, record, "timestamp")
        step = {"open": "firing", "acknowledged": "acknowledged", "closed": "resolved"}[state]
        title = str(rec.get("condition_name") or rec.get("details") or rec["incident_id"])
        attrs = {
            "incident_id": str(rec["incident_id"]),
            "alert_name": title,
            "policy_names": _names(rec.get("policy_name")),
            "severity": rec.get("severity"),
            "details": rec.get("details"),
            "targets": [t.get("name") for t in rec.get("targets") or [] if isinstance(t, dict)],
            "url": rec.get("incident_url"),
            "event_type": rec.get("event_type"),
        }
        who = rec.get("owner") if state == "acknowledged" else None
        text = f"{title}: {rec.get('details')}" if rec.get("details") else title
        self.lifecycle(
            doc,
            record,
            RANK_WEBHOOK,
            f"newrelic:incident:{rec['incident_id']}",
            {step: at},
            text,
            attrs,
            {step: who},
        )

    def read(self, doc: Doc, name: str, rec: Any, record: str) -> None:
        if not isinstance(rec, dict):
            raise shape_error(doc, record, f"expected an object, got {type(rec).__name__}", _HINT)
        {
            "issues": self.issue,
            "incidents": self.incident,
            "webhooks": self.webhook,
            "legacy": self.legacy,
        }[name](doc, rec, record)


def claims(doc: Doc) -> bool:
    """True when this connector recognizes the document by its content."""
    if doc.fmt not in ("json", "jsonl"):
        return False
    try:
        name = classify(doc.data)
        return name is not None and (doc.fmt == "json" or name in ("webhooks", "legacy"))
    except Exception:  # claims must never raise, whatever the file holds
        return False


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Turn the claimed documents into events; count what is skipped in ctx.report."""
    reader = Reader(ctx)
    parsed = [(doc, name) for doc in docs if (name := classify(doc.data))]
    for doc, name in parsed:
        reader.index(name, records_of(doc.data, name))
    for doc, name in parsed:
        for rec, record in records_of(doc.data, name):
            ctx.report.records += 1
            try:
                reader.read(doc, name, rec, record)
            except BundleError as err:
                ctx.reject(err, reason="invalid New Relic record")
    yield from reader.out.sorted()


def _actor(who: Any) -> Actor | None:
    """The person New Relic names by login (usually an email): an email is kept as the email,
    so the people stage joins it to the same person in chat and tickets."""
    if not who:
        return None
    text = str(who).strip()
    if "@" in text and " " not in text:
        return Actor(source=SOURCE, id=text.casefold(), email=text)
    return Actor(source=SOURCE, name=text)
