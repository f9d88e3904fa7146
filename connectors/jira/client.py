"""Jira settings and the connected client that harvest, `sources check` and action filing share.

`JiraClient` holds the `jira` library's client (`.jira`), configured so that it never retries
on its own: its ResilientSession re-sends any request, a POST included, after a connection
error, which turns a create that Jira committed into a second issue. Every read goes through
`JiraClient.read` instead, under retro's one retry policy (`retro.retry.RetryPolicy`): 429
(honouring `Retry-After`), 500/502/503/504, dropped connections, timeouts and bodies that are
not the JSON asked for (an HTML page from a proxy, a truncated body) are retried; anything else
is raised at once. Writes are never retried here: the caller decides what is safe to repeat.

`get_json` covers the paged REST reads the library does not expose publicly (comments and
changelog pages, create-screen metadata); it uses `requests` with the same credentials.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, Field, SecretStr

from retro.errors import ConfigError, ConnectorError, MissingCredential
from retro.retry import RETRIED_STATUSES, Retryable, RetryPolicy, retry_after

if TYPE_CHECKING:
    import requests
    from jira import JIRA

T = TypeVar("T")
AUTH_HINT = "check JIRA_EMAIL and JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/Data Center)"


class JiraConfig(BaseModel):
    """Settings for live mode; Cloud uses email + API token, Server/Data Center a PAT."""

    base_url: str = Field(
        default="",
        description="Jira site URL, e.g. https://acme.atlassian.net or https://jira.acme.com",
        json_schema_extra={"env": "JIRA_URL"},
    )
    email: str | None = Field(
        default=None,
        description="Atlassian account email for Cloud basic auth (with JIRA_API_TOKEN)",
        json_schema_extra={"env": "JIRA_EMAIL"},
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Cloud API token (id.atlassian.com > Security > API tokens)",
        json_schema_extra={"env": "JIRA_API_TOKEN"},
    )
    pat: SecretStr | None = Field(
        default=None,
        description="Server/Data Center personal access token, sent as a Bearer token",
        json_schema_extra={"env": "JIRA_PAT"},
    )
    api_version: Literal["2", "3"] | None = Field(
        default=None,
        description='REST API version; default "3" with email+token (Cloud), "2" with a PAT',
        json_schema_extra={"env": "JIRA_API_VERSION"},
    )
    project: str | None = Field(
        default=None,
        description="Project key whose Browse Projects permission `sources check` verifies",
        json_schema_extra={"env": "JIRA_PROJECT"},
    )
    follow_links: bool = Field(default=True, description="Also fetch issues linked one level away")
    page_size: int = Field(default=100, ge=1, le=5000, description="Comments/changelog page size")
    timeout_s: float = Field(default=30.0, gt=0, description="HTTP timeout per request, seconds")
    max_retries: int = Field(
        default=3, ge=0, description="Retries of a read on 429, 5xx, timeouts and bad bodies"
    )
    max_retry_delay_s: float = Field(
        default=30.0,
        ge=0,
        description="Cap on each retry wait, even when Retry-After asks for more",
    )

    def version(self) -> str:
        """The REST version to use: explicit, else 3 for Cloud basic auth, 2 for a PAT."""
        if self.api_version:
            return self.api_version
        # Mirrors JiraClient's choice of auth: `retro keys set jira` stores one secret that
        # fills both api_token and pat, so the email decides which one is meant.
        cloud = bool(self.email) and self.api_token is not None
        return "3" if cloud or self.pat is None else "2"


def as_config(config: BaseModel) -> JiraConfig:
    """Accept a JiraConfig, or any model with the same fields."""
    if isinstance(config, JiraConfig):
        return config
    return JiraConfig.model_validate(config.model_dump())


def _auth(config: JiraConfig) -> dict[str, Any]:
    if config.email and config.api_token is not None:
        return {"basic_auth": (config.email, config.api_token.get_secret_value())}
    if config.pat is not None:
        return {"token_auth": config.pat.get_secret_value()}
    if config.api_token is not None:
        raise ConfigError("A Jira API token needs the account's email", hint="set JIRA_EMAIL")
    raise MissingCredential("Jira", "JIRA_API_TOKEN (with JIRA_EMAIL) or JIRA_PAT")


def transient(exc: BaseException) -> Retryable | None:
    """A Retryable when another attempt of a read may succeed; None when it cannot."""
    from jira import JIRAError
    from requests import RequestException

    if isinstance(exc, JIRAError):
        status = exc.status_code
        if status in RETRIED_STATUSES:
            headers = getattr(exc.response, "headers", None) or {}
            wait = retry_after(headers) if status in (429, 503) else None
            return Retryable(f"HTTP {status}", retry_after=wait, status=status, response=exc)
        return None
    # requests' JSONDecodeError is a RequestException and a ValueError: an HTML page from a
    # proxy or a cut body is as transient as a dropped connection. The library raises
    # NotImplementedError for an empty body where it expects a resource.
    if isinstance(exc, RequestException | ValueError | KeyError | NotImplementedError):
        return Retryable(type(exc).__name__, response=exc)
    return None


def policy_for(config: JiraConfig) -> RetryPolicy:
    """The retry policy of this site's reads, from its settings."""
    return RetryPolicy(retries=config.max_retries, backoff=1.0, max_wait=config.max_retry_delay_s)


