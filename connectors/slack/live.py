"""Slack live mode: harvest channels with slack_sdk into the export layout file mode reads.

Retries are slack_sdk's own handlers, configured from retro.retry's one policy (`RetryPolicy`:
the same retry count, back-off and cap as every other client, waits through retro.retry.sleep):
429 (honouring Retry-After), 500/502/503/504, dropped connections and timeouts, and answers
whose body is not JSON (a proxy's HTML page, a body cut short). Pages are fetched one call at
a time, so every page gets those retries and a bad page is a one-line ConnectorError, never a
decode error from inside the SDK's iterator.

A harvest that stops keeps what it fetched in a checkpoint (connectors/_support.Checkpoint): a
channel's history resumes below the oldest message it has (by `latest`, not by a cursor, which
Slack may have expired), threads and users already fetched are not fetched again.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

import retro.retry as retry
from connectors._support import Checkpoint, ref_key, save_json
from retro.connector import IncidentRef
from retro.errors import ConnectorError, MissingCredential
from retro.models import Progress, SourceReport
from retro.retry import RetryPolicy

if TYPE_CHECKING:  # slack_sdk loads in about 0.1 s; only harvest and check need it
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
    from slack_sdk.http_retry.handler import RetryHandler
    from slack_sdk.web import SlackResponse

SOURCE = "slack"
NEEDED_SCOPES = (
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "users:read",
    "users:read.email",
)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
_TS = re.compile(r"^\d+(\.\d+)?$")
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})")
_USER_FIELD = re.compile(r'"(?:user|user_id)": "([UW][A-Z0-9]{2,}|USLACKBOT)"')
# Channel mentions without a label (<#C123>, rich_text channel elements) need channels.json.
_CHANNEL_MENTION = re.compile(r'<#([CG][A-Z0-9]{2,})\|?>|"channel_id": "([CG][A-Z0-9]{2,})"')
_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
_TOKEN_HINT = "check SLACK_BOT_TOKEN (a bot token starts with xoxb-) or run `retro keys set slack`"
_AGAIN = "run the same `retro harvest` again: it resumes where this one stopped"


class SlackConfig(BaseModel):
    """Settings for the Slack Web API."""

    token: SecretStr | None = Field(
        default=None,
        description="Bot token (xoxb-...) of a Slack app installed in the workspace",
        json_schema_extra={"env": "SLACK_BOT_TOKEN"},
    )
    base_url: str = Field(
        default="https://slack.com/api/",
        description="Web API base URL; point it at an emulator in tests",
        json_schema_extra={"env": "SLACK_API_URL"},
    )
    page_size: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="Items per page of conversations.history/replies/list",
        json_schema_extra={"env": "SLACK_PAGE_SIZE"},
    )
    max_retries: int = Field(
        default=5,
        ge=0,
        description="Retries of one call: 429, 5xx, dropped connections, timeouts, bad bodies",
    )
    retry_backoff: float = Field(
        default=1.0, ge=0.0, description="Seconds; base of the exponential wait between retries"
    )
    max_wait: float = Field(
        # Apps on Slack's Tier 1 (one history call a minute) are told to wait up to a minute.
        default=120.0,
        ge=0.0,
        description="Longest wait in seconds (Retry-After is capped to it)",
    )
    timeout: float = Field(default=30, gt=0, description="Seconds to wait for one HTTP response")


def as_config(config: BaseModel) -> SlackConfig:
    """Accept a SlackConfig, or any model with the same fields."""
    if isinstance(config, SlackConfig):
        return config
    return SlackConfig.model_validate(config.model_dump())


def retry_policy(cfg: SlackConfig) -> RetryPolicy:
    """The shared policy with Slack's numbers."""
    return RetryPolicy(retries=cfg.max_retries, backoff=cfg.retry_backoff, max_wait=cfg.max_wait)


