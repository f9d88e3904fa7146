"""Alertmanager file mode: webhook payloads and API v2 bodies; the alert reading Grafana shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors._support import read_time
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import (
    Provenance,
    Source,
    TimelineEvent,
    stable_hash,
)

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    pass

ZERO_TIME = "0001-01-01"  # Go's zero time.Time: Alertmanager's "no end yet"
_LABEL_ATTRS = ("service", "job", "instance", "namespace", "cluster", "team")
_MAX_WAIT_S = 60.0


# --- shared alert parsing (the grafana connector uses it too) ----------------------------------


@dataclass
class AlertContext:
    """What one alert's events need from the payload around it."""

    source: Source
    doc: Doc
    record: str
    envelope: dict[str, Any] = field(default_factory=dict)
    reference: datetime | None = None  # "now" of the payload, to decide if endsAt has passed
    extra: dict[str, Any] = field(default_factory=dict)  # vendor-specific attrs
    url: str | None = None


def collect_alerts(
    docs: list[Doc],
    ctx: ReadContext,
    read_item: Callable[[Any, Doc, str, ReadContext], Iterator[TimelineEvent]],
) -> Iterator[TimelineEvent]:
    """Read every payload (one per file, or a list), merging repeated notifications of an alert."""
    collector = AlertCollector()
    for doc in docs:
        items = doc.data if isinstance(doc.data, list) else [doc.data]
        for i, item in enumerate(items):
            prefix = f"[{i}]" if isinstance(doc.data, list) else ""
            for event in read_item(item, doc, prefix, ctx):
                collector.add(event)
    if collector.merged:
        ctx.report.skip("repeated notifications of one alert", collector.merged)
    yield from collector


class AlertCollector:
    """Keeps one event per key, in first-seen order, and counts repeated notifications."""

    def __init__(self) -> None:
        self.events: dict[str, TimelineEvent] = {}
        self.merged = 0

    def add(self, event: TimelineEvent) -> None:
        seen = self.events.get(event.key)
        if seen is None:
            self.events[event.key] = event
            return
        seen.attrs["notifications"] = seen.attrs.get("notifications", 1) + 1
        # a resolved notification restates when the alert fired: not a repeated notification
        if not (event.attrs.get("ends_at") and not seen.attrs.get("ends_at")):
            self.merged += 1
        for name in ("receivers", "group_keys"):
            merged = list(dict.fromkeys([*seen.attrs.get(name, []), *event.attrs.get(name, [])]))
            if merged:
                seen.attrs[name] = merged

    def __iter__(self) -> Iterator[TimelineEvent]:
        return iter(self.events.values())


def is_zero_time(value: Any) -> bool:
    """True for a missing endsAt or Go's zero time (0001-01-01T00:00:00Z)."""
    return value in (None, "") or (isinstance(value, str) and value.startswith(ZERO_TIME))


