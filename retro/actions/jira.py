"""File a postmortem's action items in Jira, idempotently, and read their status back.

Filing one item: search the marker label `retro-<hash>` (a stable hash of the incident id and
the normalized title); adopt the issue when one carries it. Otherwise look for an open
`postmortem` issue of another incident that covers the same action (token similarity) and
link to it. Otherwise create the issue. Then link it "relates to" the incident ticket and write
its key into the Markdown (only the Tracking and Status cells, temp file + rename).

The marker is searched before every create, so a run killed between the create and the
write-back is repaired by the next run, which adopts the issue instead of filing it again.

Test hook: RETRO_TEST_CRASH_AFTER_CREATE=1 makes the filer exit at once with `os._exit(137)`
right after a create returns, before the link and the write-back; the tests use it to prove
that a re-run adopts instead of duplicating. Never set it outside tests.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, Field

from connectors.jira.live import JiraConfig, call, linked_keys, make_client, translate
from retro import retry
from retro.actions.table import (
    EMAIL,
    JIRA_KEY,
    ActionRow,
    Brief,
    PostmortemFile,
    incident_label,
    is_open,
    load,
    similarity,
    update_row,
    update_rows,
)
from retro.actions.table import adf as adf_description
from retro.actions.table import summary as one_line_summary
from retro.actions.table import wiki as wiki_description
from retro.errors import ConfigError, ConnectorError

if TYPE_CHECKING:
    from jira import JIRA

__all__ = ["is_open", "file_actions", "sync_actions", "FileOptions", "FileResult", "SyncResult"]

T = TypeVar("T")
Log = Callable[[str], None]
Action = Literal["created", "adopted", "linked-duplicate", "skipped"]
PRIORITIES = ("P0", "P1", "P2")
DEFAULT_PRIORITY_MAP = {"P0": "Highest", "P1": "High", "P2": "Medium"}
DUPLICATE_THRESHOLD = 0.6  # token Jaccard of two summaries; see docs/jira-actions.md
SETTLE_DELAYS_S: tuple[float, ...] = (0.5, 1.0, 2.0)  # marker searches after a failed create
CRASH_HOOK = "RETRO_TEST_CRASH_AFTER_CREATE"
WONTFIX_RESOLUTIONS = frozenset({"won't do", "won't fix", "wont do", "wont fix", "duplicate"})
CATEGORY_STATUS = {"new": "open", "indeterminate": "in_progress", "done": "done"}


class FileOptions(BaseModel):
    """What `retro file-actions` was asked to do."""

    project: str = Field(description="Jira project key to create issues in")
    issue_type: str = Field(default="Task", description="Issue type name")
    incident_ticket: str | None = Field(default=None, description="Key to link 'relates to'")
    priority_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    postmortem_url: str | None = Field(default=None, description="Web link to the postmortem")
    dry_run: bool = False
    threshold: float = Field(default=DUPLICATE_THRESHOLD, ge=0.0, le=1.0)


class FileResult(BaseModel):
    """One action item's outcome; `--json` prints a list of these."""

    number: int = Field(description="Row number in the action items table, from 1")
    title: str
    key: str | None = None
    action: Action
    url: str | None = None
    note: str = ""
    dry_run: bool = False


class SyncResult(BaseModel):
    """One tracked item's state in Jira; `retro sync-actions --json` prints a list of these."""

    title: str
    key: str
    url: str | None = None
    status_before: str
    status: str
    jira_status: str | None = None
    assignee: str | None = None
    resolution: str | None = None
    changed: bool = False
    note: str = ""


# --- the Jira site ------------------------------------------------------------------------------


