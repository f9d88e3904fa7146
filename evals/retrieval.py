"""Retrieval quality of `retro search`: lexical, vector and hybrid side by side, with intervals.

Run `python -m evals.retrieval` from the repository root (about two minutes; `--tune` adds the
weight sweep on the tuning half). It reads ../shared/corpus at run time (the corpus has no licence
for redistribution: nothing of it is copied into this repository) and skips cleanly when that
folder is absent.

Index: the 190 danluu/post-mortems entries as {id, text} records (text = the entry's description;
no title, so the company name cannot make "same company" pass for "same incident").

Labelled queries, never indexed:
- known item: another source's words for one incident, whose danluu entry is the one answer:
  - keywords: its icco/postmortems keywords joined ("sydney ec2 ebs power outage ..."),
  - summary / root cause: the BYU Incident Database researchers' summary (without its class
    label) and root cause, for incidents in both databases;
- category (leave one out): an entry's own description; the answers are the other entries of its
  danluu README section (not "uncategorized"); the entry itself is excluded from its results.

Split: queries are cut into a tuning and a test half by a hash of the incident they are about, so
the queries about one incident fall on one side. `--tune` chooses the fusion weight on the tuning
half; the table reports the test half. 95% intervals come from a bootstrap that resamples the
incidents the queries are about (queries about one incident move together), paired across modes
for the differences.

MRR: mean reciprocal rank of the first right answer (over the top 50). hit@5: share of queries
with a right answer in the top 5. Also checked: the top 5 of -k 5 is the first 5 of -k 50.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retro.index.corpus import corpus_item
from retro.index.embeddings import Embedder, Progress
from retro.index.similarity import Fusion, Mode, index_incidents, rank_incidents
from retro.index.store.base import SearchFilter
from retro.index.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODES: tuple[Mode, ...] = ("lexical", "vector", "hybrid")
DEPTH = 50
BOOTSTRAP = 2000
WEIGHTS = [round(0.05 * i, 2) for i in range(21)]
_REFS = re.compile(r"\s*\[[\d,\s-]+\]")
_CLASS = re.compile(r"\s*\([^()]*\)\s*$")


@dataclass(frozen=True)
class Query:
    about: str  # the danluu id the query is about (the cluster for the bootstrap and the split)
    family: str  # keywords, summary, root cause, category
    text: str
    relevant: frozenset[str]
    exclude: str | None = None

    @property
    def half(self) -> str:
        digest = int(hashlib.sha256(self.about.encode()).hexdigest(), 16)
        return "tuning" if digest % 2 == 0 else "test"


def load_corpus(shared: Path) -> tuple[list[dict[str, str]], list[Query]]:
    """Records to index and the labelled queries."""
    corpus = shared / "corpus"
    danluu = json.loads((corpus / "danluu_postmortems.json").read_text())["entries"]
    records = [{"id": e["id"], "text": e["description"], "url": e["url"]} for e in danluu]
    crossref = json.loads((corpus / "incident_crossref_labels.json").read_text())["incidents"]
    idb = {
        e["id"]: e
        for e in json.loads((corpus / "byu_idb_structured_incidents.json").read_text())["incidents"]
    }
    queries: list[Query] = []
    known = {r["id"] for r in records}
    for inc in crossref:
        target = inc.get("danluu_id")
        if target not in known:
            continue
        keywords = [str(k) for k in inc["labels"].get("icco_keywords") or []]
        if keywords:
            queries.append(Query(target, "keywords", " ".join(keywords), frozenset({target})))
        entry = idb.get(inc.get("idb_id"))
        for family, key in (("summary", "summary"), ("root cause", "root cause")):
            text = _CLASS.sub("", _REFS.sub("", str((entry or {}).get(key) or ""))).strip()
            if text:
                queries.append(Query(target, family, text, frozenset({target})))
    sections = {e["id"]: e["category"] for e in danluu if e["category"] != "uncategorized"}
    by_id = {r["id"]: r for r in records}
    for qid, section in sections.items():
        relevant = frozenset(i for i, s in sections.items() if s == section and i != qid)
        if relevant:
            queries.append(Query(qid, "category", by_id[qid]["text"], relevant, exclude=qid))
    return records, queries


class CachedEmbedder(Embedder):
    """Embeds each distinct text once: every query is run in several modes and settings."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.dim = inner.dim
        self.cache: dict[str, np.ndarray] = {}

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            self.cache.update(zip(todo, self.inner.embed(todo, progress=progress), strict=True))
        return np.stack([self.cache[t] for t in texts]) if texts else self.inner.embed([])


