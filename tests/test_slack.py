"""Slack connector: file mode over a hand-written export, live mode against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.slack import SlackConnector
from connectors.slack.live import SlackConfig
from connectors.slack.read import doc_shape
from connectors.slack.text import render_mrkdwn
from retro import registry
from retro.connector import Doc, IncidentRef
from retro.errors import BundleError, ConnectorError, MissingCredential
from retro.models import SourceReport, TimelineEvent
from retro.timeline.bundle import load as load_bundle
from tests.emulators.slack import ALL_SCOPES, SlackEmulator
from tests.slack_workspace import (
    INC,
    T0,
    TOKEN,
    by_key,
    channels,
    docs_from,
    export_messages,
    incident_messages,
    key,
    msg,
    random_messages,
    read,
    ts,
    users,
    workspace,
    write_export,
)

# --- file mode ----------------------------------------------------------------------------------


def test_export_kinds_threads_and_actors(tmp_path: Path) -> None:
    events, report = read(docs_from(write_export(tmp_path / "slack")))
    ev = by_key(events)
    assert len(ev) == len(events)  # one event per message, even with the edit folded in
    assert ev[key(0)].kind == "bot_message" and ev[key(0)].is_bot
    assert ev[key(0)].actor is not None and ev[key(0)].actor.name == "Grafana"
    assert ev[key(90)].kind == "membership"
    assert ev[key(30)].kind == "note" and ev[key(30)].attrs["subtype"] == "channel_topic"
    root = ev[key(60)]
    assert root.thread is None and root.attrs["reply_count"] == 2
    assert root.attrs["reactions"] == {"eyes": 2}
    for reply in (key(120), key(36060)):
        assert ev[reply].thread == key(60) and ev[reply].parent == key(60)
    alice = root.actor
    assert alice is not None
    assert (alice.id, alice.name, alice.email, alice.title) == (
        "U01ALICE",
        "Alice Ng",
        "alice@acme.io",
        "SRE",
    )
    slackbot = ev[key(370)]
    assert slackbot.is_bot and slackbot.kind == "bot_message"
    assert slackbot.actor is not None and slackbot.actor.name == "Slackbot"
    assert report.records == len(export_messages()) + len(random_messages())
    assert report.skipped["message_deleted: deletion notices are not events"] == 1
    assert ev[key(0)].at == datetime.fromtimestamp(T0 + 0.0001, tz=UTC)


def test_files_edits_and_message_changed(tmp_path: Path) -> None:
    events, report = read(docs_from(write_export(tmp_path / "slack")))
    ev = by_key(events)
    share = ev[key(200)]
    assert share.kind == "message" and "[file: checkout errors]" in share.text
    assert share.text.startswith("logs attached") and share.attrs["files"] == ["checkout errors"]
    assert ev[key(300)].edited and ev[key(300)].attrs["edited_ts"] == ts(400)
    changed = ev[key(320)]
    assert changed.text == "rollback started" and changed.edited
    assert report.skipped["message_changed: folded into the original message"] == 1


def test_message_changed_wins_in_any_order(tmp_path: Path) -> None:
    original = msg(320, "U02BOB", "rollback startd")
    changed = {"type": "message", "user": "U02BOB", "text": "rollback started", "ts": ts(320)}
    edit = {"type": "message", "subtype": "message_changed", "ts": ts(330), "message": changed}
    for items in ([original, edit], [edit, original]):
        docs = [
            Doc(rel="slack/users.json", data=users()),
            Doc(rel="slack/inc/2024-05-01.json", data=items),
        ]
        events, _ = read(docs)
        assert [e.text for e in events] == ["rollback started"]


def test_mrkdwn_is_rendered_with_names(tmp_path: Path) -> None:
    ev = by_key(read(docs_from(write_export(tmp_path / "slack")))[0])
    assert (
        ev[key(60)].text
        == "@here checkout is 500ing, see dashboard (https://grafana.acme.io/d/1) & #random"
    )
    assert ev[key(120)].text == "@alice looking, see #inc-42-checkout"
    assert ev[key(90)].text == "@Carol Diaz has joined the channel"  # no display name: real name
    assert ev[key(300)].text == "mitigated, mail oncall@acme.io"
    assert ev[key(380)].text == "@sre-team paged at 2pm"
    # Empty text: the bot's attachment and the rich_text block carry the message.
    assert (
        ev[key(0)].text
        == "[FIRING:1] CheckoutErrors\nerror rate > 5% on checkout (https://grafana.acme.io/d/1)"
    )
    assert ev[key(360)].text == "see @bobby and status (https://status.acme.io)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<@U1>", "@Ann"),
        ("<@U9|old>", "@old"),
        ("<@U9>", "@U9"),
        ("<#C1|ops>", "#ops"),
        ("<#C1>", "#general"),
        ("<https://x.io/a?b=1&amp;c=2|label>", "label (https://x.io/a?b=1&c=2)"),
        ("<https://x.io>", "https://x.io"),
        ("<https://x.io|https://x.io>", "https://x.io"),
        ("<mailto:a@b.io|a@b.io>", "a@b.io"),
        ("<mailto:a@b.io|Ann>", "Ann (a@b.io)"),
        ("<!here> <!channel> <!everyone|everyone>", "@here @channel @everyone"),
        ("<!subteam^S1|@sre>", "@sre"),
        ("<!subteam^S1>", "@S1"),
        ("<!date^1714572000^{date_short}|May 1>", "May 1"),
        ("<!date^1714572000^{date_short}>", "2024-05-01 14:00 UTC"),
        ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
        ("&amp;lt;", "&lt;"),
        ("", ""),
    ],
)
def test_render_mrkdwn(raw: str, expected: str) -> None:
    names = {"U1": "Ann", "C1": "general"}
    assert render_mrkdwn(raw, user=names.get, channel=names.get) == expected


def test_permalinks_need_the_workspace_url(tmp_path: Path) -> None:
    docs = docs_from(write_export(tmp_path / "slack"))
    assert all(e.url is None for e in read(docs)[0])
    ev = by_key(read(docs, slack_workspace_url="https://acme.slack.com/")[0])
    assert ev[key(60)].url == f"https://acme.slack.com/archives/{INC}/p{T0 + 60}000100"
    assert ev[key(120)].url == (
        f"https://acme.slack.com/archives/{INC}/p{T0 + 120}000100?thread_ts={ts(60)}&cid={INC}"
    )


def test_channel_filter_counts_other_channels(tmp_path: Path) -> None:
    docs = docs_from(write_export(tmp_path / "slack"))
    for selector in ("#inc-42-checkout", "inc-42-checkout", INC):
        events, report = read(docs, slack_channels=[selector])
        assert {e.attrs["channel_id"] for e in events} == {INC}
        assert report.skipped["channel not selected"] == len(random_messages())
    events, _ = read(docs)
    assert {e.attrs["channel"] for e in events} == {"inc-42-checkout", "random"}


def test_unknown_user_is_an_error_in_strict_mode(tmp_path: Path) -> None:
    messages = [msg(10, "U01ALICE", "hi"), msg(20, "U0GHOST", "boo")]
    docs = docs_from(write_export(tmp_path / "slack", messages))
    with pytest.raises(BundleError) as info:
        read(docs)
    err = info.value
    assert err.path == "inc-42-checkout/2024-05-01.json" and err.record == "[1]"
    assert "user U0GHOST is not in users.json" in err.message
    assert err.hint is not None and "people:" in err.hint
    events, report = read(docs, lenient=True)
    assert key(20) not in by_key(events) and key(10) in by_key(events)
    assert sum(n for reason, n in report.skipped.items() if "U0GHOST" in reason) == 1


def test_people_map_and_embedded_profiles_resolve_ids(tmp_path: Path) -> None:
    embedded = msg(
        30,
        "U0GUEST",
        "from a shared channel",
        user_profile={"real_name": "Gus Guest", "display_name": "gus"},
    )
    messages = [msg(20, "U0GHOST", "boo <@U0GUEST>"), embedded]
    docs = docs_from(write_export(tmp_path / "slack", messages))
    people = {"U0GHOST": {"name": "Gail Host", "email": "gail@acme.io", "title": "Contractor"}}
    ev = by_key(read(docs, people=people)[0])
    ghost = ev[key(20)].actor
    assert ghost is not None and (ghost.name, ghost.email, ghost.title) == (
        "Gail Host",
        "gail@acme.io",
        "Contractor",
    )
    assert ev[key(20)].text == "boo @gus"
    assert ev[key(30)].actor is not None and ev[key(30)].actor.name == "Gus Guest"


def test_without_users_json_names_come_from_messages(tmp_path: Path) -> None:
    embedded = msg(30, "U0GUEST", "hello", user_profile={"real_name": "Gus Guest"})
    docs = docs_from(
        write_export(tmp_path / "slack", [msg(20, "U0NOBODY", "hi"), embedded], with_users=False)
    )
    events, report = read(docs)
    ev = by_key(events)
    assert report.skipped["no users.json: names unresolved"] == 1
    assert ev[key(20)].actor is not None and ev[key(20)].actor.id == "U0NOBODY"
    assert ev[key(20)].actor.name is None
    assert ev[key(30)].actor is not None and ev[key(30)].actor.name == "Gus Guest"


def test_web_api_bodies_are_read(tmp_path: Path) -> None:
    history = {
        "ok": True,
        "messages": [msg(60, "U01ALICE", "root", reply_count=1, thread_ts=ts(60), channel=INC)],
        "has_more": False,
    }
    replies = {
        "ok": True,
        "messages": [
            msg(60, "U01ALICE", "root", thread_ts=ts(60)),
            msg(70, "U02BOB", "reply", thread_ts=ts(60)),
        ],
    }
    docs = [
        Doc(rel="slack/users.list.json", data={"ok": True, "members": users()[:2]}),
        Doc(rel="slack/info.json", data={"ok": True, "channel": channels()[0]}),
        Doc(rel="slack/history.json", data=history),
        Doc(rel="slack/inc-42-checkout/replies.json", data=replies),
    ]
    assert [doc_shape(d) for d in docs] == [
        "api_users",
        "api_channel",
        "api_messages",
        "api_messages",
    ]
    events, report = read(docs)
    ev = by_key(events)
    assert set(ev) == {key(60), key(70)}  # the root is in both bodies: one event
    assert ev[key(70)].thread == key(60) and ev[key(70)].provenance.record == "messages[1]"
    assert report.skipped["duplicate message (same channel and ts)"] == 1


def test_error_bodies_are_rejected(tmp_path: Path) -> None:
    docs = [Doc(rel="slack/history.json", data={"ok": False, "error": "not_in_channel"})]
    with pytest.raises(BundleError, match="not_in_channel"):
        read(docs)
    _, report = read(docs, lenient=True)
    assert sum(report.skipped.values()) == 1


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"type": "message", "user": "U01ALICE", "text": "no ts"}, "is not a Slack timestamp"),
        ({"type": "message", "user": "U01ALICE", "ts": "yesterday"}, "is not a Slack timestamp"),
        ({"type": "message", "user": "U01ALICE", "ts": 1714572000.1}, "is not a Slack timestamp"),
        ("just a string", "message is not a JSON object"),
        (
            {"type": "message", "subtype": "message_changed", "ts": ts(5)},
            "message_changed has no message",
        ),
    ],
)
def test_malformed_messages(item: Any, problem: str) -> None:
    good = msg(10, "U01ALICE", "fine")
    docs = [
        Doc(rel="slack/users.json", data=users()),
        Doc(rel="slack/inc/2024-05-01.json", data=[good, item]),
    ]
    with pytest.raises(BundleError, match=problem) as info:
        read(docs)
    assert info.value.record == "[1]" and info.value.hint
    events, report = read(docs, lenient=True)
    assert [e.text for e in events] == ["fine"] and sum(report.skipped.values()) == 1


def test_bad_user_record_is_reported() -> None:
    docs = [Doc(rel="slack/users.json", data=[*users(), {"id": "U0BAD"}])]
    assert doc_shape(docs[0]) == "users"  # only the first items are sampled
    with pytest.raises(BundleError, match="user record"):
        read(docs)


@pytest.mark.parametrize(
    ("rel", "data"),
    [
        ("x.json", None),
        ("x.json", 42),
        ("x.json", [1, 2]),
        ("x.json", []),
        ("x.json", {"ok": True, "self": {"id": "U1"}}),
        ("x.json", {"messages": []}),
        ("x.json", [{"id": "PXYZ", "created": "2024-05-01", "status": "triggered"}]),
        ("x.json", [{"type": "message", "text": "no ts anywhere"}]),
        ("x.json", [{"ts": "1714572000.1", "type": "alert"}]),
        (
            "log_entries.json",
            [{"id": "R1", "type": "trigger_log_entry", "created_at": "2024-05-01T14:00:00Z"}],
        ),
    ],
)
def test_claims_is_precise(rel: str, data: Any) -> None:
    assert SlackConnector().claims(Doc(rel=rel, data=data)) is False


def test_claims_empty_export_lists_and_csv() -> None:
    assert SlackConnector().claims(Doc(rel="slack/dms.json", data=[]))
    assert not SlackConnector().claims(Doc(rel="slack/users.csv", data=users(), fmt="csv"))


INTEGRATION_LOGS = [
    {
        "service_id": "1234567890",
        "service_type": "Google Drive",
        "user_id": "U01ALICE",
        "user_name": "alice",
        "channel": "inc-42-checkout",
        "date": "1714570000",
        "change_type": "added",
        "scope": "incoming-webhook",
    },
    {
        "app_id": "A0GRAFANA",
        "app_type": "Grafana",
        "user_id": "U02BOB",
        "user_name": "bob",
        "date": "1714571000",
        "change_type": "disabled",
        "reason": "user",
        "scope": "chat:write",
    },
]
CANVASES = [{"id": "F07CANVAS1", "title": "Runbook", "url_private": "https://x.slack.com/docs/F1"}]
CONTENT_FLAGS = [{"id": "Fl01", "channel": "C01INC42", "ts": "1714571000.000100"}]


def write_aside_files(root: Path) -> None:
    """The non-message files a real workspace export also holds."""
    for name, data in (
        ("integration_logs.json", INTEGRATION_LOGS),
        ("canvases.json", CANVASES),
        ("content_flags.json", CONTENT_FLAGS),
    ):
        (root / name).write_text(json.dumps(data))


def test_non_message_export_files_are_claimed_and_counted_as_skipped(tmp_path: Path) -> None:
    plain, plain_report = read(docs_from(write_export(tmp_path / "plain")))
    root = write_export(tmp_path / "slack")
    write_aside_files(root)
    docs = docs_from(root)
    assert all(SlackConnector().claims(d) for d in docs)
    events, report = read(docs)
    assert [e.model_dump() for e in events] == [e.model_dump() for e in plain]
    assert report.records == plain_report.records + 4
    assert report.skipped["integration_logs.json: app activity log, not timeline data"] == 2
    assert report.skipped["canvases.json: canvas links, not timeline data"] == 1
    assert report.skipped["content_flags.json: content flags, not timeline data"] == 1
    assert {"integration_logs.json", "canvases.json", "content_flags.json"} <= set(report.files)


def test_integration_logs_api_body_and_empty_export_files_are_claimed() -> None:
    body = {"ok": True, "logs": INTEGRATION_LOGS, "paging": {"count": 100, "total": 2}}
    assert doc_shape(Doc(rel="team.integrationLogs.json", data=body)) == "api_integration_logs"
    assert doc_shape(Doc(rel="a/integration_logs.json", data=INTEGRATION_LOGS)) == (
        "integration_logs"
    )
    for name in ("integration_logs.json", "canvases.json", "content_flags.json"):
        assert doc_shape(Doc(rel=f"slack/{name}", data=[])) == "empty"
    _, report = read([Doc(rel="logs.json", data=body)])
    assert report.skipped == {"integration_logs.json: app activity log, not timeline data": 2}


@pytest.mark.parametrize(
    ("rel", "data"),
    [
        ("integration_logs.json", [{"change_type": "added", "date": "1714570000"}]),
        ("integration_logs.json", [*INTEGRATION_LOGS, "not a log"]),
        ("integration_logs.json", [{"anything": 1}]),
        ("x.json", CANVASES),
        ("x.json", CONTENT_FLAGS),
        ("canvases.json", ["F07CANVAS1"]),
        ("content_flags.json", {"flags": CONTENT_FLAGS}),
        ("x.json", {"ok": True, "logs": [{"change_type": "added"}]}),
    ],
)
def test_non_message_export_files_are_claimed_only_in_their_shapes(rel: str, data: Any) -> None:
    assert not SlackConnector().claims(Doc(rel=rel, data=data))


def test_strict_bundle_with_a_full_slack_export_loads(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    write_aside_files(write_export(bundle / "slack"))
    (bundle / "incident.yaml").write_text("id: INC-42\n")
    raw = load_bundle(bundle, connectors=registry.connectors())
    assert not raw.bundle_report.skipped
    (slack,) = raw.reports
    assert slack.skipped["canvases.json: canvas links, not timeline data"] == 1
    for data in (INTEGRATION_LOGS, CANVASES, CONTENT_FLAGS):
        doc = Doc(rel="slack/canvases.json", data=data)
        claimants = [c.name for c in registry.connectors() if c.claims(doc)]
        assert claimants == ["slack"]


def test_event_times_are_utc_and_ids_are_left_to_the_timeline(tmp_path: Path) -> None:
    events, _ = read(docs_from(write_export(tmp_path / "slack")))
    assert all(e.at.tzinfo is not None and e.at.utcoffset() == UTC.utcoffset(None) for e in events)
    assert all(e.source == "slack" and e.id == "" for e in events)


# --- live mode ----------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(workspace(), token=TOKEN)
    with emulator:
        yield emulator


def config(emu: SlackEmulator, **overrides: Any) -> SlackConfig:
    values: dict[str, Any] = {
        "token": SecretStr(TOKEN),
        "base_url": emu.api_url,
        "retry_backoff": 0.01,
        "max_retries": 3,
    }
    return SlackConfig(**{**values, **overrides})


def ref(*channels_: str, **extra: Any) -> IncidentRef:
    return IncidentRef(
        incident_id="INC-42", targets={"slack": list(channels_ or ["inc-42-checkout"])}, **extra
    )


def harvest(emu: SlackEmulator, out: Path, **cfg: Any) -> SourceReport:
    return SlackConnector().harvest(ref(), out, config(emu, **cfg))


def summary(events: list[TimelineEvent]) -> set[tuple[Any, ...]]:
    return {
        (e.key, e.kind, e.text, e.thread, e.actor.id if e.actor else None, e.is_bot) for e in events
    }


def test_harvest_round_trips_the_emulator_data(emu: SlackEmulator, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int | None]] = []
    report = SlackConnector().harvest(ref(), tmp_path, config(emu), lambda *a: seen.append(a))
    assert report.status == "ok" and report.records == len(incident_messages())
    assert sorted(report.files) == [
        "slack/channels.json",
        "slack/inc-42-checkout/2024-05-01.json",
        "slack/inc-42-checkout/2024-05-02.json",
        "slack/users.json",
    ]
    docs = docs_from(tmp_path / "slack", tmp_path)
    assert all(SlackConnector().claims(d) for d in docs)
    events, read_report = read(docs)
    # The harvest reads back exactly as the emulator's own messages do as a hand-made export.
    expected_root = tmp_path / "expected" / "slack"
    write_export(expected_root, incident_messages())
    expected = [e for e in read(docs_from(expected_root))[0] if e.attrs["channel_id"] == INC]
    assert summary(events) == summary(expected)
    assert {e.key for e in events} == {f"slack:{INC}:{m['ts']}" for m in incident_messages()}
    assert by_key(events)[key(60)].attrs["reply_count"] == 2
    assert read_report.skipped == {}
    day = json.loads((tmp_path / "slack/inc-42-checkout/2024-05-01.json").read_text())
    assert [m["ts"] for m in day] == sorted(m["ts"] for m in day)  # oldest first
    assert {u["id"] for u in json.loads((tmp_path / "slack/users.json").read_text())} == {
        "U01ALICE",
        "U02BOB",
        "U03CAROL",
    }
    assert report.skipped == {
        "users.info: user not found (names come from the messages)": 1
    }  # USLACKBOT
    assert any(label.endswith("history") for label, _, _ in seen)


def test_harvest_paginates_with_small_pages(emu: SlackEmulator, tmp_path: Path) -> None:
    big = harvest(emu, tmp_path / "big")
    calls_big = dict(emu.calls)
    emu.calls.clear()
    small = harvest(emu, tmp_path / "small", page_size=1)
    assert emu.calls["conversations.history"] > calls_big["conversations.history"]
    assert emu.calls["conversations.history"] == len(
        [m for m in incident_messages() if m.get("thread_ts") in (None, m["ts"])]
    )
    assert emu.calls["conversations.replies"] == 2  # two replies, one per page
    a = read(docs_from(tmp_path / "big" / "slack", tmp_path / "big"))[0]
    b = read(docs_from(tmp_path / "small" / "slack", tmp_path / "small"))[0]
    assert summary(a) == summary(b) and big.records == small.records


def test_harvest_by_channel_id_and_names_across_pages(emu: SlackEmulator, tmp_path: Path) -> None:
    report = SlackConnector().harvest(ref(INC, "#random"), tmp_path, config(emu, page_size=1))
    assert report.records == len(incident_messages()) + len(random_messages())
    assert emu.calls["conversations.list"] == 2  # #random is the second channel: two pages of one


def test_rate_limits_are_retried_without_loss_or_duplicates(
    emu: SlackEmulator, tmp_path: Path
) -> None:
    emu.fail_after(
        "conversations.history",
        2,
        status=429,
        headers={"Retry-After": "0"},
        body={"ok": False, "error": "ratelimited"},
    )
    emu.fail_after("conversations.replies", 1, status=429, headers={"Retry-After": "0"})
    emu.inject("^/api/users.info$", status=500, body={"ok": False, "error": "fatal_error"})
    report = harvest(emu, tmp_path, page_size=2)
    statuses = [r.path for r in emu.log]
    assert statuses.count("/api/conversations.history") == emu.calls["conversations.history"] + 1
    assert statuses.count("/api/users.info") == emu.calls["users.info"] + 1
    written = [
        m["ts"]
        for f in sorted((tmp_path / "slack" / "inc-42-checkout").glob("*.json"))
        for m in json.loads(f.read_text())
    ]
    assert sorted(written) == sorted(m["ts"] for m in incident_messages())  # nothing lost or twice
    assert report.records == len(incident_messages())


def test_rate_limit_that_never_ends_is_a_connector_error(
    emu: SlackEmulator, tmp_path: Path
) -> None:
    emu.inject("^/api/conversations.info$", status=429, headers={"Retry-After": "0"}, times=3)
    with pytest.raises(ConnectorError, match="rate limited"):
        harvest(emu, tmp_path, max_retries=1)


def test_server_errors_after_retries(emu: SlackEmulator, tmp_path: Path) -> None:
    emu.inject("^/api/conversations.history$", status=503, body="upstream down", times=5)
    with pytest.raises(ConnectorError, match="HTTP 503") as info:
        harvest(emu, tmp_path, max_retries=2)
    assert info.value.source == "slack"


def test_malformed_body_is_a_connector_error(emu: SlackEmulator, tmp_path: Path) -> None:
    # One HTML page is retried (tests/test_faults.py); one on every attempt is an error.
    emu.inject("^/api/conversations.history$", status=200, raw=b"<html>oops</html>", times=4)
    with pytest.raises(ConnectorError, match="malformed response"):
        harvest(emu, tmp_path)
    emu.inject("^/api/conversations.history$", status=200, body={"ok": True, "messages": "nope"})
    with pytest.raises(ConnectorError, match="no `messages` list"):
        harvest(emu, tmp_path)


def test_invalid_token_and_missing_token(emu: SlackEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="invalid_auth") as info:
        harvest(emu, tmp_path, token=SecretStr("xoxb-wrong"))
    assert "SLACK_BOT_TOKEN" in str(info.value)
    with pytest.raises(MissingCredential, match="SLACK_BOT_TOKEN"):
        harvest(emu, tmp_path, token=None)
    with pytest.raises(ConnectorError, match="invalid_auth"):
        SlackConnector().check(config(emu, token=SecretStr("xoxb-wrong")))


def test_channel_errors(emu: SlackEmulator, tmp_path: Path) -> None:
    connector = SlackConnector()
    with pytest.raises(ConnectorError, match="#nope not found"):
        connector.harvest(ref("nope"), tmp_path, config(emu))
    with pytest.raises(ConnectorError, match="channel not found"):
        connector.harvest(ref("C0SECRET"), tmp_path, config(emu))
    with pytest.raises(ConnectorError, match="not in the channel") as info:
        connector.harvest(ref("C0OUTSIDE"), tmp_path, config(emu))
    assert "/invite" in str(info.value)


def test_missing_scope_in_harvest(tmp_path: Path) -> None:
    scopes = [s for s in ALL_SCOPES if s != "channels:history"]
    with SlackEmulator(workspace(), token=TOKEN, scopes=scopes) as emu:
        assert isinstance(emu, SlackEmulator)
        with pytest.raises(ConnectorError, match="lacks the channels:history scope"):
            harvest(emu, tmp_path)


def test_check_reports_scopes(emu: SlackEmulator) -> None:
    lines = SlackConnector().check(config(emu))
    assert lines[0].startswith("auth.test ok: retro in Acme")
    assert "users:read.email" in lines[1]
    emu.scopes = [s for s in ALL_SCOPES if s not in ("users:read.email", "groups:read")]
    with pytest.raises(ConnectorError) as info:
        SlackConnector().check(config(emu))
    assert "groups:read" in info.value.message and "users:read.email" in info.value.message
    assert "channels:read" not in info.value.message


def test_window_limits_history(emu: SlackEmulator, tmp_path: Path) -> None:
    since = datetime.fromtimestamp(T0 + 50, tz=UTC)
    until = datetime.fromtimestamp(T0 + 250, tz=UTC)
    report = SlackConnector().harvest(ref(since=since, until=until), tmp_path, config(emu))
    events = read(docs_from(tmp_path / "slack", tmp_path))[0]
    roots = {e.key for e in events if e.thread is None}
    assert roots == {key(60), key(90), key(200)}
    # The thread of a root in the window comes whole, even the reply of the next day.
    assert {key(120), key(36060)} <= {e.key for e in events}
    assert report.records == 5


def test_empty_channel_list_harvests_nothing(emu: SlackEmulator, tmp_path: Path) -> None:
    report = SlackConnector().harvest(IncidentRef(incident_id="INC-42"), tmp_path, config(emu))
    assert report.status == "empty" and sum(report.skipped.values()) == 1
    assert not (tmp_path / "slack").exists() and emu.log == []


def test_unreachable_api_is_a_connector_error(tmp_path: Path) -> None:
    emulator = SlackEmulator(workspace(), token=TOKEN).start()
    url = emulator.api_url
    emulator.stop()  # nothing listens on that port any more
    cfg = SlackConfig(token=SecretStr(TOKEN), base_url=url, timeout=2)
    with pytest.raises(ConnectorError, match="cannot reach Slack") as info:
        SlackConnector().harvest(ref(), tmp_path, cfg)
    assert "SLACK_API_URL" in str(info.value)


# --- faults on later pages, resume (issue 12, items 20 and 21) ---------------------------------

HTML_PAGE = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def written_ts(root: Path) -> list[str]:
    return [
        m["ts"]
        for f in sorted((root / "slack" / "inc-42-checkout").glob("*.json"))
        for m in json.loads(f.read_text())
    ]


@pytest.mark.parametrize(
    ("status", "body"),
    [(502, HTML_PAGE), (504, HTML_PAGE), (503, b"upstream down"), (200, HTML_PAGE)],
)
def test_a_bad_later_page_is_retried(
    emu: SlackEmulator, tmp_path: Path, waits: list[float], status: int, body: bytes
) -> None:
    """A 502/504/503 or an HTML page after the first is retried: all messages, once, in order."""
    emu.fail_after("conversations.history", 1, status=status, raw=body)
    report = harvest(emu, tmp_path, page_size=2)
    assert written_ts(tmp_path) == sorted(m["ts"] for m in incident_messages())
    assert report.records == len(incident_messages()) and len(waits) == 1


def test_a_bad_later_page_past_the_retries_is_one_connector_error(
    emu: SlackEmulator, tmp_path: Path
) -> None:
    """Before: slack_sdk's iterator raised JSONDecodeError (a traceback, exit 1)."""
    history = "^/api/conversations.history$"
    emu.inject(history, status=502, raw=HTML_PAGE, skip=1, times=4)
    with pytest.raises(ConnectorError, match="HTTP 502 after retries") as info:
        harvest(emu, tmp_path / "a", page_size=2)
    assert "run the same `retro harvest` again" in str(info.value)
    emu.inject(history, status=200, raw=HTML_PAGE, skip=1, times=4)
    with pytest.raises(ConnectorError, match="malformed response"):
        harvest(emu, tmp_path / "b", page_size=2)


