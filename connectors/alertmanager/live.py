"""Alertmanager live mode: API v2 settings, the client, harvest (current alerts) and check."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pydantic import BaseModel, Field, SecretStr

from retro.connector import IncidentRef
from retro.errors import ConfigError, ConnectorError, MissingCredential, RetroError
from retro.models import Progress, SourceReport, no_progress
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

_MAX_WAIT_S = 60.0


class AlertmanagerConfig(BaseModel):
    """Settings for reading current alerts from the Alertmanager API v2."""

    base_url: str | None = Field(
        default=None,
        description="Alertmanager base URL (without /api/v2), e.g. http://alertmanager:9093",
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
    timeout_s: float = Field(default=30.0, gt=0, description="HTTP timeout per request, seconds")
    max_retries: int = Field(
        default=4, ge=0, description="Retries on 429, 5xx, network errors, timeouts, bad bodies"
    )
    backoff_s: float = Field(default=0.5, ge=0, description="First retry wait when no Retry-After")


_AUTH_HINT = "set ALERTMANAGER_TOKEN, or ALERTMANAGER_USER and ALERTMANAGER_PASSWORD"


class NoAlertmanagerUrl(MissingCredential):
    """ALERTMANAGER_URL is not set: there is no default to probe, so the source is not
    configured (rather than failing against a localhost that was never asked for)."""

    def __init__(self) -> None:
        RetroError.__init__(
            self,
            "No Alertmanager URL",
            hint="set ALERTMANAGER_URL (e.g. http://alertmanager:9093) or `base_url` under "
            "[connectors.alertmanager] in retro.toml",
        )
        self.service = "Alertmanager"
        self.env_var = "ALERTMANAGER_URL"


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
    if not cfg.base_url:
        raise NoAlertmanagerUrl()
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
    """GET one API v2 path and return its JSON; raise ConnectorError.

    Retried: 429 and 5xx (honouring Retry-After), network errors and timeouts, and a 2xx whose
    body is not JSON (a proxy's HTML page, a body cut short).
    """
    import httpx

    policy = RetryPolicy(
        retries=cfg.max_retries, backoff=cfg.backoff_s, max_wait=_MAX_WAIT_S, sleep=sleep
    )
    attempts = policy.retries + 1

    def attempt() -> Any:
        try:
            resp = client.get(path, params=tuple(params))
        except httpx.TransportError as exc:  # refused, reset, timed out, cut mid-body
            raise Retryable(f"GET {path} failed: {type(exc).__name__}") from None
        if resp.status_code == 429 or resp.status_code >= 500:
            wait = retry_after(resp.headers)
            raise Retryable(f"HTTP {resp.status_code}", retry_after=wait, response=resp)
        if resp.status_code >= 400:
            _refuse(resp, path, cfg)
        try:
            return resp.json()
        except ValueError:
            raise Retryable(f"GET {path}: the response is not valid JSON") from None

    def give_up(exc: Retryable) -> NoReturn:
        if exc.response is not None:
            code = exc.response.status_code  # type: ignore[attr-defined]
            raise ConnectorError(
                "alertmanager",
                f"GET {path}: HTTP {code} after {attempts} attempts",
                hint="Alertmanager is overloaded or failing; run the harvest again later",
            ) from None
        if "not valid JSON" in exc.detail:
            raise ConnectorError(
                "alertmanager",
                f"{exc.detail} (after {attempts} attempts)",
                hint=f"check that {cfg.base_url} is Alertmanager and not a login page or proxy",
            ) from None
        raise ConnectorError(
            "alertmanager",
            f"{exc.detail} (after {attempts} attempts)",
            hint=f"check that Alertmanager answers at {cfg.base_url} (ALERTMANAGER_URL)",
        ) from None

    return policy.run(attempt, give_up=give_up)


def _refuse(resp: httpx.Response, path: str, cfg: AlertmanagerConfig) -> NoReturn:
    """The one-line error for a 4xx answer (never retried)."""
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
    detail = " ".join(resp.text.split())[:120]
    raise ConnectorError(
        "alertmanager",
        f"GET {path}: HTTP {code}: {detail}",
        hint='check the filters (label matchers such as alertname="X")',
    )


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
    """Save the CURRENT alerts (the API keeps no history) under out/alertmanager/.

    Every body is fetched before any file is written, so a run that stops leaves the files of
    the previous run (or none), never a mix; the next run fetches the snapshot again.
    """
    cfg = _settings(config)
    report = SourceReport(name="alertmanager")
    folder = out / "alertmanager"
    steps = [("alerts.json", "/api/v2/alerts")]
    if cfg.groups:
        steps.append(("alert_groups.json", "/api/v2/alerts/groups"))
    bodies: list[tuple[str, str, list[Any]]] = []
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
            bodies.append((filename, path, body))
        progress("alertmanager: done", len(steps), len(steps))
    for filename, path, body in bodies:
        if path.endswith("/alerts"):
            report.records = len(body)
        if not body:
            # An empty list matches no connector's shape; writing it would only confuse.
            report.skip(f"{path} returned no current alerts; nothing written")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{filename}.tmp"
        tmp.write_text(json.dumps(body, indent=2) + "\n", "utf-8")
        os.replace(tmp, folder / filename)
        report.files.append(f"alertmanager/{filename}")
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
