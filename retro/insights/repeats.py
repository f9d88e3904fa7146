"""Repeat incidents for the report: pairs (later, earlier) that the similarity index calls
repeats, with the earlier incident's action items that were still open when it recurred.

The measure and its threshold belong to the index (retro.index.repeats: one profile vector per
incident, REPEAT_THRESHOLD chosen on labelled pairs). The report asks it over the incidents'
stored vectors (`profiles_from_store`) and, for drafts that are not indexed, over the texts the
index would store for them (`profiles_for` with `corpus.markdown_item`, embedded here). Each
incident is paired with its best-scoring earlier incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retro.insights.facts import IncidentFacts

if TYPE_CHECKING:
    from retro.index.embeddings import Embedder
    from retro.index.store import Store

_MAX = datetime.max.replace(tzinfo=UTC)


@dataclass
class Pair:
    later: str
    earlier: str
    score: float
    shared: list[str]
    open_items: list[str] = field(default_factory=list)
    unknown_items: int = 0  # closed, but nobody knows when: maybe open at the time


def find(
    incidents: list[IncidentFacts], store: Store | None, embedder: Embedder | None
) -> tuple[list[Pair], str]:
    """Repeat pairs over the incidents, and a note saying how they were found."""
    from retro.index import repeats as api

    profiles = _profiles(api, incidents, store, embedder)
    pairs = best_earlier(incidents, profiles, float(api.REPEAT_THRESHOLD))
    open_at_recurrence(pairs, {i.id: i for i in incidents})
    left = len(incidents) - len({p.id for p in profiles})
    note = f"Repeat incidents: profile cosine >= {api.REPEAT_THRESHOLD} (retro.index.repeats)"
    if left:
        note += f"; {left} incidents had no indexed or readable text and were left out"
    return pairs, note + "."


def _profiles(
    api: Any, incidents: list[IncidentFacts], store: Store | None, embedder: Embedder | None
) -> list[Any]:
    profiles = _stored_profiles(api, store, incidents) if store is not None else []
    have = {p.id for p in profiles}
    todo = [i for i in incidents if i.id not in have and i.origin == "draft" and i.path]
    if todo and embedder is not None:
        from retro.index.corpus import markdown_item

        items = []
        for inc in todo:
            path = Path(str(inc.path))
            if path.is_file():
                record, chunks = markdown_item(path)
                items.append((record.model_copy(update={"id": inc.id}), chunks))
        profiles += api.profiles_for(items, embedder=embedder, store=store)
    return profiles


def _stored_profiles(api: Any, store: Store, incidents: list[IncidentFacts]) -> list[Any]:
    """The index's profiles of these incidents, read in one call (`Store.profiles`); dated by
    the report's own facts, so no record is read twice."""
    from retro.index.store import SearchFilter

    started = {i.id: i.start for i in incidents}
    ids, vectors = store.profiles(api.PROFILE_FIELDS, SearchFilter())
    return [
        api.Profile(incident_id, started[incident_id], vectors[n])
        for n, incident_id in enumerate(ids)
        if incident_id in started
    ]


def best_earlier(
    incidents: list[IncidentFacts], profiles: list[Any], threshold: float, block: int = 1024
) -> list[Pair]:
    """For each incident, its best-scoring earlier incident at or above the threshold.

    The measure is the index's (the cosine between unit profile vectors); only the search is
    done here, as matrix products over blocks of later incidents, because listing every pair
    above the threshold (`retro.index.repeats.repeats`) grows with the square of the incidents
    when many are alike.
    """
    import numpy as np

    by_id = {i.id: i for i in incidents}
    dated = sorted(
        (p for p in profiles if p.id in by_id), key=lambda p: (by_id[p.id].start or _MAX, p.id)
    )
    if len(dated) < 2:
        return []
    mat = np.ascontiguousarray(np.stack([p.vector for p in dated]), dtype=np.float32)
    pairs = []
    for lo in range(1, len(dated), block):
        hi = min(len(dated), lo + block)
        sims = mat[lo:hi] @ mat[:hi].T
        rows = np.arange(lo, hi)[:, None]
        sims[np.arange(hi)[None, :] >= rows] = -np.inf  # earlier incidents only
        best = sims.argmax(axis=1)
        scores = sims[np.arange(hi - lo), best]
        for k in np.flatnonzero(scores >= threshold):
            later, earlier = by_id[dated[lo + k].id], by_id[dated[int(best[k])].id]
            shared = {s.lower() for s in later.services} & {s.lower() for s in earlier.services}
            pairs.append(Pair(later.id, earlier.id, round(float(scores[k]), 3), sorted(shared)))
    return pairs


def open_at_recurrence(pairs: list[Pair], by_id: dict[str, IncidentFacts]) -> None:
    """Mark each pair with the earlier incident's action items still open when it recurred."""
    for pair in pairs:
        later, earlier = by_id[pair.later], by_id[pair.earlier]
        at: datetime | None = later.start
        if at is None:
            continue
        for item in earlier.actions:
            state = item.open_at(at)
            if state is True:
                label = f"{item.tracking}: {item.title}" if item.tracking else item.title
                pair.open_items.append(label)
            elif state is None:
                pair.unknown_items += 1
