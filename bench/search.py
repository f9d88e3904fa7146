"""Similar-incident search figures: index build throughput, cold `retro search`, warm queries.

    python bench/search.py                       # all three, about 3-5 minutes on 2 cores
    python bench/search.py --warm-n 20000        # smaller warm index
    python bench/search.py --skip-build --skip-warm

Synthetic incidents: four texts each (summary, impact, root cause, context) drawn from templates,
so the lexical index sees realistic word overlap. Embedding 400k texts would take hours, so only
the build-throughput step embeds every text; the 10k and 100k indexes get vectors made from a
pool of real MiniLM embeddings of generated texts (a random blend of two plus noise,
re-normalised), which keeps the anisotropy of real sentence vectors. The query itself is always
embedded by the real model.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from retro.index.corpus import corpus_item
from retro.index.embeddings import MiniLMEmbedder, content_hash
from retro.index.similarity import Fusion, index_incidents, search
from retro.index.store import SearchFilter
from retro.index.store.base import Chunk, IncidentRecord, iso, now_iso
from retro.index.store.sqlite import SQLiteStore

SERVICES = [
    "checkout",
    "payments",
    "search",
    "auth",
    "edge",
    "api",
    "gateway",
    "billing",
    "ledger",
    "inventory",
    "cart",
]
SERVICES += [
    "notifications",
    "email",
    "kafka",
    "postgres",
    "redis",
    "elasticsearch",
    "dns",
    "cdn",
    "scheduler",
]
COMPONENTS = [
    "connection pool",
    "load balancer",
    "TLS certificate",
    "feature flag",
    "cron job",
    "disk",
    "replica",
    "",
]
COMPONENTS += [
    "cache cluster",
    "message queue",
    "DNS record",
    "rate limiter",
    "config push",
    "schema migration",
]
FAILURES = [
    "was exhausted",
    "expired",
    "filled up",
    "crashed in a loop",
    "lost quorum",
    "returned stale data",
    "dropped connections",
    "leaked file descriptors",
    "hit its memory limit",
    "timed out under load",
    "was misconfigured",
    "failed over to the wrong region",
]
TRIGGERS = [
    "a deploy doubled the worker count",
    "a marketing campaign tripled traffic",
    "a leap second",
    "an expired credential",
    "a kernel upgrade",
    "a bad config push",
    "a network partition between zones",
    "a runaway batch job",
    "a dependency outage upstream",
]
SYMPTOMS = [
    "5xx errors",
    "high latency",
    "timeouts",
    "failed logins",
    "stale search results",
    "lost messages",
]
QUERIES = [
    "database connection pool exhausted after deploy",
    "certificate expired on the edge",
    "kafka consumer lag after broker restart",
    "disk full on logging cluster",
    "bad config push took down dns",
    "redis memory limit evictions",
    "leap second crashed the scheduler",
    "payments timing out under load",
]


def synth_incident(rng: random.Random, n: int) -> dict[str, str | list[str]]:
    svc = rng.sample(SERVICES, 2)
    comp, fail, trig, sym = (rng.choice(x) for x in (COMPONENTS, FAILURES, TRIGGERS, SYMPTOMS))
    return {
        "id": f"INC-{n:06d}",
        "title": f"{svc[0].title()} {sym} after the {comp} {fail}",
        "summary": f"{svc[0]} served {sym} for {rng.randint(5, 240)} minutes after {trig}.",
        "impact": f"{rng.randint(1, 90)}% of {svc[0]} requests saw {sym}; "
        f"the {svc[1]} team was paged by the {svc[0].title()}{sym.split()[0].title()} alert.",
        "root_cause": f"The {comp} of {svc[0]} {fail} because {trig}; "
        f"{svc[1]} retries made it worse and no alert covered the {comp}.",
        "services": svc,
        "alerts": [f"{svc[0].title()}{sym.split()[0].title()}High"],
        "action_items": [f"Add an alert on the {comp} of {svc[0]}", f"Load test {svc[1]}"],
        "date": f"20{rng.randint(18, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "severity": rng.choice(["SEV1", "SEV2", "SEV3"]),
    }


def _items(n: int, seed: int = 1) -> list[tuple[IncidentRecord, list[Chunk]]]:
    rng = random.Random(seed)
    return [corpus_item(synth_incident(rng, i), Path("synthetic"), f"[{i}]") for i in range(n)]


# --- 1. build throughput -----------------------------------------------------------------------


def bench_build(n_incidents: int, embedder: MiniLMEmbedder) -> dict[str, float]:
    items = _items(n_incidents, seed=7)
    texts = sum(len(c) for _, c in items)
    tokens = sum(
        len(e.ids) for e in embedder.tokenizer.encode_batch([c.text for _, cs in items for c in cs])
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "build.db")
        cpu0, t0 = time.process_time(), time.perf_counter()
        report = index_incidents(items, store=store, embedder=embedder)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        store.close()
    assert report.embedded == texts, report
    return {
        "texts": texts,
        "mean_tokens": tokens / texts,
        "wall_s": wall,
        "texts_per_s": texts / wall,
        "tokens_per_s": tokens / wall,
        "cpu_s": cpu,
    }


# --- synthetic big stores -------------------------------------------------------------------------


def vector_pool(embedder: MiniLMEmbedder, size: int = 256) -> np.ndarray:
    rng = random.Random(99)
    texts = []
    for i in range(size):
        inc = synth_incident(rng, i)
        texts.append(str(inc[rng.choice(["summary", "impact", "root_cause", "title"])]))
    return embedder.embed(texts)


def fill(store: SQLiteStore, n: int, pool: np.ndarray) -> None:
    """Bulk-load n synthetic incidents with blended pool vectors, in one transaction."""
    nrng = np.random.default_rng(5)
    store.bind_model(MiniLMEmbedder.name, pool.shape[1])
    conn = store.conn
    conn.execute("BEGIN")
    batch = 5000
    for start in range(0, n, batch):
        items = _items(min(batch, n - start), seed=start + 11)
        incidents, services, chunks = [], [], []
        rows = sum(len(c) for _, c in items)
        a, b = nrng.integers(len(pool), size=(2, rows))
        mix = pool[a] * nrng.uniform(0.5, 1, (rows, 1)) + pool[b] * nrng.uniform(0, 0.5, (rows, 1))
        mix += nrng.normal(0, 0.02, mix.shape)
        mix = (mix / np.linalg.norm(mix, axis=1, keepdims=True)).astype(np.float32)
        r = 0
        for offset, (rec, cs) in enumerate(items):
            rec = rec.model_copy(update={"id": f"INC-{start + offset:06d}"})
            incidents.append(_incident_row(rec))
            services += [(rec.id, s) for s in rec.services]
            for c in cs:
                digest = content_hash(MiniLMEmbedder.name, f"{rec.id}/{c.field}/{c.text}")
                chunks.append((rec.id, c.field, c.seq, c.text, digest, mix[r].tobytes()))
                r += 1
        conn.executemany("INSERT INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?)", incidents)
        conn.executemany("INSERT OR IGNORE INTO incident_services VALUES (?, ?)", services)
        conn.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)", chunks)
    store._bump()
    conn.execute("COMMIT")


def _incident_row(rec: IncidentRecord) -> tuple[object, ...]:
    sev = rec.severity.lower() if rec.severity else None
    return (
        rec.id,
        rec.title,
        None,
        iso(rec.started),
        sev,
        "synthetic",
        rec.model_dump_json(),
        now_iso(),
    )


# --- 2. cold process -------------------------------------------------------------------------------


def bench_cold(n: int, pool: np.ndarray, workdir: Path, runs: int) -> dict[str, float]:
    db = workdir / f"cold-{n}.db"
    if not db.exists():
        store = SQLiteStore(db)
        fill(store, n, pool)
        store.warm()  # what `retro index add` does at its end
        store.close()
    retro = Path(sys.executable).with_name("retro")
    walls, cpus = [], []
    for i in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(
            [str(retro), "search", QUERIES[i % len(QUERIES)], "--db", f"sqlite:///{db}", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert json.loads(out.stdout), "cold search returned nothing"
    return {
        "incidents": n,
        "median_wall_s": statistics.median(walls),
        "max_wall_s": max(walls),
        "median_cpu_s": statistics.median(cpus),
    }


# --- 3. warm queries -------------------------------------------------------------------------------


def bench_warm(
    n: int, pool: np.ndarray, embedder: MiniLMEmbedder, queries: int, workdir: Path
) -> dict[str, float]:
    db = workdir / f"warm-{n}.db"
    for old in db.parent.glob(db.name + "*"):
        old.unlink()
    store = SQLiteStore(db)
    t0 = time.perf_counter()
    fill(store, n, pool)
    fill_s = time.perf_counter() - t0
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = _index_bytes(db)
    t0 = time.perf_counter()
    store.warm()
    warm_s = time.perf_counter() - t0
    search(QUERIES[0], store=store, embedder=embedder)  # first query pays one-off costs
    parts: dict[str, list[float]] = {"embed": [], "lexical": [], "vector": [], "total": []}
    for i in range(queries):
        q = QUERIES[i % len(QUERIES)]
        t0 = time.perf_counter()
        vec = embedder.embed([q])
        t1 = time.perf_counter()
        store.lexical_scores(q, SearchFilter())
        t2 = time.perf_counter()
        store.vector_scores(vec, SearchFilter(), 50)
        t3 = time.perf_counter()
        parts["embed"].append(t1 - t0)
        parts["lexical"].append(t2 - t1)
        parts["vector"].append(t3 - t2)
        t0 = time.perf_counter()
        search(q, store=store, embedder=embedder, k=5, fusion=Fusion())
        parts["total"].append(time.perf_counter() - t0)
    exact = _recall_vs_exact(store, embedder)
    rows = len(store._matrix.vectors) if store._matrix else 0
    vector_bytes = rows * pool.shape[1] * 4
    store.close()
    return {
        "incidents": n,
        "chunks": rows,
        "fill_s": fill_s,
        "warm_s": warm_s,
        **{f"{k}_ms": 1000 * statistics.median(v) for k, v in parts.items()},
        "total_p90_ms": 1000 * sorted(parts["total"])[int(0.9 * (len(parts["total"]) - 1))],
        "prestage_recall_at_50": exact,
        "index_mb": size / 1e6,
        "vectors_mb": vector_bytes / 1e6,
        "size_ratio": size / vector_bytes if vector_bytes else 0.0,
    }


def _index_bytes(db: Path) -> int:
    """Bytes on disk of everything the index keeps: the database and any file beside it."""
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def _recall_vs_exact(store: SQLiteStore, embedder: MiniLMEmbedder) -> float:
    """Share of the exact top-50 incidents that the PCA pre-stage also returns (1.0 if off)."""
    mat = store._matrix
    if mat is None or mat.reduced is None:
        return 1.0
    found = []
    for q in QUERIES:
        vec = embedder.embed([q])
        approx = {h.incident_id for h in store.vector(vec, SearchFilter(), 50)}
        sims = np.maximum.reduceat(np.asarray(mat.vectors) @ vec[0], mat.starts)
        exact = {mat.incident_ids[i] for i in np.argsort(-sims)[:50]}
        found.append(len(approx & exact) / 50)
    return float(np.mean(found))


def main() -> int:
    p = argparse.ArgumentParser(description="Similar-incident search benchmark")
    p.add_argument("--build-n", type=int, default=100, help="incidents to embed (4 texts each)")
    p.add_argument("--cold-n", type=int, default=10_000)
    p.add_argument("--warm-n", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=5, help="cold processes to time")
    p.add_argument("--queries", type=int, default=20, help="warm queries to time")
    p.add_argument("--workdir", type=Path, help="keep the cold-start database here for reuse")
    for step in ("build", "cold", "warm"):
        p.add_argument(f"--skip-{step}", action="store_true")
    args = p.parse_args()
    embedder = MiniLMEmbedder()
    results: dict[str, object] = {}
    if not args.skip_build:
        results["build"] = r = bench_build(args.build_n, embedder)
        print(
            f"build: {r['texts']} texts ({r['mean_tokens']:.0f} tokens avg) in {r['wall_s']:.1f}s = "
            f"{r['texts_per_s']:.0f} texts/s, {r['tokens_per_s']:.0f} tokens/s (target >= 150 texts/s)"
        )
    pool = vector_pool(embedder) if not (args.skip_cold and args.skip_warm) else None
    if not args.skip_cold and pool is not None:
        with tempfile.TemporaryDirectory(prefix="retro-bench-") as scratch:
            tmp = args.workdir or Path(scratch)
            tmp.mkdir(parents=True, exist_ok=True)
            results["cold"] = r = bench_cold(args.cold_n, pool, tmp, args.runs)
        print(
            f"cold `retro search`, {args.cold_n} incidents: median {r['median_wall_s']:.2f}s wall, "
            f"max {r['max_wall_s']:.2f}s, {r['median_cpu_s']:.2f}s CPU (target < 1.5s)"
        )
    if not args.skip_warm and pool is not None:
        with tempfile.TemporaryDirectory(prefix="retro-bench-") as scratch:
            tmp = args.workdir or Path(scratch)
            tmp.mkdir(parents=True, exist_ok=True)
            results["warm"] = r = bench_warm(args.warm_n, pool, embedder, args.queries, tmp)
        print(
            f"warm query, {args.warm_n} incidents ({r['chunks']} vectors): median {r['total_ms']:.1f} ms "
            f"(p90 {r['total_p90_ms']:.1f}; embed {r['embed_ms']:.1f}, lexical {r['lexical_ms']:.1f}, "
            f"vector {r['vector_ms']:.1f}); pre-stage recall@50 vs exact "
            f"{r['prestage_recall_at_50']:.3f} (target < 30 ms)"
        )
        print(
            f"index size, {args.warm_n} incidents: {r['index_mb']:.0f} MB on disk for "
            f"{r['vectors_mb']:.0f} MB of float32 vectors = {r['size_ratio']:.2f}x (target < 1.5x)"
        )
    print(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
