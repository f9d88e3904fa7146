"""Opsgenie live mode: settings, the REST client, harvest and check."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field, SecretStr

from connectors._support import JsonClient, error_detail, settings_with_secret, write_json
from connectors.opsgenie.read import SOURCE, is_alert, is_incident
from retro.connector import IncidentRef
from retro.errors import ConnectorError
from retro.models import Progress, SourceReport, no_progress

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

KEY_ENV = "OPSGENIE_API_KEY"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class OpsgenieConfig(BaseModel):
    """Live-mode settings for the Opsgenie REST API."""

    api_key: SecretStr | None = Field(
        default=None,
        description="API key of an API integration (GenieKey) with read access",
        json_schema_extra={"env": KEY_ENV},
    )
    base_url: str = Field(
        default="https://api.opsgenie.com",
        description="API base URL; EU accounts use https://api.eu.opsgenie.com",
        json_schema_extra={"env": "OPSGENIE_API_URL"},
    )
    page_size: int = Field(default=100, ge=1, le=100, description="Items per page (max 100)")
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def _config(config: BaseModel) -> OpsgenieConfig:
    return settings_with_secret(config, OpsgenieConfig, "api_key", "Opsgenie", KEY_ENV)


# --- HTTP and harvest ---------------------------------------------------------------------------


def _client(cfg: OpsgenieConfig) -> JsonClient:
    assert cfg.api_key is not None
    return JsonClient(
        source=SOURCE,
        settings=cfg,
        headers={
            "Authorization": f"GenieKey {cfg.api_key.get_secret_value()}",
            "Accept": "application/json",
        },
        on_error=_error,
        # Opsgenie throttles per minute; without Retry-After its period header is the wait.
        wait_headers=("retry-after", "x-ratelimit-period-in-sec"),
    )


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    detail = error_detail(resp, "message")
    detail = f": {detail}" if detail else ""
    if status == 401:
        hint = f"set {KEY_ENV} to the API key of an Opsgenie API integration"
        return ConnectorError(SOURCE, f"the API rejected the key (401{detail})", hint=hint)
    if status == 403:
        hint = "give the API integration read access (and check EU vs US: OPSGENIE_API_URL)"
        return ConnectorError(SOURCE, f"the key may not read {path} (403{detail})", hint=hint)
    if status == 404:
        hint = "check the id in incident.yaml; EU accounts need OPSGENIE_API_URL=https://api.eu.opsgenie.com"
        return ConnectorError(SOURCE, f"{path} not found (404{detail})", hint=hint)
    if status == 422:
        hint = "use an alert id, a tiny id (digits) or an alias"
        return ConnectorError(SOURCE, f"Opsgenie refused {path} (422{detail})", hint=hint)
    if status == 429:
        hint = "wait a minute and run the harvest again"
        return ConnectorError(
            SOURCE, f"still rate limited on {path} after retries (429)", hint=hint
        )
    hint = "retry later; Opsgenie may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def identifier(ident: str, tiny_ok: bool = True) -> tuple[str, str]:
    """(value, identifierType) for an id, a tiny id or an alias; `tiny:12`/`alias:x` force one."""
    kind, _, value = ident.partition(":")
    if value and kind in ("id", "tiny", "alias"):
        return value, kind
    if _UUID.match(ident):
        return ident, "id"
    if tiny_ok and ident.isdigit():
        return ident, "tiny"
    return ident, "alias"


def _next_offset(body: dict[str, Any]) -> str | None:
    """The offset of the next page, from `paging.next` (alert logs) or `nextOffset` (timelines)."""
    data = body.get("data")
    if isinstance(data, dict) and data.get("nextOffset"):
        return str(data["nextOffset"])
    nxt = (body.get("paging") or {}).get("next")
    if not nxt:
        return None
    values = parse_qs(urlsplit(str(nxt)).query).get("offset")
    return values[0] if values else None


def _mark(item: Any) -> str:
    """What makes a log (offset) or a timeline entry (id) unique."""
    return str(item.get("offset") or item.get("id") or "") if isinstance(item, dict) else ""


def _note_mark(item: Any) -> str:
    # A note's offset is its creation time, which two notes can share; the whole note cannot.
    return json.dumps(item, sort_keys=True)


def _all_pages(
    api: JsonClient, path: str, params: dict[str, str], mark: Callable[[Any], str] = _mark
) -> tuple[list[Any], int]:
    """Follow offsets until the last page; items are de-duplicated by `mark`."""
    items: list[Any] = []
    seen: set[str] = set()
    offset: str | None = None
    pages = 0
    while True:
        query = {**params, **({"offset": offset} if offset else {})}
        body = api.get(path, params=query)
        pages += 1
        data = body.get("data")
        page = data.get("entries") if isinstance(data, dict) else data
        if not isinstance(page, list):
            hint = "check OPSGENIE_API_URL points at the Opsgenie API"
            raise ConnectorError(SOURCE, f"GET {path} returned no list of items", hint=hint)
        for item in page:
            seen_as = mark(item)
            if not seen_as or seen_as not in seen:
                items.append(item)
                seen.add(seen_as)
        nxt = _next_offset(body)
        if not page or not nxt or nxt == offset:
            return items, pages
        offset = nxt


def _harvest_alert(
    api: JsonClient, cfg: OpsgenieConfig, ident: str, folder: Path, report: SourceReport
) -> None:
    value, kind = identifier(ident)
    body = api.get(f"/v2/alerts/{value}", params={"identifierType": kind})
    alert: Any = body.get("data")
    if not is_alert(alert):
        hint = "check OPSGENIE_API_URL points at the Opsgenie API"
        raise ConnectorError(SOURCE, f"GET /v2/alerts/{value} returned no alert", hint=hint)
    params = {
        "identifierType": "id",
        "limit": str(cfg.page_size),
        "order": "asc",
        "direction": "next",
    }
    logs, _ = _all_pages(api, f"/v2/alerts/{alert['id']}/logs", params)
    notes, _ = _all_pages(api, f"/v2/alerts/{alert['id']}/notes", params, _note_mark)
    body["logs"] = {"data": logs}
    body["notes"] = {"data": notes}
    write_json(folder, f"alert-{alert['id']}.json", body, report)
    report.records += 1 + len(logs) + len(notes)


def _harvest_incident(
    api: JsonClient, cfg: OpsgenieConfig, ident: str, folder: Path, report: SourceReport
) -> None:
    value, kind = identifier(ident)
    kind = "id" if kind == "alias" else kind  # incidents have no alias
    body = api.get(f"/v1/incidents/{value}", params={"identifierType": kind})
    incident: Any = body.get("data")
    if not is_incident(incident):
        hint = "check OPSGENIE_API_URL points at the Opsgenie API"
        raise ConnectorError(SOURCE, f"GET /v1/incidents/{value} returned no incident", hint=hint)
    path = f"/v2/incident-timelines/{incident['id']}/entries"
    try:
        entries, _ = _all_pages(api, path, {"limit": str(cfg.page_size), "order": "asc"})
    except ConnectorError as err:
        if "(403" not in err.message and "(404" not in err.message:
            raise
        entries = []  # timelines need Incident Management on the plan; keep the incident
        report.skip("incident timeline not readable (403/404)")
    body["timeline"] = {"data": {"entries": entries}}
    write_json(folder, f"incident-{incident['id']}.json", body, report)
    report.records += 1 + len(entries)


def split_targets(targets: list[str]) -> tuple[list[str], list[str]]:
    """`alert:<id>` and `incident:<id>` targets (a bare id is an alert), in order."""
    alerts: list[str] = []
    incidents: list[str] = []
    for target in targets:
        kind, sep, ident = target.partition(":")
        if sep and kind == "incident":
            incidents.append(ident)
        else:
            alerts.append(ident if sep and kind == "alert" else target)
    return alerts, incidents


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch the incident's data from the live API and write it under out/opsgenie/."""
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    folder = out / SOURCE
    alerts, incidents = split_targets(ref.of(SOURCE))
    total = len(alerts) + len(incidents)
    with _client(cfg) as api:
        for n, ident in enumerate(alerts):
            progress(f"opsgenie alert {ident}", n, total)
            _harvest_alert(api, cfg, ident, folder, report)
        for n, ident in enumerate(incidents, start=len(alerts)):
            progress(f"opsgenie incident {ident}", n, total)
            _harvest_incident(api, cfg, ident, folder, report)
    progress("opsgenie", total, total)
    report.status = "partial" if report.skipped else "ok"
    if not report.files:
        report.status = "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify credentials and scopes; return what was verified."""
    cfg = _config(config)
    lines = [f"Opsgenie API at {cfg.base_url}"]
    with _client(cfg) as api:
        resp = api.request("/v2/account", allow=(403,))
        if resp.status_code == 200:
            account = api.body(resp, "/v2/account").get("data") or {}
            plan = (account.get("plan") or {}).get("name")
            lines.append(f"account {account.get('name')} (plan {plan})")
        else:  # reading alerts does not need configuration access
            lines.append("account: not readable with this key (no configuration access)")
        api.get("/v2/alerts", params={"limit": 1})
        lines.append("alerts: read access verified (GET /v2/alerts)")
    return lines
