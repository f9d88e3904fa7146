"""The Jira site that action filing and sync talk to, and their one-line errors.

The core never imports the connectors package: it asks the registry for the `jira` connector,
builds its settings with `retro.config.connector_config` (flag, env var, keys file, retro.toml)
and gets a connected client from `Connector.client`. That client (`JiraClient` in the Jira
connector) carries the `jira` library's client, set never to retry by itself, and `read`, which
retries a read under retro's one policy (429 with or without Retry-After, 500/502/503/504,
dropped connections, timeouts, HTML or cut bodies). Writes are not retried there; `jira.py`
decides when a create or a link may be sent again, and only after checking Jira first.

Errors are explained here with hints that fit filing: a 403 on a create names Create Issues, on
a link the Link Issues permission, on a read Browse Projects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, cast

from pydantic import BaseModel

from retro.errors import ConnectorError, RetroError
from retro.retry import RetryPolicy

if TYPE_CHECKING:
    from jira import JIRA

T = TypeVar("T")
Doing = Literal["read", "create", "link"]
AUTH_HINT = "check JIRA_EMAIL and JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/Data Center)"
_FORBIDDEN_HINT = {
    "read": "the account needs the Browse Projects permission on that project",
    "create": "the account needs the Create Issues permission in the project",
    "link": "the account needs the Link Issues permission in the projects of both issues, "
    "and issue linking must be on (Jira administration > Issues > Issue linking)",
}


class JiraSettings(Protocol):
    """The Jira connector's settings that filing reads (its Config model has more)."""

    base_url: str
    project: str | None
    max_retries: int
    max_retry_delay_s: float


class JiraClient(Protocol):
    """What filing uses of the Jira connector's client (connectors/jira/client.py)."""

    jira: JIRA

    @property
    def cloud(self) -> bool: ...

    @property
    def api_version(self) -> str: ...

    def browse_url(self, key: str) -> str: ...

    def read(
        self, fn: Callable[[], T], what: str = "", *, check: Callable[[T], object] | None = None
    ) -> T: ...

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any: ...

    def close(self) -> None: ...


def jira_settings(project: str | None = None) -> BaseModel:
    """The Jira connector's settings: flag, env var, keys file, retro.toml, default."""
    from retro import registry
    from retro.config import connector_config

    connector = registry.get("jira")
    return connector_config(connector.name, connector.title, connector.Config, {"project": project})


def settings_of(config: BaseModel) -> JiraSettings:
    return cast(JiraSettings, config)


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of a failed call, when it got an answer."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def explain(
    exc: BaseException,
    what: str,
    config: JiraSettings,
    doing: Doing,
    *,
    retried: bool | None = None,
) -> RetroError:
    """A one-line error for a failed call; reads have been retried by then, writes not always."""
    from requests import RequestException

    if isinstance(exc, RetroError):
        return exc
    status = status_of(exc)
    text = str(getattr(exc, "text", "") or "").strip()
    detail = text.splitlines()[0][:160] if text else ""
    retried = doing == "read" if retried is None else retried
    after = f" after {config.max_retries} retries" if retried else ""
    if status == 401:
        return ConnectorError(
            "jira", f"Jira rejected the credentials (401) on {what}", hint=AUTH_HINT
        )
    if status == 403:
        message = f"permission denied (403) on {what}: {detail}".rstrip(": ")
        return ConnectorError("jira", message, hint=_forbidden_hint(exc, doing))
    if status == 404:
        return ConnectorError(
            "jira",
            f"{what}: not found, or not visible to this account",
            hint="check the key and the account's project access",
        )
    if status == 429:
        return ConnectorError(
            "jira", f"rate limited (429) on {what}{after}", hint="wait a minute and run again"
        )
    if status is not None and status >= 500:
        return ConnectorError(
            "jira",
            f"Jira answered {status} on {what}{after}",
            hint="Jira is having trouble; try again later",
        )
    if status is not None:
        return ConnectorError("jira", f"Jira answered {status} on {what}: {detail}".rstrip(": "))
    # requests' JSONDecodeError is both a RequestException and a ValueError: test ValueError first.
    if isinstance(exc, ValueError | KeyError | TypeError | NotImplementedError):
        return ConnectorError(
            "jira",
            f"malformed response body on {what}{after}",
            hint="is JIRA_URL a Jira site? a proxy may be answering instead",
        )
    if isinstance(exc, RequestException):
        return ConnectorError(
            "jira",
            f"no answer from Jira at {config.base_url} on {what} ({type(exc).__name__}){after}",
            hint="check JIRA_URL and the network, then run again",
        )
    return ConnectorError("jira", f"{type(exc).__name__} on {what}: {exc}"[:200])


