"""Jira live mode: harvest and check, on top of `client.JiraClient` (the `jira` library).

Every read runs under retro's retry policy through `JiraClient.read` (429 with or without
`Retry-After`, 500/502/503/504, dropped connections, timeouts, HTML or cut bodies); the
library itself is configured never to retry. Pages are read by `startAt` and kept by id, so a
retried page neither loses nor repeats anything, and items keep Jira's order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from connectors.jira.client import (
    JiraClient,
    JiraConfig,
    as_config,
    connect,
    make_client,
    policy_for,
    run_read,
    translate,
)
from retro.connector import IncidentRef
from retro.errors import ConnectorError, RetroError
from retro.models import Progress, SourceReport

__all__ = [
    "JiraClient",
    "JiraConfig",
    "as_config",
    "call",
    "check_jira",
    "connect",
    "harvest_jira",
    "make_client",
]

T = TypeVar("T")


def call(
    site: JiraClient | JiraConfig,
    what: str,
    fn: Callable[[], T],
    *,
    check: Callable[[T], object] | None = None,
) -> T:
    """One read under the site's retry policy, its final failure translated to one line."""
    config = site.config if isinstance(site, JiraClient) else site
    try:
        return run_read(policy_for(config), fn, check=check)
    except RetroError:
        raise
    except Exception as exc:
        raise translate(exc, what, config) from None


def _is_issue(raw: Any) -> None:
    if not (isinstance(raw, dict) and raw.get("key") and isinstance(raw.get("fields"), dict)):
        raise ValueError("not an issue body")


def _is_page(items: str) -> Callable[[Any], None]:
    def check(body: Any) -> None:
        if not (isinstance(body, dict) and isinstance(body.get(items), list)):
            raise ValueError(f"no `{items}` list")

    return check


# --- harvest -----------------------------------------------------------------------------------


def fetch_issue(client: JiraClient, key: str) -> dict[str, Any]:
    """One issue's raw JSON with every comment and every history embedded."""
    issue = call(
        client,
        f"issue {key}",
        lambda: client.jira.issue(key, expand="changelog"),
        check=lambda i: _is_issue(i.raw),
    )
    raw: dict[str, Any] = json.loads(json.dumps(issue.raw))  # a private copy we can extend
    fields = raw["fields"]
    comment = fields.get("comment")
    have = len(comment.get("comments") or []) if isinstance(comment, dict) else 0
    total = int(comment.get("total", have)) if isinstance(comment, dict) else -1
    if total < 0 or total > have:
        comments = _pages(client, f"issue/{key}/comment", "comments", f"comments of {key}")
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
        histories = _pages(client, f"issue/{key}/changelog", "values", f"changelog of {key}")
        raw["changelog"] = {
            "startAt": 0,
            "maxResults": len(histories),
            "total": len(histories),
            "histories": histories,
        }
    return raw


def _pages(client: JiraClient, path: str, items: str, what: str) -> list[dict[str, Any]]:
    """Every item of a startAt/maxResults endpoint in Jira's order, each once (kept by id)."""
    out: dict[str, dict[str, Any]] = {}
    start = 0
    size = client.config.page_size
    while True:
        params = {"startAt": start, "maxResults": size, "orderBy": "created"}
        body = call(
            client,
            f"{what} (from {start})",
            lambda p=params: client.get_json(path, p),  # type: ignore[misc]
            check=_is_page(items),
        )
        page = body[items]
        for item in page:
            # An item added while paging shifts the offsets; keying by id keeps each once.
            out.setdefault(str(item.get("id", len(out))) if isinstance(item, dict) else "", item)
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
    client = connect(config)
    try:
        _harvest(client, ref.of("jira"), out, report, progress)
    finally:
        client.close()
    return report


def _harvest(
    client: JiraClient, keys: list[str], out: Path, report: SourceReport, progress: Progress
) -> None:
    dest = out / "jira"
    dest.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, Any]] = {}
    for key in keys:
        progress("jira issues", len(done), len(keys))
        done[key] = fetch_issue(client, key)
        _write(dest, key, done[key], out, report)
    if client.config.follow_links:
        extra = [k for raw in list(done.values()) for k in linked_keys(raw) if k not in done]
        for key in dict.fromkeys(extra):
            progress("jira linked issues", len(done), len(done) + len(extra))
            try:
                done[key] = fetch_issue(client, key)
            except ConnectorError as err:
                # A linked issue in a project we cannot see must not sink the harvest.
                report.skip(f"linked issue not fetched: {err.message}"[:160])
                report.status = "partial"
                continue
            _write(dest, key, done[key], out, report)
    progress("jira issues", len(done), len(done))


def _write(dest: Path, key: str, raw: dict[str, Any], out: Path, report: SourceReport) -> None:
    path = dest / f"{key}.json"
    path.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    report.files.append(str(path.relative_to(out)))
    report.records += 1


# --- check -------------------------------------------------------------------------------------


def check_jira(config: JiraConfig) -> list[str]:
    """Verify the credentials; report the user, the deployment and the project permission."""
    client = connect(config)
    try:
        return _check(client)
    finally:
        client.close()


def _check(client: JiraClient) -> list[str]:
    config = client.config
    info = call(client, "serverInfo", client.jira.server_info)
    me = call(client, "myself", client.jira.myself)
    who = me.get("displayName") or me.get("name") or me.get("accountId")
    ident = me.get("emailAddress") or me.get("name") or me.get("accountId")
    lines = [
        f"Jira {info.get('deploymentType', 'Server')} {info.get('version', '?')} at {config.base_url}"
        f" (REST v{config.version()})",
        f"authenticated as {who} ({ident})",
    ]
    if config.project:
        project = config.project
        perms = call(
            client,
            f"permissions on {project}",
            lambda: client.jira.my_permissions(projectKey=project, permissions="BROWSE_PROJECTS"),
        )
        browse = (perms.get("permissions") or {}).get("BROWSE_PROJECTS") or {}
        if not browse.get("havePermission"):
            raise ConnectorError(
                "jira",
                f"{who} lacks Browse Projects on {project}",
                hint="ask a Jira admin to add the account to the project's Browse role",
            )
        lines.append(f"Browse Projects on {project}: yes")
    return lines
