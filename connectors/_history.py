"""Helpers the history importers share: saved bodies from files, times, and date windows.

History import (`Connector.import_history`) reads incident records, not timelines. In file mode
the records come from bodies saved from a vendor's API: one JSON body per file (a page of a
list, or one object), a JSON array, or JSONL; folders are read recursively.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from connectors._support import ApiSettings
from retro.connector import HistoryQuery, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

DEFAULT_DAYS = 365  # live imports without --since go back this far


def saved_bodies(files: list[Path]) -> Iterator[tuple[str, Any]]:
    """(file name, parsed body) of every .json / .jsonl file in `files` (folders recursively)."""
    for path in files:
        if path.is_dir():
            children = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".json", ".jsonl"))
            yield from saved_bodies(children)
            continue
        if not path.is_file():
            raise ConfigError(f"No such file: {path}", hint="pass files saved from the API")
        text = _read(path)
        if path.suffix.lower() == ".jsonl":
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    yield f"{path}:{n}", _loads(line, path, f"line {n}")
        else:
            yield str(path), _loads(text, path, None)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BundleError(path, "is not UTF-8 text", hint="save the API body as UTF-8") from None


def _loads(text: str, path: Path, record: str | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(
            path,
            f"invalid JSON at line {exc.lineno}: {exc.msg}",
            record=record,
            hint="save the API's response body as it came",
        ) from None


def when(value: Any, *, where: str, record: str, field_name: str) -> datetime | None:
    """An aware UTC time, None when the vendor left it empty; BundleError when it is malformed."""
    if value in (None, ""):
        return None
    return parse_time(value, path=where, record=record, field_name=field_name)


def times(pairs: dict[str, Any], *, where: str, record: str) -> dict[str, datetime]:
    """Milestone name -> time for each present value (the dict's keys are milestone names)."""
    out: dict[str, datetime] = {}
    for name, value in pairs.items():
        at = when(value, where=where, record=record, field_name=name)
        if at is not None:
            out[name] = at
    return out


def live_range(query: HistoryQuery) -> tuple[datetime, datetime]:
    """The range a live import covers: --since (default a year ago) to --until (default now)."""
    until = query.until or datetime.now(UTC)
    since = query.since or until - timedelta(days=DEFAULT_DAYS)
    if since >= until:
        raise ConfigError(
            f"--since {since:%Y-%m-%d} is not before --until {until:%Y-%m-%d}",
            hint="give a --since earlier than --until",
        )
    return since, until


def windows(since: datetime, until: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """[since, until) cut into consecutive windows of at most `days` days."""
    out = []
    start = since
    while start < until:
        end = min(until, start + timedelta(days=days))
        out.append((start, end))
        start = end
    return out


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def name_of(value: Any, *keys: str) -> str | None:
    """value[key] for the first key present when value is a dict, else value if a string."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        for key in keys:
            found = value.get(key)
            if isinstance(found, str) and found:
                return found
    return None


def items_of(body: Any, key: str) -> list[Any] | None:
    """body[key] when it is a list; a bare list body is returned as is."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return list(body[key])
    return None


class HistoryClient:
    """httpx GETs for history imports under retro.retry: 429 and 5xx honour Retry-After (or the
    given wait headers), network errors back off; the body may be a JSON object or list.

    The shared JsonClient takes objects only; Statuspage's Manage API answers with lists.
    """

    def __init__(
        self,
        *,
        source: str,
        settings: ApiSettings,
        headers: dict[str, str],
        on_error: Callable[[httpx.Response, str], ConnectorError],
        wait_headers: tuple[str, ...] = ("retry-after",),
    ) -> None:
        import httpx

        self.source = source
        self.on_error = on_error
        self.wait_headers = wait_headers
        self.policy = RetryPolicy(
            retries=settings.max_retries, backoff=settings.backoff, max_wait=settings.max_wait
        )
        self.client = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers={"User-Agent": "retro-postmortem", **headers},
            timeout=settings.timeout,
        )

    def __enter__(self) -> HistoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def get(self, path: str, params: Any = None) -> Any:
        """GET path; its parsed JSON body (object or list)."""
        import httpx

        def attempt() -> Any:
            try:
                resp = self.client.get(path, params=params)
            except httpx.TransportError as exc:
                raise Retryable(f"GET {path} failed: {type(exc).__name__} {exc}".strip()) from None
            if resp.status_code == 429 or resp.status_code >= 500:
                wait = retry_after(resp.headers, self.wait_headers)
                raise Retryable(
                    f"HTTP {resp.status_code} on {path}",
                    retry_after=wait,
                    status=resp.status_code,
                    response=resp,
                )
            if resp.status_code >= 400:
                raise self.on_error(resp, path)
            try:
                return resp.json()
            except ValueError:
                raise Retryable(f"GET {path} returned a body that is not JSON") from None

        def give_up(exc: Retryable) -> NoReturn:
            if exc.response is None:
                raise ConnectorError(
                    self.source,
                    f"{exc.detail} (after {self.policy.retries + 1} attempts)",
                    hint="check network access and the API URL, then run the import again",
                ) from None
            raise self.on_error(exc.response, path)  # type: ignore[arg-type]

        return self.policy.run(attempt, give_up=give_up)

    def get_object(self, path: str, params: Any = None) -> dict[str, Any]:
        """get() that must return a JSON object."""
        body = self.get(path, params)
        if not isinstance(body, dict):
            raise ConnectorError(
                self.source,
                f"GET {path} returned a malformed body (not a JSON object)",
                hint="check the API URL setting",
            )
        return body
