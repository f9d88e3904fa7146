"""Alertmanager API v2 emulator: /api/v2/alerts (with filter matchers), /alerts/groups, /status.

Bodies follow api/v2/openapi.yaml (gettableAlert, alertGroup, alertmanagerStatus). The module
also builds webhook (version "4") payloads in the documented shape for file-mode tests. Faults
(429, 5xx, dropped connections, HTML and truncated bodies, slow answers) come from the base
class's `inject` and `inject_fault`.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.base import Emulator, Request, Response

ZERO = "0001-01-01T00:00:00Z"
_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


def fingerprint(labels: dict[str, str]) -> str:
    """Prometheus' label-set fingerprint: FNV-1a 64 over sorted name/value pairs, 0xff-separated."""
    value = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name.encode(), b"\xff", labels[name].encode(), b"\xff"):
            for byte in part:
                value ^= byte
                value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{value:016x}"


def api_time(at: datetime) -> str:
    """go-openapi strfmt.DateTime: RFC 3339 with milliseconds."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def gettable_alert(
    labels: dict[str, str],
    *,
    starts_at: datetime,
    annotations: dict[str, str] | None = None,
    updated_at: datetime | None = None,
    ends_at: datetime | None = None,
    silenced_by: list[str] | None = None,
    inhibited_by: list[str] | None = None,
    receivers: tuple[str, ...] = ("team-web",),
    generator_url: str = "http://prometheus:9090/graph?g0.expr=up",
) -> dict[str, Any]:
    """One API v2 gettableAlert. Active alerts have endsAt in the future, as Prometheus sends."""
    updated = updated_at or starts_at
    muted = bool(silenced_by or inhibited_by)
    return {
        "annotations": annotations or {},
        "endsAt": api_time(ends_at or updated + timedelta(minutes=4)),
        "fingerprint": fingerprint(labels),
        "receivers": [{"name": name} for name in receivers],
        "startsAt": api_time(starts_at),
        "status": {
            "inhibitedBy": list(inhibited_by or []),
            "silencedBy": list(silenced_by or []),
            "mutedBy": [],
            "state": "suppressed" if muted else "active",
        },
        "updatedAt": api_time(updated),
        "generatorURL": generator_url,
        "labels": dict(labels),
    }


def webhook_alert(
    labels: dict[str, str],
    *,
    starts_at: str,
    ends_at: str = ZERO,
    status: str = "firing",
    annotations: dict[str, str] | None = None,
    with_fingerprint: bool = True,
) -> dict[str, Any]:
    """One alert inside a webhook payload (Alertmanager zeroes endsAt while firing)."""
    alert: dict[str, Any] = {
        "status": status,
        "labels": dict(labels),
        "annotations": annotations or {},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28errors%5B5m%5D%29",
    }
    if with_fingerprint:
        alert["fingerprint"] = fingerprint(labels)
    return alert


def webhook_payload(
    alerts: list[dict[str, Any]],
    *,
    receiver: str = "team-web",
    truncated: int = 0,
    group_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A version 4 webhook notification, every documented key present."""
    firing = any(a["status"] == "firing" for a in alerts)
    labels = group_labels or {"alertname": alerts[0]["labels"].get("alertname", "")}
    common = {
        k: v for k, v in alerts[0]["labels"].items() if all(a["labels"].get(k) == v for a in alerts)
    }
    pairs = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {
        "version": "4",
        "groupKey": f"{{}}:{{{pairs}}}",
        "truncatedAlerts": truncated,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "notification_reason": "new_alert" if firing else "resolved",
        "alerts": alerts,
    }


def _parse_matchers(values: list[str]) -> list[tuple[str, str, str]]:
    matchers = []
    for raw in values:
        for part in raw.strip().strip("{}").split(","):
            found = _MATCHER.match(part)
            if found is None:
                raise ValueError(part)
            matchers.append((found.group(1), found.group(2), found.group(3)))
    return matchers


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        actual = labels.get(name, "")
        hit = re.fullmatch(value, actual) is not None if "~" in op else actual == value
        if hit == op.startswith("!"):
            return False
    return True


