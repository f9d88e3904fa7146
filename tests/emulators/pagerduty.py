"""A PagerDuty REST API v2 emulator: incidents, log entries, alerts, notes, users, abilities.

It answers with the vendor's shapes: `Token token=` auth with the vendor's 401 body, offset
pagination (`limit`, `offset`, `more`, and `total` only when asked), and 404 error bodies.
Data is seeded from a folder of REST bodies (by default tests/fixtures/pagerduty).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.emulators.base import Emulator, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pagerduty"
MAX_LIMIT = 100


class PagerDutyEmulator(Emulator):
    """Serves one account; `account_token=True` makes /users/me answer as for an account key."""

    def __init__(self, token: str = "pd-test-token", fixtures: Path = FIXTURES) -> None:
        super().__init__()
        self.token = token
        self.account_token = False
        self.incidents: dict[str, dict[str, Any]] = {}
        self.log_entries: dict[str, list[dict[str, Any]]] = {}
        self.alerts: dict[str, list[dict[str, Any]]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.throttle_offsets: set[int] = set()  # one 429 on a log_entries page at this offset
        self.load(fixtures)
        inc = r"/incidents/(?P<id>[^/]+)"
        self.route("GET", "/incidents", self.list_incidents)
        self.route("GET", inc, self.get_incident)
        self.route("GET", inc + "/log_entries", self.list_log_entries)
        self.route("GET", inc + "/alerts", self.list_alerts)
        self.route("GET", inc + "/notes", self.list_notes)
        self.route("GET", "/users/me", self.me)
        self.route("GET", r"/users/(?P<id>[^/]+)", self.get_user)
        self.route("GET", "/abilities", self.abilities)

    def load(self, folder: Path) -> None:
        """Seed from REST bodies: {incident}, {log_entries}, {alerts}, {notes, incident}, {users}."""
        for path in sorted(folder.glob("*.json")):
            body = json.loads(path.read_text(encoding="utf-8"))
            if "incident" in body and "notes" not in body:
                self.incidents[body["incident"]["id"]] = body["incident"]
            for entry in body.get("log_entries", []):
                self.log_entries.setdefault(entry["incident"]["id"], []).append(entry)
            for alert in body.get("alerts", []):
                self.alerts.setdefault(alert["incident"]["id"], []).append(alert)
            if "notes" in body:
                self.notes.setdefault(body["incident"]["id"], []).extend(body["notes"])
            for user in body.get("users", []):
                self.users[user["id"]] = user

    def fault_spec(self, name: str) -> dict[str, Any]:
        """PagerDuty's 429 and 5xx carry its error body (code 2020 for the rate limit)."""
        spec = super().fault_spec(name)
        if spec.get("status") == 429:
            spec["body"] = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
        return spec

    # -- helpers ------------------------------------------------------------------------------
    def _authorized(self, req: Request) -> bool:
        return req.headers.get("authorization") == f"Token token={self.token}"

    @staticmethod
    def _error(status: int, message: str, code: int) -> Response:
        return status, {"error": {"message": message, "code": code}}, {}

    def _guard(self, req: Request) -> Response | None:
        if not self._authorized(req):
            return self._error(401, "Unauthorized", 2006)
        inc_id = (req.match.groupdict() if req.match else {}).get("id")
        if req.path.startswith("/incidents/") and inc_id not in self.incidents:
            return self._error(404, "Not Found", 2100)
        return None

    def _page(self, req: Request, key: str, items: list[Any]) -> Response:
        limit = min(int(req.q("limit", "25") or 25), MAX_LIMIT)
        offset = int(req.q("offset", "0") or 0)
        page = items[offset : offset + limit]
        body = {
            key: page,
            "limit": limit,
            "offset": offset,
            "more": offset + len(page) < len(items),
            "total": len(items) if req.q("total") == "true" else None,
        }
        return 200, body, {}

    # -- routes -------------------------------------------------------------------------------
    def list_incidents(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._error(401, "Unauthorized", 2006)
        return self._page(req, "incidents", list(self.incidents.values()))

    def get_incident(self, req: Request) -> Response:
        denied = self._guard(req)
        assert req.match is not None
        return denied or (200, {"incident": self.incidents[req.match["id"]]}, {})

    def list_log_entries(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        assert req.match is not None
        offset = int(req.q("offset", "0") or 0)
        if offset in self.throttle_offsets:
            self.throttle_offsets.discard(offset)
            return (
                429,
                {"error": {"message": "Rate Limit Exceeded", "code": 2020}},
                {"Retry-After": "1"},
            )
        return self._page(req, "log_entries", self.log_entries.get(req.match["id"], []))

    def list_alerts(self, req: Request) -> Response:
        denied = self._guard(req)
        assert req.match is not None
        return denied or self._page(req, "alerts", self.alerts.get(req.match["id"], []))

    def list_notes(self, req: Request) -> Response:
        denied = self._guard(req)
        assert req.match is not None
        return denied or (200, {"notes": self.notes.get(req.match["id"], [])}, {})

    def me(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._error(401, "Unauthorized", 2006)
        if self.account_token:
            msg = "This request requires a user-level token; account-level keys have no user"
            return self._error(400, msg, 2001)
        return 200, {"user": next(iter(self.users.values()))}, {}

    def get_user(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._error(401, "Unauthorized", 2006)
        assert req.match is not None
        user = self.users.get(req.match["id"])
        return (200, {"user": user}, {}) if user else self._error(404, "Not Found", 2100)

    def abilities(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._error(401, "Unauthorized", 2006)
        return 200, {"abilities": ["teams", "read_only_users", "urgencies"]}, {}
