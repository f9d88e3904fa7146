"""GitHub live mode: settings, the REST client (Link paging, rate limits), harvest and check.

`retro harvest --from github=OWNER/REPO` fetches the changes in a window before impact:
deployments with their statuses, pull requests merged into the default branch, published
releases, and runs of deploy workflows. The window is `window.changes_window`'s.

Rate limits: a 403 or 429 with `x-ratelimit-remaining: 0` is the primary limit; retro waits until
`x-ratelimit-reset` when that is within `max_wait`, else stops with the time it resets. A 403 or
429 with `retry-after` (or a "secondary rate limit" message) is a secondary limit; retro waits
as asked (a minute when not told). Every request sends `X-GitHub-Api-Version`.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, Field, SecretStr

from connectors._support import settings_with_secret, write_json
from connectors.github.read import SOURCE, is_deploy_workflow
from connectors.github.window import changes_window
from retro.connector import IncidentRef, parse_time
from retro.errors import ConfigError, ConnectorError
from retro.models import Progress, SourceReport, no_progress
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

TOKEN_ENV = "GITHUB_TOKEN"
SECONDARY_WAIT = 60.0  # GitHub: without retry-after, wait at least a minute
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


class GitHubConfig(BaseModel):
    """Live-mode settings for the GitHub REST API (github.com or GitHub Enterprise Server)."""

    token: SecretStr | None = Field(
        default=None,
        description="Fine-grained token with read access to Deployments, Pull requests, "
        "Contents and Actions (or a classic token with repo)",
        json_schema_extra={"env": TOKEN_ENV},
    )
    base_url: str = Field(
        default="https://api.github.com",
        description="API base URL; GitHub Enterprise Server: https://HOST/api/v3",
        json_schema_extra={"env": "GITHUB_API_URL"},
    )
    api_version: str = Field(default="2022-11-28", description="X-GitHub-Api-Version header")
    page_size: int = Field(default=100, ge=1, le=100, description="Items per page (max 100)")
    lookback_hours: float = Field(
        default=24.0, gt=0, description="Hours of changes fetched before the start of impact"
    )
    max_retries: int = Field(default=5, ge=0, description="Retries on rate limits, 5xx, network")
    backoff: float = Field(default=1.0, ge=0, description="First 5xx back-off in seconds; doubles")
    max_wait: float = Field(
        default=120.0, ge=0, description="Longest wait for a rate limit; longer ones stop the run"
    )
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def _config(config: BaseModel) -> GitHubConfig:
    return settings_with_secret(config, GitHubConfig, "token", "GitHub", TOKEN_ENV)


class _Client:
    """httpx GETs under retro.retry with GitHub's rate-limit rules; follows Link paging."""

    def __init__(self, cfg: GitHubConfig) -> None:
        import httpx

        assert cfg.token is not None
        self.cfg = cfg
        self.policy = RetryPolicy(
            retries=cfg.max_retries, backoff=cfg.backoff, max_wait=cfg.max_wait
        )
        self.client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            headers={
                "User-Agent": "retro-postmortem",
                "Authorization": f"Bearer {cfg.token.get_secret_value()}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": cfg.api_version,
            },
            timeout=cfg.timeout,
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, url: str, params: Any = None) -> tuple[Any, httpx.Headers]:
        """GET a path or an absolute URL (a Link header's); (JSON body, headers)."""
        import httpx

        def attempt() -> tuple[Any, httpx.Headers]:
            try:
                resp = self.client.get(url, params=params)
            except httpx.TransportError as exc:
                raise Retryable(f"GET {url} failed: {type(exc).__name__} {exc}") from None
            if resp.status_code in (403, 429):
                self._rate_limited(resp, url)
            if resp.status_code >= 500:
                raise Retryable(f"HTTP {resp.status_code} on {url}", response=resp)
            if resp.status_code >= 400:
                raise _error(resp, url)
            try:
                return resp.json(), resp.headers
            except ValueError:  # a proxy's HTML page, or a body cut short
                raise Retryable(f"GET {url} returned a body that is not JSON") from None

        def give_up(exc: Retryable) -> NoReturn:
            if exc.response is None:
                hint = "check network access and GITHUB_API_URL, then run the harvest again"
                raise ConnectorError(SOURCE, f"{exc.detail} (after retries)", hint=hint) from None
            raise _error(exc.response, url)  # type: ignore[arg-type]

        return self.policy.run(attempt, give_up=give_up)

    def _rate_limited(self, resp: httpx.Response, url: str) -> None:
        """Raise Retryable for a primary or secondary rate limit; return for any other 403."""
        headers = resp.headers
        if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
            wait = max(0.0, float(headers["x-ratelimit-reset"]) - time.time())
            if wait > self.cfg.max_wait:
                at = datetime.fromtimestamp(float(headers["x-ratelimit-reset"]), UTC)
                hint = f"run the harvest again after {at:%H:%M} UTC, or raise max_wait"
                raise ConnectorError(SOURCE, "the token's hourly rate limit is used up", hint=hint)
            raise Retryable(f"rate limited on {url}", retry_after=wait, response=resp)
        asked = retry_after(headers)
        if asked is not None:
            raise Retryable(f"secondary rate limit on {url}", retry_after=asked, response=resp)
        if "secondary rate limit" in resp.text.lower() or resp.status_code == 429:
            raise Retryable(f"rate limited on {url}", retry_after=SECONDARY_WAIT, response=resp)

    def pages(self, path: str, params: dict[str, Any], stop: Any = None) -> list[Any]:
        """Every item over the Link header's `next` pages (a list body, or `workflow_runs`);
        `stop(page)` True ends early (newest-first lists once past the window)."""
        items: list[Any] = []
        seen: set[str] = set()
        url: str | None = path
        query: Any = {**params, "per_page": self.cfg.page_size}
        while url:
            body, headers = self.get(url, params=query)
            page = body.get("workflow_runs") if isinstance(body, dict) else body
            if not isinstance(page, list):
                raise ConnectorError(SOURCE, f"GET {path} returned no list")
            for item in page:
                key = str(item.get("id")) if isinstance(item, dict) else ""
                if not key or key not in seen:
                    items.append(item)
                    seen.add(key)
            match = _NEXT.search(headers.get("link", ""))
            url, query = (match.group(1), None) if match and page else (None, None)
            if stop is not None and stop(page):
                break
        return items


