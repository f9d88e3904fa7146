"""`retro index add|stats|remove`, `retro search` and `retro similar` through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from index_helpers import action, postmortem

from retro.cli.main import cli

RECORDS = [
    {
        "id": "PM-1",
        "title": "Checkout down: database connections exhausted",
        "text": "Checkout failed because the Postgres connection pool was exhausted after a deploy.",
        "url": "https://wiki.example.com/pm-1",
        "date": "2024-03-01",
        "services": ["checkout", "postgres"],
        "severity": "SEV1",
        "root_cause": "Postgres connection pool exhausted after a deploy doubled workers.",
        "action_items": [{"title": "Cap workers per pod", "status": "open", "tracking": "OPS-7"}],
    },
    {
        "id": "PM-2",
        "title": "Expired certificate on the edge",
        "text": "The TLS certificate of the public API expired and clients failed handshakes.",
        "date": "2023-05-01",
        "services": ["edge"],
        "severity": "SEV2",
    },
    {
        "id": "PM-3",
        "title": "Log disks full",
        "text": "Logging cluster disks filled up after retention settings were lost.",
        "date": "2024-06-01",
        "services": ["logging"],
    },
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'index.db'}"


@pytest.fixture
def indexed(runner: CliRunner, tmp_path: Path, db: str) -> str:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n")
    result = runner.invoke(cli, ["index", "add", str(corpus), "--db", db])
    assert result.exit_code == 0, result.output
    return db


def test_index_add_reports_on_stderr(runner: CliRunner, tmp_path: Path, db: str) -> None:
    corpus = tmp_path / "c.json"
    corpus.write_text(json.dumps(RECORDS))
    first = runner.invoke(cli, ["index", "add", str(corpus), "--db", db])
    assert first.exit_code == 0
    assert first.stdout == ""
    assert "indexed 3 incidents" in first.stderr and "0 unchanged" in first.stderr
    again = runner.invoke(cli, ["index", "add", str(corpus), "--db", db])
    assert "0 embedded" in again.stderr


def test_index_stats(runner: CliRunner, indexed: str) -> None:
    result = runner.invoke(cli, ["index", "stats", "--db", indexed])
    assert result.exit_code == 0
    assert "incidents:  3" in result.stdout and "all-MiniLM-L6-v2 (384 dims)" in result.stdout
    data = json.loads(runner.invoke(cli, ["index", "stats", "--db", indexed, "--json"]).stdout)
    assert data["incidents"] == 3 and data["schema_version"] == 2


def test_search_text_output(runner: CliRunner, indexed: str) -> None:
    result = runner.invoke(
        cli, ["search", "database ran out of connections", "--db", indexed, "-k", "2"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(" 1. ") and "PM-1" in lines[0]
    assert "https://wiki.example.com/pm-1" in lines[1]
    assert any(line.strip().startswith("- meaning:") for line in lines)
    assert sum(1 for line in lines if line[:4].strip().rstrip(".").isdigit()) == 2


def test_search_json_and_filters(runner: CliRunner, indexed: str) -> None:
    args = ["search", "outage", "--db", indexed, "--json", "--since", "2024-01-01"]
    data = json.loads(runner.invoke(cli, args).stdout)
    assert {d["id"] for d in data} == {"PM-1", "PM-3"}
    assert set(data[0]) == {"id", "title", "score", "url", "why"}
    args = ["search", "outage", "--db", indexed, "--json", "--service", "edge"]
    assert [d["id"] for d in json.loads(runner.invoke(cli, args).stdout)] == ["PM-2"]
    args = ["search", "outage", "--db", indexed, "--json", "--severity", "sev1", "--mode", "vector"]
    assert [d["id"] for d in json.loads(runner.invoke(cli, args).stdout)] == ["PM-1"]


def test_search_results_do_not_depend_on_k(runner: CliRunner, indexed: str) -> None:
    args = ["search", "database connections outage", "--db", indexed, "--json"]
    three = json.loads(runner.invoke(cli, [*args, "-k", "3"]).stdout)
    one = json.loads(runner.invoke(cli, [*args, "-k", "1"]).stdout)
    assert [d["id"] for d in one] == [d["id"] for d in three[:1]]
    assert one[0]["score"] == three[0]["score"]


def test_the_library_functions_behind_the_commands(indexed: str, tmp_path: Path) -> None:
    from retro.index import service

    assert service.stats(url=indexed).incidents == 3
    hits = service.search_text("certificate expired", url=indexed, k=1, mode="lexical")
    assert [h.id for h in hits] == ["PM-2"]
    assert service.repeats_in_index(url=indexed) == []  # three different incidents
    assert service.remove(["PM-3"], url=indexed) == ["PM-3"]
    assert service.stats(url=indexed).incidents == 2


def test_search_without_index_says_what_to_do(runner: CliRunner, db: str) -> None:
    result = runner.invoke(cli, ["search", "anything", "--db", db])
    assert result.exit_code == 2
    assert "No index at" in result.stderr and "retro index add" in result.stderr


def test_similar_flags_open_action(runner: CliRunner, indexed: str, tmp_path: Path) -> None:
    pm = tmp_path / "new.json"
    pm.write_text(
        json.dumps(
            {
                "id": "NEW",
                "title": "Payments failing: database out of connections",
                "text": "Payments timed out.",
                "root_cause": "A release raised worker count and Postgres ran out of pooled connections.",
            }
        )
    )
    data = json.loads(runner.invoke(cli, ["similar", str(pm), "--db", indexed, "--json"]).stdout)
    assert data[0]["id"] == "PM-1" and data[0]["repeat"] is True
    assert data[0]["open_action_items"] == ["OPS-7: Cap workers per pod"]
    assert all(d["repeat"] is False and d["open_action_items"] == [] for d in data[1:])
    text = runner.invoke(cli, ["similar", str(pm), "--db", indexed]).stdout
    assert text.splitlines()[0].endswith(
        "PM-1  Checkout down: database connections exhausted  (repeat)"
    )
    assert "! this repeats PM-1; its action item OPS-7: Cap workers per pod is still open" in text


def test_index_markdown_postmortem(runner: CliRunner, tmp_path: Path, db: str) -> None:
    render = pytest.importorskip("retro.draft.render")
    review = pytest.importorskip("retro.draft.review")
    if not hasattr(review, "read_postmortem") or not hasattr(render, "render"):
        pytest.skip("retro.review.read_postmortem is not available yet")
    pm = postmortem(
        "INC-9",
        "Queue backlog after broker restart",
        summary="Orders were delayed.",
        root_cause="A broker restart dropped consumer leases.",
        actions=[action("Drain before restart", "open", "OPS-1")],
    )
    path = tmp_path / "INC-9.md"
    path.write_text(render.render(pm))
    assert runner.invoke(cli, ["index", "add", str(path), "--db", db]).exit_code == 0
    data = json.loads(runner.invoke(cli, ["search", "broker restart", "--db", db, "--json"]).stdout)
    assert data[0]["id"] == "INC-9" and data[0]["url"] == str(path.resolve())


def test_index_remove(runner: CliRunner, indexed: str) -> None:
    assert runner.invoke(cli, ["index", "remove", "PM-3", "--db", indexed]).exit_code == 0
    again = runner.invoke(cli, ["index", "remove", "PM-3", "--db", indexed])
    assert again.exit_code == 2 and "No incident 'PM-3'" in again.stderr


def test_bad_corpus_is_one_line_error(runner: CliRunner, tmp_path: Path, db: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"title": "no id"}]')
    result = runner.invoke(cli, ["index", "add", str(bad), "--db", db])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "needs an object with an id" in result.stderr


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from retro.cli.main import cli; import retro.cli.index;"
        "heavy = [m for m in ('numpy', 'torch', 'sentence_transformers', 'psycopg', 'tokenizers')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
