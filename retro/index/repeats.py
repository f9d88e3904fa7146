"""Repeat detection: has this incident, or one of the same kind, happened before?

One measure, used everywhere (`retro similar`, the draft's "Similar past incidents", the report's
repeat-incident rate): the cosine between two incidents' *profiles*. A profile is the mean of the
vectors of what happened and why (the chunks of PROFILE_FIELDS: title and summary, each root cause
and trigger, or a record's text), scaled to unit length. Impact, contributing factors and context
are indexed for search but left out of the profile: symptoms, process gaps and chat phrasing are
alike across unrelated incidents (among the six eval drafts and the sample, leaving them out took
the mean cosine between different incidents from 0.37 to 0.25). Two incidents are repeats when
the cosine reaches REPEAT_THRESHOLD; the later one repeats the earlier.

    profiles = profiles_from_store(store)            # or profiles_for(items, embedder=...)
    pairs = repeats(profiles)                         # [RepeatPair(earlier, later, score)]
    is_repeat(profiles[0], profiles[1])               # one pair
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from retro.index.embeddings import Embedder, content_hash
from retro.index.store.base import Chunk, IncidentRecord, SearchFilter, Store

if TYPE_CHECKING:
    import numpy as np

# The cosine between profiles at which one incident counts as a repeat of another. Chosen by
# `python -m evals.repeats` on the calibration half of labelled pairs from ../shared/corpus (the
# lowest threshold whose calibration precision reaches 0.8); its precision and recall on the
# held-out half are in docs/similarity.md. Change it only by re-running that eval.
REPEAT_THRESHOLD = 0.43
# The chunks a profile is made of; an incident with none of them uses all its chunks.
PROFILE_FIELDS = frozenset({"summary", "root_cause", "text"})


@dataclass(frozen=True)
class Profile:
    """An incident as repeat detection sees it: id, start time, unit profile vector."""

    id: str
    started: datetime | None
    vector: np.ndarray


@dataclass(frozen=True)
class RepeatPair:
    """`later` repeats `earlier`: their profiles' cosine `score` reached the threshold."""

    earlier: str
    later: str
    score: float


def profile_vector(vectors: np.ndarray, fields: Sequence[str] | None = None) -> np.ndarray:
    """An incident's profile: for each field of PROFILE_FIELDS it has (every field when it has
    none of them; all rows as one field when `fields` is None), the unit mean of that field's
    rows; then the unit mean of those. Zeros when there are no rows.

    Fields count equally, so five root-cause claims do not outweigh the title and summary."""
    import numpy as np

    rows = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    names = list(fields) if fields is not None else [""] * len(rows)
    chosen = [n for n, f in enumerate(names) if f in PROFILE_FIELDS] or list(range(len(rows)))
    if not chosen or rows.size == 0:
        return np.zeros(rows.shape[1] if rows.ndim == 2 else 0, dtype=np.float32)
    groups: dict[str, list[int]] = {}
    for n in chosen:
        groups.setdefault(names[n], []).append(n)
    return _unit(np.stack([_unit(rows[g].mean(axis=0)) for g in groups.values()]).mean(axis=0))


def _unit(v: np.ndarray) -> np.ndarray:
    import numpy as np

    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


def similarity(a: Profile, b: Profile) -> float:
    """Cosine between two profiles, the one similarity measure of repeat detection."""
    return float(a.vector @ b.vector)


def is_repeat(a: Profile, b: Profile, *, threshold: float = REPEAT_THRESHOLD) -> bool:
    """True when the two incidents are alike enough that one repeats the other."""
    return a.id != b.id and similarity(a, b) >= threshold


def _order(a: Profile, b: Profile) -> tuple[Profile, Profile]:
    """(earlier, later): by start time; undated incidents come after dated ones, then by id."""

    def key(p: Profile) -> tuple[int, float, str]:
        return (0, p.started.timestamp(), p.id) if p.started else (1, 0.0, p.id)

    return (a, b) if key(a) <= key(b) else (b, a)


def repeats(
    profiles: Sequence[Profile], *, threshold: float = REPEAT_THRESHOLD, block: int = 2048
) -> list[RepeatPair]:
    """Every pair of incidents at or above the threshold, highest score first.

    All pairs are compared, in blocks of rows, so 10,000 incidents take one matrix product's time.
    """
    import numpy as np

    if len(profiles) < 2:
        return []
    mat = np.stack([p.vector for p in profiles]).astype(np.float32)
    out: list[RepeatPair] = []
    for start in range(0, len(profiles), block):
        sims = mat[start : start + block] @ mat.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if c <= i or profiles[i].id == profiles[c].id:
                continue
            earlier, later = _order(profiles[i], profiles[c])
            out.append(RepeatPair(earlier.id, later.id, round(float(sims[r, c]), 4)))
    out.sort(key=lambda p: (-p.score, p.later, p.earlier))
    return out


def profiles_from_store(store: Store, ids: Iterable[str] | None = None) -> list[Profile]:
    """Profiles of indexed incidents (all of them by default), from their stored vectors."""
    all_ids, vectors = store.profiles(PROFILE_FIELDS, SearchFilter())
    wanted = set(ids) if ids is not None else None
    keep = [n for n, i in enumerate(all_ids) if wanted is None or i in wanted]
    records = store.get([all_ids[n] for n in keep])
    return [
        Profile(all_ids[n], records[all_ids[n]].started, vectors[n])
        for n in keep
        if all_ids[n] in records
    ]


def profiles_for(
    items: Iterable[tuple[IncidentRecord, list[Chunk]]],
    *,
    embedder: Embedder,
    store: Store | None = None,
) -> list[Profile]:
    """Profiles of incidents not (necessarily) indexed; vectors already in `store` are reused."""
    import numpy as np

    pending = [(rec, chunks) for rec, chunks in items if chunks]
    hashes = {c.text: content_hash(embedder.model_id, c.text) for _, cs in pending for c in cs}
    known = store.vectors_by_hash(hashes.values()) if store is not None else {}
    todo = [t for t, h in hashes.items() if h not in known]
    if todo:
        known.update(zip((hashes[t] for t in todo), embedder.embed(todo), strict=True))
    return [
        Profile(
            rec.id,
            rec.started,
            profile_vector(np.stack([known[hashes[c.text]] for c in cs]), [c.field for c in cs]),
        )
        for rec, cs in pending
    ]
