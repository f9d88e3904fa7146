"""incident.io live mode: settings, the API client and its `after` cursor pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from connectors._history import HistoryClient
from connectors._support import error_detail, settings_with_secret
from retro.errors import ConnectorError

if TYPE_CHECKING:
    import httpx

SOURCE = "incident_io"
KEY_ENV = "INCIDENT_IO_API_KEY"


class IncidentIoConfig(BaseModel):
    """Live-mode settings for the incident.io API."""

    api_key: SecretStr | None = Field(
        default=None,
        description="API key (Settings > API keys) with 'View data' and 'View postmortems'",
        json_schema_extra={"env": KEY_ENV},
    )
    base_url: str = Field(
        default="https://api.incident.io",
        description="API base URL (point tests at an emulator)",
        json_schema_extra={"env": "INCIDENT_IO_API_URL"},
    )
    page_size: int = Field(default=250, ge=1, le=250, description="Items per page (max 250)")
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def config_of(config: BaseModel) -> IncidentIoConfig:
    return settings_with_secret(config, IncidentIoConfig, "api_key", "incident.io", KEY_ENV)


def client(cfg: IncidentIoConfig) -> HistoryClient:
    assert cfg.api_key is not None
    return HistoryClient(
        source=SOURCE,
        settings=cfg,
        headers={"Authorization": f"Bearer {cfg.api_key.get_secret_value()}"},
        on_error=_error,
    )


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    detail = error_detail(resp, "errors") or error_detail(resp, "type")
    detail = f": {detail}" if detail else ""
    if status == 401:
        hint = f"set {KEY_ENV} to an incident.io API key"
        return ConnectorError(SOURCE, f"the API rejected the key (401{detail})", hint=hint)
    if status == 403:
        hint = "give the API key the 'View data' and 'View postmortems' permissions"
        return ConnectorError(SOURCE, f"the key may not read {path} (403{detail})", hint=hint)
    if status == 429:
        hint = "wait a minute and run the import again"
        return ConnectorError(SOURCE, f"still rate limited on {path} after retries", hint=hint)
    hint = "retry later; incident.io may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def pages(
    api: HistoryClient, path: str, key: str, size: int, params: dict[str, str] | None = None
) -> Iterator[list[Any]]:
    """Every page of a list, following `pagination_meta.after` until it is absent or repeats."""
    after: str | None = None
    while True:
        query = {**(params or {}), "page_size": str(size), **({"after": after} if after else {})}
        body = api.get_object(path, query)
        page = body.get(key)
        if not isinstance(page, list):
            raise ConnectorError(SOURCE, f"GET {path} returned no `{key}` list")
        yield page
        nxt = (body.get("pagination_meta") or {}).get("after")
        if not page or not nxt or nxt == after:
            return
        after = str(nxt)


def check(config: BaseModel) -> list[str]:
    cfg = config_of(config)
    with client(cfg) as api:
        body = api.get_object("/v2/incidents", {"page_size": "1"})
        total = (body.get("pagination_meta") or {}).get("total_record_count")
    return [f"incident.io API at {cfg.base_url}", f"incidents: read access verified ({total})"]
