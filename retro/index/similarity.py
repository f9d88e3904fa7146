"""Similar past incidents: indexing, hybrid search, why a result matched, repeats of a postmortem.

What gets indexed is retro.index.content (an incident's own words, one vector per chunk).

Search (`search`) ranks every incident the two halves cover, then cuts the list to k:
- lexical: FTS5 bm25 (SQLite) or ts_rank (PostgreSQL) of the incident's best chunk, over every
  matching chunk;
- vector: cosine of the incident's best chunk to the query, over every incident (SQLite) or the
  HNSW candidates plus every lexical match, deepened until nothing left out could enter the top k
  (PostgreSQL);
- fusion: a convex combination of the two, each divided by its best score for the query
  (`score = (1 - w) * lexical / max lexical + w * cosine / max cosine`, w = VECTOR_WEIGHT, chosen
  on the tuning half of the retrieval eval; see docs/similarity.md). Ties break on the incident
  id, never on one half's rank, so the first five results are the same for -k 5 and -k 50.

Similar postmortems (`find_similar`) are ranked by the repeat measure of retro.index.repeats,
whose score means the same thing in every query: at REPEAT_THRESHOLD or above, a repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Literal

from retro.index.content import postmortem_chunks
from retro.index.embeddings import Embedder, content_hash
from retro.index.repeats import PROFILE_FIELDS, REPEAT_THRESHOLD, profile_vector
from retro.index.store.base import (
    Chunk,
    Hit,
    IncidentRecord,
    Scores,
    SearchFilter,
    Store,
    top_positions,
)
from retro.models import Postmortem, SimilarIncident

if TYPE_CHECKING:
    import numpy as np

Mode = Literal["hybrid", "lexical", "vector"]
FIELD_LABELS = {
    "summary": "summary",
    "impact": "impact",
    "root_cause": "root cause",
    "contributing": "contributing factors",
    "context": "services, alerts and actions",
    "text": "text",
}
# Weight of the vector half in the fused score (the lexical half gets the rest). Chosen on the
# tuning half of `python -m evals.retrieval` (a grid of 0.05 steps, best MRR); its figures on the
# test half are in docs/similarity.md.
VECTOR_WEIGHT = 0.6
# How deep an approximate vector index (pgvector HNSW) is read at first, and at most.
VECTOR_DEPTH = 200
MAX_VECTOR_DEPTH = 12_800


@dataclass(frozen=True)
class Fusion:
    """How the halves are fused: convex (max-normalised scores, the default) or rrf (rank-based,
    kept for comparison in the eval)."""

    vector_weight: float = VECTOR_WEIGHT
    method: Literal["convex", "rrf"] = "convex"
    rrf_k: int = 60


@dataclass
class IndexReport:
    incidents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    skipped: list[str] = field(default_factory=list)


# --- indexing ----------------------------------------------------------------------------------


def index_incidents(
    items: Iterable[tuple[IncidentRecord, list[Chunk]]],
    *,
    store: Store,
    embedder: Embedder,
    progress: Callable[[int], None] | None = None,
    batch_texts: int = 256,
) -> IndexReport:
    """Embed and store incidents; texts whose content hash is already stored are not embedded."""
    report = IndexReport()
    pending: list[tuple[IncidentRecord, list[Chunk]]] = []
    for record, chunks in items:
        for c in chunks:
            c.hash = content_hash(embedder.model_id, c.text)
        pending.append((record, chunks))
        if sum(len(c) for _, c in pending) >= batch_texts:
            _flush(pending, store, embedder, report, progress)
            pending = []
    _flush(pending, store, embedder, report, progress)
    return report


def _flush(
    pending: list[tuple[IncidentRecord, list[Chunk]]],
    store: Store,
    embedder: Embedder,
    report: IndexReport,
    progress: Callable[[int], None] | None,
) -> None:
    import numpy as np

    if not pending:
        return
    hashes = [c.hash for _, chunks in pending for c in chunks]
    known = store.vectors_by_hash(hashes)
    todo = list(dict.fromkeys(h for h in hashes if h not in known))
    texts = {c.hash: c.text for _, chunks in pending for c in chunks}
    if todo:
        vectors = embedder.embed([texts[h] for h in todo])
        store.bind_model(embedder.model_id, int(vectors.shape[1]))
        known.update(zip(todo, vectors, strict=True))
    report.embedded += len(todo)
    report.reused += len(hashes) - len(todo)
    for record, chunks in pending:
        dim = embedder.dim or (len(next(iter(known.values()))) if known else 0)
        rows = (
            np.stack([known[c.hash] for c in chunks]) if chunks else np.zeros((0, dim), np.float32)
        )
        store.upsert(record, chunks, rows)
        report.incidents += 1
        report.chunks += len(chunks)
        if progress is not None:
            progress(1)


# --- fusion ------------------------------------------------------------------------------------


def rrf(rankings: Sequence[tuple[Sequence[str], float]], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion: sum over rankings of weight / (k + rank), rank from 1."""
    fused: dict[str, float] = {}
    for ids, weight in rankings:
        for rank, doc in enumerate(ids, start=1):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return fused


