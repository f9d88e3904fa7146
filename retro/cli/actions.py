"""`retro file-actions` and `retro sync-actions`: action items into Jira and their status back."""

from __future__ import annotations

import json
from pathlib import Path

import click

from retro.cli._ui import info

_VERB = {
    "created": "created",
    "adopted": "adopted",
    "linked-duplicate": "linked to duplicate",
    "skipped": "skipped",
}
_DRY_VERB = {
    "created": "would create",
    "adopted": "would adopt",
    "linked-duplicate": "would link to duplicate",
    "skipped": "skipped",
}


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@click.command("file-actions")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--project", help="Jira project key to file in (else JIRA_PROJECT).")
@click.option("--issue-type", help="Issue type name [default: Task, or [jira] issue_type].")
@click.option("--incident-ticket", help="Jira key of the incident ticket to link 'relates to'.")
@click.option(
    "--priority-map",
    help="Jira priority names for P0-P2, e.g. P0=Blocker,P1=Critical,P2=Major "
    "[default: Highest/High/Medium, or [jira] priority_map].",
)
@click.option("--postmortem-url", help="Web link to the postmortem, put in each description.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be filed; change nothing. Works without Jira settings (then "
    "duplicates are not checked).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def file_actions(
    file: Path,
    project: str | None,
    issue_type: str | None,
    incident_ticket: str | None,
    priority_map: str | None,
    postmortem_url: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """File the postmortem's action items as Jira issues, once each.

    Items with a Tracking key, or with Status skipped, wontfix or done, are left alone. Each new
    key is written into the Tracking cell (Status becomes `open`); nothing else in the file
    changes. Re-running never files an item twice, and reports any duplicate issue it finds.

    \b
    Example:
      retro file-actions postmortems/INC-42.md --project OPS --incident-ticket OPS-42 --dry-run
      retro file-actions postmortems/INC-42.md --project OPS --incident-ticket OPS-42
    """
    from retro.actions.jira import file_from_flags

    run = file_from_flags(
        file,
        project=project,
        issue_type=issue_type,
        incident_ticket=incident_ticket,
        priority_map=priority_map,
        postmortem_url=postmortem_url,
        dry_run=dry_run,
        log=info,
    )
    results = run.results
    if as_json:
        keep = {"title", "key", "action", "url", "note", "dry_run"}
        click.echo(json.dumps([r.model_dump(include=keep) for r in results], indent=2))
    elif not results:
        click.echo("No action items in the table.")
    else:
        verbs = _DRY_VERB if dry_run else _VERB
        rows = [
            [str(r.number), _short(r.title), verbs[r.action], r.key or "-", r.note] for r in results
        ]
        click.echo(_table(["#", "Action", "Result", "Key", "Note"], rows))
    if dry_run and results:
        info("Dry run: nothing was filed and the file was not changed.")
    error = run.error()
    if error is not None:
        raise error


@click.command("sync-actions")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def sync_actions(file: Path, as_json: bool) -> None:
    """Read status, assignee and resolution of tracked action items back from Jira.

    Status becomes open, in_progress or done from the Jira status category, or wontfix when
    the resolution is Won't Do, Won't Fix or Duplicate. Only Status cells (and an Assignee
    column, if you added one) change.

    \b
    Example:
      retro sync-actions postmortems/INC-42.md
    """
    from retro.actions.jira import sync_from_settings

    results = sync_from_settings(file, log=info)
    changed = sum(r.changed for r in results)
    if as_json:
        click.echo(json.dumps([r.model_dump() for r in results], indent=2))
    elif results:
        click.echo(
            _table(
                ["Key", "Action", "Status", "Jira status", "Assignee", "Resolution"],
                [
                    [
                        r.key,
                        _short(r.title, 50),
                        f"{r.status_before} → {r.status}"
                        if r.status != r.status_before
                        else r.status,
                        r.jira_status or "?",
                        r.assignee or "-",
                        r.resolution or "-",
                    ]
                    for r in results
                ],
            )
        )
    if not results:
        info("No tracked action items (file them with `retro file-actions`).")
    else:
        info(f"{changed} of {len(results)} items changed in {file}" if changed else "No changes.")
