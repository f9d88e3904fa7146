"""Reading Datadog API bodies (events v2, incidents v2, monitors v1) into timeline events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from connectors._support import Collector
from connectors.datadog import incidents
from retro.connector import Doc, ReadContext, first, shape_error
from retro.errors import BundleError
from retro.models import Actor, EventKind, Provenance, TimelineEvent

SOURCE: Final = "datadog"
_HINT = "export the Datadog API response body unchanged (see docs/connectors/datadog.md)"

# A monitor notification's title leads with its transition: "[P1] [Triggered on {host:a}] Name".
_TITLE = re.compile(
    r"^\s*(?:\[P\d\]\s*)?\[(?P<transition>[A-Za-z -]+?)(?:\s+on\s+\{(?P<group>[^}]*)\})?\]\s*"
    r"(?P<name>.*)$",
    re.DOTALL,
)
FIRING = {"triggered", "re-triggered", "warn", "re-warn", "no data", "re-no data", "renotify"}
RECOVERED = {"recovered", "warn recovered", "no data recovered"}
_STATUS_TRANSITION = {"error": "Triggered", "warning": "Warn", "success": "Recovered"}
_SEVERITY = {"triggered": "critical", "warn": "warning", "no data": "no_data"}

MONITOR_TYPES = frozenset(
    [
        "query alert",
        "metric alert",
        "service check",
        "event alert",
        "event-v2 alert",
        "log alert",
        "process alert",
        "rum alert",
        "trace-analytics alert",
        "slo alert",
        "synthetics alert",
        "composite",
        "audit alert",
        "ci-pipelines alert",
        "ci-tests alert",
        "error-tracking alert",
        "database-monitoring alert",
        "network-performance alert",
        "cost alert",
        "watchdog alert",
    ]
)


# --- recognizing documents -----------------------------------------------------------------------


def _is_event(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") == "event"
        and isinstance(obj.get("attributes"), dict)
        and ("timestamp" in obj["attributes"] or "attributes" in obj["attributes"])
    )


def is_incident(obj: Any) -> bool:
    attrs = obj.get("attributes") if isinstance(obj, dict) else None
    return (
        isinstance(attrs, dict)
        and obj.get("type") == "incidents"
        and bool(obj.get("id"))
        and "public_id" in attrs
        and ("declared" in attrs or "customer_impact_start" in attrs or "detected" in attrs)
    )


def _typed(kind: str) -> Any:
    def test(obj: Any) -> bool:
        return (
            isinstance(obj, dict)
            and obj.get("type") == kind
            and bool(obj.get("id"))
            and isinstance(obj.get("attributes"), dict)
        )

    return test


def is_monitor(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("id"), int)
        and isinstance(obj.get("query"), str)
        and str(obj.get("type")) in MONITOR_TYPES
    )


def _is_group(obj: Any) -> bool:
    return isinstance(obj, dict) and "monitor_id" in obj and "group" in obj and "status" in obj


_DATA_TESTS = {
    "events": _is_event,
    "incidents": is_incident,
    "todos": _typed("incident_todos"),
    "impacts": _typed("incident_impacts"),
    "integrations": _typed("incident_integrations"),
}


def _in_datadog_folder(rel: str) -> bool:
    return "datadog" in rel.replace("\\", "/").split("/")[:-1]


def classify(data: Any, rel: str = "") -> str | None:
    """Name of the Datadog body this is ("events", "incident", "monitors", …), or None."""
    if isinstance(data, list):
        return "monitors" if data and all(is_monitor(m) for m in data[:50]) else None
    if not isinstance(data, dict):
        return None
    body = data.get("data")
    if isinstance(body, list):
        for name, test in _DATA_TESTS.items():
            if body and test(body[0]):
                return name
        # An empty last page ({"data": []}) says nothing by itself: claimed only in datadog/.
        if body == [] and set(data) <= {"data", "meta", "links"} and _in_datadog_folder(rel):
            return "empty"
        return None
    if isinstance(body, dict):
        for name, test in _DATA_TESTS.items():
            if test(body):
                return name.rstrip("s") if name != "events" else "event"
        incidents = (body.get("attributes") or {}).get("incidents")
        if body.get("type") == "incidents_search_results" and isinstance(incidents, list):
            return "incident_search"
        return None
    if is_monitor(data):
        return "monitor"
    meta = data.get("metadata")
    if isinstance(meta, dict) and "total_count" in meta:
        if isinstance(data.get("monitors"), list):
            return "monitor_search"
        if isinstance(data.get("groups"), list) and all(_is_group(g) for g in data["groups"][:50]):
            return "group_search"
    return None


def records_of(data: Any, name: str) -> list[tuple[Any, str]]:
    """The records of a classified body, each with its provenance label."""
    if name == "monitors":
        return [(rec, f"[{i}]") for i, rec in enumerate(data)]
    if name == "monitor":
        return [(data, "monitor")]
    if name == "monitor_search":
        return [(rec, f"monitors[{i}]") for i, rec in enumerate(data["monitors"])]
    if name == "group_search":
        return [(rec, f"groups[{i}]") for i, rec in enumerate(data["groups"])]
    if name == "incident_search":
        found = data["data"]["attributes"]["incidents"]
        return [
            ((rec.get("data") if isinstance(rec, dict) else rec), f"incidents[{i}].data")
            for i, rec in enumerate(found)
        ]
    body = data.get("data")
    if isinstance(body, dict):
        return [(body, "data")]
    return [(rec, f"data[{i}]") for i, rec in enumerate(body or [])]


# --- reading ---------------------------------------------------------------------------------------


@dataclass
class _Index:
    """Users, monitors and incidents the bundle names, gathered before events are made."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitors: dict[str, dict[str, Any]] = field(default_factory=dict)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_user(self, ref: Any) -> None:
        data = ref.get("data") if isinstance(ref, dict) and "data" in ref else ref
        if not isinstance(data, dict) or data.get("type") != "users" or not data.get("id"):
            return
        attrs = data.get("attributes") or {}
        known = self.users.setdefault(str(data["id"]), {})
        for key in ("name", "email", "handle"):
            if attrs.get(key):
                known[key] = attrs[key]

    def add_monitor(self, rec: Any) -> None:
        if isinstance(rec, dict) and rec.get("id") is not None:
            known = self.monitors.setdefault(str(rec["id"]), {})
            known.update({k: v for k, v in rec.items() if v not in (None, "", [], {})})


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def _group_of(attrs: dict[str, Any], title_group: str | None) -> str:
    groups = attrs.get("monitor_groups")
    if isinstance(groups, list) and groups:
        return ",".join(sorted(str(g) for g in groups))
    if title_group:
        return ",".join(sorted(part.strip() for part in title_group.split(",")))
    return ""


