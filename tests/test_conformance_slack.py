"""Slack file mode against real vendor samples in ../shared/fixtures/slack (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.slack import SlackConnector
from connectors.slack.read import doc_shape
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import IncidentMeta, SourceReport, TimelineEvent

SHARED = Path(__file__).parents[1].parent / "shared"
SLACK = SHARED / "fixtures" / "slack"
EXPORT = "export_rusq_slackdump"
CHANNEL_ID = "CO69735E8A"  # channels.json maps the folder B75B4C7 to this id

pytestmark = pytest.mark.skipif(not SLACK.is_dir(), reason="../shared/fixtures/slack is absent")


def doc(rel: str) -> Doc:
    path = SLACK / rel
    return Doc(rel=rel, data=json.loads(path.read_text(encoding="utf-8")), path=path)


def export_docs() -> list[Doc]:
    return [doc(p.relative_to(SLACK).as_posix()) for p in sorted((SLACK / EXPORT).rglob("*.json"))]


def read(
    docs: list[Doc], *, lenient: bool = False, **meta: Any
) -> tuple[list[TimelineEvent], SourceReport]:
    report = SourceReport(name="slack")
    ctx = ReadContext(
        bundle=SLACK, incident=IncidentMeta(id="conf", **meta), report=report, lenient=lenient
    )
    return list(SlackConnector().read_bundle(docs, ctx)), report


def raw_day_messages() -> list[dict[str, Any]]:
    return [m for p in sorted((SLACK / EXPORT).glob("*/*.json")) for m in json.loads(p.read_text())]


def test_every_sample_is_claimed_with_the_right_shape() -> None:
    expected = {
        f"{EXPORT}/channels.json": "channels",
        f"{EXPORT}/users.json": "users",
        f"{EXPORT}/dms.json": "empty",
        f"{EXPORT}/B75B4C7/2025-01-11.json": "messages",
        "export_rusq_slackdump_bot_message.json": "message",
        "rusq_slackdump_conversations.replies_thread.json": "messages",
        "python-slack-sdk_web_response_conversations_list.json": "api_channels",
        "webapi_conversations.history.openapi_example.json": "api_messages",
        "webapi_conversations.replies.openapi_example.json": "api_messages",
        "webapi_conversations.info.openapi_example.json": "api_channel",
        "webapi_conversations.list.openapi_example.json": "api_channels",
        "webapi_users.info.openapi_example.json": "api_user",
        "webapi_users.list.openapi_example.json": "api_users",
        "webapi_users.list.error_example.json": "api_error",
    }
    for rel, shape in expected.items():
        assert doc_shape(doc(rel)) == shape, rel
    every = [p.relative_to(SLACK).as_posix() for p in SLACK.rglob("*.json")]
    assert all(SlackConnector().claims(doc(rel)) for rel in every)


def test_export_directory() -> None:
    events, report = read(export_docs(), slack_workspace_url="https://acme.slack.com")
    raw = raw_day_messages()
    assert len(events) == len(raw) == 16 and report.records == 16
    assert report.skipped == {}
    ev = {e.key: e for e in events}
    assert all(k.startswith(f"slack:{CHANNEL_ID}:") for k in ev)
    assert {e.attrs["channel"] for e in events} == {"B75B4C7"}
    # Threads: every reply points at a root that is in the export.
    replies = [e for e in events if e.thread is not None]
    assert len(replies) == sum(1 for m in raw if m.get("thread_ts") not in (None, m["ts"]))
    assert all(r.thread in ev and r.parent == r.thread for r in replies)
    root = ev[f"slack:{CHANNEL_ID}:1736478630.905399"]
    assert root.attrs["reply_count"] == 2
    assert sum(1 for r in replies if r.thread == root.key) == 2
    # The bot post is flagged, its edit noted; the join is membership; the tombstone a note.
    bot = ev[f"slack:{CHANNEL_ID}:1737160363.583369"]
    assert (
        bot.kind == "bot_message" and bot.is_bot and bot.edited and bot.actor and bot.actor.is_bot
    )
    assert ev[f"slack:{CHANNEL_ID}:1736554636.807919"].kind == "membership"
    assert ev[f"slack:{CHANNEL_ID}:1736554828.343759"].kind == "note"
    # File shares carry the file titles; a share without text is still an event.
    no_text = ev[f"slack:{CHANNEL_ID}:1736582524.607359"]
    assert no_text.text.startswith("[file: zYgi8k4UZoOBsdzOLnUbwSR")
    # Every human author resolves through users.json to a name.
    users = {u["id"]: u for u in json.loads((SLACK / EXPORT / "users.json").read_text())}
    for e in events:
        assert e.actor is not None and e.actor.id in users and e.actor.name
    assert root.url == f"https://acme.slack.com/archives/{CHANNEL_ID}/p1736478630905399"
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_bot_message_sample() -> None:
    events, report = read([doc("export_rusq_slackdump_bot_message.json")])
    (event,) = events
    assert event.kind == "bot_message" and event.is_bot and event.edited
    assert event.text == "Some question?"
    assert event.actor is not None and event.actor.id == "BUEBX9AUR" and event.actor.is_bot
    assert report.skipped == {"no users.json: names unresolved": 1}


def test_bot_message_blocks_when_text_is_empty() -> None:
    sample = doc("export_rusq_slackdump_bot_message.json")
    sample.data = {**sample.data, "text": ""}
    (event,) = read([sample])[0]
    assert event.text.startswith("Poll title\n:one: this is one")  # bold markers removed
    assert "@U12345678" in event.text and "Created by @U12345678 with /poll" in event.text


def test_thread_replies_sample() -> None:
    events, _ = read([doc("rusq_slackdump_conversations.replies_thread.json")])
    assert len(events) == 2
    assert {e.thread for e in events} == {"slack:unknown:1736478630.905399"}
    assert [e.actor.id for e in events if e.actor] == ["U0887G31L03", "UHSD97ZA5"]


def test_web_api_history_and_replies() -> None:
    history, _ = read([doc("webapi_conversations.history.openapi_example.json")])
    assert [e.text for e in history] == [
        "I find you punny and would like to smell your nose letter",
        "What, you want to smell my shoes better?",
    ]
    replies, _ = read([doc("webapi_conversations.replies.openapi_example.json")])
    roots = [e for e in replies if e.thread is None]
    assert len(replies) == 4 and len(roots) == 1 and roots[0].attrs["reply_count"] == 3
    assert all(e.thread == roots[0].key for e in replies if e is not roots[0])


def test_web_api_users_resolve_authors() -> None:
    users_list = doc("webapi_users.list.openapi_example.json")
    body = {
        "ok": True,
        "messages": [
            {
                "type": "message",
                "ts": "1512085950.000216",
                "user": "W07QCRPA4",
                "text": "hi <@W012A3CDE>",
            }
        ],
    }
    events, _ = read([users_list, Doc(rel="general/history.json", data=body)])
    (event,) = events
    assert event.actor is not None
    assert (event.actor.name, event.actor.email, event.actor.title) == (
        "Glinda Southgood",
        "glenda@south.oz.coven",
        "Glinda the Good",
    )
    assert event.text == "hi @spengler"
    # The history example's authors are not in the users.list example: strict mode says so.
    with pytest.raises(BundleError, match="not in users.json"):
        read([users_list, doc("webapi_conversations.history.openapi_example.json")])


def test_channel_bodies_name_channels() -> None:
    info = doc("webapi_conversations.info.openapi_example.json")
    body = {
        "ok": True,
        "messages": [{"type": "message", "ts": "1512085950.000216", "text": "<#C012AB3CD>"}],
    }
    events, _ = read([info, Doc(rel="general/history.json", data=body)])
    (event,) = events
    assert (
        event.key == "slack:C012AB3CD:1512085950.000216"
    )  # folder "general" is the channel's name
    assert event.text == "#general"


def test_error_examples_are_reported() -> None:
    for path in sorted(SLACK.glob("*.error_example.json")):
        sample = doc(path.name)
        with pytest.raises(BundleError, match=str(sample.data["error"])):
            read([sample])


def test_no_sample_is_taken_for_a_non_message_export_file() -> None:
    aside = {"integration_logs", "canvases", "content_flags", "api_integration_logs"}
    for path in sorted((SHARED / "fixtures").rglob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert doc_shape(Doc(rel=path.name, data=data)) not in aside, path
        # integration logs are recognized by content, whatever the file is called
        assert doc_shape(Doc(rel="integration_logs.json", data=data)) != "integration_logs", path
