"""Alertmanager connector: webhook and API v2 bodies in file mode, and live harvest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.alertmanager import AlertmanagerConnector
from connectors.alertmanager.live import AlertmanagerConfig
from retro.connector import Doc, IncidentRef, ReadContext
from retro.errors import BundleError, ConfigError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.alertmanager import (
    AlertmanagerEmulator,
    fingerprint,
    gettable_alert,
    webhook_alert,
    webhook_payload,
)

CONNECTOR = AlertmanagerConnector()
LABELS = {"alertname": "HighErrorRate", "severity": "critical", "service": "checkout", "job": "api"}
T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


def make_ctx(tmp_path: Path, *, lenient: bool = False, tz: str | None = None) -> ReadContext:
    return ReadContext(
        bundle=tmp_path,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="alertmanager"),
        lenient=lenient,
        tz=ZoneInfo(tz) if tz else None,
    )


def read(ctx: ReadContext, *docs: Doc) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx))


def firing(**kw: object) -> dict[str, object]:
    return webhook_alert(
        LABELS,
        starts_at="2024-05-01T14:00:00.123456789Z",
        annotations={"summary": "5xx above 5%", "description": "checkout returns errors"},
        **kw,  # type: ignore[arg-type]
    )


def resolved() -> dict[str, object]:
    return firing(status="resolved", ends_at="2024-05-01T14:25:00.5Z")


# --- file mode: webhook ------------------------------------------------------------------------


def test_firing_then_resolved_webhooks(tmp_path: Path) -> None:
    docs = [
        Doc("am/1.json", webhook_payload([firing()])),
        Doc("am/2.json", webhook_payload([resolved()])),
    ]
    events = read(make_ctx(tmp_path), *docs)
    assert [e.kind for e in events] == ["alert_firing", "alert_resolved"]
    fire, done = events
    fp = fingerprint(LABELS)
    assert fire.key == f"alertmanager:{fp}:2024-05-01T14:00:00.123Z:firing"
    assert done.key == f"alertmanager:{fp}:2024-05-01T14:00:00.123Z:resolved"
    assert fire.at == datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=UTC)
    assert done.at == datetime(2024, 5, 1, 14, 25, 0, 500000, tzinfo=UTC)
    assert fire.text == "[FIRING] HighErrorRate: 5xx above 5%"
    assert done.text == "[RESOLVED] HighErrorRate: 5xx above 5%"  # which alert cleared
    assert fire.url and fire.url.startswith("http://prometheus:9090/graph")
    assert fire.provenance.file == "am/1.json" and fire.provenance.record == "alerts[0]"
    assert done.provenance.file == "am/2.json"
    assert fire.attrs["notifications"] == 2  # seen firing in both notifications
    # but the resolved notification is no repeat: Sources counts none merged
    ctx = make_ctx(tmp_path)
    read(ctx, *docs)
    assert "repeated notifications of one alert" not in ctx.report.skipped
    ctx = make_ctx(tmp_path)
    read(ctx, Doc("am/0.json", webhook_payload([firing()])), *docs)
    assert ctx.report.skipped["repeated notifications of one alert"] == 1
    assert fire.attrs["alertname"] == "HighErrorRate"
    assert fire.attrs["severity"] == "critical"
    assert (fire.attrs["service"], fire.attrs["job"]) == ("checkout", "api")
    assert fire.attrs["receiver"] == "team-web"
    assert fire.attrs["group_key"] == '{}:{alertname="HighErrorRate"}'
    assert fire.attrs["annotations"]["description"] == "checkout returns errors"
    assert fire.attrs["ends_at"] is None and done.attrs["ends_at"].startswith("2024-05-01T14:25")
    assert fire.actor is None and fire.id == ""


def test_repeated_notifications_yield_equal_keys(tmp_path: Path) -> None:
    payloads = [webhook_payload([firing()]) for _ in range(3)]
    ctx = make_ctx(tmp_path)
    # A JSON list of payloads in one file, plus the same alert again in a second file.
    events = read(ctx, Doc("am/all.json", payloads), Doc("am/again.json", payloads[0]))
    assert len(events) == 1
    assert events[0].attrs["notifications"] == 4
    assert events[0].provenance.record == "[0].alerts[0]"
    assert ctx.report.records == 4
    # Keys are equal even across separate reads, so the timeline stage merges them too.
    again = read(make_ctx(tmp_path), Doc("x.json", payloads[1]))
    assert again[0].key == events[0].key


def test_zero_ends_at_is_not_a_resolution(tmp_path: Path) -> None:
    alert = firing()
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    events = read(make_ctx(tmp_path), Doc("a.json", webhook_payload([alert])))
    assert [e.kind for e in events] == ["alert_firing"]


def test_resolved_without_ends_at_is_counted(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    events = read(ctx, Doc("a.json", webhook_payload([firing(status="resolved")])))
    assert [e.kind for e in events] == ["alert_firing"]
    assert any("without endsAt" in reason for reason in ctx.report.skipped)


def test_truncated_alerts_are_recorded(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    events = read(ctx, Doc("a.json", webhook_payload([firing()], truncated=7)))
    assert events[0].attrs["truncated_alerts"] == 7
    assert sum(n for reason, n in ctx.report.skipped.items() if "truncated" in reason) == 7


def test_nanosecond_and_offset_timestamps(tmp_path: Path) -> None:
    alert = webhook_alert(LABELS, starts_at="2024-01-01T10:00:00.123456789Z")
    other = webhook_alert({"alertname": "B"}, starts_at="2024-01-01T12:00:00.987654321+02:00")
    events = read(make_ctx(tmp_path), Doc("a.json", webhook_payload([alert, other])))
    assert events[0].at == datetime(2024, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert events[0].key.endswith(":2024-01-01T10:00:00.123Z:firing")
    assert events[1].key.endswith(":2024-01-01T10:00:00.987Z:firing")


def test_missing_fingerprint_derives_a_stable_hash(tmp_path: Path) -> None:
    one = webhook_alert(LABELS, starts_at="2024-01-01T10:00:00Z", with_fingerprint=False)
    shuffled = dict(reversed(list(LABELS.items())))
    two = webhook_alert(shuffled, starts_at="2024-01-01T10:00:00Z", with_fingerprint=False)
    first = read(make_ctx(tmp_path), Doc("a.json", webhook_payload([one])))[0]
    second = read(make_ctx(tmp_path), Doc("b.json", webhook_payload([two])))[0]
    assert first.key == second.key
    assert first.attrs["fingerprint_derived"] is True
    assert len(first.attrs["fingerprint"]) == 16


def test_bad_time_strict_and_lenient(tmp_path: Path) -> None:
    bad = webhook_alert(LABELS, starts_at="yesterday")
    payload = webhook_payload([bad, firing()])
    with pytest.raises(BundleError) as info:
        read(make_ctx(tmp_path), Doc("am/bad.json", payload))
    assert info.value.path == "am/bad.json" and info.value.record == "alerts[0]"
    assert "startsAt" in info.value.message
    ctx = make_ctx(tmp_path, lenient=True)
    events = read(ctx, Doc("am/bad.json", payload))
    assert len(events) == 1 and sum(ctx.report.skipped.values()) == 1


def test_naive_time_needs_incident_timezone(tmp_path: Path) -> None:
    payload = webhook_payload([webhook_alert(LABELS, starts_at="2024-01-01T10:00:00")])
    with pytest.raises(BundleError, match="no time zone"):
        read(make_ctx(tmp_path), Doc("a.json", payload))
    events = read(make_ctx(tmp_path, tz="Europe/Berlin"), Doc("a.json", payload))
    assert events[0].at == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def test_alert_without_labels_is_rejected(tmp_path: Path) -> None:
    payload = webhook_payload([firing()])
    payload["alerts"].append({"status": "firing", "startsAt": "2024-01-01T10:00:00Z"})
    with pytest.raises(BundleError, match="labels") as info:
        read(make_ctx(tmp_path), Doc("a.json", payload))
    assert info.value.record == "alerts[1]"


# --- file mode: API v2 bodies ------------------------------------------------------------------


def test_api_v2_alerts_body(tmp_path: Path) -> None:
    active = gettable_alert(LABELS, starts_at=T0, annotations={"summary": "errors"})
    gone = gettable_alert(
        {"alertname": "DiskFull", "instance": "db-1:9100"},
        starts_at=T0,
        updated_at=T0 + timedelta(minutes=30),
        ends_at=T0 + timedelta(minutes=20),
        silenced_by=["5f1c0a9e-0000-4000-8000-000000000001"],
        receivers=("team-db", "pager"),
    )
    events = read(make_ctx(tmp_path), Doc("am/alerts.json", [active, gone]))
    assert [e.kind for e in events] == ["alert_firing", "alert_firing", "alert_resolved"]
    assert events[0].attrs["state"] == "active"
    assert events[0].attrs["receivers"] == ["team-web"]
    assert events[0].provenance.record == "[0]"
    assert events[1].attrs["silenced_by"] == ["5f1c0a9e-0000-4000-8000-000000000001"]
    assert events[1].attrs["state"] == "suppressed"
    assert events[1].attrs["instance"] == "db-1:9100"
    assert events[2].at == T0 + timedelta(minutes=20)


def test_api_and_webhook_copies_share_keys(tmp_path: Path) -> None:
    """The API writes milliseconds and webhooks nanoseconds; keys must still agree."""
    start = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=UTC)
    api = read(make_ctx(tmp_path), Doc("api.json", [gettable_alert(LABELS, starts_at=start)]))
    hook = read(make_ctx(tmp_path), Doc("hook.json", webhook_payload([firing()])))
    assert api[0].key == hook[0].key


def test_api_v2_groups_body(tmp_path: Path) -> None:
    alerts = [
        gettable_alert(LABELS, starts_at=T0),
        gettable_alert({"alertname": "X"}, starts_at=T0),
    ]
    group = {
        "labels": {"alertname": "HighErrorRate"},
        "routeLabels": {},
        "receiver": {"name": "team-web"},
        "alerts": alerts,
    }
    events = read(make_ctx(tmp_path), Doc("am/groups.json", [group]))
    assert len(events) == 2
    assert events[0].provenance.record == "[0].alerts[0]"
    assert events[0].attrs["group_labels"] == {"alertname": "HighErrorRate"}
    assert events[0].attrs["receiver"] == "team-web"


def test_claims_only_alertmanager_shapes() -> None:
    grafana = webhook_payload([firing()]) | {"version": "1", "orgId": 1}
    api = [gettable_alert(LABELS, starts_at=T0)]
    assert CONNECTOR.claims(Doc("a.json", webhook_payload([firing()])))
    assert CONNECTOR.claims(Doc("a.json", [webhook_payload([firing()])]))
    assert CONNECTOR.claims(Doc("a.json", api))
    assert not CONNECTOR.claims(Doc("g.json", grafana))
    assert not CONNECTOR.claims(Doc("g.json", webhook_payload([firing()]) | {"orgId": 1}))
    assert not CONNECTOR.claims(Doc("e.json", []))
    assert not CONNECTOR.claims(Doc("e.json", {"alerts": []}))
    assert not CONNECTOR.claims(Doc("e.jsonl", api, fmt="jsonl"))
    assert not CONNECTOR.claims(Doc("s.json", [{"type": "message", "ts": "1.2", "text": "x"}]))


# --- live mode ---------------------------------------------------------------------------------


@contextmanager
def running(emu: AlertmanagerEmulator) -> Iterator[AlertmanagerEmulator]:
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def emulator() -> Iterator[AlertmanagerEmulator]:
    alerts = [
        gettable_alert(LABELS, starts_at=T0, annotations={"summary": "errors"}),
        gettable_alert({"alertname": "DiskFull", "severity": "warning"}, starts_at=T0),
        gettable_alert({"alertname": "Muted"}, starts_at=T0, silenced_by=["s-1"]),
    ]
    with running(AlertmanagerEmulator(alerts)) as emu:
        yield emu


def config(emu: AlertmanagerEmulator, **kw: object) -> AlertmanagerConfig:
    return AlertmanagerConfig(base_url=emu.url, backoff_s=0.01, **kw)  # type: ignore[arg-type]


def round_trip(tmp_path: Path, rel: str) -> list[TimelineEvent]:
    data = json.loads((tmp_path / rel).read_text("utf-8"))
    return read(make_ctx(tmp_path), Doc(rel, data))


def test_harvest_retries_429_and_round_trips(
    tmp_path: Path, emulator: AlertmanagerEmulator
) -> None:
    emulator.inject("/api/v2/alerts$", status=429, headers={"Retry-After": "1"})
    seen: list[tuple[str, int, int | None]] = []
    ref = IncidentRef(incident_id="INC-1", targets={"alertmanager": ["current"]})
    report = CONNECTOR.harvest(ref, tmp_path, config(emulator), lambda *a: seen.append(a))
    assert report.status == "ok" and report.files == ["alertmanager/alerts.json"]
    assert report.records == 3
    assert [r.path for r in emulator.log] == ["/api/v2/alerts", "/api/v2/alerts"]
    events = round_trip(tmp_path, "alertmanager/alerts.json")
    assert sorted(e.attrs["alertname"] for e in events) == ["DiskFull", "HighErrorRate", "Muted"]
    assert len({e.key for e in events}) == 3  # nothing lost, nothing duplicated
    assert seen and seen[-1][1] == seen[-1][2]


def test_harvest_sends_filters_and_saves_groups(
    tmp_path: Path, emulator: AlertmanagerEmulator
) -> None:
    emulator.inject("/api/v2/alerts/groups", status=503)
    cfg = config(emulator, filters=['alertname=~"High.*|Disk.*"'], silenced=False, groups=True)
    report = CONNECTOR.harvest(IncidentRef(incident_id="INC-1"), tmp_path, cfg)
    assert report.files == ["alertmanager/alerts.json", "alertmanager/alert_groups.json"]
    assert emulator.log[0].query["filter"] == ['alertname=~"High.*|Disk.*"']
    assert emulator.log[0].query["silenced"] == ["false"]
    alerts = round_trip(tmp_path, "alertmanager/alerts.json")
    groups = round_trip(tmp_path, "alertmanager/alert_groups.json")
    assert {e.key for e in alerts} == {e.key for e in groups}
    assert sorted(e.attrs["alertname"] for e in alerts) == ["DiskFull", "HighErrorRate"]


def test_harvest_with_no_current_alerts_writes_nothing(
    tmp_path: Path, emulator: AlertmanagerEmulator
) -> None:
    cfg = config(emulator, filters=['alertname="Nope"'])
    report = CONNECTOR.harvest(IncidentRef(incident_id="INC-1"), tmp_path, cfg)
    assert report.status == "empty" and report.files == []
    assert not (tmp_path / "alertmanager" / "alerts.json").exists()
    assert report.skipped


def test_unauthorized_is_a_connector_error(tmp_path: Path) -> None:
    with running(AlertmanagerEmulator([], basic_auth=("retro", "s3cret"))) as emu:
        with pytest.raises(ConnectorError) as info:
            CONNECTOR.harvest(IncidentRef(incident_id="I"), tmp_path, config(emu))
        assert "401" in info.value.message and "ALERTMANAGER_USER" in str(info.value.hint)
        lines = CONNECTOR.check(config(emu, username="retro", password="s3cret"))
        assert lines[0] == f"Alertmanager 0.27.0 at {emu.url} (basic auth)"
    assert "0 current alert(s)" in lines[2]
    assert len(emu.log) == 3  # a 401 is not retried


def test_bearer_token_is_sent() -> None:
    with running(AlertmanagerEmulator([], token="tok-1")) as emu:
        with pytest.raises(ConnectorError, match="401"):
            CONNECTOR.check(config(emu))
        assert CONNECTOR.check(config(emu, token="tok-1"))[0].endswith("(bearer token)")


def test_persistent_5xx_and_malformed_body(tmp_path: Path, emulator: AlertmanagerEmulator) -> None:
    emulator.inject("/api/v2/alerts", status=500, body="internal error", times=3)
    with pytest.raises(ConnectorError, match="HTTP 500 after 3 attempts"):
        CONNECTOR.harvest(IncidentRef(incident_id="I"), tmp_path, config(emulator, max_retries=2))
    # One body cut short is retried (tests/test_faults.py); one on every attempt is an error.
    emulator.inject("/api/v2/alerts", status=200, raw=b'[{"labels": ', times=3)
    with pytest.raises(ConnectorError, match="not valid JSON"):
        CONNECTOR.harvest(IncidentRef(incident_id="I"), tmp_path, config(emulator, max_retries=2))
    emulator.inject("/api/v2/alerts", status=200, body={"data": []})
    with pytest.raises(ConnectorError, match="expected a JSON list"):
        CONNECTOR.harvest(IncidentRef(incident_id="I"), tmp_path, config(emulator))


def test_bad_matcher_and_unreachable_server(tmp_path: Path, emulator: AlertmanagerEmulator) -> None:
    with pytest.raises(ConnectorError, match="HTTP 400: bad matcher"):
        CONNECTOR.harvest(
            IncidentRef(incident_id="I"), tmp_path, config(emulator, filters=["not a matcher"])
        )
    dead = AlertmanagerConfig(base_url="http://127.0.0.1:9", max_retries=1, backoff_s=0.01)
    with pytest.raises(ConnectorError, match="ALERTMANAGER_URL"):
        CONNECTOR.check(dead)


def test_password_without_user_is_a_config_error() -> None:
    cfg = AlertmanagerConfig(password="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ALERTMANAGER_USER"):
        CONNECTOR.check(cfg)


def test_config_declares_env_vars() -> None:
    fields = AlertmanagerConfig.model_fields
    assert fields["base_url"].json_schema_extra == {"env": "ALERTMANAGER_URL"}
    assert fields["token"].json_schema_extra == {"env": "ALERTMANAGER_TOKEN"}
    assert "SecretStr" in str(fields["password"].annotation)


# --- not configured, faults, nothing half-written (issue 12) -------------------------------------


def test_without_a_url_the_source_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the default http://localhost:9093 was probed, and `sources check` failed."""
    monkeypatch.delenv("ALERTMANAGER_URL", raising=False)
    with pytest.raises(MissingCredential, match="No Alertmanager URL") as info:
        CONNECTOR.check(AlertmanagerConfig())
    assert "ALERTMANAGER_URL" in str(info.value)
    with pytest.raises(MissingCredential):
        CONNECTOR.harvest(IncidentRef(incident_id="I"), Path("unused"), AlertmanagerConfig())


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 200, "raw": b"<html>login</html>"},
        {"truncate": "short"},
        {"drop": True},
        {"status": 504, "raw": b"<html>gateway timeout</html>"},
    ],
)
def test_a_bad_answer_is_retried(
    tmp_path: Path, emulator: AlertmanagerEmulator, waits: list[float], fault: dict[str, object]
) -> None:
    ref = IncidentRef(incident_id="I")
    CONNECTOR.harvest(ref, tmp_path / "clean", config(emulator))
    emulator.inject("/api/v2/alerts$", **fault)  # type: ignore[arg-type]
    assert CONNECTOR.harvest(ref, tmp_path / "b", config(emulator)).status == "ok"
    clean = (tmp_path / "clean" / "alertmanager" / "alerts.json").read_bytes()
    assert (tmp_path / "b" / "alertmanager" / "alerts.json").read_bytes() == clean
    assert len(waits) == 1


def test_a_failed_groups_call_writes_nothing(
    tmp_path: Path, emulator: AlertmanagerEmulator
) -> None:
    emulator.inject("/api/v2/alerts/groups", status=503, times=3)
    with pytest.raises(ConnectorError, match="HTTP 503 after 3 attempts"):
        CONNECTOR.harvest(
            IncidentRef(incident_id="I"), tmp_path, config(emulator, groups=True, max_retries=2)
        )
    assert not (tmp_path / "alertmanager").exists()  # not alerts.json without its groups