def _event_attrs(
    rec: dict[str, Any], outer: dict[str, Any], inner: dict[str, Any]
) -> dict[str, Any]:
    service = inner.get("service")
    return {
        "event_id": rec["id"],
        "status": inner.get("status"),
        "priority": inner.get("priority"),
        "service": service if service != "undefined" else None,
        "host": inner.get("hostname"),
        "source_type": inner.get("source_type_name"),
        "aggregation_key": inner.get("aggregation_key"),
        "tags": outer.get("tags") or inner.get("tags") or [],
        "message": str(outer.get("message") or "")[:500],
    }


@dataclass
class _Transition:
    """One monitor notification read from an events v2 record, before cycles are assigned."""

    doc: Doc
    record: str
    at: datetime
    event_id: str
    monitor_id: str
    group: str
    transition: str
    name: str
    attrs: dict[str, Any]
    title: str
    duration_ns: int | None


class Reader:
    """Pass 1 indexes users and monitors; pass 2 turns records into events."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.idx = _Index()
        self.out = Collector(ctx)
        self.transitions: list[_Transition] = []
        self.snapshots: list[tuple[Doc, str, dict[str, Any]]] = []

    # -- pass 1 ---------------------------------------------------------------------------------
    def index(self, name: str, records: list[tuple[Any, str]], data: Any) -> None:
        if isinstance(data, dict):
            for inc in data.get("included") or []:
                self.idx.add_user(inc)
        for rec, _ in records:
            if name in ("monitors", "monitor", "monitor_search"):
                self.idx.add_monitor(rec)
            elif name in ("incident", "incidents", "incident_search") and isinstance(rec, dict):
                self.idx.incidents[str(rec.get("id"))] = rec
                for value in (rec.get("attributes") or {}).values():
                    self.idx.add_user(value)
            elif name in ("todo", "todos") and isinstance(rec, dict):
                for value in (rec.get("attributes") or {}).values():
                    self.idx.add_user(value)

    # -- helpers --------------------------------------------------------------------------------
    def time(self, value: Any, doc: Doc, record: str, name: str) -> datetime:
        return self.ctx.time(value, doc=doc, record=record, field_name=name)

    def maybe_time(self, value: Any, doc: Doc, record: str, name: str) -> datetime | None:
        return None if value in (None, "", 0) else self.time(value, doc, record, name)

    def user(self, ref: Any) -> Actor | None:
        data = ref.get("data") if isinstance(ref, dict) and "data" in ref else ref
        if not isinstance(data, dict) or not data.get("id"):
            return None
        known = self.idx.users.get(str(data["id"]), {})
        name = known.get("name") or known.get("handle")
        if not (name or known.get("email")):
            return None
        return Actor(source=SOURCE, id=str(data["id"]), name=name, email=known.get("email"))

    def emit(self, doc: Doc, record: str, rank: int, **kw: Any) -> None:
        attrs = {k: v for k, v in kw.pop("attrs", {}).items() if v not in (None, "", [], {})}
        event = TimelineEvent.of(
            source=SOURCE, provenance=Provenance.of(doc.rel, record), attrs=attrs, **kw
        )
        self.out.add(event, rank)

    # -- events v2 --------------------------------------------------------------------------------
    def event(self, doc: Doc, rec: dict[str, Any], record: str) -> None:
        if not _is_event(rec) or not rec.get("id"):
            raise shape_error(doc, record, "event has no id or attributes", _HINT)
        outer = rec["attributes"]
        inner: dict[str, Any] = outer.get("attributes") or {}
        if not isinstance(inner, dict):
            raise shape_error(doc, record, "event attributes.attributes is not an object", _HINT)
        at = self.time(
            first(outer, "timestamp") or inner.get("timestamp"), doc, record, "timestamp"
        )
        title = str(first(inner, "title", "event_object") or outer.get("title") or "")
        match = _TITLE.match(title)
        transition = match["transition"] if match else ""
        if transition.casefold() not in FIRING | RECOVERED and inner.get("monitor_id") is not None:
            transition = _STATUS_TRANSITION.get(str(inner.get("status")), "")
        monitor: dict[str, Any] = inner.get("monitor") or {}
        if not isinstance(monitor, dict):
            monitor = {}
        monitor_id = inner.get("monitor_id") or monitor.get("id")
        attrs = _event_attrs(rec, outer, inner)
        if monitor_id is not None and transition.casefold() in FIRING | RECOVERED:
            name = (match["name"] if match else "") or monitor.get("name") or title
            duration = inner.get("duration")
            self.transitions.append(
                _Transition(
                    doc=doc,
                    record=record,
                    at=at,
                    event_id=str(rec["id"]),
                    monitor_id=str(monitor_id),
                    group=_group_of(inner, match["group"] if match else None),
                    transition=transition,
                    name=str(name).strip(),
                    attrs=attrs,
                    title=title,
                    duration_ns=duration if isinstance(duration, int) else None,
                )
            )
            return
        self.emit(
            doc,
            record,
            1,
            key=f"datadog:event:{rec['id']}",
            at=at,
            kind="other",
            text=title or str(outer.get("message") or "")[:200],
            attrs=attrs,
            is_bot=True,
        )

    def monitor_events(self) -> None:
        """Assign each transition to an alert cycle per monitor and group, in time order."""
        open_cycles: dict[tuple[str, str], str] = {}
        warned: set[tuple[str, str]] = set()  # open cycles that fired at Warn and have not paged
        for t in sorted(self.transitions, key=lambda t: (t.at, t.event_id)):
            slot = (t.monitor_id, t.group)
            base = f"datadog:monitor:{t.monitor_id}:{t.group}"
            attrs = {**self._monitor_attrs(t.monitor_id, t.name), **t.attrs}
            attrs.update(
                group=t.group, transition=t.transition, monitor_id=t.monitor_id, title=t.title
            )
            firing = t.transition.casefold() in FIRING
            severity = _SEVERITY.get(t.transition.casefold().removeprefix("re-"))
            # "<monitor>: <transition> on <group>", the name first as other alert texts have it;
            # the vendor's own title is kept in attrs["title"].
            where = f" on {t.group}" if t.group else ""
            common = {
                "at": t.at,
                "text": f"{attrs['alert_name']}: {t.transition}{where}",
                "is_bot": True,
            }
            kind: EventKind
            if firing and slot not in open_cycles:
                cycle = open_cycles[slot] = f"{t.at:%Y%m%dT%H%M%S}"
                key, kind = f"{base}:{cycle}:firing", "alert_firing"
                if severity == "warning":
                    warned.add(slot)
            elif firing and slot in warned and severity == "critical":
                # Warn -> Triggered: the same alert now at its critical threshold, which is what
                # pages; a firing of the cycle at its louder level (same alert key up to the
                # last part, so its one recovery closes both)
                warned.discard(slot)
                cycle = open_cycles[slot]
                key, kind = f"{base}:{cycle}:triggered", "alert_firing"
            elif firing:  # a re-notification inside one alert
                cycle = open_cycles[slot]
                key, kind = f"datadog:event:{t.event_id}", "other"
            else:
                warned.discard(slot)
                cycle = open_cycles.pop(slot, "") or self._cycle_from_duration(t)
                key, kind = f"{base}:{cycle}:resolved", "alert_resolved"
                severity = None
            attrs.update(cycle=cycle, severity=severity)
            self.emit(t.doc, t.record, 2, key=key, kind=kind, attrs=attrs, **common)

    @staticmethod
    def _cycle_from_duration(t: _Transition) -> str:
        """A recovery whose trigger is not in the bundle: its `duration` says when it began."""
        if t.duration_ns:
            began = t.at - timedelta(microseconds=t.duration_ns // 1000)
            return f"{began:%Y%m%dT%H%M%S}"
        return f"event-{t.event_id}"

    def _monitor_attrs(self, monitor_id: str, name: str) -> dict[str, Any]:
        mon = self.idx.monitors.get(monitor_id, {})
        return {
            "alert_name": mon.get("name") or name,
            "monitor_type": mon.get("type"),
            "query": mon.get("query"),
            "monitor_tags": mon.get("tags"),
            "monitor_priority": mon.get("priority"),
        }

    def snapshot_events(self) -> None:
        """Monitor search results: a monitor (group) in Alert or Warn has fired since
        `last_triggered_ts`; used only when no notification event covers that monitor."""
        seen = {(t.monitor_id, t.group) for t in self.transitions}
        seen_monitors = {t.monitor_id for t in self.transitions}
        # A monitor's group rows say more than its monitor-level row: keep only the groups.
        seen_monitors |= {
            str(rec.get("monitor_id")) for _, _, rec in self.snapshots if "group" in rec
        }
        for doc, record, rec in self.snapshots:
            state = str(rec.get("status") or "")
            ts = rec.get("last_triggered_ts")
            if state not in ("Alert", "Warn", "No Data") or not ts:
                continue
            mid = str(rec.get("monitor_id") or rec.get("id"))
            group = ",".join(sorted(str(rec.get("group") or "").split(","))).strip(",")
            if (mid, group) in seen or ("group" not in rec and mid in seen_monitors):
                self.ctx.report.skip("monitor snapshot covered by notification events")
                continue
            at = self.time(ts, doc, record, "last_triggered_ts")
            cycle = f"{at:%Y%m%dT%H%M%S}"
            name = str(rec.get("monitor_name") or rec.get("name") or mid)
            attrs = {
                **self._monitor_attrs(mid, name),
                "monitor_id": mid,
                "group": group,
                "monitor_status": state,
                "severity": {"Alert": "critical", "Warn": "warning"}.get(state, "no_data"),
                "cycle": cycle,
                "snapshot": True,
            }
            where = f" on {group}" if group else ""
            self.emit(
                doc,
                record,
                1,
                key=f"datadog:monitor:{mid}:{group}:{cycle}:firing",
                at=at,
                kind="alert_firing",
                text=f"{name}: {state}{where}",
                attrs=attrs,
                is_bot=True,
            )

    def read(self, doc: Doc, name: str, rec: Any, record: str) -> None:
        """Turn one record of a classified body into events."""
        if not isinstance(rec, dict):
            raise shape_error(doc, record, f"expected an object, got {type(rec).__name__}", _HINT)
        if name in ("events", "event"):
            self.event(doc, rec, record)
        elif name in ("incidents", "incident", "incident_search"):
            incidents.incident(self, doc, rec, record)
        elif name in ("todos", "todo"):
            incidents.todo(self, doc, rec, record)
        elif name in ("impacts", "impact"):
            incidents.impact(self, doc, rec, record)
        elif name in ("group_search", "monitor_search"):
            self.snapshots.append((doc, record, rec))
        # monitors and integrations are reference data: names, queries, tags, channels


def claims(doc: Doc) -> bool:
    """True when this connector recognizes the document by its content."""
    if doc.fmt != "json":
        return False
    try:
        return classify(doc.data, doc.rel) is not None
    except Exception:  # claims must never raise, whatever the file holds
        return False


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Turn the claimed documents into events; count what is skipped in ctx.report."""
    reader = Reader(ctx)
    parsed = [(doc, name) for doc in docs if (name := classify(doc.data, doc.rel))]
    for doc, name in parsed:
        reader.index(name, records_of(doc.data, name), doc.data)
    for doc, name in parsed:
        for rec, record in records_of(doc.data, name):
            ctx.report.records += 1
            try:
                reader.read(doc, name, rec, record)
            except BundleError as err:
                ctx.reject(err, reason="invalid Datadog record")
    reader.monitor_events()
    reader.snapshot_events()
    yield from reader.out.sorted()
