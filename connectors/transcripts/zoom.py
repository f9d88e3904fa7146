"""Zoom live mode: cloud-recording transcripts through the Zoom REST API v2.

`GET /meetings/{meetingId}/recordings` lists one meeting's recording files; the one with
`file_type: TRANSCRIPT` (audio transcript, WebVTT with speakers) is downloaded from its
`download_url` with the same bearer token (Zoom answers with a redirect to its storage, which
httpx follows without the Authorization header). `GET /users/{userId}/recordings` pages a
user's recordings by `next_page_token` (at most 30 days per call) for `zoom:user:<id>`.
Tokens come from a Server-to-Server OAuth app (account credentials grant) or are given as is.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from connectors._support import JsonClient, error_detail
from connectors.teams.graph import get_text
from retro.errors import ConnectorError, MissingCredential
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:
    import httpx

    from connectors.transcripts.live import TranscriptsConfig

SOURCE = "transcripts"
NEEDED_SCOPES = (
    "cloud_recording:read:list_recording_files:admin",
    "cloud_recording:read:list_user_recordings:admin",
)
# Zoom's classic (pre-granular) scopes that grant the same reads.
CLASSIC_SCOPES = ("recording:read:admin", "recording:read")
_KEEP = ("uuid", "id", "topic", "start_time", "duration", "timezone", "host_id", "share_url")
_KEEP_FILE = (
    "id",
    "meeting_id",
    "recording_start",
    "recording_end",
    "file_type",
    "file_extension",
    "file_size",
    "recording_type",
    "status",
    "play_url",
)


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def uses_oauth(cfg: TranscriptsConfig) -> bool:
    return bool(cfg.zoom_account_id and cfg.zoom_client_id and _secret(cfg.zoom_client_secret))


def configured(cfg: TranscriptsConfig) -> bool:
    return uses_oauth(cfg) or bool(_secret(cfg.zoom_token))


def acquire_token(cfg: TranscriptsConfig) -> tuple[str, list[str] | None]:
    """A Zoom access token, and the scopes it was granted (None when the token was given)."""
    if uses_oauth(cfg):
        return _account_credentials(cfg)
    token = _secret(cfg.zoom_token)
    if not token:
        missing = MissingCredential("Zoom", "ZOOM_CLIENT_SECRET", key_name=SOURCE)
        missing.hint = (
            "set ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET (or ZOOM_TOKEN), "
            "or run `retro keys set transcripts.zoom_client_secret`"
        )
        raise missing
    return token, None


def _account_credentials(cfg: TranscriptsConfig) -> tuple[str, list[str] | None]:
    import httpx

    basic = base64.b64encode(f"{cfg.zoom_client_id}:{_secret(cfg.zoom_client_secret)}".encode())
    url = f"{cfg.zoom_oauth_url.rstrip('/')}/oauth/token"
    params = {"grant_type": "account_credentials", "account_id": str(cfg.zoom_account_id)}
    policy = RetryPolicy(retries=cfg.max_retries, backoff=cfg.backoff, max_wait=cfg.max_wait)

    def attempt() -> httpx.Response:
        try:
            resp = httpx.post(
                url,
                params=params,
                headers={"Authorization": f"Basic {basic.decode()}"},
                timeout=cfg.timeout,
            )
        except httpx.TransportError as exc:
            raise Retryable(f"Zoom token request failed: {exc}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise Retryable(
                f"HTTP {resp.status_code}", retry_after=retry_after(resp.headers), response=resp
            )
        return resp

    def give_up(exc: Retryable) -> NoReturn:
        hint = "check ZOOM_OAUTH_URL and the network; retry later"
        raise ConnectorError(SOURCE, f"cannot get a Zoom token ({exc.detail})", hint=hint) from None

    resp = policy.run(attempt, give_up=give_up)
    try:
        body = resp.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    if resp.status_code == 200 and body.get("access_token"):
        scopes = str(body.get("scope") or "").split()
        return str(body["access_token"]), scopes
    reason = body.get("reason") or body.get("error") or f"HTTP {resp.status_code}"
    hint = "check ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET of the Server-to-Server OAuth app"
    raise ConnectorError(SOURCE, f"Zoom refused a token ({reason})", hint=hint)


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    code = error_detail(resp, "code")
    message = error_detail(resp, "message")
    detail = f"{status}" + (f" code {code}" if code else "") + (f": {message}" if message else "")
    shown = path.split("?", 1)[0]
    if status == 401:
        hint = "the Zoom token is invalid or expired; check ZOOM_CLIENT_ID/ZOOM_CLIENT_SECRET or ZOOM_TOKEN"
        return ConnectorError(SOURCE, f"Zoom rejected the token ({detail})", hint=hint)
    if status == 403 or code == "4711":
        hint = (
            f"add the {NEEDED_SCOPES[0]} scope to the Zoom app (classic apps: recording:read:admin)"
        )
        return ConnectorError(SOURCE, f"Zoom refused {shown} ({detail})", hint=hint)
    if status == 404:
        hint = "check the meeting id (a UUID names one occurrence) and that cloud recording with audio transcript was on"
        return ConnectorError(SOURCE, f"Zoom has no recording at {shown} ({detail})", hint=hint)
    if status == 429:
        hint = "Zoom's rate limit for this account was reached; wait and run the harvest again"
        return ConnectorError(
            SOURCE, f"still rate limited on {shown} after retries (429)", hint=hint
        )
    hint = "retry later; see https://status.zoom.us"
    return ConnectorError(SOURCE, f"GET {shown} failed with HTTP {detail}", hint=hint)


def meeting_path(meeting: str) -> str:
    """`/meetings/{id}/recordings`; a UUID that starts with / or holds // is double-encoded."""
    ident = meeting.strip()
    if ident.startswith("/") or "//" in ident:
        ident = quote(quote(ident, safe=""), safe="")
    else:
        ident = quote(ident, safe="")
    return f"/meetings/{ident}/recordings"


