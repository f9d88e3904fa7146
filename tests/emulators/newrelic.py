"""A NerdGraph emulator: `POST /graphql` answering `aiIssues` issues and incidents queries.

It answers like api.newrelic.com: the `API-Key` header (a wrong key is a 200 answer whose
`errors` say so, as GraphQL servers do), `nextCursor` paging of `page_size` items (an opaque
cursor; the last page's is null), `timeWindow` and `filter: {ids}` filtering, an unknown account
as `account: null` with an error, and throttling as an `errors` entry of class
TOO_MANY_REQUESTS (`throttle`) besides HTTP 429. Data: tests/fixtures/newrelic documented bodies.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.emulators.base import Emulator, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "newrelic"
ACCOUNT, KEY = 3141592, "NRAK-TESTKEY0000000000000000000"


class NewRelicEmulator(Emulator):
    def __init__(self, fixtures: Path = FIXTURES, page_size: int = 2) -> None:
        super().__init__()

        def ai(name: str) -> list[dict[str, Any]]:
            body = json.loads((fixtures / f"documented_nerdgraph_aiissues_{name}.json").read_text())
            return body["data"]["actor"]["account"]["aiIssues"][name][name]  # type: ignore[no-any-return]

        self.issues = ai("issues")
        self.incidents = ai("incidents")
        self.page_size = page_size
        self.throttle = 0  # answer this many queries with a throttling error first
        self.route("POST", "/graphql", self.graphql)

    def graphql(self, req: Request) -> Response:
        if req.headers.get("api-key") != KEY:
            error = {"message": "Invalid API key", "extensions": {"errorClass": "UNAUTHORIZED"}}
            return 200, {"errors": [error], "data": {"actor": None}}, {}
        if self.throttle:
            self.throttle -= 1
            error = {
                "message": "Too many requests",
                "extensions": {"errorClass": "TOO_MANY_REQUESTS"},
            }
            return 200, {"errors": [error], "data": None}, {}
        body = req.json() or {}
        query, variables = str(body.get("query") or ""), body.get("variables") or {}
        if "user {" in query:
            user = {"name": "Bo Chen", "email": "bo.chen@example.com"}
            accounts = [{"id": ACCOUNT, "name": "Acme"}]
            return 200, {"data": {"actor": {"user": user, "accounts": accounts}}}, {}
        if variables.get("account") != ACCOUNT:
            error = {"message": "Account not found or access denied", "path": ["actor", "account"]}
            return 200, {"errors": [error], "data": {"actor": {"account": None}}}, {}
        kind = "issues" if "issues(" in query else "incidents"
        key = "issueId" if kind == "issues" else "incidentId"
        found = self.issues if kind == "issues" else self.incidents
        if variables.get("ids") is not None:
            found = [i for i in found if i[key] in variables["ids"]]
        start, end = variables.get("start"), variables.get("end")
        found = [
            i
            for i in found
            if (end is None or i["createdAt"] <= end)
            and (start is None or (i.get("closedAt") or end or 0) >= start)
        ]
        cursor = variables.get("cursor")
        offset = json.loads(base64.b64decode(cursor))["o"] if cursor else 0
        page = found[offset : offset + self.page_size]
        more = offset + self.page_size < len(found)
        nxt = base64.b64encode(json.dumps({"o": offset + self.page_size}).encode()).decode()
        block = {kind: page, "nextCursor": nxt if more else None}
        return 200, {"data": {"actor": {"account": {"aiIssues": {kind: block}}}}}, {}
