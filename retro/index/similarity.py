"""Similar past incidents: what gets indexed, hybrid search with RRF, why it matched, repeats.

Each incident is indexed as a few texts ("chunks"), one vector each:
- summary: the title and the summary,
- impact: the impact and the detection (symptoms),
- root_cause: the root cause, the trigger and the contributing factors,
- context: services, alert names and action items.
A corpus record without those fields is indexed as its title and text, split into passages.

Search runs a lexical ranking (FTS5 bm25 or PostgreSQL ts_rank) and a vector ranking (cosine),
each with one entry per incident, and fuses them with reciprocal rank fusion.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from retro.index.embeddings import Embedder, content_hash
from retro.index.store.base import Chunk, Hit, IncidentRecord, IndexedAction, SearchFilter, Store
from retro.models import ALERT_KINDS, Postmortem, SimilarIncident

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
PASSAGE_WORDS = 180  # MiniLM reads 256 word pieces; 180 words stay under that for English
RRF_K = 10  # chosen by the sweep in evals/retrieval.py (60, the textbook value, tied); see docs
ROOT_CAUSE_MATCH = 0.6  # cosine between root causes above which an incident "repeats" another
ROOT_CAUSE_NEAR = 0.4  # enough when the two incidents share a service
Progress = Callable[[str, int, int], None]


@dataclass
class Fusion:
    """How rankings are fused: RRF constant, weights, and how deep each ranking is read."""

    k: int = RRF_K
    lexical_weight: float = 1.0
    vector_weight: float = 1.0
    depth: int = 50


@dataclass
class IndexReport:
    incidents: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    skipped: list[str] = field(default_factory=list)


# --- what gets indexed -----------------------------------------------------------------------------


def split_passages(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """Split a long text into passages of at most `words` words."""
    tokens = text.split()
    if not tokens:
        return []
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _alert_names(pm: Postmortem) -> list[str]:
    names: dict[str, None] = {}
    for row in pm.timeline:
        if row.get("kind") in ALERT_KINDS or row.get("kind") == "page_triggered":
            text = str(row.get("text") or "").strip().splitlines()
            if text:
                names.setdefault(text[0][:120], None)
    return list(names)


_ATTRIBUTION = re.compile(
    r"^[^“”:]{0,80}?\b(?:wrote|commented|posted|noted|said|names it):\s*“(.*)”\.?$", re.S
)


def claim_text(text: str) -> str:
    """A claim without its "The on-call SRE wrote: “…”" wrapper: what was said, not who said it."""
    match = _ATTRIBUTION.match(text.strip())
    return match.group(1) if match else text


def postmortem_chunks(pm: Postmortem) -> list[Chunk]:
    """The texts indexed for a postmortem: summary, impact, root cause, context."""
    claims = lambda items: " ".join(claim_text(c.text) for c in items)  # noqa: E731
    fields = {
        "summary": _join(pm.title + ".", claims(pm.summary)),
        "impact": _join(claims(pm.impact), claims(pm.detection)),
        "contributing": claims(pm.contributing_factors),
        "context": context_text(pm.services, _alert_names(pm), [a.title for a in pm.action_items]),
    }
    # One vector per root-cause and trigger claim: a mixed passage dilutes the match that
    # decides whether an incident repeats another.
    causes = [claim_text(c.text) for c in pm.root_cause + pm.trigger if c.text.strip()]
    roots = [
        Chunk(field="root_cause", seq=i, text=" ".join(t.split()[:PASSAGE_WORDS]))
        for i, t in enumerate(causes)
    ]
    return roots + _chunks_from_fields(fields)


def context_text(services: Sequence[str], alerts: Sequence[str], actions: Sequence[str]) -> str:
    parts = []
    if services:
        parts.append("Services: " + ", ".join(services) + ".")
    if alerts:
        parts.append("Alerts: " + "; ".join(alerts) + ".")
    if actions:
        parts.append("Action items: " + "; ".join(actions) + ".")
    return " ".join(parts)


def _chunks_from_fields(fields: dict[str, str]) -> list[Chunk]:
    chunks = []
    for name, text in fields.items():
        for seq, passage in enumerate(split_passages(text)):
            chunks.append(Chunk(field=name, seq=seq, text=passage))
    return chunks


def postmortem_record(
    pm: Postmortem, *, source: str = "", url: str | None = None
) -> IncidentRecord:
    """The record kept for a postmortem: enough to explain a match and warn about repeats."""
    return IncidentRecord(
        id=pm.incident_id,
        title=pm.title,
        url=url,
        started=pm.started,
        severity=pm.severity,
        services=list(pm.services),
        source=source,
        root_cause=" ".join(c.text for c in pm.root_cause),
        action_items=[
            IndexedAction(title=a.title, status=a.status, tracking=a.tracking)
            for a in pm.action_items
        ],
    )


def corpus_chunks(record: IncidentRecord, text: str, fields: dict[str, str]) -> list[Chunk]:
    """Chunks of a corpus record: its named fields if any, else its title and text."""
    named = {k: v for k, v in fields.items() if v.strip()}
    if named:
        if "summary" in named or not text.strip():
            named["summary"] = _join(record.title + ".", named.get("summary", ""))
        else:
            named = {"text": _join(record.title + ".", text), **named}
        return _chunks_from_fields(named)
    return _chunks_from_fields({"text": _join(record.title + ".", text)})


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


# --- search --------------------------------------------------------------------------------------


def rrf(rankings: Sequence[tuple[Sequence[str], float]], k: int = RRF_K) -> dict[str, float]:
    """Reciprocal rank fusion: sum over rankings of weight / (k + rank), rank from 1."""
    fused: dict[str, float] = {}
    for ids, weight in rankings:
        for rank, doc in enumerate(ids, start=1):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return fused


@dataclass
class _Ranked:
    id: str
    score: float
    lexical: Hit | None
    lexical_rank: int | None
    vector: Hit | None
    vector_rank: int | None


def _fuse(lex: list[Hit], vec: list[Hit], mode: Mode, fusion: Fusion) -> list[_Ranked]:
    rankings: list[tuple[Sequence[str], float]] = []
    if mode in ("hybrid", "lexical"):
        rankings.append(([h.incident_id for h in lex], fusion.lexical_weight))
    if mode in ("hybrid", "vector"):
        rankings.append(([h.incident_id for h in vec], fusion.vector_weight))
    fused = rrf(rankings, fusion.k)
    # Scale so that first place in every ranking scores 1.0.
    best = sum(w for _, w in rankings) / (fusion.k + 1) or 1.0
    lex_at = {h.incident_id: (i, h) for i, h in enumerate(lex, start=1)}
    vec_at = {h.incident_id: (i, h) for i, h in enumerate(vec, start=1)}
    out = []
    for doc, score in fused.items():
        li, lh = lex_at.get(doc, (None, None))
        vi, vh = vec_at.get(doc, (None, None))
        out.append(_Ranked(doc, score / best, lh, li, vh, vi))
    # Ties (common with few rankings) break on cosine, then id, so results are stable.
    out.sort(key=lambda r: (-r.score, -(r.vector.score if r.vector else -2.0), r.id))
    return out


def snippet(text: str, width: int = 160) -> str:
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[:width].rsplit(" ", 1)[0]
    return cut + " …"


def _why(
    r: _Ranked, texts: dict[tuple[str, str, int], str], query_fields: Sequence[str]
) -> list[str]:
    why = []
    if r.vector is not None:
        h = r.vector
        label = FIELD_LABELS.get(h.field, h.field)
        if query_fields:
            qlabel = FIELD_LABELS.get(query_fields[h.query_row], query_fields[h.query_row])
            label = f"{qlabel} ~ its {label}"
        snip = snippet(texts.get((h.incident_id, h.field, h.seq), ""))
        why.append(f"meaning: {label} (cosine {h.score:.2f}, rank {r.vector_rank}): {snip}")
    if r.lexical is not None:
        h = r.lexical
        label = FIELD_LABELS.get(h.field, h.field)
        why.append(f"words: {label} (rank {r.lexical_rank}): {snippet(h.snippet, 200)}")
    return why


def _run(
    *,
    store: Store,
    text: str,
    vectors: np.ndarray | None,
    k: int,
    flt: SearchFilter,
    mode: Mode,
    fusion: Fusion,
    query_fields: Sequence[str] = (),
    exclude: str | None = None,
) -> list[tuple[_Ranked, list[str]]]:
    depth = max(fusion.depth, k * 4)
    extra = 1 if exclude else 0
    lex = store.lexical(text, flt, depth + extra) if mode != "vector" else []
    vec = (
        store.vector(vectors, flt, depth + extra)
        if mode != "lexical" and vectors is not None
        else []
    )
    if exclude:
        lex = [h for h in lex if h.incident_id != exclude][:depth]
        vec = [h for h in vec if h.incident_id != exclude][:depth]
    ranked = _fuse(lex, vec, mode, fusion)[:k]
    keys = [(r.vector.incident_id, r.vector.field, r.vector.seq) for r in ranked if r.vector]
    texts = store.chunk_texts(keys)
    return [(r, _why(r, texts, query_fields)) for r in ranked]


def _results(store: Store, ranked: list[tuple[_Ranked, list[str]]]) -> list[SimilarIncident]:
    records = store.get([r.id for r, _ in ranked])
    out = []
    for r, why in ranked:
        rec = records.get(r.id)
        out.append(
            SimilarIncident(
                id=r.id,
                title=rec.title if rec else r.id,
                score=round(r.score, 4),
                url=rec.url if rec else None,
                why=why,
            )
        )
    return out


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
    vectors = embedder.embed([query]) if embedder is not None and mode != "lexical" else None
    ranked = _run(
        store=store,
        text=query,
        vectors=vectors,
        k=k,
        flt=flt or SearchFilter(),
        mode=mode,
        fusion=fusion or Fusion(),
        exclude=exclude,
    )
    return _results(store, ranked)


def postmortem_query_text(pm: Postmortem) -> str:
    """The words of a postmortem that feed the lexical ranking, most telling first."""
    return " ".join(
        c.text for c in postmortem_chunks(pm) if c.field in ("summary", "root_cause", "impact")
    )


def find_similar(
    pm: Postmortem,
    *,
    store: Store,
    embedder: Embedder,
    k: int = 5,
    flt: SearchFilter | None = None,
    fusion: Fusion | None = None,
) -> list[SimilarIncident]:
    """Past incidents like this postmortem; open action items where the root cause repeats."""
    chunks = [c for c in postmortem_chunks(pm) if c.seq == 0]
    if not chunks:
        return []
    vectors = embedder.embed([c.text for c in chunks])
    ranked = _run(
        store=store,
        text=postmortem_query_text(pm) or pm.title,
        vectors=vectors,
        k=k,
        flt=flt or SearchFilter(),
        mode="hybrid",
        fusion=fusion or Fusion(),
        query_fields=[c.field for c in chunks],
        exclude=pm.incident_id,
    )
    results = _results(store, ranked)
    root = [v for c, v in zip(chunks, vectors, strict=True) if c.field == "root_cause"]
    if root:
        import numpy as np

        _mark_repeats(results, np.stack(root), store, services=set(pm.services))
    return results


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


def _mark_repeats(
    results: list[SimilarIncident], root_vec: np.ndarray, store: Store, *, services: set[str]
) -> None:
    """Flag past incidents whose root cause this one repeats, with their open action items.

    A repeat is a root-cause cosine of at least ROOT_CAUSE_MATCH, or of ROOT_CAUSE_NEAR on a
    service the two incidents share (MiniLM scores paraphrases with different ids and numbers
    around 0.4-0.6).
    """
    import numpy as np

    records = store.get([r.id for r in results])
    for res in results:
        rec = records.get(res.id)
        if rec is None:
            continue
        past = [v for c, v in store.chunk_vectors(res.id) if c.field == "root_cause"]
        if not past:
            continue
        cos = float(np.max(np.stack(past) @ root_vec.T))
        shared = bool(services & set(rec.services))
        if cos < ROOT_CAUSE_MATCH and not (shared and cos >= ROOT_CAUSE_NEAR):
            continue
        res.why.insert(0, f"root cause matches (cosine {cos:.2f}): {snippet(rec.root_cause)}")
        res.open_action_items = [
            f"{a.tracking}: {a.title}" if a.tracking else a.title
            for a in rec.action_items
            if a.is_open
        ]


def repeat_warnings(similar: Iterable[SimilarIncident]) -> list[str]:
    """Plain sentences for the draft: this repeats X; its action item Y is still open."""
    lines = []
    for s in similar:
        for item in s.open_action_items:
            lines.append(f"This repeats {s.id} ({s.title}); its action item {item} is still open.")
    return lines