def build_store(records: list[dict[str, str]]) -> tuple[SQLiteStore, CachedEmbedder]:
    from retro.index.embeddings import MiniLMEmbedder

    store = SQLiteStore(":memory:")
    embedder = CachedEmbedder(MiniLMEmbedder())
    path = Path("danluu_postmortems.json")
    items = [corpus_item(r, path, f"[{i}]") for i, r in enumerate(records)]
    index_incidents(items, store=store, embedder=embedder)
    return store, embedder


def ranked(
    store: SQLiteStore, embedder: Embedder, q: Query, mode: Mode, fusion: Fusion, k: int = DEPTH
) -> tuple[list[str], list[float]]:
    """The ids of the best k incidents for a query, and their fused scores."""
    vectors = embedder.embed([q.text]) if mode != "lexical" else None
    fused, top = rank_incidents(
        q.text,
        store=store,
        vectors=vectors,
        flt=SearchFilter(),
        mode=mode,
        fusion=fusion,
        k=k,
        exclude=q.exclude,
    )
    return [fused.ids[t] for t in top], [float(fused.score[t]) for t in top]


def ranked_ids(
    store: SQLiteStore, embedder: Embedder, q: Query, mode: Mode, fusion: Fusion, k: int = DEPTH
) -> list[str]:
    return ranked(store, embedder, q, mode, fusion, k)[0]


def reciprocal_rank(ranked: Sequence[str], relevant: frozenset[str]) -> float:
    return next((1.0 / n for n, r in enumerate(ranked, start=1) if r in relevant), 0.0)


def score(ranked: Sequence[str], relevant: set[str] | frozenset[str]) -> tuple[float, float, float]:
    """(recall@5, hit@5, reciprocal rank) of one query."""
    top = list(ranked[:5])
    found = sum(1 for r in top if r in relevant)
    return found / len(relevant), float(found > 0), reciprocal_rank(ranked, frozenset(relevant))


@dataclass
class Run:
    """Per-query results of one mode over a list of queries."""

    rr: np.ndarray
    hit5: np.ndarray
    k_stable: int  # queries whose top 5 of -k 5 is the first 5 of -k DEPTH
    top_ties: int  # queries whose first two results have the same score


def run(
    store: SQLiteStore,
    embedder: Embedder,
    queries: Sequence[Query],
    mode: Mode,
    fusion: Fusion,
    check_k: bool = False,
) -> Run:
    import numpy as np

    rrs, hits, stable, ties = [], [], 0, 0
    for q in queries:
        ids, scores = ranked(store, embedder, q, mode, fusion)
        rrs.append(reciprocal_rank(ids, q.relevant))
        hits.append(float(any(r in q.relevant for r in ids[:5])))
        ties += len(scores) > 1 and scores[0] == scores[1]
        if check_k:
            stable += ranked_ids(store, embedder, q, mode, fusion, k=5) == ids[:5]
    return Run(np.asarray(rrs), np.asarray(hits), stable, ties)