class ZoomClient:
    """GETs against the Zoom API, and transcript downloads, under the shared retry policy."""

    def __init__(self, cfg: TranscriptsConfig) -> None:
        token, _ = acquire_token(cfg)
        self.api_host = urlsplit(cfg.zoom_api_url).hostname or ""
        self.page_size = cfg.zoom_page_size
        self.api = JsonClient(
            source=SOURCE,
            settings=_Settings(cfg),
            headers={"Authorization": f"Bearer {token}"},
            on_error=_error,
        )
        self.api.client.follow_redirects = True

    def __enter__(self) -> ZoomClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.client.close()

    def recordings(self, meeting: str) -> dict[str, Any]:
        return self.api.get(meeting_path(meeting))

    def user_recordings(
        self, user: str, since: datetime, until: datetime
    ) -> Iterator[dict[str, Any]]:
        """Every meeting with recordings of `user` between since and until, page by page, in
        30-day slices (Zoom's limit per call); a short or empty page with a token goes on."""
        day = since.date()
        while day <= until.date():
            last = min(day + timedelta(days=29), until.date())
            token = ""
            seen: set[str] = set()
            while True:
                params = {
                    "from": day.isoformat(),
                    "to": last.isoformat(),
                    "page_size": str(self.page_size),
                }
                if token:
                    params["next_page_token"] = token
                body = self.api.get(f"/users/{quote(user, safe='@')}/recordings", params)
                meetings = body.get("meetings")
                if not isinstance(meetings, list):
                    hint = "check ZOOM_API_URL points at https://api.zoom.us/v2"
                    raise ConnectorError(
                        SOURCE, "Zoom recordings list has no `meetings`", hint=hint
                    )
                yield from (m for m in meetings if isinstance(m, dict))
                token = str(body.get("next_page_token") or "")
                if not token:
                    break
                if token in seen:
                    raise ConnectorError(
                        SOURCE, "Zoom paging does not advance (same next_page_token)"
                    )
                seen.add(token)
            day = last + timedelta(days=1)

    def download(self, url: str) -> str:
        """A recording file's text; the token goes only to Zoom's own hosts."""
        host = urlsplit(url).hostname or ""
        if host != self.api_host and not (host == "zoom.us" or host.endswith(".zoom.us")):
            hint = "a download_url outside zoom.us is not followed with the token"
            raise ConnectorError(SOURCE, f"unexpected download host {host}", hint=hint)
        text = get_text(self.api, url)
        if not text.lstrip().startswith("WEBVTT"):
            hint = "the file Zoom returned is not WebVTT; the transcript may still be processing"
            raise ConnectorError(
                SOURCE, f"download of {urlsplit(url).path} is not a transcript", hint=hint
            )
        return text


class _Settings:
    """The JsonClient settings of the Zoom API, from the connector's config."""

    def __init__(self, cfg: TranscriptsConfig) -> None:
        self.base_url = cfg.zoom_api_url
        self.max_retries = cfg.max_retries
        self.backoff = cfg.backoff
        self.max_wait = cfg.max_wait
        self.timeout = cfg.timeout


def transcript_files(meeting: dict[str, Any]) -> list[dict[str, Any]]:
    """The meeting's audio transcripts; its closed captions only when it has none."""
    files = [f for f in meeting.get("recording_files") or [] if isinstance(f, dict)]
    found = [f for f in files if f.get("file_type") == "TRANSCRIPT"]
    return found or [f for f in files if f.get("file_type") == "CC"]


def sidecar(meeting: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    """What the bundle keeps about a Zoom transcript: its start, and the API's own fields
    (never the download token or passcodes)."""
    return {
        "recording_start": rec.get("recording_start"),
        "platform": "zoom",
        "title": meeting.get("topic"),
        "meeting_id": str(meeting.get("id") or ""),
        "transcript_id": f"zoom-{rec.get('id')}",
        "url": meeting.get("share_url") or rec.get("play_url"),
        "source": {
            "meeting": {k: meeting[k] for k in _KEEP if k in meeting},
            "recording_file": {k: rec[k] for k in _KEEP_FILE if k in rec},
        },
    }
