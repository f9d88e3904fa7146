"""Teams file mode against every licensed sample in tests/fixtures/microsoft_teams (MANIFEST.md):
Graph documentation examples and the CLI for Microsoft 365's specs and documented output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.teams import TeamsConnector
from connectors.teams.read import doc_shape
from retro import registry
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import IncidentMeta, SourceReport, TimelineEvent

FIXTURES = Path(__file__).parent / "fixtures" / "microsoft_teams"
CONNECTOR = TeamsConnector()
SHAPES = {
    "cli-m365-docs_channel_message_get_edited_output.json": "message",
    "cli-m365-docs_channel_message_replies_output.json": "messages",
    "cli-m365-docs_channel_messages_edited_output.json": "messages",
    "cli-m365-docs_chat_messages_output.json": "messages",
    "cli-m365_channel_message_get.json": "message",
    "cli-m365_channel_message_replies.json": "messages",
    "cli-m365_channel_messages_page1_nextLink_bot.json": "messages",
    "cli-m365_channel_messages_page2.json": "messages",
    "cli-m365_chat_messages_value_array_system_event.json": "messages",
    "cli-m365_chats_value_array.json": "chats",
    "graphdocs2021_v1_channel_message_replies_list.json": "messages",
    "graphdocs2021_v1_channel_message_reply_get.json": "message",
    "graphdocs2021_v1_channel_messages_delta_last_page_deltaLink.json": "messages",
    "graphdocs2021_v1_channel_messages_delta_page1_nextLink.json": "messages",
    "graphdocs2021_v1_channel_messages_list_mention_nextLink.json": "messages",
    "graphdocs2021_v1_chat_message_get.json": "message",
    "graphdocs2021_v1_chat_messages_list_nextLink.json": "messages",
    "graphdocs_system_event_call_ended_channel.json": "message",
    "graphdocs_system_event_call_recording_channel.json": "message",
    "graphdocs_system_event_call_transcript_chat.json": "message",
    "graphdocs_system_event_members_added_channel.json": "message",
    "graphdocs_system_event_members_joined_meeting_chat.json": "message",
    "graphdocs_v1_channel_messages_expand_replies_nextLink.json": "messages",
}
MALFORMED = "graphdocs_system_event_call_transcript_chat.json"  # "2021-03-1706:47:05.123Z" upstream


def doc(name: str) -> Doc:
    path = FIXTURES / name
    return Doc(rel=name, data=json.loads(path.read_text(encoding="utf-8")), path=path)


def read(names: list[str], *, lenient: bool = False) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="teams")
    ctx = ReadContext(
        bundle=FIXTURES, incident=IncidentMeta(id="conf"), report=report, lenient=lenient
    )
    return list(CONNECTOR.read_bundle([doc(n) for n in names], ctx)), report


def one(name: str) -> TimelineEvent:
    (event,) = read([name])[0]
    return event


def test_every_sample_is_known_and_claimed_by_teams_alone() -> None:
    every = sorted(p.name for p in FIXTURES.glob("*.json"))
    assert every == sorted(SHAPES)
    for name, shape in SHAPES.items():
        assert doc_shape(doc(name)) == shape, name
        assert [c.name for c in registry.connectors() if c.claims(doc(name))] == ["teams"], name


@pytest.mark.parametrize("name", sorted(set(SHAPES) - {MALFORMED}))
def test_every_sample_reads_strictly(name: str) -> None:
    events, report = read([name])
    assert report.records == len(events) + sum(report.skipped.values())
    assert all(e.text for e in events) or SHAPES[name] == "chats"


def test_the_malformed_sample_is_one_clear_error_or_one_counted_skip() -> None:
    with pytest.raises(BundleError) as info:
        read([MALFORMED])
    assert "createdDateTime '2021-03-1706:47:05.123Z' is not a valid timestamp" in str(info.value)
    events, report = read([MALFORMED], lenient=True)
    assert events == [] and report.records == 1 and sum(report.skipped.values()) == 1


def test_all_samples_together() -> None:
    events, report = read(sorted(SHAPES), lenient=True)
    keys = [e.key for e in events]
    assert len(keys) == len(set(keys))
    assert report.records == len(events) + sum(report.skipped.values())
    # Graph's docs reuse ids across examples: copies of one message merge into one event.
    assert (
        report.skipped["duplicate message (same conversation and id): the newest version is kept"]
        >= 1
    )


def test_mention_resolved_through_mentions() -> None:
    events, _ = read(["graphdocs2021_v1_channel_messages_list_mention_nextLink.json"])
    hello = next(e for e in events if e.text.startswith("Hello World"))
    assert hello.text == "Hello World @Jane Smith" and hello.attrs["mentions"] == ["Jane Smith"]
    assert hello.attrs["team_id"] == "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b"
    images = next(e for e in events if e is not hello)
    assert images.text == "[image]\n[image]"


def test_bot_message_from_an_application() -> None:
    events, _ = read(["cli-m365_channel_messages_page1_nextLink_bot.json"])
    bot = next(e for e in events if e.is_bot)
    assert bot.kind == "bot_message" and bot.text == "Welcome!"
    assert bot.actor is not None and bot.actor.name == "POITBot" and bot.actor.is_bot
    # The next link names the channel, so both messages get its id.
    assert {e.attrs["conversation_id"] for e in events} == {
        "19:eb30973b42a847a2a1df92d91e37c76a@thread.skype"
    }


def test_orgid_placeholder_resolves_across_pages() -> None:
    events, _ = read(
        [
            "cli-m365_channel_messages_page1_nextLink_bot.json",
            "cli-m365_channel_messages_page2.json",
        ]
    )
    names = {e.actor.name for e in events if e.actor and not e.actor.is_bot}
    assert names == {"Balamurugan Kailasam"}


def test_edits_are_marked() -> None:
    event = one("cli-m365-docs_channel_message_get_edited_output.json")
    assert event.edited and event.attrs["edited_at"] == "2022-10-26T15:53:02.288Z"
    assert event.text == "Second message Title\nsecond message!"  # the subject comes first
    assert not one("cli-m365-docs_chat_messages_output.json").edited


def test_replies_point_at_their_root() -> None:
    events, _ = read(["graphdocs_v1_channel_messages_expand_replies_nextLink.json"])
    root = next(e for e in events if e.thread is None)
    replies = [e for e in events if e.thread is not None]
    assert [r.text for r in sorted(replies, key=lambda e: e.at)] == ["Reply1", "Reply2", "Reply3"]
    assert {r.thread for r in replies} == {root.key}


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        (
            "graphdocs_system_event_call_ended_channel.json",
            "note",
            "Meeting ended after 59 s (participants: Adele Vance)",
        ),
        (
            "graphdocs_system_event_call_recording_channel.json",
            "note",
            "Call recording 'Meeting Recording.mp4' (40 min 19 s, success)",
        ),
        (
            "graphdocs_system_event_members_added_channel.json",
            "membership",
            "Added to the conversation: 2 members",
        ),
        (
            "graphdocs_system_event_members_joined_meeting_chat.json",
            "membership",
            "Joined: Alex (Guest)",
        ),
    ],
)
def test_system_events(name: str, kind: str, text: str) -> None:
    event = one(name)
    assert (event.kind, event.text) == (kind, text)
    assert event.attrs["message_type"] == "systemEventMessage"


def test_chat_rename_with_unknown_future_value() -> None:
    events, _ = read(["cli-m365_chat_messages_value_array_system_event.json"])
    renamed = next(e for e in events if e.kind == "note")
    assert renamed.text == "Chat renamed to 'Graph Members'"
    assert renamed.attrs["message_type"] == "unknownFutureValue"
    assert renamed.actor is not None and renamed.actor.id == "1fb8890f-423e-4154-8fbf-db6809bc8756"


def test_chats_list_names_chat_conversations() -> None:
    data: Any = json.loads((FIXTURES / "cli-m365_chats_value_array.json").read_text())
    chat_id = data[1]["id"]
    message = json.loads((FIXTURES / "cli-m365-docs_chat_messages_output.json").read_text())[0]
    extra = Doc("extra.json", [{**message, "chatId": chat_id}])
    report = SourceReport(name="teams")
    ctx = ReadContext(bundle=FIXTURES, incident=IncidentMeta(id="conf"), report=report)
    (event,) = CONNECTOR.read_bundle([doc("cli-m365_chats_value_array.json"), extra], ctx)
    assert (event.attrs["conversation"], event.attrs["conversation_type"]) == (
        "Group chat sample",
        "group",
    )
