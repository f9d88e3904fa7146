"""Where the report's incidents come from: folders of drafts, and the similarity index.

The index (SQLite or PostgreSQL) holds three kinds of records; the report takes two:
- imported records (`retro import`), whose facts travel in `extra["retro_import"]`;
- postmortems indexed from Markdown (`retro index add`), read back from their file when it is
  still there (the Markdown is the source of truth: edits count), otherwise from the record;
- corpus records (public postmortems of other companies, JSON/JSONL) are not your incidents:
  they are left out and counted.

An imported record that names the same incident as a draft (the draft's id, or one of its
`aliases`, equals the record's vendor id or one of its aliases: an incident.io reference, a
PagerDuty incident number, a Jira key) is merged into the draft; the draft's own milestones are
never overwritten (facts.merge).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retro.connector import ImportedIncident
from retro.insights.drafts import (
    FactsCache,
    apply_git,
    default_cache,
    draft_facts,
    git_dates,
    iter_drafts,
    read_drafts,
)
from retro.insights.facts import IncidentFacts, from_import, merge

if TYPE_CHECKING:
    from retro.index.store import IncidentRecord, Store

IMPORT_KEY = "retro_import"
IMPORT_PREFIX = "import:"


@dataclass
class Loaded:
    """The incidents found, and what was left out and why."""

    incidents: list[IncidentFacts] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    git: bool = False

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n


def load(
    *,
    drafts: Iterable[Path] = (),
    store: Store | None = None,
    use_git: bool = True,
    lenient: bool = False,
    cache: bool = True,
) -> Loaded:
    """Every incident from the drafts and the index, merged by id and alias. `cache` keeps
    the facts of drafts already read (drafts.FactsCache)."""
    held = default_cache() if cache else None
    try:
        return _load(drafts, store, use_git, lenient, held)
    finally:
        if held is not None:
            held.close()


def _load(
    drafts: Iterable[Path],
    store: Store | None,
    use_git: bool,
    lenient: bool,
    cache: FactsCache | None,
) -> Loaded:
    out = Loaded()
    paths = list(iter_drafts(drafts))
    records = list(index_records(store)) if store is not None else []
    seen_files = {str(p) for p in paths}
    read = _read_all([*paths, *_record_files(records, seen_files)], cache)
    by_id: dict[str, IncidentFacts] = {}
    for path in paths:
        facts = _draft(path, out, lenient, cache, read)
        if facts is not None:
            by_id[facts.id] = facts
    if paths:
        out.sources.append(f"{len(paths)} drafts")
    imported: list[IncidentFacts] = []
    if store is not None:
        for record in records:
            facts = _from_record(record, seen_files, out, lenient, cache, read)
            if facts is None:
                continue
            if facts.imported_from:
                imported.append(facts)
            else:
                by_id.setdefault(facts.id, facts)
        out.sources.append(f"index {store.url} ({len(records)} records)")
    if use_git:
        files = [Path(f.path) for f in by_id.values() if f.origin == "draft" and f.path]
        dates = git_dates(files)
        out.git = dates.used
        if dates.used:
            for facts in by_id.values():
                apply_git(facts, dates)
    _merge_imports(by_id, imported)
    out.incidents = list(by_id.values())
    return out


def _record_files(records: list[IncidentRecord], seen_files: set[str]) -> list[Path]:
    """The draft files behind indexed postmortems (the ones `_from_record` reads)."""
    out = []
    for record in records:
        source = record.source or ""
        if (
            not isinstance(record.extra.get(IMPORT_KEY), dict)
            and source.lower().endswith(".md")
            and source not in seen_files
        ):
            out.append(Path(source))
    return [p for p in out if p.is_file()]


def _read_all(paths: list[Path], cache: FactsCache | None) -> dict[Path, IncidentFacts | None]:
    """Every draft's facts in one batch (cached, or parsed on all cores); a draft that could
    not be read maps to None, and `_draft` reads it again to report why."""
    return cache.read_many(paths) if cache is not None else read_drafts(paths)


def _draft(
    path: Path,
    out: Loaded,
    lenient: bool,
    cache: FactsCache | None,
    read: dict[Path, IncidentFacts | None] | None = None,
) -> IncidentFacts | None:
    from retro.errors import BundleError

    known = (read or {}).get(path)
    if known is not None:
        return known
    try:
        return cache.read(path) if cache is not None else draft_facts(path)
    except BundleError:
        if not lenient:
            raise
        out.skip("draft that could not be read")
        return None


def _merge_imports(by_id: dict[str, IncidentFacts], imported: list[IncidentFacts]) -> None:
    names: dict[str, str] = {}
    for facts in by_id.values():
        for name in (facts.id, *facts.aliases):
            names.setdefault(name.casefold(), facts.id)
    for rec in imported:
        match = next(
            (names[a.casefold()] for a in rec.aliases if a.casefold() in names),
            None,
        )
        if match is not None and by_id[match].origin == "draft":
            by_id[match] = merge(by_id[match], rec)
        else:
            by_id.setdefault(rec.id, rec)


def _from_record(
    record: IncidentRecord,
    seen_files: set[str],
    out: Loaded,
    lenient: bool,
    cache: FactsCache | None,
    read: dict[Path, IncidentFacts | None] | None = None,
) -> IncidentFacts | None:
    raw = record.extra.get(IMPORT_KEY)
    if isinstance(raw, dict):
        return from_import(ImportedIncident.model_validate(raw))
    source = record.source or ""
    if not source.lower().endswith(".md"):
        out.skip("corpus record (not one of your incidents)")
        return None
    if source in seen_files:
        return None  # the same draft was given on the command line
    path = Path(source)
    if path.is_file():
        return _draft(path, out, lenient, cache, read)
    out.skip("indexed postmortem whose file is gone (read from the index record)")
    return IncidentFacts(
        id=record.id,
        title=record.title,
        origin="draft",
        path=source,
        severity=record.severity,
        services=list(record.services),
        times={"impact_start": record.started} if record.started else {},
        origins={"impact_start": "inferred"} if record.started else {},
        has_postmortem=True,
        status="draft",
        cause=record.root_cause,
    )


# --- reading the index in bulk -------------------------------------------------------------------
# Through `Store.incident_ids` + `Store.get` where the store has them; otherwise one query on
# the `incidents` table (migration 0001) through the store's own connection.


def index_records(store: Store) -> Iterator[IncidentRecord]:
    """Every record in the index."""
    from retro.index.store import IncidentRecord

    listing = getattr(store, "incident_ids", None)
    if listing is not None:  # the Store interface lists ids: read the records through it
        ids = list(listing())
        for start in range(0, len(ids), 1000):
            yield from store.get(ids[start : start + 1000]).values()
        return
    conn: Any = getattr(store, "conn", None)
    if conn is None:
        return
    for (raw,) in conn.execute("SELECT record FROM incidents ORDER BY id").fetchall():
        yield IncidentRecord.model_validate_json(raw)
