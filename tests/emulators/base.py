"""A small threaded HTTP server that emulators build on, with fault injection.

An emulator subclasses `Emulator` and registers routes with `route(method, pattern)`. A handler
receives a `Request` and returns `(status, body, headers)`; a dict or list body is sent as JSON.

Faults are queued per route pattern: `emu.inject("/api/conversations.history", status=429,
headers={"Retry-After": "1"})` makes the next matching request fail once. `after=True` runs the
real handler first (the side effect is committed) and then answers with the fault, which is how
"5xx after the create was committed" is tested.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Body = dict[str, Any] | list[Any] | str | bytes | None
Response = tuple[int, Body, dict[str, str]]
Handler = Callable[["Request"], Response]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match[str] | None = None

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def form(self) -> dict[str, str]:
        """Form-encoded body fields (slack-sdk posts these) merged over the query string."""
        merged = {k: v[0] for k, v in self.query.items()}
        ctype = self.headers.get("content-type", "")
        if self.body and "application/x-www-form-urlencoded" in ctype:
            merged.update({k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()})
        elif self.body and "json" in ctype:
            data = self.json()
            if isinstance(data, dict):
                merged.update({k: str(v) for k, v in data.items()})
        return merged


@dataclass
class Fault:
    status: int
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    after: bool = False
    raw: bytes | None = None


class Emulator:
    """Base class: start() binds a free port on 127.0.0.1; stop() shuts it down."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.faults: list[tuple[re.Pattern[str], Fault]] = []
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up -----------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def inject(
        self,
        pattern: str,
        *,
        status: int,
        body: Body = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: bool = False,
        raw: bytes | None = None,
    ) -> None:
        """Make the next `times` requests whose path matches `pattern` fail with `status`."""
        fault = Fault(status, body, headers or {}, times, after, raw)
        with self._lock:
            self.faults.append((re.compile(pattern), fault))

    @property
    def url(self) -> str:
        assert self._server is not None, "emulator not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Emulator:
        emulator = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without this every keep-alive response waits ~40 ms for the client's delayed ACK.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                emulator._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------------
    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for i, (pattern, fault) in enumerate(self.faults):
                if pattern.search(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self.faults[i]
                    return fault
        return None

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Request(
            method=h.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=body,
        )
        with self._lock:
            self.log.append(req)
        fault = self._take_fault(req.path)
        if fault is not None and not fault.after:
            self._send(
                h, fault.status, fault.raw if fault.raw is not None else fault.body, fault.headers
            )
            return
        response = self._handle(req)
        if fault is not None:
            response = (
                fault.status,
                fault.raw if fault.raw is not None else fault.body,
                fault.headers,
            )
        self._send(h, *response)

    def _handle(self, req: Request) -> Response:
        for method, pattern, handler in self.routes:
            match = pattern.match(req.path)
            if match and method == req.method:
                req.match = match
                try:
                    return handler(req)
                except Exception as exc:  # an emulator bug must show up as a 500, not a hang
                    return 500, {"error": f"emulator error: {exc!r}"}, {}
        return self.not_found(req)

    def not_found(self, req: Request) -> Response:
        return 404, {"error": f"no route for {req.method} {req.path}"}, {}

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: Body, headers: dict[str, str]) -> None:
        if isinstance(body, dict | list):
            payload = json.dumps(body).encode("utf-8")
            ctype = "application/json; charset=utf-8"
        elif isinstance(body, str):
            payload = body.encode("utf-8")
            ctype = "text/plain; charset=utf-8"
        elif isinstance(body, bytes):
            payload = body
            ctype = "application/json; charset=utf-8"
        else:
            payload = b""
            ctype = "application/json; charset=utf-8"
        h.send_response(status)
        sent = {k.lower() for k in headers}
        if "content-type" not in sent:
            h.send_header("Content-Type", ctype)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)
