"""New Relic connector: webhook payloads and NerdGraph answers in file mode; live NerdGraph
harvest against the emulator (nextCursor paging, throttling, 429, 5xx, bad key, faults)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.newrelic import NewRelicConnector
from connectors.newrelic.live import NewRelicConfig
from retro.connector import Doc, IncidentRef, ReadContext, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.newrelic import ACCOUNT, FIXTURES, KEY, NewRelicEmulator

CONNECTOR = NewRelicConnector()
ALL_FIXTURES = FIXTURES.parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ISSUE = "6f3a1e22-9b4c-4d8e-a1f0-2c5b7d9e0a11"


def load(name: str, fmt: str = "json") -> Doc:
    return Doc(
        rel=f"newrelic/{name}", data=json.loads((FIXTURES / name).read_text("utf-8")), fmt=fmt
    )  # type: ignore[arg-type]


def make_ctx(*, lenient: bool = False) -> ReadContext:
    return ReadContext(
        bundle=FIXTURES,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="newrelic"),
        lenient=lenient,
    )


def read(*docs: Doc, ctx: ReadContext | None = None) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx or make_ctx()))


def lifecycle(events: list[TimelineEvent], issue: str) -> list[tuple[str, str]]:
    return [(e.kind, e.at.isoformat()) for e in events if e.attrs.get("issue_id") == issue]


# --- conformance: the recorded webhook payloads ----------------------------------------------------


def test_workflow_webhooks_give_each_issue_its_lifecycle() -> None:
    ctx = make_ctx()
    events = read(
        *[load(p.name) for p in sorted(FIXTURES.glob("webhook_workflow_*.json"))], ctx=ctx
    )
    assert ctx.report.records == 4 and not ctx.report.skipped
    # created, acknowledged by a person (USER_ACTION) and closed: three payloads, one issue
    assert lifecycle(events, "13bbcdca-f0b6-470d-b0be-b34583c58869") == [
        ("alert_firing", "2024-04-22T07:12:29.493000+00:00"),
        ("page_acknowledged", "2024-04-22T07:14:37.412000+00:00"),
        ("alert_resolved", "2024-04-22T07:15:35.419000+00:00"),
    ]
    # a default CLOSED payload has no closedAt: its updatedAt is the close
    assert lifecycle(events, "95a9344a-2590-48ce-8d83-07e28b6d22c6")[1] == (
        "alert_resolved",
        "2024-04-22T06:17:37.383000+00:00",
    )
    ack = next(e for e in events if e.kind == "page_acknowledged")
    assert ack.actor is not None and ack.actor.name == "Pieter Cardillo Kwok"
    firing = next(
        e for e in events if e.attrs.get("issue_id") == "208c5e92-f250-40be-b7c2-50508c268c15"
    )
    assert (
        firing.attrs["condition_names"] == ["High CPU"] and firing.attrs["priority"] == "CRITICAL"
    )
    assert (
        firing.text
        == "MAIN-APP-UBUNTU query result is > 2.0 for 1 minutes on 'High CPU' (critical issue)"
    )
    assert firing.url and firing.url.startswith("https://radar-api.service.newrelic.com/")


def test_webhooks_as_a_list_or_jsonl_read_the_same() -> None:
    rows = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("webhook_workflow_*.json"))]
    as_list = read(Doc(rel="newrelic/all.json", data=rows))
    as_jsonl = read(Doc(rel="newrelic/all.jsonl", data=rows, fmt="jsonl"))
    assert [(e.key, e.at) for e in as_list] == [(e.key, e.at) for e in as_jsonl]
    assert len(as_list) == 6


# --- documented NerdGraph and legacy shapes -------------------------------------------------------


def test_issues_and_their_incidents_are_one_alert_each() -> None:
    events = read(
        load("documented_nerdgraph_aiissues_issues.json"),
        load("documented_nerdgraph_aiissues_incidents.json"),
    )
    assert lifecycle(events, ISSUE) == [
        ("alert_firing", "2024-05-01T13:52:10+00:00"),
        ("page_acknowledged", "2024-05-01T14:05:00+00:00"),
        ("alert_resolved", "2024-05-01T14:32:00+00:00"),
    ]
    ack = next(e for e in events if e.kind == "page_acknowledged")
    assert ack.actor is not None and ack.actor.name == "Bo Chen" and not ack.is_bot
    inside = [e for e in events if e.attrs.get("in_issue")]
    assert {e.kind for e in inside} == {"other"} and len(inside) == 5  # 3 opened, 2 closed
    # an incident whose issue is not in the bundle is an alert of its own
    alone = [
        e.kind
        for e in events
        if e.attrs.get("incident_id") == "0a1b2c3d-1111-4e5f-8a9b-000000000009"
    ]
    assert alone == ["alert_firing", "alert_resolved"]
    firing = next(e for e in events if e.key == f"newrelic:issue:{ISSUE}:firing")
    assert firing.attrs["alert_name"] == "checkout-api: Response time > 2 s and Error rate > 5%"
    assert firing.attrs["activated_at"] == "2024-05-01T13:52:40Z"
    assert firing.attrs["condition_names"] == ["Checkout response time", "Checkout error rate"]


def test_priority_is_read_as_an_alert_level() -> None:
    """A critical threshold opens CRITICAL issues, a warning threshold HIGH ones: the level the
    milestones read (a warning pages nobody) is the threshold's, not the word "high"."""
    doc = load("documented_nerdgraph_aiissues_issues.json")
    issues = doc.data["data"]["actor"]["account"]["aiIssues"]["issues"]["issues"]
    issues.append({**issues[0], "issueId": "6f3a1e22-9b4c-4d8e-a1f0-2c5b7d9e0a99"})
    for issue, priority in zip(issues, ("CRITICAL", "HIGH", "MEDIUM"), strict=True):
        issue["priority"] = priority
    levels = {
        e.attrs["priority"]: e.attrs["severity"] for e in read(doc) if e.kind == "alert_firing"
    }
    assert levels == {"CRITICAL": "critical", "HIGH": "warning", "MEDIUM": "low"}


