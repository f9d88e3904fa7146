"""Teams live mode: harvest channel threads and chats from Microsoft Graph into the bodies that
file mode reads (`teams/<conversation>/messages.json`, `channel.json`/`chat.json`,
`members.json`), and check a token's application permissions.

A channel: `GET /teams/{team}/channels/{channel}` (its name), the root messages with
`$expand=replies`, then `…/messages/{id}/replies` for every thread whose expanded replies were
cut short (`replies@odata.nextLink`), and the channel's members (their emails join people
across sources). A chat: `GET /chats/{id}`, its messages (filtered by createdDateTime on the
server when a window is given) and its members.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connectors._support import Checkpoint, ref_key, save_json
from connectors.teams.graph import (
    GraphClient,
    acquire_token,
    as_config,
    token_roles,
    uses_client_credentials,
)
from connectors.teams.read import SOURCE
from retro.connector import IncidentRef, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError
from retro.models import Progress, SourceReport, no_progress

NEEDED_ROLES = (
    "ChannelMessage.Read.All",
    "Channel.ReadBasic.All",
    "ChannelMember.Read.All",
    "Chat.Read.All",
    "ChatMember.Read.All",
)
_READS_MESSAGES = frozenset({"ChannelMessage.Read.All", "Chat.Read.All", "Chat.ReadWrite.All"})
_FORM_HINT = "use --from teams=<team-id>/<channel-id> or --from teams=chat:<chat-id>"
_UNSAFE = re.compile(r"[^\w.-]+")


def parse_target(target: str) -> tuple[str, str, str]:
    """("channel", team, channel) or ("chat", chat, "") from a `--from teams=` value."""
    value = target.strip()
    if value.startswith("chat:") and value[5:].strip():
        return "chat", value[5:].strip(), ""
    team, sep, channel = value.partition("/")
    if sep and team.strip() and channel.strip():
        return "channel", team.strip(), channel.strip()
    raise ConfigError(f"teams: {target!r} names no channel or chat", hint=_FORM_HINT)


# --- shared helpers -------------------------------------------------------------------------------


def _created(message: dict[str, Any]) -> datetime:
    try:
        return parse_time(message.get("createdDateTime"), field_name="createdDateTime")
    except BundleError:
        hint = "check TEAMS_GRAPH_URL points at Microsoft Graph"
        raise ConnectorError(
            SOURCE, f"message {message.get('id')!r} has no valid createdDateTime", hint=hint
        ) from None


def _order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Oldest first; each id once (Graph may repeat an item across pages: the last copy wins)."""
    by_id = {str(m.get("id")): m for m in messages}
    return sorted(by_id.values(), key=lambda m: (_created(m), str(m.get("id"))))


def _in_window(at: datetime, ref: IncidentRef) -> bool:
    return (ref.since is None or at >= ref.since) and (ref.until is None or at <= ref.until)


def _write(out: Path, rel: str, body: Any, report: SourceReport) -> None:
    save_json(out / SOURCE / rel, body)  # whole, or not at all
    report.files.append(f"{SOURCE}/{rel}")


def _folder(name: str | None, fallback: str) -> str:
    cleaned = _UNSAFE.sub("-", (name or "").strip()).strip("-.")
    return cleaned or _UNSAFE.sub("-", fallback).strip("-.")


def _optional(api: GraphClient, path: str, report: SourceReport, what: str) -> Any:
    """GET path; a 403 or 404 is counted (the data is context) instead of failing the harvest."""
    status, body = api.fetch(path, allow=(403, 404))
    if body is None:
        report.skip(f"{what} not readable (HTTP {status}): names or emails unresolved")
    return body


def _members(api: GraphClient, path: str, report: SourceReport) -> list[dict[str, Any]] | None:
    first = _optional(api, path, report, "members")
    if first is None:
        return None
    members = [m for m in first.get("value") or [] if isinstance(m, dict)]
    link = first.get("@odata.nextLink")
    if isinstance(link, str) and link:
        members += api.items(link)
    return members


