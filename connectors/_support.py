"""Helpers the paging connectors share: a retrying JSON client and a keyed event collector."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

from pydantic import BaseModel, SecretStr

from retro.connector import EARLIEST, LATEST, Doc, IncidentRef, ReadContext
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
            at = datetime.fromisoformat(value).astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # e.g. month 13: ctx.time raises the BundleError that explains it
        else:
            if EARLIEST <= at < LATEST:  # else ctx.time explains the range
                return at
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
    """httpx GETs under the shared retry policy.

    Retried: 429 (honouring the wait headers), 5xx (honouring Retry-After when sent), network
    errors and timeouts, and a 2xx whose body is not a JSON object (an HTML page from a proxy, a
    body cut short). Everything else is one ConnectorError once the retries run out.
    """

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

    def fetch(
        self, path: str, params: Any = None, allow: tuple[int, ...] = ()
    ) -> tuple[int, dict[str, Any] | None]:
        """GET path: (status, JSON object). Statuses in `allow` come back with no body instead
        of raising; any other error status is a ConnectorError."""
        import httpx

        def attempt() -> tuple[int, dict[str, Any] | None]:
            try:
                resp = self.client.get(path, params=params)
            except httpx.TransportError as exc:  # refused, reset, timed out, cut mid-body
                detail = " ".join(f"{type(exc).__name__} {exc}".split())
                raise Retryable(f"GET {path} failed: {detail}") from None
            status = resp.status_code
            if status == 429 or status >= 500:
                wait = retry_after(resp.headers, self.wait_headers)
                raise Retryable(f"HTTP {status} on {path}", retry_after=wait, response=resp)
            if status >= 400:
                if status in allow:
                    return status, None
                raise self.on_error(resp, path)
            return status, self._json(resp, path)

        def give_up(exc: Retryable) -> NoReturn:
            if exc.status == _MALFORMED:
                raise ConnectorError(
                    self.source,
                    f"{exc.detail} after {self.policy.retries + 1} attempts",
                    hint="run the harvest again later; if it persists, check the API URL setting",
                ) from None
            if exc.response is None:
                raise ConnectorError(
                    self.source,
                    f"{exc.detail} (after {self.policy.retries + 1} attempts)",
                    hint="check network access and the API URL, then run the harvest again",
                ) from None
            raise self.on_error(exc.response, path)  # type: ignore[arg-type]

        return self.policy.run(attempt, give_up=give_up)

    def get(self, path: str, params: Any = None) -> dict[str, Any]:
        """GET path and return its JSON object."""
        _, body = self.fetch(path, params)
        assert body is not None  # only statuses in `allow` come back without a body
        return body

    def _json(self, resp: httpx.Response, path: str) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:  # HTML from a proxy, or a body cut short: worth another attempt
            data = None
        if not isinstance(data, dict):
            raise Retryable(
                f"GET {path} returned a malformed body (not a JSON object)", status=_MALFORMED
            )
        return data


_MALFORMED = -1  # Retryable.status of a 2xx answer whose body is not a JSON object


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
    """Write one raw vendor body (whole, or not at all) and list it in the report."""
    save_json(folder / name, body)
    report.files.append(f"{folder.name}/{name}")


def save_json(path: Path, body: Any) -> None:
    """Write JSON through a temp file and a rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class Checkpoint:
    """What a live harvest fetched before it stopped, so the next run resumes instead of
    starting over.

    It lives in `<bundle>/<source>/.harvest-state.json` (the bundle reader skips dot files) and
    applies only to a run with the same `key` (incident, targets, window). A harvest keeps the
    progress of the unit it is working on in `state` (the pages so far and where the next one
    starts), marks finished units with `finish`, calls `save` when it stops on an error, and
    `clear` once the source is complete. Units are written to the bundle only when complete, so
    a file in the bundle is never half of something.
    """

    NAME = ".harvest-state.json"

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        self.path = folder / self.NAME
        self.key = key
        self.state: dict[str, Any] = {}
        self.resumed = False
        try:
            held = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # none yet, or unreadable: start over (nothing in the bundle depends on it)
        if (
            isinstance(held, dict)
            and held.get("key") == key
            and isinstance(held.get("state"), dict)
        ):
            self.state = held["state"]
            self.resumed = True

    def unit(self, name: str) -> dict[str, Any]:
        """The progress record of one unit (an incident, an alert, a channel)."""
        units = self.state.setdefault("units", {})
        return units.setdefault(name, {})  # type: ignore[no-any-return]

    def done(self, name: str) -> bool:
        return bool(self.state.get("units", {}).get(name, {}).get("done"))

    def finish(self, name: str, **summary: Any) -> None:
        """Mark a unit complete; its pages are dropped and only `summary` is kept."""
        self.state.setdefault("units", {})[name] = {"done": True, **summary}

    def save(self) -> None:
        """Keep the progress for the next run (nothing to keep: no file)."""
        if self.state:
            save_json(self.path, {"version": 1, "key": self.key, "state": self.state})

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def ref_key(source: str, ref: IncidentRef) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the incident, the targets and the window."""
    return {
        "incident": ref.incident_id,
        "source": source,
        "targets": ref.of(source),
        "since": ref.since.isoformat() if ref.since else None,
        "until": ref.until.isoformat() if ref.until else None,
    }
