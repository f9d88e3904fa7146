"""File a postmortem's action items in Jira, idempotently (`retro file-actions`).

Each row has a marker label `retro-<hash>` (retro.actions.table: derived from the incident id
and the title when the row is first filed, then written into its Tracking cell before the
create, so rewording the title later keeps it). Filing one row, under a per-draft lock:

1. search the marker; adopt the oldest issue carrying it and report any other;
2. else link to an open `postmortem` issue of another incident that covers the same action;
3. else write the marker into the Tracking cell, then create the issue. A create is never
   re-sent without searching the marker first: a 429 (refused, so nothing was created) is
   retried after that search; after a 5xx, a dropped connection or a timeout the create may
   have been committed, so the marker is searched for a few seconds and the issue adopted, or
   the run stops and says the next run will adopt it;
4. write the key into the row (Tracking, and Status `open`), then link it "relates to" the
   incident ticket. A failed link is reported and the other items are still filed; the next
   run links what is still unlinked.

Every run also searches this incident's issues once, so an issue that carries a row's marker
besides the one tracked (a duplicate) is reported on every run until it is resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, Field

from retro import retry
from retro.actions.links import ensure_link, repair_links
from retro.actions.lock import draft_lock
from retro.actions.prepare import (
    DEFAULT_PRIORITY_MAP,
    DUPLICATE_THRESHOLD,
    PRIORITIES,
    FileOptions,
    Target,
    check_rows,
    issue_fields,
    prepare,
)
from retro.actions.site import Site, connect, explain, jira_settings, settings_of, status_of
from retro.actions.sync import SyncResult, is_open, sync_actions, sync_from_settings
from retro.actions.table import (
    ActionRow,
    PostmortemFile,
    incident_label,
    load,
    similarity,
    update_row,
)
from retro.errors import ConfigError, ConnectorError, MissingCredential, RetroError
from retro.safety.redact import Redactor

__all__ = [
    "DEFAULT_PRIORITY_MAP",
    "DUPLICATE_THRESHOLD",
    "PRIORITIES",
    "FileOptions",
    "FileResult",
    "FileRun",
    "SyncResult",
    "file_actions",
    "file_from_flags",
    "is_open",
    "parse_priority_map",
    "sync_actions",
    "sync_from_settings",
]

Log = Callable[[str], None]
Action = Literal["created", "adopted", "linked-duplicate", "skipped"]
# Marker searches after a create that failed ambiguously: at once, then after 0.5, 1 and 2 s.
SETTLE = retry.RetryPolicy(retries=3, backoff=0.5, max_wait=2.0, jitter=0.0)
RESOLVED = frozenset({"won't do", "won't fix", "wont do", "wont fix", "duplicate"})
SEARCH_FIELDS = ["summary", "labels", "status", "resolution", "created"]


class FileResult(BaseModel):
    """One action item's outcome; `--json` prints a list of these."""

    number: int = Field(description="Row number in the action items table, from 1")
    title: str
    key: str | None = None
    action: Action
    url: str | None = None
    note: str = ""
    dry_run: bool = False


class FileRun(BaseModel):
    """What a `retro file-actions` run did, item by item, and what it could not do."""

    results: list[FileResult] = Field(default_factory=list)
    problems: list[str] = Field(
        default_factory=list, description="Items filed but not linked, one line each"
    )

    def error(self) -> RetroError | None:
        """One line for the problems, or None: the CLI exits 2 with it after the results."""
        if not self.problems:
            return None
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return ConnectorError(
            "jira",
            self.problems[0] + more,
            hint="fix it and run again: the key is in the draft, the next run adds the link",
        )


def parse_priority_map(value: str | dict[str, Any] | None) -> dict[str, str]:
    """`P0=Blocker,P1=Critical` (or a TOML table) merged over the defaults."""
    out = dict(DEFAULT_PRIORITY_MAP)
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    elif value:
        for part in str(value).split(","):
            name, eq, jira_name = part.partition("=")
            if not eq or not jira_name.strip():
                raise ConfigError(
                    f"bad priority map entry {part.strip()!r}", hint="write P0=Blocker,P1=Critical"
                )
            pairs.append((name, jira_name))
    for name, jira_name in pairs:
        level = name.strip().upper()
        if level not in PRIORITIES:
            raise ConfigError(f"bad priority map key {name.strip()!r}", hint="map P0, P1 and P2")
        out[level] = jira_name.strip()
    return out