def _forbidden_hint(exc: BaseException, doing: Doing) -> str:
    """The permission a 403 is about; a CAPTCHA only when Jira says so (Server/DC header)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    if "CAPTCHA" in str(headers.get("X-Authentication-Denied-Reason", "")).upper():
        return "Jira asks for a CAPTCHA: log in to Jira once in a browser as this account"
    return _FORBIDDEN_HINT[doing]


@dataclass
class Site:
    """A connected Jira site and the settings it was made from."""

    client: JiraClient
    config: JiraSettings

    @property
    def jira(self) -> JIRA:
        return self.client.jira

    @property
    def cloud(self) -> bool:
        return self.client.cloud

    @property
    def adf(self) -> bool:
        """REST v3 (Cloud) takes rich text as Atlassian Document Format; v2 as wiki markup."""
        return self.client.api_version == "3"

    def url(self, key: str) -> str:
        return self.client.browse_url(key)

    def write_policy(self) -> RetryPolicy:
        """How often a write may be sent again, and how long to wait: the reads' numbers. The
        caller decides what is safe to send again (after checking Jira first)."""
        return RetryPolicy(
            retries=self.config.max_retries, backoff=1.0, max_wait=self.config.max_retry_delay_s
        )

    def read(
        self, what: str, fn: Callable[[], T], *, check: Callable[[T], object] | None = None
    ) -> T:
        """A read, retried under the policy; its final failure as one line."""
        try:
            return self.client.read(fn, what, check=check)
        except Exception as exc:
            raise explain(exc, what, self.config, "read") from None

    def read_or_missing(
        self, what: str, fn: Callable[[], T], *, check: Callable[[T], object] | None = None
    ) -> T | None:
        """A read that answers None on 404 (deleted, moved or not visible)."""
        try:
            return self.client.read(fn, what, check=check)
        except Exception as exc:
            if status_of(exc) == 404:
                return None
            raise explain(exc, what, self.config, "read") from None

    def search(self, jql: str, fields: list[str], limit: int = 0) -> list[dict[str, Any]]:
        issues = self.read(
            f"search {jql!r}",
            lambda: self.jira.search_issues(jql, maxResults=limit, fields=fields),
            check=_issues,
        )
        return [dict(i.raw) for i in issues]  # type: ignore[union-attr]

    def issue(self, key: str, fields: str) -> dict[str, Any] | None:
        """One issue's raw JSON with these fields; None when it does not exist for us."""
        found = self.read_or_missing(
            f"issue {key}", lambda: self.jira.issue(key, fields=fields), check=_issue
        )
        return dict(found.raw) if found is not None else None

    def close(self) -> None:
        self.client.close()


def _issue(issue: Any) -> None:
    raw = getattr(issue, "raw", None)
    if not (isinstance(raw, dict) and raw.get("key") and isinstance(raw.get("fields"), dict)):
        raise ValueError("not an issue body")


def _issues(issues: Any) -> None:
    for issue in issues:
        _issue(issue)


def connect(config: BaseModel) -> Site:
    """A connected site; MissingCredential/ConfigError when Jira is not configured."""
    from retro import registry

    client = cast(JiraClient, registry.get("jira").client(config))
    return Site(client, settings_of(config))
