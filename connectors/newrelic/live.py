"""New Relic live mode: NerdGraph (GraphQL over POST) `aiIssues` issues and incidents.

`retro harvest --from newrelic=ACCOUNT_ID` fetches the account's issues and incidents in the
window; `ACCOUNT_ID:ISSUE_ID` fetches one issue and its incidents. Lists are paged with
`nextCursor` (the same query again with `cursor`, until it is null); times are epoch
milliseconds. NerdGraph reports most failures inside a 200 answer (`errors`): a rate limit
there is retried like a 429, anything else stops the harvest with its message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, Field, SecretStr

from connectors._support import write_json
from connectors.newrelic.read import SOURCE
from retro.connector import IncidentRef
from retro.errors import ConfigError, ConnectorError, MissingCredential
from retro.models import Progress, SourceReport, no_progress
from retro.retry import Retryable, RetryPolicy, retry_after

KEY_ENV = "NEW_RELIC_API_KEY"
ISSUE_FIELDS = (
    "issueId title priority state createdAt activatedAt acknowledgedAt acknowledgedBy closedAt "
    "closedBy updatedAt accountIds sources origins entityNames entityGuids entityTypes "
    "conditionName policyName incidentIds totalIncidents description isCorrelated mutingState"
)
INCIDENT_FIELDS = (
    "incidentId title priority state createdAt closedAt updatedAt accountIds entityNames "
    "entityGuids entityTypes description environmentId eventType"
)
_QUERY = """query($account: Int!, $cursor: String, $start: EpochMilliseconds,
  $end: EpochMilliseconds, $ids: [ID!]) {
  actor { account(id: $account) { aiIssues {
    %(list)s(cursor: $cursor, timeWindow: {startTime: $start, endTime: $end}, filter: {ids: $ids}) {
      %(list)s { %(fields)s }
      nextCursor
    }
  } } }
}"""
_THROTTLED = ("TOO_MANY_REQUESTS", "RATE_LIMIT", "rate limit")


class NewRelicConfig(BaseModel):
    """Live-mode settings for NerdGraph."""

    api_key: SecretStr | None = Field(
        default=None,
        description="User API key (NRAK-…) of a user who can see the account's alerts",
        json_schema_extra={"env": KEY_ENV},
    )
    base_url: str = Field(
        default="https://api.newrelic.com",
        description="NerdGraph host; EU accounts: https://api.eu.newrelic.com",
        json_schema_extra={"env": "NEW_RELIC_API_URL"},
    )
    lookback_hours: float = Field(
        default=24.0, gt=0, description="Window when --since is not given: hours before --until"
    )
    max_retries: int = Field(default=5, ge=0, description="Retries on 429, 5xx and network errors")
    backoff: float = Field(default=1.0, ge=0, description="First back-off in seconds; doubles")
    max_wait: float = Field(default=60.0, ge=0, description="Longest wait honoured for Retry-After")
    timeout: float = Field(default=30.0, gt=0, description="HTTP timeout in seconds")


def _config(config: BaseModel) -> NewRelicConfig:
    if isinstance(config, NewRelicConfig):
        cfg = config
    else:
        cfg = NewRelicConfig.model_validate(config.model_dump())
    if cfg.api_key is None or not cfg.api_key.get_secret_value():
        raise MissingCredential("New Relic", KEY_ENV, key_name="newrelic")
    return cfg


class _Client:
    """POST /graphql under retro.retry: 429, 5xx, network errors and throttling `errors` retry."""

    def __init__(self, cfg: NewRelicConfig) -> None:
        import httpx

        assert cfg.api_key is not None
        self.policy = RetryPolicy(
            retries=cfg.max_retries, backoff=cfg.backoff, max_wait=cfg.max_wait
        )
        self.client = httpx.Client(
            base_url=cfg.base_url.rstrip("/"),
            headers={
                "User-Agent": "retro-postmortem",
                "API-Key": cfg.api_key.get_secret_value(),
                "Content-Type": "application/json",
            },
            timeout=cfg.timeout,
        )

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """The answer's `data`, or a ConnectorError naming NerdGraph's first error."""
        import httpx

        def attempt() -> dict[str, Any]:
            try:
                resp = self.client.post("/graphql", json={"query": query, "variables": variables})
            except httpx.TransportError as exc:
                raise Retryable(f"POST /graphql failed: {type(exc).__name__} {exc}") from None
            if resp.status_code == 429 or resp.status_code >= 500:
                wait = retry_after(resp.headers)
                raise Retryable(
                    f"HTTP {resp.status_code} from NerdGraph", retry_after=wait, response=resp
                )
            try:
                body = resp.json()
            except ValueError:  # a proxy's HTML page, or a body cut short
                raise Retryable("NerdGraph answered with a body that is not JSON") from None
            if resp.status_code >= 400 or not isinstance(body, dict):
                raise _error(resp.status_code, body)
            errors = body.get("errors") or []
            if errors and any(t in str(errors) for t in _THROTTLED):
                raise Retryable(f"NerdGraph throttled the query: {_message(errors)}")
            if errors:
                raise _error(resp.status_code, body)
            data = body.get("data")
            if not isinstance(data, dict):
                raise ConnectorError(SOURCE, "NerdGraph answered with no data")
            return data

        def give_up(exc: Retryable) -> NoReturn:
            hint = "check network access and NEW_RELIC_API_URL, then run the harvest again"
            raise ConnectorError(SOURCE, f"{exc.detail} (after retries)", hint=hint) from None

        return self.policy.run(attempt, give_up=give_up)


def _message(errors: Any) -> str:
    first = errors[0] if isinstance(errors, list) and errors else {}
    return str(first.get("message") if isinstance(first, dict) else first)


def _error(status: int, body: Any) -> ConnectorError:
    errors = body.get("errors") if isinstance(body, dict) else None
    message = _message(errors) if errors else f"HTTP {status}"
    lowered = message.lower()
    if status in (401, 403) or "api key" in lowered or "unauthorized" in lowered:
        hint = f"set {KEY_ENV} to a User API key (NRAK-…); EU accounts need NEW_RELIC_API_URL"
        return ConnectorError(SOURCE, f"NerdGraph rejected the key ({message})", hint=hint)
    if "access" in lowered or "account" in lowered:
        hint = "check the account id, and that the key's user may see that account"
        return ConnectorError(SOURCE, f"NerdGraph refused the query ({message})", hint=hint)
    return ConnectorError(SOURCE, f"NerdGraph query failed: {message}", hint="retry later")


def fetch(api: _Client, kind: str, variables: dict[str, Any]) -> list[Any]:
    """Every issue or incident of the query, following `nextCursor`; de-duplicated by id."""
    fields = ISSUE_FIELDS if kind == "issues" else INCIDENT_FIELDS
    query = _QUERY % {"list": kind, "fields": fields}
    key = "issueId" if kind == "issues" else "incidentId"
    items: list[Any] = []
    seen: set[str] = set()
    cursors: set[str] = set()
    variables = {**variables, "cursor": None}
    while True:
        data = api.query(query, variables)
        account = (data.get("actor") or {}).get("account")
        if not isinstance(account, dict):
            hint = "check the account id in --from newrelic=ACCOUNT_ID"
            raise ConnectorError(SOURCE, f"account {variables['account']} not found", hint=hint)
        block = (account.get("aiIssues") or {}).get(kind) or {}
        page = block.get(kind)
        if not isinstance(page, list):
            raise ConnectorError(SOURCE, f"NerdGraph answered with no {kind} list")
        for item in page:
            ident = str(item.get(key)) if isinstance(item, dict) else ""
            if not ident or ident not in seen:
                items.append(item)
                seen.add(ident)
        cursor = block.get("nextCursor")
        if not cursor or cursor in cursors:
            return items
        cursors.add(cursor)
        variables["cursor"] = cursor


def _body(kind: str, items: list[Any]) -> dict[str, Any]:
    """The merged pages, shaped like one last page of the NerdGraph answer."""
    return {"data": {"actor": {"account": {"aiIssues": {kind: {kind: items, "nextCursor": None}}}}}}


def _target(target: str) -> tuple[int, str | None]:
    account, _, issue = target.partition(":")
    if not account.strip().isdigit():
        hint = "use ACCOUNT_ID or ACCOUNT_ID:ISSUE_ID, e.g. 3141592"
        raise ConfigError(f"newrelic: cannot harvest {target!r}", hint=hint)
    return int(account), issue.strip() or None


def harvest(
    ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
) -> SourceReport:
    """Fetch the issues and incidents `--from newrelic=…` names; write them under out/newrelic/."""
    cfg = _config(config)
    report = SourceReport(name=SOURCE)
    folder = out / SOURCE
    until = ref.until or datetime.now(UTC)
    since = ref.since or until - timedelta(hours=cfg.lookback_hours)
    window = {"start": int(since.timestamp() * 1000), "end": int(until.timestamp() * 1000)}
    targets = [_target(t) for t in ref.of(SOURCE)]
    with _Client(cfg) as api:
        for n, (account, issue) in enumerate(targets):
            progress(f"newrelic {account}", n, len(targets))
            base = {"account": account, **window, "ids": [issue] if issue else None}
            issues = fetch(api, "issues", base)
            if issue and not issues:
                hint = "check the issue id, and that it falls in --since/--until"
                raise ConnectorError(
                    SOURCE, f"issue {issue} not found in account {account}", hint=hint
                )
            wanted = (
                [i for item in issues for i in item.get("incidentIds") or []] if issue else None
            )
            incidents = fetch(api, "incidents", {**base, "ids": wanted}) if wanted != [] else []
            name = f"{account}-{issue}" if issue else str(account)
            write_json(folder, f"issues-{name}.json", _body("issues", issues), report)
            write_json(folder, f"incidents-{name}.json", _body("incidents", incidents), report)
            report.records += len(issues) + len(incidents)
    report.status = "ok" if report.files else "empty"
    return report


def check(config: BaseModel) -> list[str]:
    """Verify the key: who it belongs to and which accounts it sees."""
    cfg = _config(config)
    with _Client(cfg) as api:
        data = api.query("{ actor { user { name email } accounts { id name } } }", {})
    actor = data.get("actor") or {}
    user = actor.get("user") or {}
    accounts = [f"{a.get('name')} ({a.get('id')})" for a in actor.get("accounts") or []]
    return [
        f"NerdGraph at {cfg.base_url}",
        f"User API key of {user.get('name')} <{user.get('email')}>",
        f"accounts: {', '.join(accounts) or 'none'}",
    ]
