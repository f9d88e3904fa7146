"""Link filed issues "relates to" the incident ticket: once, and again only after checking.

A link is a write: it is sent again (after a 429, a 5xx or no answer) only once the issue's
links have been read and the link is still missing. A run also links the issues an earlier run
filed but could not link (a 403 until someone granted the Link Issues permission, say).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from retro import retry
from retro.actions.prepare import FileOptions, Target, incident_ticket, link_type, ticket_candidate
from retro.actions.site import Site, explain, status_of
from retro.actions.table import PostmortemFile
from retro.errors import RetroError

Log = Callable[[str], None]


def linked_keys(raw: dict[str, Any]) -> list[str]:
    """Keys of the issues this issue links to (either direction)."""
    keys: list[str] = []
    for link in (raw.get("fields") or {}).get("issuelinks") or []:
        for side in ("outwardIssue", "inwardIssue"):
            other = link.get(side) if isinstance(link, dict) else None
            if isinstance(other, dict) and other.get("key"):
                keys.append(str(other["key"]))
    return keys


def ensure_link(site: Site, target: Target, key: str, log: Log, *, fresh: bool) -> None:
    """`key` relates to the incident ticket, once. A link is sent again only after reading the
    issue's links (a fresh issue has none to read on the first try)."""
    ticket, kind = target.incident_ticket, target.link_type
    if not ticket or not kind or ticket == key:
        return
    what = f"link {key} to {ticket}"
    policy = site.write_policy()
    check = not fresh

    def attempt() -> bool:
        nonlocal check
        if check:
            issue = site.issue(key, "issuelinks")
            if issue is not None and ticket in linked_keys(issue):
                return False
        check = True
        try:
            site.jira.create_issue_link(kind, key, ticket)
        except Exception as exc:
            status = status_of(exc)
            if status is not None and status < 500 and status != 429:
                raise explain(exc, what, site.config, "link") from None
            raise retry.Retryable(str(status or type(exc).__name__), response=exc) from exc
        return True

    def give_up(exc: retry.Retryable) -> NoReturn:
        raise explain(exc.response, what, site.config, "link", retried=True) from None  # type: ignore[arg-type]

    if policy.run(attempt, give_up=give_up):
        log(f"linked {key} relates to {ticket}")


def repair_links(
    site: Site,
    options: FileOptions,
    pm: PostmortemFile,
    known: list[dict[str, Any]],
    problems: list[str],
    log: Log,
) -> None:
    """Link tracked issues that an earlier run filed but could not link."""
    ticket = ticket_candidate(options.incident_ticket, pm.incident_id)
    by_key = {str(i["key"]): i for i in known}
    missing = [
        row.tracking
        for row in pm.rows
        if row.tracking in by_key
        and row.tracking != ticket
        and ticket not in linked_keys(by_key[row.tracking])
    ]
    if not ticket or not missing:
        return
    kind = link_type(site, log)
    found = incident_ticket(site, options.incident_ticket, pm.incident_id, log)
    if kind is None or found is None:
        return
    target = Target("", "", "", {}, [], None, kind, found)
    for key in missing:
        try:
            ensure_link(site, target, key, log, fresh=False)
        except RetroError as err:
            problems.append(f"{key} is filed but not linked to {found}: {err}")
            log(f"{key}: not linked to {found}: {err}")
