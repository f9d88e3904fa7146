"""Alertmanager and Grafana connectors against the real vendor samples in ../shared/fixtures."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.alertmanager import AlertmanagerConnector
from connectors.generic import GenericConnector
from connectors.grafana import GrafanaConnector
from retro.connector import Doc, ReadContext
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.alertmanager import fingerprint, gettable_alert, webhook_alert, webhook_payload

SHARED = Path(__file__).parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures"
AM = FIXTURES / "alertmanager"
GRAFANA = FIXTURES / "grafana"

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared/fixtures is absent")


def load(path: Path) -> Doc:
    return Doc(str(path.relative_to(FIXTURES)), json.loads(path.read_text("utf-8")), path=path)


def read(connector: AlertmanagerConnector | GrafanaConnector, doc: Doc) -> list[TimelineEvent]:
    ctx = ReadContext(
        bundle=FIXTURES, incident=IncidentMeta(id="C"), report=SourceReport(name=connector.name)
    )
    assert connector.claims(doc)
    events = list(connector.read_bundle([doc], ctx))
    assert not ctx.report.skipped, ctx.report.skipped
    return events


def test_every_json_fixture_has_exactly_the_right_owner() -> None:
    """Alert samples are claimed by their own connector only; no other vendor's file is."""
    connectors = [AlertmanagerConnector(), GrafanaConnector(), GenericConnector()]
    owners: dict[str, list[str]] = {}
    for path in sorted(FIXTURES.rglob("*.json")):
        doc = load(path)
        owners[doc.rel] = [c.name for c in connectors if c.claims(doc)]
    assert owners["alertmanager/webhook_v4_zulip_alert.json"] == ["alertmanager"]
    assert owners["alertmanager/api_v2_get_alerts_aws_amp_docs_example.json"] == ["alertmanager"]
    for rel in (
        "grafana/unified_alerting_webhook_grafana_docs_example.json",
        "grafana/unified_alerting_webhook_v11_zulip_alert_values_v11.json",
    ):
        assert owners[rel] == ["grafana"]
    strays = {
        rel: names
        for rel, names in owners.items()
        if names and not rel.startswith(("alertmanager/", "grafana/"))
    }
    assert strays == {}


def test_zulip_alertmanager_webhook() -> None:
    events = read(AlertmanagerConnector(), load(AM / "webhook_v4_zulip_alert.json"))
    assert [e.kind for e in events] == ["alert_firing", "alert_firing"]  # endsAt is zero time
    assert [e.attrs["fingerprint"] for e in events] == ["a1bc48475b20e73d", "c2ea85182f28cbd9"]
    assert {e.attrs["alertname"] for e in events} == {"High CPU Temperature"}
    assert {e.attrs["severity"] for e in events} == {"critical"}
    first = events[0]
    assert first.at == datetime(2020, 2, 6, 0, 17, 58, 432911, tzinfo=UTC)
    assert first.key == "alertmanager:a1bc48475b20e73d:2020-02-06T00:17:58.432Z:firing"
    assert first.text == "[FIRING] High CPU Temperature: High CPU core temperature"
    assert first.attrs["annotations"]["description"] == "CPU core temperature is 34.75C"
    assert first.attrs["receiver"] == "ops-zulip"
    assert first.url and first.url.startswith("http://cobalt:9090/graph?g0.expr=")
    # Our emulator's fingerprint is Prometheus' own: it reproduces the real value.
    assert fingerprint(first.attrs["labels"]) == "a1bc48475b20e73d"


def test_aws_api_v2_alerts_body() -> None:
    (event,) = read(
        AlertmanagerConnector(), load(AM / "api_v2_get_alerts_aws_amp_docs_example.json")
    )
    assert event.kind == "alert_firing"  # endsAt lies after updatedAt: still active
    assert event.attrs["fingerprint"] == "375eab7b59892505"
    assert event.attrs["alertname"] == "test-alert"
    assert event.attrs["state"] == "active" and event.attrs["receivers"] == ["sns-0"]
    assert event.at == datetime(2021, 10, 21, 22, 2, 31, 501000, tzinfo=UTC)
    assert event.text == "[FIRING] test-alert: this is a test alert used for demo purposes"
    assert fingerprint(event.attrs["labels"]) == "375eab7b59892505"


def test_grafana_docs_example() -> None:
    events = read(
        GrafanaConnector(), load(GRAFANA / "unified_alerting_webhook_grafana_docs_example.json")
    )
    assert [e.attrs["alertname"] for e in events] == ["High memory usage", "High CPU usage"]
    assert [e.attrs["fingerprint"] for e in events] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]
    assert {e.kind for e in events} == {"alert_firing"}
    # 09:51:03.157076+02:00 is 07:51:03.157076 UTC, and the key says so.
    assert events[0].at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert events[0].key == "grafana:c6eadffa33fcdf37:2021-10-12T07:51:03.157Z:firing"
    assert events[0].attrs["values"] == {"B": 44.23943737541908, "C": 1}
    assert events[0].attrs["org_id"] == 1
    # panelURL and dashboardURL are empty strings here, so the rule link is used.
    assert events[0].url == "https://play.grafana.org/alerting/1afz29v7z/edit"


def test_grafana_v11_zulip_sample() -> None:
    path = GRAFANA / "unified_alerting_webhook_v11_zulip_alert_values_v11.json"
    (event,) = read(GrafanaConnector(), load(path))
    assert event.attrs["alertname"] == "Memory (copy)"
    assert event.attrs["fingerprint"] == "e6349a25f5ef0e9e"
    assert event.attrs["folder"] == "device"
    assert event.attrs["values"]["A"] == 2473545728
    assert event.attrs["value_string"].startswith("[ var='A' labels={instance=node_exporter:9100")
    assert event.url and event.url.endswith("viewPanel=2")
    assert event.attrs["image_url"].endswith("mixed_styles.png")
    assert event.text == "[FIRING] Memory (copy): High memory usage"


def _definition(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """Merge allOf parts of one OpenAPI definition into properties and required."""
    node = spec["definitions"][name]
    props: dict[str, Any] = {}
    required: list[str] = []
    for part in node.get("allOf", [node]):
        if "$ref" in part:
            part = spec["definitions"][part["$ref"].rsplit("/", 1)[1]]
        props.update(part.get("properties", {}))
        required += part.get("required", [])
    return {"properties": props, "required": required}


def test_emulator_bodies_match_the_openapi_spec() -> None:
    spec = yaml.safe_load((AM / "api_v2_openapi.yaml").read_text("utf-8"))
    alert = gettable_alert({"alertname": "X"}, starts_at=datetime(2024, 1, 1, tzinfo=UTC))
    gettable = _definition(spec, "gettableAlert")
    assert set(gettable["required"]) <= set(alert)
    assert set(alert) <= set(gettable["properties"])
    status = _definition(spec, "alertStatus")
    assert set(status["required"]) <= set(alert["status"])
    assert alert["status"]["state"] in status["properties"]["state"]["enum"]
    assert "filter" in {
        p["name"] for p in spec["paths"]["/alerts"]["get"]["parameters"] if "name" in p
    }


def test_webhook_builder_has_every_documented_field() -> None:
    doc = (AM / "webhook_v4_schema_from_docs.md").read_text("utf-8")
    documented = set(re.findall(r'"(\w+)":', doc))
    payload = webhook_payload([webhook_alert({"alertname": "X"}, starts_at="2024-01-01T00:00:00Z")])
    present = set(payload) | set(payload["alerts"][0])
    assert documented - present == set()
