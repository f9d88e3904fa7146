"""`retro import`: history records from saved API bodies and from live APIs (local emulators),
stored in the index once each, and never over a postmortem's own milestones."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from index_helpers import HashEmbedder

from retro.cli.main import cli
from retro.connector import HistoryQuery
from retro.index.store.sqlite import SQLiteStore
from retro.insights.importer import fetch, run_import
from retro.insights.sources import load
from tests.emulators.history import (
    IncidentIoHistory,
    OpsgenieHistory,
    PagerDutyHistory,
    RootlyHistory,
    StatuspageHistory,
    pd_incident,
)

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _query(**kw: object) -> HistoryQuery:
    return HistoryQuery(**kw)  # type: ignore[arg-type]


# --- file mode: the vendors' real samples --------------------------------------------------------


FAROS_STATUSPAGE = SHARED / "other_incident_tools" / "faros" / "statuspage_incidents.json"


@pytest.mark.skipif(not FAROS_STATUSPAGE.is_file(), reason="../shared/fixtures is absent")
def test_a_real_statuspage_manage_api_body_becomes_records(tmp_path: Path) -> None:
    """faros-ai/airbyte-connectors' recorded Manage API body, read from ../shared."""
    shutil.copy(FAROS_STATUSPAGE, tmp_path / "incidents.json")
    records = {r.id: r for r in fetch("statuspage", _query(files=[tmp_path]))}
    faros = records["mm4x7m368bzv"]
    assert faros.title == "incident-test" and faros.severity == "minor"
    assert faros.times["impact_start"] == datetime(2021, 11, 9, 14, 54, 2, 442000, tzinfo=UTC)
    assert faros.times["resolved"] == datetime(2021, 11, 10, 15, 56, 37, 80000, tzinfo=UTC)
    assert faros.updates == 4 and "API (example)" in faros.services


def test_statuspage_samples_become_records_with_updates_and_postmortem() -> None:
    records = {r.id: r for r in fetch("statuspage", _query(files=[FIXTURES / "statuspage"]))}
    ours = records["p3k8d1m5n7q2"]
    assert ours.title == "Slow order confirmation" and ours.severity == "minor"
    assert ours.times["impact_start"] == datetime(2024, 3, 4, 9, 41, 10, 118000, tzinfo=UTC)
    assert ours.times["resolved"] == datetime(2024, 3, 4, 11, 2, 45, 530000, tzinfo=UTC)
    assert ours.updates == 4 and "Order history" in ours.services
    docs = records["bd0b7yh8rkfz"]  # the docs' example: postmortem_published_at is `true`
    assert docs.postmortem is not None and docs.postmortem.status == "final"
    assert docs.postmortem.reviewed_at is None and "##### Issue" in docs.postmortem.markdown
    github = records["ljwdk6qml8z8"]  # a real githubstatus.com summary body
    assert github.updates == 7 and "resolved" not in github.times


def test_rootly_samples_read_services_groups_and_severity() -> None:
    query = _query(files=[FIXTURES / "rootly"])
    records = list(fetch("rootly", query))
    plugin = next(r for r in records if r.title == "Backstage Plugin Test Incident")
    assert plugin.severity == "SEV0"
    assert plugin.services == ["backstage-plugin-test-service"]
    assert plugin.teams and plugin.times["impact_start"].tzinfo is not None
    assert query.skipped == {"rootly: retrospective_steps records are not imported": 1}


