"""Insights across incidents: the reliability report (`retro report`) and history import
(`retro import`).

- `facts.py`: what the report knows about one incident; `drafts.py` reads it from drafts,
  `sources.py` from drafts and the index (imported records included), merged.
- `repeats.py`: repeat incidents by the similarity index's rule; `report.py` and `tables.py`:
  the metrics; `charts.py` and `output.py`: Markdown, CSV, JSON and the HTML page (Chart.js,
  vendored in `vendor/` with its licence).
- `importer.py`: a connector's `import_history` records into the index.

See docs/report.md for every definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from retro.insights.report import Filters, GroupBy, Report
from retro.models import Progress, no_progress

if TYPE_CHECKING:
    from retro.index.embeddings import Embedder
    from retro.index.store import Store
    from retro.insights.facts import IncidentFacts
    from retro.insights.repeats import Pair

__all__ = ["Filters", "Report", "make_report"]


def make_report(
    *,
    drafts: Sequence[Path] = (),
    db: str | None = None,
    use_index: bool = True,
    filters: Filters | None = None,
    group_by: GroupBy = "month",
    repeats: bool = True,
    use_git: bool = True,
    as_of: datetime | None = None,
    lenient: bool = False,
    cache: bool = True,
    embedder: Embedder | None = None,
    progress: Progress = no_progress,
) -> Report:
    """Load the incidents (drafts and/or index), find repeats, and build the report.

    The index is read when `db` names one (or RETRO_DATABASE_URL does), or when no drafts are
    given; `use_index=False` turns it off.
    """
    import os
    from contextlib import ExitStack

    from retro.errors import StoreError
    from retro.index.store import index_exists, open_store, resolve_url
    from retro.insights.report import build_report
    from retro.insights.sources import load

    wanted = use_index and (
        db is not None or bool(os.environ.get("RETRO_DATABASE_URL")) or not drafts
    )
    with ExitStack() as stack:
        store = None
        if wanted:
            if not index_exists(db):
                raise StoreError(
                    f"No index at {resolve_url(db)}",
                    hint="run `retro import` or `retro index add`, pass drafts, or use --no-index",
                )
            store = stack.enter_context(open_store(db))
        progress("reading incidents", 0, None)
        loaded = load(drafts=drafts, store=store, use_git=use_git, lenient=lenient, cache=cache)
        notes = []
        if use_git and not loaded.git and drafts:
            notes.append(
                "The drafts are not in a git repository: review and close dates come "
                "from front matter and tables only."
            )
        pairs = None
        if repeats and len(loaded.incidents) > 1:
            progress("repeat incidents", 0, None)
            pairs, note = _repeats(loaded.incidents, store, embedder)
            if note:
                notes.append(note)
        progress("report", 0, None)
        return build_report(
            loaded.incidents,
            filters=filters,
            group_by=group_by,
            pairs=pairs,
            as_of=as_of,
            sources=loaded.sources,
            skipped=loaded.skipped,
            notes=notes,
        )


def _repeats(
    incidents: list[IncidentFacts], store: Store | None, embedder: Embedder | None
) -> tuple[list[Pair], str]:
    """Repeat pairs over every incident, and a note on what was left out."""
    from retro.errors import RetroError
    from retro.index.embeddings import embedder_for_model, get_embedder
    from retro.insights import repeats as rep

    note = ""
    try:
        bound = store.model() if store is not None else None
        if embedder is None:
            embedder = embedder_for_model(bound[0]) if bound else get_embedder(None)
    except RetroError as exc:
        note = f"Drafts that are not indexed were left out of repeat detection: {exc}."
    pairs, method = rep.find(incidents, store, embedder)
    return pairs, " ".join(n for n in (method, note) if n)
