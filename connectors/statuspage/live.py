"""Statuspage live mode: harvest an incident's updates into a bundle, and check the key.

`retro harvest --from statuspage=WHAT` takes:
- a public page URL (`https://www.githubstatus.com`): its status API's `/api/v2/incidents.json`
  (the page's recent incidents; no key), the ones overlapping the window; or
  `https://…/incidents/<id>` for that incident only;
- a page id (Manage API, `Authorization: OAuth <key>`): `GET /v1/pages/{id}/incidents`, page by
  page, the incidents overlapping the window; or `<page id>/<incident id>` for one incident.

Settings are the connector's (`history.StatuspageConfig`): the key, the Manage API URL, the page
size and the retry numbers. Statuspage rate-limits with 420 or 429; both wait for Retry-After.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel

from connectors._support import write_json
from connectors.statuspage.history import KEY_ENV, StatuspageConfig
from connectors.statuspage.read import SOURCE, incidents_of, is_incident
from retro.connector import IncidentRef, parse_time
from retro.errors import ConfigError, ConnectorError, MissingCredential
from retro.models import Progress, SourceReport, no_progress
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

LOOKBACK = timedelta(hours=24)  # the window before --until when --since is not given
_PUBLIC_INCIDENT = re.compile(r"^(?P<page>https?://[^#?]+?)/incidents/(?P<id>[a-z0-9]+)/?$")


class _Client:
    """httpx GETs under retro.retry: 420, 429 and 5xx wait for Retry-After (or back off),
    network errors back off; the body may be a JSON object or a list."""

    def __init__(self, cfg: StatuspageConfig, base_url: str, headers: dict[str, str]) -> None:
        import httpx

        self.policy = RetryPolicy(
            retries=cfg.max_retries, backoff=cfg.backoff, max_wait=cfg.max_wait
        )
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": "retro-postmortem", "Accept": "application/json", **headers},
            timeout=cfg.timeout,
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, path: str, params: Any = None) -> Any:
        import httpx

        def attempt() -> Any:
            try:
                resp = self.client.get(path, params=params)
            except httpx.TransportError as exc:
                raise Retryable(f"GET {path} failed: {type(exc).__name__} {exc}") from None
            if resp.status_code in (420, 429) or resp.status_code >= 500:
                wait = retry_after(resp.headers)
                raise Retryable(
                    f"HTTP {resp.status_code} on {path}", retry_after=wait, response=resp
                )
            if resp.status_code >= 400:
                raise _error(resp, path)
            try:
                return resp.json()
            except ValueError:  # a proxy's HTML page, or a body cut short
                raise Retryable(f"GET {path} returned a body that is not JSON") from None

        def give_up(exc: Retryable) -> NoReturn:
            if exc.response is None:
                hint = "check network access and the page URL, then run the harvest again"
                raise ConnectorError(SOURCE, f"{exc.detail} (after retries)", hint=hint) from None
            raise _error(exc.response, path)  # type: ignore[arg-type]

        return self.policy.run(attempt, give_up=give_up)


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    try:
        body = resp.json()
        detail = (
            str(body.get("error") or body.get("message") or "") if isinstance(body, dict) else ""
        )
    except ValueError:
        detail = ""
    detail = f": {detail}" if detail else ""
    if status == 401:
        hint = f"set {KEY_ENV} to a Manage API key (statuspage.io > your avatar > API info)"
        return ConnectorError(SOURCE, f"the API rejected the key (401{detail})", hint=hint)
    if status in (403, 404):
        hint = "check the page id (or URL) and that the key's user may see that page"
        return ConnectorError(SOURCE, f"cannot read {path} ({status}{detail})", hint=hint)
    if status in (420, 429):
        hint = "Statuspage allows about one request a second; wait a minute and run it again"
        return ConnectorError(SOURCE, f"still rate limited on {path} ({status})", hint=hint)
    hint = "retry later; Statuspage may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def _config(config: BaseModel) -> StatuspageConfig:
    if isinstance(config, StatuspageConfig):
        return config
    return StatuspageConfig.model_validate(config.model_dump())


def _window(ref: IncidentRef) -> tuple[datetime, datetime]:
    until = ref.until or datetime.now(UTC)
    return ref.since or until - LOOKBACK, until


def _overlaps(inc: dict[str, Any], since: datetime, until: datetime) -> bool:
    """The incident was open at some time in [since, until]."""
    start = inc.get("started_at") or inc.get("created_at")
    end = inc.get("resolved_at")
    try:
        opened = parse_time(start) if start else None
        closed = parse_time(end) if end else None
    except Exception:  # a malformed time: keep it, and let file mode report the record
        return True
    return (opened is None or opened <= until) and (closed is None or closed >= since)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60]


def _public(
    cfg: StatuspageConfig, url: str, ref: IncidentRef, folder: Path, report: SourceReport
) -> None:
    match = _PUBLIC_INCIDENT.match(url)
    page_url, wanted = (match["page"], match["id"]) if match else (url.rstrip("/"), None)
    with _Client(cfg, page_url, {}) as api:
        body = api.get("/api/v2/incidents.json")
    found = incidents_of(body) if isinstance(body, dict) else None
    if found is None:
        hint = "pass the status page's own address, e.g. https://www.githubstatus.com"
        raise ConnectorError(SOURCE, f"{page_url} answered with no Statuspage incidents", hint=hint)
    since, until = _window(ref)
    keep = [i for i in found if (i["id"] == wanted if wanted else _overlaps(i, since, until))]
    if wanted and not keep:
        hint = "the public API lists only the page's recent incidents; use the Manage API"
        raise ConnectorError(
            SOURCE, f"incident {wanted} is not among {page_url}'s incidents", hint=hint
        )
    if len(found) > len(keep):
        report.skip("incident outside the window", len(found) - len(keep))
    name = f"incidents-{_slug(page_url.split('://', 1)[-1])}.json"
    write_json(folder, name, {"page": body.get("page") or {}, "incidents": keep}, report)
    report.records += len(keep)


def _manage(
    cfg: StatuspageConfig,
    target: str,
    ref: IncidentRef,
    folder: Path,
    report: SourceReport,
    progress: Progress,
) -> None:
    if cfg.api_key is None or not cfg.api_key.get_secret_value():
        raise MissingCredential("Statuspage", KEY_ENV, key_name="statuspage")
    page_id, _, inc_id = target.partition("/")
    headers = {"Authorization": f"OAuth {cfg.api_key.get_secret_value()}"}
    with _Client(cfg, cfg.base_url, headers) as api:
        if inc_id:
            body = api.get(f"/v1/pages/{page_id}/incidents/{inc_id}")
            if not is_incident(body):
                raise ConnectorError(SOURCE, f"GET incident {inc_id} returned no incident")
            write_json(folder, f"incident-{inc_id}.json", body, report)
            report.records += 1
            return
        keep = _manage_list(api, cfg, page_id, ref, report, progress)
    write_json(folder, f"incidents-{page_id}.json", keep, report)


def _manage_list(
    api: _Client,
    cfg: StatuspageConfig,
    page_id: str,
    ref: IncidentRef,
    report: SourceReport,
    progress: Progress,
) -> list[Any]:
    """The page's incidents overlapping the window, newest first, one page at a time."""
    since, until = _window(ref)
    path = f"/v1/pages/{page_id}/incidents"
    keep: list[Any] = []
    seen: set[str] = set()
    page = 1
    while True:
        progress("statuspage incidents", len(keep), None)
        body = api.get(path, params={"page": page, "per_page": cfg.page_size})
        if not isinstance(body, list):
            raise ConnectorError(SOURCE, f"GET {path} returned no list of incidents")
        for inc in body:
            if not is_incident(inc) or str(inc["id"]) in seen:
                continue
            seen.add(str(inc["id"]))
            report.records += 1
            if _overlaps(inc, since, until):
                keep.append(inc)
            else:
                report.skip("incident outside the window")
        # Newest first: once a whole page was over before the window, older pages are too.
        older = all(_ended_before(inc, since) for inc in body if is_incident(inc))
        if len(body) < cfg.page_size or older:
            return keep
        page += 1


