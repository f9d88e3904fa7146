"""PagerDuty connector against the real vendor samples in ../shared/fixtures/pagerduty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.opsgenie import OpsgenieConnector
from connectors.pagerduty import PagerDutyConnector
from retro.connector import Doc, ReadContext
from retro.models import IncidentMeta, SourceReport, TimelineEvent

FIXTURES = Path(__file__).parents[1].parent / "shared" / "fixtures"
PD = FIXTURES / "pagerduty"
CONNECTOR = PagerDutyConnector()

pytestmark = pytest.mark.skipif(not PD.is_dir(), reason="../shared/fixtures is absent")

NOT_BUNDLE_INPUTS = {
    "rest_v2_create_incident_request.openapi_example.json",  # a request: no id, no times
    "rest_v2_list_past_incidents.openapi_example.json",  # similarity scores, not happenings
}


def load(path: Path) -> Doc:
    return Doc(str(path.relative_to(FIXTURES)), json.loads(path.read_text("utf-8")), path=path)


def read(*names: str) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="pagerduty")
    ctx = ReadContext(bundle=FIXTURES, incident=IncidentMeta(id="C"), report=report)
    docs = [load(PD / name) for name in names]
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(docs, ctx)), report


def test_claims_every_bundle_input_and_nothing_else() -> None:
    for path in sorted(PD.rglob("*.json")):
        doc = load(path)
        assert CONNECTOR.claims(doc) == (path.name not in NOT_BUNDLE_INPUTS), path.name
        assert not OpsgenieConnector().claims(doc), path.name
    for path in sorted(FIXTURES.rglob("*.json")):
        if PD not in path.parents:
            assert not CONNECTOR.claims(load(path)), path


def test_trimmed_lifecycle_reads_every_entry_in_time_order() -> None:
    events, report = read("rest_v2_incident_log_entries_full_lifecycle_TRIMMED.json")
    assert report.records == 12 and len(events) == 12 and not report.skipped
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert events[0].kind == "page_triggered" and events[-1].kind == "page_resolved"
    assert events[0].text == "Incident #12 triggered: GO009: Create from go program updated"
    kinds = {e.kind for e in events}
    assert kinds == {
        "page_triggered",
        "page_assigned",
        "page_notified",
        "page_acknowledged",
        "page_unacknowledged",
        "page_escalated",
        "page_resolved",
    }
    assert events[-1].text == "Resolved by Tim Wright: Fixed"
    # the container's incident and service references reach every event
    assert {e.attrs["incident_id"] for e in events} == {"P31FVLZ"}
    assert all(e.attrs.get("service") == "Test Service" for e in events)
    # an inline user object with an email enriches that user everywhere
    ack = next(e for e in events if e.kind == "page_acknowledged")
    assert ack.actor is not None and ack.actor.email == "tim@acme.com"
    unack = next(e for e in events if e.kind == "page_unacknowledged")
    assert unack.actor is not None and unack.actor.is_bot and unack.attrs["channel"] == "timeout"


def test_faros_lists_join_incidents_log_entries_and_users() -> None:
    events, report = read(
        "faros/incidents.json",
        "faros/incidentLogEntries.json",
        "faros/users.json",
        "faros/services.json",
        "faros/teams.json",
        "faros/prioritiesResource.json",
    )
    triggered = [e for e in events if e.kind == "page_triggered"]
    assert len(triggered) == 3 == len(events)  # one per incident: log entry and incident merged
    assert {e.provenance.file for e in triggered} == {"pagerduty/faros/incidentLogEntries.json"}
    assert all(e.actor and e.actor.email == "roman.ky@mydevcube.com" for e in triggered)
    assert {e.attrs["incident_number"] for e in triggered} == {1, 2, 3}
    assert {e.attrs["urgency"] for e in triggered} == {"high"}
    assert report.records == 3 + 3 + 1 + 2 + 5 + 5


def test_openapi_examples_give_the_documented_happenings() -> None:
    events, report = read(
        "rest_v2_get_incident.openapi_example.json",
        "rest_v2_list_incident_alerts.openapi_example.json",
        "rest_v2_list_incident_notes.openapi_example.json",
    )
    kinds = sorted(e.kind for e in events)
    assert kinds == ["alert_firing", "note", "note", "page_acknowledged", "page_triggered"]
    alert = next(e for e in events if e.kind == "alert_firing")
    assert alert.attrs["alert_key"] == "baf7cf21b1da41b4b0221008339ff357"
    assert alert.attrs["severity"] == "critical" and alert.attrs["details"]["customKey"]
    bot_note = next(e for e in events if e.text.startswith("Initial alert"))
    assert bot_note.actor is not None and bot_note.actor.is_bot and bot_note.is_bot
    assert all(e.at.tzinfo is not None for e in events)


def test_resolved_incident_from_list_gives_triggered_and_resolved() -> None:
    events, _ = read("rest_v2_list_incidents.openapi_example.json")
    assert [(e.kind, e.at.isoformat()) for e in events] == [
        ("page_triggered", "2015-10-06T21:30:42+00:00"),
        ("page_resolved", "2015-10-06T21:38:23+00:00"),
    ]
    assert events[0].attrs["priority"] == "P2" and events[0].url


def test_single_bodies_change_events_and_webhook() -> None:
    events, _ = read(
        "rest_v2_get_log_entry.openapi_example.json",
        "rest_v2_create_incident_response.openapi_example.json",
        "rest_v2_list_related_change_events.openapi_example.json",
        "webhook_v3_incident.triggered_zulip.json",
    )
    by_key = {e.key: e for e in events}
    # the log entry and the incident body are the same trigger of PT4KHLK
    assert by_key["pagerduty:PT4KHLK:triggered"].attrs["log_entry_id"] == "Q02JTSNZWHSEKV"
    changes = [e for e in events if e.kind == "change_deployed"]
    assert len(changes) == 2 and changes[0].url == "https://acme.pagerduty.dev/build/1"
    hook = by_key["pagerduty:PFQZPSY:triggered"]
    assert (
        hook.text == "Incident #9 triggered: Test Incident 3" and hook.attrs["service"] == "pig208"
    )
