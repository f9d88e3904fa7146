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
from retro.index.corpus import corpus_item, iter_path, postmortem_from_file
from retro.index.embeddings import MiniLMEmbedder
from retro.index.similarity import (
    Fusion,
    find_similar,
    index_incidents,
    postmortem_chunks,
    postmortem_record,
    repeat_warnings,
    rrf,
    search,
    split_passages,
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
    assert "Services: checkout, postgres." in by_field["context"]
    assert "Alerts: PgPoolSaturated firing." in by_field["context"]
    assert "Cap worker count per pod" in by_field["context"]
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
    assert [c.field for c in chunks] == ["text", "context"]
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
        "summary": "T. S",
        "root_cause": "R",
        "context": "Action items: Fix.",
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
    assert results[0].why[0].startswith("root cause matches (cosine")
    assert all(r.open_action_items == [] for r in results[1:])
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
    assert res[0].why[0].startswith("root cause matches")


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


def test_retrieval_eval_labels_are_not_indexed() -> None:
    from evals import retrieval

    if not (retrieval.SHARED / "corpus" / "danluu_postmortems.json").is_file():
        pytest.skip("../shared/corpus is absent")
    records, labels = retrieval.load_corpus(retrieval.SHARED)
    assert len(records) == 190 and all(set(r) == {"id", "text", "url"} for r in records)
    assert "uncategorized" not in {c for cats in labels["danluu"].values() for c in cats}
    assert not retrieval.BROAD_ICCO & {c for cats in labels["icco"].values() for c in cats}
