"""Opsgenie connector against the real vendor samples in ../shared/fixtures/opsgenie."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.opsgenie import OpsgenieConnector
from connectors.pagerduty import PagerDutyConnector
from retro.connector import Doc, ReadContext
from retro.models import IncidentMeta, SourceReport, TimelineEvent

FIXTURES = Path(__file__).parents[1].parent / "shared" / "fixtures"
OG = FIXTURES / "opsgenie"
CONNECTOR = OpsgenieConnector()

pytestmark = pytest.mark.skipif(not OG.is_dir(), reason="../shared/fixtures is absent")


def load(path: Path) -> Doc:
    return Doc(str(path.relative_to(FIXTURES)), json.loads(path.read_text("utf-8")), path=path)


def read(*names: str) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="opsgenie")
    ctx = ReadContext(bundle=FIXTURES, incident=IncidentMeta(id="C"), report=report)
    docs = [load(OG / name) for name in names]
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(docs, ctx)), report


def test_claims_every_opsgenie_sample_and_no_other_vendor() -> None:
    for path in sorted(OG.rglob("*.json")):
        assert CONNECTOR.claims(load(path)), path.name
        assert not PagerDutyConnector().claims(load(path)), path.name
    for path in sorted(FIXTURES.rglob("*.json")):
        if OG not in path.parents:
            assert not CONNECTOR.claims(load(path)), path


def test_faros_alerts_give_created_ack_and_close_from_the_report() -> None:
    events, report = read("faros/alerts.json")
    assert report.records == 2
    danger = [e for e in events if e.attrs["tinyId"] == "1791"]
    assert [e.kind for e in danger] == ["alert_firing", "page_acknowledged", "alert_resolved"]
    assert (danger[1].at - danger[0].at).total_seconds() == 15.702
    assert (danger[2].at - danger[0].at).total_seconds() == 60.503
    assert danger[1].actor is not None and danger[1].actor.email == "agent_smith@opsgenie.com"
    assert danger[0].attrs["priority"] == "P4" and danger[0].attrs["tags"] == [
        "OverwriteQuietHours",
        "Critical",
    ]
    assert danger[0].attrs["integration"] == "Nebuchadnezzar"
    open_alert = [e for e in events if e.attrs["tinyId"] == "1792"]
    assert [e.kind for e in open_alert] == ["alert_firing"]


def test_faros_incidents_timelines_and_users() -> None:
    events, report = read("faros/incidents.json", "faros/users.json", "faros/teams.json")
    assert report.records == 3 + 4 + 12 + 4 + 2 + 1
    opened = [e for e in events if e.kind == "page_triggered"]
    assert len(opened) == 3  # incident body and IncidentOpened entry merged per incident
    assert all(e.url and "/incident/detail/" in e.url for e in opened)
    assert opened[0].actor is not None and opened[0].actor.email == "huongkstn@gmail.com"
    assert {e.kind for e in events} >= {"status_page_update", "page_resolved", "page_assigned"}
    resolved = next(e for e in events if e.kind == "page_resolved")
    assert resolved.attrs["tinyId"] == "2" and resolved.at.isoformat().startswith(
        "2022-04-05T15:42"
    )
    system = next(e for e in events if e.kind == "status_page_update")
    assert system.actor is not None and system.actor.is_bot
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_logs_example_without_its_alert() -> None:
    events, report = read("api_v2_alert_logs_example.json")
    assert [e.kind for e in events] == ["other", "page_acknowledged"]
    assert events[1].actor is not None and events[1].actor.email == "neo@opsgenie.com"
    assert events[1].attrs["offset"] == "1492000072838_1492000072838234593"
    assert report.skipped == {"alert log entry without its alert (event kept, not linked)": 2}


def test_recipients_and_webhook() -> None:
    events, _ = read("api_v2_alert_recipients_example.json", "webhook_alert_create_zulip.json")
    notified = [e for e in events if e.kind == "page_notified"]
    assert [e.attrs["user"] for e in notified] == ["neo@opsgenie.com", "trinity@opsgenie.com"]
    created = next(e for e in events if e.kind == "alert_firing")
    assert created.key == "opsgenie:ec03dad6-62c8-4c94-b38b-d88f398e900f:created"
    assert created.at.isoformat() == "2017-08-14T11:25:56.288000+00:00"
    assert created.attrs["priority"] == "P3" and created.attrs["tags"] == ["vip"]