# --- a channel ------------------------------------------------------------------------------------


def _thread(api: GraphClient, base: str, root: dict[str, Any]) -> list[dict[str, Any]]:
    """Every reply of a root: the expanded ones, plus all pages of /replies when they were cut."""
    replies = [r for r in root.get("replies") or [] if isinstance(r, dict)]
    count = root.get("replies@odata.count")
    if root.get("replies@odata.nextLink") or (isinstance(count, int) and count > len(replies)):
        path = f"{base}/messages/{root['id']}/replies"
        replies += api.items(path, {"$top": str(api.page_size)})
    return _order(replies)


def _channel_messages(
    api: GraphClient,
    team: str,
    channel: str,
    ref: IncidentRef,
    report: SourceReport,
    progress: Progress,
) -> list[dict[str, Any]]:
    base = f"/teams/{team}/channels/{channel}"
    params = {"$top": str(api.page_size), "$expand": "replies"}
    roots: list[dict[str, Any]] = []
    for page in api.pages(f"{base}/messages", params):
        roots += [m for m in page["value"] if isinstance(m, dict)]
        progress(f"teams: channel {channel} messages", len(roots), None)
    kept: list[dict[str, Any]] = []
    for n, root in enumerate(_order(roots)):
        replies = _thread(api, base, root)
        times = [_created(root), *(_created(r) for r in replies)]
        if not any(_in_window(t, ref) for t in times):
            report.skip("thread outside the harvest window")
            continue
        thread = {k: v for k, v in root.items() if not k.startswith("replies@")}
        kept.append({**thread, "replies@odata.count": len(replies), "replies": replies})
        progress(f"teams: channel {channel} threads", n + 1, len(roots))
    return kept


def harvest_channel(
    api: GraphClient,
    team: str,
    channel: str,
    ref: IncidentRef,
    out: Path,
    report: SourceReport,
    progress: Progress,
) -> None:
    base = f"/teams/{team}/channels/{channel}"
    info = _optional(api, base, report, "channel details")
    threads = _channel_messages(api, team, channel, ref, report, progress)
    members = _members(api, f"{base}/members", report)
    folder = _folder(info.get("displayName") if info else None, channel)
    context = f"{api.api.client.base_url}$metadata#teams('{team}')/channels('{channel}')"
    _write(
        out,
        f"{folder}/messages.json",
        {
            "@odata.context": f"{context}/messages",
            "@odata.count": len(threads),
            "value": threads,
        },
        report,
    )
    if info is not None:
        _write(out, f"{folder}/channel.json", info, report)
    if members is not None:
        _write(
            out,
            f"{folder}/members.json",
            {"@odata.context": f"{context}/members", "value": members},
            report,
        )
    report.records += sum(1 + len(t["replies"]) for t in threads)


# --- a chat ---------------------------------------------------------------------------------------


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _chat_params(api: GraphClient, ref: IncidentRef) -> dict[str, str]:
    params = {"$top": str(api.page_size)}
    terms = []
    # Graph filters chats by createdDateTime with gt/lt only (and then needs this $orderby);
    # a second on each side keeps the window's own edges in.
    if ref.since is not None:
        terms.append(f"createdDateTime gt {_stamp(ref.since - timedelta(seconds=1))}")
    if ref.until is not None:
        terms.append(f"createdDateTime lt {_stamp(ref.until + timedelta(seconds=1))}")
    if terms:
        params["$orderby"] = "createdDateTime desc"
        params["$filter"] = " and ".join(terms)
    return params


