"""Datadog connector: recorded and documented API bodies in file mode, live harvest against
the emulator (cursor and offset paging, 429, 5xx, 403, dropped connections)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.datadog import DatadogConnector
from connectors.datadog.live import DatadogConfig
from retro.connector import Doc, IncidentRef, ReadContext, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.datadog import API_KEY, APP_KEY, FIXTURES, DatadogEmulator

CONNECTOR = DatadogConnector()
ALL_FIXTURES = FIXTURES.parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
INC = "5f2a1c3e-7b8d-5e9f-a0b1-c2d3e4f5a6b7"


def load(name: str) -> Doc:
    return Doc(rel=f"datadog/{name}", data=json.loads((FIXTURES / name).read_text("utf-8")))


def make_ctx(*, lenient: bool = False) -> ReadContext:
    return ReadContext(
        bundle=FIXTURES,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="datadog"),
        lenient=lenient,
    )


def read(*docs: Doc, ctx: ReadContext | None = None) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs), [d.rel for d in docs if not CONNECTOR.claims(d)]
    return list(CONNECTOR.read_bundle(list(docs), ctx or make_ctx()))


def documented() -> list[Doc]:
    return [load(p.name) for p in sorted(FIXTURES.glob("documented_*.json"))]


# --- conformance: every recorded sample ------------------------------------------------------------


def test_every_sample_is_claimed_and_read_without_skips() -> None:
    docs = [load(p.name) for p in sorted(FIXTURES.glob("*.json"))]
    ctx = make_ctx()
    events = read(*docs, ctx=ctx)
    assert not [r for r in ctx.report.skipped if r.startswith("invalid")]
    assert ctx.report.records == 89 + 11  # recorded + documented records
    assert [e.at for e in events] == sorted(e.at for e in events)
    keys = [e.key for e in events]
    assert len(keys) == len(set(keys))


def test_claims_nothing_of_other_vendors() -> None:
    """Every other vendor's sample, here and in ../shared/fixtures when it is there."""
    roots = [ALL_FIXTURES, *([SHARED] if SHARED.is_dir() else [])]
    for root in roots:
        for path in sorted(root.rglob("*.json")):
            if FIXTURES not in path.parents:
                doc = Doc(rel=str(path.relative_to(root)), data=json.loads(path.read_text()))
                assert not CONNECTOR.claims(doc), path


@pytest.mark.parametrize("data", [None, 42, "text", [], [1, 2], {"data": None}, {"data": [1]},
                                  {"data": {"type": "incidents"}}, {"monitors": "x"}])  # fmt: skip
def test_claims_never_raises_and_rejects_junk(data: object) -> None:
    assert not CONNECTOR.claims(Doc(rel="datadog/x.json", data=data))


def test_an_empty_last_page_is_claimed_only_in_a_datadog_folder() -> None:
    assert CONNECTOR.claims(Doc(rel="datadog/events-3.json", data={"data": []}))
    assert not CONNECTOR.claims(Doc(rel="other/page.json", data={"data": []}))


def test_recorded_incidents_give_declared_detected_and_states() -> None:
    events = read(load("incidents_v2_search.json"), load("incident_v2_patch_resolved.json"))
    resolved = [e for e in events if e.key.endswith(":resolved")]
    assert {e.attrs["incident_id"] for e in resolved} == {
        "77afaefe-9585-5eba-9e1e-195149b3dc66",  # resolved per its state history
        "a6250371-3453-5a56-b302-93500bfb7e41",  # resolved per its `resolved` time
    }
    assert all(e.kind == "status_change" and e.attrs["milestone"] == "resolved" for e in resolved)
    declared = next(
        e for e in events if e.attrs.get("public_id") == 338027 and e.kind == "ticket_created"
    )
    assert declared.actor is not None and declared.actor.email == "frog@datadoghq.com"
    assert declared.attrs["issuetype"] == "incident" and declared.attrs["milestone"] == "declared"


def test_the_declarer_named_only_in_the_attributes_is_the_actor() -> None:
    """The API gives `attributes.declared_by` as a name and an avatar only; with no
    `declared_by_user` relationship or included user, that name is who declared it."""
    body = json.loads((FIXTURES / "incident_v2_get.json").read_text("utf-8"))
    body["data"]["attributes"]["declared_by"] = {"image_48_px": "", "name": "Ada Quint"}
    body["data"]["attributes"]["declared_by_uuid"] = "0b0b0b0b-0000-4000-8000-000000000001"
    body["data"]["relationships"].pop("declared_by_user", None)
    body.pop("included", None)
    events = read(Doc(rel="datadog/incident.json", data=body))
    declared = next(e for e in events if e.kind == "ticket_created")
    assert declared.actor is not None and declared.actor.name == "Ada Quint"


