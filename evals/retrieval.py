"""Retrieval quality of `retro search`: recall@5 and MRR for lexical, vector and hybrid rankings.

Run `python -m evals.retrieval` from the repository root. It reads the public corpus in
../shared/corpus at run time (the corpus has no licence for redistribution, so nothing of it is
copied into this repository) and skips cleanly when that folder is absent.

Method (leave-one-out): the 190 danluu/post-mortems entries are indexed as {id, title, text}
records (title = company, text = the entry's description). Every labelled incident is then used
as a query with its own title and text, the incident itself is excluded from the results, and
the relevant incidents are the other incidents that share a label. Two label families:
- danluu: the README section (config-errors, hardware-power, conflicts, time, database); the
  catch-all "uncategorized" is not a label, so those incidents are only distractors.
- icco: the incident_crossref_labels.json categories from icco/postmortems, joined by URL; the
  three broad ones (config-change, cloud, automation: each on a third of the corpus) are left
  out, leaving security, cascading-failure, hardware and time.
Labels are never indexed: only ids, titles and descriptions are.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retro.index.corpus import corpus_item
from retro.index.embeddings import Embedder, Progress
from retro.index.similarity import Fusion, Mode, index_incidents, search
from retro.index.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BROAD_ICCO = frozenset({"config-change", "cloud", "automation"})
MODES: tuple[Mode, ...] = ("lexical", "vector", "hybrid")


@dataclass
class Scores:
    queries: int
    recall_at_5: float
    hit_at_5: float
    mrr: float


def load_corpus(shared: Path) -> tuple[list[dict[str, str]], dict[str, dict[str, set[str]]]]:
    """Records to index, and per label family: incident id -> its labels."""
    danluu = json.loads((shared / "corpus" / "danluu_postmortems.json").read_text())["entries"]
    # No title: the record's title becomes its first sentence. The company name would let the
    # lexical ranking match "same company" rather than "same kind of failure".
    records = [{"id": e["id"], "text": e["description"], "url": e["url"]} for e in danluu]
    labels: dict[str, dict[str, set[str]]] = {"danluu": {}, "icco": {}}
    for e in danluu:
        if e["category"] != "uncategorized":
            labels["danluu"][e["id"]] = {e["category"]}
    crossref = json.loads((shared / "corpus" / "incident_crossref_labels.json").read_text())
    for inc in crossref["incidents"]:
        cats = set(inc["labels"].get("icco_categories") or []) - BROAD_ICCO
        if inc.get("danluu_id") and cats:
            labels["icco"][inc["danluu_id"]] = cats
    return records, labels


def score(ranked: Sequence[str], relevant: set[str]) -> tuple[float, float, float]:
    """(recall@5, hit@5, reciprocal rank) of one query."""
    top = list(ranked[:5])
    found = sum(1 for r in top if r in relevant)
    rr = next((1.0 / i for i, r in enumerate(ranked, start=1) if r in relevant), 0.0)
    return found / len(relevant), float(found > 0), rr


def evaluate(
    store: SQLiteStore,
    embedder: Embedder,
    records: list[dict[str, str]],
    labels: dict[str, set[str]],
    mode: Mode,
    fusion: Fusion,
    depth: int = 50,
) -> Scores:
    by_id = {r["id"]: r for r in records}
    totals = [0.0, 0.0, 0.0]
    queries = 0
    for qid, qlabels in labels.items():
        relevant = {i for i, ls in labels.items() if i != qid and ls & qlabels}
        if not relevant or qid not in by_id:
            continue
        results = search(
            by_id[qid]["text"],
            store=store,
            embedder=embedder,
            k=depth,
            mode=mode,
            fusion=fusion,
            exclude=qid,
        )
        for n, value in enumerate(score([r.id for r in results], relevant)):
            totals[n] += value
        queries += 1
    return Scores(queries, *(t / max(queries, 1) for t in totals))


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


def build_store(records: list[dict[str, str]]) -> tuple[SQLiteStore, Embedder]:
    from retro.index.embeddings import MiniLMEmbedder

    store = SQLiteStore(":memory:")
    embedder = CachedEmbedder(MiniLMEmbedder())
    path = Path("danluu_postmortems.json")
    items = [corpus_item(r, path, f"[{i}]") for i, r in enumerate(records)]
    index_incidents(items, store=store, embedder=embedder)
    return store, embedder


def table(results: dict[str, dict[str, Scores]]) -> str:
    lines = [
        "| labels | queries | mode | recall@5 | hit@5 | MRR |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for family, by_mode in results.items():
        for mode, s in by_mode.items():
            lines.append(
                f"| {family} | {s.queries} | {mode} | {s.recall_at_5:.3f} | {s.hit_at_5:.3f} | {s.mrr:.3f} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.retrieval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared/ folder")
    parser.add_argument("--rrf-k", type=int, default=Fusion().k, help="RRF constant")
    parser.add_argument("--lexical-weight", type=float, default=Fusion().lexical_weight)
    parser.add_argument("--vector-weight", type=float, default=Fusion().vector_weight)
    parser.add_argument(
        "--sweep", action="store_true", help="also print a grid of RRF k and weights"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not (args.shared / "corpus" / "danluu_postmortems.json").is_file():
        print(f"skipped: {args.shared / 'corpus'} not found", file=sys.stderr)
        return 0
    started = time.monotonic()
    records, labels = load_corpus(args.shared)
    store, embedder = build_store(records)
    fusion = Fusion(
        k=args.rrf_k, lexical_weight=args.lexical_weight, vector_weight=args.vector_weight
    )
    results = {
        family: {mode: evaluate(store, embedder, records, lab, mode, fusion) for mode in MODES}
        for family, lab in labels.items()
    }
    if args.json:
        print(
            json.dumps(
                {f: {m: vars(s) for m, s in r.items()} for f, r in results.items()}, indent=2
            )
        )
    else:
        print(table(results))
        print(
            f"\n{len(records)} incidents indexed; RRF k={fusion.k}, weights lexical "
            f"{fusion.lexical_weight} / vector {fusion.vector_weight}; "
            f"{time.monotonic() - started:.0f}s"
        )
    if args.sweep:
        sweep(store, embedder, records, labels)
    return 0


def sweep(
    store: SQLiteStore,
    embedder: Embedder,
    records: list[dict[str, str]],
    labels: dict[str, dict[str, set[str]]],
) -> None:
    """MRR of hybrid search over a small grid of fusion settings, per label family."""
    print("\n| RRF k | lexical w | vector w | " + " | ".join(f"{f} MRR" for f in labels) + " |")
    print("|---:|---:|---:|" + "---:|" * len(labels))
    for k in (10, 30, 60, 100):
        for lw, vw in ((1.0, 1.0), (0.5, 1.0), (1.0, 0.5)):
            fusion = Fusion(k=k, lexical_weight=lw, vector_weight=vw)
            mrrs = [
                evaluate(store, embedder, records, lab, "hybrid", fusion).mrr
                for lab in labels.values()
            ]
            print(f"| {k} | {lw} | {vw} | " + " | ".join(f"{m:.3f}" for m in mrrs) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
