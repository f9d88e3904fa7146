"""The index commands as library functions: `retro index add|stats|remove`, `search`, `similar`.

The CLI parses options, calls one of these and prints what it returns; other code (the report,
imports, notebooks) calls them the same way. `url` is the index URL (None: RETRO_DATABASE_URL or
the default file, see retro.index.store); `embedder` an embedder spec (None: the index's own).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from retro.errors import StoreError
from retro.models import Progress, SimilarIncident, no_progress

if TYPE_CHECKING:
    from retro.index.embeddings import Embedder
    from retro.index.repeats import RepeatPair
    from retro.index.similarity import IndexReport, Mode
    from retro.index.store import SearchFilter, Store, StoreStats


@dataclass
class AddReport:
    """What `index add` did: counts, where, how long."""

    report: IndexReport
    url: str
    seconds: float

    def line(self) -> str:
        r = self.report
        return (
            f"indexed {r.incidents} incidents ({r.chunks} texts: {r.embedded} embedded, "
            f"{r.reused} unchanged) into {self.url} in {self.seconds:.1f}s"
        )


def search_filter(
    service: str | None = None, severity: str | None = None, since: datetime | None = None
) -> SearchFilter:
    """A filter from command-line values; a date without a zone is UTC."""
    from retro.index.store import SearchFilter

    when = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    return SearchFilter(service=service, severity=severity, since=when)


def open_existing(url: str | None, *, must_hold_incidents: bool = True) -> Store:
    """Open an index that exists (and, by default, holds incidents); StoreError otherwise."""
    from retro.index.store import index_exists, open_store, resolve_url

    if not index_exists(url):
        raise StoreError(
            f"No index at {resolve_url(url)}",
            hint="run `retro index add PATH...` first, or set RETRO_DATABASE_URL",
        )
    store = open_store(url)
    if must_hold_incidents and store.model() is None:
        store.close()
        raise StoreError(f"The index at {store.url} is empty", hint="run `retro index add PATH...`")
    return store


def embedder_for(store: Store, spec: str | None) -> Embedder:
    """The embedder named by spec, else the one the index was built with."""
    from retro.index.embeddings import embedder_for_model, get_embedder

    bound = store.model()
    if spec is None and bound is not None:
        return embedder_for_model(bound[0])
    return get_embedder(spec)


def add_paths(
    paths: Sequence[Path],
    *,
    url: str | None = None,
    embedder: str | None = None,
    progress: Progress = no_progress,
) -> AddReport:
    """Index Markdown postmortems and JSON/JSONL corpora (folders recursively)."""
    from retro.index.corpus import iter_path
    from retro.index.similarity import index_incidents
    from retro.index.store import open_store

    started = time.monotonic()
    items = [item for path in paths for item in iter_path(path)]
    with open_store(url) as store:
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            progress("indexing", done, len(items))

        report = index_incidents(
            items, store=store, embedder=embedder_for(store, embedder), progress=step
        )
        return AddReport(report, store.url, time.monotonic() - started)


def stats(*, url: str | None = None) -> StoreStats:
    """What the index holds."""
    with open_existing(url, must_hold_incidents=False) as store:
        return store.stats()


def remove(ids: Iterable[str], *, url: str | None = None) -> list[str]:
    """Remove incidents by id; StoreError at the first id the index does not hold."""
    removed = []
    with open_existing(url, must_hold_incidents=False) as store:
        for incident_id in ids:
            if not store.delete(incident_id):
                raise StoreError(
                    f"No incident {incident_id!r} in {store.url}", hint="see `retro index stats`"
                )
            removed.append(incident_id)
    return removed


def search_text(
    text: str,
    *,
    url: str | None = None,
    embedder: str | None = None,
    k: int = 5,
    flt: SearchFilter | None = None,
    mode: Mode = "hybrid",
) -> list[SimilarIncident]:
    """Past incidents matching a free-text query, best first."""
    from retro.index.similarity import search

    with open_existing(url) as store:
        emb = embedder_for(store, embedder) if mode != "lexical" else None
        return search(text, store=store, embedder=emb, k=k, flt=flt, mode=mode)


def similar_to_file(
    path: Path,
    *,
    url: str | None = None,
    embedder: str | None = None,
    k: int = 5,
    flt: SearchFilter | None = None,
) -> list[SimilarIncident]:
    """Past incidents most like a postmortem file (Markdown, or one JSON record)."""
    from retro.index.corpus import postmortem_from_file
    from retro.index.similarity import find_similar

    pm = postmortem_from_file(path)
    with open_existing(url) as store:
        return find_similar(pm, store=store, embedder=embedder_for(store, embedder), k=k, flt=flt)


def repeats_in_index(
    *, url: str | None = None, ids: Iterable[str] | None = None, threshold: float | None = None
) -> list[RepeatPair]:
    """Every pair of indexed incidents (or of `ids`) where the later repeats the earlier."""
    from retro.index.repeats import REPEAT_THRESHOLD, profiles_from_store, repeats

    with open_existing(url) as store:
        profiles = profiles_from_store(store, ids)
    return repeats(profiles, threshold=REPEAT_THRESHOLD if threshold is None else threshold)
