"""The Jira connector against real vendor samples in ../shared/fixtures/jira (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.jira import JiraConnector
from retro.connector import Doc, ReadContext
from retro.models import IncidentMeta, SourceReport, TimelineEvent

SHARED = Path(__file__).parents[1].parent / "shared" / "fixtures" / "jira"
pytestmark = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/fixtures/jira is not present"
)


def doc(name: str) -> Doc:
    return Doc(rel=name, data=json.loads((SHARED / name).read_text(encoding="utf-8")))


def read(*docs: Doc) -> tuple[dict[str, TimelineEvent], SourceReport]:
    report = SourceReport(name="jira")
    ctx = ReadContext(bundle=SHARED, incident=IncidentMeta(id="INC-1"), report=report)
    connector = JiraConnector()
    assert all(connector.claims(d) for d in docs)
    events = list(connector.read_bundle(list(docs), ctx))
    assert len(events) == len({e.key for e in events})
    return {e.key: e for e in events}, report


def test_get_issue_200_embedded_adf_comment() -> None:
    events, report = read(doc("rest_v3_get_issue_200.openapi_example.json"))
    comment = events["jira:ED-1:comment:10000"]
    assert comment.kind == "comment"
    assert comment.attrs["body"].startswith("Lorem ipsum dolor sit amet")
    assert comment.actor is not None and comment.actor.id == "5b10a2844c20165700ede21g"
    assert comment.url == "https://your-domain.atlassian.net/browse/ED-1?focusedCommentId=10000"
    assert comment.attrs["visibility"] == "role:Administrators"
    assert comment.edited is True
    # The spec example has no `created` field, so there is no ticket_created, and that is counted.
    assert "jira:ED-1:created" not in events
    assert report.skipped == {"issue without fields.created (no ticket_created event)": 1}


def test_search_200_matches_get_issue() -> None:
    events, _ = read(doc("rest_v3_search_200.openapi_example.json"))
    assert list(events) == ["jira:ED-1:comment:10000"]
    assert events["jira:ED-1:comment:10000"].provenance.record == "issues[0].fields.comment[0]"


def test_paged_changelog_names_its_issue_in_self() -> None:
    events, report = read(doc("rest_v3_get_issue_changelog_200.openapi_example.json"))
    first = events["jira:TT-1:history:10001:0"]
    assert first.kind == "field_change"
    assert first.attrs["to"] == "label-1" and first.attrs["field_id"] == "fieldId"
    assert first.actor is not None and first.actor.email == "mia@example.com"
    assert first.at.isoformat() == "1970-01-18T06:27:50.429000+00:00"
    assert first.provenance.record == "values[0].items[0]"
    assert report.records == 2


def test_comments_page_maps_by_issue_id() -> None:
    comments = doc("rest_v3_get_issue_comments_200.openapi_example.json")
    events, _ = read(comments)
    # Alone, the page only names issue id 10010 in each comment's self URL.
    assert events["jira:10010:comment:10000"].attrs["issue_id"] == "10010"
    assert events["jira:10010:comment:10000"].text.startswith("issue 10010 comment: Lorem ipsum")
    # With an issue of that id in the bundle, the comment lands on its key.
    issue = Doc(
        rel="ED-9.json",
        data={
            "id": "10010",
            "key": "ED-9",
            "self": "https://your-domain.atlassian.net/rest/api/3/issue/10010",
            "fields": {"summary": "s", "created": "2021-01-17T12:00:00.000+0000"},
        },
    )
    events, _ = read(issue, comments)
    assert events["jira:ED-9:comment:10000"].url == (
        "https://your-domain.atlassian.net/browse/ED-9?focusedCommentId=10000"
    )


def test_faros_issues_with_changelog() -> None:
    events, report = read(doc("faros/issues_with_changelog.json"))
    created = events["jira:TEST-1:created"]
    assert created.kind == "ticket_created" and created.text == "TEST-1 created: Jira test issue"
    assert created.at.isoformat() == "2024-07-04T12:40:59.251000+00:00"  # -0700 → UTC
    assert created.actor is not None and created.actor.email == "user@mail.com"
    assert created.url is None  # these issues carry no `self` URL
    assert events["jira:TEST-1:history:123350:0"].text == (
        "TEST-1 status: Backlog → Selected for Development"
    )
    assert events["jira:TEST-1:history:123348:0"].kind == "field_change"
    sprint = events["jira:TEST-3:history:107005:0"]
    assert sprint.attrs["field"] == "Sprint" and "TEST Sprint 20" in sprint.attrs["to"]
    assert events["jira:TEST-3:created"].actor.id == "88a7f7f45b7d3b111232"  # type: ignore[union-attr]
    links = events["jira:TEST-3:created"].attrs["links"]
    assert links and all(link["type"] for link in links)
    reply = events["jira:TEST-4:comment:2"]
    assert reply.parent == "jira:TEST-4:comment:1" and reply.text == "TEST-4 comment: Reply"
    assert reply.url == "https://faros-ai.atlassian.net/browse/TEST-4?focusedCommentId=2"
    kinds = [e.kind for e in events.values()]
    assert kinds.count("ticket_created") == 4 and kinds.count("comment") == 2
    assert report.records == len(events) and report.skipped == {}


def test_webhook_issue_updated_status() -> None:
    events, _ = read(doc("webhook_issue_updated_status_zulip_TRIMMED.json"))
    change = events["jira:TEST-1:history:10000:0"]
    assert change.kind == "status_change" and change.text == "TEST-1 status: To Do → In Progress"
    assert change.at.isoformat() == "2017-01-30T17:32:14.721000+00:00"
    assert change.actor is not None and change.actor.name == "James Williams"
    assert change.actor.email == "othello@zulip.com"
    assert change.url == "https://zulipp.atlassian.net/browse/TEST-1"
    assert events["jira:TEST-1:created"].attrs["project"] == "ABC"


def test_non_bundle_samples_are_not_claimed() -> None:
    connector = JiraConnector()
    for name in (
        "rest_v3_add_comment_request.openapi_example.json",
        "rest_v3_add_comment_201.openapi_example.json",
        "rest_v3_create_issue_request.openapi_example.json",
        "rest_v3_create_issue_201.openapi_example.json",
        "rest_v3_create_issue_400.openapi_example.json",
        "rest_v3_create_issue_link_request.openapi_example.json",
        "rest_v3_get_issue_link_200.openapi_example.json",
        "rest_v3_get_remote_links_200.openapi_example.json",
        "rest_v3_create_remote_link_request.openapi_example.json",
        "faros/users.json",
        "faros/audit_records.json",
    ):
        assert not connector.claims(doc(name)), name
