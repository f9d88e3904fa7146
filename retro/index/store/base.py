"""The similarity index interface, its records, and the migrations both backends share."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

from pydantic import BaseModel, Field

from retro.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

Dialect = Literal["sqlite", "postgres"]
OPEN_STATUSES = frozenset({"proposed", "approved", "open", "in_progress"})


class IndexedAction(BaseModel):
    """An action item of a past incident, kept to warn when the incident repeats."""

    title: str
    status: str = "open"
    tracking: str = ""

    @property
    def is_open(self) -> bool:
        return self.status.lower() in OPEN_STATUSES


class IncidentRecord(BaseModel):
    """One past incident as the index keeps it."""

    id: str
    title: str
    url: str | None = None
    started: datetime | None = None
    severity: str | None = None
    services: list[str] = Field(default_factory=list)
    source: str = ""
    root_cause: str = ""
    action_items: list[IndexedAction] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict, description="Corpus fields kept as is")


class Chunk(BaseModel):
    """One indexed text of an incident: a field (summary, impact, ...) or a part of it."""

    field: str
    seq: int = 0
    text: str
    hash: str = ""


@dataclass
class Hit:
    """A chunk that matched a query; score is cosine (vector) or a rank score (lexical)."""

    incident_id: str
    field: str
    seq: int
    score: float
    snippet: str = ""
    query_row: int = 0


@dataclass
class Scores:
    """One ranking's score for every incident it covers, best chunk behind each on demand.

    `complete` says every incident that passes the filter is here; when it is False (an
    approximate index such as HNSW returned the best ones), no incident left out scores above
    `floor`. `detail(i)` is the Hit (field, seq, query row) that earned position i its score.
    """

    ids: Sequence[str]
    score: np.ndarray
    detail: Callable[[int], Hit]
    complete: bool = True
    floor: float = float("-inf")
    index: Mapping[str, int] | None = None  # id -> position, when the store keeps one
    # Where each id sits in a list of every incident the store keeps (`space`), when it has one:
    # two Scores of the same space line up without looking ids up one by one.
    space: Sequence[str] | None = None
    at: np.ndarray | None = None

    def position(self) -> Mapping[str, int]:
        if self.index is None:
            self.index = {i: n for n, i in enumerate(self.ids)}
        return self.index


class Picked(Sequence[str]):
    """The ids at some positions of a longer list, without copying them out one by one."""

    def __init__(self, space: Sequence[str], at: np.ndarray) -> None:
        self.space, self.at = space, at

    def __len__(self) -> int:
        return len(self.at)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return [self.space[j] for j in self.at[i].tolist()]
        return self.space[int(self.at[i])]


def empty_scores() -> Scores:
    import numpy as np

    def nothing(i: int) -> Hit:
        raise IndexError(i)

    return Scores([], np.zeros(0), nothing)


def top_positions(score: np.ndarray, ids: Sequence[str], limit: int) -> list[int]:
    """Positions of the best `limit` scores, ordered by score, then id: ties never depend on
    which ranking an incident came from, nor on `limit`."""
    import numpy as np

    finite = np.flatnonzero(np.isfinite(score))
    if limit <= 0 or not len(finite):
        return []
    if len(finite) > limit:
        kth = np.partition(score[finite], len(finite) - limit)[len(finite) - limit]
        finite = finite[score[finite] >= kth]  # everything tied with the last one stays in
    chosen = sorted(finite.tolist(), key=lambda i: (-float(score[i]), ids[i]))
    return chosen[:limit]


@dataclass
class SearchFilter:
    """Restricts a search to incidents of a service, a severity, or since a date."""

    service: str | None = None
    severity: str | None = None
    since: datetime | None = None

    @property
    def active(self) -> bool:
        return bool(self.service or self.severity or self.since)


class StoreStats(BaseModel):
    url: str
    backend: str
    schema_version: int
    incidents: int
    chunks: int
    embedder: str | None = None
    dim: int | None = None
    by_field: dict[str, int] = Field(default_factory=dict)
    services: int = 0
    oldest: str | None = None
    newest: str | None = None


def iso(dt: datetime | None) -> str | None:
    """UTC ISO-8601 text that sorts in time order."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*")
_STOPWORDS_TEXT = """a an and are as at be been but by for from had has have in into is it its of on
or our that the their then there these this to was were which while who will with we not no after
before during when what all any can could did do does so than too very up out over"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def query_terms(text: str, limit: int = 64) -> list[str]:
    """Distinct lower-case words of a query, stopwords dropped, safe to splice into FTS syntax."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and len(word) > 1:
            seen.setdefault(word, None)
    return list(seen)[:limit]


