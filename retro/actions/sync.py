"""Read tracked action items' status back from Jira (`retro sync-actions`).

For each row with a Tracking key: `GET /issue/KEY` (status, assignee, resolution), retried under
retro's policy like every read; the Status cells (and an Assignee column, if a person added one)
change in one atomic write, under the draft's lock. sync only reads from Jira.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from retro.actions.lock import draft_lock
from retro.actions.site import Site, connect, jira_settings
from retro.actions.table import ActionRow, is_open, load, update_rows

__all__ = ["SyncResult", "is_open", "status_from", "sync_actions", "sync_from_settings"]

Log = Callable[[str], None]
WONTFIX_RESOLUTIONS = frozenset({"won't do", "won't fix", "wont do", "wont fix", "duplicate"})
CATEGORY_STATUS = {"new": "open", "indeterminate": "in_progress", "done": "done"}


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
    note: str = Field(default="")


def status_from(fields: dict[str, Any]) -> str | None:
    """The action status a Jira issue's status category and resolution mean."""
    resolution = (fields.get("resolution") or {}).get("name")
    if resolution and str(resolution).strip().casefold().replace("’", "'") in WONTFIX_RESOLUTIONS:
        return "wontfix"
    category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
    return CATEGORY_STATUS.get(str(category))


def sync_from_settings(path: Path, *, log: Log = lambda _m: None) -> list[SyncResult]:
    """`retro sync-actions`: the Jira settings from env, keys file and retro.toml, then sync."""
    return sync_actions(path, jira_settings(), log=log)


def sync_actions(path: Path, config: BaseModel, *, log: Log = lambda _m: None) -> list[SyncResult]:
    """Read status, assignee and resolution of every tracked item; update the Status cells."""
    if not [r for r in load(path).rows if r.tracking]:
        return []
    with draft_lock(path, log=log):
        pm = load(path)
        tracked = [r for r in pm.rows if r.tracking]
        site = connect(config)
        try:
            results = [_sync_one(site, row, log) for row in tracked]
        finally:
            site.close()
        changes: dict[str, dict[str, str]] = {}
        for row, result in zip(tracked, results, strict=True):
            values: dict[str, str] = {}
            if result.status != row.status:
                values["status"] = result.status
            if "assignee" in row.columns and row.get("assignee") != (result.assignee or "-"):
                values["assignee"] = result.assignee or "-"
            result.changed = bool(values) and not result.note
            if result.changed:
                changes.setdefault(row.tracking, {}).update(values)
        update_rows(path, list(changes.items()))
    return results


def _sync_one(site: Site, row: ActionRow, log: Log) -> SyncResult:
    key = row.tracking
    result = SyncResult(
        title=row.title, key=key, url=site.url(key), status_before=row.status, status=row.status
    )
    raw = site.issue(key, "status,assignee,resolution")
    if raw is None:
        result.note = "not found in Jira (deleted, moved or not visible); left as is"
        log(f"{key}: {result.note}")
        return result
    fields = raw.get("fields") or {}
    result.jira_status = (fields.get("status") or {}).get("name")
    result.resolution = (fields.get("resolution") or {}).get("name")
    assignee = fields.get("assignee") or {}
    result.assignee = assignee.get("displayName") or assignee.get("name")
    result.status = status_from(fields) or row.status
    return result
