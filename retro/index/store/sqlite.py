"""The default index: one SQLite file, FTS5 for text, brute-force cosine over float32 BLOBs.

The stdlib sqlite3 here cannot load extensions (no sqlite-vec), so vectors live as BLOBs and
search multiplies an in-memory numpy matrix; docs/similarity.md has the measurements behind
this choice. Vectors are stored once, in the file; the matrix is read per process and reloaded
when the `generation` counter in `meta`, bumped by every write, changes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from retro.errors import StoreError
from retro.index.blas import blas_threads, idle_cores
from retro.index.store.base import (
    Chunk,
    Dialect,
    Hit,
    IncidentRecord,
    Picked,
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
from retro.index.store.vectors import Matrix

if TYPE_CHECKING:
    import numpy as np


def _remove_old_cache(path: str) -> None:
    """Delete the .npy copy of the vectors that earlier versions kept next to the database."""
    for suffix in (".vectors.npy", ".vectors.json"):
        # Someone else's file, or a read-only folder: leaving it only costs disk space.
        with contextlib.suppress(OSError):
            Path(path + suffix).unlink(missing_ok=True)


def _match(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of the terms (each quoted, so no FTS syntax gets through)."""
    return " OR ".join(f'"{t}"' for t in terms)


PAGE_SIZE = 16_384

# How many matching rows the lexical ranking may score per query: bm25 cost 2.5 us per row
# on the 2-core bench machine, and bringing a row into Python about 1 us, so this is about 14 ms.
LEXICAL_BUDGET = 4_000


