"""Jira live mode: settings, the client factory, harvest and check, on top of the `jira` library.

The library's ResilientSession retries 429 and 503 itself (it honours Retry-After, waiting
2 x Retry-After with jitter, capped by `max_retry_delay`). It does not retry 500/502/504, so
harvest, which only reads, retries those here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, Field, SecretStr

from retro.connector import IncidentRef
from retro.errors import ConfigError, ConnectorError, MissingCredential
from retro.models import Progress, SourceReport
from retro.retry import Retryable, RetryPolicy

if TYPE_CHECKING:
    from jira import JIRA

T = TypeVar("T")
_RETRIED_HERE = {500, 502, 504}  # 429 and 503 are retried inside the jira library
_AUTH_HINT = "check JIRA_EMAIL and JIRA_API_TOKEN (Cloud) or JIRA_PAT (Server/Data Center)"


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
    max_retries: int = Field(default=3, ge=0, description="Retries on 429/503 and on 500/502/504")
    max_retry_delay_s: float = Field(
        default=30.0,
        ge=0,
        description="Cap on each retry wait, even when Retry-After asks for more",
    )

    def version(self) -> str:
        """The REST version to use: explicit, else 3 for Cloud basic auth, 2 for a PAT."""
        if self.api_version:
            return self.api_version
        # Mirrors make_client's choice of auth: `retro keys set jira` stores one secret that
        # fills both api_token and pat, so the email decides which one is meant.
        cloud = bool(self.email) and self.api_token is not None
        return "3" if cloud or self.pat is None else "2"


def as_config(config: BaseModel) -> JiraConfig:
    """Accept a JiraConfig, or any model with the same fields."""
    if isinstance(config, JiraConfig):
        return config
    return JiraConfig.model_validate(config.model_dump())


def make_client(config: JiraConfig) -> JIRA:
    """A `jira.JIRA` client for these settings; raises MissingCredential or ConnectorError."""
    from jira import JIRA

    auth: dict[str, Any] = {}
    if config.email and config.api_token is not None:
        auth["basic_auth"] = (config.email, config.api_token.get_secret_value())
    elif config.pat is not None:
        auth["token_auth"] = config.pat.get_secret_value()
    elif config.api_token is not None:
        raise ConfigError("A Jira API token needs the account's email", hint="set JIRA_EMAIL")
    else:
        raise MissingCredential("Jira", "JIRA_API_TOKEN (with JIRA_EMAIL) or JIRA_PAT")
    if not config.base_url:
        raise ConfigError("No Jira URL", hint="set JIRA_URL, e.g. https://acme.atlassian.net")
    client = JIRA(
        server=config.base_url,
        options={"rest_api_version": config.version()},
        max_retries=config.max_retries,
        timeout=config.timeout_s,
        get_server_info=False,  # fetched below, once the retry cap is in place
        logging=False,  # the library logs retries at WARNING; retro reports errors itself
        **auth,
    )
    # ResilientSession takes this cap only as a constructor argument, which JIRA does not pass.
    client._session.max_retry_delay = config.max_retry_delay_s  # type: ignore[assignment]
    # What JIRA(get_server_info=True) does: the version and deployment type decide which
    # endpoints the library uses (Cloud search goes to /search/jql, users by accountId).
    info = call(config, "serverInfo", client.server_info)
    try:
        client._version = tuple(info["versionNumbers"])
        client.deploymentType = info.get("deploymentType")
    except (KeyError, TypeError):
        raise ConnectorError(
            "jira",
            f"{config.base_url} answered serverInfo without versionNumbers",
            hint="is JIRA_URL a Jira site?",
        ) from None
    return client


def translate(exc: Exception, what: str, config: JiraConfig) -> ConnectorError:
    """A one-line ConnectorError for an exception raised while calling Jira."""
    from jira import JIRAError
    from requests import RequestException

    if isinstance(exc, JIRAError):
        status = exc.status_code
        detail = (exc.text or "").splitlines()[0][:160] if exc.text else ""
        if status == 401:
            return ConnectorError(
                "jira", f"Jira rejected the credentials (401) on {what}", hint=_AUTH_HINT
            )
        if status == 403:
            return ConnectorError(
                "jira",
                f"permission denied (403) on {what}: {detail}".rstrip(": "),
                hint="the account needs Browse Projects on the project (or solve the CAPTCHA by logging in once)",
            )
        if status == 404:
            return ConnectorError(
                "jira",
                f"{what} does not exist or you lack Browse permission",
                hint="check the key in incident.yaml and the account's project access",
            )
        if status == 429:
            return ConnectorError(
                "jira",
                f"rate limited (429) on {what} after {config.max_retries} retries",
                hint="wait a minute and run again",
            )
        if status is not None and status >= 500:
            return ConnectorError(
                "jira",
                f"Jira answered {status} on {what} after {config.max_retries} retries",
                hint="Jira is having trouble; try again later",
            )
        return ConnectorError("jira", f"Jira answered {status} on {what}: {detail}".rstrip(": "))
    # requests' JSONDecodeError is both a RequestException and a ValueError: test ValueError first.
    if isinstance(exc, ValueError | KeyError | TypeError):
        return ConnectorError(
            "jira", f"malformed response body on {what}", hint="is JIRA_URL a Jira site?"
        )
    if isinstance(exc, RequestException):
        return ConnectorError(
            "jira",
            f"cannot reach Jira at {config.base_url}: {type(exc).__name__}",
            hint="check JIRA_URL and the network",
        )
    return ConnectorError("jira", f"{type(exc).__name__} on {what}: {exc}"[:200])


def call(config: JiraConfig, what: str, fn: Callable[[], T]) -> T:
    """Run one read call under the shared retry policy (reads are idempotent); translate errors."""
    from jira import JIRAError

    policy = RetryPolicy(retries=config.max_retries, backoff=1.0, max_wait=config.max_retry_delay_s)

    def attempt() -> T:
        try:
            return fn()
        except JIRAError as exc:
            if exc.status_code in _RETRIED_HERE:
                raise Retryable(
                    str(exc.status_code), status=exc.status_code, response=exc
                ) from None
            raise translate(exc, what, config) from None
        except Exception as exc:
            raise translate(exc, what, config) from None

    def give_up(exc: Retryable) -> NoReturn:
        raise translate(exc.response, what, config) from None  # type: ignore[arg-type]

    return policy.run(attempt, give_up=give_up)


# --- harvest -----------------------------------------------------------------------------------


def fetch_issue(client: JIRA, key: str, config: JiraConfig) -> dict[str, Any]:
    """One issue's raw JSON with every comment and every history embedded."""
    issue = call(config, f"issue {key}", lambda: client.issue(key, expand="changelog"))
    raw: dict[str, Any] = json.loads(json.dumps(issue.raw))  # a private copy we can extend
    fields = raw.setdefault("fields", {})
    comment = fields.get("comment")
    have = len(comment.get("comments") or []) if isinstance(comment, dict) else 0
    total = int(comment.get("total", have)) if isinstance(comment, dict) else -1
    if total < 0 or total > have:
        comments = _pages(client, config, f"issue/{key}/comment", "comments", f"comments of {key}")
        fields["comment"] = {
            "comments": comments,
            "maxResults": len(comments),
            "total": len(comments),
            "startAt": 0,
        }
    changelog = raw.get("changelog")
    if isinstance(changelog, dict) and int(changelog.get("total", 0)) > len(
        changelog.get("histories") or []
    ):
        histories = _pages(
            client, config, f"issue/{key}/changelog", "values", f"changelog of {key}"
        )
        raw["changelog"] = {
            "startAt": 0,
            "maxResults": len(histories),
            "total": len(histories),
            "histories": histories,
        }
    return raw


