"""PagerDuty connector: REST v2 bodies in file mode, and live harvest against the emulator."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.pagerduty import PagerDutyConnector
from connectors.pagerduty.live import PagerDutyConfig
from retro.connector import Doc, IncidentRef, ReadContext
from retro.errors import BundleError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.pagerduty import FIXTURES, PagerDutyEmulator

CONNECTOR = PagerDutyConnector()
INC = "Q0CHK7LAT42"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def doc(rel: str, data: object, fmt: str = "json") -> Doc:
    return Doc(rel=rel, data=data, fmt=fmt)  # type: ignore[arg-type]


def make_ctx(*, lenient: bool = False, tz: str | None = None) -> ReadContext:
    return ReadContext(
        bundle=FIXTURES,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="pagerduty"),
        lenient=lenient,
        tz=ZoneInfo(tz) if tz else None,
    )


def read(ctx: ReadContext, *docs: Doc) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx))


def fixture_docs() -> list[Doc]:
    return [doc(p.name, json.loads(p.read_text())) for p in sorted(FIXTURES.glob("*.json"))]


def by_kind(events: list[TimelineEvent], kind: str) -> list[TimelineEvent]:
    return [e for e in events if e.kind == kind]


# --- file mode -------------------------------------------------------------------------------------


def test_full_lifecycle_in_order_with_readable_text() -> None:
    ctx = make_ctx()
    events = read(ctx, *fixture_docs())
    pages = [e.kind for e in events if e.kind.startswith("page_")]
    assert pages == [
        "page_triggered",
        "page_assigned",
        "page_notified",
        "page_assigned",
        "page_escalated",
        "page_notified",
        "page_acknowledged",
        "page_resolved",
    ]
    trigger = by_kind(events, "page_triggered")[0]
    assert trigger.key == f"pagerduty:{INC}:triggered"
    assert trigger.text == "Incident #4217 triggered: checkout-api p99 latency above 2s"
    assert trigger.actor is not None and trigger.actor.is_bot
    assert trigger.attrs["channel"] == "api"
    assert trigger.attrs["service"] == "checkout-api"
    assert trigger.attrs["urgency"] == "high" and trigger.attrs["priority"] == "P1"
    assert trigger.attrs["incident_number"] == 4217
    assert by_kind(events, "page_escalated")[0].text == "Escalated to level 2 by timeout"
    assert by_kind(events, "priority_change")[0].actor.name == "Ana Ruiz"  # type: ignore[union-attr]
    assert all(e.provenance.file.endswith(".json") for e in events)
    assert ctx.report.records == 17


def test_users_body_enriches_actors_with_email_and_title() -> None:
    events = read(make_ctx(), *fixture_docs())
    ack = by_kind(events, "page_acknowledged")[0]
    assert ack.actor is not None
    assert (ack.actor.name, ack.actor.email) == ("Bo Chen", "bo.chen@example.com")
    assert ack.actor.title == "Payments Engineer" and not ack.actor.is_bot
    assert ack.url and ack.url.endswith("/log_entries/R0ACK007")
    notified = by_kind(events, "page_notified")[0]
    assert notified.attrs["user_email"] == "ana.ruiz@example.com"
    assert notified.attrs["notification"]["type"] == "push_notification"


def test_incident_alone_gives_triggered_and_resolved() -> None:
    events = read(make_ctx(), doc("incident.json", load("incident.json")))
    assert [(e.kind, e.key) for e in events] == [
        ("page_triggered", f"pagerduty:{INC}:triggered"),
        ("page_resolved", f"pagerduty:{INC}:resolved"),
    ]
    assert events[1].actor is not None and events[1].actor.name == "Bo Chen"


def test_incident_and_log_entries_do_not_duplicate() -> None:
    ctx = make_ctx()
    events = read(ctx, *fixture_docs())
    keys = [e.key for e in events]
    assert len(keys) == len(set(keys))
    assert len(by_kind(events, "page_triggered")) == 1
    resolved = by_kind(events, "page_resolved")
    assert len(resolved) == 1 and resolved[0].provenance.file == "log_entries.json"
    assert resolved[0].attrs["status"] == "resolved"  # filled from the incident body
    assert resolved[0].attrs["also_in"] == ["incident.json incident"]
    assert not ctx.report.skipped  # a merge loses nothing, so it is not a skip


def test_alerts_carry_dedup_key_and_prometheus_labels() -> None:
    ctx = make_ctx()
    events = read(ctx, doc("alerts.json", load("alerts.json")))
    latency, errors = by_kind(events, "alert_firing")
    assert latency.attrs["alertname"] == "HighCheckoutLatency"
    assert latency.attrs["labels"]["severity"] == "critical"
    assert latency.attrs["dedup_key"] == "5f8e0c1b2a3d4e5f60718293a4b5c6d7"
    assert latency.attrs["incident_id"] == INC and latency.attrs["service"] == "checkout-api"
    assert errors.attrs["alertname"] == "CheckoutErrorRatio"
    assert errors.text == "Alert triggered: checkout-api 5xx ratio above 5% (warning)"
    # PagerDuty alert bodies carry no resolve time: the status is kept, no time is invented
    assert not by_kind(events, "alert_resolved") and latency.attrs["status"] == "resolved"


def test_alert_resolved_when_resolve_time_present() -> None:
    body = load("alerts.json")
    body["alerts"][0]["resolved_at"] = "2024-05-01T14:40:11Z"
    events = read(make_ctx(), doc("alerts.json", body))
    (resolved,) = by_kind(events, "alert_resolved")
    assert resolved.key == "pagerduty:alert:A0LAT001:resolved"


def test_notes_merge_with_annotate_log_entries() -> None:
    events = read(make_ctx(), *fixture_docs())
    notes = by_kind(events, "note")
    assert [n.text for n in notes] == [
        "Rolling back checkout-api to v2024.05.01-2",
        "Latency back under 300ms after rollback; watching for 15 minutes",
    ]
    assert notes[0].attrs["log_entry_id"] == "R0NOTE08"  # the annotate entry merged in
    assert notes[1].at.isoformat() == "2024-05-01T14:31:00+00:00"  # -04:00 converted to UTC
    assert notes[1].actor is not None and notes[1].actor.email == "ana.ruiz@example.com"


def test_unknown_log_entry_type_is_kept_as_other() -> None:
    body = {"log_entries": [_entry("snooze_log_entry", "Snoozed for 30 minutes by Bo Chen")]}
    (event,) = read(make_ctx(), doc("snooze.json", body))
    assert event.kind == "other" and event.text == "Snoozed for 30 minutes by Bo Chen"
    assert event.attrs["log_type"] == "snooze_log_entry"


def test_v3_webhook_is_parsed_as_the_same_happening() -> None:
    hook = {
        "event": {
            "id": "01EVT",
            "event_type": "incident.triggered",
            "resource_type": "incident",
            "occurred_at": "2024-05-01T14:03:12.000Z",
            "agent": None,
            "data": {
                "id": INC,
                "type": "incident",
                "number": 4217,
                "title": "t",
                "status": "triggered",
            },
        }
    }
    events = read(make_ctx(), doc("hook.json", hook), *fixture_docs())
    assert len(by_kind(events, "page_triggered")) == 1


def test_wrong_shape_is_a_bundle_error_naming_file_and_record() -> None:
    body = {"log_entries": [_entry("acknowledge_log_entry", "Acknowledged"), 42]}
    with pytest.raises(BundleError) as err:
        read(make_ctx(), doc("pd/log.json", body))
    assert "pd/log.json log_entries[1]" in str(err.value)
    assert "expected an object" in str(err.value)
    ctx = make_ctx(lenient=True)
    assert len(read(ctx, doc("pd/log.json", body))) == 1
    assert sum(ctx.report.skipped.values()) == 1


def test_naive_timestamp_is_an_error_unless_a_zone_is_set() -> None:
    entry = _entry("acknowledge_log_entry", "Acknowledged")
    entry["created_at"] = "2024-05-01T14:09:40"
    body = {"log_entries": [entry]}
    with pytest.raises(BundleError, match="has no time zone"):
        read(make_ctx(), doc("log.json", body))
    (event,) = read(make_ctx(tz="Europe/Madrid"), doc("log.json", body))
    assert event.at.isoformat() == "2024-05-01T12:09:40+00:00"


@pytest.mark.parametrize(
    "data",
    [
        {"incident": {"type": "incident", "title": "no id yet"}},  # a create request
        {"past_incidents": [{"incident": {"id": "P1"}, "score": 1}]},
        {
            "version": "4",
            "alerts": [{"labels": {"alertname": "x"}, "startsAt": "2024-05-01T00:00:00Z"}],
        },
        {"data": {"tinyId": "1", "alias": "a", "createdAt": "2024-05-01T00:00:00Z"}},
        [{"at": "2024-05-01T00:00:00Z", "text": "generic"}],
        "not json at all",
    ],
)
def test_claims_only_pagerduty_shapes(data: object) -> None:
    assert not CONNECTOR.claims(doc("x.json", data))


def test_claims_nothing_in_jsonl() -> None:
    assert not CONNECTOR.claims(doc("x.jsonl", [_entry("trigger_log_entry", "t")], fmt="jsonl"))


def _entry(ltype: str, summary: str) -> dict:
    return {
        "id": "RX1",
        "type": ltype,
        "summary": summary,
        "created_at": "2024-05-01T14:20:00Z",
        "agent": {"id": "PBOC002", "type": "user_reference", "summary": "Bo Chen"},
        "channel": {"type": "web"},
        "incident": {"id": INC, "type": "incident_reference", "summary": "[#4217] checkout"},
    }


# --- live mode -------------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[PagerDutyEmulator]:
    with PagerDutyEmulator() as emu:
        yield emu  # type: ignore[misc]


def config(emu: PagerDutyEmulator, **kw: object) -> PagerDutyConfig:
    return PagerDutyConfig(token="pd-test-token", base_url=emu.url, backoff=0.01, **kw)  # type: ignore[arg-type]


def harvest(emu: PagerDutyEmulator, out: Path, **kw: object) -> SourceReport:
    ref = IncidentRef(incident_id="INC-1", targets={"pagerduty": [INC]})
    return CONNECTOR.harvest(ref, out, config(emu, **kw))


def read_dir(folder: Path) -> list[TimelineEvent]:
    docs = [doc(p.name, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    return read(make_ctx(), *docs)


def summary(events: list[TimelineEvent]) -> list[tuple[str, str, str, str]]:
    return [(e.key, e.kind, e.at.isoformat(), e.text) for e in events]


def test_harvest_round_trips_to_the_same_events(
    emulator: PagerDutyEmulator, tmp_path: Path
) -> None:
    report = harvest(emulator, tmp_path, page_size=3)
    assert report.status == "ok"
    assert sorted(report.files) == [
        f"pagerduty/alerts-{INC}.json",
        f"pagerduty/incident-{INC}.json",
        f"pagerduty/log_entries-{INC}.json",
        f"pagerduty/notes-{INC}.json",
        "pagerduty/users.json",
    ]
    assert summary(read_dir(tmp_path / "pagerduty")) == summary(read(make_ctx(), *fixture_docs()))
    pages = [r for r in emulator.log if r.path.endswith("/log_entries")]
    assert len(pages) == 4  # 10 entries, 3 per page
    assert all(r.q("include[]") == "channels" and r.q("is_overview") == "false" for r in pages)
    assert {r.headers["accept"] for r in emulator.log} == {
        "application/vnd.pagerduty+json;version=2"
    }


def test_harvest_of_a_quiet_incident_is_still_claimed(
    emulator: PagerDutyEmulator, tmp_path: Path
) -> None:
    emulator.alerts.clear()
    emulator.notes.clear()
    harvest(emulator, tmp_path)
    for path in (tmp_path / "pagerduty").glob("*.json"):
        assert CONNECTOR.claims(doc(path.name, json.loads(path.read_text()))), path.name
    assert {e.kind for e in read_dir(tmp_path / "pagerduty")} >= {"page_triggered"}


def test_429_mid_pagination_is_retried_without_loss(
    emulator: PagerDutyEmulator, tmp_path: Path
) -> None:
    emulator.throttle_offsets = {6}
    harvest(emulator, tmp_path, page_size=3)
    body = json.loads((tmp_path / "pagerduty" / f"log_entries-{INC}.json").read_text())
    ids = [e["id"] for e in body["log_entries"]]
    assert sorted(ids) == sorted(e["id"] for e in load("log_entries.json")["log_entries"])
    offsets = [r.q("offset") for r in emulator.log if r.path.endswith("/log_entries")]
    assert offsets == ["0", "3", "6", "6", "9"]


def test_ratelimit_reset_header_is_honoured(emulator: PagerDutyEmulator, tmp_path: Path) -> None:
    emulator.inject(f"^/incidents/{INC}/notes$", status=429, headers={"ratelimit-reset": "0"})
    assert harvest(emulator, tmp_path).status == "ok"


def test_500_then_success(emulator: PagerDutyEmulator, tmp_path: Path) -> None:
    emulator.inject(f"^/incidents/{INC}$", status=500, body={"error": {"message": "oops"}}, times=2)
    assert harvest(emulator, tmp_path).status == "ok"
    assert len([r for r in emulator.log if r.path == f"/incidents/{INC}"]) == 3


def test_500_forever_is_a_connector_error(emulator: PagerDutyEmulator, tmp_path: Path) -> None:
    emulator.inject(f"^/incidents/{INC}/alerts$", status=503, times=10)
    with pytest.raises(ConnectorError, match="HTTP 503"):
        harvest(emulator, tmp_path, max_retries=2)


def test_401_names_the_token(emulator: PagerDutyEmulator, tmp_path: Path) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"pagerduty": [INC]})
    cfg = PagerDutyConfig(token="wrong", base_url=emulator.url)  # type: ignore[arg-type]
    with pytest.raises(ConnectorError) as err:
        CONNECTOR.harvest(ref, tmp_path, cfg)
    assert "401: Unauthorized" in str(err.value) and "PAGERDUTY_TOKEN" in str(err.value)


def test_404_names_the_incident(emulator: PagerDutyEmulator, tmp_path: Path) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"pagerduty": ["PNOPE00"]})
    with pytest.raises(ConnectorError, match="incident PNOPE00 not found"):
        CONNECTOR.harvest(ref, tmp_path, config(emulator))


def test_malformed_body_is_a_connector_error(emulator: PagerDutyEmulator, tmp_path: Path) -> None:
    # One HTML page is retried (tests/test_faults.py); one on every attempt is an error.
    emulator.inject(f"^/incidents/{INC}/notes$", status=200, raw=b"<html>gateway</html>", times=3)
    with pytest.raises(ConnectorError, match="malformed body"):
        harvest(emulator, tmp_path, max_retries=2)


def test_missing_user_is_counted_not_fatal(emulator: PagerDutyEmulator, tmp_path: Path) -> None:
    del emulator.users["PANA001"]
    report = harvest(emulator, tmp_path)
    assert report.status == "partial" and report.skipped == {"user not found (deleted?)": 1}


def test_missing_token_raises_missing_credential(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PAGERDUTY_TOKEN", raising=False)
    with pytest.raises(MissingCredential, match="PAGERDUTY_TOKEN"):
        CONNECTOR.harvest(IncidentRef(incident_id="x"), tmp_path, PagerDutyConfig())


def test_check_user_token(emulator: PagerDutyEmulator) -> None:
    lines = CONNECTOR.check(config(emulator))
    assert "user token of Ana Ruiz <ana.ruiz@example.com>" in lines[1]
    assert lines[2].startswith("incidents: read access verified")


def test_check_account_token(emulator: PagerDutyEmulator) -> None:
    emulator.account_token = True
    lines = CONNECTOR.check(config(emulator))
    assert lines[1].startswith("account-level key; abilities: teams")


def test_emulator_keeps_vendor_total_semantics(emulator: PagerDutyEmulator) -> None:
    import httpx

    headers = {"Authorization": "Token token=pd-test-token"}
    url = f"{emulator.url}/incidents/{INC}/log_entries"
    body = httpx.get(url, params={"limit": 4}, headers=headers).json()
    assert body["total"] is None and body["more"] is True and len(body["log_entries"]) == 4
    data = copy.deepcopy(httpx.get(url, params={"total": "true"}, headers=headers).json())
    assert data["total"] == 10


# --- bad bodies and resume (issue 12, item 21) -----------------------------------------------------


def bundle(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 200, "raw": b"<html><body>502 Bad Gateway</body></html>"},
        {"truncate": "short"},
        {"truncate": "cut"},
        {"status": 502, "raw": b"<html>bad gateway</html>"},
    ],
)
def test_an_html_or_truncated_page_is_retried(
    emulator: PagerDutyEmulator, tmp_path: Path, waits: list[float], fault: dict[str, object]
) -> None:
    """Before: a malformed log-entries page stopped the harvest with only incident-<id>.json."""
    harvest(emulator, tmp_path / "clean", page_size=3)
    emulator.inject(f"^/incidents/{INC}/log_entries$", skip=1, **fault)  # type: ignore[arg-type]
    assert harvest(emulator, tmp_path / "b", page_size=3).status == "ok"
    assert bundle(tmp_path / "b" / "pagerduty") == bundle(tmp_path / "clean" / "pagerduty")
    assert len(waits) == 1


def test_a_stopped_harvest_leaves_no_half_incident_and_resumes(
    emulator: PagerDutyEmulator, tmp_path: Path
) -> None:
    clean = harvest(emulator, tmp_path / "clean", page_size=3)
    emulator.log.clear()
    emulator.inject(f"^/incidents/{INC}/alerts$", status=200, raw=b'{"alerts": [', times=3)
    with pytest.raises(ConnectorError, match="malformed body") as info:
        harvest(emulator, tmp_path / "b", page_size=3, max_retries=2)
    assert "run the harvest again" in str(info.value)
    folder = tmp_path / "b" / "pagerduty"
    assert [p.name for p in folder.iterdir()] == [".harvest-state.json"]  # no incident-<id>.json
    emulator.log.clear()
    resumed = harvest(emulator, tmp_path / "b", page_size=3)
    assert bundle(folder) == bundle(tmp_path / "clean" / "pagerduty")
    assert (resumed.records, sorted(resumed.files)) == (clean.records, sorted(clean.files))
    paths = [r.path for r in emulator.log]
    # The incident and its four pages of log entries were in hand: not fetched again.
    assert f"/incidents/{INC}" not in paths and f"/incidents/{INC}/log_entries" not in paths
    assert paths[0] == f"/incidents/{INC}/alerts"


def test_a_stopped_users_fetch_resumes_without_refetching(
    emulator: PagerDutyEmulator, tmp_path: Path
) -> None:
    clean = harvest(emulator, tmp_path / "clean")
    users = [r.path for r in emulator.log if r.path.startswith("/users/")]
    emulator.log.clear()
    emulator.inject("^/users/", status=503, skip=1, times=3)
    with pytest.raises(ConnectorError, match="HTTP 503"):
        harvest(emulator, tmp_path / "b", max_retries=2)
    emulator.log.clear()
    resumed = harvest(emulator, tmp_path / "b")
    assert bundle(tmp_path / "b" / "pagerduty") == bundle(tmp_path / "clean" / "pagerduty")
    assert [r.path for r in emulator.log] == users[1:]  # the first user was in hand
    assert resumed.records == clean.records
