"""Datadog live mode: settings, the API client, harvest and check.

`retro harvest --from datadog=WHAT` takes `incident:<number or UUID>` (the incident, its to-dos
and impacts), `monitor:<id>` (the monitor and its notification events in the window) or
`events:<query>` (events v2 matching an Events Explorer query in the window).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from connectors._support import JsonClient, write_json
from connectors.datadog.read import SOURCE
from retro.connector import IncidentRef
from retro.errors import ConfigError, ConnectorError, MissingCredential
from retro.models import Progress, SourceReport, no_progress

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

API_KEY_ENV = "DD_API_KEY"
APP_KEY_ENV = "DD_APP_KEY"
SITES = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "ddog-gov.com",
)
_KEYS_HINT = (
    f"check {API_KEY_ENV}, {APP_KEY_ENV} and DD_SITE (keys only work on their own site, "
    "e.g. datadoghq.eu keys fail on datadoghq.com)"
)


class DatadogConfig(BaseModel):
    """Live-mode settings for the Datadog API."""

    api_key: SecretStr | None = Field(
        default=None, description="API key (DD-API-KEY)", json_schema_extra={"env": API_KEY_ENV}
    )
    app_key: SecretStr | None = Field(
        default=None,
        description="Application key (DD-APPLICATION-KEY); scoped keys need incident_read, "
        "monitors_read and events_read",
        json_schema_extra={"env": APP_KEY_ENV},
    )
    site: str = Field(
        default="datadoghq.com",
        description="Datadog site: " + ", ".join(SITES),
        json_schema_extra={"env": "DD_SITE"},
    )
    base_url: str = Field(
        default="",
        description="API base URL; empty means https://api.<site> (point tests at an emulator)",
        json_schema_extra={"env": "DATADOG_API_URL"},
    )
    page_size: int = Field(default=100, ge=1, le=1000, description="Events per page (max 1000)")
    lookback_hours: float = Field(
        default=24.0, gt=0, description="Window when --since is not given: hours before --until"
    )
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First 5xx back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for a 429")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")

    def api_url(self) -> str:
        site = self.site.strip().removeprefix("https://").removeprefix("app.").strip("/")
        return self.base_url.rstrip("/") or f"https://api.{site}"


def _config(config: BaseModel) -> DatadogConfig:
    if isinstance(config, DatadogConfig):
        cfg = config
    else:
        cfg = DatadogConfig.model_validate(config.model_dump())
    # Two secrets: `retro keys set datadog` alone would give both the same value.
    if cfg.api_key is None or not cfg.api_key.get_secret_value():
        raise MissingCredential("Datadog API", API_KEY_ENV, key_name="datadog.api_key")
    if cfg.app_key is None or not cfg.app_key.get_secret_value():
        raise MissingCredential("Datadog application", APP_KEY_ENV, key_name="datadog.app_key")
    return cfg


def _client(cfg: DatadogConfig) -> JsonClient:
    assert cfg.api_key is not None and cfg.app_key is not None
    return JsonClient(
        source=SOURCE,
        settings=cfg.model_copy(update={"base_url": cfg.api_url()}),
        headers={
            "DD-API-KEY": cfg.api_key.get_secret_value(),
            "DD-APPLICATION-KEY": cfg.app_key.get_secret_value(),
            "Accept": "application/json",
        },
        on_error=_error,
        # Datadog sends no Retry-After: X-RateLimit-Reset is the seconds until the window resets.
        wait_headers=("retry-after", "x-ratelimit-reset"),
    )


def _detail(resp: httpx.Response) -> str:
    try:
        errors = resp.json().get("errors")
    except (ValueError, AttributeError):
        return ""
    if isinstance(errors, list) and errors:
        item = errors[0]
        return str(item.get("detail") or item.get("title") if isinstance(item, dict) else item)
    return ""


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    detail = _detail(resp)
    detail = f": {detail}" if detail else ""
    if status in (401, 403):
        msg = f"the keys may not read {path} ({status}{detail})"
        hint = (
            _KEYS_HINT
            + "; a scoped application key needs incident_read, monitors_read, events_read"
        )
        return ConnectorError(SOURCE, msg, hint=hint)
    if status == 404:
        hint = "check the incident or monitor id, and DD_SITE"
        return ConnectorError(SOURCE, f"{path} not found (404{detail})", hint=hint)
    if status == 429:
        hint = "wait a minute and run the harvest again"
        return ConnectorError(
            SOURCE, f"still rate limited on {path} after retries (429)", hint=hint
        )
    hint = "retry later; Datadog may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


# --- paging --------------------------------------------------------------------------------------


def _dedupe_into(items: list[Any], page: list[Any], seen: set[str]) -> None:
    for item in page:
        key = str(item.get("id")) if isinstance(item, dict) else ""
        if not key or key not in seen:
            items.append(item)
            seen.add(key)


def events(
    api: JsonClient, cfg: DatadogConfig, query: str, since: datetime, until: datetime
) -> list[Any]:
    """Every event v2 matching `query` in the window, following `meta.page.after` cursors."""
    params: dict[str, Any] = {
        "filter[query]": query,
        "filter[from]": since.isoformat(),
        "filter[to]": until.isoformat(),
        "sort": "timestamp",
        "page[limit]": cfg.page_size,
    }
    items: list[Any] = []
    seen: set[str] = set()
    while True:
        body = api.get("/api/v2/events", params=params)
        page = body.get("data")
        if not isinstance(page, list):
            hint = "check DATADOG_API_URL points at the Datadog API"
            raise ConnectorError(SOURCE, "GET /api/v2/events returned no `data` list", hint=hint)
        _dedupe_into(items, page, seen)
        after = ((body.get("meta") or {}).get("page") or {}).get("after")
        if not after or not page or after == params.get("page[cursor]"):
            return items
        params["page[cursor]"] = after


def _offset_pages(api: JsonClient, path: str, size: int, extra: dict[str, Any]) -> list[Any]:
    """Every item of an incidents-API list, following `meta.pagination.next_offset`."""
    items: list[Any] = []
    seen: set[str] = set()
    offset = 0
    while True:
        body = api.get(path, params={"page[size]": size, "page[offset]": offset, **extra})
        page = body.get("data")
        if not isinstance(page, list):
            raise ConnectorError(SOURCE, f"GET {path} returned no `data` list")
        _dedupe_into(items, page, seen)
        nxt = ((body.get("meta") or {}).get("pagination") or {}).get("next_offset")
        # The last page may still name a next offset; the empty page after it ends the list.
        if not page or not isinstance(nxt, int) or nxt <= offset:
            return items
        offset = nxt


# --- harvest -------------------------------------------------------------------------------------


def window(ref: IncidentRef, cfg: DatadogConfig) -> tuple[datetime, datetime]:
    until = ref.until or datetime.now(UTC)
    return ref.since or until - timedelta(hours=cfg.lookback_hours), until


def _find_incident(api: JsonClient, ident: str) -> dict[str, Any]:
    """The incident by UUID, or by its public number (IR-123, #123 or 123) via the list."""
    number = ident.upper().removeprefix("IR-").removeprefix("#")
    if not number.isdigit():
        body = api.get(f"/api/v2/incidents/{ident}", params={"include": "users"})
        return body
    for inc in _offset_pages(api, "/api/v2/incidents", 100, {"include": "users"}):
        if str((inc.get("attributes") or {}).get("public_id")) == number:
            return {"data": inc}
    hint = "use the number from the incident's URL (…/incidents/123) or its UUID"
    raise ConnectorError(SOURCE, f"incident {ident} not found", hint=hint)


def _harvest_incident(api: JsonClient, ident: str, folder: Path, report: SourceReport) -> None:
    body = _find_incident(api, ident)
    inc = body.get("data")
    if not isinstance(inc, dict) or not inc.get("id"):
        raise ConnectorError(SOURCE, f"GET incident {ident} returned no incident")
    inc_id = str(inc["id"])
    name = str((inc.get("attributes") or {}).get("public_id") or inc_id)
    if "included" not in body:  # found through the list: fetch it whole, with its users
        body = api.get(f"/api/v2/incidents/{inc_id}", params={"include": "users"})
    write_json(folder, f"incident-{name}.json", body, report)
    todos = _offset_pages(api, f"/api/v2/incidents/{inc_id}/relationships/todos", 100, {})
    write_json(folder, f"todos-{name}.json", {"data": todos, "meta": {}}, report)
    # Impacts are newer than the incidents API: an older site or plan answers 404.
    _, found = api.fetch(f"/api/v2/incidents/{inc_id}/impacts", allow=(404,))
    impacts = (found or {}).get("data") or []
    if impacts:
        write_json(folder, f"impacts-{name}.json", {"data": impacts}, report)
    report.records += 1 + len(todos) + len(impacts)


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch what `--from datadog=…` names and write it under out/datadog/."""
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    folder = out / SOURCE
    targets = ref.of(SOURCE)
    since, until = window(ref, cfg)
    with _client(cfg) as api:
        for n, target in enumerate(targets):
            progress(f"datadog {target}", n, len(targets))
            what, _, arg = target.partition(":")
            if what == "incident" and arg:
                _harvest_incident(api, arg.strip(), folder, report)
            elif what == "monitor" and arg.strip().isdigit():
                monitor = api.get(f"/api/v1/monitor/{arg.strip()}")
                write_json(folder, f"monitor-{arg.strip()}.json", monitor, report)
                found = events(api, cfg, f"@monitor_id:{arg.strip()}", since, until)
                write_json(folder, f"events-monitor-{arg.strip()}.json", {"data": found}, report)
                report.records += 1 + len(found)
            elif what == "events" and arg.strip():
                found = events(api, cfg, arg.strip(), since, until)
                write_json(folder, f"events-{n + 1}.json", {"data": found, "meta": {}}, report)
                report.records += len(found)
            else:
                raise ConfigError(
                    f"datadog: cannot harvest {target!r}",
                    hint="use incident:<number or UUID>, monitor:<id> or events:<query>",
                )
    progress("datadog", len(targets), len(targets))
    report.status = "ok" if report.files else "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify the keys and what they may read; return what was verified."""
    cfg = _config(config)
    lines = [f"Datadog API at {cfg.api_url()}"]
    with _client(cfg) as api:
        if not api.get("/api/v1/validate").get("valid"):
            raise ConnectorError(SOURCE, "the API key is not valid", hint=_KEYS_HINT)
        lines.append("API key valid")
        api.get("/api/v2/incidents", params={"page[size]": 1})
        lines.append("incidents: read access verified (incident_read)")
        api.get("/api/v1/monitor/search", params={"per_page": 1})
        lines.append("monitors: read access verified (monitors_read)")
        now = datetime.now(UTC)
        since = (now - timedelta(hours=1)).isoformat()
        api.get("/api/v2/events", params={"page[limit]": 1, "filter[from]": since})
        lines.append("events: read access verified (events_read)")
    return lines
