"""`retro index add|stats|remove`, `retro search` and `retro similar`: the similar-incident index.

Each command parses its options, calls one function of retro.index.service and prints the result.
Only click and the standard library are imported at module level: numpy, the model and the
database drivers load inside the commands, so `retro --help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from retro.cli._ui import info, progress_bar

if TYPE_CHECKING:
    from retro.models import SimilarIncident

_DB_HELP = "Index URL: sqlite:///path.db or postgresql://user@host/db (default: user data dir)."
_EMBEDDER_HELP = "minilm (default), sentence-transformers, or openai:<model>."


def _db_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--db", "db", envvar="RETRO_DATABASE_URL", help=_DB_HELP)(f)


def _embedder_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--embedder", envvar="RETRO_EMBEDDER", help=_EMBEDDER_HELP)(f)


def _filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--since",
        type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]),
        help="Only incidents that started on or after this date (UTC).",
    )(f)
    f = click.option("--severity", help="Only incidents of this severity, e.g. SEV1.")(f)
    f = click.option("--service", help="Only incidents that involved this service.")(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(f)
    return click.option("-k", "k", default=5, show_default=True, help="How many incidents.")(f)


def _print_results(results: list[SimilarIncident], as_json: bool, *, full: bool = False) -> None:
    if as_json:
        keys = {"id", "title", "score", "url", "why"}
        keys |= {"repeat", "open_action_items"} if full else set()
        click.echo(json.dumps([r.model_dump(include=keys) for r in results], indent=2))
        return
    if not results:
        click.echo("No matching incidents.")
        return
    for n, r in enumerate(results, start=1):
        mark = "  (repeat)" if r.repeat else ""
        click.echo(f"{n:2}. {r.score:.2f}  {r.id}  {r.title}{mark}")
        if r.url:
            click.echo(f"    {r.url}")
        for line in r.why:
            click.echo(f"    - {line}")
        for item in r.open_action_items:
            click.echo(f"    ! this repeats {r.id}; its action item {item} is still open")


@click.group("index")
def index() -> None:
    """Build and inspect the index of past incidents.

    \b
    Examples:
      retro index add postmortems/*.md
      retro index add corpus.jsonl
      retro index stats
    """


@index.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@_db_option
@_embedder_option
def index_add(paths: tuple[Path, ...], db: str | None, embedder: str | None) -> None:
    """Index Markdown postmortems or a JSON/JSONL corpus of {id, title, text, url, date, ...}.

    Folders are read recursively. Unchanged texts are not embedded again.

    \b
    Example:
      retro index add postmortems/ past-incidents.jsonl
    """
    from retro.index.service import add_paths

    with progress_bar() as progress:
        done = add_paths(list(paths), url=db, embedder=embedder, progress=progress)
    info(done.line())


@index.command("stats")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def index_stats(db: str | None, as_json: bool) -> None:
    """Show what the index holds.

    \b
    Example:
      retro index stats --json
    """
    from retro.index.service import stats as index_stats_of

    stats = index_stats_of(url=db)
    if as_json:
        click.echo(stats.model_dump_json(indent=2))
        return
    click.echo(f"index:      {stats.url} ({stats.backend}, schema v{stats.schema_version})")
    click.echo(f"incidents:  {stats.incidents}")
    fields = ", ".join(f"{k} {v}" for k, v in stats.by_field.items())
    click.echo(f"texts:      {stats.chunks}" + (f" ({fields})" if fields else ""))
    click.echo(
        f"embedder:   {stats.embedder or '-'}" + (f" ({stats.dim} dims)" if stats.dim else "")
    )
    click.echo(f"services:   {stats.services}")
    if stats.oldest:
        click.echo(f"dates:      {stats.oldest} .. {stats.newest}")


@index.command("remove")
@click.argument("ids", nargs=-1, required=True)
@_db_option
def index_remove(ids: tuple[str, ...], db: str | None) -> None:
    """Remove incidents from the index by id.

    \b
    Example:
      retro index remove INC-42
    """
    from retro.index.service import remove

    for incident_id in remove(ids, url=db):
        info(f"removed {incident_id}")


@click.command("search")
@click.argument("text")
@_filter_options
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "lexical", "vector"]),
    default="hybrid",
    show_default=True,
    help="Rank by words, by meaning, or both fused.",
)
@_db_option
@_embedder_option
def search(
    text: str,
    k: int,
    as_json: bool,
    service: str | None,
    severity: str | None,
    since: datetime | None,
    mode: str,
    db: str | None,
    embedder: str | None,
) -> None:
    """Search past incidents by meaning and words.

    \b
    Examples:
      retro search "database connection pool exhausted after deploy"
      retro search "certificate expired" -k 3 --service api --since 2024-01-01 --json
    """
    from retro.index.service import search_filter, search_text

    results = search_text(
        text,
        url=db,
        embedder=embedder,
        k=k,
        flt=search_filter(service, severity, since),
        mode=mode,  # type: ignore[arg-type]
    )
    _print_results(results, as_json)


@click.command("similar")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@_filter_options
@_db_option
@_embedder_option
def similar(
    file: Path,
    k: int,
    as_json: bool,
    service: str | None,
    severity: str | None,
    since: datetime | None,
    db: str | None,
    embedder: str | None,
) -> None:
    """Past incidents similar to a postmortem (Markdown, or one JSON record).

    The score is the repeat measure (cosine of the two incidents' profiles); results at or above
    the calibrated threshold are marked as repeats, with their action items still open.

    \b
    Example:
      retro similar postmortems/INC-42.md --json
    """
    from retro.index.service import search_filter, similar_to_file

    results = similar_to_file(
        file, url=db, embedder=embedder, k=k, flt=search_filter(service, severity, since)
    )
    _print_results(results, as_json, full=True)