def file_from_flags(
    path: Path,
    *,
    project: str | None = None,
    issue_type: str | None = None,
    incident_ticket: str | None = None,
    priority_map: str | None = None,
    postmortem_url: str | None = None,
    dry_run: bool = False,
    log: Log = lambda _m: None,
) -> FileRun:
    """`retro file-actions`: resolve the settings (flags, env, retro.toml) and file."""
    from retro.config import project_settings

    settings = project_settings().get("jira", {})
    config = jira_settings(project)
    options = FileOptions(
        project=settings_of(config).project,
        issue_type=issue_type or settings.get("issue_type") or "Task",
        incident_ticket=incident_ticket,
        priority_map=parse_priority_map(priority_map or settings.get("priority_map")),
        postmortem_url=postmortem_url,
        dry_run=dry_run,
        threshold=float(settings.get("duplicate_threshold", DUPLICATE_THRESHOLD)),
    )
    return file_actions(path, options, config, log=log)


def file_actions(
    path: Path, options: FileOptions, config: BaseModel, *, log: Log = lambda _m: None
) -> FileRun:
    """File every untracked, open action item of the postmortem at `path`."""
    if options.dry_run or not path.is_file():
        return _file(path, options, config, log)  # changes nothing (or says what is missing)
    with draft_lock(path, log=log):
        return _file(path, options, config, log)


def _file(path: Path, options: FileOptions, config: BaseModel, log: Log) -> FileRun:
    pm = load(path)  # read under the lock: a run that waited sees the keys the other wrote
    results, pending = _sort_rows(pm, settings_of(config).base_url.rstrip("/"))
    run = FileRun()
    if not pm.rows:
        return run
    no_project = ConfigError("no Jira project given", hint="pass --project KEY or set JIRA_PROJECT")
    if pending and not options.project and not options.dry_run:
        raise no_project
    try:
        site = connect(config)
    except (MissingCredential, ConfigError) as err:
        if pending and not options.dry_run:
            raise
        if pending:
            results |= _offline_dry_run(pm, pending, err, log)
        else:
            log(f"Jira is not configured ({err}): duplicates were not checked")
        run.results = [results[n] for n in sorted(results)]
        return run
    try:
        if pending and not options.project:
            raise no_project
        known = _incident_issues(site, pm)
        _report_tracked(pm, results, known, log)
        if not options.dry_run:
            repair_links(site, options, pm, known, run.problems, log)
        if pending:
            _file_pending(site, options, pm, pending, results, run, log)
    finally:
        site.close()
    run.results = [results[n] for n in sorted(results)]
    return run


def _sort_rows(pm: PostmortemFile, base: str) -> tuple[dict[int, FileResult], list[ActionRow]]:
    """Results for the rows left alone (tracked or closed), and the rows to file."""
    results: dict[int, FileResult] = {}
    pending: list[ActionRow] = []
    for n, row in enumerate(pm.rows, start=1):
        if row.tracking:
            url = f"{base}/browse/{row.tracking}" if base else None
            results[n] = FileResult(
                number=n,
                title=row.title,
                key=row.tracking,
                action="skipped",
                note="already tracked",
                url=url,
            )
        elif not is_open(row):
            note = f"status {row.status}"
            results[n] = FileResult(number=n, title=row.title, action="skipped", note=note)
        else:
            pending.append(row)
    return results, pending


def _offline_dry_run(
    pm: PostmortemFile, pending: list[ActionRow], err: RetroError, log: Log
) -> dict[int, FileResult]:
    """A dry run with no Jira: what would be filed, checked only against the draft itself."""
    check_rows(pm, pending, log)
    log(f"Jira is not configured ({err}): issues already filed and duplicates were not checked")
    return {
        pm.rows.index(row) + 1: FileResult(
            number=pm.rows.index(row) + 1,
            title=row.title,
            action="created",
            note="duplicates not checked (no Jira configured)",
            dry_run=True,
        )
        for row in pending
    }


def _file_pending(
    site: Site,
    options: FileOptions,
    pm: PostmortemFile,
    pending: list[ActionRow],
    results: dict[int, FileResult],
    run: FileRun,
    log: Log,
) -> None:
    target = prepare(site, options, pm, pending, log)
    candidates = open_postmortem_issues(site, target.project)
    redactor = Redactor()
    for row in pending:
        n = pm.rows.index(row) + 1
        results[n] = _file_one(site, target, pm, row, n, options, candidates, redactor, run, log)


# --- searches -----------------------------------------------------------------------------------


