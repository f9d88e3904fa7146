"""Entry point: the click group. Commands live in one module per command group.

Errors are turned into one line and exit code 2 here, in a single place. RETRO_DEBUG=1 shows
the traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from retro.errors import RetroError


class RetroGroup(click.Group):
    """A click group that reports RetroError as one clear line with exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RetroError as exc:
            if os.environ.get("RETRO_DEBUG"):
                raise
            click.echo(f"retro: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=RetroGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="retro-postmortem")
def cli() -> None:
    """retro: blameless incident postmortems from Slack, alerts and tickets.

    \b
    Typical flow:
      retro harvest --incident INC-42 --slack-channel inc-42 --pagerduty P1ABC --out bundle/
      retro generate --bundle bundle/ --out postmortems/INC-42.md
      retro check postmortems/INC-42.md
      retro file-actions postmortems/INC-42.md --project OPS

    Set RETRO_DEBUG=1 to see tracebacks.
    """


def _register() -> None:
    from retro.cli import sources, timeline

    for command in (timeline.timeline, timeline.harvest):
        cli.add_command(command)
    for group in (sources.sources, sources.keys, sources.connectors_group):
        cli.add_command(group)
    _register_optional()


def _register_optional() -> None:
    """Command modules built by later stages; each is added when present."""
    import importlib

    for module_name, names in (
        ("retro.cli.draft", ("generate", "show", "check", "demo")),
        ("retro.cli.index", ("index", "search", "similar")),
        ("retro.cli.actions", ("file_actions", "sync_actions")),
        ("retro.cli.evals", ("eval_command",)),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        for name in names:
            command = getattr(module, name, None)
            if isinstance(command, click.Command):
                cli.add_command(command)


_register()


def main() -> None:
    cli()