def make_client(cfg: SlackConfig) -> WebClient:
    """A WebClient whose retries are slack_sdk's handlers; raises MissingCredential."""
    from slack_sdk import WebClient

    token = cfg.token.get_secret_value().strip() if cfg.token else ""
    if not token:
        raise MissingCredential("Slack", "SLACK_BOT_TOKEN")
    return WebClient(
        token=token,
        base_url=cfg.base_url,
        timeout=cfg.timeout,  # type: ignore[arg-type]  # urllib takes float seconds
        retry_handlers=retry_handlers(retry_policy(cfg)),
    )


def retry_handlers(policy: RetryPolicy) -> list[RetryHandler]:
    """slack_sdk's retry handlers, counting and waiting as `policy` says.

    They share one attempt counter, so `policy.retries` bounds the retries of a call whatever
    mix of faults it meets, as RetryPolicy.run does for the other clients.
    """
    rate_limit, server, connection, malformed = _handler_types()
    return [rate_limit(policy), server(policy), connection(policy), malformed(policy)]


@cache
def _handler_types() -> tuple[Any, Any, Any, Any]:
    """The handler classes, built on first use so slack_sdk loads only for live mode."""
    from http.client import HTTPException, RemoteDisconnected
    from urllib.error import URLError

    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.handler import RetryHandler
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.response import HttpResponse
    from slack_sdk.http_retry.state import RetryState

    class PolicyWait(RetryHandler):
        """Waits the way retro.retry's policy does, through retro.retry.sleep."""

        def __init__(self, policy: RetryPolicy, **kwargs: Any) -> None:
            super().__init__(max_retry_count=policy.retries, **kwargs)
            self.policy = policy

        def prepare_for_next_attempt(
            self,
            *,
            state: RetryState,
            request: HttpRequest,
            response: HttpResponse | None = None,
            error: Exception | None = None,
        ) -> None:
            hint = None
            if response is not None:
                flat = {str(k).lower(): v[0] for k, v in response.headers.items() if v}
                hint = retry.retry_after(flat)
            seconds = self.policy.wait(state.current_attempt + 1, hint)
            (self.policy.sleep or retry.sleep)(seconds)
            state.next_attempt_requested = True
            state.increment_current_attempt()

    class RateLimitRetry(PolicyWait, RateLimitErrorRetryHandler):
        """429, waiting for Retry-After (capped by max_wait) or backing off without one."""

    class ServerErrorRetry(PolicyWait, ServerErrorRetryHandler):
        """5xx: slack_sdk's handler knows only 500 and 503; gateways answer 502 and 504."""

        statuses = frozenset(retry.RETRIED_STATUSES - {429})

        def _can_retry(
            self,
            *,
            state: RetryState,
            request: HttpRequest,
            response: HttpResponse | None = None,
            error: Exception | None = None,
        ) -> bool:
            return response is not None and response.status_code in self.statuses

    class ConnectionRetry(PolicyWait, ConnectionErrorRetryHandler):
        """Refused, reset or dropped connections, timeouts, and bodies cut short."""

        def __init__(self, policy: RetryPolicy) -> None:
            kinds = [URLError, ConnectionError, RemoteDisconnected, TimeoutError, HTTPException]
            # A body cut short after a "{" fails json.loads inside slack_sdk's request.
            super().__init__(policy, error_types=[*kinds, json.JSONDecodeError])

    class MalformedBodyRetry(PolicyWait):
        """A 200 whose body is not a JSON object (a proxy's or load balancer's HTML page)."""

        def _can_retry(
            self,
            *,
            state: RetryState,
            request: HttpRequest,
            response: HttpResponse | None = None,
            error: Exception | None = None,
        ) -> bool:
            if error is not None or response is None or response.status_code != 200:
                return False
            return not (response.data or b"").lstrip().startswith(b"{")

    return RateLimitRetry, ServerErrorRetry, ConnectionRetry, MalformedBodyRetry


# --- errors -----------------------------------------------------------------------------------


