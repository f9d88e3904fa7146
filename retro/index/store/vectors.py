"""The in-memory vector matrix of the SQLite store: exact cosine, a PCA pre-stage, a disk cache.

Brute force reads every stored float32 vector per query, so query time grows with the bytes
read: about 60 ms for 400k vectors (100k incidents of four chunks) on a 2-core machine. Above
`EXACT_ROWS` vectors a pre-stage scores all rows in a PCA-reduced space (a quarter of the bytes)
and the best `candidates` rows are then scored exactly; bench/search.py measures its recall.

Loading 40k BLOBs from SQLite costs ~0.7 s, too much for a cold `retro search`, so the matrix is
also written next to the database as .npy files and memory-mapped on the next start. The cache
carries the store's generation counter and is ignored when the store has changed since.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EXACT_ROWS = 150_000
PCA_DIMS = 96
CANDIDATES = 4000
FORMAT = 1


@dataclass
class Matrix:
    """Every stored vector as one matrix, rows grouped by incident."""

    generation: str
    vectors: np.ndarray  # (rows, dim) unit vectors
    owner: np.ndarray  # incident index of each row
    starts: np.ndarray  # first row of each incident
    incident_ids: list[str]
    fields: list[str]
    seqs: np.ndarray
    basis: np.ndarray | None = None  # (dim, PCA_DIMS) projection, when the pre-stage is on
    reduced: np.ndarray | None = None  # (rows, PCA_DIMS)
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def build(cls, generation: str, rows: list[tuple[str, str, int, bytes]], dim: int) -> Matrix:
        """From (incident id, field, seq, blob) rows sorted by incident."""
        import numpy as np

        vectors = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.float32).reshape(-1, dim)
        incident_ids: list[str] = []
        owner = np.empty(len(rows), dtype=np.int32)
        starts: list[int] = []
        for i, row in enumerate(rows):
            if not incident_ids or incident_ids[-1] != row[0]:
                incident_ids.append(row[0])
                starts.append(i)
            owner[i] = len(incident_ids) - 1
        m = cls(
            generation,
            vectors,
            owner,
            np.asarray(starts, dtype=np.intp),
            incident_ids,
            [r[1] for r in rows],
            np.asarray([r[2] for r in rows], dtype=np.int32),
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

    def top_incidents(
        self, q: np.ndarray, limit: int, allowed: np.ndarray | None
    ) -> list[tuple[int, int, float, int]]:
        """(incident index, row, cosine, query row) of the best `limit` incidents, best first.

        q holds one query per row; an incident scores its best (chunk, query) pair. `allowed` is
        a boolean mask over incidents.
        """
        import numpy as np

        approx = self.reduced is not None and self.basis is not None
        if approx:
            rows = self._candidates(q, limit, allowed)
            sims = np.asarray(self.vectors[rows]) @ q.T
        else:
            rows = None
            sims = self.vectors @ q.T
        best = sims.max(axis=1)
        qrow = sims.argmax(axis=1)
        if rows is None:
            per_incident = np.maximum.reduceat(best, self.starts)
            if allowed is not None:
                per_incident = np.where(allowed, per_incident, -np.inf)
            n = min(limit, int(np.isfinite(per_incident).sum()))
            if n <= 0:
                return []
            top = np.argpartition(-per_incident, n - 1)[:n]
            top = top[np.argsort(-per_incident[top])]
            ends = np.append(self.starts[1:], len(best))
            out = []
            for inc in top:
                lo, hi = int(self.starts[inc]), int(ends[inc])
                row = lo + int(best[lo:hi].argmax())
                out.append((int(inc), row, float(best[row]), int(qrow[row])))
            return out
        picked: dict[int, tuple[int, int, float, int]] = {}
        for i in np.argsort(-best, kind="stable"):
            inc = int(self.owner[rows[i]])
            if inc not in picked:
                picked[inc] = (inc, int(rows[i]), float(best[i]), int(qrow[i]))
                if len(picked) == limit:
                    break
        return list(picked.values())

    def _candidates(self, q: np.ndarray, limit: int, allowed: np.ndarray | None) -> np.ndarray:
        """Rows worth scoring exactly, chosen in the PCA space."""
        import numpy as np

        assert self.reduced is not None and self.basis is not None
        approx = (self.reduced @ (self.basis.T @ q.T)).max(axis=1)
        if allowed is not None:
            approx = np.where(allowed[self.owner], approx, -np.inf)
        count = min(len(approx), max(CANDIDATES, limit * 40))
        rows = np.argpartition(-approx, count - 1)[:count]
        return rows[np.isfinite(approx[rows])]


def cache_paths(db_path: str) -> tuple[Path, Path]:
    base = Path(db_path)
    return base.with_name(base.name + ".vectors.npy"), base.with_name(base.name + ".vectors.json")


def save(m: Matrix, db_path: str, model: tuple[str, int]) -> None:
    """Write the matrix next to the database; a failure only costs speed, so it is ignored."""
    import numpy as np

    vec_path, idx_path = cache_paths(db_path)
    try:
        tmp = vec_path.with_name(vec_path.name + f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.save(fh, np.ascontiguousarray(m.vectors))
        meta = {
            "format": FORMAT,
            "generation": m.generation,
            "model": list(model),
            "incident_ids": m.incident_ids,
            "starts": m.starts.tolist(),
            "fields": m.fields,
            "seqs": m.seqs.tolist(),
        }
        tmp_idx = idx_path.with_name(idx_path.name + f".{os.getpid()}.tmp")
        tmp_idx.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp, vec_path)
        os.replace(tmp_idx, idx_path)
    except OSError:
        pass


def load(db_path: str, generation: str, model: tuple[str, int]) -> Matrix | None:
    """The cached matrix, if it matches the store's generation and model."""
    import numpy as np

    vec_path, idx_path = cache_paths(db_path)
    try:
        meta = json.loads(idx_path.read_text(encoding="utf-8"))
        if (
            meta.get("format") != FORMAT
            or meta.get("generation") != generation
            or tuple(meta.get("model", ())) != model
        ):
            return None
        vectors = np.load(vec_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    starts = np.asarray(meta["starts"], dtype=np.intp)
    counts = np.diff(np.append(starts, len(vectors)))
    if len(vectors) != len(meta["fields"]) or vectors.shape[1:] != (model[1],):
        return None
    owner = np.repeat(np.arange(len(starts), dtype=np.int32), counts)
    m = Matrix(
        generation,
        vectors,
        owner,
        starts,
        meta["incident_ids"],
        meta["fields"],
        np.asarray(meta["seqs"], dtype=np.int32),
    )
    m.prepare()
    return m
