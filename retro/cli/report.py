"""`retro report` (the reliability report) and `retro import` (incident history into the index).

Only click and the standard library load at module level; the report, numpy and the database
drivers load inside the commands.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from retro.cli._ui import info, progress_bar

_DATE = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"])
_DB_HELP = "Index URL: sqlite:///path.db or postgresql://user@host/db (default: user data dir)."


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@click.command("report")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--db", envvar="RETRO_DATABASE_URL", help=_DB_HELP)
@click.option("--no-index", is_flag=True, help="Read only the drafts given, not the index.")
@click.option("--since", type=_DATE, help="Incidents that started on or after this date (UTC).")
@click.option("--until", type=_DATE, help="Incidents that started before this date (UTC).")
@click.option("--severity", multiple=True, help="Only this severity (repeatable), e.g. SEV1.")
@click.option("--service", multiple=True, help="Only incidents on this service (repeatable).")
@click.option("--team", multiple=True, help="Only incidents of this team (repeatable).")
@click.option(
    "--group-by",
    type=click.Choice(["month", "quarter"]),
    default="month",
    show_default=True,
    help="Period of each row and chart point.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write report.md, report.html, report.json and one CSV per table into this folder.",
)
@click.option("--as-of", type=_DATE, help="Date that decides what is overdue (default: now).")
@click.option("--no-repeats", is_flag=True, help="Skip repeat-incident detection.")
@click.option("--no-git", is_flag=True, help="Do not read review and close dates from git.")
@click.option("--no-cache", is_flag=True, help="Read every draft again (no facts cache).")
@click.option(
    "--lenient", is_flag=True, help="Skip unreadable drafts (counted) instead of failing."
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON on stdout.")
def report(
    paths: tuple[Path, ...],
    db: str | None,
    no_index: bool,
    since: datetime | None,
    until: datetime | None,
    severity: tuple[str, ...],
    service: tuple[str, ...],
    team: tuple[str, ...],
    group_by: str,
    out_dir: Path | None,
    as_of: datetime | None,
    no_repeats: bool,
    no_git: bool,
    no_cache: bool,
    lenient: bool,
    as_json: bool,
) -> None:
    """The reliability report over postmortem drafts and/or the index (imported history).

    Time to detect, acknowledge, mitigate and resolve (median, p90, n; means beside them),
    incidents by severity and service, customer-impact minutes, repeat incidents, action-item
    follow-through and postmortem coverage, per month or quarter. Definitions: docs/report.md.

    The index is read when --db (or RETRO_DATABASE_URL) is set, or when no PATHS are given.

    \b
    Examples:
      retro report postmortems/ --out report/
      retro report --since 2024-01-01 --group-by quarter --severity SEV1 --severity SEV2
      retro report postmortems/ --db postgresql://retro@db/retro --json > report.json
    """
    from retro.insights import Filters, make_report
    from retro.insights.output import render_markdown, report_json, write_outputs

    started = time.monotonic()
    filters = Filters(
        since=_utc(since),
        until=_utc(until),
        severities=list(severity),
        services=list(service),
        teams=list(team),
    )
    with progress_bar() as progress:
        result = make_report(
            drafts=paths,
            db=db,
            use_index=not no_index,
            filters=filters,
            group_by=group_by,  # type: ignore[arg-type]
            repeats=not no_repeats,
            use_git=not no_git,
            cache=not no_cache,
            as_of=_utc(as_of),
            lenient=lenient,
            progress=progress,
        )
    if out_dir is not None:
        written = write_outputs(result, out_dir)
        info(f"wrote {len(written)} files to {out_dir}/ (open {out_dir / 'report.html'})")
    if as_json:
        click.echo(json.dumps(report_json(result), indent=2, ensure_ascii=False))
    elif out_dir is None:
        click.echo(render_markdown(result), nl=False)
    info(f"report over {result.incidents} incidents in {time.monotonic() - started:.1f}s")


@click.command("import")
@click.argument("source")
@click.option(
    "--files",
    "files",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Read bodies saved from the API (files or folders) instead of calling it.",
)
@click.option(
    "--since", type=_DATE, help="Incidents from this date (UTC; live default: a year ago)."
)
@click.option("--until", type=_DATE, help="Incidents before this date (UTC; default: now).")
@click.option(
    "--what", multiple=True, help="Kinds of record, e.g. --what incidents --what alerts (Opsgenie)."
)
@click.option("--filter", "vendor_filter", help="A vendor-side filter: Jira JQL, Opsgenie query.")
@click.option("--db", envvar="RETRO_DATABASE_URL", help=_DB_HELP)
@click.option("--embedder", envvar="RETRO_EMBEDDER", help="minilm (default), or openai:<model>.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
def import_command(
    source: str,
    files: tuple[Path, ...],
    since: datetime | None,
    until: datetime | None,
    what: tuple[str, ...],
    vendor_filter: str | None,
    db: str | None,
    embedder: str | None,
    as_json: bool,
) -> None:
    """Import past incident records (not bundles) into the index, for `retro report`.

    SOURCE is a connector with a history import: pagerduty, opsgenie, jira, statuspage, rootly,
    incident_io (see `retro connectors list`). Live mode uses the same tokens as harvest;
    --files reads bodies saved from the API. Records are marked as imported, indexed for
    similarity by title and description, and never replace a postmortem's own milestones.
    Running the same import again adds nothing.

    \b
    Examples:
      retro import pagerduty --since 2024-01-01
      retro import jira --filter 'project = OPS AND issuetype = Incident'
      retro import incident_io --files exports/incident_io/
    """
    from retro.connector import HistoryQuery
    from retro.index.embeddings import embedder_for_model, get_embedder
    from retro.index.store import open_store
    from retro.insights.importer import run_import

    started = time.monotonic()
    query = HistoryQuery(
        since=_utc(since),
        until=_utc(until),
        files=list(files),
        what=list(what),
        filter=vendor_filter,
    )
    with open_store(db) as store, progress_bar() as progress:
        bound = store.model()
        emb = embedder_for_model(bound[0]) if bound and not embedder else get_embedder(embedder)
        result = run_import(source, query, store=store, embedder=emb, progress=progress)
    if as_json:
        click.echo(json.dumps(result.__dict__, indent=2))
    skipped = sum(result.skipped.values())
    info(
        f"{source} ({result.mode}): {result.fetched} records, {result.added} added, "
        f"{result.updated} updated, {result.unchanged} unchanged"
        + (f", {skipped} skipped ({', '.join(result.skipped)})" if skipped else "")
        + f"; index {result.index}; {time.monotonic() - started:.1f}s"
    )


COMMANDS = (report, import_command)
