"""`retro sources check`, `retro connectors list` and `retro keys`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from retro.cli._ui import info
from retro.errors import MissingCredential, RetroError


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
    from retro import registry
    from retro.config import field_env

    rows: list[dict[str, Any]] = []
    for name, cls in registry.connector_classes().items():
        settings = [
            {
                "name": field,
                "env": field_env(cls.Config, field),
                "description": info_.description or "",
                "required": info_.is_required(),
            }
            for field, info_ in cls.Config.model_fields.items()
        ]
        rows.append({"name": name, "title": cls.title, "settings": settings})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['name']} ({row['title']})")
        for s in row["settings"]:
            env = f" [{s['env']}]" if s["env"] else ""
            click.echo(f"    {s['name']}{env}: {s['description']}")


@click.group()
def sources() -> None:
    """Check the live sources retro harvests from."""


@sources.command("check")
@click.option("--source", "only", multiple=True, help="Check only this source (repeatable).")
def sources_check(only: tuple[str, ...]) -> None:
    """Verify credentials and token scopes for each configured source.

    A source whose token is not set is reported as not configured. Exits 2 when a configured
    source fails its check.

    \b
    Example:
      SLACK_BOT_TOKEN=xoxb-… retro sources check --source slack
    """
    from retro import registry
    from retro.config import connector_config

    failed = 0
    for name, cls in registry.connector_classes().items():
        if only and name not in only:
            continue
        connector = cls()
        try:
            config = connector_config(name, cls.title, cls.Config)
            lines = connector.check(config)
        except MissingCredential as exc:
            click.echo(f"{name}: not configured ({exc})")
            failed += bool(only)
            continue
        except RetroError as exc:
            click.echo(f"{name}: FAILED: {exc}")
            failed += 1
            continue
        click.echo(f"{name}: ok")
        for line in lines:
            click.echo(f"    {line}")
    if failed:
        sys.exit(2)


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
