"""Rootly live mode: settings, the JSON:API client and its pagination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SecretStr

from connectors._history import HistoryClient
from connectors._support import error_detail, settings_with_secret
from retro.errors import ConnectorError

if TYPE_CHECKING:
    import httpx

SOURCE = "rootly"
TOKEN_ENV = "ROOTLY_API_TOKEN"


class RootlyConfig(BaseModel):
    """Live-mode settings for the Rootly API."""

    token: SecretStr | None = Field(
        default=None,
        description="API key (Rootly > Organization settings > API keys); read scope is enough",
        json_schema_extra={"env": TOKEN_ENV},
    )
    base_url: str = Field(
        default="https://api.rootly.com",
        description="API base URL (point tests at an emulator)",
        json_schema_extra={"env": "ROOTLY_API_URL"},
    )
    page_size: int = Field(default=100, ge=1, le=100, description="Items per page (max 100)")
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def config_of(config: BaseModel) -> RootlyConfig:
    return settings_with_secret(config, RootlyConfig, "token", "Rootly", TOKEN_ENV)


def client(cfg: RootlyConfig) -> HistoryClient:
    assert cfg.token is not None
    return HistoryClient(
        source=SOURCE,
        settings=cfg,
        headers={
            "Authorization": f"Bearer {cfg.token.get_secret_value()}",
            "Accept": "application/vnd.api+json",
        },
        on_error=_error,
        wait_headers=("retry-after", "ratelimit-reset"),
    )


def _error(resp: httpx.Response, path: str) -> ConnectorError:
    status = resp.status_code
    detail = error_detail(resp, "errors") or error_detail(resp, "error")
    detail = f": {detail}" if detail else ""
    if status == 401:
        hint = f"set {TOKEN_ENV} to a Rootly API key"
        return ConnectorError(SOURCE, f"the API rejected the key (401{detail})", hint=hint)
    if status == 403:
        hint = "use a key whose role may read incidents, action items and retrospectives"
        return ConnectorError(SOURCE, f"the key may not read {path} (403{detail})", hint=hint)
    if status == 429:
        hint = "wait a minute and run the import again"
        return ConnectorError(SOURCE, f"still rate limited on {path} after retries", hint=hint)
    hint = "retry later; Rootly may be having trouble"
    return ConnectorError(SOURCE, f"GET {path} failed with HTTP {status}{detail}", hint=hint)


def pages(
    api: HistoryClient, path: str, size: int, params: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Every JSON:API page of a list, following page[number] until meta says it was the last."""
    number = 1
    while True:
        query = {**(params or {}), "page[number]": str(number), "page[size]": str(size)}
        body = api.get_object(path, query)
        if not isinstance(body.get("data"), list):
            raise ConnectorError(SOURCE, f"GET {path} returned no `data` list")
        yield body
        nxt = (body.get("meta") or {}).get("next_page")
        if not body["data"] or not nxt or int(nxt) <= number:
            return
        number = int(nxt)


def check(config: BaseModel) -> list[str]:
    cfg = config_of(config)
    with client(cfg) as api:
        body = api.get_object("/v1/incidents", {"page[size]": "1"})
        total = (body.get("meta") or {}).get("total_count")
    return [f"Rootly API at {cfg.base_url}", f"incidents: read access verified ({total} in all)"]
