"""Statuspage history import: incidents with their updates, for the reliability report.

Live mode reads the Manage API (`GET /v1/pages/{page_id}/incidents?page=N&per_page=100`, with
`Authorization: OAuth <key>`, page by page until a short page), or, with only a public page URL,
the public status API `GET /api/v2/incidents.json` (its most recent incidents). File mode reads
the same bodies saved from either API.

Times: `started_at` is when customer impact started, `monitoring_at` is mitigated (a fix is in
and being watched) and `resolved_at` is resolved; `created_at` is when the incident was posted,
so it is kept as declared. The published postmortem (`postmortem_body`, Markdown) becomes the
record's postmortem, final once `postmortem_published_at` is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from connectors._history import HistoryClient, saved_bodies, times, when
from connectors._support import error_detail
from connectors.statuspage.read import SOURCE, incidents_of, is_incident
from retro.connector import HistoryQuery, ImportedIncident, ImportedPostmortem
from retro.errors import ConfigError, ConnectorError
from retro.models import Progress, no_progress

if TYPE_CHECKING:
    import httpx

KEY_ENV = "STATUSPAGE_API_KEY"


class StatuspageConfig(BaseModel):
    """Settings for the Statuspage Manage API (or a public status page)."""

    api_key: SecretStr | None = Field(
        default=None,
        description="Manage API key (statuspage.io > API info); read access is enough",
        json_schema_extra={"env": KEY_ENV},
    )
    page_id: str | None = Field(
        default=None, description="The page's id", json_schema_extra={"env": "STATUSPAGE_PAGE_ID"}
    )
    base_url: str = Field(
        default="https://api.statuspage.io",
        description="Manage API base URL (point tests at an emulator)",
        json_schema_extra={"env": "STATUSPAGE_API_URL"},
    )
    public_url: str | None = Field(
        default=None,
        description="A public status page, e.g. https://www.githubstatus.com (no key needed)",
        json_schema_extra={"env": "STATUSPAGE_PUBLIC_URL"},
    )
    page_size: int = Field(default=100, ge=1, le=100, description="Incidents per page")
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    detail = error_detail(resp, "error") or error_detail(resp, "message")
    detail = f": {detail}" if detail else ""
    if status == 401:
        hint = f"set {KEY_ENV} to a Manage API key"
        return ConnectorError(SOURCE, f"the API rejected the key (401{detail})", hint=hint)
    if status in (403, 404):
        hint = "check STATUSPAGE_PAGE_ID and that the key's user may see that page"
        return ConnectorError(SOURCE, f"cannot read {path} ({status}{detail})", hint=hint)
    if status == 420 or status == 429:
        hint = "wait a minute and run the import again"
        return ConnectorError(SOURCE, f"still rate limited on {path} ({status})", hint=hint)
    hint = "retry later; Statuspage may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def import_history(
    query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
) -> Iterator[ImportedIncident]:
    found: dict[str, tuple[dict[str, Any], str]] = {}
    if query.files:
        for where, body in saved_bodies(query.files):
            listed = incidents_of(body)
            if listed is None:
                query.skip("statuspage: file holds no incidents with updates")
                continue
            for n, item in enumerate(listed):
                found[str(item["id"])] = (item, f"{where} [{n}]")
    else:
        found = _fetch(config, progress)
    for _inc_id, (item, where) in found.items():
        record = incident_record(item, where)
        start = record.times.get("impact_start") or record.times.get("declared")
        if query.wants(start):
            yield record


def _fetch(config: BaseModel, progress: Progress) -> dict[str, tuple[dict[str, Any], str]]:
    cfg = (
        config if isinstance(config, StatuspageConfig) else StatuspageConfig(**config.model_dump())
    )
    key = cfg.api_key.get_secret_value() if cfg.api_key else ""
    if key and cfg.page_id:
        settings, headers, path = cfg, {"Authorization": f"OAuth {key}"}, None
    elif cfg.public_url:
        public = cfg.model_copy(update={"base_url": cfg.public_url})
        settings, headers, path = public, {}, "/api/v2/incidents.json"
    else:
        raise ConfigError(
            "Statuspage needs a Manage API key and page id, or a public page URL",
            hint=f"set {KEY_ENV} and STATUSPAGE_PAGE_ID, or STATUSPAGE_PUBLIC_URL",
        )
    out: dict[str, tuple[dict[str, Any], str]] = {}
    with HistoryClient(source=SOURCE, settings=settings, headers=headers, on_error=_error) as api:
        if path is not None:
            for item in incidents_of(api.get(path)) or []:
                out[str(item["id"])] = (item, f"GET {path}")
            return out
        page = 1
        list_path = f"/v1/pages/{cfg.page_id}/incidents"
        while True:
            progress("statuspage incidents", len(out), None)
            params = {"page": str(page), "per_page": str(cfg.page_size)}
            body = api.get(list_path, params)
            if not isinstance(body, list):
                raise ConnectorError(SOURCE, f"GET {list_path} returned no list of incidents")
            for item in body:
                if is_incident(item):
                    out[str(item["id"])] = (item, f"GET {list_path}?page={page}")
            if len(body) < cfg.page_size:
                return out
            page += 1


def incident_record(item: dict[str, Any], where: str) -> ImportedIncident:
    rec = str(item["id"])
    stamps = times(
        {
            "impact_start": item.get("started_at"),
            "declared": item.get("created_at"),
            "mitigated": item.get("monitoring_at"),
            "resolved": item.get("resolved_at"),
        },
        where=where,
        record=rec,
    )
    updates = [u for u in item.get("incident_updates") or [] if isinstance(u, dict)]
    components: dict[str, None] = {}
    for c in item.get("components") or []:
        if isinstance(c, dict) and c.get("name"):
            components.setdefault(str(c["name"]), None)
    for u in updates:
        for c in u.get("affected_components") or []:
            if isinstance(c, dict) and c.get("name"):
                components.setdefault(str(c["name"]), None)
    first = min(
        updates, key=lambda u: str(u.get("display_at") or u.get("created_at") or ""), default=None
    )
    postmortem = None
    if item.get("postmortem_body"):
        raw = item.get("postmortem_published_at")
        # The docs' own example says `true` here: published, at an unknown time.
        published = (
            None
            if isinstance(raw, bool)
            else when(raw, where=where, record=rec, field_name="postmortem_published_at")
        )
        postmortem = ImportedPostmortem(
            status="final" if raw else "draft",
            reviewed_at=published,
            url=item.get("shortlink"),
            markdown=str(item["postmortem_body"]),
        )
    return ImportedIncident(
        source=SOURCE,
        id=rec,
        title=str(item.get("name") or rec),
        description=str(first.get("body") or "") if first else "",
        url=item.get("shortlink"),
        severity=item.get("impact_override") or item.get("impact"),
        status=item.get("status"),
        services=list(components),
        times=stamps,
        postmortem=postmortem,
        updates=len(updates),
        provenance=where,
    )
