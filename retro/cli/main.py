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


def _debug() -> bool:
    """RETRO_DEBUG (or `debug` in retro.toml) shows tracebacks; a bad setting never hides one."""
    try:
        from retro.config import settings

        return settings().debug
    except RetroError:
        return bool(os.environ.get("RETRO_DEBUG"))


class RetroGroup(click.Group):
    """A click group that reports RetroError as one clear line with exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RetroError as exc:
            if _debug():
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
    from retro.cli import actions, draft, evals, index, report, sources, timeline

    for command in (
        timeline.timeline,
        timeline.harvest,
        sources.sources,
        sources.keys,
        sources.connectors_group,
        draft.generate,
        draft.show,
        draft.check,
        draft.demo,
        index.index,
        index.search,
        index.similar,
        actions.file_actions,
        actions.sync_actions,
        evals.eval_command,
        *report.COMMANDS,
    ):
        cli.add_command(command)


_register()


def main() -> None:
    cli()
