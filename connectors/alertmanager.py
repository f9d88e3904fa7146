"""Prometheus Alertmanager: webhook payloads and API v2 bodies in file mode; API v2 live.

Alertmanager re-sends the same alert in many notifications. Every copy of one alert (the same
fingerprint and startsAt) gets the same event key, so repeats collapse into one event; the
connector also merges them itself and counts them in attrs["notifications"].
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field, SecretStr

from connectors._support import read_time
from connectors.base import Connector, Doc, IncidentRef, Progress, ReadContext, no_progress
from retro.errors import BundleError, ConfigError, ConnectorError
from retro.models import Provenance, Source, SourceReport, TimelineEvent, stable_hash

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

ZERO_TIME = "0001-01-01"  # Go's zero time.Time: Alertmanager's "no end yet"
_LABEL_ATTRS = ("service", "job", "instance", "namespace", "cluster", "team")
_MAX_WAIT_S = 60.0


# --- shared alert parsing (the grafana connector uses it too) ----------------------------------


@dataclass
class AlertContext:
    """What one alert's events need from the payload around it."""

    source: Source
    doc: Doc
    record: str
    envelope: dict[str, Any] = field(default_factory=dict)
    reference: datetime | None = None  # "now" of the payload, to decide if endsAt has passed
    extra: dict[str, Any] = field(default_factory=dict)  # vendor-specific attrs
    url: str | None = None


def collect_alerts(
    docs: list[Doc],
    ctx: ReadContext,
    read_item: Callable[[Any, Doc, str, ReadContext], Iterator[TimelineEvent]],
) -> Iterator[TimelineEvent]:
    """Read every payload (one per file, or a list), merging repeated notifications of an alert."""
    collector = AlertCollector()
    for doc in docs:
        items = doc.data if isinstance(doc.data, list) else [doc.data]
        for i, item in enumerate(items):
            prefix = f"[{i}]" if isinstance(doc.data, list) else ""
            for event in read_item(item, doc, prefix, ctx):
                collector.add(event)
    if collector.merged:
        ctx.report.skip("repeated notifications merged into one event", collector.merged)
    yield from collector


class AlertCollector:
    """Keeps one event per key, in first-seen order, and counts repeated notifications."""

    def __init__(self) -> None:
        self.events: dict[str, TimelineEvent] = {}
        self.merged = 0

    def add(self, event: TimelineEvent) -> None:
        seen = self.events.get(event.key)
        if seen is None:
            self.events[event.key] = event
            return
        seen.attrs["notifications"] = seen.attrs.get("notifications", 1) + 1
        self.merged += 1
        for name in ("receivers", "group_keys"):
            merged = list(dict.fromkeys([*seen.attrs.get(name, []), *event.attrs.get(name, [])]))
            if merged:
                seen.attrs[name] = merged

    def __iter__(self) -> Iterator[TimelineEvent]:
        return iter(self.events.values())


def is_zero_time(value: Any) -> bool:
    """True for a missing endsAt or Go's zero time (0001-01-01T00:00:00Z)."""
    return value in (None, "") or (isinstance(value, str) and value.startswith(ZERO_TIME))


def key_time(at: datetime) -> str:
    """UTC ISO at millisecond precision: the API v2 writes milliseconds, webhooks nanoseconds."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _iso_key_time(iso: str) -> str:
    """key_time(at) from at.isoformat() of a UTC datetime, which attrs hold anyway."""
    # "2024-05-01T12:00:00+00:00" or "2024-05-01T12:00:00.123456+00:00"
    return iso[:19] + "." + (iso[20:23] if iso[19] == "." else "000") + "Z"


def label_fingerprint(labels: dict[str, Any]) -> str:
    """A stable stand-in fingerprint from the sorted labels, for payloads that lack one."""
    return stable_hash(*(f"{k}={labels[k]}" for k in sorted(labels)), length=16)


def alert_events(alert: Any, actx: AlertContext, ctx: ReadContext) -> list[TimelineEvent]:
    """The alert_firing (and, when resolved, alert_resolved) events of one alert object."""
    ctx.report.records += 1
    doc, record = actx.doc, actx.record
    if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
        hint = "each alert needs a labels object; export the payload unchanged"
        ctx.reject(BundleError(doc.rel, "alert has no labels object", record=record, hint=hint))
        return []
    try:
        starts = read_time(
            ctx, alert.get("startsAt"), doc=doc, record=record, field_name="startsAt"
        )
        ends = None
        if not is_zero_time(alert.get("endsAt")):
            ends = read_time(ctx, alert["endsAt"], doc=doc, record=record, field_name="endsAt")
    except BundleError as err:
        ctx.reject(err, reason="bad alert time")
        return []
    labels: dict[str, Any] = alert["labels"]
    fingerprint = str(alert.get("fingerprint") or label_fingerprint(labels))
    attrs = _alert_attrs(alert, actx, fingerprint, starts, ends)
    base = f"{actx.source}:{fingerprint}:{_iso_key_time(attrs['starts_at'])}"
    name = attrs["alertname"]
    note = _first_str(attrs["annotations"], "summary", "description", "message")
    firing = TimelineEvent.of(
        key=f"{base}:firing",
        at=starts,
        source=actx.source,
        kind="alert_firing",
        text=f"[FIRING] {name}: {note}" if note else f"[FIRING] {name}",
        url=actx.url or _str_or_none(alert.get("generatorURL")),
        provenance=Provenance.of(doc.rel, record),
        attrs=attrs,
    )
    events = [firing]
    if _is_resolved(alert, ends, actx.reference):
        if ends is None:
            ctx.report.skip("resolved alert without endsAt: no alert_resolved event")
        else:
            resolved = TimelineEvent.of(
                key=f"{base}:resolved",
                at=ends,
                source=actx.source,
                kind="alert_resolved",
                text=f"[RESOLVED] {name}",
                url=firing.url,
                provenance=Provenance.of(doc.rel, record),
                attrs=_own_copy(attrs),
            )
            events.append(resolved)
    return events


def _is_resolved(alert: dict[str, Any], ends: datetime | None, reference: datetime | None) -> bool:
    """Webhook: status "resolved". API v2: a real endsAt at or before the payload's updatedAt."""
    status = alert.get("status")
    if isinstance(status, str) and status:
        # Alertmanager zeroes endsAt of unresolved alerts in notifications, so status decides.
        return status == "resolved"
    if ends is None:
        return False
    return reference is None or ends <= reference