def test_incident_io_samples_map_timestamps_by_name_and_link_documents(tmp_path: Path) -> None:
    src = json.loads(
        (FIXTURES / "incident_io" / "api_v2_incidents_list.openapi_example.json").read_text()
    )
    incident = src["incidents"][0]
    incident["incident_timestamp_values"] += [
        {"incident_timestamp": {"name": "Fixed at"}, "value": {"value": "2021-08-17T14:00:00Z"}},
        {"incident_timestamp": {"name": "Resolved at"}, "value": {"value": "2021-08-17T15:00:00Z"}},
    ]
    (tmp_path / "incidents.json").write_text(json.dumps(src))
    doc = {
        "id": "DOC1",
        "incident_id": incident["id"],
        "status": "completed",
        "updated_at": "2021-08-20T09:00:00Z",
        "document_url": "https://app.incident.io/x",
    }
    (tmp_path / "docs.json").write_text(json.dumps({"postmortem_documents": [doc]}))
    (tmp_path / "content-DOC1.json").write_text(
        json.dumps({"markdown": "# Postmortem\n\nIt broke."})
    )
    follow = json.loads(
        (FIXTURES / "incident_io" / "api_v2_follow_ups_list.openapi_example.json").read_text()
    )
    follow["follow_ups"][0]["incident_id"] = incident["id"]
    (tmp_path / "follow_ups.json").write_text(json.dumps(follow))
    [rec] = fetch("incident_io", _query(files=[tmp_path]))
    assert rec.aliases == ["INC-123"] and rec.severity == "Minor"
    assert rec.times["impact_start"] == datetime(2021, 8, 17, 13, 28, 57, 801578, tzinfo=UTC)
    assert rec.times["mitigated"].hour == 14 and rec.times["resolved"].hour == 15
    assert rec.postmortem is not None and rec.postmortem.status == "final"
    assert rec.postmortem.markdown.startswith("# Postmortem")
    [item] = rec.action_items
    assert (item.status, item.priority, item.owner) == ("open", "Urgent", "abc123")


def test_pagerduty_opsgenie_and_jira_samples() -> None:
    [pd] = fetch("pagerduty", _query(files=[FIXTURES / "pagerduty" / "incident.json"]))
    assert pd.id == "Q0CHK7LAT42" and pd.times["detected"] == datetime(
        2024, 5, 1, 14, 3, 12, tzinfo=UTC
    )
    assert "#4217" in pd.aliases and pd.services == ["checkout-api"]
    og = fetch("opsgenie", _query(files=[FIXTURES / "opsgenie"], what=["incidents", "alerts"]))
    assert {r.kind for r in og} == {"incident", "alert"}
    jira = {r.id: r for r in fetch("jira", _query(files=[FIXTURES / "jira"]))}
    assert jira and all(r.times.get("detected") for r in jira.values())


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/fixtures is not here")
def test_shared_list_bodies_from_faros() -> None:
    pd = fetch(
        "pagerduty",
        _query(
            files=[
                SHARED / "pagerduty" / "faros" / "incidents.json",
                SHARED / "pagerduty" / "faros" / "incidentLogEntries.json",
            ]
        ),
    )
    assert len(pd) == 3 and all(r.status == "triggered" for r in pd)
    og = fetch(
        "opsgenie", _query(files=[SHARED / "opsgenie" / "faros"], what=["incidents", "alerts"])
    )
    assert sum(r.kind == "incident" for r in og) == 3 and sum(r.kind == "alert" for r in og) == 2
    alert = next(r for r in og if r.kind == "alert" and "acknowledged" in r.times)
    assert alert.times["acknowledged"] - alert.times["detected"] == timedelta(milliseconds=15702)
    jira = fetch("jira", _query(files=[SHARED / "jira" / "faros" / "issues_with_changelog.json"]))
    assert len(jira) == 4
    listed = fetch(
        "pagerduty",
        _query(files=[SHARED / "pagerduty" / "rest_v2_list_incidents.openapi_example.json"]),
    )
    assert listed[0].times["resolved"] == datetime(2015, 10, 6, 21, 38, 23, tzinfo=UTC)
    assert listed[0].severity == "P2" and listed[0].teams == ["Engineering"]


# --- live mode against the emulators ------------------------------------------------------------


