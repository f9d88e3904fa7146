"""Entry point: the click group. Commands live in one module per command group."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="retro-postmortem")
def cli() -> None:
    """retro: blameless incident postmortems from Slack, alerts and tickets."""


def main() -> None:
    cli()