def _alert_attrs(
    alert: dict[str, Any],
    actx: AlertContext,
    fingerprint: str,
    starts: datetime,
    ends: datetime | None,
) -> dict[str, Any]:
    labels: dict[str, Any] = alert["labels"]
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    status = alert.get("status")
    attrs: dict[str, Any] = {
        "alertname": str(labels.get("alertname") or f"alert {fingerprint}"),
        "severity": labels.get("severity") or labels.get("priority"),
        "status": status if isinstance(status, str) else None,
        "labels": dict(labels),
        "annotations": dict(annotations or {}),
        "fingerprint": fingerprint,
        "fingerprint_derived": not alert.get("fingerprint"),
        "generator_url": _str_or_none(alert.get("generatorURL")),
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat() if ends else None,
        "notifications": 1,
    }
    for name in _LABEL_ATTRS:
        if value := labels.get(name):
            attrs[name] = value
    if isinstance(status, dict):  # API v2 gettableAlert
        attrs["state"] = status.get("state")
        attrs["silenced_by"] = list(status.get("silencedBy") or [])
        attrs["inhibited_by"] = list(status.get("inhibitedBy") or [])
    if "receivers" in alert:
        receivers = [r.get("name") for r in alert["receivers"] or [] if isinstance(r, dict)]
        if receivers:
            attrs["receivers"] = receivers
    attrs.update(actx.envelope)
    attrs.update(actx.extra)
    return attrs


def _own_copy(attrs: dict[str, Any]) -> dict[str, Any]:
    """A copy of alert attrs that shares no mutable value (labels, lists) with the original."""
    return {k: v.copy() if isinstance(v, dict | list) else v for k, v in attrs.items()}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_str(mapping: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def envelope_attrs(payload: dict[str, Any]) -> dict[str, Any]:
    """Group-level webhook fields copied onto each alert's attrs."""
    attrs: dict[str, Any] = {
        "receiver": payload.get("receiver"),
        "group_key": payload.get("groupKey"),
        "payload_status": payload.get("status"),
        "external_url": payload.get("externalURL"),
    }
    if payload.get("receiver"):
        attrs["receivers"] = [payload["receiver"]]
    if payload.get("groupKey"):
        attrs["group_keys"] = [payload["groupKey"]]
    if payload.get("truncatedAlerts"):
        attrs["truncated_alerts"] = payload["truncatedAlerts"]
    if payload.get("notification_reason"):
        attrs["notification_reason"] = payload["notification_reason"]
    return {k: v for k, v in attrs.items() if v not in (None, "")}


def note_truncated(payload: dict[str, Any], ctx: ReadContext) -> None:
    """Alertmanager dropped alerts beyond max_alerts before sending; say so in the report."""
    truncated = payload.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        ctx.report.skip(
            "alerts truncated by the sender (max_alerts), not in the payload", truncated
        )


# --- document shapes ---------------------------------------------------------------------------


def _is_webhook(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("version") == "4"
        and "orgId" not in item  # Grafana's payloads carry orgId (and version "1")
        and isinstance(item.get("alerts"), list)
    )


def _is_gettable_alert(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("labels"), dict)
        and isinstance(item.get("status"), dict)
        and "startsAt" in item
        and ("fingerprint" in item or "receivers" in item)
    )


def _is_alert_group(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("alerts"), list)
        and isinstance(item.get("labels"), dict)
        and isinstance(item.get("receiver"), dict)
    )


def _shape(item: Any) -> str | None:
    if _is_webhook(item):
        return "webhook"
    if _is_gettable_alert(item):
        return "alert"
    if _is_alert_group(item):
        return "group"
    return None