def test_pagerduty_live_import_loses_and_duplicates_nothing_under_429s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    """1,200 incidents over 200 days, windows cut past the offset cap, 429s on both lists;
    a second import adds nothing (bench/report.py does the same with 10,000)."""
    import connectors.pagerduty.history as pd_history

    monkeypatch.setattr(pd_history, "OFFSET_CAP", 400)
    emu = PagerDutyHistory()
    emu.OFFSET_CAP = 400
    for n in range(1200):
        inc, ack = pd_incident(n, T0 + timedelta(hours=4 * n), ack_min=3 + n % 9)
        emu.incidents.append(inc)
        emu.log_entries.append(ack)
    emu.inject(r"^/incidents$", status=429, headers={"Retry-After": "7"}, times=3)
    emu.inject(r"^/log_entries$", status=429, headers={"Retry-After": "2"}, times=2)
    emu.inject(r"^/incidents$", status=502, times=1)
    with emu:
        monkeypatch.setenv("PAGERDUTY_TOKEN", "pd-test-token")
        monkeypatch.setenv("PAGERDUTY_API_URL", emu.url)
        query = _query(since=T0, until=T0 + timedelta(days=201))
        with SQLiteStore(tmp_path / "index.db") as store:
            first = run_import("pagerduty", query, store=store, embedder=HashEmbedder())
            second = run_import(
                "pagerduty",
                _query(since=T0, until=T0 + timedelta(days=201)),
                store=store,
                embedder=HashEmbedder(),
            )
            assert store.stats().incidents == 1200
            loaded = load(store=store, use_git=False)
    assert (first.fetched, first.added, first.updated) == (1200, 1200, 0)
    assert (second.fetched, second.added, second.updated, second.unchanged) == (1200, 0, 0, 1200)
    assert second.embedded == 0
    assert waits.count(7.0) == 3 and waits.count(2.0) == 2
    facts = {f.id: f for f in loaded.incidents}
    assert len(facts) == 1200
    f = facts["pagerduty:Q00000005"]
    assert f.origins == {"detected": "imported", "acknowledged": "imported", "resolved": "imported"}
    assert f.times["acknowledged"] - f.times["detected"] == timedelta(minutes=3 + 5 % 9)


