"""`retro timeline` and `retro harvest`: from sources to one normalized timeline."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click

from retro.cli._ui import info, progress_bar
from retro.timeline.output import render_csv, render_markdown, write_json


@click.command()
@click.option(
    "--bundle",
    "bundle_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="The incident bundle folder (see docs/bundle.md).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "json", "csv"]),
    default="md",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--lenient",
    is_flag=True,
    help="Skip and count malformed records instead of stopping at the first one.",
)
def timeline(bundle_dir: Path, fmt: str, lenient: bool) -> None:
    """Print a bundle's merged, deduplicated timeline.

    \b
    Example:
      retro timeline --bundle retro/sample/bundle --format json | jq '.[0]'
    """
    from retro.timeline.read import read_timeline

    with _no_cyclic_gc():
        with progress_bar() as progress:
            tl = read_timeline(bundle_dir, lenient=lenient, progress=progress)
        if fmt == "json":
            sys.stdout.flush()
            write_json(tl, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        elif fmt == "csv":
            click.echo(render_csv(tl), nl=False)
        else:
            click.echo(render_markdown(tl), nl=False)
    sys.stdout.flush()  # the table ends before the summary line on a shared terminal or log
    if tl.window:
        info(
            f"{len(tl.events)} events in window; dropped: "
            + (", ".join(f"{n} {r}" for r, n in tl.dropped.items()) or "none")
        )


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while a bundle is read and printed.

    Reading builds millions of small acyclic objects (parsed JSON, events, output rows), and
    the collector rescanning them costs about a fifth of the run on big bundles; reference
    counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _parse_when(value: str | None) -> datetime | None:
    if not value:
        return None
    from retro.connector import parse_time

    return parse_time(value, path="--since/--until", record="option")


@click.command()
@click.option("--incident", "incident_id", required=True, help="Incident id, e.g. INC-42.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Bundle folder to write.",
)
@click.option("--slack-channel", multiple=True, help="Slack channel name or id (repeatable).")
@click.option("--pagerduty", multiple=True, help="PagerDuty incident id (repeatable).")
@click.option("--opsgenie-alert", multiple=True, help="Opsgenie alert id (repeatable).")
@click.option("--opsgenie-incident", multiple=True, help="Opsgenie incident id (repeatable).")
@click.option("--jira", "jira_keys", multiple=True, help="Jira issue key (repeatable).")
@click.option("--alertmanager", is_flag=True, help="Also snapshot Alertmanager's current alerts.")
@click.option(
    "--from",
    "targets",
    multiple=True,
    metavar="SOURCE=WHAT",
    help="What a source fetches, for any connector (repeatable): slack=inc-42, "
    "pagerduty=Q1ABCD, opsgenie=incident:42 (`retro connectors list` shows each one's form).",
)
@click.option("--since", help="Window start, ISO 8601 with zone.")
@click.option("--until", help="Window end, ISO 8601 with zone.")
@click.option("--title", help="Incident title for incident.yaml.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Fetch again the sources an earlier run into --out already harvested completely.",
)
def harvest(
    incident_id: str,
    out_dir: Path,
    slack_channel: tuple[str, ...],
    pagerduty: tuple[str, ...],
    opsgenie_alert: tuple[str, ...],
    opsgenie_incident: tuple[str, ...],
    jira_keys: tuple[str, ...],
    alertmanager: bool,
    targets: tuple[str, ...],
    since: str | None,
    until: str | None,
    title: str | None,
    refresh: bool,
) -> None:
    """Fetch an incident's data from live APIs into a bundle folder.

    Tokens come from environment variables or `retro keys set NAME` (see docs/connectors).
    Each source is fetched on its own: one that fails is reported (exit 2) and the others still
    run. Run the same command again to resume: complete sources are not fetched again, and a
    stopped one goes on where it stopped (.harvest.json in the bundle records each source).

    \b
    Example:
      retro harvest --incident INC-42 --slack-channel inc-42-checkout \\
        --pagerduty Q1ABCD --jira INC-42 --out bundles/INC-42
      retro harvest --incident INC-42 --from slack=inc-42 --from github=acme/checkout \\
        --out bundles/INC-42
    """
    from retro.connector import IncidentRef
    from retro.timeline.harvest import harvest as run_harvest
    from retro.timeline.harvest import parse_targets

    wanted: dict[str, list[str]] = {
        "slack": list(slack_channel),
        "pagerduty": list(pagerduty),
        "opsgenie": [f"alert:{a}" for a in opsgenie_alert]
        + [f"incident:{i}" for i in opsgenie_incident],
        "jira": list(jira_keys),
        "alertmanager": ["current"] if alertmanager else [],
    }
    for name, values in parse_targets(targets).items():
        wanted.setdefault(name, []).extend(values)
    ref = IncidentRef(
        incident_id=incident_id,
        targets={name: values for name, values in wanted.items() if values},
        since=_parse_when(since),
        until=_parse_when(until),
    )
    with progress_bar() as progress:
        outcomes = run_harvest(
            ref, out_dir, title=title, refresh=refresh, progress=progress, log=info
        )
    click.echo(str(out_dir))
    failures = [o.error for o in outcomes if o.error]
    if failures:
        click.echo(
            f"retro: error: {len(failures)} source(s) failed: "
            + " | ".join(failures)
            + "; run the same command again to resume",
            err=True,
        )
        sys.exit(2)
