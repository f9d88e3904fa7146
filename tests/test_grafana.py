"""Grafana connector: unified-alerting webhook payloads (version "1") and legacy webhooks."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.alertmanager import AlertmanagerConnector
from connectors.grafana import GrafanaConnector
from retro.connector import Doc, IncidentRef, ReadContext
from retro.errors import BundleError, ConfigError
from retro.models import IncidentMeta, SourceReport, TimelineEvent

CONNECTOR = GrafanaConnector()
PANEL = "https://grafana.example.com/d/abc123/checkout?orgId=1&viewPanel=4"


def make_ctx(tmp_path: Path, *, lenient: bool = False) -> ReadContext:
    return ReadContext(
        bundle=tmp_path,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="grafana"),
        lenient=lenient,
    )


def read(ctx: ReadContext, *docs: Doc) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx))


def grafana_alert(status: str = "firing", ends_at: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "Checkout latency",
            "grafana_folder": "payments",
            "service": "checkout",
            "__alert_rule_uid__": "fdk2q7ks1ow5cd",
        },
        "annotations": {"summary": "p99 latency above 2s", "runbook_url": "https://wiki/run"},
        "startsAt": "2024-05-01T16:03:00.5+02:00",
        "endsAt": ends_at,
        "generatorURL": "https://grafana.example.com/alerting/grafana/fdk2q7ks1ow5cd/view",
        "fingerprint": "8d3c1f0e2b7a6954",
        "silenceURL": "https://grafana.example.com/alerting/silence/new?matcher=alertname%3D",
        "dashboardURL": "https://grafana.example.com/d/abc123/checkout?orgId=1",
        "panelURL": PANEL,
        "values": {"A": 2.43, "C": 1},
        "valueString": "[ var='A' labels={service=checkout} value=2.43 ], [ var='C' value=1 ]",
    }


def envelope(alerts: list[dict[str, Any]], *, truncated: int = 0) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "receiver": "payments-webhook",
        "status": status,
        "orgId": 1,
        "alerts": alerts,
        "groupLabels": {"alertname": "Checkout latency"},
        "commonLabels": {"alertname": "Checkout latency"},
        "commonAnnotations": {},
        "externalURL": "https://grafana.example.com/",
        "version": "1",
        "groupKey": '{}/{}:{alertname="Checkout latency"}',
        "truncatedAlerts": truncated,
        "title": f"[{status.upper()}:1] Checkout latency",
        "state": "alerting" if status == "firing" else "ok",
        "message": "**Firing**\n\nValue: A=2.43",
    }


def test_unified_envelope_with_values(tmp_path: Path) -> None:
    events = read(make_ctx(tmp_path), Doc("grafana/1.json", envelope([grafana_alert()])))
    assert len(events) == 1
    event = events[0]
    assert event.source == "grafana" and event.kind == "alert_firing"
    assert event.key == "grafana:8d3c1f0e2b7a6954:2024-05-01T14:03:00.500Z:firing"
    assert event.at == datetime(2024, 5, 1, 14, 3, 0, 500000, tzinfo=UTC)
    assert event.text == "[FIRING] Checkout latency: p99 latency above 2s"
    assert event.url == PANEL
    assert event.attrs["values"] == {"A": 2.43, "C": 1}
    assert event.attrs["value_string"].startswith("[ var='A'")
    assert event.attrs["folder"] == "payments" and event.attrs["rule_uid"] == "fdk2q7ks1ow5cd"
    assert event.attrs["org_id"] == 1 and event.attrs["receiver"] == "payments-webhook"
    assert event.attrs["service"] == "checkout"
    assert event.attrs["silence_url"].startswith("https://grafana.example.com/alerting/silence")
    assert event.provenance.record == "alerts[0]"


def test_url_falls_back_to_dashboard_then_generator(tmp_path: Path) -> None:
    no_panel = grafana_alert() | {"panelURL": ""}
    bare = grafana_alert() | {"panelURL": "", "dashboardURL": "", "fingerprint": "1"}
    events = read(make_ctx(tmp_path), Doc("g.json", envelope([no_panel, bare])))
    assert events[0].url == "https://grafana.example.com/d/abc123/checkout?orgId=1"
    assert events[1].url and events[1].url.endswith("/fdk2q7ks1ow5cd/view")


def test_repeats_merge_and_resolution_follows(tmp_path: Path) -> None:
    fire = envelope([grafana_alert()])
    done = envelope([grafana_alert("resolved", "2024-05-01T14:30:00Z")])
    ctx = make_ctx(tmp_path)
    events = read(ctx, Doc("g/all.json", [fire, copy.deepcopy(fire), done]))
    assert [e.kind for e in events] == ["alert_firing", "alert_resolved"]
    assert events[0].attrs["notifications"] == 3
    assert events[1].key == "grafana:8d3c1f0e2b7a6954:2024-05-01T14:03:00.500Z:resolved"
    assert events[1].at == datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    assert events[1].text == "[RESOLVED] Checkout latency: p99 latency above 2s"
    assert events[1].provenance.record == "[2].alerts[0]"
    assert ctx.report.records == 3


def test_truncated_alerts_recorded(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    read(ctx, Doc("g.json", envelope([grafana_alert()], truncated=2)))
    assert sum(n for reason, n in ctx.report.skipped.items() if "truncated" in reason) == 2


def test_claims_are_disjoint_from_alertmanager() -> None:
    grafana = Doc("g.json", envelope([grafana_alert()]))
    alertmanager = Doc("a.json", envelope([grafana_alert()]) | {"version": "4"})
    del alertmanager.data["orgId"]
    assert CONNECTOR.claims(grafana) and not AlertmanagerConnector().claims(grafana)
    assert AlertmanagerConnector().claims(alertmanager) and not CONNECTOR.claims(alertmanager)
    assert CONNECTOR.claims(Doc("g.json", [envelope([grafana_alert()])]))
    no_org = envelope([grafana_alert()])
    del no_org["orgId"]
    assert CONNECTOR.claims(Doc("g.json", no_org))  # older 8.x: recognised by alert URL fields
    assert not CONNECTOR.claims(Doc("g.jsonl", [no_org], fmt="jsonl"))
    assert not CONNECTOR.claims(Doc("x.json", {"version": "1", "alerts": [{"labels": {}}]}))


def test_bad_payload_in_list_is_rejected(tmp_path: Path) -> None:
    doc = Doc("g.json", [envelope([grafana_alert()]), {"hello": "world"}])
    with pytest.raises(BundleError, match="not a Grafana webhook") as info:
        read(make_ctx(tmp_path), doc)
    assert info.value.record == "[1]"
    ctx = make_ctx(tmp_path, lenient=True)
    assert len(read(ctx, doc)) == 1 and ctx.report.skipped


LEGACY = {
    "dashboardId": 1,
    "evalMatches": [{"value": 100, "metric": "High value", "tags": None}],
    "message": "Someone is testing the alert notification within Grafana.",
    "orgId": 0,
    "panelId": 1,
    "ruleId": 0,
    "ruleName": "Test notification",
    "ruleUrl": "http://localhost:3000/",
    "state": "alerting",
    "tags": {},
    "title": "[Alerting] Test notification",
}


def test_legacy_webhook_needs_a_capture_time(tmp_path: Path) -> None:
    assert CONNECTOR.claims(Doc("legacy.json", LEGACY))
    with pytest.raises(BundleError, match="no time") as info:
        read(make_ctx(tmp_path), Doc("legacy.json", LEGACY))
    assert "receivedAt" in str(info.value.hint)
    stamped = LEGACY | {"receivedAt": "2024-05-01T14:00:00Z"}
    ok = LEGACY | {"state": "ok", "receivedAt": "2024-05-01T14:10:00Z"}
    pending = LEGACY | {"state": "pending", "receivedAt": "2024-05-01T14:00:00Z"}
    ctx = make_ctx(tmp_path)
    events = read(ctx, Doc("legacy.json", [stamped, ok, pending]))
    assert [e.kind for e in events] == ["alert_firing", "alert_resolved"]
    assert events[0].text.startswith("[FIRING] Test notification: Someone is testing")
    assert events[0].attrs["eval_matches"][0]["value"] == 100
    assert events[0].url == "http://localhost:3000/"
    assert events[1].text == "[RESOLVED] Test notification"
    assert any("pending" in reason for reason in ctx.report.skipped)


def test_no_live_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no live mode") as info:
        CONNECTOR.harvest(IncidentRef(incident_id="I"), tmp_path, CONNECTOR.Config())
    assert "docs/connectors/grafana.md" in str(info.value)
