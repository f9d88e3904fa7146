"""Before filing: check the project, issue type, create screen, priorities and components, and
build each issue's fields (redacted: nothing leaves the machine unredacted)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from retro.actions.describe import EMAIL, Brief
from retro.actions.describe import adf as adf_description
from retro.actions.describe import summary as one_line_summary
from retro.actions.describe import wiki as wiki_description
from retro.actions.site import Site, explain, status_of
from retro.actions.table import JIRA_KEY, ActionRow, PostmortemFile, incident_label
from retro.errors import ConfigError
from retro.safety.redact import Redactor

Log = Callable[[str], None]
PRIORITIES = ("P0", "P1", "P2")
DEFAULT_PRIORITY_MAP = {"P0": "Highest", "P1": "High", "P2": "Medium"}
DUPLICATE_THRESHOLD = 0.6  # token Jaccard of two summaries; see docs/jira-actions.md
META_PAGE = 50  # Jira servers page create-screen metadata at 50 whatever is asked


class FileOptions(BaseModel):
    """What `retro file-actions` was asked to do."""

    project: str | None = Field(default=None, description="Jira project key to create issues in")
    issue_type: str = Field(default="Task", description="Issue type name")
    incident_ticket: str | None = Field(default=None, description="Key to link 'relates to'")
    priority_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PRIORITY_MAP))
    postmortem_url: str | None = Field(default=None, description="Web link to the postmortem")
    dry_run: bool = False
    threshold: float = Field(default=DUPLICATE_THRESHOLD, ge=0.0, le=1.0)


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


def _listing(values: list[str], limit: int = 40) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


def prepare(
    site: Site, options: FileOptions, pm: PostmortemFile, rows: list[ActionRow], log: Log
) -> Target:
    """Check the project, issue type, priorities and components; find the incident ticket."""
    project = _project(site, options.project or "")
    key = str(project["key"])
    type_id, type_name = _issue_type(project, options.issue_type)
    meta = create_meta(site, key, type_id)
    screen = set(meta) if meta is not None else None
    priorities = _priorities(site, options.priority_map, meta, key, type_name, log)
    components = _component_names(project, meta)
    check_rows(pm, rows, log, components=components, priorities=priorities, screen=screen, key=key)
    return Target(
        project=key,
        issue_type_id=type_id,
        issue_type=type_name,
        priorities=priorities,
        components=components,
        screen=screen,
        link_type=link_type(site, log),
        incident_ticket=incident_ticket(site, options.incident_ticket, pm.incident_id, log),
    )


def _project(site: Site, wanted: str) -> dict[str, Any]:
    projects = site.read("the project list", site.jira.projects)
    by_key = {str(p.key).upper(): str(p.key) for p in projects}
    key = by_key.get(wanted.strip().upper())
    if key is None:
        raise ConfigError(
            f"Jira project {wanted!r} does not exist or is not visible to this account",
            hint=f"valid project keys: {_listing(sorted(by_key.values())) or 'none'}",
        )
    return dict(site.read(f"project {key}", lambda: site.jira.project(key)).raw)


def _issue_type(project: dict[str, Any], wanted: str) -> tuple[str, str]:
    types = [t for t in project.get("issueTypes") or [] if not t.get("subtask")]
    for t in types:
        if str(t.get("name", "")).casefold() == wanted.strip().casefold():
            return str(t["id"]), str(t["name"])
    raise ConfigError(
        f"issue type {wanted!r} is not available in project {project.get('key')}",
        hint=f"valid issue types: {_listing([str(t.get('name')) for t in types]) or 'none'}",
    )


def _meta_values(body: Any) -> list[Any]:
    """The page's field list: Server/DC answers `values`, Cloud `fields` (or `results`)."""
    if isinstance(body, dict):
        for name in ("values", "fields", "results"):
            if isinstance(body.get(name), list):
                return list(body[name])
    raise ValueError("no field list in the create metadata page")


def create_meta(site: Site, key: str, type_id: str) -> dict[str, dict[str, Any]] | None:
    """Every field of the create screen (id -> meta), page by page; None when the site lacks
    this endpoint (Jira Server before 8.4)."""
    path = f"issue/createmeta/{key}/issuetypes/{type_id}"
    out: dict[str, dict[str, Any]] = {}
    start = 0
    while True:
        params = {"startAt": start, "maxResults": META_PAGE}
        try:
            body = site.client.read(
                lambda p=params: site.client.get_json(path, p),  # type: ignore[misc]
                check=_meta_values,
            )
        except Exception as exc:
            if start == 0 and status_of(exc) in (404, 405):
                return None
            raise explain(exc, f"create metadata of {key}", site.config, "read") from None
        values = _meta_values(body)
        for m in values:
            if isinstance(m, dict):
                out.setdefault(str(m.get("fieldId") or m.get("key")), m)
        start += len(values)
        total = body.get("total")
        if not values or body.get("isLast") is True or (total is not None and start >= int(total)):
            return out


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
    known = [str(p.name) for p in site.read("priorities", site.jira.priorities)]
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


