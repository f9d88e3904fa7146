"""`retro sources check`, `retro connectors list` and `retro keys`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from retro.cli._ui import info

if TYPE_CHECKING:
    from retro.timeline.harvest import SourceCheck


@click.group("connectors")
def connectors_group() -> None:
    """Built-in and plugin source connectors."""


@connectors_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def connectors_list(as_json: bool) -> None:
    """List connectors and the settings each one takes.

    \b
    Example:
      retro connectors list --json
    """
    from retro.registry import describe

    rows = describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']} ({row['title']}): {', '.join(row['roles']) or 'no roles'}")
        if row["harvest"]:
            click.echo(f"    harvest: --from {row['name']}=WHAT, where WHAT is {row['harvest']}")
        for s in row["settings"]:
            env = f" [{s['env']}]" if s["env"] else ""
            click.echo(f"    {s['name']}{env}: {s['description']}")


@click.group()
def sources() -> None:
    """Check the live sources retro harvests from."""


@sources.command("check")
@click.option(
    "--source", "only", multiple=True, help="Check only this source (repeatable).", metavar="NAME"
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def sources_check(only: tuple[str, ...], as_json: bool) -> None:
    """Verify credentials, token scopes and reachability of each configured source.

    A source whose token (or URL) is not set is "not configured"; a file-only source (Grafana,
    generic) has "no live mode". Neither is a failure, except that a source named with
    --source must be configured. Exits 0 when every configured source passes, 2 when one fails.

    \b
    Example:
      SLACK_BOT_TOKEN=xoxb-… retro sources check --source slack
      retro sources check --json | jq '.[] | select(.failed)'
    """
    from retro.timeline.harvest import check_sources, checks_exit_code

    results = check_sources(only)
    if as_json:
        click.echo(json.dumps([{**r.model_dump(), "failed": r.failed} for r in results], indent=2))
    else:
        for result in results:
            _print_check(result)
    code = checks_exit_code(results)
    if code:
        sys.exit(code)


def _print_check(r: SourceCheck) -> None:
    if r.status == "ok":
        click.echo(f"{r.name}: ok")
        for line in r.verified:
            click.echo(f"    {line}")
    elif r.status == "failed":
        click.echo(f"{r.name}: FAILED: {r.error}")
    elif r.status == "not configured":
        named = " (named with --source, so a failure)" if r.failed else ""
        click.echo(f"{r.name}: not configured{named}: {r.error}")
    else:
        click.echo(f"{r.name}: no live mode (file mode only; nothing to check)")


@click.group()
def keys() -> None:
    """Store API tokens in a 0600 file in the user directory."""


@keys.command("set")
@click.argument("name")
@click.option("--value", help="The secret; prompted for (hidden) when omitted.")
def keys_set(name: str, value: str | None) -> None:
    """Save a token, e.g. `retro keys set slack`.

    Names: slack, pagerduty, opsgenie, jira, jira.pat, openai, alertmanager.
    """
    from retro.config import save_key

    secret = value or click.prompt(f"Value for {name}", hide_input=True)
    path = save_key(name, secret)
    info(f"saved {name} to {path}")


@keys.command("list")
def keys_list() -> None:
    """List the names of stored keys (never their values)."""
    from retro.config import load_keys

    for name in sorted(load_keys()):
        click.echo(name)


@keys.command("path")
def keys_path_cmd() -> None:
    """Print the keys file's path."""
    from retro.config import keys_path

    click.echo(str(keys_path()))
