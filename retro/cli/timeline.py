"""`retro timeline` and `retro harvest`: from sources to one normalized timeline."""

from __future__ import annotations

import csv
import gc
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml

from retro.cli._ui import info, progress_bar
from retro.errors import ConfigError, RetroError
from retro.models import Timeline, TimelineEvent


def actor_label(event: TimelineEvent, timeline: Timeline) -> str:
    """The actor's display name, as the timeline command shows it."""
    if event.actor is None:
        return ""
    person = timeline.people.get(event.actor.person or "")
    name = (person.name if person else None) or event.actor.name or event.actor.id or ""
    return f"{name} (bot)" if event.is_bot and name else name


def event_rows(timeline: Timeline, events: list[TimelineEvent]) -> list[dict[str, Any]]:
    """One row per event: what `retro timeline --format json` prints for it.

    `at` stays a UTC datetime for the writer to format. Events share their actors, so each
    actor's label is worked out once per call.
    """
    labels: dict[tuple[int, bool], tuple[str, str | None]] = {}
    rows = []
    for event in events:
        actor = event.actor
        label, person = "", None
        if actor is not None:
            known = labels.get((id(actor), event.is_bot))
            if known is None:
                known = labels[(id(actor), event.is_bot)] = (
                    actor_label(event, timeline),
                    actor.person,
                )
            label, person = known
        provenance = event.provenance
        rows.append(
            {
                "id": event.id,
                "at": event.at,
                "source": event.source,
                "kind": event.kind,
                "actor": label,
                "person": person,
                "text": event.text,
                "url": event.url,
                "thread": event.thread,
                "links": event.links,
                "duplicate_of": event.duplicate_of,
                "provenance": provenance.file + " " + provenance.record,
            }
        )
    return rows


def write_json(timeline: Timeline) -> None:
    """Print the rows as `json.dumps(rows, indent=2, ensure_ascii=False)` would, but fast.

    orjson writes the same bytes for these flat rows about five times faster. Rows are built
    and written a slice at a time, so a big timeline is never held as rows and text at once.
    """
    import orjson

    events = timeline.events
    if not events:
        click.echo("[]")
        return
    for start in range(0, len(events), _ROWS_PER_SLICE):
        rows = event_rows(timeline, events[start : start + _ROWS_PER_SLICE])
        text = orjson.dumps(rows, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z)
        # text is "[\n  {...},\n  {...}\n]": its inside joins the slices' insides.
        click.echo((b"[\n" if start == 0 else b",\n") + text[2:-2], nl=False)
    click.echo(b"\n]\n", nl=False)


_ROWS_PER_SLICE = 5000


def render_markdown(timeline: Timeline) -> str:
    lines = [f"# Timeline: {timeline.incident.id}", ""]
    if timeline.window:
        w = timeline.window
        lines += [
            f"Window: {w.start:%Y-%m-%d %H:%M} to {w.end:%Y-%m-%d %H:%M} UTC ({w.reason})",
            "",
        ]
    lines += ["| Time (UTC) | Source | Kind | Actor | Event | Id |", "|---|---|---|---|---|---|"]
    for event in timeline.events:
        text = " ".join(event.text.split())[:200].replace("|", "\\|")
        if event.duplicate_of:
            text = f"(same alert as {event.duplicate_of}) {text}"
        lines.append(
            f"| {event.at:%Y-%m-%d %H:%M:%S} | {event.source} | {event.kind} | "
            f"{actor_label(event, timeline)} | {text} | {event.id} |"
        )
    lines += ["", "## Sources", ""]
    for report in timeline.sources:
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(report.skipped.items())) or "none"
        lines.append(
            f"- {report.name}: {report.status}, {len(report.files)} files, "
            f"{report.events} events; skipped: {skipped}"
        )
    for reason, n in sorted(timeline.dropped.items()):
        lines.append(f"- dropped: {n} {reason}")
    return "\n".join(lines) + "\n"


def render_csv(timeline: Timeline) -> str:
    out = io.StringIO()
    fields = ["id", "at", "source", "kind", "actor", "text", "url", "provenance"]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in event_rows(timeline, timeline.events):
        row["at"] = row["at"].isoformat().replace("+00:00", "Z")
        writer.writerow([row[f] for f in fields])
    return out.getvalue()


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
            write_json(tl)
        elif fmt == "csv":
            click.echo(render_csv(tl), nl=False)
        else:
            click.echo(render_markdown(tl), nl=False)
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
@click.option("--since", help="Window start, ISO 8601 with zone.")
@click.option("--until", help="Window end, ISO 8601 with zone.")
@click.option("--title", help="Incident title for incident.yaml.")
def harvest(
    incident_id: str,
    out_dir: Path,
    slack_channel: tuple[str, ...],
    pagerduty: tuple[str, ...],
    opsgenie_alert: tuple[str, ...],
    opsgenie_incident: tuple[str, ...],
    jira_keys: tuple[str, ...],
    alertmanager: bool,
    since: str | None,
    until: str | None,
    title: str | None,
) -> None:
    """Fetch an incident's data from live APIs into a bundle folder.

    Tokens come from environment variables or `retro keys set NAME` (see docs/connectors).

    \b
    Example:
      retro harvest --incident INC-42 --slack-channel inc-42-checkout \\
        --pagerduty Q1ABCD --jira INC-42 --out bundles/INC-42
    """
    from retro import registry
    from retro.config import connector_config
    from retro.connector import IncidentRef

    ref = IncidentRef(
        incident_id=incident_id,
        slack_channels=list(slack_channel),
        pagerduty_incidents=list(pagerduty),
        opsgenie_alerts=list(opsgenie_alert),
        opsgenie_incidents=list(opsgenie_incident),
        jira_keys=list(jira_keys),
        alertmanager=alertmanager,
        since=_parse_when(since),
        until=_parse_when(until),
    )
    wanted = {
        "slack": ref.slack_channels,
        "pagerduty": ref.pagerduty_incidents,
        "opsgenie": ref.opsgenie_alerts or ref.opsgenie_incidents,
        "jira": ref.jira_keys,
        "alertmanager": ref.alertmanager,
    }
    names = [name for name, what in wanted.items() if what]
    if not names:
        raise ConfigError(
            "nothing to harvest",
            hint="pass --slack-channel, --pagerduty, --opsgenie-alert, --jira or --alertmanager",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_incident_yaml(out_dir, ref, title)
    failures: list[str] = []
    with progress_bar() as progress:
        for name in names:
            connector = registry.get(name)
            try:
                config = connector_config(name, connector.title, connector.Config)
                report = connector.harvest(ref, out_dir, config, progress)
            except RetroError as exc:
                failures.append(str(exc))
                info(f"  {name}: failed: {exc}")
                continue
            info(f"  {name}: {report.records} records, {len(report.files)} files")
    click.echo(str(out_dir))
    if failures:
        click.echo(
            f"retro: error: {len(failures)} source(s) failed: " + " | ".join(failures), err=True
        )
        sys.exit(2)


def _write_incident_yaml(out_dir: Path, ref: Any, title: str | None) -> None:
    path = out_dir / "incident.yaml"
    meta: dict[str, Any] = {}
    if path.exists():
        meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    meta["id"] = ref.incident_id
    if title:
        meta["title"] = title
    if ref.slack_channels:
        meta["slack_channels"] = ref.slack_channels
    if ref.since or ref.until:
        meta["window"] = {
            k: v.isoformat() for k, v in (("start", ref.since), ("end", ref.until)) if v
        }
    path.write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
