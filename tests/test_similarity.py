"""What gets indexed, hashing, RRF fusion, why-explanations and repeat detection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from index_helpers import HashEmbedder, action, postmortem
from pg_server import fresh_database

from retro.errors import BundleError, ConfigError
from retro.index import similarity
from retro.index.content import postmortem_chunks, postmortem_record, split_passages
from retro.index.corpus import corpus_item, iter_path, postmortem_from_file
from retro.index.embeddings import MiniLMEmbedder
from retro.index.repeats import REPEAT_THRESHOLD
from retro.index.similarity import (
    Fusion,
    find_similar,
    index_incidents,
    repeat_warnings,
    rrf,
    search,
)
from retro.index.store import SearchFilter, Store, open_store
from retro.models import Postmortem

POOL = postmortem(
    "INC-101",
    "Checkout outage from exhausted database connections",
    summary="Checkout returned errors for 40 minutes.",
    impact="Customers could not pay; 12% of orders failed.",
    root_cause="The Postgres connection pool was exhausted after a deploy doubled worker count.",
    factors="No alert on pool saturation.",
    services=["checkout", "postgres"],
    severity="SEV1",
    actions=[
        action("Cap worker count per pod", "open", "OPS-7"),
        action("Alert on pool saturation", "done", "OPS-8"),
    ],
)
CERT = postmortem(
    "INC-102",
    "Expired TLS certificate on the edge",
    summary="The public API rejected TLS handshakes.",
    root_cause="The certificate renewal job had been failing silently for weeks.",
    services=["edge"],
    severity="SEV2",
    actions=[action("Monitor certificate expiry", "open", "OPS-9")],
)
DISK = postmortem(
    "INC-103",
    "Logging cluster disks filled up",
    summary="Log ingestion stopped.",
    root_cause="Retention settings were lost in a migration and disks filled.",
    services=["logging"],
    actions=[action("Restore retention", "in_progress")],
)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'i.db'}") as s:
        yield s


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def _items(*pms: Postmortem) -> list:
    return [(postmortem_record(pm, source="test"), postmortem_chunks(pm)) for pm in pms]


# --- what gets indexed -----------------------------------------------------------------------------


def test_postmortem_chunks_cover_the_five_fields() -> None:
    pm = POOL.model_copy(
        update={
            "timeline": [
                {"kind": "alert_firing", "text": "PgPoolSaturated firing\nmore"},
                {"kind": "message", "text": "looking"},
            ]
        }
    )
    chunks = postmortem_chunks(pm)
    by_field = {c.field: c.text for c in chunks}
    assert set(by_field) == {"summary", "impact", "root_cause", "contributing", "context"}
    roots = [c.text for c in chunks if c.field == "root_cause"]
    assert len(roots) == len(pm.root_cause) + len(pm.trigger)  # one vector per cause
    assert by_field["summary"].startswith("Checkout outage from exhausted database connections.")
    assert "No alert on pool saturation" in by_field["contributing"]
    assert by_field["context"].startswith("checkout, postgres. PgPoolSaturated firing.")
    assert "Cap worker count per pod" in by_field["context"]
    assert "Services" not in by_field["context"]  # label words would be alike in every incident
    assert "looking" not in by_field["context"]


def test_empty_fields_make_no_chunks() -> None:
    pm = postmortem("X", "Only a title")
    assert [c.field for c in postmortem_chunks(pm)] == ["summary"]


def test_split_passages() -> None:
    assert split_passages("") == []
    parts = split_passages(" ".join(str(i) for i in range(400)), words=180)
    assert [len(p.split()) for p in parts] == [180, 180, 40]


def test_record_keeps_root_cause_and_actions() -> None:
    rec = postmortem_record(POOL, source="a.md", url="file:///a.md")
    assert rec.root_cause.startswith("The Postgres connection pool")
    assert [(a.tracking, a.is_open) for a in rec.action_items] == [
        ("OPS-7", True),
        ("OPS-8", False),
    ]


def test_corpus_item_fields_and_aliases(tmp_path: Path) -> None:
    rec, chunks = corpus_item(
        {
            "id": 7,
            "description": "The cache stampeded. Everything slowed.",
            "date": "2021-02-03",
            "services": "cache",
            "category": "kept-but-not-indexed",
        },
        tmp_path / "c.json",
        "[0]",
    )
    assert rec.id == "7" and rec.title == "The cache stampeded."
    assert rec.started == datetime(2021, 2, 3, tzinfo=UTC)
    assert rec.services == ["cache"] and rec.extra == {"category": "kept-but-not-indexed"}
    assert {c.field: c.text for c in chunks} == {
        "text": "The cache stampeded. Everything slowed.",  # the title is not said twice
        "context": "cache.",
    }
    assert all("kept-but-not-indexed" not in c.text for c in chunks)


def test_corpus_item_with_named_fields(tmp_path: Path) -> None:
    rec, chunks = corpus_item(
        {
            "id": "a",
            "title": "T",
            "summary": "S",
            "root_cause": "R",
            "action_items": [{"title": "Fix", "status": "done"}],
        },
        tmp_path / "c.json",
        "[0]",
    )
    assert {c.field: c.text for c in chunks} == {
        "summary": "T. S.",
        "root_cause": "R",
        "context": "Fix.",
    }
    assert not rec.action_items[0].is_open


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"title": "no id"}, "needs an object with an id"),
        ("just a string", "needs an object with an id"),
        ({"id": "x", "date": "last tuesday"}, "not ISO-8601"),
    ],
)
def test_corpus_item_errors(tmp_path: Path, obj: object, message: str) -> None:
    with pytest.raises(BundleError, match=message) as info:
        corpus_item(obj, tmp_path / "c.json", "[3]")
    assert "[3]" in str(info.value) and info.value.hint


def test_iter_path_reads_json_jsonl_and_folders(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"entries": [{"id": "1", "text": "one"}]}))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_text(
        '{"id": "2", "text": "two"}\n\n{"id": "3", "text": "x"}\n'
    )
    (tmp_path / "notes.txt").write_text("ignored in folders")
    assert [r.id for r, _ in iter_path(tmp_path)] == ["1", "2", "3"]
    with pytest.raises(ConfigError, match="unknown file type"):
        list(iter_path(tmp_path / "notes.txt"))
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n{oops\n')
    with pytest.raises(BundleError, match="line 2"):
        list(iter_path(tmp_path / "bad.jsonl"))


# --- indexing with content hashes ----------------------------------------------------------------


def test_unchanged_texts_are_not_embedded_again(sqlite_store: Store) -> None:
    emb = HashEmbedder()
    first = index_incidents(_items(POOL, CERT), store=sqlite_store, embedder=emb)
    assert first.embedded == first.chunks == emb.embedded
    again = index_incidents(_items(POOL, CERT), store=sqlite_store, embedder=emb)
    assert again.embedded == 0 and again.reused == first.chunks
    changed = POOL.model_copy(
        update={"summary": [POOL.summary[0].model_copy(update={"text": "New words."})]}
    )
    third = index_incidents(_items(changed), store=sqlite_store, embedder=emb)
    assert third.embedded == 1
    assert emb.calls[-1] == ["Checkout outage from exhausted database connections. New words."]


def test_progress_counts_incidents(sqlite_store: Store) -> None:
    seen: list[int] = []
    index_incidents(
        _items(POOL, CERT, DISK),
        store=sqlite_store,
        embedder=HashEmbedder(),
        progress=seen.append,
        batch_texts=3,
    )
    assert sum(seen) == 3


# --- fusion ------------------------------------------------------------------------------------------


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = rrf([(["a", "b"], 1.0), (["b", "c"], 2.0)], k=10)
    assert fused["a"] == pytest.approx(1 / 11)
    assert fused["b"] == pytest.approx(1 / 12 + 2 / 11)
    assert fused["c"] == pytest.approx(2 / 12)


def test_hybrid_scores_and_why(sqlite_store: Store) -> None:
    index_incidents(_items(POOL, CERT, DISK), store=sqlite_store, embedder=HashEmbedder())
    results = search(
        "postgres connection pool exhausted", store=sqlite_store, embedder=HashEmbedder(), k=2
    )
    top = results[0]
    assert top.id == "INC-101" and top.score == 1.0
    assert any(w.startswith("meaning: root cause (cosine") for w in top.why)
    assert any(w.startswith("words: root cause (rank 1)") and "[pool]" in w for w in top.why)
    assert top.title == POOL.title


def test_modes_use_one_ranking(sqlite_store: Store) -> None:
    index_incidents(_items(POOL, CERT, DISK), store=sqlite_store, embedder=HashEmbedder())
    lex = search("certificate", store=sqlite_store, embedder=None, mode="lexical")
    assert [r.id for r in lex] == ["INC-102"] and all(w.startswith("words") for w in lex[0].why)
    vec = search("certificate", store=sqlite_store, embedder=HashEmbedder(), mode="vector", k=3)
    assert len(vec) == 3 and all(w.startswith("meaning") for r in vec for w in r.why)


def test_search_filters(sqlite_store: Store) -> None:
    index_incidents(_items(POOL, CERT, DISK), store=sqlite_store, embedder=HashEmbedder())
    flt = SearchFilter(service="EDGE")
    assert [
        r.id for r in search("outage", store=sqlite_store, embedder=HashEmbedder(), flt=flt)
    ] == ["INC-102"]
    flt = SearchFilter(severity="sev1")
    assert [
        r.id for r in search("outage", store=sqlite_store, embedder=HashEmbedder(), flt=flt)
    ] == ["INC-101"]


def test_weights_shift_the_fusion(sqlite_store: Store) -> None:
    index_incidents(_items(POOL, CERT, DISK), store=sqlite_store, embedder=HashEmbedder())
    only_words = Fusion(vector_weight=0.0)
    res = search(
        "retention migration", store=sqlite_store, embedder=HashEmbedder(), fusion=only_words
    )
    assert res[0].id == "INC-103" and res[0].score == 1.0


def _many(n: int = 60) -> list:
    """Incidents that share words in many combinations, so rankings have near ties."""
    words = ["pool", "deploy", "dns", "cache", "disk", "certificate", "kafka", "timeout"]
    items = []
    for i in range(n):
        picked = [words[(i * j + j) % len(words)] for j in range(1, 4)]
        pm = postmortem(
            f"INC-{i:03d}",
            f"{picked[0]} trouble {i % 7}",
            summary=f"The {picked[1]} failed after a {picked[2]} change.",
            root_cause=f"A {picked[0]} {picked[2]} problem.",
        )
        items.append((postmortem_record(pm), postmortem_chunks(pm)))
    return items


@pytest.mark.parametrize("depth", [200, 2])
@pytest.mark.parametrize("mode", ["hybrid", "lexical", "vector"])
def test_results_do_not_depend_on_k(
    any_store: Store, mode: str, depth: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # depth 2: PostgreSQL's HNSW half starts far too shallow and must read deeper until nothing
    # it left out could enter the top k (SQLite always scores every incident).
    monkeypatch.setattr(similarity, "VECTOR_DEPTH", depth)
    emb = HashEmbedder()
    index_incidents(_many(), store=any_store, embedder=emb)
    for query in ("pool deploy", "dns cache timeout", "certificate", "disk kafka failed"):
        fifty = search(query, store=any_store, embedder=emb, k=50, mode=mode)  # type: ignore[arg-type]
        for k in (1, 3, 5, 10):
            first = search(query, store=any_store, embedder=emb, k=k, mode=mode)  # type: ignore[arg-type]
            assert [r.id for r in first] == [r.id for r in fifty[:k]], (query, k)
            assert [r.score for r in first] == [r.score for r in fifty[:k]]


def test_ties_break_on_the_id_not_on_one_half() -> None:
    import numpy as np

    from retro.index.similarity import fuse
    from retro.index.store.base import Hit, Scores, top_positions

    def scores(values: dict[str, float]) -> Scores:
        ids = list(values)
        return Scores(ids, np.asarray(list(values.values())), lambda i: Hit(ids[i], "text", 0, 0.0))

    even = Fusion(vector_weight=0.5)
    for words_first, meaning_first in (("A", "B"), ("B", "A")):
        # One incident is first by words only, the other first by meaning only: a tie.
        lex = scores({words_first: 4.0})
        vec = scores({words_first: 0.0, meaning_first: 0.8, "C": 0.4})
        fused = fuse(lex, vec, even)
        top = [fused.ids[i] for i in top_positions(fused.score, fused.ids, 3)]
        assert top == ["A", "B", "C"]
        assert fused.score[fused.ids.index("A")] == fused.score[fused.ids.index("B")] == 0.5


def test_exclude_is_not_scored_and_not_counted(sqlite_store: Store) -> None:
    emb = HashEmbedder()
    index_incidents(_items(POOL, CERT, DISK), store=sqlite_store, embedder=emb)
    text = "postgres connection pool exhausted"
    res = search(text, store=sqlite_store, embedder=emb, k=2, exclude="INC-101")
    assert "INC-101" not in [r.id for r in res] and len(res) == 2
    # Scaled without the excluded incident: no one left shares a word, and the best cosine left
    # earns the whole vector weight.
    assert res[0].score == pytest.approx(Fusion().vector_weight)


# --- similar and repeats (real model) ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with open_store(f"sqlite:///{tmp_path / 'i.db'}") as s:
            yield s
        return
    with fresh_database() as url, open_store(url) as s:
        yield s


NEW = postmortem(
    "INC-200",
    "Payments failing: database out of connections",
    summary="Payment requests timed out.",
    root_cause="After the release raised the number of workers, Postgres ran out of pooled connections.",
    services=["payments"],
)


@pytest.mark.slow
def test_find_similar_flags_repeat_with_open_action(
    any_store: Store, minilm: MiniLMEmbedder
) -> None:
    index_incidents(_items(POOL, CERT, DISK), store=any_store, embedder=minilm)
    results = find_similar(NEW, store=any_store, embedder=minilm, k=3)
    assert results[0].id == "INC-101"
    assert results[0].open_action_items == ["OPS-7: Cap worker count per pod"]
    assert results[0].repeat and results[0].why[0].startswith("repeat: profile cosine")
    assert results[0].score >= REPEAT_THRESHOLD
    assert all(not r.repeat and r.open_action_items == [] for r in results[1:])
    assert repeat_warnings(results) == [
        "This repeats INC-101 (Checkout outage from exhausted database connections); "
        "its action item OPS-7: Cap worker count per pod is still open."
    ]


@pytest.mark.slow
def test_find_similar_meaning_without_shared_words(
    any_store: Store, minilm: MiniLMEmbedder
) -> None:
    index_incidents(_items(POOL, CERT, DISK), store=any_store, embedder=minilm)
    res = search("storage volumes ran out of free space", store=any_store, embedder=minilm, k=3)
    assert res[0].id == "INC-103"
    assert any(w.startswith("meaning:") for w in res[0].why)


def test_find_similar_excludes_itself(sqlite_store: Store) -> None:
    emb = HashEmbedder()
    index_incidents(_items(POOL, CERT, DISK), store=sqlite_store, embedder=emb)
    assert "INC-101" not in [r.id for r in find_similar(POOL, store=sqlite_store, embedder=emb)]


def test_done_actions_are_not_flagged(sqlite_store: Store) -> None:
    emb = HashEmbedder()
    closed = POOL.model_copy(update={"action_items": [action("Cap worker count per pod", "done")]})
    index_incidents(_items(closed), store=sqlite_store, embedder=emb)
    twin = POOL.model_copy(update={"incident_id": "INC-999"})
    res = find_similar(twin, store=sqlite_store, embedder=emb)
    assert res[0].id == "INC-101" and res[0].open_action_items == []
    assert res[0].repeat and res[0].score == pytest.approx(1.0)


def test_postmortem_from_json_record(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"id": "Q", "title": "T", "text": "body", "root_cause": "rc"}))
    pm = postmortem_from_file(path)
    assert pm.incident_id == "Q" and [c.text for c in pm.root_cause] == ["rc"]
    path.write_text(json.dumps([{"id": "1"}, {"id": "2"}]))
    with pytest.raises(ConfigError, match="expected one postmortem"):
        postmortem_from_file(path)


def test_markdown_postmortem_round_trip(tmp_path: Path, sqlite_store: Store) -> None:
    review = pytest.importorskip("retro.draft.review")
    render = pytest.importorskip("retro.draft.render")
    if not hasattr(review, "read_postmortem") or not hasattr(render, "render"):
        pytest.skip("retro.review.read_postmortem is not available yet")
    path = tmp_path / "INC-101.md"
    path.write_text(render.render(POOL), encoding="utf-8")
    [(record, chunks)] = list(iter_path(path))
    assert record.id == "INC-101" and record.url == str(path.resolve())
    fields = {c.field: c.text for c in chunks}
    assert "connection pool was exhausted" in fields["root_cause"]
    assert "Cap worker count per pod" in fields["context"]
    emb = HashEmbedder()
    index_incidents([(record, chunks)], store=sqlite_store, embedder=emb)
    assert search("connection pool", store=sqlite_store, embedder=emb)[0].id == "INC-101"


def test_similar_from_index(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    from retro.index.similarity import similar_from_index

    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert similar_from_index(NEW, url=url) == []
    assert not (tmp_path / "none.db").exists()
    with open_store(url) as s:
        pass
    assert similar_from_index(NEW, url=url) == []  # exists but empty
    with open_store(url) as s:
        index_incidents(_items(POOL, CERT), store=s, embedder=minilm)
    res = similar_from_index(NEW, url=url, k=2)
    assert res[0].id == "INC-101" and res[0].open_action_items == [
        "OPS-7: Cap worker count per pod"
    ]


def test_retrieval_eval_scoring_and_skip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from evals import retrieval

    recall, hit, rr = retrieval.score(["a", "x", "b", "y"], {"b", "z"})
    assert (recall, hit, rr) == (0.5, 1.0, 1 / 3)
    assert retrieval.score(["x"], {"b"}) == (0.0, 0.0, 0.0)
    assert retrieval.main(["--shared", str(tmp_path)]) == 0
    assert "skipped" in capsys.readouterr().err


def test_retrieval_eval_bootstrap_moves_queries_of_one_incident_together() -> None:
    import numpy as np

    from evals import retrieval

    # Two incidents; all queries about "a" score 1, about "b" score 0. Resampling incidents
    # gives means of 0, 1/2 or 1 only; resampling single queries would give other values.
    values = {"m": np.asarray([1.0, 1.0, 1.0, 0.0])}
    low, high = retrieval.bootstrap(values, ["a", "a", "a", "b"], rounds=400)["m"]
    assert (low, high) == (0.0, 1.0)


def test_retrieval_eval_queries_and_split() -> None:
    from evals import retrieval

    if not (retrieval.SHARED / "corpus" / "danluu_postmortems.json").is_file():
        pytest.skip("../shared/corpus is absent")
    records, queries = retrieval.load_corpus(retrieval.SHARED)
    assert len(records) == 190 and all(set(r) == {"id", "text", "url"} for r in records)
    ids = {r["id"] for r in records}
    families = {q.family for q in queries}
    assert families == {"keywords", "summary", "root cause", "category"}
    for q in queries:
        assert q.relevant <= ids and q.about in ids
        if q.family == "category":
            assert q.exclude == q.about and q.about not in q.relevant
        else:
            assert q.relevant == {q.about}
    # Every query about one incident is on the same side of the split.
    sides: dict[str, set[str]] = {}
    for q in queries:
        sides.setdefault(q.about, set()).add(q.half)
    assert all(len(s) == 1 for s in sides.values())
    assert {q.half for q in queries} == {"tuning", "test"}
