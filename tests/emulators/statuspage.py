"""A Statuspage emulator: the Manage API v1 and a public page's status API v2.

Manage API: `Authorization: OAuth <key>` (401 `{"error": ...}` otherwise), `GET /v1/pages`,
`GET /v1/pages/{id}/incidents` as a bare JSON list, newest first, paged with `page` (from 1)
and `per_page` with no paging metadata at all (a short page is the last), and
`GET /v1/pages/{id}/incidents/{incident}`. Public API: `GET /api/v2/incidents.json` with
`{"page": …, "incidents": […]}`, no auth. Rate limiting is 420 or 429 with Retry-After.
Data: the recorded sandbox incidents and the documented checkout incident in
tests/fixtures/statuspage, plus `fill` older incidents cloned from a recorded one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.emulators.base import Emulator, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "statuspage"
PAGE_ID = "kctbh9vrtdwd"
KEY = "sp-test-key"


class StatuspageEmulator(Emulator):
    def __init__(self, fixtures: Path = FIXTURES, fill: int = 7) -> None:
        super().__init__()
        checkout = json.loads((fixtures / "documented_manage_api_v1_incident_get.json").read_text())
        recorded = json.loads(
            (fixtures / "documented_manage_api_v1_pages_incidents.json").read_text()
        )
        older = [_clone(recorded[0], n) for n in range(fill)]
        self.incidents: list[dict[str, Any]] = [checkout, *older]  # newest first
        self.page = {"id": PAGE_ID, "name": "Acme Status", "url": "https://status.acme.example",
                     "time_zone": "Etc/UTC", "updated_at": "2024-05-01T14:50:12.500Z"}  # fmt: skip
        self.route("GET", "/v1/pages", self.pages)
        self.route("GET", r"/v1/pages/(?P<page>[a-z0-9]+)/incidents", self.list_incidents)
        self.route("GET", r"/v1/pages/(?P<page>[a-z0-9]+)/incidents/(?P<id>[a-z0-9]+)", self.get)
        self.route("GET", "/api/v2/incidents.json", self.public_incidents)

    def _guard(self, req: Request) -> Response | None:
        if req.headers.get("authorization") != f"OAuth {KEY}":
            return 401, {"error": "Could not authenticate"}, {}
        if req.match is not None and req.match.groupdict().get("page", PAGE_ID) != PAGE_ID:
            return 404, {"error": "The page you were looking for doesn't exist."}, {}
        return None

    def pages(self, req: Request) -> Response:
        return self._guard(req) or (200, [self.page], {})

    def list_incidents(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        page = max(1, int(req.q("page") or 1))
        size = min(int(req.q("per_page") or 100), 100)
        return 200, self.incidents[(page - 1) * size : page * size], {}

    def get(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        assert req.match is not None
        found = next((i for i in self.incidents if i["id"] == req.match["id"]), None)
        if found is None:
            return 404, {"error": "The incident you were looking for doesn't exist."}, {}
        return 200, found, {}

    def public_incidents(self, req: Request) -> Response:
        return 200, {"page": self.page, "incidents": self.incidents[:50]}, {}


def _clone(incident: dict[str, Any], n: int) -> dict[str, Any]:
    """A recorded incident moved to April 2024, one day earlier per n, with new ids."""
    inc = copy.deepcopy(incident)
    inc["id"] = f"old{n:04d}incdnt"
    day = f"2024-04-{28 - n:02d}"
    text = json.dumps(inc).replace("2021-11-09", day).replace("2021-11-10", day)
    inc = json.loads(text)
    for i, upd in enumerate(inc["incident_updates"]):
        upd["id"] = f"old{n:04d}upd{i:02d}"
        upd["incident_id"] = inc["id"]
    return inc
