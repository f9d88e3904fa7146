"""An Opsgenie REST API emulator: alerts, alert logs and notes, incidents, timelines, account.

It answers with the vendor's shapes: `GenieKey` auth, `{"message", "took", "requestId"}` error
bodies (401, 404, 422), alert-log and alert-note paging through `paging.next` URLs carrying the
last item's offset, and timeline paging through `data.nextOffset`. Data is seeded from a folder
of API bodies (by default tests/fixtures/opsgenie, in the layout the connector's harvest writes).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.emulators.base import Emulator, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "opsgenie"


class OpsgenieEmulator(Emulator):
    def __init__(self, key: str = "og-test-key", fixtures: Path = FIXTURES) -> None:
        super().__init__()
        self.key = key
        self.alerts: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.timelines: dict[str, list[dict[str, Any]]] = {}
        self.config_access = True
        self.timeline_forbidden = False
        self.throttle_log_offsets: set[str] = set()  # one 429 on the logs page after this offset
        self.throttle_note_offsets: set[str] = set()  # the same for notes
        self.load(fixtures)
        self.route("GET", "/v2/alerts", self.list_alerts)
        self.route("GET", r"/v2/alerts/(?P<id>[^/]+)", self.get_alert)
        self.route("GET", r"/v2/alerts/(?P<id>[^/]+)/logs", self.alert_logs)
        self.route("GET", r"/v2/alerts/(?P<id>[^/]+)/notes", self.alert_notes)
        self.route("GET", r"/v1/incidents/(?P<id>[^/]+)", self.get_incident)
        self.route("GET", r"/v2/incident-timelines/(?P<id>[^/]+)/entries", self.timeline)
        self.route("GET", "/v2/account", self.account)

    def load(self, folder: Path) -> None:
        """Seed from harvest-shaped files: {data: alert, logs, notes} or {data: incident, ...}."""
        for path in sorted(folder.glob("*.json")):
            body = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(body, dict):
                continue
            data = body["data"]
            if "logs" in body:
                self.alerts[data["id"]] = data
                self.logs[data["id"]] = list(body["logs"]["data"])
                self.notes[data["id"]] = list((body.get("notes") or {"data": []})["data"])
            if "timeline" in body:
                self.incidents[data["id"]] = data
                self.timelines[data["id"]] = list(body["timeline"]["data"]["entries"])

    def fault_spec(self, name: str) -> dict[str, Any]:
        """Opsgenie's 429 says X-RateLimit-State: THROTTLED with its usual error body."""
        spec = super().fault_spec(name)
        if spec.get("status") == 429:
            spec["body"] = {"message": "Rate limit exceeded", "took": 0.0, "requestId": "r"}
            spec["headers"] = {**spec.get("headers", {}), "X-RateLimit-State": "THROTTLED"}
        return spec

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _envelope(data: Any, **extra: Any) -> dict[str, Any]:
        return {"data": data, **extra, "took": 0.004, "requestId": str(uuid.uuid4())}

    @staticmethod
    def _error(status: int, message: str) -> Response:
        return status, {"message": message, "took": 0.001, "requestId": str(uuid.uuid4())}, {}

    def _denied(self, req: Request) -> Response | None:
        if req.headers.get("authorization") != f"GenieKey {self.key}":
            return self._error(401, "Could not authenticate")
        return None

    def _find_alert(self, req: Request) -> tuple[dict[str, Any] | None, Response | None]:
        assert req.match is not None
        ident, kind = req.match["id"], req.q("identifierType", "id")
        if kind not in ("id", "tiny", "alias"):
            return None, self._error(
                422, "Invalid identifier type. Should be one of: id, tiny, alias"
            )
        field = {"id": "id", "tiny": "tinyId", "alias": "alias"}[kind]
        for alert in self.alerts.values():
            if str(alert.get(field)) == ident:
                return alert, None
        return None, self._error(404, "Alert does not exist")

    # -- routes -------------------------------------------------------------------------------
    def list_alerts(self, req: Request) -> Response:
        limit = int(req.q("limit", "20") or 20)
        return self._denied(req) or (200, self._envelope(list(self.alerts.values())[:limit]), {})

    def get_alert(self, req: Request) -> Response:
        alert, err = self._find_alert(req)
        return self._denied(req) or err or (200, self._envelope(alert), {})

    def alert_logs(self, req: Request) -> Response:
        return self._alert_items(req, "logs", self.logs, self.throttle_log_offsets)

    def alert_notes(self, req: Request) -> Response:
        return self._alert_items(req, "notes", self.notes, self.throttle_note_offsets)

    def _alert_items(
        self,
        req: Request,
        what: str,
        store: dict[str, list[dict[str, Any]]],
        throttle: set[str],
    ) -> Response:
        """A page of an alert's logs or notes, ordered and paged by offset as Opsgenie does."""
        alert, err = self._find_alert(req)
        if self._denied(req) or err:
            return self._denied(req) or err  # type: ignore[return-value]
        assert alert is not None
        after = req.q("offset")
        if after in throttle:
            throttle.discard(after)
            status, body, _ = self._error(429, "Rate limit exceeded")
            return status, body, {"X-RateLimit-State": "THROTTLED", "Retry-After": "1"}
        limit = min(int(req.q("limit", "20") or 20), 100)
        entries = sorted(store.get(alert["id"], []), key=lambda e: e["offset"])
        if req.q("order", "desc") == "desc":
            entries.reverse()
        if after:
            asc = req.q("order") == "asc"
            entries = [e for e in entries if e["offset"] != after and (e["offset"] > after) == asc]
        page = entries[:limit]
        query = {"identifierType": "id", "limit": limit, "order": req.q("order", "desc")}
        base = f"{self.url}/v2/alerts/{alert['id']}/{what}?"
        paging: dict[str, str] = {"first": base + urlencode(query)}
        if len(entries) > limit:
            paging["next"] = base + urlencode(
                {**query, "offset": page[-1]["offset"], "direction": "next"}
            )
        return 200, self._envelope(page, paging=paging), {}

    def get_incident(self, req: Request) -> Response:
        assert req.match is not None
        denied = self._denied(req)
        ident, kind = req.match["id"], req.q("identifierType", "id")
        field = "tinyId" if kind == "tiny" else "id"
        found = [i for i in self.incidents.values() if str(i.get(field)) == ident]
        if denied or not found:
            return denied or self._error(404, f"Incident with id [{ident}] does not exist")
        return 200, self._envelope(found[0]), {}

    def timeline(self, req: Request) -> Response:
        assert req.match is not None
        if self._denied(req):
            return self._denied(req)  # type: ignore[return-value]
        if self.timeline_forbidden:
            return self._error(403, "You are not authorized to perform this action")
        entries = self.timelines.get(req.match["id"])
        if entries is None:
            return self._error(404, "Incident does not exist")
        limit = int(req.q("limit", "20") or 20)
        start = int(req.q("offset", "0") or 0)
        page = entries[start : start + limit]
        data: dict[str, Any] = {"entries": page}
        if start + limit < len(entries):
            data["nextOffset"] = str(start + limit)
        return 200, self._envelope(data), {}

    def account(self, req: Request) -> Response:
        if self._denied(req):
            return self._denied(req)  # type: ignore[return-value]
        if not self.config_access:
            return self._error(403, "Key has no configuration access")
        plan = {"maxUserCount": 1500, "name": "Enterprise", "isYearly": True}
        return 200, self._envelope({"name": "acme-retro", "userCount": 12, "plan": plan}), {}
