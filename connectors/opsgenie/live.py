"""Opsgenie live mode: settings, the REST client, harvest and check."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, Field, SecretStr

from connectors._support import (
    Checkpoint,
    JsonClient,
    error_detail,
    ref_key,
    save_json,
    settings_with_secret,
)
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
    api: JsonClient,
    path: str,
    params: dict[str, str],
    mark: Callable[[Any], str] = _mark,
    *,
    progress: dict[str, Any] | None = None,
) -> tuple[list[Any], int]:
    """Follow offsets until the last page; (items de-duplicated by `mark`, pages fetched).

    `progress` (a checkpoint record) holds the items so far and the next offset, so a list
    that stopped part-way goes on from its next page.
    """
    progress = {} if progress is None else progress
    if progress.get("complete"):
        return list(progress["items"]), 0
    items: list[Any] = progress.setdefault("items", [])
    seen = {mark(item) for item in items}
    pages = 0
    while True:
        offset: str | None = progress.get("offset")
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
            progress["complete"] = True
            return list(items), pages
        progress["offset"] = nxt


def _harvest_alert(
    api: JsonClient, cfg: OpsgenieConfig, ident: str, folder: Path, state: dict[str, Any]
) -> tuple[str, int]:
    """Fetch an alert with its logs and notes and write them as one file; (file, records)."""
    value, kind = identifier(ident)
    body = state.get("alert")
    if body is None:
        body = api.get(f"/v2/alerts/{value}", params={"identifierType": kind})
        if not is_alert(body.get("data")):
            hint = "check OPSGENIE_API_URL points at the Opsgenie API"
            raise ConnectorError(SOURCE, f"GET /v2/alerts/{value} returned no alert", hint=hint)
        state["alert"] = body
    alert: dict[str, Any] = body["data"]
    params = {
        "identifierType": "id",
        "limit": str(cfg.page_size),
        "order": "asc",
        "direction": "next",
    }
    base = f"/v2/alerts/{alert['id']}"
    logs, _ = _all_pages(api, f"{base}/logs", params, progress=state.setdefault("logs", {}))
    notes, _ = _all_pages(
        api, f"{base}/notes", params, _note_mark, progress=state.setdefault("notes", {})
    )
    name = f"alert-{alert['id']}.json"
    save_json(folder / name, {**body, "logs": {"data": logs}, "notes": {"data": notes}})
    return name, 1 + len(logs) + len(notes)


def _harvest_incident(
    api: JsonClient,
    cfg: OpsgenieConfig,
    ident: str,
    folder: Path,
    state: dict[str, Any],
) -> tuple[str, int, bool]:
    """Fetch an incident with its timeline and write them as one file; (file, records,
    whether the timeline was readable)."""
    value, kind = identifier(ident)
    kind = "id" if kind == "alias" else kind  # incidents have no alias
    body = state.get("incident")
    if body is None:
        body = api.get(f"/v1/incidents/{value}", params={"identifierType": kind})
        if not is_incident(body.get("data")):
            hint = "check OPSGENIE_API_URL points at the Opsgenie API"
            raise ConnectorError(
                SOURCE, f"GET /v1/incidents/{value} returned no incident", hint=hint
            )
        state["incident"] = body
    incident: dict[str, Any] = body["data"]
    path = f"/v2/incident-timelines/{incident['id']}/entries"
    readable = True
    try:
        params = {"limit": str(cfg.page_size), "order": "asc"}
        entries, _ = _all_pages(api, path, params, progress=state.setdefault("timeline", {}))
    except ConnectorError as err:
        if "(403" not in err.message and "(404" not in err.message:
            raise
        entries = []  # timelines need Incident Management on the plan; keep the incident
        readable = False
    name = f"incident-{incident['id']}.json"
    save_json(folder / name, {**body, "timeline": {"data": {"entries": entries}}})
    return name, 1 + len(entries), readable


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
    """Fetch the incident's data from the live API and write it under out/opsgenie/.

    A run that stops (retries exhausted, Ctrl-C) keeps what it fetched in a checkpoint; the
    next run with the same targets starts where it stopped.
    """
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    folder = out / SOURCE
    alerts, incidents = split_targets(ref.of(SOURCE))
    units = [("alert", ident) for ident in alerts] + [("incident", i) for i in incidents]
    checkpoint = Checkpoint(folder, ref_key(SOURCE, ref))
    try:
        with _client(cfg) as api:
            for n, (kind, ident) in enumerate(units):
                progress(f"opsgenie {kind} {ident}", n, len(units))
                unit = f"{kind}:{ident}"
                if not checkpoint.done(unit):
                    state = checkpoint.unit(unit)
                    if kind == "alert":
                        name, records = _harvest_alert(api, cfg, ident, folder, state)
                        checkpoint.finish(unit, file=name, records=records, timeline=True)
                    else:
                        name, records, readable = _harvest_incident(api, cfg, ident, folder, state)
                        checkpoint.finish(unit, file=name, records=records, timeline=readable)
                done = checkpoint.unit(unit)
                report.files.append(f"{SOURCE}/{done['file']}")
                report.records += int(done["records"])
                if not done["timeline"]:
                    report.skip("incident timeline not readable (403/404)")
    except BaseException:
        checkpoint.save()
        raise
    checkpoint.clear()
    progress("opsgenie", len(units), len(units))
    report.status = "partial" if report.skipped else "ok"
    if not report.files:
        report.status = "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify credentials and scopes; return what was verified."""
    cfg = _config(config)
    lines = [f"Opsgenie API at {cfg.base_url}"]
    with _client(cfg) as api:
        _, body = api.fetch("/v2/account", allow=(403,))
        if body is not None:
            account = body.get("data") or {}
            plan = (account.get("plan") or {}).get("name")
            lines.append(f"account {account.get('name')} (plan {plan})")
        else:  # reading alerts does not need configuration access
            lines.append("account: not readable with this key (no configuration access)")
        api.get("/v2/alerts", params={"limit": 1})
        lines.append("alerts: read access verified (GET /v2/alerts)")
    return lines
