"""Alertmanager live mode: API v2 settings, the client, harvest (current alerts) and check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, Field, SecretStr

from retro.connector import IncidentRef
from retro.errors import ConfigError, ConnectorError
from retro.models import Progress, SourceReport, no_progress
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

_MAX_WAIT_S = 60.0


class AlertmanagerConfig(BaseModel):
    """Settings for reading current alerts from the Alertmanager API v2."""

    base_url: str = Field(
        default="http://localhost:9093",
        description="Alertmanager base URL (without /api/v2)",
        json_schema_extra={"env": "ALERTMANAGER_URL"},
    )
    token: SecretStr | None = Field(
        default=None,
        description="Bearer token, when a proxy in front of Alertmanager requires one",
        json_schema_extra={"env": "ALERTMANAGER_TOKEN"},
    )
    username: str | None = Field(
        default=None,
        description="Basic-auth user (web.config.yml basic_auth_users or a proxy)",
        json_schema_extra={"env": "ALERTMANAGER_USER"},
    )
    password: SecretStr | None = Field(
        default=None,
        description="Basic-auth password",
        json_schema_extra={"env": "ALERTMANAGER_PASSWORD"},
    )
    filters: list[str] = Field(
        default_factory=list,
        description='Label matchers sent as filter=, e.g. alertname="HighLatency" or team=~"db.*"',
    )
    receiver: str | None = Field(default=None, description="Regex of receivers to keep")
    active: bool = Field(default=True, description="Include active alerts")
    silenced: bool = Field(default=True, description="Include silenced alerts")
    inhibited: bool = Field(default=True, description="Include inhibited alerts")
    groups: bool = Field(default=False, description="Also save /api/v2/alerts/groups")
    timeout_s: float = Field(default=30.0, description="HTTP timeout per request, seconds")
    max_retries: int = Field(default=4, description="Retries on 429, 5xx and network errors")
    backoff_s: float = Field(default=0.5, description="First retry wait when no Retry-After")


_AUTH_HINT = "set ALERTMANAGER_TOKEN, or ALERTMANAGER_USER and ALERTMANAGER_PASSWORD"


def _settings(config: BaseModel) -> AlertmanagerConfig:
    if isinstance(config, AlertmanagerConfig):
        return config
    return AlertmanagerConfig.model_validate(config.model_dump())


def _client(cfg: AlertmanagerConfig) -> httpx.Client:
    import httpx

    auth: httpx.Auth | None = None
    headers = {"Accept": "application/json", "User-Agent": "retro-postmortem"}
    if cfg.password is not None and not cfg.username:
        raise ConfigError("alertmanager: a password is set without a user; set ALERTMANAGER_USER")
    if cfg.username:
        password = cfg.password.get_secret_value() if cfg.password else ""
        auth = httpx.BasicAuth(cfg.username, password)
    elif cfg.token is not None:
        headers["Authorization"] = f"Bearer {cfg.token.get_secret_value()}"
    return httpx.Client(
        base_url=cfg.base_url.rstrip("/"), headers=headers, auth=auth, timeout=cfg.timeout_s
    )


def api_get(
    client: httpx.Client,
    path: str,
    params: list[tuple[str, str]],
    cfg: AlertmanagerConfig,
    sleep: Callable[[float], None] | None = None,
) -> Any:
    """GET one API v2 path and return its JSON, retrying 429/5xx; raise ConnectorError."""
    import httpx

    policy = RetryPolicy(
        retries=cfg.max_retries, backoff=cfg.backoff_s, max_wait=_MAX_WAIT_S, sleep=sleep
    )

    def attempt() -> httpx.Response:
        try:
            resp = client.get(path, params=tuple(params))
        except httpx.TransportError as exc:
            raise Retryable(f"GET {path} failed: {type(exc).__name__}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            wait = retry_after(resp.headers)
            raise Retryable(f"HTTP {resp.status_code}", retry_after=wait, response=resp)
        return resp

    def give_up(exc: Retryable) -> NoReturn:
        if exc.response is None:
            raise ConnectorError(
                "alertmanager",
                exc.detail,
                hint=f"check that Alertmanager answers at {cfg.base_url} (ALERTMANAGER_URL)",
            ) from None
        _decode(exc.response, path, cfg, policy.retries + 1)  # type: ignore[arg-type]
        raise AssertionError("unreachable")  # pragma: no cover: _decode raises on 429/5xx

    return _decode(policy.run(attempt, give_up=give_up), path, cfg, policy.retries + 1)


def _decode(resp: httpx.Response, path: str, cfg: AlertmanagerConfig, attempts: int) -> Any:
    code = resp.status_code
    if code in (401, 403):
        word = "rejected the credentials" if code == 401 else "denied access"
        raise ConnectorError("alertmanager", f"GET {path}: HTTP {code}, {word}", hint=_AUTH_HINT)
    if code == 404:
        raise ConnectorError(
            "alertmanager",
            f"GET {path}: HTTP 404",
            hint="point ALERTMANAGER_URL at Alertmanager itself (API v2 needs version 0.16+)",
        )
    if code == 429 or code >= 500:
        raise ConnectorError(
            "alertmanager",
            f"GET {path}: HTTP {code} after {attempts} attempts",
            hint="Alertmanager is overloaded or failing; retry later",
        )
    if code >= 400:
        detail = resp.text.strip().replace("\n", " ")[:120]
        raise ConnectorError(
            "alertmanager",
            f"GET {path}: HTTP {code}: {detail}",
            hint='check the filters (label matchers such as alertname="X")',
        )
    try:
        return resp.json()
    except ValueError:
        raise ConnectorError(
            "alertmanager",
            f"GET {path}: the response is not valid JSON",
            hint=f"check that {cfg.base_url} is Alertmanager and not a login page or proxy",
        ) from None


def _alert_params(cfg: AlertmanagerConfig) -> list[tuple[str, str]]:
    params = [
        ("active", str(cfg.active).lower()),
        ("silenced", str(cfg.silenced).lower()),
        ("inhibited", str(cfg.inhibited).lower()),
    ]
    params += [("filter", matcher) for matcher in cfg.filters]
    if cfg.receiver:
        params.append(("receiver", cfg.receiver))
    return params


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Save the CURRENT alerts (the API keeps no history) under out/alertmanager/."""
    cfg = _settings(config)
    report = SourceReport(name="alertmanager")
    folder = out / "alertmanager"
    steps = [("alerts.json", "/api/v2/alerts")]
    if cfg.groups:
        steps.append(("alert_groups.json", "/api/v2/alerts/groups"))
    with _client(cfg) as client:
        for done, (filename, path) in enumerate(steps):
            progress(f"alertmanager: GET {path}", done, len(steps))
            body = api_get(client, path, _alert_params(cfg), cfg)
            if not isinstance(body, list):
                raise ConnectorError(
                    "alertmanager",
                    f"GET {path}: expected a JSON list, got {type(body).__name__}",
                    hint=f"check that {cfg.base_url} is Alertmanager",
                )
            if path.endswith("/alerts"):
                report.records = len(body)
            if not body:
                # An empty list matches no connector's shape; writing it would only confuse.
                report.skip(f"{path} returned no current alerts; nothing written")
                continue
            folder.mkdir(parents=True, exist_ok=True)
            (folder / filename).write_text(json.dumps(body, indent=2) + "\n", "utf-8")
            report.files.append(f"alertmanager/{filename}")
        progress("alertmanager: done", len(steps), len(steps))
    report.status = "ok" if report.files else "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify that the API answers and the alerts are readable; return what was verified."""
    cfg = _settings(config)
    with _client(cfg) as client:
        status = api_get(client, "/api/v2/status", [], cfg)
        alerts = api_get(client, "/api/v2/alerts", _alert_params(cfg), cfg)
    if not isinstance(status, dict) or not isinstance(alerts, list):
        raise ConnectorError(
            "alertmanager",
            "/api/v2/status or /api/v2/alerts returned an unexpected shape",
            hint=f"check that {cfg.base_url} is Alertmanager 0.16 or newer",
        )
    version = (status.get("versionInfo") or {}).get("version", "unknown version")
    cluster = status.get("cluster") or {}
    peers = len(cluster.get("peers") or [])
    auth = "basic auth" if cfg.username else "bearer token" if cfg.token else "no auth"
    return [
        f"Alertmanager {version} at {cfg.base_url} ({auth})",
        f"cluster: {cluster.get('status', 'unknown')}, {peers} peer(s)",
        f"GET /api/v2/alerts: {len(alerts)} current alert(s) readable",
    ]
