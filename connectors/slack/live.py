"""Slack live mode: harvest channels with slack_sdk into the export layout file mode reads.

Retries are slack_sdk's own: a RateLimitErrorRetryHandler (honours Retry-After on 429) and a
ServerErrorRetryHandler (500/503) appended to the WebClient's retry_handlers.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from retro.connector import IncidentRef
from retro.errors import ConnectorError, MissingCredential
from retro.models import Progress, SourceReport

if TYPE_CHECKING:  # slack_sdk loads in about 0.1 s; only harvest and check need it
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
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
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})")
_USER_FIELD = re.compile(r'"(?:user|user_id)": "([UW][A-Z0-9]{2,}|USLACKBOT)"')
# Channel mentions without a label (<#C123>, rich_text channel elements) need channels.json.
_CHANNEL_MENTION = re.compile(r'<#([CG][A-Z0-9]{2,})\|?>|"channel_id": "([CG][A-Z0-9]{2,})"')
_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
_TOKEN_HINT = "check SLACK_BOT_TOKEN (a bot token starts with xoxb-) or run `retro keys set slack`"


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
        default=5, ge=0, description="Retries of a rate-limited (429) or failed (500/503) call"
    )
    retry_backoff: float = Field(
        default=1.0, ge=0.0, description="Seconds; base of the exponential wait between 5xx retries"
    )
    timeout: int = Field(default=30, ge=1, description="Seconds to wait for one HTTP response")


def as_config(config: BaseModel) -> SlackConfig:
    """Accept a SlackConfig, or any model with the same fields."""
    if isinstance(config, SlackConfig):
        return config
    return SlackConfig.model_validate(config.model_dump())


def _proportional(duration: float) -> float:
    """Up to 50% extra wait: spreads retries without the SDK's fixed extra second."""
    return duration * (1.0 + random.random() / 2)


def make_client(cfg: SlackConfig) -> WebClient:
    """A WebClient whose retries are slack_sdk's handlers; raises MissingCredential."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import (
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )
    from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
    from slack_sdk.http_retry.jitter import Jitter

    class ProportionalJitter(Jitter):
        def recalculate(self, duration: float) -> float:
            return _proportional(duration)

    token = cfg.token.get_secret_value().strip() if cfg.token else ""
    if not token:
        raise MissingCredential("Slack", "SLACK_BOT_TOKEN")
    client = WebClient(token=token, base_url=cfg.base_url, timeout=cfg.timeout)
    interval = BackoffRetryIntervalCalculator(
        backoff_factor=cfg.retry_backoff, jitter=ProportionalJitter()
    )
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=cfg.max_retries))
    client.retry_handlers.append(
        ServerErrorRetryHandler(max_retry_count=cfg.max_retries, interval_calculator=interval)
    )
    return client


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
    if status == 429 or code == "ratelimited":
        hint = "wait a minute and retry, or raise max_retries"
        return ConnectorError(SOURCE, f"{what}: still rate limited after retries", hint=hint)
    if status >= 500:
        hint = "Slack may be degraded (https://slack-status.com); retry later"
        return ConnectorError(SOURCE, f"{what}: Slack answered HTTP {status}", hint=hint)
    if code.startswith("Received a response in a non-JSON format") or not code:
        hint = "check that SLACK_API_URL points at the Slack Web API (https://slack.com/api/)"
        return ConnectorError(SOURCE, f"{what}: malformed response (HTTP {status})", hint=hint)
    hint = "see the method's error list at https://api.slack.com/methods"
    return ConnectorError(SOURCE, f"{what}: {code}", hint=hint)


@contextmanager
def _guard(what: str) -> Iterator[None]:
    """Turn slack_sdk and network failures into one-line ConnectorErrors."""
    from slack_sdk.errors import SlackApiError

    try:
        yield
    except SlackApiError as exc:
        raise api_error(exc, what) from None
    except OSError as exc:  # URLError, timeouts, refused connections (after the SDK's retries)
        reason = getattr(exc, "reason", None) or exc
        hint = "check SLACK_API_URL and the network"
        raise ConnectorError(SOURCE, f"{what}: cannot reach Slack ({reason})", hint=hint) from None


def _pages(
    method: Callable[..., SlackResponse], what: str, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Every page of a cursor-paginated method; slack_sdk follows next_cursor."""
    with _guard(what):
        for page in method(**kwargs):
            if not isinstance(page.data, dict):
                raise ConnectorError(SOURCE, f"{what}: response is not a JSON object")
            yield page.data


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
        with _guard(f"conversations.info {cid}"):
            channels.append(client.conversations_info(channel=cid)["channel"])
    return channels


