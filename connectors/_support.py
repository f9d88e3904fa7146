"""Helpers the paging connectors share: a retrying JSON client and a keyed event collector."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

from pydantic import BaseModel, SecretStr

from retro.connector import Doc, ReadContext
from retro.errors import ConnectorError, MissingCredential
from retro.models import SourceReport, TimelineEvent
from retro.retry import Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:  # httpx loads in about 0.1 s; only live mode needs it
    import httpx

ErrorFactory = Callable[["httpx.Response", str], ConnectorError]

# The ISO 8601 forms that exports use most: parse_time only rewrites their zone (Z, +0000)
# into a form datetime.fromisoformat has read since Python 3.11 anyway.
_PLAIN_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:?\d\d)")


def read_time(ctx: ReadContext, value: Any, *, doc: Doc, record: str, field_name: str) -> datetime:
    """ctx.time(value, ...), with a fast path for plain aware ISO 8601 strings."""
    if type(value) is str and _PLAIN_ISO.fullmatch(value):
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            pass  # e.g. month 13: ctx.time raises the BundleError that explains it
    return ctx.time(value, doc=doc, record=record, field_name=field_name)


class Collector:
    """Keeps one event per key; when two records describe one happening, the richer one wins.

    The loser's attrs fill the winner's gaps, so e.g. a log entry's actor and an alert body's
    tags both survive; `attrs["also_in"]` lists where the merged records were.
    """

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.events: dict[str, tuple[int, TimelineEvent]] = {}

    def add(self, event: TimelineEvent, rank: int) -> None:
        held = self.events.get(event.key)
        if held is None:
            self.events[event.key] = (rank, event)
            return
        keep, other = (event, held[1]) if rank > held[0] else (held[1], event)
        # Not a skip: both records went into the event, and `also_in` says where the other was.
        also = [
            *other.attrs.get("also_in", []),
            f"{other.provenance.file} {other.provenance.record}",
        ]
        keep.attrs = {
            **other.attrs,
            **keep.attrs,
            "also_in": [*keep.attrs.get("also_in", []), *also],
        }
        keep.url = keep.url or other.url
        keep.actor = keep.actor or other.actor
        self.events[event.key] = (max(rank, held[0]), keep)

    def sorted(self) -> list[TimelineEvent]:
        return sorted((e for _, e in self.events.values()), key=lambda e: (e.at, e.key))


class ApiSettings(Protocol):
    """The live-mode settings a JsonClient runs with (PagerDuty's and Opsgenie's configs)."""

    base_url: str
    max_retries: int
    backoff: float
    max_wait: float
    timeout: float


_Settings = TypeVar("_Settings", bound=BaseModel)


def settings_with_secret(
    config: BaseModel, cls: type[_Settings], secret: str, title: str, env: str
) -> _Settings:
    """config as cls (any model with the same fields is accepted); MissingCredential when its
    `secret` field is unset or empty."""
    settings = config if isinstance(config, cls) else cls.model_validate(config.model_dump())
    value = getattr(settings, secret)
    if not isinstance(value, SecretStr) or not value.get_secret_value():
        raise MissingCredential(title, env)
    return settings


class JsonClient:
    """httpx GETs under the shared retry policy: 429 honours the wait headers; 5xx and network
    errors back off."""

    def __init__(
        self,
        *,
        source: str,
        settings: ApiSettings,
        headers: dict[str, str],
        on_error: ErrorFactory,
        wait_headers: tuple[str, ...] = ("retry-after",),
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.source = source
        self.on_error = on_error
        self.wait_headers = wait_headers
        self.policy = RetryPolicy(
            retries=settings.max_retries,
            backoff=settings.backoff,
            max_wait=settings.max_wait,
            sleep=sleep,
        )
        import httpx

        self.client = httpx.Client(
            base_url=settings.base_url.rstrip("/"),
            headers={"User-Agent": "retro-postmortem", **headers},
            timeout=settings.timeout,
        )

    def __enter__(self) -> JsonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, path: str, params: Any = None, allow: tuple[int, ...] = ()) -> httpx.Response:
        """GET path; statuses in `allow` are returned instead of raised."""
        import httpx

        def attempt() -> httpx.Response:
            try:
                resp = self.client.get(path, params=params)
            except httpx.TransportError as exc:
                raise Retryable(f"GET {path} failed: {exc}") from None
            if resp.status_code == 429:
                wait = retry_after(resp.headers, self.wait_headers)
                raise Retryable(f"HTTP 429 on {path}", retry_after=wait, response=resp)
            if resp.status_code >= 500:
                raise Retryable(f"HTTP {resp.status_code} on {path}", response=resp)
            return resp

        def give_up(exc: Retryable) -> NoReturn:
            if exc.response is None:
                raise ConnectorError(
                    self.source, exc.detail, hint="check network access and the API URL"
                ) from None
            raise self.on_error(exc.response, path)  # type: ignore[arg-type]

        resp = self.policy.run(attempt, give_up=give_up)
        if resp.status_code >= 400 and resp.status_code not in allow:
            raise self.on_error(resp, path)
        return resp

    def get(self, path: str, params: Any = None) -> dict[str, Any]:
        return self.body(self.request(path, params), path)

    def body(self, resp: httpx.Response, path: str) -> dict[str, Any]:
        """The response's JSON object, or a ConnectorError naming the malformed body."""
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConnectorError(
                self.source,
                f"GET {path} returned a malformed body (not a JSON object)",
                hint="retry later; if it persists, check the API URL setting",
            )
        return data


def error_detail(resp: httpx.Response, *path: str) -> str:
    """A vendor error message found at `path` inside the JSON body, or ""."""
    try:
        node: Any = resp.json()
    except ValueError:
        return ""
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return str(node) if isinstance(node, str | int) and node != "" else ""


def write_json(folder: Path, name: str, body: Any, report: SourceReport) -> None:
    """Write one raw vendor body and list it in the report as <source>/<name>."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(
        json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    report.files.append(f"{folder.name}/{name}")
