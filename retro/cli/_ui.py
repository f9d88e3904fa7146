"""Terminal helpers: progress on stderr, results on stdout."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from retro.models import Progress


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Progress]:
    """A progress callback drawn with rich on stderr when stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda label, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
    from rich.progress import Progress as RichProgress

    tasks: dict[str, Any] = {}
    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:

        def update(label: str, done: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


def info(message: str) -> None:
    click.echo(message, err=True)