def load_migrations(dialect: Dialect) -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration for this dialect, in order."""
    folder = resources.files("retro.index.store") / "migrations"
    chosen: dict[int, tuple[str, str]] = {}
    for entry in folder.iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+?)(?:\.(sqlite|postgres))?\.sql", entry.name)
        if not m or (m.group(3) and m.group(3) != dialect):
            continue
        version = int(m.group(1))
        if version in chosen and not m.group(3):
            continue  # a dialect-specific file wins over a shared one of the same number
        chosen[version] = (m.group(2), entry.read_text(encoding="utf-8"))
    return [(v, name, sql) for v, (name, sql) in sorted(chosen.items())]


def split_sql(script: str) -> list[str]:
    """Statements of a migration script; triggers keep their inner semicolons."""
    statements: list[str] = []
    current: list[str] = []
    depth = 0
    for line in script.splitlines():
        stripped = line.split("--", 1)[0].strip()
        if not stripped and not current:
            continue
        current.append(line)
        upper = stripped.upper()
        if upper.startswith("CREATE TRIGGER"):
            depth += 1
        if depth and upper.startswith("END;"):
            depth -= 1
        if stripped.endswith(";") and depth == 0:
            statements.append("\n".join(current).strip())
            current = []
    if "".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements


class Store(ABC):
    """An index of past incidents: records, texts, vectors; lexical and vector search."""

    backend: ClassVar[Dialect]
    # True when another thread may read while this one waits (one at a time, never both).
    concurrent_reads: ClassVar[bool] = False
    url: str

    @abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied."""

    @abstractmethod
    def bind_model(self, model_id: str, dim: int) -> None:
        """Record the embedding model on first use; refuse a different one later."""

    @abstractmethod
    def model(self) -> tuple[str, int] | None:
        """(model id, dimension) of the stored vectors, or None when nothing is indexed."""

    @abstractmethod
    def vectors_by_hash(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors for content hashes already embedded, so they are not embedded again."""

    @abstractmethod
    def chunk_hashes(self, incident_id: str) -> dict[tuple[str, int], str]:
        """(field, seq) -> content hash of an incident's stored chunks."""

    @abstractmethod
    def upsert(self, record: IncidentRecord, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace one incident with its chunks; rows of vectors match chunks."""

    @abstractmethod
    def delete(self, incident_id: str) -> bool:
        """Remove one incident; False when it was not there."""

    @abstractmethod
    def get(self, ids: Sequence[str]) -> dict[str, IncidentRecord]:
        """Records by id; unknown ids are left out."""

    @abstractmethod
    def incident_ids(self) -> list[str]:
        """Every indexed incident's id, sorted."""

    @abstractmethod
    def lexical_scores(self, query: str, flt: SearchFilter) -> Scores:
        """Full-text rank (higher is better) of every incident with a matching text: its best
        chunk's. Never cut to a page, so what comes first does not depend on how many are asked."""

    @abstractmethod
    def vector_scores(
        self, queries: np.ndarray, flt: SearchFilter, depth: int, also: Sequence[str] = ()
    ) -> Scores:
        """Cosine of each incident's best (chunk, query row) pair: every incident when the store
        can afford it (complete), else at least the best `depth` and every incident in `also`."""

    @abstractmethod
    def snippets(self, query: str, hits: Sequence[Hit]) -> dict[tuple[str, str, int], str]:
        """Highlighted extracts ("…[word]…") of the lexical hits' chunks for the query."""

    @abstractmethod
    def profiles(self, fields: frozenset[str], flt: SearchFilter) -> tuple[list[str], np.ndarray]:
        """(ids, unit profile vectors) of every incident passing the filter: the mean of its
        chunks of `fields` (all its chunks when it has none of them), scaled to length 1."""

    @abstractmethod
    def chunk_vectors(self, incident_id: str) -> list[tuple[Chunk, np.ndarray]]:
        """The stored chunks and vectors of one incident."""

    @abstractmethod
    def chunk_texts(self, keys: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str, int], str]:
        """Texts of chunks by (incident id, field, seq), for snippets."""

    def lexical(self, query: str, flt: SearchFilter, limit: int) -> list[Hit]:
        """Best chunks by full-text rank, at most one per incident, best first, with snippets."""
        scores = self.lexical_scores(query, flt)
        hits = [scores.detail(i) for i in top_positions(scores.score, scores.ids, limit)]
        texts = self.snippets(query, hits)
        for h in hits:
            h.snippet = texts.get((h.incident_id, h.field, h.seq), "")
        return hits

    def vector(self, queries: np.ndarray, flt: SearchFilter, limit: int) -> list[Hit]:
        """Best chunks by cosine to any query row, at most one per incident, best first."""
        scores = self.vector_scores(queries, flt, limit)
        return [scores.detail(i) for i in top_positions(scores.score, scores.ids, limit)]

    @abstractmethod
    def stats(self) -> StoreStats:
        """Counts for `retro index stats`."""

    def warm(self) -> None:  # noqa: B027 - optional hook; PostgreSQL needs nothing
        """Prepare search structures ahead of the first query (SQLite: the vector cache)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_model(self, bound: tuple[str, int] | None, model_id: str, dim: int) -> bool:
        """True when the model must be recorded; raise when another one is bound."""
        if bound is None:
            return True
        if bound != (model_id, dim):
            raise StoreError(
                f"The index at {self.url} holds {bound[0]} vectors ({bound[1]} dims), "
                f"not {model_id} ({dim} dims)",
                hint=f"set RETRO_EMBEDDER to match {bound[0]}, or index into a new "
                "RETRO_DATABASE_URL",
            )
        return False


def filter_sql(flt: SearchFilter, ph: str, col: str = "incident_id") -> tuple[str, list[Any]]:
    """SQL conditions (joined with AND, each prefixed by AND) restricting `col` to the filter."""
    parts: list[str] = []
    params: list[Any] = []
    if flt.service:
        parts.append(f"{col} IN (SELECT incident_id FROM incident_services WHERE service = {ph})")
        params.append(flt.service.lower())
    if flt.severity:
        parts.append(f"{col} IN (SELECT id FROM incidents WHERE severity = {ph})")
        params.append(flt.severity.lower())
    if flt.since:
        parts.append(f"{col} IN (SELECT id FROM incidents WHERE started >= {ph})")
        params.append(iso(flt.since))
    return "".join(f" AND {p}" for p in parts), params


def now_iso() -> str:
    return iso(datetime.now(UTC)) or ""