def _error(resp: httpx.Response, url: str) -> ConnectorError:
    status = resp.status_code
    try:
        body = resp.json()
        detail = str(body.get("message") or "") if isinstance(body, dict) else ""
    except ValueError:
        detail = ""
    detail = f": {detail}" if detail else ""
    path = url.split("://", 1)[-1].split("/", 1)[-1] if "://" in url else url
    if status == 401:
        hint = f"set {TOKEN_ENV} to a valid token (it may have expired)"
        return ConnectorError(SOURCE, f"GitHub rejected the token (401{detail})", hint=hint)
    if status == 403:
        hint = "give the token read access to the repository (and authorize it for SSO)"
        return ConnectorError(SOURCE, f"the token may not read {path} (403{detail})", hint=hint)
    if status == 404:
        hint = "check OWNER/REPO; GitHub answers 404 for a private repository the token cannot see"
        return ConnectorError(SOURCE, f"{path} not found (404{detail})", hint=hint)
    if status == 429:
        return ConnectorError(SOURCE, f"still rate limited on {path} (429)", hint="run it later")
    hint = "retry later; GitHub may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def _at(item: Any, key: str) -> datetime | None:
    value = item.get(key) if isinstance(item, dict) else None
    try:
        return parse_time(value) if value else None
    except Exception:
        return None


def _older(key: str, start: datetime) -> Any:
    """stop(page): the newest-first page's oldest item is before the window."""

    def stop(page: list[Any]) -> bool:
        times = [t for t in (_at(i, key) for i in page) if t is not None]
        return bool(times) and min(times) < start

    return stop


def _within(item: Any, key: str, start: datetime, end: datetime) -> bool:
    at = _at(item, key)
    return at is not None and start <= at <= end


def _repo(api: _Client, target: str) -> dict[str, Any]:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", target):
        raise ConfigError(
            f"github: cannot harvest {target!r}", hint="use OWNER/REPO, e.g. acme/api"
        )
    body, _ = api.get(f"/repos/{target}")
    if not isinstance(body, dict) or "default_branch" not in body:
        raise ConnectorError(SOURCE, f"GET /repos/{target} returned no repository")
    return body


def _harvest_repo(
    api: _Client, target: str, span: tuple[datetime, datetime], folder: Path, report: SourceReport
) -> None:
    start, end = span
    repo = _repo(api, target)
    name = target.replace("/", "-")
    write_json(folder, f"repository-{name}.json", repo, report)
    base = f"/repos/{target}"
    deployments = [
        d
        for d in api.pages(f"{base}/deployments", {}, _older("created_at", start))
        if _within(d, "created_at", start, end)
    ]
    statuses = [
        s for d in deployments for s in api.pages(f"{base}/deployments/{d['id']}/statuses", {})
    ]
    pulls_params = {
        "state": "closed",
        "base": repo["default_branch"],
        "sort": "updated",
        "direction": "desc",
    }
    pulls = [
        p
        for p in api.pages(f"{base}/pulls", pulls_params, _older("updated_at", start))
        if _within(p, "merged_at", start, end)
    ]
    releases = [
        r
        for r in api.pages(f"{base}/releases", {}, _older("created_at", start))
        if _within(r, "published_at", start, end)
    ]
    created = f"{start:%Y-%m-%dT%H:%M:%SZ}..{end:%Y-%m-%dT%H:%M:%SZ}"
    runs = api.pages(f"{base}/actions/runs", {"created": created})
    deploys = [r for r in runs if isinstance(r, dict) and is_deploy_workflow(r)]
    if len(runs) > len(deploys):
        report.skip("workflow runs of workflows that do not deploy", len(runs) - len(deploys))
    for kind, items in (
        ("deployments", deployments),
        ("deployment_statuses", statuses),
        ("pulls", pulls),
        ("releases", releases),
    ):
        if items:  # an empty list says nothing about whose it is: not written
            write_json(folder, f"{kind}-{name}.json", items, report)
    if deploys:
        body = {"total_count": len(deploys), "workflow_runs": deploys}
        write_json(folder, f"workflow_runs-{name}.json", body, report)
    report.records += 1 + len(deployments) + len(statuses) + len(pulls) + len(releases) + len(runs)


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch the changes of each `--from github=OWNER/REPO` and write them under out/github/."""
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    span = changes_window(ref, out, cfg.lookback_hours, report)
    targets = ref.of(SOURCE)
    with _Client(cfg) as api:
        for n, target in enumerate(targets):
            progress(f"github {target}", n, len(targets))
            _harvest_repo(api, target.strip().strip("/"), span, out / SOURCE, report)
    progress("github", len(targets), len(targets))
    report.status = "ok" if report.files else "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify the token (any kind: user, fine-grained, app installation); return its limit."""
    cfg = _config(config)
    with _Client(cfg) as api:
        body, _ = api.get("/rate_limit")
    core = ((body or {}).get("resources") or {}).get("core") or {}
    return [
        f"GitHub API at {cfg.base_url} (version {cfg.api_version})",
        f"token accepted; requests left this hour: {core.get('remaining')}/{core.get('limit')}",
    ]