def test_rootly_live_pages_action_items_and_retrospectives(
    monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    emu = RootlyHistory()
    emu.included = [{"id": "s1", "type": "services", "attributes": {"name": "checkout"}}]
    for n in range(45):
        start = T0 + timedelta(days=n)
        emu.incidents.append(
            {
                "id": f"r{n}",
                "type": "incidents",
                "attributes": {
                    "title": f"rootly {n}",
                    "started_at": start.isoformat(),
                    "created_at": (start + timedelta(minutes=5)).isoformat(),
                    "mitigated_at": (start + timedelta(minutes=30)).isoformat(),
                    "resolved_at": (start + timedelta(minutes=60)).isoformat(),
                    "severity": {"data": {"attributes": {"name": "SEV2"}}},
                    "sequential_id": n,
                },
                "relationships": {"services": {"data": [{"id": "s1", "type": "services"}]}},
            }
        )
        emu.action_items[f"r{n}"] = [
            {
                "id": f"a{n}",
                "type": "incident_action_items",
                "attributes": {
                    "incident_id": f"r{n}",
                    "summary": "add alert",
                    "status": "done" if n % 2 else "open",
                    "priority": "high",
                },
            }
        ]
    emu.post_mortems = [
        {
            "id": "pm1",
            "type": "incident_post_mortems",
            "attributes": {
                "incident_id": "r3",
                "status": "published",
                "published_at": "2024-03-10T10:00:00Z",
                "url": "https://rootly/pm1",
            },
        }
    ]
    emu.inject(r"^/v1/incidents$", status=429, headers={"Retry-After": "11"})
    emu.inject(r"/action_items$", status=503)
    with emu:
        monkeypatch.setenv("ROOTLY_API_TOKEN", "rootly-token")
        monkeypatch.setenv("ROOTLY_API_URL", emu.url)
        records = {
            r.id: r for r in fetch("rootly", _query(since=T0, until=T0 + timedelta(days=60)))
        }
    assert len(records) == 45 and 11.0 in waits
    r3 = records["r3"]
    assert r3.services == ["checkout"] and r3.severity == "SEV2"
    assert r3.postmortem is not None and r3.postmortem.status == "final"
    assert [a.status for a in r3.action_items] == ["done"]
    assert r3.times["mitigated"] - r3.times["impact_start"] == timedelta(minutes=30)


def test_incident_io_live_cursor_pages_follow_ups_and_markdown(
    monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    emu = IncidentIoHistory()
    for n in range(30):
        start = T0 + timedelta(days=n)
        emu.incidents.append(
            {
                "id": f"I{n:03d}",
                "name": f"iio {n}",
                "reference": f"INC-{n}",
                "created_at": start.isoformat(),
                "incident_status": {
                    "category": "declined" if n == 7 else "closed",
                    "name": "Closed",
                },
                "severity": {"name": "Major"},
                "incident_timestamp_values": [
                    {
                        "incident_timestamp": {"name": "Impact started"},
                        "value": {"value": start.isoformat()},
                    },
                    {
                        "incident_timestamp": {"name": "Resolved at"},
                        "value": {"value": (start + timedelta(hours=2)).isoformat()},
                    },
                ],
            }
        )
    emu.follow_ups = [
        {
            "id": "F1",
            "incident_id": "I002",
            "title": "fix",
            "status": "completed",
            "completed_at": "2024-03-09T00:00:00Z",
            "created_at": "2024-03-03T00:00:00Z",
        }
    ]
    emu.documents = [
        {
            "id": "D1",
            "incident_id": "I002",
            "status": "completed",
            "updated_at": "2024-03-05T00:00:00Z",
        }
    ]
    emu.markdown = {"D1": "# INC-2\n\nWhat happened."}
    emu.inject(r"^/v2/incidents$", status=500, times=2)
    with emu:
        monkeypatch.setenv("INCIDENT_IO_API_KEY", "iio-key")
        monkeypatch.setenv("INCIDENT_IO_API_URL", emu.url)
        query = _query(since=T0, until=T0 + timedelta(days=40))
        records = {r.id: r for r in fetch("incident_io", query)}
    assert len(records) == 29 and query.skipped == {"incident_io: declined incident": 1}
    assert len(waits) == 2  # two 500s, backed off
    r2 = records["I002"]
    assert r2.postmortem is not None and r2.postmortem.markdown.startswith("# INC-2")
    assert r2.action_items[0].status == "done" and r2.action_items[0].closed is not None


def test_statuspage_and_opsgenie_live(monkeypatch: pytest.MonkeyPatch, waits: list[float]) -> None:
    sp = StatuspageHistory()
    sample = json.loads(
        (FIXTURES / "statuspage" / "documented_manage_api_v1_pages_incidents.json").read_text()
    )
    for n in range(230):
        item = dict(
            sample[n % len(sample)], id=f"sp{n}", started_at=(T0 + timedelta(hours=n)).isoformat()
        )
        sp.incidents.append(item)
    sp.inject("/incidents$", status=429, headers={"Retry-After": "3"})
    og = OpsgenieHistory()
    for n in range(130):
        at = (T0 + timedelta(hours=n)).isoformat().replace("+00:00", "Z")
        og.alerts.append(
            {
                "id": f"al{n}",
                "tinyId": str(n),
                "alias": f"a{n}",
                "message": "disk full",
                "createdAt": at,
                "status": "closed",
                "acknowledged": True,
                "report": {"ackTime": 60000, "closeTime": 600000},
            }
        )
    with sp, og:
        monkeypatch.setenv("STATUSPAGE_API_KEY", "sp-key")
        monkeypatch.setenv("STATUSPAGE_PAGE_ID", "pg1")
        monkeypatch.setenv("STATUSPAGE_API_URL", sp.url)
        monkeypatch.setenv("OPSGENIE_API_KEY", "og-key")
        monkeypatch.setenv("OPSGENIE_API_URL", og.url)
        pages = fetch("statuspage", _query())
        alerts = fetch("opsgenie", _query(since=T0, until=T0 + timedelta(days=10), what=["alerts"]))
    assert len(pages) == 230 and 3.0 in waits
    assert len(alerts) == 130
    assert all(
        a.times["acknowledged"] - a.times["detected"] == timedelta(minutes=1) for a in alerts
    )


def test_a_live_import_without_a_token_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROOTLY_API_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["import", "rootly", "--db", "sqlite:///:memory:"])
    assert result.exit_code == 2
    assert "ROOTLY_API_TOKEN" in result.output and "Traceback" not in result.output


# --- into the report ----------------------------------------------------------------------------


def test_imports_never_overwrite_a_postmortems_milestones(tmp_path: Path) -> None:
    from retro.models import Milestone
    from tests.test_report import draft_file

    draft = draft_file(
        tmp_path / "pm" / "INC-123.md",
        "INC-123",
        {"impact_start": "2021-08-17 13:00:00", "resolved": "2021-08-17 14:00:00"},
    )
    assert draft.is_file() and Milestone
    src = json.loads(
        (FIXTURES / "incident_io" / "api_v2_incidents_list.openapi_example.json").read_text()
    )
    src["incidents"][0]["incident_timestamp_values"].append(
        {"incident_timestamp": {"name": "Fixed at"}, "value": {"value": "2021-08-17T13:40:00Z"}}
    )
    (tmp_path / "iio.json").write_text(json.dumps(src))
    with SQLiteStore(tmp_path / "index.db") as store:
        run_import(
            "incident_io",
            _query(files=[tmp_path / "iio.json"]),
            store=store,
            embedder=HashEmbedder(),
        )
        loaded = load(drafts=[tmp_path / "pm"], store=store, use_git=False)
    [inc] = loaded.incidents  # merged by the incident.io reference INC-123
    assert inc.id == "INC-123" and inc.imported_from == ["incident_io"]
    assert inc.times["impact_start"] == datetime(2021, 8, 17, 13, 0, tzinfo=UTC)  # the draft's
    assert inc.origins["impact_start"] == "inferred"
    assert inc.times["mitigated"] == datetime(2021, 8, 17, 13, 40, tzinfo=UTC)  # a gap, filled
    assert inc.origins["mitigated"] == "imported"


def test_cli_import_from_files_twice_adds_nothing_the_second_time(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'index.db'}"
    args = ["import", "statuspage", "--files", str(FIXTURES / "statuspage"), "--db", db, "--json"]
    runner = CliRunner()
    from unittest import mock

    from retro.index import embeddings

    with (
        mock.patch.object(embeddings, "get_embedder", lambda spec=None: HashEmbedder()),
        mock.patch.object(embeddings, "embedder_for_model", lambda model: HashEmbedder()),
    ):
        first = runner.invoke(cli, args)
        second = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["added"] == one["fetched"] > 0
    assert two["added"] == 0 and two["unchanged"] == one["fetched"]


# --- the new connectors' file mode (timeline events in a bundle) -----------------------------------


def test_new_connectors_read_their_bodies_in_a_bundle_and_claim_nothing_else(
    tmp_path: Path,
) -> None:

    from retro import registry
    from retro.models import SourceReport
    from retro.timeline.bundle import iter_docs
    from retro.timeline.bundle import load as load_bundle

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "incident.yaml").write_text("id: X-1\ntitle: test\n")
    shutil.copy(
        FIXTURES / "rootly" / "backstage-plugin_dev_mock_incidents_list.json",
        bundle / "rootly.json",
    )
    shutil.copy(
        FIXTURES / "rootly" / "api_v1_incident_event_get.openapi_example.json",
        bundle / "event.json",
    )
    shutil.copy(
        FIXTURES / "incident_io" / "api_v2_incidents_list.openapi_example.json", bundle / "iio.json"
    )
    shutil.copy(
        FIXTURES / "incident_io" / "api_v2_incident_updates_list.openapi_example.json",
        bundle / "updates.json",
    )
    shutil.copy(
        FIXTURES / "statuspage" / "documented_manage_api_v1_pages_incidents.json",
        bundle / "sp.json",
    )
    raw = load_bundle(bundle, connectors=registry.connectors())  # before windowing
    by_source: dict[str, int] = {}
    for e in raw.events:
        by_source[e.source] = by_source.get(e.source, 0) + 1
    # the incident's started_at and creation (its declaration), and one logged event
    assert by_source.get("rootly", 0) == 3
    assert by_source.get("incident_io", 0) >= 2 and by_source.get("statuspage", 0) >= 4
    sample = Path(__file__).resolve().parents[1] / "retro" / "sample" / "bundle"
    new = [registry.get(n) for n in ("rootly", "incident_io", "statuspage")]
    claimed = [
        doc.rel
        for doc in iter_docs(sample, SourceReport(name="bundle"))
        for c in new
        if c.claims(doc)
    ]
    assert claimed == []