def jql_string(value: str) -> str:
    """A JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _oldest_first(issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(issues, key=lambda i: (str(i["fields"].get("created") or ""), str(i["key"])))


def by_marker(site: Site, marker: str) -> list[dict[str, Any]]:
    """Issues carrying the marker label, oldest first."""
    found = site.search(f"labels = {jql_string(marker)}", SEARCH_FIELDS, 50)
    return _oldest_first(found)


def _incident_issues(site: Site, pm: PostmortemFile) -> list[dict[str, Any]]:
    """Every issue retro filed for this incident (its postmortem and incident labels)."""
    label = jql_string(incident_label(pm.incident_id))
    jql = f"labels = postmortem AND labels = {label}"
    return _oldest_first(site.search(jql, [*SEARCH_FIELDS, "issuelinks"]))


def open_postmortem_issues(site: Site, project: str) -> list[dict[str, Any]]:
    jql = f"project = {jql_string(project)} AND labels = postmortem AND statusCategory != Done"
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


def _markers(issue: dict[str, Any]) -> list[str]:
    labels = (issue.get("fields") or {}).get("labels") or []
    return [str(x) for x in labels if str(x).startswith("retro-")]


def unresolved(issue: dict[str, Any]) -> bool:
    """Not closed as a duplicate (or won't do): a duplicate issue still to be dealt with."""
    resolution = ((issue.get("fields") or {}).get("resolution") or {}).get("name")
    return str(resolution or "").strip().casefold().replace("’", "'") not in RESOLVED


def _duplicates_note(marker: str, keep: str, others: list[str]) -> str:
    return (
        f"duplicate: {', '.join(others)} also carr{'ies' if len(others) == 1 else 'y'} "
        f"{marker} (tracked: {keep}); delete it, remove its {marker} label, or resolve it "
        "as Duplicate"
    )


def _report_tracked(
    pm: PostmortemFile,
    results: dict[int, FileResult],
    known: list[dict[str, Any]],
    log: Log,
) -> None:
    """Report, on every run, other issues carrying a tracked row's marker."""
    by_key = {str(i["key"]): i for i in known}
    for n, row in enumerate(pm.rows, start=1):
        issue = by_key.get(row.tracking)
        if issue is None:
            continue
        for mark in _markers(issue):
            others = [
                str(i["key"])
                for i in known
                if i is not issue and mark in _markers(i) and unresolved(i)
            ]
            if others:
                note = _duplicates_note(mark, row.tracking, others)
                results[n].note = f"{results[n].note}; {note}"
                log(f"action item {n}: {note}")


# --- filing one row -----------------------------------------------------------------------------


def _file_one(
    site: Site,
    target: Target,
    pm: PostmortemFile,
    row: ActionRow,
    n: int,
    options: FileOptions,
    candidates: list[dict[str, Any]],
    redactor: Redactor,
    run: FileRun,
    log: Log,
) -> FileResult:
    dry = options.dry_run
    result = FileResult(number=n, title=row.title, action="created", dry_run=dry)
    found = by_marker(site, row.marker)
    if found:
        result.action, result.key = "adopted", str(found[0]["key"])
        result.note = f"already filed (label {row.marker})"
        others = [str(i["key"]) for i in found[1:] if unresolved(i)]
        if others:
            result.note += "; " + _duplicates_note(row.marker, result.key, others)
            log(f"action item {n}: {_duplicates_note(row.marker, result.key, others)}")
    elif dup := best_duplicate(
        row.title, candidates, options.threshold, incident_label(pm.incident_id)
    ):
        issue, score = dup
        result.action, result.key = "linked-duplicate", str(issue["key"])
        summary = str(issue["fields"].get("summary", ""))
        result.note = f"same action as {issue['key']} “{summary}” (similarity {score:.2f})"
    elif dry:
        issue_fields(site, target, pm, row, options, log, redactor)  # checks the assignee too
        result.note = f"would create in {target.project} as {target.issue_type}"
    else:
        fields = issue_fields(site, target, pm, row, options, log, redactor)
        _write_marker(pm, row)
        result.key, result.note = _create(site, fields, row, log)
        if result.note:
            result.action = "adopted"
    result.url = site.url(result.key) if result.key else None
    if not dry and result.key is not None:
        _track_and_link(site, target, pm, row, result, run.problems, log)
    return result


def _track_and_link(
    site: Site,
    target: Target,
    pm: PostmortemFile,
    row: ActionRow,
    result: FileResult,
    problems: list[str],
    log: Log,
) -> None:
    """Write the key into the row, then link: a failing link never leaves an issue untracked,
    nor stops the other items."""
    key, marker = str(result.key), row.marker
    update_row(
        pm.path,
        row,
        {"tracking": key, "status": "open"},
        find=lambda r: r.marker == marker and not r.tracking,
    )
    try:
        ensure_link(site, target, key, log, fresh=result.action == "created")
    except RetroError as err:
        problem = f"{key} is filed but not linked to {target.incident_ticket}: {err}"
        result.note = f"{result.note}; not linked: {err}".lstrip("; ")
        problems.append(problem)
        log(f"action item {result.number}: {problem}")


def _write_marker(pm: PostmortemFile, row: ActionRow) -> None:
    """Write the row's marker into its Tracking cell before the create: if the run dies after
    Jira committed the issue, the next run finds it by this marker even if the title changed."""
    if row.written_marker:
        return
    marker = row.marker
    update_row(
        pm.path, row, {"tracking": marker}, find=lambda r: r.marker == marker and not r.tracking
    )


def _create(site: Site, fields: dict[str, Any], row: ActionRow, log: Log) -> tuple[str, str]:
    """Create the issue; (key, note). Never sent twice without a marker search in between."""
    what = f"create issue “{row.title[:60]}”"
    policy = site.write_policy()
    attempts = 0

    def attempt() -> tuple[str, str]:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            found = by_marker(site, row.marker)
            if found:  # cannot happen after a 429, but a create is never re-sent blind
                return str(found[0]["key"]), f"found by its label {row.marker}"
        try:
            issue = site.jira.create_issue(fields=fields, prefetch=False)
        except Exception as exc:
            if status_of(exc) == 429:  # refused before any work: safe to send again
                headers = getattr(getattr(exc, "response", None), "headers", None) or {}
                wait = retry.retry_after(headers)
                raise retry.Retryable("429", retry_after=wait, status=429, response=exc) from exc
            raise
        key = getattr(issue, "key", None)
        if not key:
            raise ValueError("the create answered without an issue key")
        return str(key), ""

    def give_up(exc: retry.Retryable) -> NoReturn:
        raise explain(exc.response, what, site.config, "create", retried=True) from None  # type: ignore[arg-type]

    try:
        return policy.run(attempt, give_up=give_up)
    except RetroError:
        raise
    except Exception as exc:
        status = status_of(exc)
        if status is not None and 400 <= status < 500:
            raise _refused(exc, row) from None
        return _settle(site, row, exc, what, log)  # 5xx, no answer, or an unreadable 201


def _settle(site: Site, row: ActionRow, error: Exception, what: str, log: Log) -> tuple[str, str]:
    """After an ambiguous failure: adopt the issue if Jira committed it, or stop."""
    status = status_of(error)
    said = f"HTTP {status}" if status else type(error).__name__
    log(f"create of “{row.title}” failed ({said}); checking whether Jira committed it")

    def unknown(also: str = "") -> ConnectorError:
        err = explain(error, what, site.config, "create")
        return ConnectorError(
            "jira",
            err.message.removeprefix("jira: ") + also,
            hint="Jira may or may not have created it; run again in a minute: a committed "
            f"create is found by its label {row.marker} and adopted, never filed twice",
        )

    def attempt() -> str:
        try:
            found = by_marker(site, row.marker)  # search indexes can lag a create by a moment
        except RetroError as err:
            raise unknown(f", and the search for it failed too ({err.message})") from None
        if not found:
            raise retry.Retryable("not found by its marker yet")
        if len(found) > 1:
            log(f"several issues carry {row.marker}: {', '.join(str(i['key']) for i in found)}")
        return str(found[0]["key"])

    def give_up(_exc: retry.Retryable) -> NoReturn:
        raise unknown()

    key = SETTLE.run(attempt, give_up=give_up)
    return key, f"the create answered {said} but was committed"


def _refused(exc: Exception, row: ActionRow) -> RetroError:
    """A one-line error from Jira's 4xx body: `errorMessages` and `errors` joined."""
    if status_of(exc) != 400:
        from retro.actions.site import AUTH_HINT

        if status_of(exc) == 401:
            return ConnectorError("jira", "Jira rejected the credentials (401)", hint=AUTH_HINT)
        return ConnectorError(
            "jira",
            f"Jira answered {status_of(exc)} to create “{row.title[:60]}”",
            hint="the account needs the Create Issues permission in the project",
        )
    try:
        body = exc.response.json()  # type: ignore[attr-defined]
    except Exception:
        body = {}
    parts = list(body.get("errorMessages") or []) if isinstance(body, dict) else []
    errors = body.get("errors") if isinstance(body, dict) else None
    parts += [f"{k}: {v}" for k, v in (errors or {}).items()]
    text = getattr(exc, "text", "") or ""
    return ConnectorError(
        "jira",
        f"Jira refused to create “{row.title[:60]}”: {'; '.join(parts) or text}",
        hint="fix the action item or the Jira settings and run again",
    )