def harvest_chat(
    api: GraphClient,
    chat: str,
    ref: IncidentRef,
    out: Path,
    report: SourceReport,
    progress: Progress,
) -> None:
    base = f"/chats/{chat}"
    info = _optional(api, base, report, "chat details")
    messages: list[dict[str, Any]] = []
    for page in api.pages(f"{base}/messages", _chat_params(api, ref)):
        messages += [m for m in page["value"] if isinstance(m, dict)]
        progress(f"teams: chat {chat} messages", len(messages), None)
    messages = [m for m in _order(messages) if _in_window(_created(m), ref)]
    members = _members(api, f"{base}/members", report)
    folder = _folder(info.get("topic") if info else None, f"chat-{chat}")
    context = f"{api.api.client.base_url}$metadata#chats('{chat}')"
    _write(
        out,
        f"{folder}/messages.json",
        {
            "@odata.context": f"{context}/messages",
            "@odata.count": len(messages),
            "value": messages,
        },
        report,
    )
    if info is not None:
        _write(out, f"{folder}/chat.json", info, report)
    if members is not None:
        _write(
            out,
            f"{folder}/members.json",
            {"@odata.context": f"{context}/members", "value": members},
            report,
        )
    report.records += len(messages)


# --- harvest and check ----------------------------------------------------------------------------


def _merge(report: SourceReport, part: dict[str, Any]) -> None:
    """Add one finished unit's summary (fetched now, or by an earlier run) to the report."""
    report.records += int(part.get("records", 0))
    report.files += [str(f) for f in part.get("files", [])]
    for reason, n in dict(part.get("skipped", {})).items():
        report.skip(str(reason), int(n))


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch each channel or chat the harvest names and write them under out/teams/.

    Each channel or chat is written whole once fetched. A run that stops keeps which ones are
    done in a checkpoint (connectors/_support.Checkpoint), so the next run with the same
    targets and window fetches only the rest.
    """
    report = SourceReport(name=SOURCE)
    targets = [(t, *parse_target(t)) for t in ref.of(SOURCE)]
    if not targets:
        report.status = "empty"
        report.skip("no Teams channel or chat for this incident")
        return report
    checkpoint = Checkpoint(out / SOURCE, ref_key(SOURCE, ref))
    try:
        with GraphClient(as_config(config), source=SOURCE, key_name=SOURCE) as api:
            for n, (target, kind, first, second) in enumerate(targets):
                progress("teams", n, len(targets))
                if not checkpoint.done(target):
                    part = SourceReport(name=SOURCE)
                    if kind == "chat":
                        harvest_chat(api, first, ref, out, part, progress)
                    else:
                        harvest_channel(api, first, second, ref, out, part, progress)
                    checkpoint.finish(
                        target, records=part.records, files=part.files, skipped=part.skipped
                    )
                _merge(report, checkpoint.unit(target))
    except BaseException:
        checkpoint.save()
        raise
    checkpoint.clear()
    progress("teams", len(targets), len(targets))
    report.status = "ok" if report.records else "empty"
    if report.status == "ok" and any("not readable" in reason for reason in report.skipped):
        report.status = "partial"
    return report


def check(config: BaseModel) -> list[str]:
    """Get a token and read the application permissions it carries."""
    cfg = as_config(config)
    token = acquire_token(cfg, SOURCE, SOURCE)
    roles, claims = token_roles(token)
    how = (
        "app-only token (client credentials)" if uses_client_credentials(cfg) else "the given token"
    )
    app = claims.get("app_displayname") or claims.get("appid") or claims.get("azp") or "?"
    lines = [f"token ok: {how} for app {app} in tenant {claims.get('tid') or '?'}"]
    if roles is None:
        lines.append("application permissions unknown: the token has no roles claim (delegated?)")
        return lines
    if not set(roles) & _READS_MESSAGES:
        hint = "grant ChannelMessage.Read.All and Chat.Read.All (application), with admin consent"
        raise ConnectorError(SOURCE, "the token may read no Teams messages", hint=hint)
    lines.append(f"application permissions: {', '.join(roles)}")
    missing = [r for r in NEEDED_ROLES if r not in roles]
    if missing:
        lines.append(f"not granted (those reads fail or are skipped): {', '.join(missing)}")
    return lines
