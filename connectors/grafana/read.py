"""Grafana file mode: unified-alerting webhook payloads (and legacy webhooks)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.alertmanager.read import (
    AlertContext,
    alert_events,
    collect_alerts,
    envelope_attrs,
    key_time,
    note_truncated,
)
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import (
    EventKind,
    Provenance,
    TimelineEvent,
    stable_hash,
)

_GRAFANA_ALERT_KEYS = ("silenceURL", "dashboardURL", "panelURL", "valueString", "imageURL")
_LEGACY_TIME_KEYS = ("receivedAt", "received_at", "timestamp", "time")
_LEGACY_KINDS: dict[str, EventKind] = {
    "alerting": "alert_firing",
    "no_data": "alert_firing",
    "ok": "alert_resolved",
}


def _is_unified(item: Any) -> bool:
    if not isinstance(item, dict) or item.get("version") != "1":
        return False
    alerts = item.get("alerts")
    if not isinstance(alerts, list):
        return False
    if "orgId" in item:
        return True
    # Older 8.x payloads may lack orgId; their alerts still carry Grafana-only URL fields.
    return any(isinstance(a, dict) and any(k in a for k in _GRAFANA_ALERT_KEYS) for a in alerts)


def _is_legacy(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and "ruleName" in item
        and isinstance(item.get("evalMatches"), list)
        and isinstance(item.get("state"), str)
    )


def _grafana_extra(alert: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """Grafana-only fields: the query values, links, folder and rule uid."""
    if not isinstance(alert, dict):
        return {}
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    extra = {
        "values": alert.get("values"),
        "value_string": alert.get("valueString"),
        "silence_url": alert.get("silenceURL"),
        "dashboard_url": alert.get("dashboardURL"),
        "panel_url": alert.get("panelURL"),
        "image_url": alert.get("imageURL"),
        "folder": (labels or {}).get("grafana_folder"),
        "rule_uid": (labels or {}).get("__alert_rule_uid__"),
        "org_id": payload.get("orgId"),
        "title": payload.get("title"),
        "payload_state": payload.get("state"),
    }
    return {k: v for k, v in extra.items() if v not in (None, "", {})}


def _grafana_url(alert: Any) -> str | None:
    if not isinstance(alert, dict):
        return None
    for name in ("panelURL", "dashboardURL", "generatorURL"):
        value = alert.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def claims(doc: Doc) -> bool:
    """Unified-alerting webhook payloads, legacy webhooks, or JSON lists of either."""
    if doc.fmt != "json":
        return False
    data = doc.data
    if isinstance(data, list):
        return bool(data) and (_is_unified(data[0]) or _is_legacy(data[0]))
    return _is_unified(data) or _is_legacy(data)


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """One firing (and resolved) event per alert, repeats merged as Alertmanager's are."""
    return collect_alerts(docs, ctx, _read_item)


def _read_item(item: Any, doc: Doc, prefix: str, ctx: ReadContext) -> Iterator[TimelineEvent]:
    if _is_unified(item):
        note_truncated(item, ctx)
        envelope = envelope_attrs(item)
        for j, alert in enumerate(item["alerts"]):
            record = f"{prefix}.alerts[{j}]".lstrip(".")
            actx = AlertContext("grafana", doc, record, envelope=envelope)
            actx.extra = _grafana_extra(alert, item)
            actx.url = _grafana_url(alert)
            yield from alert_events(alert, actx, ctx)
    elif _is_legacy(item):
        yield from _legacy(item, doc, prefix or "payload", ctx)
    else:
        ctx.reject(
            BundleError(
                doc.rel,
                'not a Grafana webhook payload (version "1" with alerts[])',
                record=prefix or None,
                hint="keep one Grafana webhook body per file, or a JSON list of them",
            ),
            reason="unknown Grafana record",
        )


def _legacy(
    item: dict[str, Any], doc: Doc, record: str, ctx: ReadContext
) -> Iterator[TimelineEvent]:
    """Pre-8 Grafana alerts: no timestamp in the payload, so the capturer must add one."""
    ctx.report.records += 1
    kind = _LEGACY_KINDS.get(item["state"])
    if kind is None:
        ctx.report.skip(f"legacy Grafana state {item['state']!r} is not an alert transition")
        return
    stamp = next((item[k] for k in _LEGACY_TIME_KEYS if item.get(k)), None)
    if stamp is None:
        hint = 'add "receivedAt": "<ISO 8601 time>" when capturing legacy Grafana webhooks'
        err = BundleError(doc.rel, "legacy Grafana alert has no time", record=record, hint=hint)
        ctx.reject(err, reason="legacy Grafana alert without time")
        return
    try:
        at = ctx.time(stamp, doc=doc, record=record, field_name="receivedAt")
    except BundleError as err:
        ctx.reject(err, reason="bad alert time")
        return
    rule = str(item.get("ruleId") or stable_hash(str(item["ruleName"])))
    label = "FIRING" if kind == "alert_firing" else "RESOLVED"
    message = str(item.get("message") or "").strip()
    text = f"[{label}] {item['ruleName']}"
    yield TimelineEvent(
        key=f"grafana:legacy:{rule}:{item['state']}:{key_time(at)}",
        at=at,
        source="grafana",
        kind=kind,
        text=f"{text}: {message}" if message and kind == "alert_firing" else text,
        url=item.get("ruleUrl") or None,
        provenance=Provenance(file=doc.rel, record=record),
        attrs={
            "alertname": item["ruleName"],
            "rule_id": item.get("ruleId"),
            "state": item["state"],
            "eval_matches": item["evalMatches"],
            "tags": item.get("tags") or {},
            "dashboard_id": item.get("dashboardId"),
            "panel_id": item.get("panelId"),
            "org_id": item.get("orgId"),
            "legacy": True,
            "notifications": 1,
        },
    )
