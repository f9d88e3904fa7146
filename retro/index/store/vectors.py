"""The in-memory vector matrix of the SQLite store: exact cosine, with a PCA pre-stage when large.

Vectors are stored once, as float32 BLOBs in the `chunks` table; a process reads them into one
matrix on its first search and keeps it until the store's `generation` counter (bumped by every
write) moves on. An earlier design also wrote the matrix next to the database as a memory-mapped
.npy cache, which made the index 2.9 times the size of its vectors; reading the BLOBs in rowid
order is fast enough for a cold `retro search` (docs/similarity.md has the figures).

Brute force reads every stored vector per query. Above `EXACT_ROWS` vectors a pre-stage scores
every row in a PCA-reduced space (an eighth of the bytes) and rescores the best `CANDIDATES` rows
exactly; the others keep their reduced-space score. The candidate count is fixed, never derived
from how many results are asked, so the ranking does not depend on -k. bench/search.py measures
its recall against exact search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EXACT_ROWS = 150_000
PCA_DIMS = 48
CANDIDATES = 4000


@dataclass
class Matrix:
    """Every stored vector as one matrix, rows grouped by incident (incidents sorted by id)."""

    generation: str
    vectors: np.ndarray  # (rows, dim) unit vectors
    owner: np.ndarray  # incident position of each row
    starts: np.ndarray  # first row of each incident
    incident_ids: list[str]
    fields: np.ndarray  # field of each row (str array)
    seqs: np.ndarray
    rowids: np.ndarray  # the chunks table's rowid of each row
    index: dict[str, int] = field(default_factory=dict)  # incident id -> position
    basis: np.ndarray | None = None  # (dim, PCA_DIMS) projection, when the pre-stage is on
    reduced: np.ndarray | None = None  # (rows, PCA_DIMS)
    _by_rowid: np.ndarray | None = None
    _sorted_rowids: np.ndarray | None = None
    _profiles: dict[frozenset[str], np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        generation: str,
        rows: Sequence[tuple[int, str, str, int, bytes]],
        dim: int,
    ) -> Matrix:
        """From (rowid, incident id, field, seq, blob) rows in any order."""
        import numpy as np

        # Codes instead of strings: sorting and grouping 400k rows stays in numpy.
        incident_ids = sorted({r[1] for r in rows})
        field_names = sorted({r[2] for r in rows})
        inc_code = {inc: n for n, inc in enumerate(incident_ids)}
        field_code = {f: n for n, f in enumerate(field_names)}
        owner = np.fromiter((inc_code[r[1]] for r in rows), dtype=np.int32, count=len(rows))
        fields = np.fromiter((field_code[r[2]] for r in rows), dtype=np.int16, count=len(rows))
        seqs = np.fromiter((r[3] for r in rows), dtype=np.int32, count=len(rows))
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        # Rows grouped by incident, each incident's chunks in (field, seq) order as
        # chunk_vectors lists them.
        order = np.lexsort((seqs, fields, owner))
        blob = b"".join([rows[i][4] for i in order.tolist()])
        m = cls(
            generation=generation,
            vectors=np.frombuffer(blob, dtype=np.float32).reshape(-1, dim),
            owner=owner[order],
            starts=np.flatnonzero(np.r_[True, np.diff(owner[order]) != 0]).astype(np.intp),
            incident_ids=incident_ids,
            fields=np.asarray(field_names, dtype=str)[fields[order]],
            seqs=seqs[order],
            rowids=rowids[order],
            index=inc_code,
        )
        m.prepare()
        return m

    def prepare(self) -> None:
        """Fit the PCA pre-stage when the matrix is large enough to need it."""
        import numpy as np

        if len(self.vectors) <= EXACT_ROWS or self.basis is not None:
            return
        rng = np.random.default_rng(0)
        size = min(20_000, len(self.vectors))
        sample = self.vectors[rng.choice(len(self.vectors), size=size, replace=False)]
        # Uncentred PCA: the top eigenvectors of V^T V keep the most of every dot product.
        _, eigvecs = np.linalg.eigh(sample.T @ sample)
        self.basis = np.ascontiguousarray(eigvecs[:, ::-1][:, :PCA_DIMS]).astype(np.float32)
        self.reduced = np.ascontiguousarray(self.vectors @ self.basis)

    def row_scores(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(best cosine over the query rows, which query row; None for one query) per stored row."""
        import numpy as np

        if self.reduced is None or self.basis is None:
            sims = self.vectors @ q.T
        else:
            sims = self.reduced @ (self.basis.T @ q.T)
        if len(q) == 1:
            best, qrow = sims[:, 0].copy(), None
        else:
            best, qrow = sims.max(axis=1), sims.argmax(axis=1)
        if self.reduced is not None:
            count = min(len(best), CANDIDATES)
            rows = np.argpartition(best, len(best) - count)[len(best) - count :]
            exact = self.vectors[rows] @ q.T
            best[rows] = exact.max(axis=1)
            if qrow is not None:
                qrow[rows] = exact.argmax(axis=1)
        return best, qrow

    def incident_scores(
        self, q: np.ndarray, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, Callable[[int], tuple[int, int]]]:
        """(score per incident, best(i)): an incident's score is its best chunk's cosine to any
        query row (-inf where `allowed`, a mask over incidents, is False); best(i) gives that
        chunk's row and query row, worked out only for the incidents that are shown."""
        import numpy as np

        best, qrow = self.row_scores(q)
        per_incident = np.maximum.reduceat(best, self.starts)
        if allowed is not None:
            per_incident = np.where(allowed, per_incident, -np.inf)
        ends = np.append(self.starts[1:], len(best))

        def best_of(i: int) -> tuple[int, int]:
            lo, hi = int(self.starts[i]), int(ends[i])
            row = lo + int(np.argmax(best[lo:hi]))
            return row, int(qrow[row]) if qrow is not None else 0

        return per_incident, best_of

    def rows_of(self, rowids: np.ndarray) -> np.ndarray:
        """Matrix rows of chunks table rowids; -1 for rowids it does not hold."""
        import numpy as np

        if self._by_rowid is None or self._sorted_rowids is None:
            self._by_rowid = np.argsort(self.rowids, kind="stable")
            self._sorted_rowids = self.rowids[self._by_rowid]
        by_rowid, sorted_ids = self._by_rowid, self._sorted_rowids
        if not len(sorted_ids):
            return np.full(len(rowids), -1, dtype=np.intp)
        at = np.minimum(np.searchsorted(sorted_ids, rowids), len(sorted_ids) - 1)
        return np.where(sorted_ids[at] == rowids, by_rowid[at], -1)

    def profiles(self, fields: frozenset[str]) -> np.ndarray:
        """One profile per incident, as retro.index.repeats.profile_vector makes it: the unit
        mean of the unit means of its fields in `fields` (of all its fields when it has none).
        Cached per field set."""
        import numpy as np

        if fields in self._profiles:
            return self._profiles[fields]
        n, dim = len(self.incident_ids), self.vectors.shape[1]
        chosen = np.isin(self.fields, sorted(fields))
        has = np.bincount(self.owner[chosen], minlength=n) > 0
        rows = np.flatnonzero(chosen | ~has[self.owner])  # every incident keeps some rows
        own, fld = self.owner[rows], self.fields[rows]
        # Rows are grouped by (incident, field): one group per field of each incident.
        starts = np.flatnonzero(np.r_[True, (own[1:] != own[:-1]) | (fld[1:] != fld[:-1])])
        means = np.empty((len(starts), dim), dtype=np.float32)
        for lo in range(0, len(starts), 32_768):  # blocks bound the temporaries
            hi = min(len(starts), lo + 32_768)
            first, last = starts[lo], starts[hi] if hi < len(starts) else len(rows)
            block = self.vectors[rows[first:last]]
            means[lo:hi] = np.add.reduceat(block, starts[lo:hi] - first, axis=0)
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        group_owner = own[starts]
        firsts = np.flatnonzero(np.r_[True, group_owner[1:] != group_owner[:-1]])
        sums = np.add.reduceat(means, firsts, axis=0)
        out = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(
            np.float32
        )
        self._profiles[fields] = out
        return out