def _declared(tmp_path: Path, name: str, body: dict) -> list[tuple[str, str]]:
    """The declarations a bundle holding `body` as `name` gives: (time, text) pairs."""
    from retro import registry
    from retro.timeline.bundle import load as load_bundle

    bundle = tmp_path / name
    bundle.mkdir()
    (bundle / "incident.yaml").write_text("id: X-1\ntitle: test\n")
    (bundle / f"{name}.json").write_text(json.dumps(body))
    raw = load_bundle(bundle, connectors=registry.connectors())
    return [
        (e.at.isoformat(), e.text) for e in raw.events if e.attrs.get("milestone") == "declared"
    ]


def test_creating_the_incident_in_an_incident_tool_is_its_declaration(tmp_path: Path) -> None:
    """incident.io's `created_at` and Rootly's are when someone declared the incident there, as
    the history import reads them; not for an incident recorded after the fact (incident.io
    mode `retrospective`, Rootly kind `backfilled`), and a timestamp named for the declaration
    says it better than the creation."""
    iio = json.loads(
        (FIXTURES / "incident_io" / "api_v2_incident_show.openapi_example.json").read_text()
    )
    iio["incident"]["incident_timestamp_values"] = []
    iio["incident"]["created_at"] = "2025-03-04T10:17:30Z"
    iio["incident"]["mode"] = "standard"
    assert _declared(tmp_path, "a", iio) == [
        ("2025-03-04T10:17:30+00:00", f"Declared: {iio['incident']['name']}")
    ]
    iio["incident"]["mode"] = "retrospective"
    assert _declared(tmp_path, "b", iio) == []
    iio["incident"]["mode"] = "standard"
    iio["incident"]["incident_timestamp_values"] = [
        {
            "incident_timestamp": {"id": "01FCNDV6P870EA6S7TK1DSYD5H", "name": "Declared at"},
            "value": {"value": "2025-03-04T10:12:00Z"},
        }
    ]
    assert [at for at, _ in _declared(tmp_path, "c", iio)] == ["2025-03-04T10:12:00+00:00"]
    rootly = json.loads(
        (FIXTURES / "rootly" / "backstage-plugin_dev_mock_incidents_list.json").read_text()
    )
    rootly["data"] = rootly["data"][:1]
    attrs = rootly["data"][0]["attributes"]
    attrs["created_at"] = "2025-03-04T10:20:00Z"
    assert ("2025-03-04T10:20:00+00:00", f"Incident declared: {attrs['title']}") in _declared(
        tmp_path, "d", rootly
    )
    attrs["kind"] = "backfilled"
    assert _declared(tmp_path, "e", rootly) == []


