"""`retro import`: incident records from a connector's history into the index.

Each record is stored as an index record with the id `<source>:<vendor id>` (so it can never
replace a postmortem's own record, and a second import of the same history replaces instead of
adding), its facts in `extra["retro_import"]`, and one text to search by: its title and
description (corpus_chunks, as for any corpus record). A record whose facts and text did not
change is left alone, so a second import embeds and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from retro import registry
from retro.config import connector_config
from retro.connector import HistoryQuery, ImportedIncident
from retro.errors import ConfigError
from retro.insights.sources import IMPORT_KEY, IMPORT_PREFIX
from retro.models import Progress, no_progress

if TYPE_CHECKING:
    from retro.index.embeddings import Embedder
    from retro.index.store import Chunk, IncidentRecord, Store

BATCH = 500


@dataclass
class ImportResult:
    source: str
    mode: str
    fetched: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    embedded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    index: str = ""


def history_sources() -> list[str]:
    """Registered connectors that offer a history import."""
    return [n for n, cls in registry.connector_classes().items() if cls.imports_history()]


def fetch(
    source: str, query: HistoryQuery, progress: Progress = no_progress
) -> list[ImportedIncident]:
    """The connector's records, one per id (a later copy of an id replaces the earlier)."""
    connector = registry.get(source)
    if not connector.imports_history():
        raise ConfigError(
            f"{source} has no history import",
            hint=f"choose one of: {', '.join(history_sources())}",
        )
    config = connector_config(source, connector.title, connector.Config)
    records: dict[str, ImportedIncident] = {}
    for record in connector.import_history(query, config, progress):
        if record.id in records:
            query.skip(f"{source}: the same record twice (kept the later)")
        records[record.id] = record
    return list(records.values())


def index_record(rec: ImportedIncident) -> tuple[IncidentRecord, list[Chunk]]:
    """The index record and searchable text of one imported incident, made by the index's own
    corpus reader: a {id, title, text, ...} record whose other keys are kept in `extra`."""
    from pathlib import Path

    from retro.index.corpus import corpus_item

    started = next(
        (rec.times[n] for n in ("impact_start", "detected", "declared") if n in rec.times), None
    )
    obj = {
        "id": f"{rec.source}:{rec.id}",
        "title": rec.title,
        "text": rec.description,
        "url": rec.url,
        "started": started.isoformat() if started else None,
        "severity": rec.severity,
        "services": list(rec.services),
        "action_items": [
            {"title": a.title, "status": a.status, "tracking": a.tracking} for a in rec.action_items
        ],
        IMPORT_KEY: rec.model_dump(mode="json"),
    }
    return corpus_item(obj, Path(IMPORT_PREFIX + rec.source), rec.provenance or rec.id)


def store_records(
    records: list[ImportedIncident],
    *,
    store: Store,
    embedder: Embedder,
    result: ImportResult,
    progress: Progress = no_progress,
) -> ImportResult:
    """Add new and changed records to the index; count what was added, updated, unchanged."""
    from retro.index.similarity import index_incidents

    def changed() -> Iterator[tuple[IncidentRecord, list[Chunk]]]:
        for start in range(0, len(records), BATCH):
            part = [index_record(r) for r in records[start : start + BATCH]]
            held = store.get([rec.id for rec, _ in part])
            for rec, chunks in part:
                old = held.get(rec.id)
                if old is None:
                    result.added += 1
                elif old.model_dump(exclude={"extra"}) == rec.model_dump(exclude={"extra"}) and (
                    old.extra == rec.extra
                ):
                    result.unchanged += 1
                    continue
                else:
                    result.updated += 1
                yield rec, chunks
            progress("indexing", min(start + BATCH, len(records)), len(records))

    report = index_incidents(changed(), store=store, embedder=embedder)
    result.embedded = report.embedded
    result.index = store.url
    return result


def run_import(
    source: str,
    query: HistoryQuery,
    *,
    store: Store,
    embedder: Embedder,
    progress: Progress = no_progress,
) -> ImportResult:
    """Fetch a source's history and store it in the index."""
    mode = "files" if query.files else "live API"
    records = fetch(source, query, progress)
    result = ImportResult(source=source, mode=mode, fetched=len(records))
    store_records(records, store=store, embedder=embedder, result=result, progress=progress)
    result.skipped = dict(query.skipped)
    return result
