"""Microsoft Teams connector, file mode: Graph chatMessage bodies read into timeline events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connectors.teams import TeamsConnector
from connectors.teams.events import duration_text, system_text
from connectors.teams.html import Mentions, html_text, message_text
from connectors.teams.read import doc_shape
from retro import registry
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from retro.timeline.bundle import load as load_bundle
from tests.emulators.teams_tenant import (
    CHANNEL,
    CHAT,
    TEAM,
    USERS,
    message,
    mid,
    sample_tenant,
    stamp,
    user,
)

CONNECTOR = TeamsConnector()
KEY = f"teams:{CHANNEL}"


def read(
    docs: list[Doc], *, lenient: bool = False, tz: str | None = None, **meta: Any
) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="teams")
    ctx = ReadContext(
        bundle=Path("."),
        incident=IncidentMeta(id="INC-2041", **meta),
        report=report,
        lenient=lenient,
        tz=ZoneInfo(tz) if tz else None,
    )
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(docs, ctx)), report


def tenant_docs() -> list[Doc]:
    """The emulated tenant as the bodies a harvest writes: pages, channel, chat and members."""
    tenant = sample_tenant()
    found = tenant.channels[(TEAM, CHANNEL)]
    chat = tenant.chats[CHAT]
    ctx = "https://graph.microsoft.com/v1.0/$metadata#"
    return [
        Doc(
            "teams/inc/messages.json",
            {
                "@odata.context": f"{ctx}teams('{TEAM}')/channels('{CHANNEL}')/messages",
                "value": found["threads"],
            },
        ),
        Doc("teams/inc/channel.json", found["channel"]),
        Doc("teams/inc/members.json", {"value": found["members"]}),
        Doc(
            "teams/bridge/messages.json",
            {"@odata.context": f"{ctx}chats('{CHAT}')/messages", "value": chat["messages"]},
        ),
        Doc("teams/bridge/chat.json", chat["chat"]),
        Doc("teams/bridge/members.json", {"value": chat["members"]}),
    ]


def by_key(events: list[TimelineEvent]) -> dict[str, TimelineEvent]:
    return {e.key: e for e in events}


def total_messages() -> int:
    tenant = sample_tenant()
    threads = tenant.channels[(TEAM, CHANNEL)]["threads"]
    return sum(1 + len(t["replies"]) for t in threads) + len(tenant.chats[CHAT]["messages"])


# --- the whole tenant -----------------------------------------------------------------------------


def test_channel_and_chat_read_with_kinds_threads_and_people() -> None:
    events, report = read(tenant_docs())
    ev = by_key(events)
    grafana = ev[f"{KEY}:{mid(2)}"]
    assert grafana.kind == "bot_message" and grafana.is_bot
    assert grafana.actor is not None and grafana.actor.name == "Grafana" and grafana.actor.is_bot
    assert grafana.text == "[FIRING:1] CheckoutErrorRate\nerror rate 7% on checkout-api"
    assert grafana.attrs["application_type"] == "bot"
    ask = ev[f"{KEY}:{mid(3)}"]
    # Two <at> tags that mention one user read as one mention with the full name.
    assert ask.text == "@Bo Chen can you look at checkout? I'll be IC"
    assert ask.attrs["mentions"] == ["Bo Chen"]
    assert ask.actor is not None and ask.actor.email == "ana.ruiz@acme.io"
    assert ask.url is not None and ask.url.startswith("https://teams.microsoft.com/l/message/")
    for minutes in (4, 6, 8, 11):
        reply = ev[f"{KEY}:{mid(minutes)}"]
        assert reply.thread == reply.parent == f"{KEY}:{mid(3)}"
    assert ask.thread is None
    assert ev[f"{KEY}:{mid(5)}"].kind == "membership"
    assert ev[f"{KEY}:{mid(5)}"].text == "Added to the conversation: Cy Park"
    ended = ev[f"{KEY}:{mid(16)}"]
    assert ended.kind == "note" and ended.attrs["event_type"] == "callEnded"
    assert ended.text == "Meeting ended after 13 min 20 s (participants: Ana Ruiz and Bo Chen)"
    assert ended.actor is not None and ended.actor.name == "Ana Ruiz"
    renamed = ev[f"teams:{CHAT}:{mid(17)}"]
    assert renamed.text == "Chat renamed to 'INC-2041 bridge (resolved)'"
    assert (
        renamed.attrs["conversation"] == "INC-2041 bridge"
        and renamed.attrs["conversation_type"] == "group"
    )
    assert ev[f"{KEY}:{mid(20)}"].attrs["conversation"] == "inc-2041-checkout"
    assert report.records == total_messages()
    assert report.records == len(events) + sum(report.skipped.values())


def test_cards_quotes_files_edits_and_deletions() -> None:
    events, report = read(tenant_docs())
    ev = by_key(events)
    card = ev[f"{KEY}:{mid(10)}"]
    assert (
        card.text == "Incident #4217 acknowledged by Bo Chen\nService: checkout-api\nUrgency: high"
    )
    quote = ev[f"{KEY}:{mid(12)}"]
    assert quote.text == "> Ana Ruiz: can you look at checkout?\nrollback done, errors dropping"
    assert quote.attrs["reactions"] == {"like": 1}
    assert ev[f"{KEY}:{mid(20)}"].text.endswith("\n[file: grafana-checkout.png]")
    assert ev[f"{KEY}:{mid(20)}"].attrs["files"] == ["grafana-checkout.png"]
    edited = ev[f"{KEY}:{mid(6)}"]
    assert edited.edited and edited.attrs["edited_at"] == stamp(7)
    assert f"{KEY}:{mid(9)}" not in ev  # deleted: counted, not shown
    assert report.skipped == {"deleted message (counted, not shown)": 1}


def test_events_are_utc_with_ids_left_to_the_timeline() -> None:
    events, _ = read(tenant_docs())
    assert all(
        e.at.utcoffset() is not None and e.at.utcoffset().total_seconds() == 0 for e in events
    )  # type: ignore[union-attr]
    assert all(e.source == "teams" and e.id == "" for e in events)


def test_the_same_message_in_two_bodies_keeps_the_newest_copy_in_either_order() -> None:
    old = message(6, user("bo"), "<p>pool exhausted on paymnts-db</p>")
    new = message(
        6,
        user("bo"),
        "<p>pool exhausted on payments-db</p>",
        lastEditedDateTime=stamp(7),
        lastModifiedDateTime=stamp(7),
    )
    for first, second in ((old, new), (new, old)):
        docs = [Doc("a.json", {"value": [first]}), Doc("b.json", {"value": [second]})]
        events, report = read(docs)
        assert [e.text for e in events] == ["pool exhausted on payments-db"]
        assert events[0].edited
        assert report.skipped == {
            "duplicate message (same conversation and id): the newest version is kept": 1
        }


def test_a_newer_deleted_copy_hides_the_message() -> None:
    said = message(9, user("cy"), "<p>oops wrong channel</p>")
    gone = message(9, user("cy"), "", deletedDateTime=stamp(10), lastModifiedDateTime=stamp(10))
    events, report = read([Doc("a.json", [said]), Doc("b.json", [gone])])
    assert events == []
    assert report.skipped == {
        "duplicate message (same conversation and id): the newest version is kept": 1,
        "deleted message (counted, not shown)": 1,
    }


def test_conversation_comes_from_the_page_context_then_the_folder() -> None:
    bare = {
        k: v
        for k, v in message(4, user("bo"), "hi").items()
        if k not in ("channelIdentity", "webUrl")
    }
    context = {
        "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#teams('{TEAM}')/channels('19%3Aother%40thread.tacv2')/messages",
        "value": [bare],
    }
    (event,) = read([Doc("x.json", context)])[0]
    assert event.key == f"teams:19:other@thread.tacv2:{mid(4)}" and event.attrs["team_id"] == TEAM
    (event,) = read([Doc("teams/inc-7/messages.json", [bare])])[0]
    assert event.key == f"teams:inc-7:{mid(4)}"  # the m365 CLI's output names no conversation


def test_replies_inherit_their_roots_conversation() -> None:
    root = {
        k: v
        for k, v in message(3, user("ana"), "root").items()
        if k not in ("channelIdentity", "webUrl")
    }
    reply = {
        k: v
        for k, v in message(4, user("bo"), "reply", reply_to=3).items()
        if k not in ("channelIdentity", "webUrl")
    }
    root["channelIdentity"] = {"teamId": TEAM, "channelId": CHANNEL}
    events, _ = read([Doc("x.json", [{**root, "replies": [reply]}])])
    assert {e.key for e in events} == {f"{KEY}:{mid(3)}", f"{KEY}:{mid(4)}"}


def test_names_and_emails_from_users_bodies_and_incident_yaml() -> None:
    page = {"value": [message(4, user("bo"), "looking")]}
    uid = USERS["bo"][0]
    users = {
        "value": [
            {
                "id": uid,
                "displayName": "Bo Chen",
                "mail": None,
                "userPrincipalName": "bchen@acme.onmicrosoft.com",
                "jobTitle": "DBA",
            }
        ]
    }
    (event,) = read([Doc("m.json", page), Doc("u.json", users)])[0]
    assert event.actor is not None and (event.actor.email, event.actor.title) == (
        "bchen@acme.onmicrosoft.com",
        "DBA",
    )
    people = {uid: {"name": "Bo C.", "email": "bo@acme.io"}}
    (event,) = read([Doc("m.json", page), Doc("u.json", users)], people=people)[0]
    assert event.actor is not None and (event.actor.name, event.actor.email) == (
        "Bo C.",
        "bo@acme.io",
    )


def test_orgid_placeholder_names_resolve_from_other_messages() -> None:
    ghost = message(
        4, {"user": {"id": USERS["bo"][0], "displayName": f"orgid:{USERS['bo'][0]}"}}, "hi"
    )
    named = message(5, user("bo"), "again")
    events, _ = read([Doc("a.json", [ghost, named])])
    assert {e.actor.name for e in events if e.actor} == {"Bo Chen"}


def test_teams_conversations_in_incident_yaml_select_channels() -> None:
    events, report = read(tenant_docs(), teams_conversations=["inc-2041-checkout"])
    assert {e.attrs["conversation_id"] for e in events} == {CHANNEL}
    assert report.skipped["conversation not selected"] == len(
        sample_tenant().chats[CHAT]["messages"]
    )


def test_invalid_records_name_file_and_record_or_are_counted() -> None:
    bad_time = message(4, user("bo"), "x", createdDateTime="2024-05-01 14:04")
    body = {"value": [message(3, user("ana"), "ok"), 42, bad_time]}
    with pytest.raises(BundleError) as info:
        read([Doc("teams/x.json", body)])
    assert info.value.path == "teams/x.json" and info.value.record == "value[1]"
    events, report = read([Doc("teams/x.json", body)], lenient=True)
    assert len(events) == 1 and report.records == 3
    assert (
        sum(n for reason, n in report.skipped.items() if reason.startswith("invalid message")) == 2
    )


def test_naive_times_take_the_incident_timezone() -> None:
    naive = message(4, user("bo"), "x", createdDateTime="2024-05-01T16:04:00")
    with pytest.raises(BundleError, match="no time zone"):
        read([Doc("x.json", [naive])])
    (event,) = read([Doc("x.json", [naive])], tz="Europe/Madrid")[0]
    assert event.at.isoformat() == "2024-05-01T14:04:00+00:00"


def test_graph_error_body_is_rejected() -> None:
    body = {
        "error": {
            "code": "Forbidden",
            "message": "Missing role permissions",
            "innerError": {"request-id": "1"},
        }
    }
    assert doc_shape(Doc("e.json", body)) == "error"
    with pytest.raises(BundleError, match="Microsoft Graph error response"):
        read([Doc("e.json", body)])
    _, report = read([Doc("e.json", body)], lenient=True)
    assert sum(report.skipped.values()) == 1


@pytest.mark.parametrize(
    "data",
    [
        {"value": []},  # an empty list says nothing about whose it is
        [{"type": "message", "ts": "1714572000.000100", "text": "slack"}],
        {
            "log_entries": [
                {"id": "R1", "type": "trigger_log_entry", "created_at": "2024-05-01T14:00:00Z"}
            ]
        },
        [
            {"id": "MSMjMCMjZDAw", "createdDateTime": "2021-09-17T06:09:24Z"}
        ],  # a Teams transcript list
        {"error": {"code": "x", "message": "no innerError: not Graph's"}},
        [{"at": "2024-05-01T14:00:00Z", "text": "generic"}],
        "WEBVTT\n\n00:00.000 --> 00:01.000\nhi",
    ],
)
def test_claims_only_teams_shapes(data: Any) -> None:
    assert not CONNECTOR.claims(Doc("x.json", data))


def test_empty_page_with_a_messages_context_is_claimed() -> None:
    body = {
        "@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#chats('{CHAT}')/messages",
        "value": [],
    }
    assert doc_shape(Doc("x.json", body)) == "messages"
    assert read([Doc("x.json", body)])[0] == []


# --- text -----------------------------------------------------------------------------------------


def _names(uid: str) -> str | None:
    return {"u1": "Jane Smith"}.get(uid)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>a</p><p>b</p>", "a\nb"),
        ("line<br>next", "line\nnext"),
        (
            'see <a href="https://grafana.acme.io/d/1">dashboard</a>',
            "see dashboard (https://grafana.acme.io/d/1)",
        ),
        ('<a href="https://x.io">https://x.io</a>', "https://x.io"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two"),
        ("1 &lt; 2 &amp;&amp; 3&nbsp;&gt; 2", "1 < 2 && 3 > 2"),
        ('<emoji id="smile" alt="😄" title="Smile"></emoji> ok', "😄 ok"),
        ('<img src="x" alt="image">', "[image]"),
        ('<at id="0">Jane</at> hi', "@Jane Smith hi"),
        ('<at id="9">Ghost</at> hi', "@Ghost hi"),
        ("<style>p{}</style><p>shown</p>", "shown"),
        ("<systemEventMessage/>", ""),
        ("<pre>kubectl rollout undo</pre>", "kubectl rollout undo"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    mentions = Mentions(
        [
            {
                "id": 0,
                "mentionText": "Jane",
                "mentioned": {"user": {"id": "u1", "displayName": "Jane"}},
            }
        ],
        _names,
    )
    assert html_text(html, mentions, {})[0] == expected


def test_mentions_of_channels_and_two_different_people_stay_apart() -> None:
    body = '<at id="0">Ana</at> <at id="1">Bo</at> and <at id="2">General</at>'
    mentions = [
        {"id": 0, "mentionText": "Ana", "mentioned": user("ana")},
        {"id": 1, "mentionText": "Bo", "mentioned": user("bo")},
        {
            "id": 2,
            "mentionText": "General",
            "mentioned": {
                "conversation": {
                    "id": CHANNEL,
                    "displayName": "General",
                    "conversationIdentityType": "channel",
                }
            },
        },
    ]
    msg = message(1, user("cy"), body, mentions=mentions)
    assert message_text(msg, lambda _: None) == "@Ana Ruiz @Bo Chen and @General"


def test_connector_cards_and_hero_cards() -> None:
    connector_card = {
        "id": "c1",
        "contentType": "application/vnd.microsoft.teams.card.o365connector",
        "content": json.dumps(
            {
                "title": "Deploy finished",
                "sections": [
                    {
                        "activityTitle": "payments-api v42",
                        "facts": [{"name": "Env", "value": "prod"}],
                    }
                ],
            }
        ),
    }
    hero = {
        "id": "h1",
        "contentType": "application/vnd.microsoft.card.hero",
        "content": {"title": "Runbook", "text": "Restart the pool"},
    }
    msg = message(1, None, "", content_type="text", attachments=[connector_card, hero])
    assert (
        message_text(msg, lambda _: None)
        == "Deploy finished\npayments-api v42\nEnv: prod\nRunbook\nRestart the pool"
    )


def test_a_card_title_repeated_by_the_subject_or_a_section_is_shown_once() -> None:
    """A bot posts with its card's title as the subject, and the card repeats the title as
    the summary and as a section's activityTitle: the event says it once."""
    card = {
        "id": "c1",
        "contentType": "application/vnd.microsoft.teams.card.o365connector",
        "content": json.dumps(
            {
                "title": "[FIRING] checkout 5xx > 2%",
                "summary": "[FIRING] checkout 5xx > 2%",
                "sections": [{"activityTitle": "[FIRING] checkout 5xx > 2%", "text": "p=0.031"}],
            }
        ),
    }
    msg = message(1, None, "", content_type="text", attachments=[card])
    msg["subject"] = "[FIRING] checkout 5xx > 2%"
    assert message_text(msg, lambda _: None) == "[FIRING] checkout 5xx > 2%\np=0.031"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PT59S", "59 s"),
        ("PT40M19.26S", "40 min 19 s"),
        ("PT1H2M", "1 h 2 min"),
        ("P1DT1H", "25 h"),
        ("PT0S", "0 s"),
        ("soon", None),
        ("P", None),
    ],
)
def test_durations(value: str, expected: str | None) -> None:
    assert duration_text(value) == expected


