"""The team index: PostgreSQL with pgvector (HNSW, cosine) and a tsvector GIN index for text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from retro.errors import StoreError
from retro.index.store.base import (
    Chunk,
    Dialect,
    Hit,
    IncidentRecord,
    Scores,
    SearchFilter,
    Store,
    StoreStats,
    empty_scores,
    filter_sql,
    iso,
    load_migrations,
    now_iso,
    query_terms,
    split_sql,
)

if TYPE_CHECKING:
    import numpy as np

# hnsw.ef_search bounds how many candidates one HNSW scan returns; iterative scans (pgvector
# 0.8+) keep scanning when filters discard rows, so filtered searches still fill the page.
_EF_SEARCH = 200
# At most this many matching chunks are ranked per query (ts_rank scores every row it returns).
LEXICAL_ROWS = 20_000


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _scores(
    rows: Sequence[tuple[Any, ...]], *, complete: bool = True, floor: float = float("-inf")
) -> Scores:
    """Scores from (incident id, field, seq, score[, query row]) rows, one per incident."""
    import numpy as np

    ids = [str(r[0]) for r in rows]
    score = np.asarray([float(r[3]) for r in rows], dtype=np.float64)

    def detail(i: int) -> Hit:
        r = rows[i]
        return Hit(
            ids[i], str(r[1]), int(r[2]), float(r[3]), query_row=int(r[4]) if len(r) > 4 else 0
        )

    return Scores(ids, score, detail, complete=complete, floor=floor)


def _array(value: Any) -> np.ndarray:
    """A pgvector value as a float32 array (pgvector returns Vector objects or arrays)."""
    import numpy as np

    if hasattr(value, "to_numpy"):
        value = value.to_numpy()
    return np.asarray(value, dtype=np.float32)


class PostgresStore(Store):
    """Index in a PostgreSQL database that has the pgvector extension."""

    backend: ClassVar[Dialect] = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = _redact(url)
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(
                f"Cannot connect to PostgreSQL at {self.url}: {str(exc).strip().splitlines()[0]}",
                hint="check RETRO_DATABASE_URL and that the server is running",
            ) from exc
        try:
            self._migrate()
            from pgvector.psycopg import register_vector

            register_vector(self.conn)
        except psycopg.Error as exc:
            self.conn.close()
            hint = "check the database user may create tables"
            if "vector" in str(exc):
                hint = (
                    "install pgvector on the server, or run CREATE EXTENSION vector as a superuser"
                )
            raise StoreError(f"Cannot prepare the index at {self.url}: {exc}", hint=hint) from exc

    # -- schema ---------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.conn.transaction():
            # Serialise concurrent first runs: the lock is released when the transaction ends.
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('retro.migrations'))")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = self.schema_version()
            for version, name, sql in load_migrations("postgres"):
                if version <= current:
                    continue
                for statement in split_sql(sql):
                    self.conn.execute(statement.encode())
                self.conn.execute(
                    "INSERT INTO schema_migrations VALUES (%s, %s, %s)", (version, name, now_iso())
                )

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(sql.encode(), params).fetchone()
        return None if row is None else row[0]

    def schema_version(self) -> int:
        exists = self._one("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not exists:
            return 0
        return int(self._one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    def _meta(self, key: str) -> str | None:
        return self._one("SELECT value FROM meta WHERE key = %s", (key,))

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def model(self) -> tuple[str, int] | None:
        name, dim = self._meta("embedder"), self._meta("dim")
        return None if name is None or dim is None else (name, int(dim))

    def bind_model(self, model_id: str, dim: int) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('retro.migrations'))")
            if not self._check_model(self.model(), model_id, dim):
                return
            # HNSW needs a fixed dimension, known only once the first model writes.
            self.conn.execute(
                f"ALTER TABLE chunks ALTER COLUMN embedding TYPE vector({int(dim)})".encode()
            )
            self.conn.execute(
                "CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON chunks "
                "USING hnsw (embedding vector_cosine_ops)"
            )
            self._set_meta("embedder", model_id)
            self._set_meta("dim", str(dim))

    # -- writes ---------------------------------------------------------------------------------
    def vectors_by_hash(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:

        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return {}
        rows = self.conn.execute(
            "SELECT DISTINCT ON (hash) hash, embedding FROM chunks WHERE hash = ANY(%s)",
            (wanted,),
            binary=True,
        ).fetchall()
        return {h: _array(v) for h, v in rows}

    def chunk_hashes(self, incident_id: str) -> dict[tuple[str, int], str]:
        rows = self.conn.execute(
            "SELECT field, seq, hash FROM chunks WHERE incident_id = %s", (incident_id,)
        ).fetchall()
        return {(f, s): h for f, s, h in rows}

    def upsert(self, record: IncidentRecord, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("DELETE FROM incidents WHERE id = %s", (record.id,))
            cur.execute(
                "INSERT INTO incidents VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    record.id,
                    record.title,
                    record.url,
                    iso(record.started),
                    record.severity.lower() if record.severity else None,
                    record.source,
                    record.model_dump_json(),
                    now_iso(),
                ),
            )
            cur.executemany(
                "INSERT INTO incident_services VALUES (%s, %s)",
                [(record.id, s.lower()) for s in dict.fromkeys(record.services)],
            )
            cur.executemany(
                "INSERT INTO chunks (incident_id, field, seq, text, hash, embedding) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (record.id, c.field, c.seq, c.text, c.hash, np.asarray(v, np.float32))
                    for c, v in zip(chunks, vectors, strict=True)
                ],
            )

    def delete(self, incident_id: str) -> bool:
        cur = self.conn.execute("DELETE FROM incidents WHERE id = %s", (incident_id,))
        return bool(cur.rowcount)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> dict[str, IncidentRecord]:
        rows = self.conn.execute(
            "SELECT record FROM incidents WHERE id = ANY(%s)", (list(ids),)
        ).fetchall()
        recs = [IncidentRecord.model_validate_json(r[0]) for r in rows]
        return {r.id: r for r in recs}

    def incident_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM incidents ORDER BY id").fetchall()]

    def lexical_scores(self, query: str, flt: SearchFilter) -> Scores:

        terms = query_terms(query)
        if not terms:
            return empty_scores()
        where, params = filter_sql(flt, "%s", "incident_id")
        # Matching chunks are ranked up to LEXICAL_ROWS, a bound that never depends on how many
        # results are asked for; DISTINCT ON keeps each incident's best chunk.
        rows = self.conn.execute(
            (
                "SELECT DISTINCT ON (incident_id) incident_id, field, seq, rank FROM ("
                "SELECT incident_id, field, seq, ts_rank(tsv, q) AS rank "
                "FROM chunks, to_tsquery('english', %s) AS q "
                f"WHERE tsv @@ q{where} ORDER BY rank DESC LIMIT %s) AS matched "
                "ORDER BY incident_id, rank DESC, field, seq"
            ).encode(),
            [" | ".join(terms), *params, LEXICAL_ROWS],
        ).fetchall()
        return _scores(rows)

    def vector_scores(
        self, queries: np.ndarray, flt: SearchFilter, depth: int, also: Sequence[str] = ()
    ) -> Scores:
        import numpy as np

        if self.model() is None:
            return empty_scores()
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        where, params = filter_sql(flt, "%s", "incident_id")
        nearest = (
            "SELECT incident_id, field, seq, 1 - (embedding <=> %s) AS sim FROM chunks "
            f"WHERE true{where} ORDER BY embedding <=> %s LIMIT %s"
        ).encode()
        exact = (
            "SELECT DISTINCT ON (incident_id) incident_id, field, seq, 1 - (embedding <=> %s) "
            f"FROM chunks WHERE incident_id = ANY(%s){where} "
            "ORDER BY incident_id, embedding <=> %s, field, seq"
        ).encode()
        best: dict[str, tuple[str, str, int, float, int]] = {}
        floor = float("inf")
        with self.conn.transaction():
            self.conn.execute(f"SET LOCAL hnsw.ef_search = {max(_EF_SEARCH, depth)}".encode())
            self.conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            for row_no, vec in enumerate(q):
                # Chunks, not incidents: one incident may hold several of the nearest chunks.
                found = self.conn.execute(nearest, [vec, *params, vec, depth * 4]).fetchall()
                if len(found) == depth * 4:
                    floor = min(floor, min(float(r[3]) for r in found))
                extra = (
                    self.conn.execute(exact, [vec, list(also), *params, vec]).fetchall()
                    if also
                    else []
                )
                for inc, field, seq, sim in [*found, *extra]:
                    if inc not in best or float(sim) > best[inc][3]:
                        best[inc] = (inc, field, seq, float(sim), row_no)
        complete = floor == float("inf")
        return _scores(list(best.values()), complete=complete, floor=floor)

    def snippets(self, query: str, hits: Sequence[Hit]) -> dict[tuple[str, str, int], str]:
        terms = query_terms(query)
        out: dict[tuple[str, str, int], str] = {}
        for h in hits if terms else []:
            text = self._one(
                "SELECT ts_headline('english', text, to_tsquery('english', %s), "
                "'StartSel=[, StopSel=], MaxWords=18, MinWords=6') "
                "FROM chunks WHERE incident_id = %s AND field = %s AND seq = %s",
                (" | ".join(terms), h.incident_id, h.field, h.seq),
            )
            if text is not None:
                out[(h.incident_id, h.field, h.seq)] = text
        return out

    def profiles(self, fields: frozenset[str], flt: SearchFilter) -> tuple[list[str], np.ndarray]:
        import numpy as np

        where, params = filter_sql(flt, "%s", "incident_id")
        # The server averages each field: a few vectors per incident cross the wire, not one
        # per chunk. The rest is retro.index.repeats.profile_vector's rule.
        rows = self.conn.execute(
            (
                "SELECT incident_id, field, avg(embedding) FROM chunks "
                f"WHERE true{where} GROUP BY incident_id, field ORDER BY incident_id, field"
            ).encode(),
            params,
            binary=True,  # vectors as bytes: parsing 384 numbers of text each costs seconds
        ).fetchall()
        ids: list[str] = []
        out: list[np.ndarray] = []
        by_incident: dict[str, list[tuple[str, np.ndarray]]] = {}
        for inc, field, mean in rows:
            by_incident.setdefault(inc, []).append((field, _array(mean)))
        for inc, groups in by_incident.items():
            chosen = [v for f, v in groups if f in fields] or [v for _, v in groups]
            units = np.stack([v / max(float(np.linalg.norm(v)), 1e-12) for v in chosen])
            total = units.mean(axis=0)
            ids.append(inc)
            out.append(total / max(float(np.linalg.norm(total)), 1e-12))
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        return ids, np.stack(out).astype(np.float32)

    def chunk_vectors(self, incident_id: str) -> list[tuple[Chunk, np.ndarray]]:

        rows = self.conn.execute(
            "SELECT field, seq, text, hash, embedding FROM chunks WHERE incident_id = %s "
            "ORDER BY field, seq",
            (incident_id,),
            binary=True,
        ).fetchall()
        return [(Chunk(field=f, seq=s, text=t, hash=h), _array(v)) for f, s, t, h, v in rows]

    def chunk_texts(self, keys: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str, int], str]:
        out: dict[tuple[str, str, int], str] = {}
        for inc, field, seq in keys:
            text = self._one(
                "SELECT text FROM chunks WHERE incident_id = %s AND field = %s AND seq = %s",
                (inc, field, seq),
            )
            if text is not None:
                out[(inc, field, seq)] = text
        return out

    def stats(self) -> StoreStats:
        bound = self.model()
        span = self.conn.execute("SELECT MIN(started), MAX(started) FROM incidents").fetchone()
        oldest, newest = span if span else (None, None)
        by_field = self.conn.execute(
            "SELECT field, COUNT(*) FROM chunks GROUP BY field ORDER BY field"
        )
        return StoreStats(
            url=self.url,
            backend=self.backend,
            schema_version=self.schema_version(),
            incidents=self._one("SELECT COUNT(*) FROM incidents"),
            chunks=self._one("SELECT COUNT(*) FROM chunks"),
            embedder=bound[0] if bound else None,
            dim=bound[1] if bound else None,
            by_field={f: n for f, n in by_field.fetchall()},
            services=self._one("SELECT COUNT(DISTINCT service) FROM incident_services"),
            oldest=oldest,
            newest=newest,
        )

    def close(self) -> None:
        self.conn.close()