# --- live mode ---------------------------------------------------------------------------------


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


def _retry_wait(resp: httpx.Response | None, attempt: int, cfg: AlertmanagerConfig) -> float:
    """Retry-After (seconds or an HTTP date) when sent, else exponential backoff."""
    value = resp.headers.get("Retry-After") if resp is not None else None
    if value:
        try:
            return min(max(float(value), 0.0), _MAX_WAIT_S)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                delta = (parsed - datetime.now(UTC)).total_seconds()
                return min(max(delta, 0.0), _MAX_WAIT_S)
    return min(cfg.backoff_s * (2.0**attempt), _MAX_WAIT_S)


def api_get(
    client: httpx.Client, path: str, params: list[tuple[str, str]], cfg: AlertmanagerConfig
) -> Any:
    """GET one API v2 path and return its JSON, retrying 429/5xx; raise ConnectorError."""
    import httpx

    attempts = cfg.max_retries + 1
    for attempt in range(attempts):
        try:
            resp = client.get(path, params=tuple(params))
        except httpx.TransportError as exc:
            if attempt + 1 < attempts:
                time.sleep(_retry_wait(None, attempt, cfg))
                continue
            raise ConnectorError(
                "alertmanager",
                f"GET {path} failed: {type(exc).__name__}",
                hint=f"check that Alertmanager answers at {cfg.base_url} (ALERTMANAGER_URL)",
            ) from None
        if (resp.status_code == 429 or resp.status_code >= 500) and attempt + 1 < attempts:
            time.sleep(_retry_wait(resp, attempt, cfg))
            continue
        return _decode(resp, path, cfg, attempts)
    raise AssertionError("unreachable")  # pragma: no cover


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


class AlertmanagerConnector(Connector):
    """Prometheus Alertmanager alerts: webhook notifications and API v2 bodies."""

    name: ClassVar[str] = "alertmanager"
    title: ClassVar[str] = "Prometheus Alertmanager"
    Config: ClassVar[type[BaseModel]] = AlertmanagerConfig
    docs_url: ClassVar[str] = "https://prometheus.io/docs/alerting/latest/clients/"

    def claims(self, doc: Doc) -> bool:
        if doc.fmt != "json":
            return False
        data = doc.data
        if isinstance(data, list):
            return bool(data) and _shape(data[0]) is not None
        return _is_webhook(data)

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return collect_alerts(docs, ctx, self._read_item)

    def _read_item(
        self, item: Any, doc: Doc, prefix: str, ctx: ReadContext
    ) -> Iterator[TimelineEvent]:
        shape = _shape(item)
        if shape == "webhook":
            note_truncated(item, ctx)
            actx = AlertContext("alertmanager", doc, "", envelope=envelope_attrs(item))
            where = f"{prefix}.alerts".lstrip(".")
            for j, alert in enumerate(item["alerts"]):
                actx.record = f"{where}[{j}]"  # one context per payload; only the record moves
                yield from alert_events(alert, actx, ctx)
        elif shape == "alert":
            yield from alert_events(item, self._api_context(item, doc, prefix, {}, ctx), ctx)
        elif shape == "group":
            receiver = item["receiver"].get("name")
            envelope = {"receiver": receiver, "group_labels": item["labels"]}
            for j, alert in enumerate(item["alerts"]):
                record = f"{prefix}.alerts[{j}]"
                yield from alert_events(
                    alert, self._api_context(alert, doc, record, envelope, ctx), ctx
                )
        else:
            ctx.reject(
                BundleError(
                    doc.rel,
                    "not an Alertmanager webhook payload, API v2 alert or alert group",
                    record=prefix or None,
                    hint="keep one kind of Alertmanager body per file, unchanged",
                ),
                reason="unknown Alertmanager record",
            )

    @staticmethod
    def _api_context(
        alert: Any, doc: Doc, record: str, envelope: dict[str, Any], ctx: ReadContext
    ) -> AlertContext:
        """API v2 alerts carry updatedAt: the reference to decide whether endsAt has passed."""
        actx = AlertContext("alertmanager", doc, record, envelope=dict(envelope))
        updated = alert.get("updatedAt") if isinstance(alert, dict) else None
        if updated and not is_zero_time(updated):
            try:
                actx.reference = ctx.time(updated, doc=doc, record=record, field_name="updatedAt")
            except BundleError as err:
                ctx.reject(err, reason="bad alert time")
        return actx

    # -- live mode ------------------------------------------------------------------------------
    def harvest(
        self,
        ref: IncidentRef,
        out: Path,
        config: BaseModel,
        progress: Progress = no_progress,
    ) -> SourceReport:
        """Save the CURRENT alerts (the API keeps no history) under out/alertmanager/."""
        cfg = _settings(config)
        report = SourceReport(name=self.name)
        folder = out / self.name
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
                report.files.append(f"{self.name}/{filename}")
            progress("alertmanager: done", len(steps), len(steps))
        report.status = "ok" if report.files else "empty"
        return report

    def check(self, config: BaseModel) -> list[str]:
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