def bootstrap(
    values: dict[str, np.ndarray], clusters: Sequence[str], rounds: int = BOOTSTRAP, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """95% intervals of the mean of each array, resampling clusters (paired across arrays)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = sorted(set(clusters))
    member = np.asarray([names.index(c) for c in clusters])
    means: dict[str, list[float]] = {k: [] for k in values}
    for _ in range(rounds):
        counts = rng.multinomial(len(names), np.full(len(names), 1 / len(names)))
        weight = counts[member].astype(float)
        for k, v in values.items():
            means[k].append(float((weight * v).sum() / weight.sum()))
    return {
        k: (float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))) for k, m in means.items()
    }


def report(
    store: SQLiteStore, embedder: Embedder, queries: Sequence[Query], fusion: Fusion
) -> dict[str, Any]:
    """Test-half figures: per family and all together, each mode with intervals, and the
    hybrid's differences from each half."""
    test = [q for q in queries if q.half == "test"]
    runs = {m: run(store, embedder, test, m, fusion, check_k=True) for m in MODES}
    naive = run(store, embedder, test, "hybrid", Fusion(vector_weight=0.5, method="rrf"))
    out: dict[str, Any] = {"queries": len(test), "families": {}, "k_stable": {}}
    families = ["keywords", "summary", "root cause", "category", "all"]
    for fam in families:
        pick = [n for n, q in enumerate(test) if fam == "all" or q.family == fam]
        if not pick:
            continue
        clusters = [test[n].about for n in pick]
        values: dict[str, np.ndarray] = {m: runs[m].rr[pick] for m in MODES}
        values["naive rrf"] = naive.rr[pick]
        values["hybrid - lexical"] = values["hybrid"] - values["lexical"]
        values["hybrid - vector"] = values["hybrid"] - values["vector"]
        ci = bootstrap(values, clusters)
        out["families"][fam] = {
            "queries": len(pick),
            "mrr": {k: float(v.mean()) for k, v in values.items()},
            "mrr_ci": ci,
            "hit5": {m: float(runs[m].hit5[pick].mean()) for m in MODES},
        }
    out["k_stable"] = {m: runs[m].k_stable for m in MODES}
    out["top_ties"] = {m: runs[m].top_ties for m in MODES}
    return out


def tune(
    store: SQLiteStore, embedder: Embedder, queries: Sequence[Query]
) -> list[tuple[str, float]]:
    """MRR on the tuning half for each fusion setting tried, best first.

    Tried: the convex weight; rank fusion (RRF); and routing, a different weight for short
    (keyword-like) and long (sentence) queries.
    """
    import numpy as np

    tuning = [q for q in queries if q.half == "tuning"]
    per_weight = {w: run(store, embedder, tuning, "hybrid", Fusion(w)).rr for w in WEIGHTS}
    results = [(f"convex w={w}", float(rr.mean())) for w, rr in per_weight.items()]
    for k in (10, 60):
        for w in (0.35, 0.5, 0.65):
            fusion = Fusion(vector_weight=w, method="rrf", rrf_k=k)
            rr = run(store, embedder, tuning, "hybrid", fusion).rr
            results.append((f"rrf k={k} w={w}", float(rr.mean())))
    lengths = np.asarray([len(q.text.split()) for q in tuning])
    for cut in (6, 10, 15):
        short = lengths <= cut
        best_short = max(WEIGHTS, key=lambda w: per_weight[w][short].mean() if short.any() else 0)
        best_long = max(
            WEIGHTS, key=lambda w: per_weight[w][~short].mean() if (~short).any() else 0
        )
        rr = np.where(short, per_weight[best_short], per_weight[best_long])
        results.append(
            (f"routed: w={best_short} up to {cut} words, else w={best_long}", float(rr.mean()))
        )
    return sorted(results, key=lambda r: -r[1])


def _ci(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def table(result: dict[str, Any]) -> str:
    lines = [
        "| queries (test half) | n | lexical | vector | hybrid | hybrid - lexical | hybrid - vector |",
        "|---|---:|---|---|---|---|---|",
    ]
    for fam, r in result["families"].items():
        m, ci = r["mrr"], r["mrr_ci"]
        cells = [f"{m[k]:.3f} {_ci(ci[k])}" for k in ("lexical", "vector", "hybrid")]
        diffs = [f"{m[k]:+.3f} {_ci(ci[k])}" for k in ("hybrid - lexical", "hybrid - vector")]
        lines.append(f"| {fam} | {r['queries']} | " + " | ".join(cells + diffs) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.retrieval", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared/ folder")
    parser.add_argument(
        "--vector-weight", type=float, default=Fusion().vector_weight, help="fusion weight"
    )
    parser.add_argument("--tune", action="store_true", help="sweep fusion settings (tuning half)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not (args.shared / "corpus" / "danluu_postmortems.json").is_file():
        print(f"skipped: {args.shared / 'corpus'} not found", file=sys.stderr)
        return 0
    started = time.monotonic()
    records, queries = load_corpus(args.shared)
    store, embedder = build_store(records)
    if args.tune:
        print("| fusion (tuning half) | MRR |\n|---|---:|")
        for name, mrr in tune(store, embedder, queries):
            print(f"| {name} | {mrr:.3f} |")
        print()
    fusion = Fusion(vector_weight=args.vector_weight)
    result = report(store, embedder, queries, fusion)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(table(result))
    every = result["families"]["all"]
    stable = ", ".join(f"{m} {n}" for m, n in result["k_stable"].items())
    print(
        f"\nMRR with 95% bootstrap intervals. Naive fusion (RRF k=60, equal weights): "
        f"{every['mrr']['naive rrf']:.3f} {_ci(every['mrr_ci']['naive rrf'])}. hit@5: "
        + ", ".join(f"{m} {v:.3f}" for m, v in every["hit5"].items())
        + f".\nTop 5 of -k 5 equal to the first 5 of -k {DEPTH}: {stable} of "
        f"{result['queries']} queries. First two results tied: "
        + ", ".join(f"{m} {n}" for m, n in result["top_ties"].items())
        + f". {len(records)} incidents indexed; vector weight {fusion.vector_weight}; "
        f"{time.monotonic() - started:.0f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
