"""The Jira connector: file mode on our own v2/v3 fixtures, live harvest against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jira import JIRAError
from pydantic import SecretStr

from connectors.jira import JiraConnector
from connectors.jira.adf import adf_to_text
from connectors.jira.live import JiraConfig, connect, make_client
from retro.connector import Doc, IncidentRef, ReadContext
from retro.errors import BundleError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.base import FAULTS, SLOW_S
from tests.emulators.jira import JiraEmulator

FIXTURES = Path(__file__).parent / "fixtures" / "jira"


def load(name: str) -> Doc:
    return Doc(rel=f"jira/{name}", data=json.loads((FIXTURES / name).read_text()))


def read(*docs: Doc, lenient: bool = False) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="jira")
    ctx = ReadContext(
        bundle=FIXTURES, incident=IncidentMeta(id="INC-1"), report=report, lenient=lenient
    )
    connector = JiraConnector()
    assert all(connector.claims(d) for d in docs)
    return list(connector.read_bundle(list(docs), ctx)), report


def by_key(events: list[TimelineEvent]) -> dict[str, TimelineEvent]:
    return {e.key: e for e in events}


# --- file mode ---------------------------------------------------------------------------------


def test_v3_issue_created_and_changelog_kinds() -> None:
    events, report = read(load("ops-101_v3.json"))
    ev = by_key(events)
    created = ev["jira:OPS-101:created"]
    assert created.kind == "ticket_created"
    assert created.text == "OPS-101 created: Checkout API returns 500s"
    assert created.url == "https://acme.atlassian.net/browse/OPS-101"
    assert created.actor is not None and created.actor.email == "mia@example.com"
    assert created.attrs["labels"] == ["incident", "checkout"]
    assert created.attrs["components"] == ["api"]
    assert created.attrs["priority"] == "Highest" and created.attrs["issuetype"] == "Incident"
    assert created.attrs["description"] == "Error rate on /checkout above 20%."
    assert created.attrs["links"][0] == {
        "key": "CHG-7",
        "direction": "outward",
        "relation": "relates to",
        "type": "Relates",
        "summary": "Deploy checkout v2.3",
        "status": "Deployed",
        "issuetype": "Change",
    }
    assert ev["jira:OPS-101:history:50001:0"].kind == "assignee_change"
    assert ev["jira:OPS-101:history:50001:0"].text == "OPS-101 assignee: Unassigned → Bob Oncall"
    status = ev["jira:OPS-101:history:50001:1"]
    assert status.kind == "status_change" and status.text == "OPS-101 status: To Do → In Progress"
    assert status.actor is not None and status.actor.id == "5b109f2e9729b51b54dc274d"
    assert status.attrs["from"] == "To Do" and status.attrs["to_id"] == "3"
    assert ev["jira:OPS-101:history:50002:0"].kind == "priority_change"
    custom = ev["jira:OPS-101:history:50003:0"]
    assert custom.kind == "field_change" and custom.attrs["field_id"] == "customfield_10016"
    assert ev["jira:OPS-101:history:50004:1"].text == "OPS-101 resolution: ∅ → Fixed"
    assert created.at.isoformat() == "2024-05-01T14:03:00+00:00"
    assert report.records == 1 + 6 + 3  # issue, history items, comments
    assert len(events) == 10


def test_adf_comments_become_plain_text() -> None:
    ev = by_key(read(load("ops-101_v3.json"))[0])
    first = ev["jira:OPS-101:comment:40001"]
    assert first.kind == "comment"
    assert first.attrs["body"] == (
        "@Mia Krystof suspects the v2.3 deploy :fire:\n"
        "runbook (https://wiki.acme.dev/checkout)\n"
        "- error rate 23%\n"
        "- p99 4s\n"
        "kubectl rollout undo deploy/checkout"
    )
    assert first.text.startswith("OPS-101 comment: @Mia Krystof")
    assert first.url == "https://acme.atlassian.net/browse/OPS-101?focusedCommentId=40001"
    second = ev["jira:OPS-101:comment:40002"]
    assert second.attrs["body"] == "1. roll back\n2. watch dashboards"
    assert second.edited is True
    bot = ev["jira:OPS-101:comment:40003"]
    assert bot.actor is not None and bot.actor.is_bot


def test_linked_change_ticket_becomes_change_deployed() -> None:
    events, _ = read(load("ops-101_v3.json"), load("chg-7_v3.json"))
    ev = by_key(events)
    deployed = ev["jira:CHG-7:history:60002:0"]
    assert deployed.kind == "change_deployed"
    assert deployed.text == "CHG-7 deployed (In Progress → Deployed): Deploy checkout v2.3"
    assert deployed.attrs["issuetype"] == "Change" and deployed.attrs["project"] == "CHG"
    assert ev["jira:CHG-7:history:60001:0"].kind == "status_change"
    # An incident ticket reaching "Resolved" stays a status change.
    assert ev["jira:OPS-101:history:50004:0"].kind == "status_change"


def test_v2_server_search_body() -> None:
    events, _ = read(load("search_v2_server.json"))
    ev = by_key(events)
    created = ev["jira:INC-42:created"]
    assert created.at.isoformat() == "2024-06-10T07:15:00+00:00"
    assert (
        created.actor is not None
        and created.actor.id == "jdoe"
        and created.actor.name == "Jane Doe"
    )
    assert created.url == "https://jira.acme.internal/browse/INC-42"
    assert created.provenance.record == "issues[0]"
    comment = ev["jira:INC-42:comment:70001"]
    assert "[runbook|https://wiki.acme.internal/payments]" in comment.text
    assert comment.provenance.record == "issues[0].fields.comment.comments[0]"
    assert ev["jira:INC-42:history:80001:0"].kind == "status_change"
    fix = ev["jira:INC-42:history:80001:1"]
    assert fix.kind == "field_change" and fix.text == "INC-42 Fix Version: ∅ → 2024.06"


def test_same_issue_in_two_files_is_read_once() -> None:
    single = load("chg-7_v3.json")
    as_list = Doc(rel="jira/list.json", data=[single.data])
    events, report = read(single, as_list)
    assert len(events) == len({e.key for e in events}) == 3
    assert sum(n for reason, n in report.skipped.items() if "duplicate" in reason) == 3


def test_comments_and_changelog_bodies_find_their_issue() -> None:
    issue = load("ops-101_v3.json")
    comments = Doc(
        rel="jira/comments.json",
        data={
            "startAt": 0,
            "maxResults": 1,
            "total": 1,
            "comments": [
                {
                    "self": "https://acme.atlassian.net/rest/api/3/issue/20101/comment/40009",
                    "id": "40009",
                    "body": "late note",
                    "created": "2024-05-01T16:00:00.000+0000",
                }
            ],
        },
    )
    changelog = Doc(
        rel="jira/changelog.json",
        data={
            "self": "https://acme.atlassian.net/rest/api/3/issue/OPS-101/changelog?startAt=0",
            "startAt": 0,
            "maxResults": 1,
            "total": 1,
            "isLast": True,
            "values": [
                {
                    "id": "50009",
                    "created": "2024-05-01T16:05:00.000+0000",
                    "items": [{"field": "labels", "fromString": "", "toString": "postmortem"}],
                }
            ],
        },
    )
    ev = by_key(read(issue, comments, changelog)[0])
    assert ev["jira:OPS-101:comment:40009"].url == (
        "https://acme.atlassian.net/browse/OPS-101?focusedCommentId=40009"
    )
    assert ev["jira:OPS-101:history:50009:0"].kind == "field_change"


def test_wrong_shapes_raise_bundle_error() -> None:
    bad = Doc(
        rel="jira/search.json",
        data={
            "issues": [
                json.loads((FIXTURES / "chg-7_v3.json").read_text()),
                {"key": "X-1", "summary": "no fields"},
            ]
        },
    )
    with pytest.raises(BundleError) as info:
        read(bad)
    assert info.value.record == "issues[1]"
    events, report = read(bad, lenient=True)
    assert any("malformed issue" in r for r in report.skipped) and len(events) == 3
    history = load("chg-7_v3.json")
    history.data["changelog"]["histories"][0]["items"] = "status"
    with pytest.raises(BundleError, match="changelog history"):
        read(history)
    orphan = Doc(
        rel="jira/c.json",
        data={
            "startAt": 0,
            "total": 1,
            "comments": [{"id": "1", "body": "x", "created": "2024-05-01T16:00:00.000+0000"}],
        },
    )
    with pytest.raises(BundleError, match="which issue"):
        read(orphan)


def test_naive_timestamp_is_an_error() -> None:
    doc = load("chg-7_v3.json")
    doc.data["fields"]["created"] = "2024-05-01T12:00:00.000"
    with pytest.raises(BundleError, match="no time zone"):
        read(doc)


def test_claims_only_jira_shapes() -> None:
    connector = JiraConnector()
    assert not connector.claims(Doc(rel="a.json", data={"incidents": []}))
    assert not connector.claims(Doc(rel="a.json", data=[{"key": "x", "fields": "y"}]))
    assert not connector.claims(Doc(rel="a.json", data={"values": [{"a": 1}], "isLast": True}))
    assert not connector.claims(Doc(rel="a.json", data={"comments": [], "total": 0}))
    assert not connector.claims(Doc(rel="a.csv", data=[{"key": "A-1"}], fmt="csv"))


def test_adf_converter_edge_nodes() -> None:
    doc = {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Impact"}],
            },
            {
                "type": "blockquote",
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "quoted"}]}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "mention", "attrs": {"id": "x", "displayName": "Ann"}},
                    {"type": "text", "text": " "},
                    {"type": "inlineCard", "attrs": {"url": "https://x.example/1"}},
                    {"type": "status", "attrs": {"text": "DONE"}},
                    {"type": "unknownNode", "content": [{"type": "text", "text": " kept"}]},
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "outer"}]},
                            {
                                "type": "bulletList",
                                "content": [
                                    {
                                        "type": "listItem",
                                        "content": [
                                            {
                                                "type": "paragraph",
                                                "content": [{"type": "text", "text": "inner"}],
                                            }
                                        ],
                                    }
                                ],
                            },
                        ],
                    }
                ],
            },
        ],
    }
    assert (
        adf_to_text(doc)
        == "Impact\n> quoted\n@Ann https://x.example/1[DONE] kept\n- outer\n  - inner"
    )


# --- live mode ---------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[JiraEmulator]:
    emulator = JiraEmulator().start()
    yield emulator
    emulator.stop()


def cloud(emu: JiraEmulator, **extra: Any) -> JiraConfig:
    settings: dict[str, Any] = {"max_retry_delay_s": 0.01, **extra}
    return JiraConfig(
        base_url=emu.url, email="alice@example.com", api_token=SecretStr("cloud-token"), **settings
    )


def seed_incident(emu: JiraEmulator) -> tuple[str, str]:
    incident = emu.seed_issue(
        "OPS",
        "Checkout 500s",
        issuetype="Incident",
        labels=["incident"],
        created="2024-05-01T14:03:00Z",
        history=[
            (
                "2024-05-01T14:06:00Z",
                "bob",
                [("assignee", None, "bob"), ("status", "To Do", "In Progress")],
            ),
            ("2024-05-01T14:08:00Z", "alice", [("priority", "Medium", "Highest")]),
        ],
        comments=[(f"2024-05-01T14:{10 + i:02d}:00Z", "bob", f"update {i}") for i in range(7)],
    )
    change = emu.seed_issue(
        "CHG",
        "Deploy checkout v2.3",
        issuetype="Change",
        status="Deployed",
        created="2024-05-01T12:00:00Z",
        history=[("2024-05-01T13:55:00Z", "carol", [("status", "In Progress", "Deployed")])],
    )
    emu.link(incident, change)
    return incident, change


def harvest_and_read(
    config: JiraConfig, keys: list[str], out: Path
) -> tuple[SourceReport, list[TimelineEvent]]:
    report = JiraConnector().harvest(
        IncidentRef(incident_id="INC-1", targets={"jira": keys}), out, config
    )
    docs = [
        Doc(rel=str(p.relative_to(out)), data=json.loads(p.read_text()))
        for p in sorted(out.rglob("*.json"))
    ]
    events, _ = read(*docs)
    return report, events


def test_harvest_v3_round_trip_with_linked_change(emu: JiraEmulator, tmp_path: Path) -> None:
    incident, change = seed_incident(emu)
    emu.comment_embed_limit = 3  # the issue body holds 3 of 7 comments; harvest pages the rest
    report, events = harvest_and_read(cloud(emu, page_size=2), [incident], tmp_path)
    assert sorted(report.files) == [f"jira/{change}.json", f"jira/{incident}.json"]
    ev = by_key(events)
    assert [e.attrs["body"] for e in events if e.kind == "comment"] == [
        f"update {i}" for i in range(7)
    ]
    assert ev[f"jira:{change}:history:30003:0"].kind == "change_deployed"
    assert ev[f"jira:{incident}:history:30001:0"].kind == "assignee_change"
    assert ev[f"jira:{incident}:created"].url == f"{emu.url}/browse/{incident}"
    raw = json.loads((tmp_path / "jira" / f"{incident}.json").read_text())
    assert raw["fields"]["comment"]["total"] == 7 and raw["fields"]["description"] is None
    comment_pages = [r for r in emu.log if r.path.endswith(f"/rest/api/3/issue/{incident}/comment")]
    assert len(comment_pages) == 4


def test_harvest_v2_with_pat_and_paged_changelog(tmp_path: Path) -> None:
    with JiraEmulator(deployment="Server") as emu:
        incident, _ = seed_incident(emu)
        for i in range(5):
            emu.add_history(
                incident, f"2024-05-01T15:0{i}:00Z", "carol", [("labels", None, f"l{i}")]
            )
        emu.changelog_embed_limit = 2
        config = JiraConfig(base_url=emu.url, pat=SecretStr("server-pat"), follow_links=False)
        assert config.version() == "2"
        report, events = harvest_and_read(config, [incident], tmp_path)
        assert report.files == [f"jira/{incident}.json"]
        assert all("/rest/api/2/" in r.path for r in emu.log if r.path.startswith("/rest/api"))
        assert any(r.headers.get("authorization") == "Bearer server-pat" for r in emu.log)
        histories = [e for e in events if ":history:" in e.key]
        assert len(histories) == 3 + 5
        created = by_key(events)[f"jira:{incident}:created"]
        assert created.actor is not None and created.actor.id == "alice"  # Server names users


def test_harvest_429_is_retried_without_duplicates(emu: JiraEmulator, tmp_path: Path) -> None:
    incident, _ = seed_incident(emu)
    emu.comment_embed_limit = 1
    emu.inject(
        f"/issue/{incident}/comment$",
        status=429,
        headers={"Retry-After": "1"},
        body={"errorMessages": ["Rate limit exceeded"]},
    )
    emu.inject(f"/issue/{incident}$", status=503, headers={"Retry-After": "0"})
    _, events = harvest_and_read(cloud(emu, page_size=3, follow_links=False), [incident], tmp_path)
    bodies = [e.attrs["body"] for e in events if e.kind == "comment"]
    assert bodies == [f"update {i}" for i in range(7)]
    assert emu.faults == []


def test_harvest_500_fails_after_retries(emu: JiraEmulator, tmp_path: Path) -> None:
    incident, _ = seed_incident(emu)
    emu.inject(f"/issue/{incident}$", status=500, times=10, body={"errorMessages": ["boom"]})
    with pytest.raises(ConnectorError, match="500") as info:
        JiraConnector().harvest(
            IncidentRef(incident_id="I", targets={"jira": [incident]}),
            tmp_path,
            cloud(emu, max_retries=2),
        )
    assert "after 2 retries" in str(info.value)
    assert len([r for r in emu.log if r.path.endswith(f"/issue/{incident}")]) == 3


def test_harvest_401_and_404(emu: JiraEmulator, tmp_path: Path) -> None:
    bad = JiraConfig(base_url=emu.url, email="alice@example.com", api_token=SecretStr("wrong"))
    with pytest.raises(ConnectorError, match="401") as info:
        JiraConnector().harvest(
            IncidentRef(incident_id="I", targets={"jira": ["OPS-1"]}), tmp_path, bad
        )
    assert "JIRA_EMAIL" in str(info.value) and "JIRA_API_TOKEN" in str(info.value)
    with pytest.raises(
        ConnectorError, match="issue OPS-999 does not exist or you lack Browse permission"
    ):
        JiraConnector().harvest(
            IncidentRef(incident_id="I", targets={"jira": ["OPS-999"]}), tmp_path, cloud(emu)
        )


def test_linked_issue_in_hidden_project_is_skipped(emu: JiraEmulator, tmp_path: Path) -> None:
    incident, _ = seed_incident(emu)
    emu.hidden_projects.add("CHG")
    report = JiraConnector().harvest(
        IncidentRef(incident_id="I", targets={"jira": [incident]}), tmp_path, cloud(emu)
    )
    assert report.status == "partial" and report.files == [f"jira/{incident}.json"]
    assert any("linked issue not fetched" in r for r in report.skipped)


def test_malformed_body_is_retried_then_a_connector_error(
    emu: JiraEmulator, tmp_path: Path, waits: list[float]
) -> None:
    incident, _ = seed_incident(emu)
    ref = IncidentRef(incident_id="I", targets={"jira": [incident]})
    emu.inject(f"/issue/{incident}$", status=200, raw=b"{not json")
    report = JiraConnector().harvest(ref, tmp_path / "once", cloud(emu, follow_links=False))
    assert report.files == [f"jira/{incident}.json"] and len(waits) == 1  # retried once
    emu.inject(f"/issue/{incident}$", status=200, raw=b"{not json", times=3)
    with pytest.raises(ConnectorError, match="malformed response body on issue .* after 2"):
        JiraConnector().harvest(ref, tmp_path / "always", cloud(emu, max_retries=2))


# --- faults on any request of a harvest -----------------------------------------------------------


# Below the slow fault's delay, so it times out; well above an ordinary answer on a loaded
# machine (at 0.3 s a clean harvest under CI load once timed out and retried, which threw the
# request count off by one).
TIMEOUT_S = SLOW_S / 2


def harvest_files(config: JiraConfig, keys: list[str], out: Path) -> dict[str, bytes]:
    JiraConnector().harvest(IncidentRef(incident_id="INC-1", targets={"jira": keys}), out, config)
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.json"))}


def paged_incident(emu: JiraEmulator) -> str:
    """An incident whose comments and changelog both need several pages, with a linked change."""
    incident, _ = seed_incident(emu)
    for i in range(5):
        emu.add_history(incident, f"2024-05-01T15:0{i}:00Z", "carol", [("labels", None, f"l{i}")])
    emu.comment_embed_limit = 3
    emu.changelog_embed_limit = 2
    return incident


@pytest.mark.parametrize("position", ["first", "middle", "last"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_on_any_request_loses_duplicates_and_reorders_nothing(
    emu: JiraEmulator, fault: str, position: str, tmp_path: Path, waits: list[float]
) -> None:
    incident = paged_incident(emu)
    config = cloud(emu, page_size=2, timeout_s=TIMEOUT_S, max_retries=2, max_retry_delay_s=30.0)
    clean = harvest_files(config, [incident], tmp_path / "clean")
    total = len(emu.log)
    emu.log.clear()
    skip = {"first": 0, "middle": total // 2, "last": total - 1}[position]
    emu.inject_fault(fault, skip=skip)
    assert harvest_files(config, [incident], tmp_path / "faulted") == clean
    assert len(emu.log) == total + 1  # the faulted request once more, nothing else
    assert emu.faults == []
    assert len(waits) == 1
    if fault == "429 with Retry-After":
        assert waits == [7.0]  # the server's wait, exactly
    else:
        assert 1.0 <= waits[0] <= 1.5  # back-off with jitter


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_outlasting_the_retries_is_one_line(
    emu: JiraEmulator, fault: str, tmp_path: Path, waits: list[float]
) -> None:
    incident = paged_incident(emu)
    config = cloud(emu, page_size=2, timeout_s=TIMEOUT_S, max_retries=2, max_retry_delay_s=30.0)
    emu.inject_fault(fault, f"/issue/{incident}/comment$", skip=1, times=3)
    with pytest.raises(ConnectorError) as info:
        harvest_files(config, [incident], tmp_path)
    message = str(info.value)
    assert message.startswith("jira: ") and "comments of " + incident in message
    assert "after 2 retries" in message and "\n" not in message
    assert len(waits) == 2


def test_check_reports_user_and_permission(emu: JiraEmulator) -> None:
    lines = JiraConnector().check(cloud(emu, project="OPS"))
    assert lines[0].startswith("Jira Cloud") and "REST v3" in lines[0]
    assert lines[1] == "authenticated as Alice Admin (alice@example.com)"
    assert lines[2] == "Browse Projects on OPS: yes"
    emu.denied_permissions.add("BROWSE_PROJECTS")
    with pytest.raises(ConnectorError, match="lacks Browse Projects on OPS"):
        JiraConnector().check(cloud(emu, project="OPS"))


def test_missing_credentials() -> None:
    with pytest.raises(MissingCredential):
        make_client(JiraConfig(base_url="http://127.0.0.1:9"))


# --- the emulator itself -----------------------------------------------------------------------


def test_emulator_create_validation_and_jql(emu: JiraEmulator) -> None:
    client = make_client(cloud(emu))
    with pytest.raises(JIRAError) as info:
        client.create_issue(
            fields={
                "project": {"key": "OPS"},
                "issuetype": {"name": "Epic"},
                "summary": "x",
                "labels": ["two words"],
                "duedate": "05/01/2024",
            }
        )
    response = info.value.response
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": [],
        "errors": {
            "issuetype": "Specify a valid issue type",
            "labels": "The label 'two words' contains spaces which is invalid.",
            "duedate": "Error parsing date string: 05/01/2024",
        },
    }
    created = [
        client.create_issue(
            fields={
                "project": {"key": "OPS"},
                "issuetype": {"name": "Task"},
                "summary": f"Action {i}",
                "labels": ["postmortem", f"l{i}"],
            },
            prefetch=False,
        ).key
        for i in range(3)
    ]
    assert created == ["OPS-1", "OPS-2", "OPS-3"]
    found = client.search_issues(
        "project = OPS AND labels in (l0, l2) AND statusCategory != Done ORDER BY created"
    )
    assert [i.key for i in found] == ["OPS-1", "OPS-3"]
    assert [i.key for i in client.search_issues('text ~ "action 1"')] == ["OPS-2"]


def test_emulator_commits_before_fault_when_after(emu: JiraEmulator) -> None:
    client = make_client(cloud(emu, max_retries=0))
    emu.inject("/rest/api/3/issue$", status=500, after=True)
    with pytest.raises(JIRAError, match="500"):
        client.create_issue(
            fields={"project": {"key": "OPS"}, "issuetype": {"name": "Task"}, "summary": "A"}
        )
    assert list(emu.issues) == ["OPS-1"]


def test_emulator_versions_links_and_enhanced_search(emu: JiraEmulator) -> None:
    incident, change = seed_incident(emu)
    v3 = make_client(cloud(emu))
    with pytest.raises(JIRAError, match="Atlassian Document"):
        v3.add_comment(incident, "plain text is refused by v3")
    v2 = make_client(JiraConfig(base_url=emu.url, pat=SecretStr("server-pat")))
    assert v2.add_comment(incident, "plain text is fine in v2").body == "plain text is fine in v2"
    assert v3.comments(incident)[-1].raw["body"]["type"] == "doc"
    assert [
        link["outwardIssue"]["key"] for link in v3.issue(incident).raw["fields"]["issuelinks"]
    ] == [change]
    assert v3.issue(change).raw["fields"]["issuelinks"][0]["inwardIssue"]["key"] == incident
    for i in range(4):
        emu.seed_issue(
            "OPS", f"Follow-up {i}", labels=["postmortem"], created=f"2024-05-02T0{i}:00:00Z"
        )
    found = v3.enhanced_search_issues("labels = postmortem ORDER BY created DESC", maxResults=0)
    assert [i.fields.summary for i in found] == [f"Follow-up {i}" for i in (3, 2, 1, 0)]
    assert len([r for r in emu.log if r.path.endswith("/search/jql")]) == 1  # 100 per page
    body = connect(cloud(emu)).get_json(
        "search/jql", {"jql": "labels = postmortem", "maxResults": 3}
    )
    assert body["isLast"] is False and [i.keys() for i in body["issues"]][0] == {"id"}
    with pytest.raises(JIRAError) as info:
        v3.search_issues("assignee was bob")
    assert info.value.status_code == 400


def test_default_api_version_follows_the_auth() -> None:
    token = SecretStr("t")
    assert JiraConfig(email="a@b.c", api_token=token).version() == "3"
    assert JiraConfig(pat=token).version() == "2"
    # One stored secret fills both fields; without an email it is a Server PAT.
    assert JiraConfig(api_token=token, pat=token).version() == "2"
    assert JiraConfig(pat=token, api_version="3").version() == "3"


def test_unreachable_site_is_a_connector_error() -> None:
    config = JiraConfig(base_url="http://127.0.0.1:9", pat=SecretStr("x"), max_retries=0)
    with pytest.raises(
        ConnectorError, match="cannot reach Jira at http://127.0.0.1:9 on serverInfo"
    ):
        make_client(config)