def _ended_before(inc: dict[str, Any], since: datetime) -> bool:
    try:
        end = parse_time(inc["resolved_at"]) if inc.get("resolved_at") else None
        start = parse_time(inc.get("started_at") or inc.get("created_at"))
    except Exception:
        return False
    return end is not None and end < since and start < since


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch what `--from statuspage=…` names and write it under out/statuspage/."""
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    folder = out / SOURCE
    targets = ref.of(SOURCE)
    for n, target in enumerate(targets):
        progress(f"statuspage {target}", n, len(targets))
        if target.startswith(("https://", "http://")):
            _public(cfg, target, ref, folder, report)
        elif re.fullmatch(r"[a-z0-9]+(/[a-z0-9]+)?", target):
            _manage(cfg, target, ref, folder, report, progress)
        else:
            raise ConfigError(
                f"statuspage: cannot harvest {target!r}",
                hint="use a public page URL, a page id, or <page id>/<incident id>",
            )
    progress("statuspage", len(targets), len(targets))
    # Leaving out the page's other incidents is the point, not a loss: still "ok".
    report.status = "ok" if report.files else "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify the Manage API key (or the public page); return what was verified."""
    cfg = _config(config)
    if cfg.api_key is not None and cfg.api_key.get_secret_value():
        headers = {"Authorization": f"OAuth {cfg.api_key.get_secret_value()}"}
        with _Client(cfg, cfg.base_url, headers) as api:
            pages = api.get("/v1/pages")
        names = (
            [str(p.get("name")) for p in pages if isinstance(p, dict)]
            if isinstance(pages, list)
            else []
        )
        return [
            f"Statuspage Manage API at {cfg.base_url}",
            f"pages the key may read: {', '.join(names) or 'none'}",
        ]
    if cfg.public_url:
        with _Client(cfg, cfg.public_url, {}) as api:
            body = api.get("/api/v2/incidents.json")
        found = incidents_of(body) or []
        return [f"public status page {cfg.public_url}", f"{len(found)} recent incidents listed"]
    raise MissingCredential("Statuspage", KEY_ENV, key_name="statuspage")
