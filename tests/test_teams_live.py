"""Microsoft Teams connector, live mode: httpx against the local Graph emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from connectors.teams import TeamsConnector
from connectors.teams.graph import GraphConfig
from retro.cli.main import cli
from retro.connector import Doc, IncidentRef, ReadContext
from retro.errors import ConfigError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.base import FAULTS
from tests.emulators.teams import GraphEmulator, jwt
from tests.emulators.teams_tenant import (
    CHANNEL,
    CHAT,
    CLIENT_ID,
    CLIENT_SECRET,
    TEAM,
    TENANT,
    sample_tenant,
)

CONNECTOR = TeamsConnector()
CHANNEL_TARGET = f"{TEAM}/{CHANNEL}"
CHAT_TARGET = f"chat:{CHAT}"


@pytest.fixture
def emu() -> Iterator[GraphEmulator]:
    with GraphEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def config(emu: GraphEmulator, **overrides: Any) -> GraphConfig:
    values: dict[str, Any] = {
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": SecretStr(CLIENT_SECRET),
        "base_url": emu.graph_url,
        "login_url": emu.url,
        "backoff": 0.01,
        "max_retries": 3,
        "page_size": 4,
    }
    return GraphConfig(**{**values, **overrides})


def ref(*targets: str, **window: Any) -> IncidentRef:
    return IncidentRef(incident_id="INC-2041", targets={"teams": list(targets)}, **window)


def harvest(emu: GraphEmulator, out: Path, *targets: str, **cfg: Any) -> SourceReport:
    return CONNECTOR.harvest(
        ref(*(targets or (CHANNEL_TARGET, CHAT_TARGET))), out, config(emu, **cfg)
    )


def read_dir(folder: Path) -> tuple[list[TimelineEvent], SourceReport]:
    docs = [
        Doc(p.relative_to(folder).as_posix(), json.loads(p.read_text()))
        for p in sorted(folder.rglob("*.json"))
    ]
    assert all(CONNECTOR.claims(d) for d in docs)
    report = SourceReport(name="teams")
    ctx = ReadContext(bundle=folder, incident=IncidentMeta(id="INC-2041"), report=report)
    return list(CONNECTOR.read_bundle(docs, ctx)), report


def expected_ids() -> list[str]:
    """`<conversation>:<message id>` of every message the tenant holds, by creation time
    (deleted ones included). Graph ids are unique within a conversation only."""
    tenant = sample_tenant()
    items = [
        (CHANNEL, m)
        for t in tenant.channels[(TEAM, CHANNEL)]["threads"]
        for m in [t, *t["replies"]]
    ]
    items += [(CHAT, m) for m in tenant.chats[CHAT]["messages"]]
    return [f"{conv}:{m['id']}" for conv, m in sorted(items, key=lambda i: i[1]["createdDateTime"])]


def written_ids(out: Path) -> list[str]:
    """The same for the harvested bodies, in the order written (roots, each with its replies)."""
    ids: list[str] = []
    for path in sorted((out / "teams").glob("*/messages.json")):
        conv = CHAT if path.parent.name == "INC-2041-bridge" else CHANNEL
        for item in json.loads(path.read_text())["value"]:
            ids += [f"{conv}:{m['id']}" for m in [item, *item.get("replies", [])]]
    return ids


def summary(events: list[TimelineEvent]) -> list[tuple[Any, ...]]:
    return sorted(
        (e.key, e.kind, e.text, e.thread, e.actor.email if e.actor else None) for e in events
    )


# --- round trip and paging ------------------------------------------------------------------------


def test_harvest_writes_bodies_that_read_back(emu: GraphEmulator, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int | None]] = []
    report = CONNECTOR.harvest(
        ref(CHANNEL_TARGET, CHAT_TARGET), tmp_path, config(emu), lambda *a: seen.append(a)
    )
    assert report.status == "ok" and report.records == len(expected_ids())
    assert sorted(report.files) == [
        "teams/INC-2041-bridge/chat.json",
        "teams/INC-2041-bridge/members.json",
        "teams/INC-2041-bridge/messages.json",
        "teams/inc-2041-checkout/channel.json",
        "teams/inc-2041-checkout/members.json",
        "teams/inc-2041-checkout/messages.json",
    ]
    events, read_report = read_dir(tmp_path / "teams")
    assert len(events) == len(expected_ids()) - 1  # the deleted reply is counted, not shown
    assert read_report.skipped == {"deleted message (counted, not shown)": 1}
    assert all(e.actor is None or e.actor.is_bot or e.actor.email for e in events)  # members joined
    assert any(label.startswith("teams: channel") for label, _, _ in seen)
    # Asked with Prefer: include-unknown-enum-members, system events keep their real type.
    assert all(
        r.headers.get("prefer") == "include-unknown-enum-members"
        for r in emu.log
        if r.path.startswith("/v1.0")
    )
    kinds = {e.attrs["message_type"] for e in events if e.kind in ("note", "membership")}
    assert kinds == {"systemEventMessage"}
    # The channel's roots are written oldest first, each thread's replies oldest first.
    body = json.loads((tmp_path / "teams/inc-2041-checkout/messages.json").read_text())
    created = [m["createdDateTime"] for m in body["value"]]
    assert created == sorted(created)
    for root in body["value"]:
        replies = [r["createdDateTime"] for r in root["replies"]]
        assert replies == sorted(replies) and root["replies@odata.count"] == len(replies)
        assert "replies@odata.nextLink" not in root


@pytest.mark.parametrize("plan", [[], [4], [1], [3, 0, 1], [0, 2]])
def test_short_and_empty_pages_lose_nothing(
    emu: GraphEmulator, tmp_path: Path, plan: list[int]
) -> None:
    emu.page_plan = plan
    harvest(emu, tmp_path)
    ids = written_ids(tmp_path)
    assert sorted(ids) == sorted(expected_ids()) and len(ids) == len(set(ids))
    pages = [r for r in emu.log if r.path.endswith("/messages")]
    if 0 in plan:  # an empty page with a next link was followed
        assert len(pages) > len(expected_ids()) // 4


def test_every_paging_plan_reads_back_the_same_timeline(emu: GraphEmulator, tmp_path: Path) -> None:
    harvest(emu, tmp_path / "whole", page_size=50)
    emu.page_plan = [2, 0, 1]
    harvest(emu, tmp_path / "pieces", page_size=3)
    assert summary(read_dir(tmp_path / "whole/teams")[0]) == summary(
        read_dir(tmp_path / "pieces/teams")[0]
    )


def test_threads_cut_by_expand_are_completed_from_replies(
    emu: GraphEmulator, tmp_path: Path
) -> None:
    emu.expand_limit = 1
    harvest(emu, tmp_path, CHANNEL_TARGET)
    replies_calls = [r for r in emu.log if r.path.endswith("/replies")]
    assert replies_calls and all(r.q("$top") == "4" for r in replies_calls)
    assert sorted(written_ids(tmp_path)) == sorted(
        i for i in expected_ids() if i.startswith(CHANNEL)
    )


# --- faults ---------------------------------------------------------------------------------------


def test_429_with_retry_after_mid_paging(
    emu: GraphEmulator, tmp_path: Path, waits: list[float]
) -> None:
    emu.inject_fault("429 with Retry-After", r"/messages$", skip=2)
    harvest(emu, tmp_path)
    assert waits == [7.0]
    ids = written_ids(tmp_path)
    assert sorted(ids) == sorted(expected_ids()) and len(ids) == len(set(ids))


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_on_a_page_is_retried_without_loss(
    emu: GraphEmulator, tmp_path: Path, waits: list[float], fault: str
) -> None:
    clean = harvest(emu, tmp_path / "clean")
    emu.inject_fault(fault, r"/messages$", skip=2)  # the third page of the channel
    report = harvest(emu, tmp_path / "faulted", timeout=0.5)
    assert (report.records, sorted(report.files), report.skipped) == (
        clean.records,
        sorted(clean.files),
        clean.skipped,
    )
    for rel in clean.files:  # byte for byte the same bundle
        assert (tmp_path / "faulted" / rel).read_bytes() == (tmp_path / "clean" / rel).read_bytes()
    assert len(waits) == 1 and (
        waits[0] == 7.0 if fault == "429 with Retry-After" else waits[0] < 7.0
    )


def test_5xx_that_never_ends_is_one_error(emu: GraphEmulator, tmp_path: Path) -> None:
    emu.inject(
        r"/messages$",
        status=503,
        body={"error": {"code": "ServiceNotAvailable", "message": "down"}},
        times=10,
    )
    with pytest.raises(ConnectorError, match="HTTP 503") as info:
        harvest(emu, tmp_path, max_retries=2)
    assert info.value.source == "teams"
    assert not (tmp_path / "teams/inc-2041-checkout/messages.json").exists()


def test_a_token_graph_rejects(emu: GraphEmulator, tmp_path: Path) -> None:
    cfg = {"tenant_id": None, "token": SecretStr("expired-token")}
    with pytest.raises(ConnectorError, match="rejected the token") as info:
        harvest(emu, tmp_path, **cfg)
    assert "TEAMS_TOKEN" in str(info.value)


def test_a_token_given_as_is_is_used(emu: GraphEmulator, tmp_path: Path) -> None:
    emu.static_tokens["given"] = list(emu.roles)
    report = harvest(emu, tmp_path, tenant_id=None, token=SecretStr("given"))
    assert report.status == "ok"
    assert not any(r.path.endswith("/token") for r in emu.log)


def test_client_credentials_win_over_a_stored_token(emu: GraphEmulator, tmp_path: Path) -> None:
    # `retro keys set teams` fills every secret field; the secret must never go out as a token.
    report = harvest(emu, tmp_path, token=SecretStr(CLIENT_SECRET))
    assert report.status == "ok"
    assert {r.headers["authorization"] for r in emu.log if r.path.startswith("/v1.0")} != {
        f"Bearer {CLIENT_SECRET}"
    }


def test_the_identity_platform_refuses_a_secret(emu: GraphEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="invalid_client: AADSTS7000215") as info:
        harvest(emu, tmp_path, client_secret=SecretStr("wrong"))
    assert "TEAMS_CLIENT_SECRET" in str(info.value)
    with pytest.raises(ConnectorError, match="AADSTS90002") as info:
        harvest(emu, tmp_path, tenant_id="00000000-0000-0000-0000-000000000000")
    assert "TEAMS_TENANT_ID" in str(info.value)


def test_protected_api_refusal_names_the_request_form(emu: GraphEmulator, tmp_path: Path) -> None:
    emu.protected_api_approved = False
    with pytest.raises(ConnectorError, match="Protected API") as info:
        harvest(emu, tmp_path, CHANNEL_TARGET)
    assert "teams-protected-apis" in str(info.value) and "ChannelMessage.Read.Group" in str(
        info.value
    )


def test_a_missing_permission_is_named(emu: GraphEmulator, tmp_path: Path) -> None:
    emu.roles = [r for r in emu.roles if r != "ChannelMessage.Read.All"]
    with pytest.raises(ConnectorError, match="not allowed") as info:
        harvest(emu, tmp_path, CHANNEL_TARGET)
    assert "grant the app the ChannelMessage.Read.All application permission" in str(info.value)


def test_unreadable_members_are_counted_and_the_harvest_goes_on(
    emu: GraphEmulator, tmp_path: Path
) -> None:
    emu.roles = [
        r for r in emu.roles if r not in ("ChannelMember.Read.All", "Channel.ReadBasic.All")
    ]
    report = harvest(emu, tmp_path, CHANNEL_TARGET)
    assert report.status == "partial"
    assert report.skipped == {
        "channel details not readable (HTTP 403): names or emails unresolved": 1,
        "members not readable (HTTP 403): names or emails unresolved": 1,
    }
    events, _ = read_dir(tmp_path / "teams")
    assert events and all(e.actor is None or e.actor.email is None for e in events)


def test_unknown_channel_is_a_404_with_the_id_form(emu: GraphEmulator, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="not found") as info:
        harvest(emu, tmp_path, f"{TEAM}/19:nope@thread.tacv2")
    assert "19:…@thread.tacv2" in str(info.value)


def test_next_links_to_another_host_or_in_a_loop_stop_the_harvest(
    emu: GraphEmulator, tmp_path: Path
) -> None:
    page = {"value": [], "@odata.nextLink": "https://evil.example/v1.0/x?$skiptoken=1"}
    emu.inject(r"/chats/.*/messages$", status=200, body=page)
    with pytest.raises(ConnectorError, match="next page at https://evil.example"):
        harvest(emu, tmp_path, CHAT_TARGET)
    loop = {
        "value": [],
        "@odata.nextLink": f"{emu.graph_url}/chats/{CHAT}/messages?$skiptoken=same",
    }
    emu.inject(r"/chats/.*/messages$", status=200, body=loop, times=2)
    with pytest.raises(ConnectorError, match="paging does not advance"):
        harvest(emu, tmp_path, CHAT_TARGET)


def test_missing_credentials_and_bad_targets(emu: GraphEmulator, tmp_path: Path) -> None:
    with pytest.raises(MissingCredential, match="TEAMS_CLIENT_SECRET") as info:
        CONNECTOR.harvest(ref(CHAT_TARGET), tmp_path, GraphConfig())
    assert "retro keys set teams.client_secret" in str(info.value)
    for bad in ("19:only-a-channel@thread.tacv2", "chat:", "team/"):
        with pytest.raises(ConfigError, match="names no channel or chat"):
            harvest(emu, tmp_path, bad)
    report = CONNECTOR.harvest(IncidentRef(incident_id="x"), tmp_path, config(emu))
    assert report.status == "empty" and emu.log == []


# --- windows --------------------------------------------------------------------------------------


def test_chat_window_is_filtered_by_graph(emu: GraphEmulator, tmp_path: Path) -> None:
    since, until = datetime(2024, 5, 1, 14, 0, tzinfo=UTC), datetime(2024, 5, 1, 14, 30, tzinfo=UTC)
    report = CONNECTOR.harvest(ref(CHAT_TARGET, since=since, until=until), tmp_path, config(emu))
    calls = [r for r in emu.log if r.path.endswith("/messages")]
    assert calls[0].q("$orderby") == "createdDateTime desc"
    assert (
        calls[0].q("$filter")
        == "createdDateTime gt 2024-05-01T13:59:59.000Z and createdDateTime lt 2024-05-01T14:30:01.000Z"
    )
    texts = [e.text for e in read_dir(tmp_path / "teams")[0]]
    assert "unrelated chatter before the incident" not in texts and len(texts) == report.records


def test_channel_threads_outside_the_window_are_counted(emu: GraphEmulator, tmp_path: Path) -> None:
    since = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
    report = CONNECTOR.harvest(ref(CHANNEL_TARGET, since=since), tmp_path, config(emu))
    assert report.skipped == {"thread outside the harvest window": 1}
    assert "deployed pool config v42 to payments-db" not in [
        e.text for e in read_dir(tmp_path / "teams")[0]
    ]


# --- check and the CLI ----------------------------------------------------------------------------


def test_check_reads_the_tokens_roles(emu: GraphEmulator) -> None:
    lines = CONNECTOR.check(config(emu))
    assert lines[0].startswith(
        "token ok: app-only token (client credentials) for app retro-harvest"
    )
    assert "ChannelMessage.Read.All" in lines[1] and len(lines) == 2
    emu.roles = ["Chat.Read.All"]
    lines = CONNECTOR.check(config(emu))
    assert lines[2].startswith(
        "not granted (those reads fail or are skipped): ChannelMessage.Read.All"
    )
    emu.roles = ["User.Read.All"]
    with pytest.raises(ConnectorError, match="may read no Teams messages"):
        CONNECTOR.check(config(emu))


def test_check_with_an_opaque_or_delegated_token(emu: GraphEmulator) -> None:
    lines = CONNECTOR.check(config(emu, tenant_id=None, token=SecretStr("opaque")))
    assert "unknown" in lines[1]
    delegated = jwt({"tid": TENANT, "appid": CLIENT_ID, "scp": "ChannelMessage.Read.All"})
    assert "unknown" in CONNECTOR.check(config(emu, tenant_id=None, token=SecretStr(delegated)))[1]


def test_cli_lists_both_new_connectors() -> None:
    result = CliRunner().invoke(cli, ["connectors", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["teams"]["title"] == "Microsoft Teams"
    assert {s["env"] for s in rows["teams"]["settings"]} >= {
        "TEAMS_TENANT_ID",
        "TEAMS_CLIENT_ID",
        "TEAMS_CLIENT_SECRET",
        "TEAMS_TOKEN",
    }
    assert rows["transcripts"]["title"] == "Meeting transcripts"
    assert {s["env"] for s in rows["transcripts"]["settings"]} >= {
        "ZOOM_ACCOUNT_ID",
        "ZOOM_CLIENT_SECRET",
        "TEAMS_CLIENT_SECRET",
    }


def test_a_stopped_harvest_resumes_at_the_conversation_it_stopped_at(
    emu: GraphEmulator, tmp_path: Path
) -> None:
    emu.inject(r"/chats/.*/messages$", status=503, times=10)
    with pytest.raises(ConnectorError, match="HTTP 503"):
        harvest(emu, tmp_path, max_retries=1)
    assert (tmp_path / "teams/.harvest-state.json").exists()
    assert (tmp_path / "teams/inc-2041-checkout/messages.json").exists()  # the channel was done
    emu.faults.clear()
    emu.log.clear()
    report = harvest(emu, tmp_path)
    assert not any("/channels/" in r.path for r in emu.log)  # not fetched again
    clean = harvest(emu, tmp_path / "clean")
    assert (report.records, sorted(report.files), report.skipped) == (
        clean.records,
        sorted(clean.files),
        clean.skipped,
    )
    assert not (tmp_path / "teams/.harvest-state.json").exists()
    assert sorted(written_ids(tmp_path)) == sorted(expected_ids())


def test_retro_harvest_from_teams_then_timeline(
    emu: GraphEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "TEAMS_TENANT_ID": TENANT,
        "TEAMS_CLIENT_ID": CLIENT_ID,
        "TEAMS_CLIENT_SECRET": CLIENT_SECRET,
        "TEAMS_GRAPH_URL": emu.graph_url,
        "TEAMS_LOGIN_URL": emu.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    out = tmp_path / "bundle"
    args = ["harvest", "--incident", "INC-2041", "--out", str(out)]
    args += ["--from", f"teams={CHANNEL_TARGET}", "--from", f"teams={CHAT_TARGET}"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    timeline = CliRunner().invoke(cli, ["timeline", "--bundle", str(out), "--format", "json"])
    assert timeline.exit_code == 0, timeline.output
    events = json.loads(timeline.stdout)
    assert {e["source"] for e in events} == {"teams"}
    assert any("@Bo Chen can you look at checkout?" in e["text"] for e in events)
