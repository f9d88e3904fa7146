"""Emulators of the list APIs `retro import` reads: PagerDuty, Opsgenie, Statuspage, Rootly and
incident.io. Each pages the way the vendor does, checks auth the way it does, and takes the
base class's injected faults (429 with Retry-After, 5xx).

- PagerDuty: `GET /incidents` and `GET /log_entries` with since/until (created_at in range),
  classic offset pagination with `more`, `total` when asked, and the 10,000 offset cap (400).
- Opsgenie: `GET /v1/incidents` and `GET /v2/alerts` with a `createdAt` range query, offset
  pagination through `paging.next`; `GET /v2/alerts/{id}` with the `report` block.
- Statuspage: `GET /v1/pages/{page}/incidents?page=&per_page=` answering a JSON list.
- Rootly: JSON:API `page[number]`/`page[size]` with `meta.next_page`, `included` services.
- incident.io: `after` cursors in `pagination_meta`, follow-ups, postmortem documents and their
  Markdown content.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tests.emulators.base import Emulator, Request, Response


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class PagerDutyHistory(Emulator):
    OFFSET_CAP = 10_000

    def __init__(self, token: str = "pd-test-token") -> None:
        super().__init__()
        self.token = token
        self.incidents: list[dict[str, Any]] = []
        self.log_entries: list[dict[str, Any]] = []
        self.throttle_every = 0  # when set, every n-th list request is answered 429
        self.throttled = 0
        self._served = 0
        self.route("GET", "/incidents", lambda r: self._list(r, "incidents", self.incidents))
        self.route("GET", "/log_entries", lambda r: self._list(r, "log_entries", self.log_entries))

    def _list(self, req: Request, key: str, items: list[dict[str, Any]]) -> Response:
        if req.headers.get("authorization") != f"Token token={self.token}":
            return 401, {"error": {"message": "Unauthorized", "code": 2006}}, {}
        with self._lock:
            self._served += 1
            throttle = bool(self.throttle_every) and self._served % self.throttle_every == 0
            self.throttled += throttle
        if throttle:
            body = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
            return 429, body, {"Retry-After": "1"}
        since, until = req.q("since"), req.q("until")
        chosen = [
            i
            for i in items
            if (since is None or _when(i["created_at"]) >= _when(since))
            and (until is None or _when(i["created_at"]) < _when(until))
        ]
        limit = min(int(req.q("limit", "25") or 25), 100)
        offset = int(req.q("offset", "0") or 0)
        if offset + limit > self.OFFSET_CAP:
            msg = "Offset must be less than 10000; narrow the since/until range"
            return 400, {"error": {"message": msg, "code": 2001}}, {}
        page = chosen[offset : offset + limit]
        body = {
            key: page,
            "limit": limit,
            "offset": offset,
            "more": offset + len(page) < len(chosen),
            "total": len(chosen) if req.q("total") == "true" else None,
        }
        return 200, body, {}


def pd_incident(
    n: int, created: datetime, *, ack_min: int = 4, resolve_min: int = 50
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A resolved REST v2 incident and its acknowledgement log entry."""
    from datetime import timedelta

    inc_id = f"Q{n:08d}"
    ref = {"id": inc_id, "type": "incident_reference", "summary": f"[#{n}] Incident {n}"}
    stamp = lambda m: (created + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    incident = {
        "id": inc_id,
        "type": "incident",
        "incident_number": n,
        "title": f"checkout errors burst {n % 17}",
        "summary": f"[#{n}] checkout errors burst {n % 17}",
        "created_at": stamp(0),
        "status": "resolved",
        "resolved_at": stamp(resolve_min),
        "last_status_change_at": stamp(resolve_min),
        "urgency": "high",
        "service": {
            "id": "PSVC1",
            "type": "service_reference",
            "summary": ["checkout", "search"][n % 2],
        },
        "priority": {"id": "PRI1", "type": "priority_reference", "summary": f"P{1 + n % 3}"},
        "teams": [{"id": "T1", "type": "team_reference", "summary": "SRE"}],
        "acknowledgements": [],
        "html_url": f"https://acme.pagerduty.com/incidents/{inc_id}",
    }
    ack = {
        "id": f"R{n:08d}",
        "type": "acknowledge_log_entry",
        "created_at": stamp(ack_min),
        "incident": ref,
    }
    return incident, ack


class OpsgenieHistory(Emulator):
    def __init__(self, key: str = "og-key") -> None:
        super().__init__()
        self.key = key
        self.incidents: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.route("GET", "/v1/incidents", lambda r: self._list(r, self.incidents))
        self.route("GET", "/v2/alerts", lambda r: self._list(r, self.alerts))
        self.route("GET", r"/v2/alerts/(?P<id>[^/]+)", self._alert)

    def _list(self, req: Request, items: list[dict[str, Any]]) -> Response:
        if req.headers.get("authorization") != f"GenieKey {self.key}":
            return 401, {"message": "Could not authenticate"}, {}
        found = re.findall(r"createdAt\s*(>=|<)\s*(\d+)", req.q("query", "") or "")
        chosen = items
        for op, ms in found:
            bound = int(ms)
            chosen = [
                i
                for i in chosen
                if (_when(i["createdAt"]).timestamp() * 1000 >= bound) == (op == ">=")
            ]
        limit = int(req.q("limit", "20") or 20)
        offset = int(req.q("offset", "0") or 0)
        page = chosen[offset : offset + limit]
        body: dict[str, Any] = {"data": page, "took": 0.01, "requestId": "r"}
        if offset + limit < len(chosen):
            body["paging"] = {
                "next": f"https://api.opsgenie.com{req.path}?offset={offset + limit}&limit={limit}"
            }
        return 200, body, {}

    def _alert(self, req: Request) -> Response:
        assert req.match is not None
        for alert in self.alerts:
            if alert["id"] == req.match["id"]:
                return 200, {"data": alert, "took": 0.01, "requestId": "r"}, {}
        return 404, {"message": "Alert does not exist"}, {}


class StatuspageHistory(Emulator):
    def __init__(self, key: str = "sp-key", page_id: str = "pg1") -> None:
        super().__init__()
        self.key = key
        self.incidents: list[dict[str, Any]] = []
        self.route("GET", f"/v1/pages/{page_id}/incidents", self._list)

    def _list(self, req: Request) -> Response:
        if req.headers.get("authorization") != f"OAuth {self.key}":
            return 401, {"error": "Could not authenticate"}, {}
        size = int(req.q("per_page", "100") or 100)
        page = int(req.q("page", "1") or 1)
        return 200, self.incidents[(page - 1) * size : page * size], {}


class RootlyHistory(Emulator):
    def __init__(self, token: str = "rootly-token") -> None:
        super().__init__()
        self.token = token
        self.incidents: list[dict[str, Any]] = []
        self.included: list[dict[str, Any]] = []
        self.action_items: dict[str, list[dict[str, Any]]] = {}
        self.post_mortems: list[dict[str, Any]] = []
        self.route("GET", "/v1/incidents", lambda r: self._page(r, self.incidents, self.included))
        self.route(
            "GET",
            r"/v1/incidents/(?P<id>[^/]+)/action_items",
            lambda r: self._page(r, self.action_items.get(r.match["id"], []) if r.match else []),
        )
        self.route("GET", "/v1/post_mortems", lambda r: self._page(r, self.post_mortems))

    def _page(
        self,
        req: Request,
        items: list[dict[str, Any]],
        included: list[dict[str, Any]] | None = None,
    ) -> Response:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"errors": [{"title": "Unauthorized"}]}, {}
        number = int(req.q("page[number]", "1") or 1)
        size = int(req.q("page[size]", "20") or 20)
        page = items[(number - 1) * size : number * size]
        more = number * size < len(items)
        body = {
            "data": page,
            "included": included or [],
            "meta": {
                "current_page": number,
                "next_page": number + 1 if more else None,
                "total_count": len(items),
                "total_pages": max(1, -(-len(items) // size)),
            },
            "links": {"next": f"{req.path}?page[number]={number + 1}" if more else None},
        }
        return 200, body, {}


class IncidentIoHistory(Emulator):
    def __init__(self, key: str = "iio-key") -> None:
        super().__init__()
        self.key = key
        self.incidents: list[dict[str, Any]] = []
        self.follow_ups: list[dict[str, Any]] = []
        self.documents: list[dict[str, Any]] = []
        self.markdown: dict[str, str] = {}
        self.route("GET", "/v2/incidents", lambda r: self._cursor(r, "incidents", self.incidents))
        self.route("GET", "/v2/follow_ups", self._follow_ups)
        self.route(
            "GET",
            "/v1/postmortem_documents",
            lambda r: self._cursor(r, "postmortem_documents", self.documents),
        )
        self.route("GET", r"/v1/postmortem_documents/(?P<id>[^/]+)/content", self._content)

    def _denied(self, req: Request) -> Response | None:
        if req.headers.get("authorization") != f"Bearer {self.key}":
            return 401, {"type": "authentication_error", "status": 401}, {}
        return None

    def _cursor(self, req: Request, key: str, items: list[dict[str, Any]]) -> Response:
        denied = self._denied(req)
        if denied:
            return denied
        size = int(req.q("page_size", "25") or 25)
        after = req.q("after")
        start = next((i + 1 for i, x in enumerate(items) if x["id"] == after), 0) if after else 0
        page = items[start : start + size]
        meta: dict[str, Any] = {"page_size": size, "total_record_count": len(items)}
        if start + size < len(items) and page:
            meta["after"] = page[-1]["id"]
        return 200, {key: page, "pagination_meta": meta}, {}

    def _follow_ups(self, req: Request) -> Response:
        return self._denied(req) or (200, {"follow_ups": self.follow_ups}, {})

    def _content(self, req: Request) -> Response:
        denied = self._denied(req)
        assert req.match is not None
        doc_id = req.match["id"]
        if denied:
            return denied
        if doc_id not in self.markdown:
            return 404, {"type": "not_found", "status": 404}, {}
        return 200, {"markdown": self.markdown[doc_id]}, {}
