"""A Datadog API emulator: events v2, incidents v2 (with to-dos and impacts), monitors v1.

It answers with the vendor's shapes: `DD-API-KEY` + `DD-APPLICATION-KEY` auth with the vendor's
403 body (`{"errors": ["Forbidden"]}`), events v2 cursor paging (`meta.page.after`, opaque
cursors, `links.next`), incidents offset paging (`meta.pagination.next_offset`, present even on
a full last page), 429 with `X-RateLimit-Reset` (no Retry-After), 404 bodies. Data is seeded
from the documented and recorded bodies in tests/fixtures/datadog.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.emulators.base import Emulator, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "datadog"
API_KEY, APP_KEY = "dd-api-test", "dd-app-test"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class DatadogEmulator(Emulator):
    """Serves one Datadog org; `max_page` caps every page size, as the API does."""

    def __init__(self, fixtures: Path = FIXTURES) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.todos: dict[str, list[dict[str, Any]]] = {}
        self.impacts: dict[str, list[dict[str, Any]]] | None = None  # None: the API answers 404
        self.monitors: dict[str, dict[str, Any]] = {}
        self.max_page = 1000
        self.load(fixtures)
        self.route("GET", "/api/v1/validate", self.validate)
        self.route("GET", "/api/v2/events", self.list_events)
        self.route("GET", "/api/v2/incidents", self.list_incidents)
        inc = r"/api/v2/incidents/(?P<id>[^/]+)"
        self.route("GET", inc, self.get_incident)
        self.route("GET", inc + "/relationships/todos", self.list_todos)
        self.route("GET", inc + "/impacts", self.list_impacts)
        self.route("GET", r"/api/v1/monitor/search", self.search_monitors)
        self.route("GET", r"/api/v1/monitor/(?P<id>\d+)", self.get_monitor)

    def load(self, folder: Path) -> None:
        for path in sorted(folder.glob("documented_*.json")):
            body = json.loads(path.read_text(encoding="utf-8"))
            data = body.get("data")
            for user in body.get("included") or []:
                self.users[user["id"]] = user
            items = data if isinstance(data, list) else [data]
            for item in items:
                if item["type"] == "event":
                    self.events.append(item)
                    monitor = item["attributes"]["attributes"].get("monitor")
                    if monitor:
                        self.monitors[str(monitor["id"])] = {**monitor, "overall_state": "OK"}
                elif item["type"] == "incidents":
                    self.incidents.append(item)
                elif item["type"] == "incident_todos":
                    self.todos.setdefault(item["attributes"]["incident_id"], []).append(item)
        recorded = json.loads((folder / "incidents_v2_list.json").read_text(encoding="utf-8"))
        self.incidents.extend(recorded["data"])  # other incidents of the org, for paging
        self.events.sort(key=lambda e: e["attributes"]["timestamp"])

    # -- helpers ------------------------------------------------------------------------------
    def _guard(self, req: Request) -> Response | None:
        if req.headers.get("dd-api-key") != API_KEY:
            return 403, {"errors": ["Forbidden"]}, {}
        if req.headers.get("dd-application-key") != APP_KEY:
            return 403, {"errors": ["Forbidden"]}, {}
        return None

    def _size(self, req: Request, name: str, default: int) -> int:
        return max(1, min(int(req.q(name) or default), self.max_page))

    # -- routes -------------------------------------------------------------------------------
    def validate(self, req: Request) -> Response:
        if req.headers.get("dd-api-key") != API_KEY:
            return 403, {"errors": ["Forbidden"]}, {}
        return 200, {"valid": True}, {}

    def list_events(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        query = req.q("filter[query]") or ""
        start, end = req.q("filter[from]"), req.q("filter[to]")
        found = [e for e in self.events if _matches(e, query)]
        if start:
            found = [e for e in found if _when(e["attributes"]["timestamp"]) >= _when(start)]
        if end:
            found = [e for e in found if _when(e["attributes"]["timestamp"]) <= _when(end)]
        if req.q("sort") == "-timestamp":
            found.reverse()
        cursor = req.q("page[cursor]")
        offset = json.loads(base64.urlsafe_b64decode(cursor))["after"] if cursor else 0
        size = self._size(req, "page[limit]", 10)
        page = found[offset : offset + size]
        body: dict[str, Any] = {"data": page, "meta": {"page": {}}, "links": {}}
        if offset + len(page) < len(found):
            after = base64.urlsafe_b64encode(json.dumps({"after": offset + size}).encode()).decode()
            body["meta"]["page"]["after"] = after
            body["links"]["next"] = f"{self.url}/api/v2/events?page%5Bcursor%5D={after}"
        return 200, body, {}

    def list_incidents(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        offset = int(req.q("page[offset]") or 0)
        size = self._size(req, "page[size]", 10)
        page = self.incidents[offset : offset + size]
        pagination: dict[str, Any] = {"offset": offset, "size": len(page)}
        if page and len(page) == size:  # like the API: a full page always names a next one
            pagination["next_offset"] = offset + size
        body: dict[str, Any] = {"data": page, "meta": {"pagination": pagination}}
        if "users" in (req.q("include") or ""):
            body["included"] = list(self.users.values())
        return 200, body, {}

    def _incident(self, req: Request) -> dict[str, Any] | None:
        assert req.match is not None
        return next((i for i in self.incidents if i["id"] == req.match["id"]), None)

    def get_incident(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        inc = self._incident(req)
        if inc is None:
            return 404, {"errors": ["Not Found"]}, {}
        body: dict[str, Any] = {"data": inc}
        if "users" in (req.q("include") or ""):
            body["included"] = list(self.users.values())
        return 200, body, {}

    def list_todos(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        inc = self._incident(req)
        if inc is None:
            return 404, {"errors": ["Not Found"]}, {}
        todos = self.todos.get(inc["id"], [])
        offset = int(req.q("page[offset]") or 0)
        size = self._size(req, "page[size]", 10)
        page = todos[offset : offset + size]
        pagination: dict[str, Any] = {"offset": offset, "size": len(page)}
        if page and len(page) == size:
            pagination["next_offset"] = offset + size
        return 200, {"data": page, "meta": {"pagination": pagination}}, {}

    def list_impacts(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        inc = self._incident(req)
        if inc is None or self.impacts is None:
            return 404, {"errors": ["Not Found"]}, {}
        return 200, {"data": self.impacts.get(inc["id"], [])}, {}

    def get_monitor(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        assert req.match is not None
        monitor = self.monitors.get(req.match["id"])
        if monitor is None:
            return 404, {"errors": ["Monitor not found"]}, {}
        return 200, monitor, {}

    def search_monitors(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        monitors = list(self.monitors.values())
        meta = {"total_count": len(monitors), "page_count": 1, "page": 0, "per_page": 30}
        return 200, {"monitors": monitors, "counts": {}, "metadata": meta}, {}


def _matches(event: dict[str, Any], query: str) -> bool:
    """The few Events Explorer terms the tests use: @monitor_id:N, source:X, service:X."""
    inner = event["attributes"]["attributes"]
    tags = event["attributes"].get("tags") or []
    for term in query.split():
        name, _, value = term.partition(":")
        if name == "@monitor_id" and str(inner.get("monitor_id")) != value:
            return False
        if name in ("source", "service") and term not in tags:
            return False
    return True