def test_unknown_system_events_read_as_their_type() -> None:
    detail = {
        "@odata.type": "#microsoft.graph.teamsAppInstalledEventMessageDetail",
        "teamsAppDisplayName": "Jira Cloud",
    }
    assert system_text(detail, lambda _: None) == (
        "teamsAppInstalled",
        "Teams app installed: Jira Cloud",
    )
    assert system_text(None, lambda _: None) == ("system", "System event")


# --- in a bundle ----------------------------------------------------------------------------------


def write_bundle(root: Path, docs: list[Doc]) -> Path:
    for doc in docs:
        path = root / doc.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc.data), encoding="utf-8")
    (root / "incident.yaml").write_text("id: INC-2041\n", encoding="utf-8")
    return root


def test_a_bundle_of_teams_bodies_loads_in_strict_mode_claimed_by_teams_alone(
    tmp_path: Path,
) -> None:
    bundle = write_bundle(tmp_path / "b", tenant_docs())
    raw = load_bundle(bundle, connectors=registry.connectors())
    assert [r.name for r in raw.reports] == ["teams"]
    assert not raw.bundle_report.skipped
    for doc in tenant_docs():
        assert [c.name for c in registry.connectors() if c.claims(doc)] == ["teams"]
    assert len(raw.events) == total_messages() - 1


def test_registered_with_roles_and_harvest_form() -> None:
    info = registry.source_info()["teams"]
    assert info.roles == frozenset({"chat"}) and not info.low_trust
    assert "chat:<chat-id>" in registry.connector_classes()["teams"].harvest_help


def test_source_docs_are_not_mutated() -> None:
    docs = tenant_docs()
    before = copy.deepcopy([d.data for d in docs])
    read(docs)
    assert [d.data for d in docs] == before