def test_a_login_that_is_an_email_is_the_actors_email() -> None:
    """NerdGraph names who acknowledged by login, usually an email: kept as the email, so the
    people stage joins it to the same person in chat, not shown as a raw address."""
    doc = load("documented_nerdgraph_aiissues_issues.json")
    issues = doc.data["data"]["actor"]["account"]["aiIssues"]["issues"]["issues"]
    for issue in issues:
        if issue.get("acknowledgedBy"):
            issue["acknowledgedBy"] = "Bo.Chen@acme.example"
    ack = next(e for e in read(doc) if e.kind == "page_acknowledged")
    assert ack.actor is not None
    assert ack.actor.email == "Bo.Chen@acme.example" and ack.actor.name is None


def test_legacy_alert_webhooks_are_an_incident_lifecycle() -> None:
    events = read(load("documented_webhook_legacy_alert_incident.json"))
    assert [(e.kind, e.at.strftime("%H:%M:%S")) for e in events] == [
        ("alert_firing", "13:53:00"),
        ("page_acknowledged", "14:04:30"),
        ("alert_resolved", "14:30:00"),
    ]
    assert events[1].actor is not None and events[1].actor.name == "Ana Ruiz"
    assert (
        events[0].attrs["targets"] == ["checkout-api"] and events[0].attrs["severity"] == "CRITICAL"
    )
    assert events[0].key.rsplit(":", 1)[0] == events[2].key.rsplit(":", 1)[0]


def test_bad_time_is_a_bundle_error_or_a_counted_skip() -> None:
    body = json.loads((FIXTURES / "documented_nerdgraph_aiissues_issues.json").read_text())
    body["data"]["actor"]["account"]["aiIssues"]["issues"]["issues"][1]["createdAt"] = "soon"
    with pytest.raises(BundleError, match=r"issues\[1\]: createdAt 'soon'"):
        read(Doc(rel="newrelic/x.json", data=body))
    ctx = make_ctx(lenient=True)
    assert len(read(Doc(rel="newrelic/x.json", data=body), ctx=ctx)) == 3
    assert sum(ctx.report.skipped.values()) == 1


def test_claims_nothing_of_other_vendors() -> None:
    """Every other vendor's sample, here and in ../shared/fixtures when it is there."""
    roots = [ALL_FIXTURES, *([SHARED] if SHARED.is_dir() else [])]
    for root in roots:
        for path in sorted(root.rglob("*.json")):
            if FIXTURES not in path.parents:
                doc = Doc(rel=str(path.relative_to(root)), data=json.loads(path.read_text()))
                assert not CONNECTOR.claims(doc), path


@pytest.mark.parametrize(
    "data", [None, 1, "x", [], [{}], {"data": {"actor": None}}, {"state": "CLOSED"}]
)
def test_claims_never_raises_and_rejects_junk(data: object) -> None:
    assert not CONNECTOR.claims(Doc(rel="newrelic/x.json", data=data))


# --- live mode -------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[NewRelicEmulator]:
    with NewRelicEmulator() as server:
        yield server  # type: ignore[misc]


def config(emu: NewRelicEmulator, **kw: object) -> NewRelicConfig:
    return NewRelicConfig(api_key=KEY, base_url=emu.url, backoff=0.01, **kw)  # type: ignore[arg-type]


WINDOW = {"since": parse_time("2024-05-01T12:00:00Z"), "until": parse_time("2024-05-01T16:00:00Z")}


def harvest(emu: NewRelicEmulator, out: Path, *targets: str, **kw: object) -> SourceReport:
    ref = IncidentRef(incident_id="INC-1", targets={"newrelic": list(targets)}, **WINDOW)
    return CONNECTOR.harvest(ref, out, config(emu, **kw))