def test_incident_io_updates_and_follow_ups_carry_their_author_and_closed_no_state(
    tmp_path: Path,
) -> None:
    """An update's `updater.user` is its actor; "Closed" (the record ended, after the review)
    is not a state of the incident, so the milestone and window rules never read it."""
    from retro import registry
    from retro.timeline.bundle import load as load_bundle

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "incident.yaml").write_text("id: X-1\ntitle: test\n")
    body = json.loads(
        (FIXTURES / "incident_io" / "api_v2_incident_updates_list.openapi_example.json").read_text()
    )
    live = json.loads(json.dumps(body["incident_updates"][0]))
    live["id"] = "01FCNDV6P870EA6S7TK1DSYDG1"
    live["new_incident_status"] = {
        **live["new_incident_status"],
        "name": "Monitoring",
        "category": "live",
    }
    body["incident_updates"].append(live)
    (bundle / "updates.json").write_text(json.dumps(body))
    raw = load_bundle(bundle, connectors=registry.connectors())
    updates = {e.attrs["status"]: e for e in raw.events if e.source == "incident_io"}
    assert "to" not in updates["Closed"].attrs
    assert updates["Monitoring"].attrs["to"] == "Monitoring"
    assert updates["Closed"].actor is not None
    assert updates["Closed"].actor.name == "Lisa Karlin Curtis"
    follow_ups = FIXTURES / "incident_io" / "api_v2_follow_ups_list.openapi_example.json"
    (bundle / "follow_ups.json").write_text(follow_ups.read_text())
    raw = load_bundle(bundle, connectors=registry.connectors())
    filed = next(e for e in raw.events if e.attrs.get("follow_up"))
    assert filed.actor is not None and filed.actor.email == "lisa@incident.io"
