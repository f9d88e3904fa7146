"""PagerDuty live mode: settings, the REST v2 client, harvest and check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from connectors._support import (
    Checkpoint,
    JsonClient,
    error_detail,
    ref_key,
    save_json,
    settings_with_secret,
    write_json,
)
from connectors.pagerduty.read import SOURCE, is_incident
from retro.connector import IncidentRef
from retro.errors import ConnectorError
from retro.models import Progress, SourceReport, no_progress

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

TOKEN_ENV = "PAGERDUTY_TOKEN"


class PagerDutyConfig(BaseModel):
    """Live-mode settings for the PagerDuty REST API v2."""

    token: SecretStr | None = Field(
        default=None,
        description="REST API key (user token or read-only account key)",
        json_schema_extra={"env": TOKEN_ENV},
    )
    base_url: str = Field(
        default="https://api.pagerduty.com",
        description="REST API base URL (point tests at an emulator)",
        json_schema_extra={"env": "PAGERDUTY_API_URL"},
    )
    page_size: int = Field(default=100, ge=1, le=100, description="Items per page (max 100)")
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First 5xx back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def _config(config: BaseModel) -> PagerDutyConfig:
    return settings_with_secret(config, PagerDutyConfig, "token", "PagerDuty", TOKEN_ENV)


# --- HTTP and harvest ---------------------------------------------------------------------------


def _client(cfg: PagerDutyConfig) -> JsonClient:
    assert cfg.token is not None
    return JsonClient(
        source=SOURCE,
        settings=cfg,
        headers={
            "Authorization": f"Token token={cfg.token.get_secret_value()}",
            "Accept": "application/vnd.pagerduty+json;version=2",
        },
        on_error=_error,
        wait_headers=("retry-after", "ratelimit-reset"),
    )


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    detail = error_detail(resp, "error", "message")
    detail = f": {detail}" if detail else ""
    if status == 401:
        hint = f"set {TOKEN_ENV} to a REST API key, not an Events API integration key"
        return ConnectorError(SOURCE, f"the API rejected the token (401{detail})", hint=hint)
    if status == 403:
        hint = "use a key whose user can see the incident's service and team"
        return ConnectorError(SOURCE, f"the token may not read {path} (403{detail})", hint=hint)
    if status == 404 and path.startswith("/incidents/"):
        hint = "use the incident id from its URL (e.g. PT4KHLK), not its number"
        return ConnectorError(SOURCE, f"incident {path.split('/')[2]} not found (404)", hint=hint)
    if status == 429:
        hint = "wait a minute and run the harvest again"
        return ConnectorError(
            SOURCE, f"still rate limited on {path} after retries (429)", hint=hint
        )
    hint = "retry later; PagerDuty may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def _pages(
    api: JsonClient,
    cfg: PagerDutyConfig,
    path: str,
    key: str,
    extra: list[tuple[str, str]],
    progress: dict[str, Any] | None = None,
) -> list[Any]:
    """Every item of an offset-paginated list, de-duplicated by id across pages.

    `progress` (a checkpoint record) holds the items so far and the next offset, so a list
    that stopped part-way goes on from its next page.
    """
    progress = {} if progress is None else progress
    if progress.get("complete"):
        return list(progress["items"])
    items: list[Any] = progress.setdefault("items", [])
    seen = {str(i.get("id")) for i in items if isinstance(i, dict) and i.get("id")}
    while True:
        offset = int(progress.get("offset", 0))
        params = [("limit", str(cfg.page_size)), ("offset", str(offset)), ("total", "true"), *extra]
        body = api.get(path, params=params)
        page = body.get(key)
        if not isinstance(page, list):
            hint = "check PAGERDUTY_API_URL points at the REST API"
            raise ConnectorError(SOURCE, f"GET {path} returned no `{key}` list", hint=hint)
        for item in page:
            item_id = str(item.get("id")) if isinstance(item, dict) else ""
            if not item_id or item_id not in seen:
                items.append(item)
                seen.add(item_id)
        progress["offset"] = offset + len(page)
        if not body.get("more") or not page:
            progress["complete"] = True
            return list(items)


def _user_ids(*objs: Any) -> set[str]:
    """Ids of every user reference inside the given bodies."""
    found: set[str] = set()
    stack = list(objs)
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            if str(obj.get("type")) in ("user_reference", "user") and obj.get("id"):
                found.add(str(obj["id"]))
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
    return found


def _list_body(key: str, items: list[Any]) -> dict[str, Any]:
    """The merged pages, shaped like one last page of the list."""
    return {key: items, "limit": len(items), "offset": 0, "more": False, "total": len(items)}


def _harvest_incident(
    api: JsonClient, cfg: PagerDutyConfig, inc_id: str, folder: Path, state: dict[str, Any]
) -> tuple[list[str], int]:
    """Fetch the incident, its log entries, alerts and notes, then write the four files
    together; return (the user ids seen, the records written)."""
    body = state.get("incident")
    if body is None:
        body = api.get(f"/incidents/{inc_id}")
        if not is_incident(body.get("incident")):
            hint = "check PAGERDUTY_API_URL points at the REST API"
            raise ConnectorError(SOURCE, f"GET /incidents/{inc_id} returned no incident", hint=hint)
        state["incident"] = body
    incident: dict[str, Any] = body["incident"]
    base = f"/incidents/{inc_id}"
    extra = [("include[]", "channels"), ("is_overview", "false"), ("time_zone", "UTC")]
    logs = _pages(
        api, cfg, f"{base}/log_entries", "log_entries", extra, state.setdefault("logs", {})
    )
    alerts = _pages(api, cfg, f"{base}/alerts", "alerts", [], state.setdefault("alerts", {}))
    notes = api.get(f"{base}/notes").get("notes") or []
    # A notes body does not name its incident; a reference keeps the link, as log bodies do.
    ref = {k: incident.get(k) for k in ("id", "summary", "self", "html_url")}
    notes_body = {"notes": notes, "incident": {**ref, "type": "incident_reference"}}
    # Written together once all four are in, so the bundle never holds half an incident.
    save_json(folder / f"incident-{inc_id}.json", body)
    save_json(folder / f"log_entries-{inc_id}.json", _list_body("log_entries", logs))
    save_json(folder / f"alerts-{inc_id}.json", _list_body("alerts", alerts))
    save_json(folder / f"notes-{inc_id}.json", notes_body)
    return sorted(_user_ids(body, logs, notes)), 1 + len(logs) + len(alerts) + len(notes)


def _incident_files(inc_id: str) -> list[str]:
    return [
        f"{SOURCE}/{kind}-{inc_id}.json" for kind in ("incident", "log_entries", "alerts", "notes")
    ]


def _harvest_users(
    api: JsonClient,
    ids: list[str],
    folder: Path,
    report: SourceReport,
    progress: Progress,
    state: dict[str, Any],
) -> None:
    """GET /users/{id} for each user seen, written together as one users body."""
    found: dict[str, Any] = state.setdefault("found", {})
    missing: list[str] = state.setdefault("missing", [])
    for n, user_id in enumerate(ids):
        progress("pagerduty users", n, len(ids))
        if user_id in found or user_id in missing:
            continue  # fetched before the run that stopped
        status, body = api.fetch(f"/users/{user_id}", allow=(404,))
        if status == 404 or body is None:
            missing.append(user_id)
        else:
            found[user_id] = body.get("user")
    for _ in missing:
        report.skip("user not found (deleted?)")
    users = [found[i] for i in ids if i in found]
    if users:
        write_json(folder, "users.json", {"users": users}, report)
        report.records += len(users)


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch the incident's data from the live API and write it under out/pagerduty/.

    A run that stops (retries exhausted, Ctrl-C) keeps what it fetched in a checkpoint; the
    next run with the same targets starts where it stopped.
    """
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    folder = out / SOURCE
    incidents = ref.of(SOURCE)
    total = len(incidents)
    checkpoint = Checkpoint(folder, ref_key(SOURCE, ref))
    try:
        with _client(cfg) as api:
            users: set[str] = set()
            for n, inc_id in enumerate(incidents):
                progress(f"pagerduty incident {inc_id}", n, total)
                unit = f"incident:{inc_id}"
                if not checkpoint.done(unit):
                    seen, records = _harvest_incident(
                        api, cfg, inc_id, folder, checkpoint.unit(unit)
                    )
                    checkpoint.finish(unit, users=seen, records=records)
                done = checkpoint.unit(unit)
                users.update(done["users"])
                report.records += int(done["records"])
                report.files += _incident_files(inc_id)
            state = checkpoint.state.setdefault("users", {})
            _harvest_users(api, sorted(users), folder, report, progress, state)
    except BaseException:
        checkpoint.save()
        raise
    checkpoint.clear()
    progress("pagerduty", total, total)
    report.status = "partial" if report.skipped else "ok"
    if not report.files:
        report.status = "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify credentials and scopes; return what was verified."""
    cfg = _config(config)
    lines = [f"PagerDuty REST API at {cfg.base_url}"]
    with _client(cfg) as api:
        status, body = api.fetch("/users/me", allow=(400, 403))
        if body is not None:
            user = body.get("user") or {}
            who = f"{user.get('name')} <{user.get('email')}>"
            lines.append(f"user token of {who}, role {user.get('role')}")
        else:  # an account-level key has no user behind it; PagerDuty answers 400
            abilities = api.get("/abilities").get("abilities") or []
            lines.append(f"account-level key; abilities: {', '.join(abilities) or 'none'}")
        seen = api.get("/incidents", params={"limit": 1}).get("incidents") or []
        lines.append(f"incidents: read access verified ({len(seen)} listed)")
    return lines