def key_time(at: datetime) -> str:
    """UTC ISO at millisecond precision: the API v2 writes milliseconds, webhooks nanoseconds."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _iso_key_time(iso: str) -> str:
    """key_time(at) from at.isoformat() of a UTC datetime, which attrs hold anyway."""
    # "2024-05-01T12:00:00+00:00" or "2024-05-01T12:00:00.123456+00:00"
    return iso[:19] + "." + (iso[20:23] if iso[19] == "." else "000") + "Z"


def label_fingerprint(labels: dict[str, Any]) -> str:
    """A stable stand-in fingerprint from the sorted labels, for payloads that lack one."""
    return stable_hash(*(f"{k}={labels[k]}" for k in sorted(labels)), length=16)


def alert_events(alert: Any, actx: AlertContext, ctx: ReadContext) -> list[TimelineEvent]:
    """The alert_firing (and, when resolved, alert_resolved) events of one alert object."""
    ctx.report.records += 1
    doc, record = actx.doc, actx.record
    if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
        hint = "each alert needs a labels object; export the payload unchanged"
        ctx.reject(BundleError(doc.rel, "alert has no labels object", record=record, hint=hint))
        return []
    try:
        starts = read_time(
            ctx, alert.get("startsAt"), doc=doc, record=record, field_name="startsAt"
        )
        ends = None
        if not is_zero_time(alert.get("endsAt")):
            ends = read_time(ctx, alert["endsAt"], doc=doc, record=record, field_name="endsAt")
    except BundleError as err:
        ctx.reject(err, reason="bad alert time")
        return []
    labels: dict[str, Any] = alert["labels"]
    fingerprint = str(alert.get("fingerprint") or label_fingerprint(labels))
    attrs = _alert_attrs(alert, actx, fingerprint, starts, ends)
    base = f"{actx.source}:{fingerprint}:{_iso_key_time(attrs['starts_at'])}"
    name = attrs["alertname"]
    note = _first_str(attrs["annotations"], "summary", "description", "message")
    firing = TimelineEvent.of(
        key=f"{base}:firing",
        at=starts,
        source=actx.source,
        kind="alert_firing",
        text=f"[FIRING] {name}: {note}" if note else f"[FIRING] {name}",
        url=actx.url or _str_or_none(alert.get("generatorURL")),
        provenance=Provenance.of(doc.rel, record),
        attrs=attrs,
    )
    events = [firing]
    if _is_resolved(alert, ends, actx.reference):
        if ends is None:
            ctx.report.skip("resolved alert without endsAt: no alert_resolved event")
        else:
            resolved = TimelineEvent.of(
                key=f"{base}:resolved",
                at=ends,
                source=actx.source,
                kind="alert_resolved",
                text=f"[RESOLVED] {name}: {note}" if note else f"[RESOLVED] {name}",
                url=firing.url,
                provenance=Provenance.of(doc.rel, record),
                attrs=_own_copy(attrs),
            )
            events.append(resolved)
    return events


def _is_resolved(alert: dict[str, Any], ends: datetime | None, reference: datetime | None) -> bool:
    """Webhook: status "resolved". API v2: a real endsAt at or before the payload's updatedAt."""
    status = alert.get("status")
    if isinstance(status, str) and status:
        # Alertmanager zeroes endsAt of unresolved alerts in notifications, so status decides.
        return status == "resolved"
    if ends is None:
        return False
    return reference is None or ends <= reference


def _alert_attrs(
    alert: dict[str, Any],
    actx: AlertContext,
    fingerprint: str,
    starts: datetime,
    ends: datetime | None,
) -> dict[str, Any]:
    labels: dict[str, Any] = alert["labels"]
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    status = alert.get("status")
    attrs: dict[str, Any] = {
        "alertname": str(labels.get("alertname") or f"alert {fingerprint}"),
        "severity": labels.get("severity") or labels.get("priority"),
        "status": status if isinstance(status, str) else None,
        "labels": dict(labels),
        "annotations": dict(annotations or {}),
        "fingerprint": fingerprint,
        "fingerprint_derived": not alert.get("fingerprint"),
        "generator_url": _str_or_none(alert.get("generatorURL")),
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat() if ends else None,
        "notifications": 1,
    }
    for name in _LABEL_ATTRS:
        if value := labels.get(name):
            attrs[name] = value
    if isinstance(status, dict):  # API v2 gettableAlert
        attrs["state"] = status.get("state")
        attrs["silenced_by"] = list(status.get("silencedBy") or [])
        attrs["inhibited_by"] = list(status.get("inhibitedBy") or [])
    if "receivers" in alert:
        receivers = [r.get("name") for r in alert["receivers"] or [] if isinstance(r, dict)]
        if receivers:
            attrs["receivers"] = receivers
    attrs.update(actx.envelope)
    attrs.update(actx.extra)
    return attrs


