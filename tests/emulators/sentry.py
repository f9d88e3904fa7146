"""A Sentry API emulator: organizations, projects, organization issues and issue details.

It answers like sentry.io: `Authorization: Bearer` with `{"detail": "Invalid token"}` on 401,
issue lists sorted by last seen, filtered by `project`, `start`/`end` (seen in the range) and
`query` (missing means `is:unresolved`, as on Sentry; empty means all), paged by cursor with a
`Link` header whose `next` link is present even on the last page, with `results="false"`.
Data: the documented issues in tests/fixtures/sentry, plus `extra` clones for paging.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.emulators.base import Emulator, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sentry"
ORG, PROJECT, TOKEN = "acme", "checkout-api", "sntrys-test-token"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class SentryEmulator(Emulator):
    def __init__(self, fixtures: Path = FIXTURES, extra: int = 0) -> None:
        super().__init__()
        self._raw: dict[int, str] = {}  # serving thread -> the query string as sent
        listed = json.loads(
            (fixtures / "documented_api_0_organization_issues_list.json").read_text()
        )
        self.details: dict[str, dict[str, Any]] = {}
        for path in sorted(fixtures.glob("documented_api_0_issue_details_*.json")):
            body = json.loads(path.read_text())
            self.details[body["id"]] = body
        self.issues: list[dict[str, Any]] = listed + [_clone(listed[2], n) for n in range(extra)]
        self.project = {"id": listed[0]["project"]["id"], "slug": PROJECT, "name": PROJECT}
        self.route("GET", "/api/0/organizations/", self.organizations)
        self.route("GET", r"/api/0/projects/(?P<org>[^/]+)/(?P<project>[^/]+)/", self.get_project)
        self.route("GET", r"/api/0/organizations/(?P<org>[^/]+)/issues/", self.list_issues)
        self.route(
            "GET", r"/api/0/organizations/(?P<org>[^/]+)/issues/(?P<id>\d+)/", self.get_issue
        )

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        # The parsed Request.query drops blank values; Sentry tells `query=` from no query.
        self._raw[threading.get_ident()] = urlsplit(h.path).query
        super()._dispatch(h)

    def _guard(self, req: Request) -> Response | None:
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"detail": "Invalid token"}, {}
        if req.match is not None and req.match.groupdict().get("org", ORG) != ORG:
            return 404, {"detail": "The requested resource does not exist"}, {}
        return None

    def organizations(self, req: Request) -> Response:
        return self._guard(req) or (200, [{"id": "1", "slug": ORG, "name": "Acme"}], {})

    def get_project(self, req: Request) -> Response:
        denied = self._guard(req)
        assert req.match is not None
        if not denied and req.match["project"] != PROJECT:
            denied = 404, {"detail": "The requested resource does not exist"}, {}
        return denied or (200, self.project, {})

    def list_issues(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        found = list(self.issues)
        if req.q("project") not in (None, self.project["id"]):
            found = []
        sent = parse_qs(self._raw.get(threading.get_ident(), ""), keep_blank_values=True)
        if "query" not in sent:  # Sentry's default query; `query=` (empty) means every issue
            found = [i for i in found if i["status"] == "unresolved"]
        if req.q("start"):
            found = [i for i in found if _when(i["lastSeen"]) >= _when(req.q("start") or "")]
        if req.q("end"):
            found = [i for i in found if _when(i["firstSeen"]) <= _when(req.q("end") or "")]
        found.sort(key=lambda i: i["lastSeen"], reverse=True)
        limit = min(int(req.q("limit") or 100), 100)
        offset = int((req.q("cursor") or "0:0:0").split(":")[1])
        page = found[offset : offset + limit]
        more = offset + limit < len(found)
        return 200, page, {"Link": self._link(req, offset, limit, more)}

    def _link(self, req: Request, offset: int, limit: int, more: bool) -> str:
        def url(cursor: str) -> str:
            query = {k: v[0] for k, v in req.query.items()} | {"cursor": cursor}
            return f"<{self.url}{req.path}?{urlencode(query)}>"

        prev = f"0:{max(0, offset - limit)}:1"
        nxt = f"0:{offset + limit}:0"
        return (
            f'{url(prev)}; rel="previous"; results="{str(offset > 0).lower()}"; cursor="{prev}", '
            f'{url(nxt)}; rel="next"; results="{str(more).lower()}"; cursor="{nxt}"'
        )

    def get_issue(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        assert req.match is not None
        if req.match["id"] in self.details:
            return 200, self.details[req.match["id"]], {}
        issue = next((i for i in self.issues if i["id"] == req.match["id"]), None)
        if issue is None:
            return 404, {"detail": "The requested resource does not exist"}, {}
        return 200, {**issue, "activity": [], "seenBy": [], "participants": []}, {}


def _clone(issue: dict[str, Any], n: int) -> dict[str, Any]:
    item = copy.deepcopy(issue)
    item["id"] = str(4600000000 + n)
    item["shortId"] = f"CHECKOUT-API-X{n}"
    item["title"] = f"ValueError: bad quantity {n}"
    item["firstSeen"] = f"2024-05-01T14:{10 + n:02d}:00.000000Z"
    item["lastSeen"] = f"2024-05-01T14:{11 + n:02d}:00.000000Z"
    return item
