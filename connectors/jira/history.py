"""Jira history import: incident tickets (created, status transitions, resolution, priority,
components) for the reliability report.

Live mode runs one JQL search with `expand=changelog` through the `jira` library, which pages
itself; 500/502/504 are retried with retro.retry and 429/503 by the library (see live.py). The
default JQL is `issuetype = Incident`; `retro import jira --filter JQL` replaces it, and the
time range is added to it. File mode reads search bodies (`{issues: [...]}`) or single issues
saved with their changelog.

Times come from the ticket: created is when the incident was detected (reported); the first
move to a status whose name says work started (In Progress, Investigating, Acknowledged)
is acknowledged; to one that says mitigated (Mitigated, Monitoring) is mitigated; and the
resolution date, else the first move to a done-like status, is resolved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from connectors._history import iso, items_of, live_range, name_of, saved_bodies, when
from connectors.jira import live
from connectors.jira.adf import adf_to_text, is_adf
from retro.connector import HistoryQuery, ImportedIncident
from retro.models import Progress, no_progress

SOURCE = "jira"
DEFAULT_JQL = "issuetype = Incident"
FIELDS = [
    *("summary", "description", "status", "priority", "components", "created"),
    *("resolutiondate", "resolution", "labels", "issuetype"),
]
_STARTED = re.compile(r"progress|investigat|acknowledg|triag|working|identified", re.I)
_MITIGATED = re.compile(r"mitigat|monitor", re.I)
_DONE = re.compile(r"resolved|done|closed|complete|fixed", re.I)


def import_history(
    query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
) -> Iterator[ImportedIncident]:
    issues: dict[str, tuple[dict[str, Any], str]] = {}
    if query.files:
        for where, body in saved_bodies(query.files):
            listed = items_of(body, "issues")
            if listed is None and isinstance(body, dict) and "key" in body:
                listed = [body]
            if listed is None:
                query.skip("jira: file is not a search body or an issue")
                continue
            for n, issue in enumerate(listed):
                if _is_issue(issue):
                    issues[str(issue["key"])] = (issue, f"{where} [{n}]")
                else:
                    query.skip("jira: list item is not an issue")
    else:
        issues = _search(query, config, progress)
    for key, (issue, where) in issues.items():
        record = issue_record(issue, where, key)
        if query.wants(record.times.get("detected")):
            yield record


def _is_issue(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj.get("key")) and isinstance(obj.get("fields"), dict)


def _search(
    query: HistoryQuery, config: BaseModel, progress: Progress
) -> dict[str, tuple[dict[str, Any], str]]:
    cfg = live.as_config(config)
    since, until = live_range(query)
    base = query.filter or DEFAULT_JQL
    stamp = "%Y-%m-%d %H:%M"
    jql = f'({base}) AND created >= "{since:{stamp}}" AND created < "{until:{stamp}}" ORDER BY created ASC'
    client = live.make_client(cfg)
    progress("jira search", 0, None)
    found = live.call(
        cfg,
        f"search {jql!r}",
        lambda: client.search_issues(jql, maxResults=False, fields=FIELDS, expand="changelog"),
    )
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for issue in found:  # type: ignore[union-attr]
        raw: dict[str, Any] = issue.raw if hasattr(issue, "raw") else dict(issue)
        out[str(raw["key"])] = (raw, f"JQL search {iso(since)}..{iso(until)}")
    progress("jira search", len(out), len(out))
    return out


def _transitions(issue: dict[str, Any], where: str, key: str) -> list[tuple[datetime, str]]:
    """(time, new status name) of every status change, oldest first."""
    out = []
    histories = (issue.get("changelog") or {}).get("histories") or []
    for history in histories:
        for item in history.get("items") or []:
            if item.get("field") == "status" and item.get("toString"):
                at = when(history.get("created"), where=where, record=key, field_name="created")
                if at is not None:
                    out.append((at, str(item["toString"])))
    return sorted(out)


def issue_record(issue: dict[str, Any], where: str, key: str) -> ImportedIncident:
    fields = issue.get("fields") or {}
    stamps: dict[str, datetime] = {}
    created = when(fields.get("created"), where=where, record=key, field_name="created")
    if created is not None:
        stamps["detected"] = created
    moves = _transitions(issue, where, key)
    for name, pattern in (("acknowledged", _STARTED), ("mitigated", _MITIGATED)):
        hit = next((at for at, status in moves if pattern.search(status)), None)
        if hit is not None:
            stamps[name] = hit
    resolved = when(fields.get("resolutiondate"), where=where, record=key, field_name="resolved")
    resolved = resolved or next((at for at, status in moves if _DONE.search(status)), None)
    if resolved is not None:
        stamps["resolved"] = resolved
    description = fields.get("description")
    text = adf_to_text(description) if is_adf(description) else str(description or "")
    site = re.sub(r"/rest/api/.*$", "", str(issue.get("self") or ""))
    return ImportedIncident(
        source=SOURCE,
        id=key,
        title=str(fields.get("summary") or key),
        description=text,
        url=f"{site}/browse/{key}" if site else None,
        severity=name_of(fields.get("priority"), "name"),
        priority=name_of(fields.get("priority"), "name"),
        status=name_of(fields.get("status"), "name"),
        services=[c for c in (name_of(x, "name") for x in fields.get("components") or []) if c],
        times=stamps,
        aliases=[key],
        provenance=where,
    )