def _own_copy(attrs: dict[str, Any]) -> dict[str, Any]:
    """A copy of alert attrs that shares no mutable value (labels, lists) with the original."""
    return {k: v.copy() if isinstance(v, dict | list) else v for k, v in attrs.items()}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_str(mapping: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def envelope_attrs(payload: dict[str, Any]) -> dict[str, Any]:
    """Group-level webhook fields copied onto each alert's attrs."""
    attrs: dict[str, Any] = {
        "receiver": payload.get("receiver"),
        "group_key": payload.get("groupKey"),
        "payload_status": payload.get("status"),
        "external_url": payload.get("externalURL"),
    }
    if payload.get("receiver"):
        attrs["receivers"] = [payload["receiver"]]
    if payload.get("groupKey"):
        attrs["group_keys"] = [payload["groupKey"]]
    if payload.get("truncatedAlerts"):
        attrs["truncated_alerts"] = payload["truncatedAlerts"]
    if payload.get("notification_reason"):
        attrs["notification_reason"] = payload["notification_reason"]
    return {k: v for k, v in attrs.items() if v not in (None, "")}


def note_truncated(payload: dict[str, Any], ctx: ReadContext) -> None:
    """Alertmanager dropped alerts beyond max_alerts before sending; say so in the report."""
    truncated = payload.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        ctx.report.skip(
            "alerts truncated by the sender (max_alerts), not in the payload", truncated
        )


# --- document shapes ---------------------------------------------------------------------------


def _is_webhook(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("version") == "4"
        and "orgId" not in item  # Grafana's payloads carry orgId (and version "1")
        and isinstance(item.get("alerts"), list)
    )


def _is_gettable_alert(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("labels"), dict)
        and isinstance(item.get("status"), dict)
        and "startsAt" in item
        and ("fingerprint" in item or "receivers" in item)
    )


def _is_alert_group(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("alerts"), list)
        and isinstance(item.get("labels"), dict)
        and isinstance(item.get("receiver"), dict)
    )


def _shape(item: Any) -> str | None:
    if _is_webhook(item):
        return "webhook"
    if _is_gettable_alert(item):
        return "alert"
    if _is_alert_group(item):
        return "group"
    return None


# --- live mode ---------------------------------------------------------------------------------


def claims(doc: Doc) -> bool:
    """Webhook payloads, API v2 alert lists and alert group lists."""
    if doc.fmt != "json":
        return False
    data = doc.data
    if isinstance(data, list):
        return bool(data) and _shape(data[0]) is not None
    return _is_webhook(data)


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """One firing (and resolved) event per alert, repeats merged."""
    return collect_alerts(docs, ctx, _read_item)


def _read_item(item: Any, doc: Doc, prefix: str, ctx: ReadContext) -> Iterator[TimelineEvent]:
    shape = _shape(item)
    if shape == "webhook":
        note_truncated(item, ctx)
        actx = AlertContext("alertmanager", doc, "", envelope=envelope_attrs(item))
        where = f"{prefix}.alerts".lstrip(".")
        for j, alert in enumerate(item["alerts"]):
            actx.record = f"{where}[{j}]"  # one context per payload; only the record moves
            yield from alert_events(alert, actx, ctx)
    elif shape == "alert":
        yield from alert_events(item, _api_context(item, doc, prefix, {}, ctx), ctx)
    elif shape == "group":
        receiver = item["receiver"].get("name")
        envelope = {"receiver": receiver, "group_labels": item["labels"]}
        for j, alert in enumerate(item["alerts"]):
            record = f"{prefix}.alerts[{j}]"
            yield from alert_events(alert, _api_context(alert, doc, record, envelope, ctx), ctx)
    else:
        ctx.reject(
            BundleError(
                doc.rel,
                "not an Alertmanager webhook payload, API v2 alert or alert group",
                record=prefix or None,
                hint="keep one kind of Alertmanager body per file, unchanged",
            ),
            reason="unknown Alertmanager record",
        )


def _api_context(
    alert: Any, doc: Doc, record: str, envelope: dict[str, Any], ctx: ReadContext
) -> AlertContext:
    """API v2 alerts carry updatedAt: the reference to decide whether endsAt has passed."""
    actx = AlertContext("alertmanager", doc, record, envelope=dict(envelope))
    updated = alert.get("updatedAt") if isinstance(alert, dict) else None
    if updated and not is_zero_time(updated):
        try:
            actx.reference = ctx.time(updated, doc=doc, record=record, field_name="updatedAt")
        except BundleError as err:
            ctx.reject(err, reason="bad alert time")
    return actx
