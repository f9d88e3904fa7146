"""Sentry live mode: settings, the API client, harvest and check.

`retro harvest --from sentry=WHAT` takes `ORG/PROJECT` (that project's issues seen in the
window), `ORG` (every project's) or `ORG/issues/ID` (one issue). Issues come from
`GET /api/0/organizations/{org}/issues/` with `start`/`end` and an empty `query` (the default
query would hide resolved issues), paged by the `Link` header. Sentry sends a `next` link even
on the last page; its `results="false"` is what ends the list. Each issue's details (with its
activity: regressions, escalations, comments, resolution) come from
`GET /api/0/organizations/{org}/issues/{id}/`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, Field, SecretStr

from connectors._support import settings_with_secret, write_json
from connectors.sentry.read import SOURCE, is_issue
from retro.connector import IncidentRef
from retro.errors import ConfigError, ConnectorError
from retro.models import Progress, SourceReport, no_progress
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

TOKEN_ENV = "SENTRY_AUTH_TOKEN"
_LINK = re.compile(r'<(?P<url>[^>]*)>((?:\s*;\s*[a-z]+="?[^";,]*"?)*)')
_PARAM = re.compile(r'([a-z]+)="?([^";]*)"?')


class SentryConfig(BaseModel):
    """Live-mode settings for the Sentry API (sentry.io or self-hosted)."""

    token: SecretStr | None = Field(
        default=None,
        description="Auth token (organization token, or a personal token with event:read, "
        "project:read, org:read)",
        json_schema_extra={"env": TOKEN_ENV},
    )
    base_url: str = Field(
        default="https://sentry.io",
        description="Sentry URL: https://sentry.io, https://de.sentry.io, or your self-hosted host",
        json_schema_extra={"env": "SENTRY_URL"},
    )
    page_size: int = Field(default=100, ge=1, le=100, description="Issues per page (max 100)")
    max_issues: int = Field(
        default=100, ge=0, description="Issues whose details and activity are fetched (most recent)"
    )
    lookback_hours: float = Field(
        default=24.0, gt=0, description="Window when --since is not given: hours before --until"
    )
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First 5xx back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def _config(config: BaseModel) -> SentryConfig:
    return settings_with_secret(config, SentryConfig, "token", "Sentry", TOKEN_ENV)


def links(header: str) -> dict[str, dict[str, str]]:
    """A Link header as {rel: {"url": …, "results": …, "cursor": …}}."""
    out: dict[str, dict[str, str]] = {}
    for match in _LINK.finditer(header or ""):
        params = dict(_PARAM.findall(match.group(2)))
        if "rel" in params:
            out[params["rel"]] = {"url": match["url"], **params}
    return out


class _Client:
    """httpx GETs under retro.retry; returns the JSON body (object or list) and its headers."""

    def __init__(self, cfg: SentryConfig) -> None:
        import httpx

        assert cfg.token is not None
        self.policy = RetryPolicy(
            retries=cfg.max_retries, backoff=cfg.backoff, max_wait=cfg.max_wait
        )
        self.client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            headers={
                "User-Agent": "retro-postmortem",
                "Authorization": f"Bearer {cfg.token.get_secret_value()}",
                "Accept": "application/json",
            },
            timeout=cfg.timeout,
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, path: str, params: Any = None) -> tuple[Any, httpx.Headers]:
        import httpx

        def attempt() -> tuple[Any, httpx.Headers]:
            try:
                resp = self.client.get(path, params=params)
            except httpx.TransportError as exc:
                raise Retryable(f"GET {path} failed: {type(exc).__name__} {exc}") from None
            if resp.status_code == 429 or resp.status_code >= 500:
                wait = retry_after(resp.headers)
                raise Retryable(
                    f"HTTP {resp.status_code} on {path}", retry_after=wait, response=resp
                )
            if resp.status_code >= 400:
                raise _error(resp, path)
            try:
                return resp.json(), resp.headers
            except ValueError:  # a proxy's HTML page, or a body cut short
                raise Retryable(f"GET {path} returned a body that is not JSON") from None

        def give_up(exc: Retryable) -> NoReturn:
            if exc.response is None:
                hint = "check network access and SENTRY_URL, then run the harvest again"
                raise ConnectorError(SOURCE, f"{exc.detail} (after retries)", hint=hint) from None
            raise _error(exc.response, path)  # type: ignore[arg-type]

        return self.policy.run(attempt, give_up=give_up)


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    try:
        body = resp.json()
        detail = str(body.get("detail") or "") if isinstance(body, dict) else ""
    except ValueError:
        detail = ""
    detail = f": {detail}" if detail else ""
    if status == 401:
        hint = f"set {TOKEN_ENV} to an auth token for this Sentry (and SENTRY_URL if self-hosted)"
        return ConnectorError(SOURCE, f"Sentry rejected the token (401{detail})", hint=hint)
    if status == 403:
        hint = "the token needs event:read, project:read and org:read on this organization"
        return ConnectorError(SOURCE, f"the token may not read {path} (403{detail})", hint=hint)
    if status == 404:
        hint = "check the organization and project slugs (as in the Sentry URL) and SENTRY_URL"
        return ConnectorError(SOURCE, f"{path} not found (404{detail})", hint=hint)
    if status == 429:
        hint = "wait a minute and run the harvest again"
        return ConnectorError(SOURCE, f"still rate limited on {path} (429)", hint=hint)
    hint = "retry later; Sentry may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def issues(api: _Client, cfg: SentryConfig, org: str, params: dict[str, Any]) -> list[Any]:
    """Every issue the list endpoint returns, page by page until `results="false"`."""
    path = f"/api/0/organizations/{org}/issues/"
    params = {**params, "limit": cfg.page_size}
    found: list[Any] = []
    seen: set[str] = set()
    cursors: set[str] = set()
    while True:
        body, headers = api.get(path, params=params)
        if not isinstance(body, list):
            raise ConnectorError(SOURCE, f"GET {path} returned no list of issues")
        for item in body:
            key = str(item.get("id")) if isinstance(item, dict) else ""
            if not key or key not in seen:
                found.append(item)
                seen.add(key)
        nxt = links(headers.get("link", "")).get("next", {})
        cursor = nxt.get("cursor")
        # The next link is there even on the last page: only results="true" means more.
        if nxt.get("results") != "true" or not cursor or cursor in cursors:
            return found
        cursors.add(cursor)
        params["cursor"] = cursor


def _target(target: str) -> tuple[str, str | None, str | None]:
    """(org, project slug, issue id) from ORG, ORG/PROJECT or ORG/issues/ID."""
    parts = [p for p in target.strip().strip("/").split("/") if p]
    if len(parts) == 3 and parts[1] == "issues":
        return parts[0], None, parts[2]
    if len(parts) in (1, 2):
        return parts[0], parts[1] if len(parts) == 2 else None, None
    raise ConfigError(
        f"sentry: cannot harvest {target!r}", hint="use ORG, ORG/PROJECT or ORG/issues/ISSUE_ID"
    )


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch the issues `--from sentry=…` names and write them under out/sentry/."""
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    folder = out / SOURCE
    until = ref.until or datetime.now(UTC)
    since = ref.since or until - timedelta(hours=cfg.lookback_hours)
    targets = [_target(t) for t in ref.of(SOURCE)]
    with _Client(cfg) as api:
        for n, (org, project, issue_id) in enumerate(targets):
            progress(f"sentry {org}/{project or issue_id or '*'}", n, len(targets))
            if issue_id:
                _detail(api, org, issue_id, folder, report)
                continue
            params: dict[str, Any] = {
                "start": since.isoformat(),
                "end": until.isoformat(),
                "query": "",
                "sort": "date",
            }
            name = org
            if project:
                body, _ = api.get(f"/api/0/projects/{org}/{project}/")
                params["project"] = str(body.get("id")) if isinstance(body, dict) else ""
                name = f"{org}-{project}"
            found = issues(api, cfg, org, params)
            write_json(folder, f"issues-{name}.json", found, report)
            report.records += len(found)
            wanted = [i for i in found if is_issue(i)][: cfg.max_issues]
            if len(found) > len(wanted):
                report.skip("issue details not fetched (over max_issues)", len(found) - len(wanted))
            for k, item in enumerate(wanted):
                progress(f"sentry issue {item['shortId']}", k, len(wanted))
                _detail(api, org, str(item["id"]), folder, report)
    report.status = "ok" if report.files else "empty"
    return report


def _detail(api: _Client, org: str, issue_id: str, folder: Path, report: SourceReport) -> None:
    body, _ = api.get(f"/api/0/organizations/{org}/issues/{issue_id}/")
    if not is_issue(body):
        raise ConnectorError(SOURCE, f"GET issue {issue_id} returned no issue")
    write_json(folder, f"issue-{issue_id}.json", body, report)
    report.records += 1 + len(body.get("activity") or [])


def check(config: BaseModel) -> list[str]:
    """Verify the token and the organizations it reads; return what was verified."""
    cfg = _config(config)
    with _Client(cfg) as api:
        body, _ = api.get("/api/0/organizations/")
    orgs = (
        [str(o.get("slug")) for o in body if isinstance(o, dict)] if isinstance(body, list) else []
    )
    return [
        f"Sentry at {cfg.base_url}",
        f"organizations the token reads: {', '.join(orgs) or 'none'}",
    ]
