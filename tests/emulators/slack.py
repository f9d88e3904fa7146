"""A Slack Web API emulator: auth.test, conversations.list/info/history/replies, users.info/list.

It answers the way Slack does: HTTP 200 with {"ok": false, "error": ...} for API errors, cursor
pagination through response_metadata.next_cursor honouring `limit`, `has_more`, oldest/latest
windows, newest-first history, and the x-oauth-scopes header. Injected faults (429 with
Retry-After, 5xx, dropped connections, HTML and truncated bodies, slow answers) come from the
base class (`inject`, `inject_fault`); `fail_after` aims one at a later page of one method.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.base import Emulator, Request, Response

ALL_SCOPES = (
    "channels:history",
    "groups:history",
    "channels:read",
    "groups:read",
    "users:read",
    "users:read.email",
)
_NEEDED = {
    "conversations.list": "channels:read",
    "conversations.info": "channels:read",
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    "users.info": "users:read",
    "users.list": "users:read",
}


@dataclass
class SlackWorkspace:
    """What the emulated workspace holds; messages are per channel id, replies included."""

    users: list[dict[str, Any]]
    channels: list[dict[str, Any]]
    messages: dict[str, list[dict[str, Any]]]
    team: str = "Acme"
    team_id: str = "T0ACME"
    url: str = "https://acme.slack.com/"
    bot_user: str = "U0RETRO"
    extra: dict[str, Any] = field(default_factory=dict)


class _SlackError(Exception):
    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.body = {"ok": False, "error": code, **extra}


def _ts(value: str | None, default: float) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except ValueError:
        raise _SlackError("invalid_ts_oldest") from None


def _is_root(message: dict[str, Any]) -> bool:
    thread_ts = message.get("thread_ts")
    return thread_ts in (None, message["ts"]) or message.get("subtype") == "thread_broadcast"


class SlackEmulator(Emulator):
    """Serves POST (and GET) /api/<method> like slack.com/api does."""

    def __init__(
        self,
        workspace: SlackWorkspace,
        *,
        token: str = "xoxb-test-token",
        scopes: tuple[str, ...] | list[str] = ALL_SCOPES,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.token = token
        self.scopes = list(scopes)
        self.calls: Counter[str] = Counter()
        self._after: list[tuple[str, int, dict[str, Any]]] = []
        handlers: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "conversations.list": self._conversations_list,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "users.list": self._users_list,
        }
        for method, handler in handlers.items():
            wrapped = self._wrap(method, handler)
            self.route("POST", f"/api/{method}", wrapped)
            self.route("GET", f"/api/{method}", wrapped)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def fault_spec(self, name: str) -> dict[str, Any]:
        """Slack's 429 carries {"ok": false, "error": "ratelimited"}; its 5xx are plain."""
        spec = super().fault_spec(name)
        if spec.get("status") == 429:
            spec["body"] = {"ok": False, "error": "ratelimited"}
        return spec

    def fail_after(self, method: str, ok_calls: int, *, status: int | None, **fault: Any) -> None:
        """After `ok_calls` answered calls of `method`, make the next one fail once.

        `calls` counts what the handlers answered (Slack errors included), not injected faults.
        """
        self._after.append((method, ok_calls, {"status": status, **fault}))

    # -- plumbing ---------------------------------------------------------------------------
    def _wrap(self, method: str, handler: Callable[[dict[str, str]], dict[str, Any]]) -> Any:
        def serve(req: Request) -> Response:
            headers = {
                "x-oauth-scopes": ",".join(self.scopes),
                "x-accepted-oauth-scopes": _NEEDED.get(method, ""),
            }
            try:
                self._authorize(req, method)
                body = handler(req.form())
            except _SlackError as err:
                body = err.body
            self._count(method)
            return 200, body, headers

        return serve

    def _count(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1
            done = self.calls[method]
            due = [a for a in self._after if a[0] == method and a[1] == done]
        for _, _, fault in due:
            self.inject(f"^/api/{method}$", **fault)

    def _authorize(self, req: Request, method: str) -> None:
        auth = req.headers.get("authorization", "")
        if not auth:
            raise _SlackError("not_authed")
        if auth != f"Bearer {self.token}":
            raise _SlackError("invalid_auth")
        needed = _NEEDED.get(method)
        if needed and needed not in self.scopes:
            raise _SlackError("missing_scope", needed=needed, provided=",".join(self.scopes))

    @staticmethod
    def _page(items: list[Any], form: dict[str, str], default: int = 100) -> tuple[list[Any], str]:
        """One page of items and the cursor of the next ("" at the end), as Slack pages."""
        try:
            limit = max(1, min(int(form.get("limit") or default), 1000))
        except ValueError:
            raise _SlackError("invalid_limit") from None
        start = 0
        cursor = form.get("cursor") or ""
        if cursor:
            try:
                kind, _, offset = base64.b64decode(cursor).decode().partition(":")
                start = int(offset)
                assert kind == "next"
            except Exception:
                raise _SlackError("invalid_cursor") from None
        end = start + limit
        nxt = base64.b64encode(f"next:{end}".encode()).decode() if end < len(items) else ""
        return items[start:end], nxt

    def _channel(self, form: dict[str, str]) -> dict[str, Any]:
        cid = form.get("channel") or ""
        for channel in self.workspace.channels:
            if channel["id"] == cid:
                # Slack hides private channels the bot is not in.
                if channel.get("is_private") and not channel.get("is_member"):
                    break
                return channel
        raise _SlackError("channel_not_found")

    # -- methods ----------------------------------------------------------------------------
    def _auth_test(self, form: dict[str, str]) -> dict[str, Any]:
        ws = self.workspace
        return {
            "ok": True,
            "url": ws.url,
            "team": ws.team,
            "user": "retro",
            "team_id": ws.team_id,
            "user_id": ws.bot_user,
            "bot_id": "B0RETRO",
            "is_enterprise_install": False,
        }

    def _conversations_list(self, form: dict[str, str]) -> dict[str, Any]:
        types = set((form.get("types") or "public_channel").split(","))
        archived_ok = form.get("exclude_archived") not in ("1", "true")
        visible = []
        for channel in self.workspace.channels:
            private = bool(channel.get("is_private"))
            kind = "private_channel" if private else "public_channel"
            if channel.get("is_im"):
                kind = "im"
            elif channel.get("is_mpim"):
                kind = "mpim"
            if kind not in types or (private and not channel.get("is_member")):
                continue
            if channel.get("is_archived") and not archived_ok:
                continue
            visible.append(channel)
        page, nxt = self._page(visible, form)
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": nxt}}

    def _conversations_info(self, form: dict[str, str]) -> dict[str, Any]:
        return {"ok": True, "channel": self._channel(form)}

    def _window(self, form: dict[str, str], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        oldest = _ts(form.get("oldest"), 0.0)
        latest = _ts(form.get("latest"), time.time() + 86400 * 365 * 50)
        inclusive = form.get("inclusive") in ("1", "true")

        def inside(m: dict[str, Any]) -> bool:
            ts = float(m["ts"])
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        return [m for m in messages if inside(m)]

    def _with_thread(self, cid: str, message: dict[str, Any]) -> dict[str, Any]:
        """A root as Slack returns it: with reply_count, reply_users and latest_reply."""
        replies = [
            m
            for m in self.workspace.messages.get(cid, [])
            if m.get("thread_ts") == message["ts"] and m["ts"] != message["ts"]
        ]
        if not replies:
            return dict(message)
        users = list(dict.fromkeys(str(m.get("user")) for m in replies if m.get("user")))
        return {
            **message,
            "thread_ts": message["ts"],
            "reply_count": len(replies),
            "reply_users_count": len(users),
            "latest_reply": max(replies, key=lambda m: float(m["ts"]))["ts"],
            "reply_users": users[:5],
            "is_locked": False,
            "subscribed": False,
        }

    def _conversations_history(self, form: dict[str, str]) -> dict[str, Any]:
        channel = self._channel(form)
        if not channel.get("is_member"):
            raise _SlackError("not_in_channel")
        cid = channel["id"]
        roots = [m for m in self.workspace.messages.get(cid, []) if _is_root(m)]
        roots = sorted(self._window(form, roots), key=lambda m: float(m["ts"]), reverse=True)
        page, nxt = self._page([self._with_thread(cid, m) for m in roots], form)
        return {
            "ok": True,
            "messages": page,
            "has_more": bool(nxt),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": nxt},
        }

    def _conversations_replies(self, form: dict[str, str]) -> dict[str, Any]:
        channel = self._channel(form)
        cid, ts = channel["id"], form.get("ts") or ""
        messages = self.workspace.messages.get(cid, [])
        root = next((m for m in messages if m["ts"] == ts), None)
        if root is None:
            raise _SlackError("thread_not_found")
        replies = [m for m in messages if m.get("thread_ts") == ts and m["ts"] != ts]
        replies = sorted(self._window(form, replies), key=lambda m: float(m["ts"]))
        page, nxt = self._page(replies, form, default=10)
        # Slack repeats the parent message at the top of every page.
        return {
            "ok": True,
            "messages": [self._with_thread(cid, root), *page],
            "has_more": bool(nxt),
            "response_metadata": {"next_cursor": nxt},
        }

    def _users_info(self, form: dict[str, str]) -> dict[str, Any]:
        uid = form.get("user") or ""
        for user in self.workspace.users:
            if user["id"] == uid:
                return {"ok": True, "user": user}
        raise _SlackError("user_not_found")

    def _users_list(self, form: dict[str, str]) -> dict[str, Any]:
        page, nxt = self._page(self.workspace.users, form, default=100)
        return {
            "ok": True,
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": nxt},
        }