def _pages(
    client: JIRA, config: JiraConfig, path: str, items: str, what: str
) -> list[dict[str, Any]]:
    """Every item of a startAt/maxResults endpoint, deduplicated by id."""
    out: dict[str, dict[str, Any]] = {}
    start = 0
    while True:
        params = {"startAt": start, "maxResults": config.page_size, "orderBy": "created"}
        body = call(config, what, lambda p=params: client._get_json(path, params=p))  # type: ignore[misc]
        page = body.get(items) if isinstance(body, dict) else None
        if not isinstance(page, list):
            raise ConnectorError(
                "jira", f"malformed {what} page: no `{items}` list", hint="is JIRA_URL a Jira site?"
            )
        for item in page:
            # An item added while paging shifts the offsets; keying by id keeps each once.
            out.setdefault(str(item.get("id", len(out))), item)
        start += len(page)
        total = body.get("total")
        if not page or body.get("isLast") is True or (total is not None and start >= int(total)):
            return list(out.values())


def linked_keys(raw: dict[str, Any]) -> list[str]:
    """Keys of the issues this issue links to (either direction)."""
    keys: list[str] = []
    for link in (raw.get("fields") or {}).get("issuelinks") or []:
        for side in ("outwardIssue", "inwardIssue"):
            other = link.get(side) if isinstance(link, dict) else None
            if isinstance(other, dict) and other.get("key"):
                keys.append(str(other["key"]))
    return keys