def check_rows(
    pm: PostmortemFile,
    rows: list[ActionRow],
    log: Log,
    *,
    components: list[str] | None = None,
    priorities: dict[str, str] | None = None,
    screen: set[str] | None = None,
    key: str = "",
) -> None:
    """Refuse bad rows before anything is created, so a run never stops half-way on them.

    Without a site (a dry run with no Jira), `components` is None and only what the draft
    alone can tell is checked: the title, the priority and the due date.
    """
    for row in rows:
        where = f"action item {pm.rows.index(row) + 1} ({row.title[:40]!r})"
        if not row.title:
            raise ConfigError(f"{where} has no title", hint="write the action in the Action column")
        if (priorities is None or priorities) and row.priority not in PRIORITIES:
            raise ConfigError(f"{where} has priority {row.priority!r}", hint="use P0, P1 or P2")
        if row.due:
            try:
                date.fromisoformat(row.due)
            except ValueError:
                raise ConfigError(
                    f"{where}: due date {row.due!r}", hint="write YYYY-MM-DD"
                ) from None
        if components is None:
            continue
        known = {n.casefold() for n in components}
        bad = [c for c in row.components if c.casefold() not in known]
        if bad:
            raise ConfigError(
                f"{where}: component {bad[0]!r} does not exist in project {key}",
                hint=f"valid components: {_listing(components) or 'none'}",
            )
        for field, present in (("components", row.components), ("duedate", row.due)):
            if present and screen is not None and field not in screen:
                log(f"{where}: {field} is not on the create screen of {key}; not set")


def link_type(site: Site, log: Log) -> str | None:
    for t in site.read("issue link types", site.jira.issue_link_types):
        if t.name == "Relates" or str(getattr(t, "outward", "")).lower() == "relates to":
            return str(t.name)
    log("this Jira has no 'relates to' link type; issues are not linked to the incident")
    return None


def ticket_candidate(given: str | None, incident_id: str) -> str | None:
    """The incident ticket to link to, before checking that it exists."""
    if given:
        return given
    return incident_id if JIRA_KEY.fullmatch(incident_id) else None


def incident_ticket(site: Site, given: str | None, incident_id: str, log: Log) -> str | None:
    if given:
        if site.issue(given, "summary") is None:
            raise ConfigError(
                f"incident ticket {given} does not exist or is not visible to this account",
                hint="check --incident-ticket",
            )
        return given
    if JIRA_KEY.fullmatch(incident_id) and site.issue(incident_id, "summary") is not None:
        return incident_id
    log(f"no incident ticket to link ({incident_id} is not a Jira issue); pass --incident-ticket")
    return None


# --- fields -------------------------------------------------------------------------------------


def redacted(brief: Brief, redactor: Redactor) -> Brief:
    """The brief with every free text redacted: it is about to leave the machine."""
    r = redactor.redact
    return dataclasses.replace(
        brief,
        title=r(brief.title),
        end_state=r(brief.end_state),
        owner=r(brief.owner),
        incident_title=r(brief.incident_title),
        postmortem=r(brief.postmortem),
        postmortem_url=r(brief.postmortem_url) if brief.postmortem_url else None,
        evidence=[(i, when, r(text)) for i, when, text in brief.evidence],
    )


def issue_fields(
    site: Site,
    target: Target,
    pm: PostmortemFile,
    row: ActionRow,
    options: FileOptions,
    log: Log,
    redactor: Redactor,
) -> dict[str, Any]:
    """The create payload's `fields` for one action item, every text redacted."""
    brief = redacted(Brief.of(pm, row, options.postmortem_url), redactor)
    fields: dict[str, Any] = {
        "project": {"key": target.project},
        "issuetype": {"id": target.issue_type_id},
        "summary": one_line_summary(brief.title),
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
            f"user {email}", lambda: site.jira.search_users(query=email, maxResults=10)
        )
    else:
        users = site.read(
            f"user {email}", lambda: site.jira.search_users(user=email, maxResults=10)
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
