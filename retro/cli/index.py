"""`retro index add|stats|remove`, `retro search` and `retro similar`: the similar-incident index.

Only click and the standard library are imported at module level: numpy, the model and the
database drivers load inside the commands, so `retro --help` stays fast.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from retro.cli._ui import info, progress_bar
from retro.errors import StoreError

if TYPE_CHECKING:
    from retro.index.embeddings import Embedder
    from retro.index.store import SearchFilter, Store
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


def _filter(service: str | None, severity: str | None, since: datetime | None) -> SearchFilter:
    from retro.index.store import SearchFilter

    when = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    return SearchFilter(service=service, severity=severity, since=when)


def _open_existing(db: str | None) -> Store:
    """Open an index that must already hold incidents."""
    from retro.index.store import index_exists, open_store, resolve_url

    if not index_exists(db):
        raise StoreError(
            f"No index at {resolve_url(db)}",
            hint="run `retro index add PATH...` first, or set RETRO_DATABASE_URL",
        )
    store = open_store(db)
    if store.model() is None:
        store.close()
        raise StoreError(f"The index at {store.url} is empty", hint="run `retro index add PATH...`")
    return store


def _embedder(store: Store, spec: str | None) -> Embedder:
    from retro.index.embeddings import embedder_for_model, get_embedder

    bound = store.model()
    if spec is None and bound is not None:
        return embedder_for_model(bound[0])
    return get_embedder(spec)


def _print_results(results: list[SimilarIncident], as_json: bool, *, full: bool = False) -> None:
    if as_json:
        keys = {"id", "title", "score", "url", "why"} | ({"open_action_items"} if full else set())
        click.echo(json.dumps([r.model_dump(include=keys) for r in results], indent=2))
        return
    if not results:
        click.echo("No matching incidents.")
        return
    for n, r in enumerate(results, start=1):
        click.echo(f"{n:2}. {r.score:.2f}  {r.id}  {r.title}")
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
    from retro.index.corpus import iter_path
    from retro.index.similarity import index_incidents
    from retro.index.store import open_store

    started = time.monotonic()
    items = [item for path in paths for item in iter_path(path)]
    with open_store(db) as store:
        emb = _embedder(store, embedder)
        with progress_bar() as progress:
            done = 0

            def step(n: int) -> None:
                nonlocal done
                done += n
                progress("indexing", done, len(items))

            report = index_incidents(items, store=store, embedder=emb, progress=step)
        store.warm()  # so the first `retro search` after indexing starts fast too
        info(
            f"indexed {report.incidents} incidents ({report.chunks} texts: {report.embedded} "
            f"embedded, {report.reused} unchanged) into {store.url} "
            f"in {time.monotonic() - started:.1f}s"
        )


@index.command("stats")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def index_stats(db: str | None, as_json: bool) -> None:
    """Show what the index holds.

    \b
    Example:
      retro index stats --json
    """
    with _open_existing_or_empty(db) as store:
        stats = store.stats()
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


def _open_existing_or_empty(db: str | None) -> Store:
    from retro.index.store import index_exists, open_store, resolve_url

    if not index_exists(db):
        raise StoreError(
            f"No index at {resolve_url(db)}", hint="run `retro index add PATH...` first"
        )
    return open_store(db)


@index.command("remove")
@click.argument("ids", nargs=-1, required=True)
@_db_option
def index_remove(ids: tuple[str, ...], db: str | None) -> None:
    """Remove incidents from the index by id.

    \b
    Example:
      retro index remove INC-42
    """
    with _open_existing_or_empty(db) as store:
        for incident_id in ids:
            if not store.delete(incident_id):
                raise StoreError(
                    f"No incident {incident_id!r} in {store.url}", hint="see `retro index stats`"
                )
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
    from retro.index.similarity import search as run_search

    with _open_existing(db) as store:
        emb = _embedder(store, embedder) if mode != "lexical" else None
        results = run_search(
            text,
            store=store,
            embedder=emb,
            k=k,
            flt=_filter(service, severity, since),
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

    Flags past incidents whose root cause matches and whose action items are still open.

    \b
    Example:
      retro similar postmortems/INC-42.md --json
    """
    from retro.index.corpus import postmortem_from_file
    from retro.index.similarity import find_similar

    pm = postmortem_from_file(file)
    with _open_existing(db) as store:
        results = find_similar(
            pm,
            store=store,
            embedder=_embedder(store, embedder),
            k=k,
            flt=_filter(service, severity, since),
        )
    _print_results(results, as_json, full=True)