def run_read(
    policy: RetryPolicy, fn: Callable[[], T], *, check: Callable[[T], object] | None = None
) -> T:
    """Run one read under `policy`; `check` raises ValueError when the answer has a wrong shape.

    When the attempts run out, or on an error no retry can fix (401, 403, 404, 400), the
    exception of the last attempt is raised as it is, for the caller to explain.
    """

    def attempt() -> T:
        try:
            value = fn()
            if check is not None:
                check(value)
            return value
        except Exception as exc:
            again = transient(exc)
            if again is None:
                raise
            raise again from exc

    def give_up(exc: Retryable) -> NoReturn:
        last = exc.response
        raise last if isinstance(last, BaseException) else exc

    return policy.run(attempt, give_up=give_up)


class _LibraryNoise(logging.Filter):
    """The `jira` library logs a body it cannot parse through the *root* logger, page and all
    (jira/resources.py), and the first such call installs a stderr handler; retro reports that
    failure itself, in one line, so those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.replace("\\", "/").endswith("/jira/resources.py")


_NOISE = _LibraryNoise()


def _library_client(config: JiraConfig, auth: dict[str, Any]) -> JIRA:
    from jira import JIRA

    if _NOISE not in logging.getLogger().filters:
        logging.getLogger().addFilter(_NOISE)

    return JIRA(
        server=config.base_url,
        options={"rest_api_version": config.version()},
        max_retries=0,  # retro.retry retries reads; a POST is never re-sent blindly
        timeout=config.timeout_s,
        get_server_info=True,  # the deployment type decides Cloud or Server endpoints
        logging=False,  # retro reports errors itself
        **auth,
    )


def make_client(config: JiraConfig) -> JIRA:
    """The `jira` library's client for these settings, connected (its serverInfo read retried)
    and configured never to retry by itself. Raises MissingCredential, ConfigError or
    ConnectorError."""
    auth = _auth(config)
    if not config.base_url:
        raise ConfigError("No Jira URL", hint="set JIRA_URL, e.g. https://acme.atlassian.net")
    try:
        return run_read(policy_for(config), lambda: _library_client(config, auth))
    except Exception as exc:
        raise translate(exc, "serverInfo", config) from None


class JiraClient:
    """A connected Jira site: `jira` (the library's client, never retrying by itself), `read`
    (any read under the retry policy), `get_json` (paged REST reads) and the site's facts."""

    def __init__(self, config: JiraConfig) -> None:
        import requests

        self.config = config
        self.policy = policy_for(config)
        self.jira: JIRA = make_client(config)
        self.http: requests.Session = requests.Session()
        self.http.headers["Accept"] = "application/json"
        auth = _auth(config)
        if "basic_auth" in auth:
            self.http.auth = auth["basic_auth"]
        else:
            self.http.headers["Authorization"] = f"Bearer {auth['token_auth']}"

    @property
    def cloud(self) -> bool:
        return bool(self.jira.deploymentType == "Cloud")

    @property
    def api_version(self) -> str:
        return self.config.version()

    def browse_url(self, key: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/browse/{key}"

    def read(
        self, fn: Callable[[], T], what: str = "", *, check: Callable[[T], object] | None = None
    ) -> T:
        """`run_read` with this site's policy; the last attempt's exception is raised as is."""
        return run_read(self.policy, fn, check=check)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """One GET of `/rest/api/<version>/<path>`; JIRAError on an error status, ValueError
        when the body is not JSON. Not retried: wrap it in `read`."""
        from jira import JIRAError

        url = f"{self.config.base_url.rstrip('/')}/rest/api/{self.api_version}/{path}"
        response = self.http.get(url, params=dict(params or {}), timeout=self.config.timeout_s)
        if not response.ok:
            raise JIRAError(
                response.text[:500],
                status_code=response.status_code,
                url=url,
                response=response,
            )
        return response.json()

    def close(self) -> None:
        self.http.close()
        self.jira.close()


def connect(config: JiraConfig) -> JiraClient:
    """A connected JiraClient; raises MissingCredential, ConfigError or ConnectorError."""
    return JiraClient(config)


def jira_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed call, when it got one."""
    from jira import JIRAError

    return exc.status_code if isinstance(exc, JIRAError) else None


def first_line(exc: BaseException) -> str:
    """Jira's first error message, cut short, for a one-line error."""
    from jira import JIRAError

    text = (exc.text or "") if isinstance(exc, JIRAError) else ""
    return text.strip().splitlines()[0][:160] if text.strip() else ""


def denied_reason(exc: BaseException) -> str:
    """`X-Authentication-Denied-Reason` (Server/DC sets it when a CAPTCHA blocks the account)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return str(headers.get("X-Authentication-Denied-Reason") or "")


def translate(exc: BaseException, what: str, config: JiraConfig) -> ConnectorError:
    """A one-line ConnectorError for a failed read of the harvest or `sources check`."""
    from requests import RequestException

    status = jira_status(exc)
    detail = first_line(exc)
    if status == 401:
        return ConnectorError(
            "jira", f"Jira rejected the credentials (401) on {what}", hint=AUTH_HINT
        )
    if status == 403:
        if "CAPTCHA" in denied_reason(exc).upper():
            hint = "Jira asks for a CAPTCHA: log in to Jira once in a browser as this account"
        else:
            hint = "the account needs the Browse Projects permission on the issue's project"
        return ConnectorError(
            "jira", f"permission denied (403) on {what}: {detail}".rstrip(": "), hint=hint
        )
    if status == 404:
        return ConnectorError(
            "jira",
            f"{what} does not exist or you lack Browse permission",
            hint="check the key in incident.yaml and the account's project access",
        )
    retries = config.max_retries
    if status == 429:
        return ConnectorError(
            "jira",
            f"rate limited (429) on {what} after {retries} retries",
            hint="wait a minute and run again",
        )
    if status is not None and status >= 500:
        return ConnectorError(
            "jira",
            f"Jira answered {status} on {what} after {retries} retries",
            hint="Jira is having trouble; try again later",
        )
    if status is not None:
        return ConnectorError("jira", f"Jira answered {status} on {what}: {detail}".rstrip(": "))
    # requests' JSONDecodeError is both a RequestException and a ValueError: test ValueError first.
    if isinstance(exc, ValueError | KeyError | TypeError | NotImplementedError):
        return ConnectorError(
            "jira",
            f"malformed response body on {what} after {retries} retries",
            hint="is JIRA_URL a Jira site? a proxy may be answering instead",
        )
    if isinstance(exc, RequestException):
        return ConnectorError(
            "jira",
            f"cannot reach Jira at {config.base_url} on {what}: {type(exc).__name__} "
            f"after {retries} retries",
            hint="check JIRA_URL and the network, then run again",
        )
    return ConnectorError("jira", f"{type(exc).__name__} on {what}: {exc}"[:200])