def test_monitor_search_snapshots_fire_per_group() -> None:
    events = read(load("monitor_groups_v1_search.json"), load("monitors_v1_search.json"))
    groups = [e for e in events if "datadog:monitor:59586255:" in e.key]
    assert sorted(e.attrs["group"] for e in groups) == [
        "@SYNTHETICS_OVERALL@", "aws:us-east-2", "total",
    ]  # fmt: skip
    assert all(e.kind == "alert_firing" and e.attrs["snapshot"] for e in groups)
    assert groups[0].at == parse_time(1641339795)


# --- file mode: the documented incident ---------------------------------------------------------


def test_monitor_transitions_pair_into_alert_cycles() -> None:
    events = read(*documented())
    firing = [e for e in events if e.kind == "alert_firing"]
    resolved = [e for e in events if e.kind == "alert_resolved"]
    opened = [e for e in firing if e.key.endswith(":firing")]
    assert [(e.attrs["alert_name"], e.attrs["severity"], e.at.strftime("%H:%M:%S")) for e in opened] == [
        ("Checkout p99 latency", "warning", "13:49:00"),
        ("Checkout 5xx error rate", "critical", "13:55:00"),
    ]  # fmt: skip
    # each recovery closes its own cycle: same key up to the last part
    for fire in firing:
        (match,) = [r for r in resolved if r.key.rsplit(":", 1)[0] == fire.key.rsplit(":", 1)[0]]
        assert match.attrs["cycle"] == fire.attrs["cycle"]
    # the Warn -> Triggered escalation fires the cycle again at its critical level (what
    # pages); the Re-Triggered is a step inside the cycle
    (escalated,) = [e for e in firing if e.key.endswith(":triggered")]
    assert (
        escalated.attrs["severity"] == "critical" and escalated.attrs["transition"] == "Triggered"
    )
    assert escalated.attrs["cycle"] == opened[0].attrs["cycle"]
    steps = [e for e in events if e.kind == "other" and e.attrs.get("monitor_id")]
    assert [e.attrs["transition"] for e in steps] == ["Re-Triggered"]
    # a recovery whose trigger is not in the bundle dates its cycle from `duration`
    orphan = next(e for e in resolved if e.attrs["monitor_id"] == "4011003")
    assert orphan.attrs["cycle"] == "20240501T134100"
    assert all(e.is_bot for e in firing + resolved)
    # the monitor's name leads the text; the vendor's title is kept whole
    assert firing[0].text == "Checkout p99 latency: Warn on service:checkout-api"
    assert firing[0].attrs["title"] == "[Warn on {service:checkout-api}] Checkout p99 latency"


def test_incident_states_its_milestones_in_attrs() -> None:
    events = read(*documented())
    stated = {e.attrs["milestone"]: e for e in events if e.attrs.get("milestone")}
    assert {m: e.at.strftime("%H:%M:%S") for m, e in stated.items()} == {
        "impact_start": "13:50:00",
        "detected": "13:52:10",
        "declared": "14:02:00",
        "mitigated": "14:31:30",  # the stable state; customer impact ended at 14:31:00 too
        "resolved": "14:45:00",
    }
    declared = stated["declared"]
    assert declared.kind == "ticket_created" and declared.actor and declared.actor.name == "Bo Chen"
    assert (
        declared.text
        == "Incident IR-4217 declared (severity now SEV-2): Checkout latency and 5xx errors"
    )
    attrs = declared.attrs
    assert attrs["commander"] == "Ana Ruiz" and attrs["severity"] == "SEV-2"
    assert attrs["customer_impact_start"] == "2024-05-01T13:50:00Z"
    assert attrs["customer_impact_end"] == "2024-05-01T14:31:00Z"
    assert attrs["resolved_at"] == "2024-05-01T14:45:00Z"
    assert attrs["fields"]["root_cause"].startswith("A config change lowered")
    ended = next(e for e in events if e.attrs.get("vendor_field") == "customer_impact_end")
    assert ended.attrs["milestone"] == "mitigated" and ended.kind == "note"