@dataclass
class Site:
    """A connected client and the settings it was made from."""

    client: JIRA
    config: JiraConfig

    @property
    def cloud(self) -> bool:
        return bool(getattr(self.client, "deploymentType", None) == "Cloud")

    @property
    def adf(self) -> bool:
        return self.config.version() == "3"

    def url(self, key: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/browse/{key}"

    def read(self, what: str, fn: Callable[[], T]) -> T:
        """A read call: 500/502/504 retried, errors translated to one line."""
        return call(self.config, what, fn)

    def search(self, jql: str, fields: list[str], limit: int = 0) -> list[dict[str, Any]]:
        issues = self.read(
            f"search {jql!r}",
            lambda: self.client.search_issues(jql, maxResults=limit, fields=fields),
        )
        return [i.raw for i in issues]  # type: ignore[union-attr]

    def exists(self, key: str) -> bool:
        try:
            self.client.issue(key, fields="summary")
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                return False
            raise translate(exc, f"issue {key}", self.config) from None
        return True


def connect(config: JiraConfig) -> Site:
    return Site(make_client(config), config)


def _listing(values: list[str], limit: int = 40) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


# --- preflight: project, issue type, priorities, components ------------------------------------


@dataclass
class Target:
    """Where and how issues are filed, validated before anything is created."""

    project: str
    issue_type_id: str
    issue_type: str
    priorities: dict[str, str]  # P0 -> Jira priority name; empty when not on the create screen
    components: list[str]
    screen: set[str] | None  # field ids on the create screen; None when unknown
    link_type: str | None
    incident_ticket: str | None


def prepare(
    site: Site, options: FileOptions, pm: PostmortemFile, rows: list[ActionRow], log: Log
) -> Target:
    """Check the project, issue type, priorities and components; find the incident ticket."""
    project = _project(site, options.project)
    key = str(project["key"])
    type_id, type_name = _issue_type(project, options.issue_type)
    meta = _create_meta(site, key, type_id)
    screen = set(meta) if meta is not None else None
    priorities = _priorities(site, options.priority_map, meta, key, type_name, log)
    components = _component_names(project, meta)
    _check_rows(pm, rows, components, priorities, screen, key, log)
    return Target(
        project=key,
        issue_type_id=type_id,
        issue_type=type_name,
        priorities=priorities,
        components=components,
        screen=screen,
        link_type=_link_type(site, log),
        incident_ticket=_incident_ticket(site, options.incident_ticket, pm.incident_id, log),
    )


def _project(site: Site, wanted: str) -> dict[str, Any]:
    projects = site.read("the project list", site.client.projects)
    by_key = {str(p.key).upper(): str(p.key) for p in projects}
    key = by_key.get(wanted.strip().upper())
    if key is None:
        raise ConfigError(
            f"Jira project {wanted!r} does not exist or is not visible to this account",
            hint=f"valid project keys: {_listing(sorted(by_key.values())) or 'none'}",
        )
    return dict(site.read(f"project {key}", lambda: site.client.project(key)).raw)


def _issue_type(project: dict[str, Any], wanted: str) -> tuple[str, str]:
    types = [t for t in project.get("issueTypes") or [] if not t.get("subtask")]
    for t in types:
        if str(t.get("name", "")).casefold() == wanted.strip().casefold():
            return str(t["id"]), str(t["name"])
    raise ConfigError(
        f"issue type {wanted!r} is not available in project {project.get('key')}",
        hint=f"valid issue types: {_listing([str(t.get('name')) for t in types]) or 'none'}",
    )


def _create_meta(site: Site, key: str, type_id: str) -> dict[str, dict[str, Any]] | None:
    """The create screen's fields (id -> meta); None when the site lacks this endpoint."""
    path = f"issue/createmeta/{key}/issuetypes/{type_id}"
    try:
        body = site.client._get_json(path, params={"maxResults": 500})
    except Exception as exc:
        if getattr(exc, "status_code", None) in (404, 405):
            return None  # Jira Server before 8.4 has only the old createmeta
        raise translate(exc, f"create metadata of {key}", site.config) from None
    # Server/DC answers {"values": [...]}, Cloud {"fields": [...]}.
    values = body.get("values") or body.get("fields") or [] if isinstance(body, dict) else []
    return {str(m.get("fieldId") or m.get("key")): m for m in values if isinstance(m, dict)}


def _priorities(
    site: Site,
    mapping: dict[str, str],
    meta: dict[str, dict[str, Any]] | None,
    key: str,
    type_name: str,
    log: Log,
) -> dict[str, str]:
    if meta is not None and "priority" not in meta:
        log(f"priority is not on the create screen of {key} {type_name}; filing without one")
        return {}
    known = [str(p.name) for p in site.read("priorities", site.client.priorities)]
    if meta is not None and meta["priority"].get("allowedValues"):
        # The project's priority scheme: only these are accepted on create.
        known = [str(v.get("name")) for v in meta["priority"]["allowedValues"]]
    canonical = {name.casefold(): name for name in known}
    out: dict[str, str] = {}
    for level in PRIORITIES:
        name = mapping.get(level, DEFAULT_PRIORITY_MAP[level])
        if name.casefold() not in canonical:
            raise ConfigError(
                f"Jira priority {name!r} (mapped from {level}) is not valid in project {key}",
                hint=f"valid priorities: {_listing(known)}; set --priority-map "
                "P0=…,P1=…,P2=… or [jira] priority_map in retro.toml",
            )
        out[level] = canonical[name.casefold()]
    return out


def _component_names(project: dict[str, Any], meta: dict[str, dict[str, Any]] | None) -> list[str]:
    if meta is not None and "components" in meta:
        return [str(v.get("name")) for v in meta["components"].get("allowedValues") or []]
    return [str(c.get("name")) for c in project.get("components") or []]


def _check_rows(
    pm: PostmortemFile,
    rows: list[ActionRow],
    components: list[str],
    priorities: dict[str, str],
    screen: set[str] | None,
    key: str,
    log: Log,
) -> None:
    """Refuse bad rows before anything is created, so a run never stops half-way on them."""
    for row in rows:
        where = f"action item {pm.rows.index(row) + 1} ({row.title[:40]!r})"
        if not row.title:
            raise ConfigError(f"{where} has no title", hint="write the action in the Action column")
        if priorities and row.priority not in PRIORITIES:
            raise ConfigError(f"{where} has priority {row.priority!r}", hint="use P0, P1 or P2")
        bad = [c for c in row.components if c.casefold() not in {n.casefold() for n in components}]
        if bad:
            raise ConfigError(
                f"{where}: component {bad[0]!r} does not exist in project {key}",
                hint=f"valid components: {_listing(components) or 'none'}",
            )
        if row.due:
            try:
                date.fromisoformat(row.due)
            except ValueError:
                raise ConfigError(
                    f"{where}: due date {row.due!r}", hint="write YYYY-MM-DD"
                ) from None
        for field, present in (("components", row.components), ("duedate", row.due)):
            if present and screen is not None and field not in screen:
                log(f"{where}: {field} is not on the create screen of {key}; not set")


def _link_type(site: Site, log: Log) -> str | None:
    for t in site.read("issue link types", site.client.issue_link_types):
        if t.name == "Relates" or str(getattr(t, "outward", "")).lower() == "relates to":
            return str(t.name)
    log("this Jira has no 'relates to' link type; issues are not linked to the incident")
    return None


def _incident_ticket(site: Site, given: str | None, incident_id: str, log: Log) -> str | None:
    if given:
        if not site.exists(given):
            raise ConfigError(
                f"incident ticket {given} does not exist or is not visible to this account",
                hint="check --incident-ticket",
            )
        return given
    if JIRA_KEY.fullmatch(incident_id) and site.exists(incident_id):
        return incident_id
    log(f"no incident ticket to link ({incident_id} is not a Jira issue); pass --incident-ticket")
    return None


# --- fields -------------------------------------------------------------------------------------


def issue_fields(
    site: Site, target: Target, pm: PostmortemFile, row: ActionRow, options: FileOptions, log: Log
) -> dict[str, Any]:
    """The create payload's `fields` for one action item."""
    brief = Brief.of(pm, row, options.postmortem_url)
    fields: dict[str, Any] = {
        "project": {"key": target.project},
        "issuetype": {"id": target.issue_type_id},
        "summary": one_line_summary(row.title),
        "description": adf_description(brief) if site.adf else wiki_description(brief),
        "labels": ["postmortem", incident_label(pm.incident_id), row.marker],
    }
    if target.priorities:
        fields["priority"] = {"name": target.priorities[row.priority]}
    on_screen = target.screen.__contains__ if target.screen is not None else lambda _f: True
    if row.components and on_screen("components"):
        canonical = {n.casefold(): n for n in target.components}
        fields["components"] = [{"name": canonical[c.casefold()]} for c in row.components]
    if row.due and on_screen("duedate"):
        fields["duedate"] = row.due
    owner = row.get("assignee") or row.get("owner")
    if EMAIL.fullmatch(owner) and on_screen("assignee"):
        assignee = _assignee(site, owner, log)
        if assignee:
            fields["assignee"] = assignee
    return fields


def _assignee(site: Site, email: str, log: Log) -> dict[str, str] | None:
    """accountId (Cloud) or username (Server) of the user with this email."""
    if site.cloud:
        users = site.read(
            f"user {email}", lambda: site.client.search_users(query=email, maxResults=10)
        )
    else:
        users = site.read(
            f"user {email}", lambda: site.client.search_users(user=email, maxResults=10)
        )
    exact = [u for u in users if str(getattr(u, "emailAddress", "")).lower() == email.lower()]
    # Cloud hides most emails; one hit for a full address is that person.
    chosen = exact[0] if exact else (users[0] if len(users) == 1 else None)
    if chosen is None:
        log(f"no Jira user with email {email}; filing unassigned")
        return None
    if site.cloud:
        return {"accountId": str(chosen.accountId)}
    return {"name": str(chosen.name)}


# --- searches -----------------------------------------------------------------------------------


def by_marker(site: Site, marker: str) -> list[dict[str, Any]]:
    """Issues carrying the marker label, oldest first."""
    found = site.search(f'labels = "{marker}" ORDER BY created ASC', ["summary", "labels"], 20)
    return sorted(found, key=lambda i: (len(str(i["key"])), str(i["key"])))


def open_postmortem_issues(site: Site, project: str) -> list[dict[str, Any]]:
    jql = f'project = "{project}" AND labels = postmortem AND statusCategory != Done'
    return site.search(jql, ["summary", "labels", "status"])


def best_duplicate(
    title: str, candidates: list[dict[str, Any]], threshold: float, own_label: str
) -> tuple[dict[str, Any], float] | None:
    """The most similar open issue of another incident, when it reaches the threshold."""
    best: tuple[dict[str, Any], float] | None = None
    for issue in candidates:
        if own_label in (issue.get("fields") or {}).get("labels", []):
            continue  # this incident's own items are never "duplicates across incidents"
        score = similarity(title, str((issue.get("fields") or {}).get("summary", "")))
        if score >= threshold and (best is None or score > best[1]):
            best = (issue, score)
    return best


# --- filing -------------------------------------------------------------------------------------


def file_actions(
    path: Path, options: FileOptions, config: JiraConfig, *, log: Log = lambda _m: None
) -> list[FileResult]:
    """File every untracked, open action item of the postmortem at `path`."""
    pm = load(path)
    results: dict[int, FileResult] = {}
    pending: list[ActionRow] = []
    for n, row in enumerate(pm.rows, start=1):
        if row.tracking:
            results[n] = FileResult(
                number=n,
                title=row.title,
                key=row.tracking,
                action="skipped",
                note="already tracked",
            )
        elif not is_open(row):
            results[n] = FileResult(
                number=n, title=row.title, action="skipped", note=f"status {row.status}"
            )
        else:
            pending.append(row)
    base = config.base_url.rstrip("/")
    for r in results.values():
        r.url = f"{base}/browse/{r.key}" if r.key and base else None
    if pending:
        site = connect(config)
        target = prepare(site, options, pm, pending, log)
        candidates = open_postmortem_issues(site, target.project)
        for row in pending:
            n = pm.rows.index(row) + 1
            results[n] = _file_one(site, target, pm, row, n, options, candidates, log)
    return [results[n] for n in sorted(results)]


def _file_one(
    site: Site,
    target: Target,
    pm: PostmortemFile,
    row: ActionRow,
    n: int,
    options: FileOptions,
    candidates: list[dict[str, Any]],
    log: Log,
) -> FileResult:
    dry = options.dry_run
    result = FileResult(number=n, title=row.title, action="created", dry_run=dry)
    found = by_marker(site, row.marker)
    if found:
        if len(found) > 1:
            others = ", ".join(str(i["key"]) for i in found[1:])
            log(f"several issues carry {row.marker}: adopting {found[0]['key']}; also {others}")
        result.action, result.key = "adopted", str(found[0]["key"])
        result.note = f"already filed (label {row.marker})"
    elif dup := best_duplicate(
        row.title, candidates, options.threshold, incident_label(pm.incident_id)
    ):
        issue, score = dup
        result.action, result.key = "linked-duplicate", str(issue["key"])
        summary = str(issue["fields"].get("summary", ""))
        result.note = f"same action as {issue['key']} “{summary}” (similarity {score:.2f})"
    elif not dry:
        fields = issue_fields(site, target, pm, row, options, log)
        result.key, result.note = _create(site, fields, row, log)
        if result.note:
            result.action = "adopted"
        if os.environ.get(CRASH_HOOK) == "1":
            os._exit(137)  # test hook: die between the create and the write-back
    else:
        issue_fields(site, target, pm, row, options, log)  # validates the assignee lookup too
        result.note = f"would create in {target.project} as {target.issue_type}"
    result.url = site.url(result.key) if result.key else None
    if dry or result.key is None:
        return result
    _ensure_link(site, target, result.key, log, fresh=result.action == "created")
    marker = row.marker
    update_row(
        pm.path,
        row,
        {"tracking": result.key, "status": "open"},
        find=lambda r: r.marker == marker and not r.tracking,
    )
    return result


def _create(site: Site, fields: dict[str, Any], row: ActionRow, log: Log) -> tuple[str, str]:
    """Create the issue; (key, note). After an ambiguous failure, adopt it if it was committed."""
    from jira import JIRAError

    try:
        issue = site.client.create_issue(fields=fields, prefetch=False)
        return str(issue.key), ""
    except JIRAError as exc:
        status = exc.status_code
        if status is not None and status < 500 and status != 429:
            raise _refused(exc, row, site) from None
        error: Exception = exc
    except Exception as exc:  # a dropped connection: the create may or may not have happened
        error = exc
        status = None
    what = f"HTTP {status}" if status else type(error).__name__
    log(f"create of “{row.title}” failed ({what}); checking whether Jira committed it")
    for delay in (0.0, *SETTLE_DELAYS_S):
        retry.sleep(delay)  # search indexes can lag a create by a moment
        found = by_marker(site, row.marker)
        if found:
            return str(found[0]["key"]), f"the create answered {what} but was committed"
    err = translate(error, f"create issue “{row.title[:60]}”", site.config)
    raise ConnectorError(
        "jira",
        err.message.removeprefix("jira: "),
        hint="Jira may or may not have created it; run again in a minute: a committed create "
        f"is found by its label {row.marker} and adopted, never filed twice",
    )


def _refused(exc: Any, row: ActionRow, site: Site) -> ConnectorError:
    """A one-line error from Jira's 400 body: `errorMessages` and `errors` joined."""
    if exc.status_code != 400:
        return translate(exc, f"create issue “{row.title[:60]}”", site.config)
    try:
        body = exc.response.json()
    except Exception:
        body = {}
    parts = list(body.get("errorMessages") or []) if isinstance(body, dict) else []
    errors = body.get("errors") if isinstance(body, dict) else None
    parts += [f"{k}: {v}" for k, v in (errors or {}).items()]
    return ConnectorError(
        "jira",
        f"Jira refused to create “{row.title[:60]}”: {'; '.join(parts) or exc.text}",
        hint="fix the action item or the Jira settings and run again",
    )


def _ensure_link(site: Site, target: Target, key: str, log: Log, *, fresh: bool) -> None:
    """`key` relates to the incident ticket, once; a fresh issue has no links to check."""
    ticket = target.incident_ticket
    if not ticket or not target.link_type or ticket == key:
        return
    if not fresh:
        issue = site.read(f"issue {key}", lambda: site.client.issue(key, fields="issuelinks"))
        if ticket in linked_keys(issue.raw):
            return
    body = {"type": {"name": target.link_type}, "inwardIssue": {"key": key}}
    body["outwardIssue"] = {"key": ticket}
    try:
        # client.create_issue_link would fetch the link types again for every link.
        site.client._session.post(site.client._get_url("issueLink"), data=json.dumps(body))
    except Exception as exc:
        raise translate(exc, f"link {key} to {ticket}", site.config) from None
    log(f"linked {key} relates to {ticket}")


# --- sync-back ----------------------------------------------------------------------------------


def status_from(fields: dict[str, Any]) -> str | None:
    """The action status a Jira issue's status category and resolution mean."""
    resolution = (fields.get("resolution") or {}).get("name")
    if resolution and str(resolution).strip().casefold().replace("’", "'") in WONTFIX_RESOLUTIONS:
        return "wontfix"
    category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
    return CATEGORY_STATUS.get(str(category))


def sync_actions(path: Path, config: JiraConfig, *, log: Log = lambda _m: None) -> list[SyncResult]:
    """Read status, assignee and resolution of every tracked item; update the Status cells."""
    from jira import JIRAError

    pm = load(path)
    tracked = [r for r in pm.rows if r.tracking]
    if not tracked:
        return []
    site = connect(config)
    results: list[SyncResult] = []
    changes: dict[str, dict[str, str]] = {}
    for row in tracked:
        key = row.tracking
        result = SyncResult(
            title=row.title, key=key, url=site.url(key), status_before=row.status, status=row.status
        )
        results.append(result)
        try:
            issue = site.client.issue(key, fields="status,assignee,resolution")
        except JIRAError as exc:
            if exc.status_code != 404:
                raise translate(exc, f"issue {key}", config) from None
            result.note = "not found in Jira (deleted, moved or not visible); left as is"
            log(f"{key}: {result.note}")
            continue
        fields = issue.raw.get("fields") or {}
        result.jira_status = (fields.get("status") or {}).get("name")
        result.resolution = (fields.get("resolution") or {}).get("name")
        assignee = fields.get("assignee") or {}
        result.assignee = assignee.get("displayName") or assignee.get("name")
        result.status = status_from(fields) or row.status
        values: dict[str, str] = {}
        if result.status != row.status:
            values["status"] = result.status
        if "assignee" in row.columns and row.get("assignee") != (result.assignee or "-"):
            values["assignee"] = result.assignee or "-"
        result.changed = bool(values)
        if values:
            changes.setdefault(key, {}).update(values)
    update_rows(path, list(changes.items()))
    return results