class SQLiteStore(Store):
    """Index in one SQLite file (or :memory:)."""

    backend: ClassVar[Dialect] = "sqlite"
    concurrent_reads: ClassVar[bool] = True

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self.url = f"sqlite:///{self.path}"
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the folder for {self.path}: {exc.strerror}",
                    hint="set RETRO_DATABASE_URL=sqlite:///<writable path> or RETRO_USER_PATH",
                ) from exc
        try:
            # search() reads the full-text index from a second thread while the model embeds
            # the query; the two never use the connection at the same time.
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA foreign_keys = ON")
            # A chunk row is about 1.8 KB (a 1.5 KB vector and its text): 4 KB pages hold two
            # and waste a sixth of the file; 16 KB pages waste a sixteenth. Only a new file takes
            # the setting, so it comes before WAL mode writes the header.
            self.conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            if self.path != ":memory:":
                self.conn.execute("PRAGMA journal_mode = WAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"Cannot open the index {self.path}: {exc}",
                hint="check the file is a retro index, or point RETRO_DATABASE_URL elsewhere",
            ) from exc
        self._matrix: Matrix | None = None
        if self.path != ":memory:":
            _remove_old_cache(self.path)
        self._vocab_ready = False
        self._df_cache: dict[str, int] = {}  # valid for _df_generation
        self._match_cache: dict[tuple[str, int], str | None] = {}
        self._df_generation: str | None = None

    # -- schema ---------------------------------------------------------------------------------
    def _migrate(self) -> None:
        current = self.schema_version()
        pending = [m for m in load_migrations("sqlite") if m[0] > current]
        if not pending:
            return
        # BEGIN IMMEDIATE takes the write lock, so two processes never apply the same migration.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            current = self.schema_version()
            for version, name, sql in pending:
                if version <= current:
                    continue
                for statement in split_sql(sql):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)", (version, name, now_iso())
                )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def schema_version(self) -> int:
        row = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        ).fetchone()
        if row is None:
            return 0
        return int(
            self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[
                0
            ]
        )

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _bump(self) -> None:
        gen = int(self._meta("generation") or 0) + 1
        self._set_meta("generation", str(gen))

    def model(self) -> tuple[str, int] | None:
        name, dim = self._meta("embedder"), self._meta("dim")
        return None if name is None or dim is None else (name, int(dim))

    def bind_model(self, model_id: str, dim: int) -> None:
        if self._check_model(self.model(), model_id, dim):
            self._set_meta("embedder", model_id)
            self._set_meta("dim", str(dim))

    # -- writes ---------------------------------------------------------------------------------
    def vectors_by_hash(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        import numpy as np

        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT hash, embedding FROM chunks WHERE hash IN ({marks})", part
            ).fetchall()
            for digest, blob in rows:
                found[digest] = np.frombuffer(blob, dtype=np.float32)
        return found

    def chunk_hashes(self, incident_id: str) -> dict[tuple[str, int], str]:
        rows = self.conn.execute(
            "SELECT field, seq, hash FROM chunks WHERE incident_id = ?", (incident_id,)
        )
        return {(f, s): h for f, s, h in rows}

    def upsert(self, record: IncidentRecord, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        import numpy as np

        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute("DELETE FROM incidents WHERE id = ?", (record.id,))
            self.conn.execute(
                "INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
            self.conn.executemany(
                "INSERT INTO incident_services VALUES (?, ?)",
                [(record.id, s.lower()) for s in dict.fromkeys(record.services)],
            )
            self.conn.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (record.id, c.field, c.seq, c.text, c.hash, np.asarray(v, np.float32).tobytes())
                    for c, v in zip(chunks, vectors, strict=True)
                ],
            )
            self._bump()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def delete(self, incident_id: str) -> bool:
        cur = self.conn.execute("DELETE FROM incidents WHERE id = ?", (incident_id,))
        if cur.rowcount:
            self._bump()
        return bool(cur.rowcount)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, ids: Sequence[str]) -> dict[str, IncidentRecord]:
        out: dict[str, IncidentRecord] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for (raw,) in self.conn.execute(
                f"SELECT record FROM incidents WHERE id IN ({marks})", part
            ):
                rec = IncidentRecord.model_validate_json(raw)
                out[rec.id] = rec
        return out

    def incident_ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT id FROM incidents ORDER BY id")]

    def lexical_scores(self, query: str, flt: SearchFilter) -> Scores:
        import numpy as np

        mat = self._load_matrix()
        match = self._lexical_match(query) if mat is not None else None
        if match is None or mat is None:
            return empty_scores()
        where, params = filter_sql(flt, "?", "incident_id")
        restrict = f" AND rowid IN (SELECT rowid FROM chunks WHERE 1 = 1{where})" if where else ""
        # Every matching chunk is ranked (bm25 is lower-is-better): LEXICAL_BUDGET bounds the
        # work, never the number of results asked for.
        found = self.conn.execute(
            f"SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?{restrict}",
            [match, *params],
        ).fetchall()
        if not found:
            return empty_scores()
        raw = np.asarray(found, dtype=np.float64)
        rows = mat.rows_of(raw[:, 0].astype(np.int64))
        keep = rows >= 0
        rows, score = rows[keep], -raw[keep, 1]
        # Each incident's best chunk: sort by score (then row, for stable ties), keep the first.
        order = np.lexsort((rows, -score))
        owners = mat.owner[rows[order]]
        _, first = np.unique(owners, return_index=True)
        chosen = order[first]
        best_rows, best = rows[chosen], score[chosen]
        at = mat.owner[best_rows].astype(np.intp)
        ids = Picked(mat.incident_ids, at)

        def detail(i: int) -> Hit:
            r = int(best_rows[i])
            return Hit(ids[i], str(mat.fields[r]), int(mat.seqs[r]), float(best[i]))

        return Scores(ids, best, detail, space=mat.incident_ids, at=at)

    def snippets(self, query: str, hits: Sequence[Hit]) -> dict[tuple[str, str, int], str]:
        # The same query the ranking used: MATCH visits every row a term matches.
        match = self._lexical_match(query) if hits else None
        if match is None:
            return {}
        keys: dict[int, tuple[str, str, int]] = {}
        for h in hits:
            row = self.conn.execute(
                "SELECT rowid FROM chunks WHERE incident_id = ? AND field = ? AND seq = ?",
                (h.incident_id, h.field, h.seq),
            ).fetchone()
            if row:
                keys[int(row[0])] = (h.incident_id, h.field, h.seq)
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            "SELECT rowid, snippet(chunks_fts, 0, '[', ']', '…', 14) FROM chunks_fts "
            f"WHERE chunks_fts MATCH ? AND rowid IN ({marks})",
            [match, *keys],
        )
        return {keys[rowid]: text for rowid, text in rows}

    def _affordable_terms(self, terms: list[str]) -> list[str]:
        """The rarest terms whose postings fit LEXICAL_BUDGET rows together; [] when even the
        rarest is over it. Common terms add little to bm25 and cost the most."""
        df = {t: self._doc_freq(t) for t in terms}
        kept: list[str] = []
        used = 0
        for t in sorted(terms, key=lambda t: df[t]):
            if used + df[t] > LEXICAL_BUDGET:
                break
            kept.append(t)
            used += df[t]
        return kept

    def _lexical_match(self, query: str) -> str | None:
        """The FTS5 query for a text, or None when no bounded query matches anything.

        FTS5 computes bm25 for every matching row before sorting (2.5 us a row here), so a
        query of common words over 400k texts would take hundreds of milliseconds. Words that
        appear nowhere are dropped; the rarest words whose postings fit LEXICAL_BUDGET are
        OR-ed; when every word is common, the texts holding all of them are ranked, if they fit.
        """
        generation = self._meta("generation")
        if self._df_generation != generation:  # the index changed: frequencies did too
            self._df_cache.clear()
            self._match_cache.clear()
            self._df_generation = generation
        key = (query, LEXICAL_BUDGET)
        if key in self._match_cache:  # the ranking and its snippets ask for the same query
            return self._match_cache[key]
        terms = [t for t in query_terms(query) if self._doc_freq(t) > 0]
        match: str | None = None
        if terms:
            kept = self._affordable_terms(terms)
            if kept:
                match = _match(kept)
            else:
                every = " AND ".join(f'"{t}"' for t in terms)
                (count,) = self.conn.execute(
                    "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", [every]
                ).fetchone()
                match = every if 0 < count <= LEXICAL_BUDGET else None
        if len(self._match_cache) > 256:
            self._match_cache.clear()
        self._match_cache[key] = match
        return match

    def _ensure_vocab(self) -> None:
        if self._vocab_ready:
            return
        # Temp tables: per connection, nothing persistent. _qterm tokenises a query word with
        # the index's own tokenizer, so we can look the stem up in the index vocabulary.
        self.conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
            "USING fts5vocab(main, chunks_fts, 'row')"
        )
        self.conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp._qterm "
            "USING fts5(text, tokenize = 'porter unicode61')"
        )
        self.conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp._qterm_vocab USING fts5vocab(temp, _qterm, 'row')"
        )
        self._vocab_ready = True

    def _doc_freq(self, term: str) -> int:
        """How many indexed texts contain the term (after stemming); cached until a write."""
        cached = self._df_cache.get(term)
        if cached is not None:
            return cached
        self._ensure_vocab()
        self.conn.execute("DELETE FROM temp._qterm")
        self.conn.execute("INSERT INTO temp._qterm (text) VALUES (?)", (term,))
        row = self.conn.execute(
            "SELECT COALESCE(SUM(v.doc), 0) FROM temp._qterm_vocab q "
            "JOIN temp.chunks_vocab v ON v.term = q.term"
        ).fetchone()
        self._df_cache[term] = n = int(row[0])
        return n

    def _load_matrix(self) -> Matrix | None:
        gen = self._meta("generation") or "0"
        if self._matrix is not None and self._matrix.generation == gen:
            return self._matrix
        bound = self.model()
        if bound is None:
            return None
        # Rowid order reads the table front to back; Matrix.build groups rows by incident.
        rows = self.conn.execute(
            "SELECT rowid, incident_id, field, seq, embedding FROM chunks"
        ).fetchall()
        self._matrix = Matrix.build(gen, rows, bound[1]) if rows else None
        return self._matrix

    def warm(self) -> None:
        self._load_matrix()

    def _allowed(self, flt: SearchFilter, mat: Matrix) -> np.ndarray | None:
        """Mask over the matrix's incidents that pass the filter (None: no filter)."""
        import numpy as np

        if not flt.active:
            return None
        where, params = filter_sql(flt, "?", "id")
        mask = np.zeros(len(mat.incident_ids), dtype=bool)
        for (inc,) in self.conn.execute(f"SELECT id FROM incidents WHERE 1 = 1{where}", params):
            at = mat.index.get(inc)
            if at is not None:
                mask[at] = True
        return mask

    def vector_scores(
        self, queries: np.ndarray, flt: SearchFilter, depth: int, also: Sequence[str] = ()
    ) -> Scores:
        import numpy as np

        mat = self._load_matrix()
        if mat is None:
            return empty_scores()
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        with blas_threads(idle_cores()):
            score, best_of = mat.incident_scores(q, self._allowed(flt, mat))
        ids = mat.incident_ids

        def detail(i: int) -> Hit:
            row, qrow = best_of(i)
            field, seq = str(mat.fields[row]), int(mat.seqs[row])
            return Hit(ids[i], field, seq, float(score[i]), query_row=qrow)

        return Scores(ids, score, detail, index=mat.index, space=ids)

    def profiles(self, fields: frozenset[str], flt: SearchFilter) -> tuple[list[str], np.ndarray]:
        import numpy as np

        mat = self._load_matrix()
        if mat is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        prof = mat.profiles(fields)
        allowed = self._allowed(flt, mat)
        if allowed is None:
            return list(mat.incident_ids), prof
        keep = np.flatnonzero(allowed)
        return [mat.incident_ids[i] for i in keep], prof[keep]

    def chunk_vectors(self, incident_id: str) -> list[tuple[Chunk, np.ndarray]]:
        import numpy as np

        rows = self.conn.execute(
            "SELECT field, seq, text, hash, embedding FROM chunks WHERE incident_id = ? "
            "ORDER BY field, seq",
            (incident_id,),
        )
        return [
            (Chunk(field=f, seq=s, text=t, hash=h), np.frombuffer(b, dtype=np.float32))
            for f, s, t, h, b in rows
        ]

    def chunk_texts(self, keys: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str, int], str]:
        out: dict[tuple[str, str, int], str] = {}
        for inc, field, seq in keys:
            row = self.conn.execute(
                "SELECT text FROM chunks WHERE incident_id = ? AND field = ? AND seq = ?",
                (inc, field, seq),
            ).fetchone()
            if row:
                out[(inc, field, seq)] = row[0]
        return out

    def stats(self) -> StoreStats:
        one = self.conn.execute
        bound = self.model()
        oldest, newest = one("SELECT MIN(started), MAX(started) FROM incidents").fetchone()
        return StoreStats(
            url=self.url,
            backend=self.backend,
            schema_version=self.schema_version(),
            incidents=one("SELECT COUNT(*) FROM incidents").fetchone()[0],
            chunks=one("SELECT COUNT(*) FROM chunks").fetchone()[0],
            embedder=bound[0] if bound else None,
            dim=bound[1] if bound else None,
            by_field=dict(one("SELECT field, COUNT(*) FROM chunks GROUP BY field ORDER BY field")),
            services=one("SELECT COUNT(DISTINCT service) FROM incident_services").fetchone()[0],
            oldest=oldest,
            newest=newest,
        )

    def close(self) -> None:
        self.conn.close()