def test_retry_waits_follow_the_shared_policy(
    emu: SlackEmulator, tmp_path: Path, waits: list[float]
) -> None:
    emu.inject("^/api/conversations.history$", status=429, headers={"Retry-After": "3"})
    emu.inject("^/api/users.info$", status=502, raw=HTML_PAGE)
    emu.inject("^/api/conversations.replies$", status=429)  # no Retry-After: back-off
    harvest(emu, tmp_path, retry_backoff=0.5, max_wait=2.0)
    assert waits[0] == 2.0  # Retry-After 3, capped by max_wait
    assert all(0.5 <= w <= 0.75 for w in waits[1:]) and len(waits) == 3


def test_invalid_cursor_says_run_again_and_the_next_run_resumes(
    emu: SlackEmulator, tmp_path: Path
) -> None:
    clean = harvest(emu, tmp_path / "clean", page_size=2)
    pages = len([r for r in emu.log if r.path == "/api/conversations.history"])
    emu.log.clear()
    expired = {"ok": False, "error": "invalid_cursor"}
    emu.inject("^/api/conversations.history$", status=200, body=expired, skip=2)
    with pytest.raises(ConnectorError, match="invalid_cursor") as info:
        harvest(emu, tmp_path / "b", page_size=2)
    assert "run the same `retro harvest` again" in str(info.value)
    assert (tmp_path / "b" / "slack" / ".harvest-state.json").exists()
    before = [r.form() for r in emu.log if r.path == "/api/conversations.history"]
    assert len(before) == 3  # two pages in hand, the third refused
    emu.log.clear()
    resumed = harvest(emu, tmp_path / "b", page_size=2)
    assert written_ts(tmp_path / "b") == written_ts(tmp_path / "clean")
    assert resumed.records == clean.records and resumed.files == clean.files
    again = [r.form() for r in emu.log if r.path == "/api/conversations.history"]
    # It goes on from the oldest message it had (inclusive), with no (expired) cursor, so the
    # two pages in hand are not fetched again.
    assert "cursor" not in again[0]
    assert again[0]["latest"] == min(m["ts"] for m in before_messages(4))
    assert len(again) == pages - 2  # the two pages in hand are not fetched again
    assert not (tmp_path / "b" / "slack" / ".harvest-state.json").exists()


