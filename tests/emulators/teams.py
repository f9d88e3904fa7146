"""A Microsoft Graph emulator for Teams: the identity platform's token endpoint, channels, channel
messages with `$expand=replies`, replies, chats, chat messages and members.

It answers the way Graph does: app-only tokens from the client-credentials grant carry the
app's roles (application permissions) in a JWT; a missing role is a 403 naming it, and a
tenant whose app was not approved for the protected Teams APIs gets Graph's "Protected API"
403. Lists page by an absolute `@odata.nextLink` carrying an opaque `$skiptoken` and the
request's other parameters; `page_plan` makes pages shorter than `$top`, or empty, while a next
link is still given, as Graph does. `$expand=replies` embeds at most `expand_limit` replies
(newest first) with `replies@odata.count` and `replies@odata.nextLink`. Errors carry Graph's
`{"error": {"code", "message", "innerError"}}` body. Faults (429 with Retry-After, 5xx,
dropped connections) come from the base class.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any
from urllib.parse import unquote, urlencode

from tests.emulators.base import Emulator, Request, Response
from tests.emulators.teams_tenant import (
    ALL_ROLES,
    CHANNEL,
    CLIENT_ID,
    CLIENT_SECRET,
    PROTECTED,
    TEAM,
    TENANT,
    Tenant,
    sample_tenant,
)


def graph_error(status: int, code: str, message: str) -> Response:
    inner = {"date": "2024-05-01T14:00:00", "request-id": str(uuid.uuid4())}
    return status, {"error": {"code": code, "message": message, "innerError": inner}}, {}


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT as Graph clients see one (they never verify it; Graph does)."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


# --- the emulator ---------------------------------------------------------------------------------


def _created(item: dict[str, Any]) -> str:
    return str(item.get("createdDateTime"))


_FILTER = re.compile(r"createdDateTime\s+(gt|lt)\s+(\S+)")


class GraphEmulator(Emulator):
    """Serves /{tenant}/oauth2/v2.0/token and /v1.0/… like the identity platform and Graph."""

    def __init__(self, tenant: Tenant | None = None, *, roles: tuple[str, ...] = ALL_ROLES) -> None:
        super().__init__()
        self.tenant = tenant or sample_tenant()
        self.roles = list(roles)
        self.protected_api_approved = True
        self.page_plan: list[int] = []  # sizes of successive pages (cycled), each capped by $top
        self.expand_limit = 2  # replies embedded by $expand=replies
        self.static_tokens: dict[str, list[str]] = {}  # a token given as is -> its roles
        self.issued: dict[str, list[str]] = {}
        self.route("POST", r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token", self.token)
        base = r"/v1\.0/teams/(?P<team>[^/]+)/channels/(?P<channel>[^/]+)"
        self.route("GET", base, self.get_channel)
        self.route("GET", base + "/messages", self.list_messages)
        self.route("GET", base + r"/messages/(?P<msg>[^/]+)/replies", self.list_replies)
        self.route("GET", base + "/members", self.channel_members)
        self.route("GET", r"/v1\.0/chats/(?P<chat>[^/]+)", self.get_chat)
        self.route("GET", r"/v1\.0/chats/(?P<chat>[^/]+)/messages", self.chat_messages)
        self.route("GET", r"/v1\.0/chats/(?P<chat>[^/]+)/members", self.chat_members)

    @property
    def graph_url(self) -> str:
        return self.url + "/v1.0"

    def fault_spec(self, name: str) -> dict[str, Any]:
        """Graph's 429 and 503 carry its error body; its 429 says Retry-After."""
        spec = super().fault_spec(name)
        if spec.get("status") == 429:
            spec["body"] = graph_error(429, "TooManyRequests", "Too many requests")[1]
        return spec

    # -- tokens --------------------------------------------------------------------------------
    def token(self, req: Request) -> Response:
        form = req.form()
        if req.match is None or req.match["tenant"] != TENANT:
            return (
                400,
                {
                    "error": "invalid_request",
                    "error_description": f"AADSTS90002: Tenant '{req.match['tenant'] if req.match else ''}' not found.",
                    "error_codes": [90002],
                },
                {},
            )
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return (
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                    "error_codes": [7000215],
                },
                {},
            )
        if form.get("grant_type") != "client_credentials" or not str(
            form.get("scope", "")
        ).endswith("/.default"):
            return (
                400,
                {
                    "error": "invalid_scope",
                    "error_description": "AADSTS1002012: The provided value for scope is not valid.",
                },
                {},
            )
        claims = {
            "aud": "https://graph.microsoft.com",
            "tid": TENANT,
            "appid": CLIENT_ID,
            "app_displayname": "retro-harvest",
            "roles": list(self.roles),
        }
        token = jwt(claims)
        self.issued[token] = list(self.roles)
        return (
            200,
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            },
            {},
        )

    def _auth(
        self, req: Request, role: str | tuple[str, ...], protected: bool = False
    ) -> Response | None:
        auth = req.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        roles = self.issued.get(token, self.static_tokens.get(token))
        if not auth.startswith("Bearer ") or roles is None:
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
        wanted = (role,) if isinstance(role, str) else role
        if not set(wanted) & set(roles):
            return graph_error(
                403,
                "Forbidden",
                f"Missing role permissions on the request. API requires one of '{', '.join(wanted)}'. Roles on the request '{', '.join(roles)}'.",
            )
        if protected and not self.protected_api_approved:
            return graph_error(403, "Forbidden", PROTECTED)
        return None

    # -- paging --------------------------------------------------------------------------------
    @staticmethod
    def _enums(req: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Without `Prefer: include-unknown-enum-members`, Graph says "unknownFutureValue" for
        messageType values added after v1.0 shipped, systemEventMessage among them."""
        if "include-unknown-enum-members" in req.headers.get("prefer", ""):
            return items
        return [
            {**m, "messageType": "unknownFutureValue"}
            if m.get("messageType") == "systemEventMessage"
            else m
            for m in items
        ]

    def _page(self, req: Request, items: list[dict[str, Any]], context: str) -> Response:
        try:
            top = int(req.q("$top") or 20)
        except ValueError:
            top = 0
        if not 1 <= top <= 50:
            return graph_error(
                400, "BadRequest", "Invalid page size specified: '$top' must be between 1 and 50."
            )
        offset, n = 0, 0
        if req.q("$skiptoken"):
            try:
                offset, n = json.loads(base64.urlsafe_b64decode(str(req.q("$skiptoken"))))
            except ValueError:
                return graph_error(400, "BadRequest", "Invalid skip token.")
        size = min(top, self.page_plan[n % len(self.page_plan)]) if self.page_plan else top
        page = items[offset : offset + size]
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/$metadata#{context}",
            "value": page,
        }
        if offset + len(page) < len(items):
            token = base64.urlsafe_b64encode(
                json.dumps([offset + len(page), n + 1]).encode()
            ).decode()
            params = {k: v[0] for k, v in req.query.items() if k != "$skiptoken"}
            body["@odata.nextLink"] = (
                f"{self.url}{req.path}?{urlencode({**params, '$skiptoken': token})}"
            )
        return 200, body, {}

    # -- channels --------------------------------------------------------------------------------
    def _channel(self, req: Request) -> dict[str, Any] | None:
        assert req.match is not None
        return self.tenant.channels.get((req.match["team"], unquote(req.match["channel"])))

    def get_channel(self, req: Request) -> Response:
        denied = self._auth(req, ("Channel.ReadBasic.All", "ChannelSettings.Read.All"))
        if denied:
            return denied
        found = self._channel(req)
        return (
            (200, found["channel"], {})
            if found
            else graph_error(404, "NotFound", "Channel not found")
        )

    def _root(self, thread: dict[str, Any], expand: bool) -> dict[str, Any]:
        root = {k: v for k, v in thread.items() if k != "replies"}
        if not expand:
            return root
        replies = sorted(thread["replies"], key=_created, reverse=True)
        root["replies@odata.count"] = len(replies)
        if len(replies) > self.expand_limit:
            base = f"{self.graph_url}/teams/{TEAM}/channels/{CHANNEL}/messages/{root['id']}/replies"
            root["replies@odata.nextLink"] = f"{base}?$skiptoken=MSwwLDE2NDQ0MzkzODAxNDU"
        root["replies"] = replies[: self.expand_limit]
        return root

    def list_messages(self, req: Request) -> Response:
        denied = self._auth(req, "ChannelMessage.Read.All", protected=True)
        if denied:
            return denied
        found = self._channel(req)
        if not found:
            return graph_error(404, "NotFound", "Channel not found")
        expand = req.q("$expand") == "replies"
        roots = sorted(found["threads"], key=_created, reverse=True)
        assert req.match is not None
        context = f"teams('{req.match['team']}')/channels('{req.match['channel']}')/messages"
        return self._page(req, self._enums(req, [self._root(t, expand) for t in roots]), context)

    def list_replies(self, req: Request) -> Response:
        denied = self._auth(req, "ChannelMessage.Read.All", protected=True)
        if denied:
            return denied
        found = self._channel(req)
        assert req.match is not None
        thread = (
            next((t for t in found["threads"] if t["id"] == req.match["msg"]), None)
            if found
            else None
        )
        if thread is None:
            return graph_error(404, "NotFound", "Message not found")
        replies = sorted(thread["replies"], key=_created, reverse=True)
        return self._page(
            req,
            replies,
            f"teams('{TEAM}')/channels('{CHANNEL}')/messages('{thread['id']}')/replies",
        )

    def channel_members(self, req: Request) -> Response:
        denied = self._auth(req, "ChannelMember.Read.All")
        if denied:
            return denied
        found = self._channel(req)
        if not found:
            return graph_error(404, "NotFound", "Channel not found")
        return self._page(req, found["members"], "teams/channels/members")

    # -- chats -----------------------------------------------------------------------------------
    def _chat(self, req: Request) -> dict[str, Any] | None:
        assert req.match is not None
        return self.tenant.chats.get(unquote(req.match["chat"]))

    def get_chat(self, req: Request) -> Response:
        denied = self._auth(req, ("Chat.ReadBasic.All", "Chat.Read.All"), protected=True)
        if denied:
            return denied
        found = self._chat(req)
        return (200, found["chat"], {}) if found else graph_error(404, "NotFound", "Chat not found")

    def chat_messages(self, req: Request) -> Response:
        denied = self._auth(req, "Chat.Read.All", protected=True)
        if denied:
            return denied
        found = self._chat(req)
        if not found:
            return graph_error(404, "NotFound", "Chat not found")
        items = sorted(found["messages"], key=_created, reverse=True)
        flt = req.q("$filter")
        if flt:
            if req.q("$orderby") != "createdDateTime desc":
                return graph_error(
                    400,
                    "BadRequest",
                    "$filter on createdDateTime needs $orderby=createdDateTime desc",
                )
            for op, value in _FILTER.findall(flt):
                items = [
                    m for m in items if (_created(m) > value if op == "gt" else _created(m) < value)
                ]
        return self._page(req, self._enums(req, items), f"chats('{found['chat']['id']}')/messages")

    def chat_members(self, req: Request) -> Response:
        denied = self._auth(req, ("ChatMember.Read.All", "Chat.Read.All"))
        if denied:
            return denied
        found = self._chat(req)
        if not found:
            return graph_error(404, "NotFound", "Chat not found")
        return self._page(req, found["members"], "chats/members")