@dataclass
class Fused:
    """Both halves on one list of incident ids, and the fused score of each.

    Positions below len(vec.ids) are the vector half's own positions (every lexical match is
    among them unless there is no vector half).
    """

    ids: Sequence[str]
    score: np.ndarray
    lexical: np.ndarray  # lexical score, nan where the incident did not match
    vector: np.ndarray  # cosine, nan where the vector half did not score it
    lex: Scores | None
    vec: Scores | None
    lex_at: np.ndarray  # position in `ids` of each entry of lex.ids

    def vector_hit(self, at: int) -> Hit | None:
        import numpy as np

        if self.vec is None or at >= len(self.vec.ids) or not np.isfinite(self.vector[at]):
            return None
        return self.vec.detail(at)

    def lexical_hit(self, at: int) -> Hit | None:
        import numpy as np

        found = np.flatnonzero(self.lex_at == at)
        return self.lex.detail(int(found[0])) if self.lex is not None and len(found) else None


def _ranks(values: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """1-based rank of each value (higher first, ties by id); nan values rank last."""
    import numpy as np

    key = np.where(np.isnan(values), -np.inf, values)
    order = sorted(range(len(values)), key=lambda i: (-float(key[i]), ids[i]))
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def fuse(
    lex: Scores | None, vec: Scores | None, fusion: Fusion, exclude: str | None = None
) -> Fused:
    """Put both halves on one list of ids and fuse them; `exclude` scores -inf."""
    import numpy as np

    ids: Sequence[str] = vec.ids if vec is not None else []
    pos: Mapping[str, int] = vec.position() if vec is not None else {}
    vector = np.asarray(vec.score, dtype=np.float64).copy() if vec is not None else np.zeros(0)
    lexical = np.full(len(ids), np.nan)
    lex_at = np.zeros(0, dtype=np.intp)
    if lex is not None and vec is not None and lex.at is not None and lex.space is vec.space:
        # Both halves index the same list of incidents: line them up by position.
        lex_at = lex.at
        lexical[lex_at] = lex.score
    elif lex is not None:
        extra = [i for i in lex.ids if i not in pos]
        if extra:  # a lexical match the vector half did not score (only without a vector half)
            pos = {**pos, **{i: len(ids) + n for n, i in enumerate(extra)}}
            ids = [*ids, *extra]
            vector = np.concatenate([vector, np.full(len(extra), np.nan)])
            lexical = np.concatenate([lexical, np.full(len(extra), np.nan)])
        lex_at = np.asarray([pos[i] for i in lex.ids], dtype=np.intp)
        lexical[lex_at] = lex.score
    gone = pos.get(exclude) if exclude is not None else None
    if gone is not None:
        lexical[gone] = np.nan
        vector[gone] = -np.inf
    score = _combine(lexical, vector, ids, lex is not None, vec is not None, fusion)
    if gone is not None:
        score[gone] = -np.inf
    return Fused(ids, score, lexical, vector, lex, vec, lex_at)


def _combine(
    lexical: np.ndarray,
    vector: np.ndarray,
    ids: Sequence[str],
    has_lex: bool,
    has_vec: bool,
    fusion: Fusion,
) -> np.ndarray:
    import numpy as np

    matched = ~np.isnan(lexical)
    if has_lex and not has_vec:  # lexical mode: only matches, scaled so the best is 1
        top = np.nanmax(lexical) if matched.any() else 1.0
        return np.where(matched, lexical / (top if top > 0 else 1.0), -np.inf)
    finite = np.isfinite(vector)
    if not has_lex:  # vector mode: the cosine itself
        return np.where(finite, vector, -np.inf)
    w = fusion.vector_weight
    if fusion.method == "rrf":
        lex_part = np.where(matched, 1.0 / (fusion.rrf_k + _ranks(lexical, ids)), 0.0)
        vec_rank = _ranks(np.where(finite, vector, np.nan), ids)
        vec_part = np.where(finite, 1.0 / (fusion.rrf_k + vec_rank), 0.0)
        score = (1 - w) * lex_part + w * vec_part
        return np.where(finite | matched, score * (fusion.rrf_k + 1), -np.inf)
    lex_top = float(np.nanmax(lexical)) if matched.any() else 1.0
    vec_top = float(vector[finite].max()) if finite.any() else 1.0
    lex_part = np.where(matched, lexical / (lex_top if lex_top > 0 else 1.0), 0.0)
    vec_part = np.where(finite, vector / (vec_top if vec_top > 0 else 1.0), 0.0)
    return np.where(finite | matched, (1 - w) * lex_part + w * vec_part, -np.inf)


# --- search ------------------------------------------------------------------------------------


def snippet(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[:width].rsplit(" ", 1)[0]
    return cut + " …"


def _rank_of(values: np.ndarray, at: int) -> int:
    """1 + how many incidents score strictly above position `at` (ties share a rank)."""
    import numpy as np

    return int(np.count_nonzero(values > values[at])) + 1


def _explain(fused: Fused, top: Sequence[int], query: str, store: Store) -> list[list[str]]:
    """For each shown incident: what it matched by meaning and by words, and at what rank."""
    import numpy as np

    vector = np.where(np.isfinite(fused.vector), fused.vector, -np.inf)
    lexical = np.nan_to_num(fused.lexical, nan=-np.inf)
    by_meaning = {at: h for at in top if (h := fused.vector_hit(at)) is not None}
    by_words = {at: h for at in top if (h := fused.lexical_hit(at)) is not None}
    # One read each for all shown incidents: texts of the chunks, highlighted extracts.
    texts = store.chunk_texts([(h.incident_id, h.field, h.seq) for h in by_meaning.values()])
    extracts = store.snippets(query, list(by_words.values())) if by_words else {}
    out = []
    for at in top:
        why = []
        if (h := by_meaning.get(at)) is not None:
            rank = _rank_of(vector, at)
            text = texts.get((h.incident_id, h.field, h.seq), "")
            label = FIELD_LABELS.get(h.field, h.field)
            why.append(f"meaning: {label} (cosine {h.score:.2f}, rank {rank}): {snippet(text)}")
        if (h := by_words.get(at)) is not None:
            rank = _rank_of(lexical, at)
            text = extracts.get((h.incident_id, h.field, h.seq), "")
            label = FIELD_LABELS.get(h.field, h.field)
            why.append(f"words: {label} (rank {rank}): {snippet(text, 200)}")
        out.append(why)
    return out


def rank_incidents(
    query: str,
    *,
    store: Store,
    vectors: np.ndarray | None,
    flt: SearchFilter,
    mode: Mode,
    fusion: Fusion,
    k: int,
    exclude: str | None = None,
    lexical: Scores | None = None,
) -> tuple[Fused, list[int]]:
    """Fused scores of every incident either half covers, and the positions of the best k.

    When the vector half is approximate (HNSW), it is read deeper until no incident it left
    out could score above the k-th result, so the first results never depend on k.
    `lexical` is the lexical half when it was read already.
    """
    lex = lexical
    if lex is None and mode != "vector":
        lex = store.lexical_scores(query, flt)
    depth = VECTOR_DEPTH
    while True:
        vec = None
        if mode != "lexical" and vectors is not None:
            vec = store.vector_scores(vectors, flt, depth, also=lex.ids if lex is not None else ())
        fused = fuse(lex, vec, fusion, exclude)
        top = top_positions(fused.score, fused.ids, k)  # the excluded one scores -inf
        if vec is None or vec.complete or depth >= MAX_VECTOR_DEPTH:
            return fused, top
        if len(top) == k and fused.score[top[-1]] >= _bound(vec, fused, fusion):
            return fused, top
        depth *= 4


def _bound(vec: Scores, fused: Fused, fusion: Fusion) -> float:
    """The best fused score an incident the vector half left out could have (it is no lexical
    match: every match was scored)."""
    import numpy as np

    finite = np.isfinite(fused.vector)
    if fused.lex is None:
        return vec.floor
    top = float(fused.vector[finite].max()) if finite.any() else 1.0
    return fusion.vector_weight * vec.floor / (top if top > 0 else 1.0)


@cache
def _reader() -> ThreadPoolExecutor:
    """One background thread per process, for the lexical half of a query."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="retro-lexical")


def search(
    query: str,
    *,
    store: Store,
    embedder: Embedder | None,
    k: int = 5,
    flt: SearchFilter | None = None,
    mode: Mode = "hybrid",
    fusion: Fusion | None = None,
    exclude: str | None = None,
) -> list[SimilarIncident]:
    """Past incidents that match a free-text query, best first; `exclude` drops one id."""
    flt = flt or SearchFilter()
    lexical = None
    vectors: np.ndarray | None
    if mode == "hybrid" and embedder is not None and store.concurrent_reads:
        # The full-text query runs in SQLite's C code while the model embeds the query: on two
        # cores the two overlap.
        pending = _reader().submit(store.lexical_scores, query, flt)
        vectors = embedder.embed([query])
        lexical = pending.result()
    else:
        vectors = embedder.embed([query]) if embedder is not None and mode != "lexical" else None
    if vectors is None and mode == "hybrid":
        mode = "lexical"
    fused, top = rank_incidents(
        query,
        store=store,
        vectors=vectors,
        flt=flt,
        mode=mode,
        fusion=fusion or Fusion(),
        k=k,
        exclude=exclude,
        lexical=lexical,
    )
    records = store.get([fused.ids[t] for t in top])
    out = []
    for t, why in zip(top, _explain(fused, top, query, store), strict=True):
        rec = records.get(fused.ids[t])
        out.append(
            SimilarIncident(
                id=fused.ids[t],
                title=rec.title if rec else fused.ids[t],
                score=round(float(fused.score[t]), 4),
                url=rec.url if rec else None,
                why=why,
            )
        )
    return out


# --- similar postmortems and repeats -----------------------------------------------------------


def find_similar(
    pm: Postmortem,
    *,
    store: Store,
    embedder: Embedder,
    k: int = 5,
    flt: SearchFilter | None = None,
) -> list[SimilarIncident]:
    """Past incidents most like this postmortem by the repeat measure, best first.

    score is the profile cosine; at REPEAT_THRESHOLD or above the result is a repeat, and its
    action items still open are listed.
    """
    import numpy as np

    chunks = postmortem_chunks(pm)
    if not chunks:
        return []
    vectors = embedder.embed([c.text for c in chunks])
    mine = profile_vector(vectors, [c.field for c in chunks])
    ids, profiles = store.profiles(PROFILE_FIELDS, flt or SearchFilter())
    if not ids:
        return []
    sims = (profiles @ mine).astype(np.float64)
    if pm.incident_id in ids:
        sims[ids.index(pm.incident_id)] = -np.inf
    top = top_positions(sims, ids, k)
    records = store.get([ids[t] for t in top])
    out = []
    for t in top:
        rec = records.get(ids[t])
        if rec is None:
            continue
        score = float(sims[t])
        repeat = score >= REPEAT_THRESHOLD
        why = [
            f"{'repeat' if repeat else 'similar'}: profile cosine {score:.2f} "
            f"(a repeat from {REPEAT_THRESHOLD:.2f})",
            *_closest_chunks(chunks, vectors, store, rec.id),
        ]
        out.append(
            SimilarIncident(
                id=rec.id,
                title=rec.title,
                score=round(score, 4),
                url=rec.url,
                why=why,
                repeat=repeat,
                open_action_items=[
                    f"{a.tracking}: {a.title}" if a.tracking else a.title
                    for a in rec.action_items
                    if a.is_open
                ]
                if repeat
                else [],
            )
        )
    return out


def _closest_chunks(
    chunks: Sequence[Chunk], vectors: np.ndarray, store: Store, incident_id: str
) -> list[str]:
    """The pair of texts (this incident's, the past one's) that are closest in meaning."""
    import numpy as np

    past = store.chunk_vectors(incident_id)
    if not past:
        return []
    sims = vectors @ np.stack([v for _, v in past]).T
    mine, theirs = np.unravel_index(int(np.argmax(sims)), sims.shape)
    c = past[int(theirs)][0]
    label = (
        f"{FIELD_LABELS.get(chunks[int(mine)].field, chunks[int(mine)].field)} ~ "
        f"its {FIELD_LABELS.get(c.field, c.field)}"
    )
    return [f"meaning: {label} (cosine {float(sims[mine, theirs]):.2f}): {snippet(c.text)}"]


def similar_from_index(
    pm: Postmortem, *, url: str | None = None, k: int = 5
) -> list[SimilarIncident]:
    """find_similar against the configured index; [] when no index exists or it is empty."""
    from retro.index.embeddings import embedder_for_model
    from retro.index.store import index_exists, open_store

    if not index_exists(url):
        return []
    with open_store(url) as store:
        bound = store.model()
        if bound is None:
            return []
        return find_similar(pm, store=store, embedder=embedder_for_model(bound[0]), k=k)


def repeat_warnings(similar: Iterable[SimilarIncident]) -> list[str]:
    """Plain sentences for the draft: this repeats X; its action item Y is still open."""
    lines = []
    for s in similar:
        for item in s.open_action_items:
            lines.append(f"This repeats {s.id} ({s.title}); its action item {item} is still open.")
    return lines


__all__ = [
    "FIELD_LABELS",
    "VECTOR_WEIGHT",
    "Fused",
    "Fusion",
    "IndexReport",
    "Mode",
    "find_similar",
    "fuse",
    "index_incidents",
    "rank_incidents",
    "repeat_warnings",
    "rrf",
    "search",
    "similar_from_index",
    "snippet",
]
