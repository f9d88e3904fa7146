"""The store contract, run against SQLite and a real PostgreSQL with pgvector."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from pg_server import fresh_database

from retro.errors import StoreError
from retro.index.store import (
    Chunk,
    IncidentRecord,
    IndexedAction,
    SearchFilter,
    Store,
    default_index_path,
    open_store,
    resolve_url,
)
from retro.index.store import vectors as vector_matrix
from retro.index.store.base import load_migrations, split_sql
from retro.index.store.sqlite import SQLiteStore

DIM = 8


def unit(*hot: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(hot)] = hot
    return v / np.linalg.norm(v)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'index.db'}"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def add(store: Store, inc: str, texts: dict[str, tuple[str, np.ndarray]], **kw: object) -> None:
    store.bind_model("fake", DIM)
    chunks = [Chunk(field=f, text=t, hash=f"{inc}-{f}-{t}") for f, (t, _) in texts.items()]
    vecs = np.stack([v for _, v in texts.values()])
    store.upsert(IncidentRecord(id=inc, title=f"title {inc}", **kw), chunks, vecs)  # type: ignore[arg-type]


@pytest.fixture
def filled(store: Store) -> Store:
    add(
        store,
        "INC-1",
        {
            "summary": ("Postgres primary failover took the checkout API down", unit(1, 0)),
            "root_cause": ("Connection pool exhausted after a deploy", unit(0, 1)),
        },
        services=["Checkout", "postgres"],
        severity="SEV1",
        started=datetime(2024, 3, 1, tzinfo=UTC),
        root_cause="Connection pool exhausted after a deploy",
        action_items=[IndexedAction(title="Cap the pool", status="open", tracking="OPS-1")],
    )
    add(
        store,
        "INC-2",
        {"summary": ("TLS certificate expired on the edge proxy", unit(0, 0, 1))},
        services=["edge"],
        severity="sev2",
        started=datetime(2023, 6, 1, tzinfo=UTC),
    )
    add(store, "INC-3", {"text": ("Disk filled up on the logging cluster", unit(0, 0, 0, 1))})
    return store


def test_migrations_are_applied_once(store: Store, store_url: str) -> None:
    assert store.schema_version() == len(load_migrations(store.backend)) == 2
    with open_store(store_url) as again:
        assert again.schema_version() == 2


def test_upsert_and_get_round_trip(filled: Store) -> None:
    got = filled.get(["INC-1", "INC-2", "nope"])
    assert set(got) == {"INC-1", "INC-2"}
    one = got["INC-1"]
    assert one.services == ["Checkout", "postgres"]
    assert one.started == datetime(2024, 3, 1, tzinfo=UTC)
    assert one.action_items[0].tracking == "OPS-1" and one.action_items[0].is_open


def test_upsert_replaces_chunks(filled: Store) -> None:
    add(filled, "INC-1", {"summary": ("Only one text now", unit(1, 1))})
    assert set(filled.chunk_hashes("INC-1")) == {("summary", 0)}
    assert filled.stats().chunks == 3


def test_vectors_by_hash_returns_stored_vectors(filled: Store) -> None:
    digest = "INC-2-summary-TLS certificate expired on the edge proxy"
    found = filled.vectors_by_hash([digest, "missing"])
    assert list(found) == [digest]
    np.testing.assert_allclose(found[digest], unit(0, 0, 1), atol=1e-6)


def test_lexical_finds_words_with_snippet(filled: Store) -> None:
    hits = filled.lexical("certificate expired", SearchFilter(), 5)
    assert [h.incident_id for h in hits] == ["INC-2"]
    assert "[certificate]" in hits[0].snippet.lower() or "[certificate]" in hits[0].snippet
    assert hits[0].field == "summary"


def test_lexical_one_hit_per_incident_and_stemming(filled: Store) -> None:
    hits = filled.lexical("pool exhaustion deploys failover", SearchFilter(), 5)
    assert [h.incident_id for h in hits] == ["INC-1"]


def test_lexical_ignores_fts_syntax(filled: Store) -> None:
    assert filled.lexical('"NEAR( AND OR * ^', SearchFilter(), 5) == []
    assert filled.lexical("", SearchFilter(), 5) == []


def test_vector_best_incident_first(filled: Store) -> None:
    hits = filled.vector(unit(0.1, 1), SearchFilter(), 2)
    assert [h.incident_id for h in hits][0] == "INC-1"
    assert hits[0].field == "root_cause"
    assert hits[0].score == pytest.approx(float(unit(0.1, 1) @ unit(0, 1)), abs=1e-5)
    assert len(hits) == 2


def test_vector_several_queries_report_the_query_row(filled: Store) -> None:
    hits = filled.vector(np.stack([unit(0, 0, 0, 1), unit(0, 0, 1)]), SearchFilter(), 3)
    by_id = {h.incident_id: h for h in hits}
    assert by_id["INC-2"].query_row == 1
    assert by_id["INC-3"].query_row == 0


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (SearchFilter(service="checkout"), {"INC-1"}),
        (SearchFilter(severity="SEV2"), {"INC-2"}),
        (SearchFilter(since=datetime(2024, 1, 1, tzinfo=UTC)), {"INC-1"}),
        (SearchFilter(service="edge", since=datetime(2024, 1, 1, tzinfo=UTC)), set()),
    ],
)
def test_filters_apply_to_both_rankings(
    filled: Store, flt: SearchFilter, expected: set[str]
) -> None:
    vec = {h.incident_id for h in filled.vector(unit(1, 1, 1, 1), flt, 10)}
    lex = {h.incident_id for h in filled.lexical("the on postgres certificate disk", flt, 10)}
    assert vec == expected
    assert lex <= expected


def test_another_model_is_refused(filled: Store) -> None:
    with pytest.raises(StoreError, match="holds fake vectors"):
        filled.bind_model("other", DIM)
    filled.bind_model("fake", DIM)  # the bound one is fine


def test_delete(filled: Store) -> None:
    assert filled.delete("INC-3")
    assert not filled.delete("INC-3")
    assert "INC-3" not in {
        h.incident_id for h in filled.vector(unit(0, 0, 0, 1), SearchFilter(), 5)
    }


def test_stats(filled: Store) -> None:
    st = filled.stats()
    assert (st.incidents, st.chunks, st.embedder, st.dim) == (3, 4, "fake", DIM)
    assert st.by_field == {"root_cause": 1, "summary": 2, "text": 1}
    assert st.services == 3
    assert st.oldest == "2023-06-01T00:00:00Z" and st.newest == "2024-03-01T00:00:00Z"


def test_chunk_texts_and_vectors(filled: Store) -> None:
    texts = filled.chunk_texts([("INC-1", "root_cause", 0), ("INC-9", "summary", 0)])
    assert texts == {("INC-1", "root_cause", 0): "Connection pool exhausted after a deploy"}
    pairs = filled.chunk_vectors("INC-1")
    assert [c.field for c, _ in pairs] == ["root_cause", "summary"]
    np.testing.assert_allclose(pairs[0][1], unit(0, 1), atol=1e-6)


def test_empty_store_searches_return_nothing(store: Store) -> None:
    assert store.vector(unit(1), SearchFilter(), 5) == []
    assert store.lexical("anything", SearchFilter(), 5) == []
    assert store.model() is None


@pytest.mark.slow
def test_postgres_has_hnsw_and_gin_indexes() -> None:
    with fresh_database() as url:
        s = open_store(url)
        s.bind_model("fake", DIM)
        from retro.index.store.postgres import PostgresStore

        assert isinstance(s, PostgresStore)
        rows = s.conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'chunks'"
        )
        defs = {name: d for name, d in rows.fetchall()}
        assert (
            "hnsw" in defs["chunks_embedding_hnsw"]
            and "vector_cosine_ops" in defs["chunks_embedding_hnsw"]
        )
        assert "gin" in defs["chunks_tsv"]
        s.close()


# --- SQLite specifics ----------------------------------------------------------------------------


def test_sqlite_matrix_cache_follows_writes(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "i.db")
    add(s, "A", {"summary": ("alpha", unit(1))})
    assert [h.incident_id for h in s.vector(unit(1), SearchFilter(), 5)] == ["A"]
    add(s, "B", {"summary": ("beta", unit(0, 1))})
    assert [h.incident_id for h in s.vector(unit(0, 1), SearchFilter(), 1)] == ["B"]


def test_sqlite_stores_vectors_once(tmp_path: Path) -> None:
    db = tmp_path / "i.db"
    for suffix in (".vectors.npy", ".vectors.json"):  # the copy earlier versions kept
        (tmp_path / f"i.db{suffix}").write_bytes(b"old")
    s = SQLiteStore(db)
    add(s, "A", {"summary": ("alpha", unit(1))})
    s.vector(unit(1), SearchFilter(), 5)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("i.db-")) == ["i.db"]
    fresh = SQLiteStore(db)  # another process reads the vectors from the file itself
    assert [h.incident_id for h in fresh.vector(unit(1), SearchFilter(), 5)] == ["A"]
    add(s, "B", {"summary": ("beta", unit(0, 1))})  # another writer moves the generation on
    assert [h.incident_id for h in fresh.vector(unit(0, 1), SearchFilter(), 1)] == ["B"]


def test_pca_prestage_agrees_with_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    s = SQLiteStore(":memory:")
    s.bind_model("fake", DIM)
    for i in range(300):
        v = rng.standard_normal((2, DIM)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        chunks = [
            Chunk(field="summary", text=f"s{i}", hash=f"s{i}"),
            Chunk(field="impact", text=f"i{i}", hash=f"i{i}"),
        ]
        s.upsert(IncidentRecord(id=f"I{i:03d}", title="t"), chunks, v)
    q = rng.standard_normal(DIM).astype(np.float32)
    q /= np.linalg.norm(q)
    exact = [h.incident_id for h in s.vector(q, SearchFilter(), 10)]
    monkeypatch.setattr(vector_matrix, "EXACT_ROWS", 100)
    monkeypatch.setattr(vector_matrix, "PCA_DIMS", DIM)  # full rank: the pre-stage is exact
    monkeypatch.setattr(vector_matrix, "CANDIDATES", 50)
    s._matrix = None
    approx = s.vector(q, SearchFilter(), 10)
    assert s._matrix is not None and s._matrix.reduced is not None
    assert [h.incident_id for h in approx] == exact


def test_sqlite_bad_file_is_a_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="Cannot open the index"):
        SQLiteStore(bad)


# --- open_store ------------------------------------------------------------------------------------


def test_default_path_is_in_the_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRO_USER_PATH", str(tmp_path / "u"))
    assert default_index_path() == tmp_path / "u" / "index.db"
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'u' / 'index.db'}"
    with open_store() as s:
        assert s.backend == "sqlite"
    assert (tmp_path / "u" / "index.db").is_file()


def test_env_url_wins_over_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRO_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with open_store() as s:
        assert s.url.endswith("env.db")
    with open_store(f"sqlite:///{tmp_path / 'arg.db'}") as s:
        assert s.url.endswith("arg.db")


def test_relative_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel.db"):
        pass
    assert (tmp_path / "rel.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x@y/z", "Unsupported database URL scheme 'mysql'"),
        ("sqlite://host/x.db", "Unsupported SQLite URL"),
        ("postgresql://nobody:secret@127.0.0.1:1/none", "Cannot connect to PostgreSQL"),
    ],
)
def test_bad_urls_say_what_to_do(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(url)
    assert info.value.hint
    assert "secret" not in str(info.value)


def test_split_sql_keeps_triggers_whole() -> None:
    sql = next(s for v, n, s in load_migrations("sqlite") if v == 2)
    statements = split_sql(sql)
    triggers = [s for s in statements if s.startswith("CREATE TRIGGER")]
    assert len(triggers) == 3 and all(t.rstrip().endswith("END;") for t in triggers)


def test_lexical_keeps_rare_terms_when_over_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retro.index.store import sqlite as sqlite_module

    s = SQLiteStore(tmp_path / "i.db")
    for i in range(30):
        add(s, f"C{i:02d}", {"summary": (f"common deploy outage number {i}", unit(1))})
    add(s, "RARE", {"summary": ("deploys broke the zookeeper quorum", unit(0, 1))})
    assert s._doc_freq("deployed") == 31  # stems: deploy, deploys, deployed are one term
    assert s._doc_freq("zookeeper") == 1
    monkeypatch.setattr(sqlite_module, "LEXICAL_BUDGET", 10)
    assert s._affordable_terms(["deploy", "outage", "zookeeper"]) == ["zookeeper"]
    assert [h.incident_id for h in s.lexical("deploy outage zookeeper", SearchFilter(), 5)] == [
        "RARE"
    ]
    monkeypatch.setattr(sqlite_module, "LEXICAL_BUDGET", 1000)
    assert len(s.lexical("deploy outage zookeeper", SearchFilter(), 50)) == 31
    # Words found nowhere are dropped, not spent on the budget.
    assert s._lexical_match("kubernetes zookeeper") == '"zookeeper"'


def test_lexical_requires_every_common_word_when_each_is_over_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retro.index.store import sqlite as sqlite_module

    s = SQLiteStore(tmp_path / "i.db")
    for i in range(20):
        words = "deploy outage" if i < 3 else ("deploy" if i % 2 else "outage")
        add(s, f"C{i:02d}", {"summary": (f"{words} number {i}", unit(1))})
    monkeypatch.setattr(sqlite_module, "LEXICAL_BUDGET", 5)  # deploy: 11 texts, outage: 12
    assert s._affordable_terms(["deploy", "outage"]) == []
    hits = s.lexical("deploy outage", SearchFilter(), 10)
    assert sorted(h.incident_id for h in hits) == ["C00", "C01", "C02"]  # the texts with both
    monkeypatch.setattr(sqlite_module, "LEXICAL_BUDGET", 2)  # even both together are too many
    assert s.lexical("deploy outage", SearchFilter(), 10) == []


# --- rankings over every incident, and profiles ----------------------------------------------------


def test_lexical_scores_cover_every_match(filled: Store) -> None:
    scores = filled.lexical_scores("postgres certificate disk", SearchFilter())
    assert sorted(scores.ids) == ["INC-1", "INC-2", "INC-3"] and scores.complete
    best = scores.detail(scores.ids.index("INC-1"))
    assert best.incident_id == "INC-1" and best.field == "summary"


def test_vector_scores_cover_every_incident_or_say_so(filled: Store) -> None:
    scores = filled.vector_scores(unit(0.1, 1), SearchFilter(), depth=1, also=["INC-3"])
    assert {"INC-1", "INC-3"} <= set(scores.ids)  # the best, and the one asked for
    if scores.complete:
        assert sorted(scores.ids) == ["INC-1", "INC-2", "INC-3"]
    at = list(scores.ids).index("INC-1")
    assert scores.detail(at).field == "root_cause"
    assert scores.score[at] == pytest.approx(float(unit(0.1, 1) @ unit(0, 1)), abs=1e-5)


def test_profiles_average_the_chosen_fields(filled: Store) -> None:
    ids, prof = filled.profiles(frozenset({"summary"}), SearchFilter())
    assert ids == ["INC-1", "INC-2", "INC-3"]
    np.testing.assert_allclose(prof[0], unit(1, 0), atol=1e-5)  # INC-1: its summary only
    np.testing.assert_allclose(prof[2], unit(0, 0, 0, 1), atol=1e-5)  # no summary: all chunks
    ids, prof = filled.profiles(frozenset({"summary", "root_cause"}), SearchFilter())
    np.testing.assert_allclose(prof[0], unit(1, 1), atol=1e-5)
    ids, _ = filled.profiles(frozenset({"summary"}), SearchFilter(service="edge"))
    assert ids == ["INC-2"]
    assert filled.incident_ids() == ["INC-1", "INC-2", "INC-3"]