def test_todos_are_notes_with_completion() -> None:
    events = read(*documented())
    todos = [e for e in events if e.key.startswith("datadog:todo:")]
    assert [(e.kind, e.text) for e in todos] == [
        ("note", "To-do: Add a pool-saturation alert on checkout-api"),
        ("note", "To-do: Roll back the pool size change"),
        ("other", "To-do completed: Roll back the pool size change"),
    ]
    assert todos[0].attrs["action_item"] and todos[0].attrs["due_date"] == "2024-05-08T00:00:00Z"
    assert todos[0].actor is not None and todos[0].actor.email == "ana.ruiz@example.com"


def test_bad_record_is_a_bundle_error_or_a_counted_skip() -> None:
    body = json.loads((FIXTURES / "documented_events_v2_monitor_transitions.json").read_text())
    body["data"][2]["attributes"]["timestamp"] = "2024-05-01T13:52:10"  # no zone
    with pytest.raises(BundleError, match=r"datadog/x.json data\[2\]: timestamp .* no time zone"):
        read(Doc(rel="datadog/x.json", data=body))
    ctx = make_ctx(lenient=True)
    events = read(Doc(rel="datadog/x.json", data=body), ctx=ctx)
    assert len(events) == len(body["data"]) - 1
    assert sum(ctx.report.skipped.values()) == 1


# --- live mode -------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[DatadogEmulator]:
    with DatadogEmulator() as server:
        yield server  # type: ignore[misc]


def config(emu: DatadogEmulator, **kw: object) -> DatadogConfig:
    return DatadogConfig(api_key=API_KEY, app_key=APP_KEY, base_url=emu.url, backoff=0.01, **kw)  # type: ignore[arg-type]


WINDOW = {"since": parse_time("2024-05-01T12:00:00Z"), "until": parse_time("2024-05-01T16:00:00Z")}


def harvest(emu: DatadogEmulator, out: Path, *targets: str, **kw: object) -> SourceReport:
    ref = IncidentRef(incident_id="INC-1", targets={"datadog": list(targets)}, **WINDOW)
    return CONNECTOR.harvest(ref, out, config(emu, **kw))


def read_dir(folder: Path) -> list[TimelineEvent]:
    docs = [
        Doc(rel=f"datadog/{p.name}", data=json.loads(p.read_text()))
        for p in sorted(folder.glob("*.json"))
    ]
    return read(*docs)


def summary(events: list[TimelineEvent]) -> list[tuple[str, str, str]]:
    return [(e.key, e.kind, e.at.isoformat()) for e in events]


def test_harvest_round_trips_to_the_same_events(emu: DatadogEmulator, tmp_path: Path) -> None:
    report = harvest(emu, tmp_path, "incident:4217", "events:source:alert", page_size=2)
    assert report.status == "ok" and not report.skipped
    assert sorted(report.files) == [
        "datadog/events-2.json", "datadog/incident-4217.json", "datadog/todos-4217.json",
    ]  # fmt: skip
    deploy = "datadog:event:AgAAAY8yA1wAAAAAAAAAGAAAAABBWTh5QTF3QUFBQQ000"  # not source:alert
    expected = [e for e in read(*documented()) if e.key != deploy]
    assert summary(read_dir(tmp_path / "datadog")) == summary(expected)
    pages = [r for r in emu.log if r.path == "/api/v2/events"]
    assert len(pages) == 4  # 7 monitor events, 2 per page
    assert all(r.headers["dd-api-key"] == API_KEY for r in emu.log)
    assert pages[0].q("filter[from]") == "2024-05-01T12:00:00+00:00"


def test_incident_by_number_pages_through_the_list(emu: DatadogEmulator, tmp_path: Path) -> None:
    emu.incidents.append(emu.incidents.pop(0))  # the wanted incident on the last page
    emu.max_page = 3
    harvest(emu, tmp_path, "incident:IR-4217")
    offsets = [r.q("page[offset]") for r in emu.log if r.path == "/api/v2/incidents"]
    assert offsets == ["0", "3", "6"]
    assert (tmp_path / "datadog" / "incident-4217.json").exists()