def channel_messages(
    client: WebClient,
    channel: dict[str, Any],
    ref: IncidentRef,
    cfg: SlackConfig,
    progress: Progress,
) -> list[dict[str, Any]]:
    """History in the window plus every reply of its threads, oldest first, each once."""
    cid = channel["id"]
    label = "#" + str(channel.get("name") or cid)
    kwargs: dict[str, Any] = {"channel": cid, "limit": cfg.page_size, "inclusive": True}
    if ref.since is not None:
        kwargs["oldest"] = _slack_ts(ref.since)
    if ref.until is not None:
        kwargs["latest"] = _slack_ts(ref.until)
    by_ts: dict[str, dict[str, Any]] = {}
    what = f"conversations.history {label}"
    for page in _pages(client.conversations_history, what, **kwargs):
        for message in _items(page, "messages", what):
            by_ts.setdefault(str(message.get("ts")), message)
        progress(f"slack: {label} history", len(by_ts), None)
    roots = [m for m in list(by_ts.values()) if int(m.get("reply_count") or 0) > 0]
    what = f"conversations.replies {label}"
    for n, root in enumerate(roots):
        # Replies are not cut to the window: a thread started in it belongs to the incident.
        pages = _pages(
            client.conversations_replies, what, channel=cid, ts=root["ts"], limit=cfg.page_size
        )
        for page in pages:
            for message in _items(page, "messages", what):
                # The root comes back on every page; setdefault keeps one copy of each ts.
                by_ts.setdefault(str(message.get("ts")), message)
        progress(f"slack: {label} threads", n + 1, len(roots))
    bad = [ts for ts in by_ts if not re.match(r"^\d+(\.\d+)?$", ts)]
    if bad:
        hint = "check that SLACK_API_URL points at the Slack Web API"
        raise ConnectorError(SOURCE, f"{label}: a message has no valid ts ({bad[0]!r})", hint=hint)
    return sorted(by_ts.values(), key=_ts_key)


def user_ids(messages: list[dict[str, Any]]) -> list[str]:
    """Authors and mentioned users of the messages, sorted."""
    blob = json.dumps(messages)
    return sorted(set(_USER_FIELD.findall(blob)) | set(_MENTION.findall(blob)))


def fetch_users(
    client: WebClient, uids: list[str], report: SourceReport, progress: Progress
) -> list[dict[str, Any]]:
    """users.info for each id; users Slack cannot show (other workspaces) are counted skips."""
    from slack_sdk.errors import SlackApiError

    users = []
    for n, uid in enumerate(uids):
        with _guard(f"users.info {uid}"):
            try:
                users.append(client.users_info(user=uid)["user"])
            except SlackApiError as exc:
                if _code(exc) not in ("user_not_found", "user_not_visible"):
                    raise
                report.skip("users.info: user not found (names come from the messages)")
        progress("slack: users", n + 1, len(uids))
    return users


def mentioned_channels(
    client: WebClient, messages: list[dict[str, Any]], known: set[str], report: SourceReport
) -> list[dict[str, Any]]:
    """conversations.info for channels mentioned without a name, so mentions read as #name."""
    from slack_sdk.errors import SlackApiError

    found = []
    ids = {a or b for a, b in _CHANNEL_MENTION.findall(json.dumps(messages))} - known
    for cid in sorted(ids):
        with _guard(f"conversations.info {cid}"):
            try:
                found.append(client.conversations_info(channel=cid)["channel"])
            except SlackApiError as exc:
                if _code(exc) != "channel_not_found":
                    raise
                report.skip("mentioned channel not visible to the bot (shown by id)")
    return found


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


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
        _write_json(folder / f"{day}.json", items)
        paths.append(folder / f"{day}.json")
    return paths


def _folder_name(channel: dict[str, Any]) -> str:
    return re.sub(r"[\\/]", "_", str(channel.get("name") or channel["id"]))


def harvest(ref: IncidentRef, out: Path, cfg: SlackConfig, progress: Progress) -> SourceReport:
    """Fetch the incident's Slack channels and write out/slack/ in Slack's export layout."""
    report = SourceReport(name=SOURCE)
    if not ref.of(SOURCE):
        report.status = "empty"
        report.skip("no slack_channels for this incident")
        return report
    client = make_client(cfg)
    dest = out / SOURCE
    channels = resolve_channels(client, ref.of(SOURCE), cfg)
    everything: list[dict[str, Any]] = []
    for channel in channels:
        messages = channel_messages(client, channel, ref, cfg, progress)
        for path in write_days(dest / _folder_name(channel), messages):
            report.files.append(path.relative_to(out).as_posix())
        report.records += len(messages)
        everything += messages
    users = fetch_users(client, user_ids(everything), report, progress)
    known = {c["id"] for c in channels}
    channels = channels + mentioned_channels(client, everything, known, report)
    _write_json(dest / "users.json", users)
    _write_json(dest / "channels.json", channels)
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