def before_messages(n: int) -> list[dict[str, Any]]:
    """The n newest roots of the incident channel: the first pages of history."""
    roots = [m for m in incident_messages() if m.get("thread_ts") in (None, m["ts"])]
    return sorted(roots, key=lambda m: float(m["ts"]), reverse=True)[:n]


def test_a_slow_page_is_retried(emu: SlackEmulator, tmp_path: Path, waits: list[float]) -> None:
    emu.fail_after("conversations.history", 1, status=None, delay=1.0)
    harvest(emu, tmp_path, page_size=2, timeout=0.3)
    assert written_ts(tmp_path) == sorted(m["ts"] for m in incident_messages())
    assert len(waits) == 1


def test_a_resumed_harvest_fetches_only_what_is_missing(emu: SlackEmulator, tmp_path: Path) -> None:
    both = ref("inc-42-checkout", "random")
    SlackConnector().harvest(both, tmp_path / "clean", config(emu))
    emu.log.clear()
    emu.inject("^/api/users.info$", status=500, times=4)
    with pytest.raises(ConnectorError, match="HTTP 500"):
        SlackConnector().harvest(both, tmp_path / "b", config(emu))
    # Both channels were complete: their day files are in the bundle already.
    assert (tmp_path / "b" / "slack" / "random").is_dir()
    emu.log.clear()
    SlackConnector().harvest(both, tmp_path / "b", config(emu))
    asked = {r.path for r in emu.log}
    assert "/api/conversations.history" not in asked and "/api/conversations.replies" not in asked
    for name in ("users.json", "channels.json", "random", "inc-42-checkout"):
        path = tmp_path / "b" / "slack" / name
        assert path.exists(), name
    assert sorted(written_ts(tmp_path / "b")) == sorted(written_ts(tmp_path / "clean"))


def test_a_checkpoint_for_other_targets_is_not_used(emu: SlackEmulator, tmp_path: Path) -> None:
    emu.inject("^/api/users.info$", status=500, times=4)
    with pytest.raises(ConnectorError):
        harvest(emu, tmp_path)
    emu.log.clear()
    since = datetime.fromtimestamp(T0 + 50, tz=UTC)
    SlackConnector().harvest(ref(since=since), tmp_path, config(emu))
    assert any(r.path == "/api/conversations.history" for r in emu.log)  # started over


@pytest.mark.parametrize(
    ("mrkdwn", "text"),
    [
        ("*eu-west-1* is down", "eu-west-1 is down"),
        ("*Update*: all good", "Update: all good"),
        ("5 * 3 = 15 and rm /tmp/*.log", "5 * 3 = 15 and rm /tmp/*.log"),
        ("keep `a*b*c` as typed, *this* not", "keep `a*b*c` as typed, this not"),
        ("**double** and api/*", "**double** and api/*"),
    ],
)
def test_bold_markers_are_removed_outside_code(mrkdwn: str, text: str) -> None:
    assert render_mrkdwn(mrkdwn, user=lambda _: None, channel=lambda _: None) == text