def test_events_across_pages_are_not_lost_duplicated_or_reordered(
    emu: DatadogEmulator, tmp_path: Path, waits: list[float]
) -> None:
    # A fault on every page (skip counts the matching requests let through before it):
    # a 502 on page 1, a dropped connection on page 2, a 429 and then a body cut off on page 3.
    path = "^/api/v2/events$"
    emu.inject(path, status=502, body={"errors": ["Bad Gateway"]})
    emu.inject(path, drop=True, skip=1)
    emu.inject(path, status=429, headers={"X-RateLimit-Reset": "7"}, skip=2)
    emu.inject(path, truncate="cut", skip=2)
    harvest(emu, tmp_path, "events:source:alert", page_size=3)
    body = json.loads((tmp_path / "datadog" / "events-1.json").read_text())
    ids = [e["id"] for e in body["data"]]
    want = [e["id"] for e in emu.events if "source:alert" in e["attributes"]["tags"]]
    assert ids == want  # every event once, in time order
    cursors = [r.q("page[cursor]") for r in emu.log if r.path == "/api/v2/events"]
    assert len(cursors) == 3 + 4 and len(set(cursors)) == 3  # three pages, each retried
    assert [cursors.count(c) for c in dict.fromkeys(cursors)] == [2, 2, 3]
    assert len(waits) == 4 and waits[2] == 7.0  # the 429 waited for X-RateLimit-Reset


def test_429_waits_for_the_reset_header(
    emu: DatadogEmulator, tmp_path: Path, waits: list[float]
) -> None:
    emu.inject("/relationships/todos$", status=429, headers={"X-RateLimit-Reset": "7"})
    harvest(emu, tmp_path, "incident:" + INC)
    assert waits == [7.0]


def test_5xx_forever_is_one_connector_error(emu: DatadogEmulator, tmp_path: Path) -> None:
    emu.inject("^/api/v2/events$", status=503, times=10)
    with pytest.raises(ConnectorError, match="HTTP 503"):
        harvest(emu, tmp_path, "events:source:alert", max_retries=2)


def test_403_names_the_keys_and_the_site(emu: DatadogEmulator, tmp_path: Path) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"datadog": ["events:x"]}, **WINDOW)
    bad = DatadogConfig(api_key="nope", app_key=APP_KEY, base_url=emu.url)  # type: ignore[arg-type]
    with pytest.raises(ConnectorError) as err:
        CONNECTOR.harvest(ref, tmp_path, bad)
    assert "403: Forbidden" in str(err.value) and "DD_SITE" in str(err.value)


def test_unknown_incident_and_target_form(emu: DatadogEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="incident 999999 not found"):
        harvest(emu, tmp_path, "incident:999999")
    with pytest.raises(ConnectorError, match="not found \\(404"):
        harvest(emu, tmp_path, "monitor:1")
    with pytest.raises(ConfigError, match="incident:<number or UUID>"):
        harvest(emu, tmp_path, "dashboards")


def test_monitor_target_fetches_the_monitor_and_its_events(
    emu: DatadogEmulator, tmp_path: Path
) -> None:
    harvest(emu, tmp_path, "monitor:4011002")
    events = read_dir(tmp_path / "datadog")
    assert [e.kind for e in events] == ["alert_firing", "other", "alert_resolved"]
    assert events[0].attrs["query"].startswith("sum(last_5m)")  # the monitor body enriched it


def test_site_decides_the_host_and_keys_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DatadogConfig(site="datadoghq.eu").api_url() == "https://api.datadoghq.eu"
    assert DatadogConfig(site="us5.datadoghq.com").api_url() == "https://api.us5.datadoghq.com"
    assert DatadogConfig(site="ddog-gov.com").api_url() == "https://api.ddog-gov.com"
    monkeypatch.delenv("DD_API_KEY", raising=False)
    with pytest.raises(
        MissingCredential, match="DD_API_KEY or run `retro keys set datadog.api_key`"
    ):
        CONNECTOR.check(DatadogConfig())
    with pytest.raises(MissingCredential, match="DD_APP_KEY"):
        CONNECTOR.check(DatadogConfig(api_key="k"))  # type: ignore[arg-type]


def test_check_verifies_each_read_scope(emu: DatadogEmulator) -> None:
    lines = CONNECTOR.check(config(emu))
    assert lines[1:] == [
        "API key valid",
        "incidents: read access verified (incident_read)",
        "monitors: read access verified (monitors_read)",
        "events: read access verified (events_read)",
    ]


def test_a_to_do_due_on_a_calendar_day_is_read_not_refused() -> None:
    """A due date is a deadline: a bare day (no time, no zone) is kept as written."""
    doc = load("documented_incident_todos_v2_list.json")
    doc.data["data"][0]["attributes"]["due_date"] = "2024-05-08"
    events = read(doc)
    todo = next(e for e in events if e.key.startswith("datadog:todo:"))
    assert todo.attrs["due_date"] == "2024-05-08"
