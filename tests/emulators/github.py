"""A GitHub REST API emulator: repository, deployments and statuses, pulls, releases, runs.

It answers like api.github.com: `Authorization: Bearer` (401 `{"message": "Bad credentials"}`),
a required `X-GitHub-Api-Version` (400 for an unknown one), `x-ratelimit-*` headers on every
answer, `Link` paging with `page`/`per_page` (`next`/`last`, then `prev`/`first`), newest-first
lists, `created=A..B` on workflow runs, and `base`/`state` on pulls. `primary_limit()` and
`secondary_limit()` are the vendor's two rate-limit answers, for inject(). Data: the
documented bodies in tests/fixtures/github.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.emulators.base import Emulator, Request, Response

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "github"
REPO, TOKEN, VERSION = "acme/checkout-api", "ghp-test-token", "2022-11-28"
DOCS = "https://docs.github.com/rest"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def primary_limit(reset_in: float = 5.0) -> dict[str, Any]:
    """inject() arguments of a primary rate-limit answer (the hourly quota is used up)."""
    reset = str(int(time.time() + reset_in))
    headers = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": reset,
        "x-ratelimit-used": "5000",
        "x-ratelimit-resource": "core",
    }
    body = {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS}
    return {"status": 403, "headers": headers, "body": body}


def secondary_limit(retry_after: str | None = "30") -> dict[str, Any]:
    """inject() arguments of a secondary rate-limit answer (too many requests too fast)."""
    message = (
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    )
    headers = {"retry-after": retry_after} if retry_after else {}
    return {
        "status": 403,
        "headers": headers,
        "body": {"message": message, "documentation_url": DOCS},
    }


class GitHubEmulator(Emulator):
    def __init__(self, fixtures: Path = FIXTURES) -> None:
        super().__init__()

        def load(name: str) -> Any:
            return json.loads((fixtures / f"documented_rest_{name}.json").read_text())

        self.repository: dict[str, Any] = load("repository_get")
        self.deployments: list[dict[str, Any]] = load("deployments_list")
        self.statuses: list[dict[str, Any]] = load("deployment_statuses_list")
        self.pulls: list[dict[str, Any]] = load("pulls_list_state_closed")
        self.releases: list[dict[str, Any]] = load("releases_list")
        self.runs: list[dict[str, Any]] = load("workflow_runs_list")["workflow_runs"]
        repo = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        self.route("GET", repo, self.get_repo)
        self.route("GET", repo + "/deployments", self.list_deployments)
        self.route("GET", repo + r"/deployments/(?P<id>\d+)/statuses", self.list_statuses)
        self.route("GET", repo + "/pulls", self.list_pulls)
        self.route("GET", repo + "/releases", self.list_releases)
        self.route("GET", repo + "/actions/runs", self.list_runs)
        self.route("GET", "/rate_limit", self.rate_limit)

    # -- helpers ------------------------------------------------------------------------------
    def _guard(self, req: Request) -> Response | None:
        if req.headers.get("authorization") not in (f"Bearer {TOKEN}", f"token {TOKEN}"):
            return 401, {"message": "Bad credentials", "documentation_url": DOCS}, {}
        version = req.headers.get("x-github-api-version")
        if version is not None and version != VERSION:
            return (
                400,
                {"message": f"API version {version} is not supported.", "documentation_url": DOCS},
                {},
            )
        owner = req.match.groupdict().get("owner") if req.match else None
        if owner is not None and req.match and f"{owner}/{req.match['repo']}" != REPO:
            return 404, {"message": "Not Found", "documentation_url": DOCS}, {}
        return None

    def _headers(self) -> dict[str, str]:
        reset = str(int(time.time() + 3600))
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": reset,
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": VERSION,
        }

    def _page(self, req: Request, items: list[Any], wrap: str | None = None) -> Response:
        size = min(int(req.q("per_page") or 30), 100)
        page = max(1, int(req.q("page") or 1))
        last = max(1, -(-len(items) // size))
        chunk = items[(page - 1) * size : page * size]

        def link(n: int, rel: str) -> str:
            query = {k: v[0] for k, v in req.query.items()} | {
                "per_page": str(size),
                "page": str(n),
            }
            return f'<{self.url}{req.path}?{urlencode(query)}>; rel="{rel}"'

        rels = []
        if page < last:
            rels += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            rels += [link(page - 1, "prev"), link(1, "first")]
        headers = self._headers() | ({"Link": ", ".join(rels)} if rels else {})
        body: Any = {"total_count": len(items), wrap: chunk} if wrap else chunk
        return 200, body, headers

    # -- routes -------------------------------------------------------------------------------
    def get_repo(self, req: Request) -> Response:
        return self._guard(req) or (200, self.repository, self._headers())

    def list_deployments(self, req: Request) -> Response:
        return self._guard(req) or self._page(req, self.deployments)

    def list_statuses(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        assert req.match is not None
        url = f"/deployments/{req.match['id']}"
        return self._page(req, [s for s in self.statuses if s["deployment_url"].endswith(url)])

    def list_pulls(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        found = [p for p in self.pulls if req.q("state") in ("all", p["state"])]
        if req.q("base"):
            found = [p for p in found if p["base"]["ref"] == req.q("base")]
        found.sort(key=lambda p: p["updated_at"], reverse=req.q("direction") != "asc")
        return self._page(req, found)

    def list_releases(self, req: Request) -> Response:
        return self._guard(req) or self._page(req, self.releases)

    def list_runs(self, req: Request) -> Response:
        denied = self._guard(req)
        if denied:
            return denied
        found = self.runs
        if req.q("created"):
            start, _, end = (req.q("created") or "").partition("..")
            found = [r for r in found if _when(start) <= _when(r["created_at"]) <= _when(end)]
        return self._page(req, found, wrap="workflow_runs")

    def rate_limit(self, req: Request) -> Response:
        denied = self._guard(req)
        core = {"limit": 5000, "remaining": 4999, "reset": int(time.time() + 3600), "used": 1}
        return denied or (200, {"resources": {"core": core}, "rate": core}, self._headers())