def _code(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    return str(data.get("error") or "")


def api_error(exc: SlackApiError, what: str) -> ConnectorError:
    """One-line ConnectorError for a failed Slack call, with the fix as the hint."""
    resp = exc.response
    data = resp.data if isinstance(resp.data, dict) else {}
    status = int(resp.status_code or 0)
    code = str(data.get("error") or "")
    if code in _AUTH_ERRORS:
        return ConnectorError(
            SOURCE, f"{what}: Slack rejected the token ({code})", hint=_TOKEN_HINT
        )
    if code == "missing_scope":
        needed = data.get("needed") or "an unnamed"
        hint = f"add {needed} under OAuth & Permissions in the Slack app settings and reinstall it"
        return ConnectorError(SOURCE, f"{what}: the token lacks the {needed} scope", hint=hint)
    if code == "not_in_channel":
        hint = "invite the bot to the channel (/invite @your-bot) and retry"
        return ConnectorError(SOURCE, f"{what}: the bot is not in the channel", hint=hint)
    if code == "channel_not_found":
        hint = "check slack_channels in incident.yaml; private channels need the bot invited"
        return ConnectorError(SOURCE, f"{what}: channel not found", hint=hint)
    if code == "invalid_cursor":
        return ConnectorError(
            SOURCE, f"{what}: Slack no longer accepts the page cursor (invalid_cursor)", hint=_AGAIN
        )
    if status == 429 or code == "ratelimited":
        hint = f"wait a minute and {_AGAIN}, or raise max_retries"
        return ConnectorError(SOURCE, f"{what}: still rate limited after retries", hint=hint)
    if status >= 500:
        hint = f"Slack may be degraded (https://slack-status.com); {_AGAIN}"
        return ConnectorError(
            SOURCE, f"{what}: Slack answered HTTP {status} after retries", hint=hint
        )
    if code.startswith("Received a response in a non-JSON format") or not code:
        hint = f"check that SLACK_API_URL points at the Slack Web API, then {_AGAIN}"
        return ConnectorError(SOURCE, f"{what}: malformed response (HTTP {status})", hint=hint)
    hint = "see the method's error list at https://api.slack.com/methods"
    return ConnectorError(SOURCE, f"{what}: {code}", hint=hint)


@contextmanager
def _guard(what: str) -> Iterator[None]:
    """Turn slack_sdk and network failures (after the retries) into one-line ConnectorErrors."""
    from http.client import HTTPException

    from slack_sdk.errors import SlackApiError, SlackClientError

    try:
        yield
    except SlackApiError as exc:
        raise api_error(exc, what) from None
    except SlackClientError as exc:
        hint = "check SLACK_API_URL (an https:// URL of the Slack Web API)"
        raise ConnectorError(SOURCE, f"{what}: {_one_line(exc)}", hint=hint) from None
    except ValueError:  # a JSON body cut short, on every attempt
        hint = f"check that SLACK_API_URL points at the Slack Web API, then {_AGAIN}"
        raise ConnectorError(SOURCE, f"{what}: malformed response (cut short)", hint=hint) from None
    except (OSError, HTTPException) as exc:  # refused, reset, timed out (after the retries)
        reason = _one_line(getattr(exc, "reason", None) or exc)
        hint = f"check SLACK_API_URL and the network, then {_AGAIN}"
        raise ConnectorError(SOURCE, f"{what}: cannot reach Slack ({reason})", hint=hint) from None


def _one_line(exc: object) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _call(method: Callable[..., SlackResponse], what: str, **kwargs: Any) -> dict[str, Any]:
    """One Web API call (retried by the client's handlers); its JSON object."""
    with _guard(what):
        data = method(**kwargs).data
    if not isinstance(data, dict):
        raise ConnectorError(SOURCE, f"{what}: response is not a JSON object", hint=_AGAIN)
    return data


def _pages(
    method: Callable[..., SlackResponse], what: str, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Every page of a cursor-paginated method, one call each, so each page is retried alone.

    (slack_sdk's own iterator decodes later pages outside its error handling: a bad page there
    is a JSONDecodeError.)
    """
    cursor = ""
    while True:
        page = _call(method, what, **kwargs, **({"cursor": cursor} if cursor else {}))
        yield page
        meta = page.get("response_metadata")
        cursor = str((meta if isinstance(meta, dict) else {}).get("next_cursor") or "")
        if not cursor:
            return


def _items(page: dict[str, Any], field: str, what: str) -> list[dict[str, Any]]:
    items = page.get(field)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        hint = "check that SLACK_API_URL points at the Slack Web API"
        raise ConnectorError(SOURCE, f"{what}: response has no `{field}` list", hint=hint)
    return items


# --- harvest ----------------------------------------------------------------------------------


def _slack_ts(dt: datetime) -> str:
    return f"{dt.timestamp():.6f}"


def _ts_key(message: dict[str, Any]) -> tuple[float, str]:
    return float(message["ts"]), message["ts"]


def resolve_channels(
    client: WebClient, selectors: list[str], cfg: SlackConfig
) -> list[dict[str, Any]]:
    """conversations.info for every selector; names are resolved with conversations.list."""
    wanted = [s.strip().lstrip("#") for s in selectors if s.strip().lstrip("#")]
    names = [s for s in wanted if not _CHANNEL_ID.match(s)]
    found: dict[str, str] = {}
    if names:
        pages = _pages(
            client.conversations_list,
            "conversations.list",
            types="public_channel,private_channel",
            exclude_archived=False,
            limit=cfg.page_size,
        )
        for page in pages:
            for channel in _items(page, "channels", "conversations.list"):
                if channel.get("name") in names:
                    found[channel["name"]] = channel["id"]
            if len(found) == len(set(names)):
                break
    missing = [f"#{n}" for n in names if n not in found]
    if missing:
        hint = "check slack_channels in incident.yaml or give the channel id; invite the bot to private channels"
        raise ConnectorError(SOURCE, f"channel {', '.join(missing)} not found", hint=hint)
    ids = [found.get(s, s) for s in wanted]
    channels = []
    for cid in dict.fromkeys(ids):
        info = _call(client.conversations_info, f"conversations.info {cid}", channel=cid)
        channels.append(info["channel"])
    return channels


def channel_messages(
    client: WebClient,
    channel: dict[str, Any],
    ref: IncidentRef,
    cfg: SlackConfig,
    progress: Progress,
    state: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """History in the window plus every reply of its threads, oldest first, each once.

    `state` (a checkpoint record) holds the messages so far, the oldest history ts reached
    and the threads done, so a channel that stopped part-way goes on where it stopped.
    """
    state = {} if state is None else state
    cid = channel["id"]
    label = "#" + str(channel.get("name") or cid)
    by_ts: dict[str, dict[str, Any]] = state.setdefault("messages", {})
    if not state.get("history_done"):
        _history(client, cid, label, ref, cfg, progress, state)
        state["history_done"] = True
    roots = [m for m in by_ts.values() if int(m.get("reply_count") or 0) > 0]
    threads_done: list[str] = state.setdefault("threads_done", [])
    what = f"conversations.replies {label}"
    for n, root in enumerate(roots):
        if root["ts"] in threads_done:
            continue
        # Replies are not cut to the window: a thread started in it belongs to the incident.
        pages = _pages(
            client.conversations_replies, what, channel=cid, ts=root["ts"], limit=cfg.page_size
        )
        for page in pages:
            for message in _items(page, "messages", what):
                # The root comes back on every page; setdefault keeps one copy of each ts.
                by_ts.setdefault(str(message.get("ts")), message)
        threads_done.append(root["ts"])
        progress(f"slack: {label} threads", n + 1, len(roots))
    bad = [ts for ts in by_ts if not _TS.match(ts)]
    if bad:
        hint = "check that SLACK_API_URL points at the Slack Web API"
        raise ConnectorError(SOURCE, f"{label}: a message has no valid ts ({bad[0]!r})", hint=hint)
    return sorted(by_ts.values(), key=_ts_key)


def _history(
    client: WebClient,
    cid: str,
    label: str,
    ref: IncidentRef,
    cfg: SlackConfig,
    progress: Progress,
    state: dict[str, Any],
) -> None:
    """conversations.history into state["messages"], newest first.

    After each page, state["latest"] is the oldest ts reached: everything newer is in hand,
    so a resumed run asks for `latest` = that ts (inclusive) instead of reusing a cursor.
    """
    by_ts: dict[str, dict[str, Any]] = state["messages"]
    kwargs: dict[str, Any] = {"channel": cid, "limit": cfg.page_size, "inclusive": True}
    if ref.since is not None:
        kwargs["oldest"] = _slack_ts(ref.since)
    if state.get("latest"):
        kwargs["latest"] = state["latest"]
    elif ref.until is not None:
        kwargs["latest"] = _slack_ts(ref.until)
    what = f"conversations.history {label}"
    for page in _pages(client.conversations_history, what, **kwargs):
        messages = _items(page, "messages", what)
        for message in messages:
            by_ts.setdefault(str(message.get("ts")), message)
        stamps = [str(m.get("ts")) for m in messages if _TS.match(str(m.get("ts")))]
        if stamps:
            state["latest"] = min(stamps, key=float)
        progress(f"slack: {label} history", len(by_ts), None)


def user_ids(messages: list[dict[str, Any]]) -> list[str]:
    """Authors and mentioned users of the messages, sorted."""
    blob = json.dumps(messages)
    return sorted(set(_USER_FIELD.findall(blob)) | set(_MENTION.findall(blob)))


def channel_mentions(messages: list[dict[str, Any]]) -> list[str]:
    """Ids of channels mentioned without a name, sorted."""
    return sorted({a or b for a, b in _CHANNEL_MENTION.findall(json.dumps(messages))})


def fetch_users(
    client: WebClient,
    uids: list[str],
    report: SourceReport,
    progress: Progress,
    state: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """users.info for each id; users Slack cannot show (other workspaces) are counted skips.

    `state` keeps who was fetched (and who was not found) across a resumed run.
    """
    found: dict[str, Any] = ({} if state is None else state).setdefault("found", {})
    missing: list[str] = ({} if state is None else state).setdefault("missing", [])
    for n, uid in enumerate(uids):
        if uid not in found and uid not in missing:
            user = _lookup(client.users_info, f"users.info {uid}", "user", user=uid)
            if user is None:
                missing.append(uid)
            else:
                found[uid] = user
        progress("slack: users", n + 1, len(uids))
    for uid in uids:
        if uid in missing:
            report.skip("users.info: user not found (names come from the messages)")
    return [found[uid] for uid in uids if uid in found]


def mentioned_channels(
    client: WebClient,
    ids: list[str],
    report: SourceReport,
    state: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """conversations.info for channels mentioned without a name, so mentions read as #name."""
    found: dict[str, Any] = ({} if state is None else state).setdefault("found", {})
    missing: list[str] = ({} if state is None else state).setdefault("missing", [])
    for cid in ids:
        if cid not in found and cid not in missing:
            info = _lookup(
                client.conversations_info, f"conversations.info {cid}", "channel", channel=cid
            )
            if info is None:
                missing.append(cid)
            else:
                found[cid] = info
    for cid in ids:
        if cid in missing:
            report.skip("mentioned channel not visible to the bot (shown by id)")
    return [found[cid] for cid in ids if cid in found]


_NOT_FOUND = frozenset({"user_not_found", "user_not_visible", "channel_not_found"})


def _lookup(method: Callable[..., SlackResponse], what: str, field: str, **kwargs: Any) -> Any:
    """One users.info / conversations.info object, or None when Slack says it does not exist."""
    from slack_sdk.errors import SlackApiError

    with _guard(what):
        try:
            return method(**kwargs)[field]
        except SlackApiError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise


def write_days(folder: Path, messages: list[dict[str, Any]]) -> list[Path]:
    """One JSON list per UTC day, as Slack exports do; replaces day files of an earlier run."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if _DAY_FILE.match(old.name):
            old.unlink()
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        day = datetime.fromtimestamp(float(message["ts"]), tz=UTC).strftime("%Y-%m-%d")
        days[day].append(message)
    paths = []
    for day, items in sorted(days.items()):
        save_json(folder / f"{day}.json", items)
        paths.append(folder / f"{day}.json")
    return paths


def _folder_name(channel: dict[str, Any]) -> str:
    return re.sub(r"[\\/]", "_", str(channel.get("name") or channel["id"]))


def harvest(ref: IncidentRef, out: Path, cfg: SlackConfig, progress: Progress) -> SourceReport:
    """Fetch the incident's Slack channels and write out/slack/ in Slack's export layout.

    A channel's day files are written once the channel is complete; users.json and
    channels.json at the end. A run that stops keeps its progress in a checkpoint and the next
    run with the same channels and window resumes from it.
    """
    report = SourceReport(name=SOURCE)
    if not ref.of(SOURCE):
        report.status = "empty"
        report.skip("no slack_channels for this incident")
        return report
    client = make_client(cfg)
    dest = out / SOURCE
    checkpoint = Checkpoint(dest, ref_key(SOURCE, ref))
    try:
        channels = resolve_channels(client, ref.of(SOURCE), cfg)
        uids: set[str] = set()
        mentions: set[str] = set()
        for channel in channels:
            unit = f"channel:{channel['id']}"
            if not checkpoint.done(unit):
                messages = channel_messages(
                    client, channel, ref, cfg, progress, checkpoint.unit(unit)
                )
                paths = write_days(dest / _folder_name(channel), messages)
                checkpoint.finish(
                    unit,
                    files=[path.relative_to(out).as_posix() for path in paths],
                    records=len(messages),
                    users=user_ids(messages),
                    mentions=channel_mentions(messages),
                )
            done = checkpoint.unit(unit)
            report.files += done["files"]
            report.records += int(done["records"])
            uids.update(done["users"])
            mentions.update(done["mentions"])
        state = checkpoint.state
        users = fetch_users(client, sorted(uids), report, progress, state.setdefault("users", {}))
        known = {c["id"] for c in channels}
        extra = mentioned_channels(
            client, sorted(mentions - known), report, state.setdefault("mentioned", {})
        )
    except BaseException:
        checkpoint.save()
        raise
    save_json(dest / "users.json", users)
    save_json(dest / "channels.json", channels + extra)
    checkpoint.clear()
    report.files += [f"{SOURCE}/users.json", f"{SOURCE}/channels.json"]
    report.status = "ok" if report.records else "empty"
    return report


def check(cfg: SlackConfig) -> list[str]:
    """auth.test, then the granted scopes from the x-oauth-scopes header."""
    client = make_client(cfg)
    with _guard("auth.test"):
        resp = client.auth_test()
    lines = [f"auth.test ok: {resp.get('user')} in {resp.get('team')} ({resp.get('url')})"]
    headers = {str(k).lower(): v for k, v in (resp.headers or {}).items()}
    header = headers.get("x-oauth-scopes")
    if isinstance(header, list):
        header = ",".join(header)
    if header is None:
        lines.append("granted scopes unknown: Slack sent no x-oauth-scopes header")
        return lines
    granted = {s.strip() for s in str(header).split(",") if s.strip()}
    missing = [s for s in NEEDED_SCOPES if s not in granted]
    if missing:
        hint = "add them under OAuth & Permissions in the Slack app settings and reinstall the app"
        raise ConnectorError(SOURCE, f"the token lacks scopes: {', '.join(missing)}", hint=hint)
    lines.append(f"scopes ok: {', '.join(NEEDED_SCOPES)}")
    return lines