def harvest_jira(
    ref: IncidentRef, out: Path, config: JiraConfig, progress: Progress
) -> SourceReport:
    """Fetch the incident's issues (and linked ones) and write out/jira/<KEY>.json."""
    report = SourceReport(name="jira")
    if not ref.of("jira"):
        report.status = "empty"
        return report
    client = make_client(config)
    dest = out / "jira"
    dest.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, Any]] = {}
    keys = ref.of("jira")
    for key in keys:
        progress("jira issues", len(done), len(keys))
        done[key] = fetch_issue(client, key, config)
        _write(dest, key, done[key], out, report)
    if config.follow_links:
        extra = [k for raw in list(done.values()) for k in linked_keys(raw) if k not in done]
        for key in dict.fromkeys(extra):
            progress("jira linked issues", len(done), len(done) + len(extra))
            try:
                done[key] = fetch_issue(client, key, config)
            except ConnectorError as err:
                # A linked issue in a project we cannot see must not sink the harvest.
                report.skip(f"linked issue not fetched: {err.message}"[:160])
                report.status = "partial"
                continue
            _write(dest, key, done[key], out, report)
    progress("jira issues", len(done), len(done))
    client.close()
    return report


def _write(dest: Path, key: str, raw: dict[str, Any], out: Path, report: SourceReport) -> None:
    path = dest / f"{key}.json"
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report.files.append(str(path.relative_to(out)))
    report.records += 1


# --- check -------------------------------------------------------------------------------------


def check_jira(config: JiraConfig) -> list[str]:
    """Verify the credentials; report the user, the deployment and the project permission."""
    client = make_client(config)
    info = call(config, "serverInfo", client.server_info)
    me = call(config, "myself", client.myself)
    who = me.get("displayName") or me.get("name") or me.get("accountId")
    ident = me.get("emailAddress") or me.get("name") or me.get("accountId")
    lines = [
        f"Jira {info.get('deploymentType', 'Server')} {info.get('version', '?')} at {config.base_url}"
        f" (REST v{config.version()})",
        f"authenticated as {who} ({ident})",
    ]
    if config.project:
        perms = call(
            config,
            f"permissions on {config.project}",
            lambda: client.my_permissions(projectKey=config.project, permissions="BROWSE_PROJECTS"),
        )
        browse = (perms.get("permissions") or {}).get("BROWSE_PROJECTS") or {}
        if not browse.get("havePermission"):
            raise ConnectorError(
                "jira",
                f"{who} lacks Browse Projects on {config.project}",
                hint="ask a Jira admin to add the account to the project's Browse role",
            )
        lines.append(f"Browse Projects on {config.project}: yes")
    client.close()
    return lines