class AlertmanagerEmulator(Emulator):
    """Serves a fixed set of alerts; optional basic auth or bearer token."""

    def __init__(
        self,
        alerts: list[dict[str, Any]] | None = None,
        *,
        basic_auth: tuple[str, str] | None = None,
        token: str | None = None,
        group_by: tuple[str, ...] = ("alertname",),
    ) -> None:
        super().__init__()
        self.alerts = list(alerts or [])
        self.basic_auth = basic_auth
        self.token = token
        self.group_by = group_by
        self.route("GET", "/api/v2/alerts", self._get_alerts)
        self.route("GET", "/api/v2/alerts/groups", self._get_groups)
        self.route("GET", "/api/v2/status", self._get_status)

    def fault_spec(self, name: str) -> dict[str, Any]:
        """Alertmanager itself never throttles: a 429 or 5xx comes from the proxy in front of
        it, as plain text."""
        spec = super().fault_spec(name)
        if spec.get("status") in (429, 500, 503):
            spec["body"] = f"{spec['status']} from the proxy in front of Alertmanager\n"
        return spec

    def _denied(self, req: Request) -> Response | None:
        header = req.headers.get("authorization", "")
        if self.basic_auth is not None:
            secret = base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if header != f"Basic {secret}":
                return 401, "Unauthorized\n", {"WWW-Authenticate": 'Basic realm="Authorization"'}
        if self.token is not None and header != f"Bearer {self.token}":
            return 401, "Unauthorized\n", {}
        return None

    def _select(self, req: Request) -> list[dict[str, Any]] | Response:
        try:
            matchers = _parse_matchers(req.query.get("filter", []))
        except ValueError as exc:
            return 400, f"bad matcher format: {exc}", {}
        flags = {
            name: req.q(name, "true") == "true" for name in ("active", "silenced", "inhibited")
        }
        chosen = []
        for alert in self.alerts:
            status = alert["status"]
            if status["state"] == "active" and not flags["active"]:
                continue
            if status["silencedBy"] and not flags["silenced"]:
                continue
            if status["inhibitedBy"] and not flags["inhibited"]:
                continue
            if _matches(alert["labels"], matchers):
                chosen.append(alert)
        return chosen

    def _get_alerts(self, req: Request) -> Response:
        denied = self._denied(req)
        if denied is not None:
            return denied
        chosen = self._select(req)
        return chosen if isinstance(chosen, tuple) else (200, chosen, {})

    def _get_groups(self, req: Request) -> Response:
        denied = self._denied(req)
        if denied is not None:
            return denied
        chosen = self._select(req)
        if isinstance(chosen, tuple):
            return chosen
        groups: dict[str, dict[str, Any]] = {}
        for alert in chosen:
            labels = {k: alert["labels"][k] for k in self.group_by if k in alert["labels"]}
            receiver = alert["receivers"][0] if alert["receivers"] else {"name": "default"}
            key = f"{receiver['name']}|{sorted(labels.items())}"
            group = groups.setdefault(
                key, {"labels": labels, "routeLabels": {}, "receiver": receiver, "alerts": []}
            )
            group["alerts"].append(alert)
        return 200, list(groups.values()), {}

    def _get_status(self, req: Request) -> Response:
        denied = self._denied(req)
        if denied is not None:
            return denied
        body = {
            "cluster": {"name": "01HX0EMULATOR", "status": "ready", "peers": []},
            "versionInfo": {
                "version": "0.27.0",
                "revision": "0aa3c2aad14cff039931923ab16b26b7481783b5",
                "branch": "HEAD",
                "buildUser": "root@emulator",
                "buildDate": "20240228-11:51:20",
                "goVersion": "go1.21.7",
            },
            "config": {
                "original": "global:\n  resolve_timeout: 5m\nroute:\n  receiver: team-web\n"
            },
            "uptime": "2024-05-01T13:00:00.000Z",
        }
        return 200, body, {}
