"""A small threaded HTTP server that emulators build on, with fault injection.

An emulator subclasses `Emulator` and registers routes with `route(method, pattern)`. A handler
receives a `Request` and returns `(status, body, headers)`; a dict or list body is sent as JSON.

Faults are queued per route pattern: `emu.inject("/api/conversations.history", status=429,
headers={"Retry-After": "1"})` makes the next matching request fail once. `after=True` runs the
real handler first (the side effect is committed) and then answers with the fault, which is how
"5xx after the create was committed" is tested. Besides a status, a fault can drop the
connection without an answer (`drop=True`), cut the real answer's body short (`truncate="short"`:
a shorter body with a matching Content-Length; `truncate="cut"`: the connection closes
mid-body), or answer only after `delay` seconds (past the client's timeout). `skip=n` lets n
matching requests through first, so a fault can land on any page.

`FAULTS` names the faults every live source is tested against; `emu.inject_fault(name,
pattern, skip=n)` injects one, in the vendor's flavour (an emulator overrides `fault_spec` to
answer a 429 with its own body, say).
"""

from __future__ import annotations

import json
import re
import threading
import time
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


HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
SLOW_S = 1.5  # how late a "slow" fault answers; tests set the client's timeout below it

# The faults every live source is tested against (tests/test_faults.py), by name.
FAULTS: dict[str, dict[str, Any]] = {
    "429 with Retry-After": {"status": 429, "headers": {"Retry-After": "7"}},
    "429 without Retry-After": {"status": 429},
    "500": {"status": 500, "body": {"error": "internal error"}},
    "502 HTML": {"status": 502, "raw": HTML, "headers": {"Content-Type": "text/html"}},
    "503": {"status": 503, "body": "service unavailable"},
    "504 HTML": {"status": 504, "raw": HTML, "headers": {"Content-Type": "text/html"}},
    "dropped connection": {"drop": True},
    "dropped after the server answered": {"drop": True, "after": True},
    "HTML body": {"status": 200, "raw": HTML, "headers": {"Content-Type": "text/html"}},
    "truncated body": {"truncate": "short"},
    "connection cut mid-body": {"truncate": "cut"},
    "slow answer": {"delay": SLOW_S},
}


@dataclass
class Fault:
    status: int | None = None  # None: the real handler's answer (for drop, truncate, delay)
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    after: bool = False
    raw: bytes | None = None
    skip: int = 0  # matching requests to let through before the fault applies
    drop: bool = False  # close the connection without answering
    truncate: str = ""  # "short": half the body, Content-Length to match; "cut": close mid-body
    delay: float = 0.0  # seconds to wait before answering

    @property
    def replaces_answer(self) -> bool:
        return self.status is not None


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
        status: int | None = None,
        body: Body = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        after: bool = False,
        raw: bytes | None = None,
        skip: int = 0,
        drop: bool = False,
        truncate: str = "",
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` requests whose path matches `pattern` fail (after `skip`)."""
        if status is None and not (drop or truncate or delay):
            raise ValueError("a fault needs a status, drop, truncate or delay")
        fault = Fault(status, body, headers or {}, times, after, raw, skip, drop, truncate, delay)
        with self._lock:
            self.faults.append((re.compile(pattern), fault))

    def fault_spec(self, name: str) -> dict[str, Any]:
        """The inject() arguments of a named fault (FAULTS); emulators add the vendor's flavour."""
        return dict(FAULTS[name])

    def inject_fault(
        self, name: str, pattern: str = ".*", *, skip: int = 0, times: int = 1
    ) -> None:
        """Inject the named fault (FAULTS) on the (skip+1)-th request whose path matches."""
        self.inject(pattern, **self.fault_spec(name), skip=skip, times=times)

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

        self._server = _QuietServer(("127.0.0.1", 0), _Handler)
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
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
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
        if fault is None:
            self._send(h, *self._handle(req))
            return
        if fault.delay:
            time.sleep(fault.delay)  # the client has timed out by now; this answer is lost
        if fault.drop and not fault.after:
            h.close_connection = True  # no answer at all
            return
        if fault.replaces_answer and not fault.after:
            self._send(h, *self._fault_answer(fault))
            return
        response = self._handle(req)  # the real work is done (committed) from here on
        if fault.drop:
            h.close_connection = True
            return
        if fault.replaces_answer:
            response = self._fault_answer(fault)
        self._send(h, *response, truncate=fault.truncate)

    @staticmethod
    def _fault_answer(fault: Fault) -> Response:
        assert fault.status is not None
        return fault.status, fault.raw if fault.raw is not None else fault.body, fault.headers

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
    def _send(
        h: BaseHTTPRequestHandler,
        status: int,
        body: Body,
        headers: dict[str, str],
        truncate: str = "",
    ) -> None:
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
        length = len(payload)
        if truncate:
            payload = payload[: len(payload) // 2]
            h.close_connection = True
            # Say so, as a server does; else a client may reuse the connection it closes.
            h.send_header("Connection", "close")
        h.send_header("Content-Length", str(len(payload) if truncate == "short" else length))
        h.end_headers()
        h.wfile.write(payload)


class _QuietServer(ThreadingHTTPServer):
    """Clients that time out or hang up are part of the tests: no tracebacks for them."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)
