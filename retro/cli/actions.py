"""`retro file-actions` and `retro sync-actions`: action items into Jira and their status back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import click

from retro.cli._ui import info
from retro.errors import ConfigError

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


def parse_priority_map(value: str | dict[str, Any] | None) -> dict[str, str]:
    """`P0=Blocker,P1=Critical` (or a TOML table) merged over the defaults."""
    from retro.actions.jira import DEFAULT_PRIORITY_MAP, PRIORITIES

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


def _jira_config(project: str | None = None) -> Any:
    from connectors.jira.live import JiraConfig
    from retro.config import connector_config

    return cast(JiraConfig, connector_config("jira", "Jira", JiraConfig, {"project": project}))


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
@click.option("--dry-run", is_flag=True, help="Show what would be filed; change nothing.")
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
    changes. Re-running never files an item twice.

    \b
    Example:
      retro file-actions postmortems/INC-42.md --project OPS --incident-ticket OPS-42 --dry-run
      retro file-actions postmortems/INC-42.md --project OPS --incident-ticket OPS-42
    """
    from retro.actions.jira import DUPLICATE_THRESHOLD, FileOptions, file_actions
    from retro.config import project_settings

    settings = project_settings().get("jira", {})
    config = _jira_config(project)
    if not config.project:
        raise ConfigError("no Jira project given", hint="pass --project KEY or set JIRA_PROJECT")
    options = FileOptions(
        project=config.project,
        issue_type=issue_type or settings.get("issue_type") or "Task",
        incident_ticket=incident_ticket,
        priority_map=parse_priority_map(priority_map or settings.get("priority_map")),
        postmortem_url=postmortem_url,
        dry_run=dry_run,
        threshold=float(settings.get("duplicate_threshold", DUPLICATE_THRESHOLD)),
    )
    results = file_actions(file, options, config, log=info)
    if as_json:
        keep = ("title", "key", "action", "url", "note", "dry_run")
        click.echo(json.dumps([r.model_dump(include=set(keep)) for r in results], indent=2))
        return
    verbs = _DRY_VERB if dry_run else _VERB
    rows = [
        [str(r.number), _short(r.title), verbs[r.action], r.key or "-", r.note] for r in results
    ]
    if not rows:
        click.echo("No action items in the table.")
        return
    click.echo(_table(["#", "Action", "Result", "Key", "Note"], rows))
    if dry_run:
        info("Dry run: nothing was filed and the file was not changed.")


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
    from retro.actions.jira import sync_actions

    results = sync_actions(file, _jira_config(), log=info)
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