def read_dir(folder: Path) -> list[TimelineEvent]:
    return read(
        *[Doc(rel=p.name, data=json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    )


def summary(events: list[TimelineEvent]) -> list[tuple[str, str, str]]:
    return [(e.key, e.kind, e.at.isoformat()) for e in events]


def queries(emu: NewRelicEmulator) -> list[dict]:
    return [r.json() for r in emu.log if r.path == "/graphql"]


def test_harvest_pages_with_next_cursor_and_round_trips(
    emu: NewRelicEmulator, tmp_path: Path
) -> None:
    report = harvest(emu, tmp_path, str(ACCOUNT))
    assert report.status == "ok" and report.records == 2 + 4
    expected = read(
        load("documented_nerdgraph_aiissues_issues.json"),
        load("documented_nerdgraph_aiissues_incidents.json"),
    )
    assert summary(read_dir(tmp_path / "newrelic")) == summary(expected)
    sent = queries(emu)
    assert [q["variables"]["cursor"] is None for q in sent] == [
        True,
        True,
        False,
    ]  # 2 issues; 4 incidents
    assert (
        sent[0]["variables"]["start"] == 1714564800000
        and sent[0]["variables"]["end"] == 1714579200000
    )
    assert "aiIssues" in sent[0]["query"] and "nextCursor" in sent[0]["query"]
    assert {r.headers["api-key"] for r in emu.log} == {KEY}


def test_one_issue_fetches_only_its_incidents(emu: NewRelicEmulator, tmp_path: Path) -> None:
    harvest(emu, tmp_path, f"{ACCOUNT}:{ISSUE}")
    sent = queries(emu)
    assert sent[0]["variables"]["ids"] == [ISSUE]
    assert sent[1]["variables"]["ids"] == [
        "0a1b2c3d-1111-4e5f-8a9b-000000000001",
        "0a1b2c3d-1111-4e5f-8a9b-000000000002",
    ]
    events = read_dir(tmp_path / "newrelic")
    assert [e.kind for e in events if e.attrs.get("issue_id")] == [
        "alert_firing",
        "page_acknowledged",
        "alert_resolved",
    ]


def test_faults_lose_duplicate_and_reorder_nothing(
    emu: NewRelicEmulator, tmp_path: Path, waits: list[float]
) -> None:
    clean = tmp_path / "clean"
    harvest(emu, clean, str(ACCOUNT))
    emu.log.clear()
    emu.throttle = 1  # the first query: NerdGraph's own throttling error
    emu.inject("/graphql", status=429, headers={"Retry-After": "9"}, skip=1)
    emu.inject("/graphql", drop=True, skip=2)
    emu.inject("/graphql", status=503, skip=2)
    emu.inject("/graphql", truncate="cut", skip=2)
    faulted = tmp_path / "faulted"
    harvest(emu, faulted, str(ACCOUNT))
    for path in sorted((clean / "newrelic").glob("*.json")):
        assert (faulted / "newrelic" / path.name).read_bytes() == path.read_bytes(), path.name
    assert 9.0 in waits and len(waits) == 5


def test_errors_are_one_line_with_the_fix(
    emu: NewRelicEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"newrelic": [str(ACCOUNT)]}, **WINDOW)
    with pytest.raises(
        ConnectorError, match="rejected the key \\(Invalid API key\\); set NEW_RELIC_API_KEY"
    ):
        CONNECTOR.harvest(ref, tmp_path, NewRelicConfig(api_key="NRAK-bad", base_url=emu.url))  # type: ignore[arg-type]
    with pytest.raises(ConnectorError, match="Account not found or access denied"):
        harvest(emu, tmp_path, "42")
    with pytest.raises(ConnectorError, match="issue nope not found"):
        harvest(emu, tmp_path, f"{ACCOUNT}:nope")
    emu.inject("/graphql", status=502, times=9)
    with pytest.raises(ConnectorError, match="HTTP 502 from NerdGraph \\(after retries\\)"):
        harvest(emu, tmp_path, str(ACCOUNT), max_retries=2)
    with pytest.raises(ConfigError, match="ACCOUNT_ID"):
        harvest(emu, tmp_path, "acme")
    monkeypatch.delenv("NEW_RELIC_API_KEY", raising=False)
    with pytest.raises(
        MissingCredential, match="NEW_RELIC_API_KEY or run `retro keys set newrelic`"
    ):
        CONNECTOR.harvest(ref, tmp_path, NewRelicConfig())


def test_check_names_the_user_and_accounts(emu: NewRelicEmulator) -> None:
    assert CONNECTOR.check(config(emu))[1:] == [
        "User API key of Bo Chen <bo.chen@example.com>",
        "accounts: Acme (3141592)",
    ]
