"""Opsgenie connector: alert, log, incident and timeline bodies in file mode, and live harvest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors.opsgenie import OpsgenieConnector
from connectors.opsgenie.live import OpsgenieConfig, identifier
from retro import registry
from retro.connector import Doc, IncidentRef, ReadContext
from retro.errors import BundleError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.opsgenie import FIXTURES, OpsgenieEmulator

CONNECTOR = OpsgenieConnector()
AID = "3f1c2b7e-9a4d-4e1b-8c55-0d2e6f7a8b90"
IID = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"
ALERT_FILE = f"alert-{AID}.json"
INCIDENT_FILE = f"incident-{IID}.json"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def doc(rel: str, data: object, fmt: str = "json") -> Doc:
    return Doc(rel=rel, data=data, fmt=fmt)  # type: ignore[arg-type]


def make_ctx(*, lenient: bool = False, tz: str | None = None) -> ReadContext:
    return ReadContext(
        bundle=FIXTURES,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="opsgenie"),
        lenient=lenient,
        tz=ZoneInfo(tz) if tz else None,
    )


def read(ctx: ReadContext, *docs: Doc) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx))


def fixture_docs() -> list[Doc]:
    return [doc(p.name, json.loads(p.read_text())) for p in sorted(FIXTURES.glob("*.json"))]


def kinds(events: list[TimelineEvent], kind: str) -> list[TimelineEvent]:
    return [e for e in events if e.kind == kind]


# --- file mode -------------------------------------------------------------------------------------


def test_alert_body_alone_gives_created_ack_and_close() -> None:
    body = load(ALERT_FILE)
    del body["logs"], body["notes"]
    events = read(make_ctx(), doc("a.json", body))
    assert [(e.kind, e.key.rsplit(":", 1)[1]) for e in events] == [
        ("alert_firing", "created"),
        ("page_acknowledged", "ack"),
        ("alert_resolved", "closed"),
    ]
    created, ack, closed = events
    assert created.text == "Alert #512 created: [FIRING:1] HighCheckoutLatency checkout-api"
    assert created.attrs["priority"] == "P1" and created.attrs["alias"].startswith("HighCheckout")
    assert created.attrs["tags"] == ["checkout", "latency", "prometheus"]
    assert created.attrs["entity"] == "checkout-api" and created.attrs["source"] == "Alertmanager"
    assert created.attrs["alertname"] == "HighCheckoutLatency"
    assert ack.at.isoformat() == "2024-05-01T14:09:39.512000+00:00"  # createdAt + ackTime ms
    assert ack.actor is not None and ack.actor.email == "ana.ruiz@example.com"
    assert closed.actor is not None and closed.actor.email == "bo.chen@example.com"


def test_alert_and_its_logs_collapse_to_one_event_per_happening() -> None:
    ctx = make_ctx()
    events = read(ctx, doc(ALERT_FILE, load(ALERT_FILE)))
    keys = [e.key for e in events]
    assert len(keys) == len(set(keys))
    assert [e.kind for e in events] == [
        "alert_firing",
        "page_notified",
        "other",
        "page_acknowledged",
        "page_escalated",
        "note",
        "priority_change",
        "alert_resolved",
    ]
    ack = kinds(events, "page_acknowledged")[0]
    assert ack.key == f"opsgenie:{AID}:ack" and ack.provenance.record == "logs.data[3]"
    assert ack.text.startswith("Alert #512 acknowledged by ana.ruiz@example.com")
    assert ack.attrs["tinyId"] == "512"  # the alert body's attrs merged in
    assert ctx.report.records == 10  # 1 alert + 8 logs + 1 note
    assert ack.attrs["also_in"] == [f"{ALERT_FILE} data.report.ackTime"]
    assert not ctx.report.skipped


def test_note_from_notes_and_from_its_addnote_log_is_one_event() -> None:
    events = read(make_ctx(), doc(ALERT_FILE, load(ALERT_FILE)))
    (note,) = kinds(events, "note")
    assert note.text == "Rolling back checkout-api to v2024.05.01-2"  # the note, not the log line
    assert note.key.startswith(f"opsgenie:{AID}:note:")
    assert note.provenance.record == "notes.data[0]"
    assert note.attrs["also_in"] == [f"{ALERT_FILE} logs.data[5]"]
    assert note.attrs["tinyId"] == "512" and note.attrs["offset"] == "1714572725000"
    assert note.actor is not None and note.actor.email == "bo.chen@example.com"
    assert note.at.isoformat() == "2024-05-01T14:12:05+00:00"


def test_notes_only_alert_file_keeps_notes_the_logs_do_not_have() -> None:
    body = load(ALERT_FILE)
    del body["logs"]
    extra = {"note": "Paged DBA", "owner": "ana.ruiz@example.com", "offset": "1714572730000"}
    body["notes"]["data"].append({**extra, "createdAt": "2024-05-01T14:12:10Z"})
    events = kinds(read(make_ctx(), doc("a.json", body)), "note")
    assert [e.text for e in events] == ["Rolling back checkout-api to v2024.05.01-2", "Paged DBA"]
    assert len({e.key for e in events}) == 2


def test_bare_notes_body_is_read_and_counted_as_unlinked() -> None:
    notes = load(ALERT_FILE)["notes"]["data"]
    paging = {"first": "https://api.opsgenie.com/v2/alerts/x/notes?offset=1"}
    body = {"data": notes, "paging": paging, "took": 0.1, "requestId": "r"}
    ctx = make_ctx()
    events = read(ctx, doc("notes.json", body))
    assert [(e.kind, e.text, e.provenance.record) for e in events] == [
        ("note", "Rolling back checkout-api to v2024.05.01-2", "data[0]")
    ]
    assert events[0].key.startswith("opsgenie:note:") and ctx.report.records == 1
    assert ctx.report.skipped == {"alert note without its alert (event kept, not linked)": 1}


def test_bare_notes_and_bare_logs_bodies_collapse_the_same_note() -> None:
    full = load(ALERT_FILE)
    logs = {"data": full["logs"]["data"], "took": 0.1, "requestId": "r"}
    notes = {"data": full["notes"]["data"], "took": 0.1, "requestId": "r"}
    events = read(make_ctx(), doc("logs.json", logs), doc("notes.json", notes))
    (note,) = kinds(events, "note")
    assert note.text == "Rolling back checkout-api to v2024.05.01-2"
    assert note.attrs["also_in"] == ["logs.json data[5]"]


def test_only_opsgenie_claims_a_notes_body() -> None:
    body = {"data": load(ALERT_FILE)["notes"]["data"], "took": 0.1, "requestId": "r"}
    claimants = [c.name for c in registry.connectors() if c.claims(doc("notes.json", body))]
    assert claimants == ["opsgenie"]


def test_note_without_text_is_a_bundle_error() -> None:
    body = load(ALERT_FILE)
    body["notes"]["data"][0]["note"] = None
    with pytest.raises(BundleError, match=r"notes\.data\[0\]: note has no `note` text"):
        read(make_ctx(), doc("a.json", body))
    ctx = make_ctx(lenient=True)
    assert len(kinds(read(ctx, doc("a.json", body)), "note")) == 1  # the log line still counts
    assert any(k.startswith("invalid Opsgenie record") for k in ctx.report.skipped)


def test_users_list_gives_actors_names_and_emails() -> None:
    events = read(make_ctx(), *fixture_docs())
    note = kinds(events, "note")[0]
    assert note.actor is not None and (note.actor.name, note.actor.email) == (
        "Bo Chen",
        "bo.chen@example.com",
    )
    opened = kinds(events, "page_triggered")[0]
    assert opened.actor is not None and opened.actor.email == "ana.ruiz@example.com"
    assert opened.url == f"https://acme-retro.app.opsgenie.com/incident/detail/{IID}"


def test_incident_timeline_kinds() -> None:
    events = read(make_ctx(), doc(INCIDENT_FILE, load(INCIDENT_FILE)))
    assert [e.kind for e in events] == [
        "page_triggered",
        "page_assigned",
        "status_page_update",
        "note",
        "page_acknowledged",
        "page_resolved",
        "status_change",
    ]
    opened = events[0]
    assert opened.key == f"opsgenie:incident:{IID}:opened"
    assert opened.text == "Incident #42 opened: Checkout latency degradation"
    assert opened.attrs["priority"] == "P1" and opened.attrs["tinyId"] == "42"
    assert events[3].text == "Rollback of checkout-api started"
    assert events[4].actor is not None and events[4].actor.is_bot


def test_bare_logs_body_is_read_and_counted_as_unlinked() -> None:
    body = {"data": load(ALERT_FILE)["logs"]["data"][:2], "took": 0.1, "requestId": "r"}
    ctx = make_ctx()
    events = read(ctx, doc("logs.json", body))
    assert [e.kind for e in events] == ["alert_firing", "page_notified"]
    assert all(e.key.startswith("opsgenie:log:") for e in events)
    assert ctx.report.skipped == {"alert log entry without its alert (event kept, not linked)": 2}


def test_an_escalation_because_nobody_acknowledged_is_no_acknowledgement() -> None:
    """ "… because alert was not acknowledged in 5 minutes" is an escalation: reading it as an
    acknowledgement by System would replace the real acknowledger and time."""
    logs = load(ALERT_FILE)["logs"]["data"][:1]
    line = dict(logs[0])
    line.update(
        log="Escalated to next responder [Secondary] because alert was not acknowledged in 5 min",
        offset=str(int(line["offset"]) + 1) if str(line.get("offset", "")).isdigit() else "x9",
    )
    body = {"data": [line], "took": 0.1, "requestId": "r"}
    events = read(make_ctx(), doc("logs.json", body))
    assert [e.kind for e in events] == ["page_escalated"]


def test_webhook_create_shares_the_alert_key() -> None:
    hook = {
        "action": "Create",
        "alert": {
            "alertId": AID,
            "message": "[FIRING:1] HighCheckoutLatency checkout-api",
            "tinyId": "512",
            "createdAt": 1714572191512,
            "updatedAt": 1714572191512000110,
            "username": "System",
            "priority": 1,
        },
        "source": {"name": "Prometheus", "type": "API"},
        "integrationName": "Webhook",
    }
    events = read(make_ctx(), doc("hook.json", hook), doc(ALERT_FILE, load(ALERT_FILE)))
    assert len(kinds(events, "alert_firing")) == 1


def test_wrong_shape_is_a_bundle_error() -> None:
    body = load(ALERT_FILE)
    body["logs"]["data"][1] = "not a log"
    with pytest.raises(BundleError) as err:
        read(make_ctx(), doc("og/alert.json", body))
    assert "og/alert.json logs.data[1]" in str(err.value)
    ctx = make_ctx(lenient=True)
    assert len(read(ctx, doc("og/alert.json", body))) == 7
    assert any(k.startswith("invalid Opsgenie record") for k in ctx.report.skipped)


def test_naive_timestamp_is_an_error_unless_a_zone_is_set() -> None:
    body = load(INCIDENT_FILE)
    body["timeline"]["data"]["entries"] = body["timeline"]["data"]["entries"][:1]
    body["timeline"]["data"]["entries"][0]["eventTime"] = "2024-05-01T16:10:30"
    with pytest.raises(BundleError, match="has no time zone"):
        read(make_ctx(), doc("i.json", body))
    events = read(make_ctx(tz="Europe/Madrid"), doc("i.json", body))
    assert events[0].at.isoformat() == "2024-05-01T14:10:30+00:00"


@pytest.mark.parametrize(
    "data",
    [
        {"data": {"name": "acme", "userCount": 3}, "took": 0.1, "requestId": "r"},
        {"incident": {"id": "P1", "created_at": "2024-05-01T00:00:00Z", "type": "incident"}},
        {"version": "4", "alerts": [{"labels": {}, "startsAt": "2024-05-01T00:00:00Z"}]},
        [{"at": "2024-05-01T00:00:00Z", "text": "generic"}],
        {"data": "nope"},
        42,
    ],
)
def test_claims_only_opsgenie_shapes(data: object) -> None:
    assert not CONNECTOR.claims(doc("x.json", data))


def test_identifier_types() -> None:
    assert identifier(AID) == (AID, "id")
    assert identifier("512") == ("512", "tiny")
    assert identifier("HighCheckoutLatency-checkout-api")[1] == "alias"
    assert identifier("alias:1234") == ("1234", "alias")


# --- live mode -------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[OpsgenieEmulator]:
    with OpsgenieEmulator() as emu:
        yield emu  # type: ignore[misc]


def config(emu: OpsgenieEmulator, **kw: object) -> OpsgenieConfig:
    return OpsgenieConfig(api_key="og-test-key", base_url=emu.url, backoff=0.01, **kw)  # type: ignore[arg-type]


def harvest(emu: OpsgenieEmulator, out: Path, alert: str = "512", **kw: object) -> SourceReport:
    ref = IncidentRef(incident_id="INC-1", targets={"opsgenie": [f"alert:{alert}", "incident:42"]})
    return CONNECTOR.harvest(ref, out, config(emu, **kw))


def read_dir(folder: Path) -> list[TimelineEvent]:
    docs = [doc(p.name, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    docs.append(doc("users.json", load("users.json")))
    return read(make_ctx(), *docs)


def summary(events: list[TimelineEvent]) -> list[tuple[str, str, str, str]]:
    return [(e.key, e.kind, e.at.isoformat(), e.text) for e in events]


def test_harvest_round_trips_to_the_same_events(emulator: OpsgenieEmulator, tmp_path: Path) -> None:
    report = harvest(emulator, tmp_path, page_size=3)
    assert report.status == "ok"
    assert sorted(report.files) == [f"opsgenie/{ALERT_FILE}", f"opsgenie/{INCIDENT_FILE}"]
    assert summary(read_dir(tmp_path / "opsgenie")) == summary(read(make_ctx(), *fixture_docs()))
    logs = [r for r in emulator.log if r.path.endswith("/logs")]
    assert len(logs) == 3 and all(r.q("order") == "asc" for r in logs)
    notes = [r for r in emulator.log if r.path.endswith("/notes")]
    assert len(notes) == 1 and notes[0].q("order") == "asc"
    body = json.loads((tmp_path / "opsgenie" / ALERT_FILE).read_text())
    assert body["notes"] == load(ALERT_FILE)["notes"]
    assert report.records == 1 + 8 + 1 + 1 + 7  # alert, logs, note, incident, timeline
    timeline = [r.q("offset") for r in emulator.log if "incident-timelines" in r.path]
    assert timeline == [None, "3", "6"]


def test_alias_lookup(emulator: OpsgenieEmulator, tmp_path: Path) -> None:
    harvest(emulator, tmp_path, alert="HighCheckoutLatency-checkout-api")
    assert (tmp_path / "opsgenie" / ALERT_FILE).exists()


def test_429_mid_pagination_is_retried_without_loss(
    emulator: OpsgenieEmulator, tmp_path: Path
) -> None:
    third = load(ALERT_FILE)["logs"]["data"][2]["offset"]  # page 2 starts after it
    emulator.throttle_log_offsets = {third}
    harvest(emulator, tmp_path, page_size=3)
    body = json.loads((tmp_path / "opsgenie" / ALERT_FILE).read_text())
    offsets = [e["offset"] for e in body["logs"]["data"]]
    assert offsets == [e["offset"] for e in load(ALERT_FILE)["logs"]["data"]]
    asked = [r.q("offset") for r in emulator.log if r.path.endswith("/logs")]
    assert asked[1] == asked[2] == third and len(asked) == 4


def test_notes_are_paged_and_a_429_loses_and_duplicates_nothing(
    emulator: OpsgenieEmulator, tmp_path: Path
) -> None:
    notes = [
        {
            "note": f"note {n}",
            "owner": "ana.ruiz@example.com",
            "createdAt": f"2024-05-01T14:2{n}:00.000Z",
            "offset": str(1714573200000 + n * 60000),
        }
        for n in range(7)
    ]
    emulator.notes[AID] = notes
    emulator.throttle_note_offsets = {notes[2]["offset"]}
    harvest(emulator, tmp_path, page_size=3)
    body = json.loads((tmp_path / "opsgenie" / ALERT_FILE).read_text())
    assert body["notes"]["data"] == notes
    asked = [r.q("offset") for r in emulator.log if r.path.endswith("/notes")]
    assert asked == [None, notes[2]["offset"], notes[2]["offset"], notes[5]["offset"]]
    events = [e for e in read_dir(tmp_path / "opsgenie") if e.provenance.record.startswith("notes")]
    assert [e.text for e in events] == [f"note {n}" for n in range(7)]


def test_500_then_success(emulator: OpsgenieEmulator, tmp_path: Path) -> None:
    emulator.inject(f"^/v2/alerts/{AID}/logs$", status=502, times=2)
    assert harvest(emulator, tmp_path).status == "ok"


def test_401_names_the_key(emulator: OpsgenieEmulator, tmp_path: Path) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"opsgenie": ["512"]})
    cfg = OpsgenieConfig(api_key="wrong", base_url=emulator.url)  # type: ignore[arg-type]
    with pytest.raises(ConnectorError) as err:
        CONNECTOR.harvest(ref, tmp_path, cfg)
    assert "401: Could not authenticate" in str(err.value) and "OPSGENIE_API_KEY" in str(err.value)


def test_404_and_422_are_connector_errors(emulator: OpsgenieEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="Alert does not exist"):
        harvest(emulator, tmp_path, alert="999")
    bad = {"message": "Invalid identifier type", "took": 0.0, "requestId": "r"}
    emulator.inject("^/v2/alerts/512$", status=422, body=bad)
    with pytest.raises(ConnectorError, match="422: Invalid identifier type"):
        harvest(emulator, tmp_path)


def test_emulator_rejects_unknown_identifier_type(emulator: OpsgenieEmulator) -> None:
    headers = {"Authorization": "GenieKey og-test-key"}
    resp = httpx.get(f"{emulator.url}/v2/alerts/512?identifierType=nope", headers=headers)
    assert resp.status_code == 422 and set(resp.json()) == {"message", "took", "requestId"}


def test_malformed_body_is_a_connector_error(emulator: OpsgenieEmulator, tmp_path: Path) -> None:
    # One bad body is retried (tests/test_faults.py); one on every attempt is an error.
    emulator.inject(f"^/v2/alerts/{AID}$", status=200, raw=b"{not json", times=3)
    with pytest.raises(ConnectorError, match="malformed body"):
        harvest(emulator, tmp_path, alert=AID, max_retries=2)


def test_forbidden_timeline_keeps_the_incident(emulator: OpsgenieEmulator, tmp_path: Path) -> None:
    emulator.timeline_forbidden = True
    report = harvest(emulator, tmp_path)
    assert report.status == "partial"
    assert report.skipped == {"incident timeline not readable (403/404)": 1}
    body = json.loads((tmp_path / "opsgenie" / INCIDENT_FILE).read_text())
    assert body["timeline"] == {"data": {"entries": []}}


def test_missing_key_raises_missing_credential(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPSGENIE_API_KEY", raising=False)
    with pytest.raises(MissingCredential, match="OPSGENIE_API_KEY"):
        CONNECTOR.harvest(IncidentRef(incident_id="x"), tmp_path, OpsgenieConfig())


def test_check(emulator: OpsgenieEmulator) -> None:
    lines = CONNECTOR.check(config(emulator))
    assert lines[1] == "account acme-retro (plan Enterprise)"
    emulator.config_access = False
    lines = CONNECTOR.check(config(emulator))
    assert "no configuration access" in lines[1] and lines[2].startswith("alerts: read access")


# --- bad bodies and resume (issue 12) ----------------------------------------------------------------


def bundle(folder: Path) -> dict[str, object]:
    """The harvested files, without the per-answer stamps Opsgenie puts in every body."""

    def strip(node: object) -> object:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in ("took", "requestId")}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return {p.name: strip(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))}


def test_an_html_page_of_logs_is_retried(
    emulator: OpsgenieEmulator, tmp_path: Path, waits: list[float]
) -> None:
    harvest(emulator, tmp_path / "clean", page_size=3)
    html = b"<html><body>504 Gateway Time-out</body></html>"
    emulator.inject(f"^/v2/alerts/{AID}/logs$", status=200, raw=html, skip=1)
    assert harvest(emulator, tmp_path / "b", page_size=3).status == "ok"
    assert bundle(tmp_path / "b" / "opsgenie") == bundle(tmp_path / "clean" / "opsgenie")
    assert len(waits) == 1


def test_a_stopped_harvest_resumes_from_the_page_it_stopped_at(
    emulator: OpsgenieEmulator, tmp_path: Path
) -> None:
    clean = harvest(emulator, tmp_path / "clean", page_size=3)
    emulator.log.clear()
    # The alert is complete (one file); the incident's timeline stops on its second page.
    emulator.inject("/entries$", status=500, skip=1, times=3)
    with pytest.raises(ConnectorError, match="HTTP 500"):
        harvest(emulator, tmp_path / "b", page_size=3, max_retries=2)
    folder = tmp_path / "b" / "opsgenie"
    assert sorted(p.name for p in folder.iterdir()) == [".harvest-state.json", ALERT_FILE]
    emulator.log.clear()
    resumed = harvest(emulator, tmp_path / "b", page_size=3)
    assert bundle(folder) == bundle(tmp_path / "clean" / "opsgenie")
    assert (resumed.records, resumed.files) == (clean.records, clean.files)
    asked = [(r.path, r.q("offset")) for r in emulator.log]
    assert asked == [
        (f"/v2/incident-timelines/{IID}/entries", "3"),
        (f"/v2/incident-timelines/{IID}/entries", "6"),
    ]
