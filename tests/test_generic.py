"""Generic connector: JSONL and CSV events with at/text, kinds, actors and line-numbered errors."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.generic import GenericConnector
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import IncidentMeta, SourceReport, TimelineEvent

CONNECTOR = GenericConnector()


def make_ctx(tmp_path: Path, *, lenient: bool = False) -> ReadContext:
    return ReadContext(
        bundle=tmp_path,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="generic"),
        lenient=lenient,
    )


def jsonl_doc(tmp_path: Path, rel: str, text: str, *, on_disk: bool = True) -> Doc:
    """Parse like the bundle loader does: one object per non-blank line."""
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    data = [json.loads(line) for line in text.splitlines() if line.strip()]
    return Doc(rel, data, fmt="jsonl", path=path if on_disk else None)


def csv_doc(tmp_path: Path, rel: str, text: str) -> Doc:
    path = tmp_path / rel
    path.write_text(text, "utf-8")
    with path.open(newline="", encoding="utf-8") as handle:
        data: list[dict[str, Any]] = list(csv.DictReader(handle))
    return Doc(rel, data, fmt="csv", path=path)


def read(ctx: ReadContext, *docs: Doc) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx))


EVENTS = "\n".join(
    json.dumps(r)
    for r in [
        {
            "at": "2024-05-01T14:05:00Z",
            "text": "Deployed checkout v2.31",
            "source": "argo-cd",
            "actor": "Dana Ops <ignored>",
            "kind": "change_deployed",
            "id": "deploy-881",
            "url": "https://argo.example.com/applications/checkout",
            "revision": "9f2c1ab",
        },
        {
            "at": "2024-05-01T14:20:00+02:00",
            "text": "Status page: investigating",
            "kind": "incident",
        },
        {"timestamp": 1714572300, "message": "Rolled back", "actor": "sam@example.com"},
    ]
)


def test_jsonl_events(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    deploy, status, rollback = read(ctx, jsonl_doc(tmp_path, "events.jsonl", EVENTS))
    assert deploy.key == "generic:events.jsonl:deploy-881"
    assert deploy.kind == "change_deployed" and deploy.source == "generic"
    assert deploy.at == datetime(2024, 5, 1, 14, 5, tzinfo=UTC)
    assert deploy.attrs == {"revision": "9f2c1ab", "origin": "argo-cd", "id": "deploy-881"}
    assert deploy.actor is not None and deploy.actor.name == "Dana Ops <ignored>"
    assert deploy.actor.source == "generic"
    assert deploy.url == "https://argo.example.com/applications/checkout"
    assert deploy.provenance.record == "line 1"
    assert status.kind == "note" and status.attrs["raw_kind"] == "incident"
    assert status.key == "generic:events.jsonl:line-2"
    assert status.at == datetime(2024, 5, 1, 12, 20, tzinfo=UTC)
    assert rollback.text == "Rolled back"
    assert rollback.at == datetime.fromtimestamp(1714572300, tz=UTC)
    assert rollback.actor is not None and rollback.actor.email == "sam@example.com"
    assert rollback.actor.name is None
    assert ctx.report.records == 3


def test_csv_with_extra_columns_and_actor_email(tmp_path: Path) -> None:
    text = (
        "at,text,source,actor,actor_email,kind,ticket\n"
        "2024-05-01T14:05:00Z,Paged DB on-call,manual,Lee Chen,LEE@example.com,note,OPS-1\n"
        "\n"
        '2024-05-01T14:09:00Z,"Posted ""degraded"" on status page",statuspage,,,'
        "status_page_update,\n"
    )
    first, second = read(make_ctx(tmp_path), csv_doc(tmp_path, "timeline.csv", text))
    assert first.actor is not None
    assert (first.actor.name, first.actor.email) == ("Lee Chen", "lee@example.com")
    assert first.attrs == {"ticket": "OPS-1", "origin": "manual"}
    assert first.provenance.record == "line 2"
    assert second.kind == "status_page_update" and second.actor is None
    assert second.text == 'Posted "degraded" on status page'
    # The blank line is skipped by csv.DictReader; the line number still matches the file.
    assert second.provenance.record == "line 4" and second.key == "generic:timeline.csv:line-4"


def test_missing_fields_name_the_line(tmp_path: Path) -> None:
    text = '{"at": "2024-05-01T14:00:00Z", "text": "ok"}\n\n{"at": "2024-05-01T14:01:00Z"}\n'
    doc = jsonl_doc(tmp_path, "events.jsonl", text)
    with pytest.raises(BundleError) as info:
        read(make_ctx(tmp_path), doc)
    err = info.value
    assert err.path == "events.jsonl" and err.record == "line 3"
    assert "`text` is missing" in err.message and "2024-05-01T14:03:00Z" in str(err.hint)
    assert str(err).startswith("events.jsonl line 3: `text` is missing or empty")


def test_bad_timestamp_names_the_line(tmp_path: Path) -> None:
    text = "at,text\n2024-05-01T14:00:00Z,fine\nlast tuesday,broken\n2024-05-01 14:02,naive\n"
    doc = csv_doc(tmp_path, "notes.csv", text)
    with pytest.raises(BundleError) as info:
        read(make_ctx(tmp_path), doc)
    assert info.value.record == "line 3" and "not a valid timestamp" in info.value.message
    assert "ISO 8601" in str(info.value.hint)
    ctx = make_ctx(tmp_path, lenient=True)
    events = read(ctx, doc)
    assert [e.text for e in events] == ["fine"]
    assert sum(ctx.report.skipped.values()) == 2  # the bad one and the zone-less one
    assert any("no time zone" in reason for reason in ctx.report.skipped)


def test_non_object_line_and_positional_fallback(tmp_path: Path) -> None:
    text = '{"at": "2024-05-01T14:00:00Z", "text": "ok"}\n["not", "an", "object"]\n'
    doc = jsonl_doc(tmp_path, "e.jsonl", text, on_disk=False)
    with pytest.raises(BundleError, match="not an object") as info:
        read(make_ctx(tmp_path), doc)
    assert info.value.record == "line 2"


def test_aliases_and_unused_alias_kept(tmp_path: Path) -> None:
    text = json.dumps({"time": "2024-05-01T14:00:00Z", "message": "m", "timestamp": "later"})
    (event,) = read(make_ctx(tmp_path), jsonl_doc(tmp_path, "a.jsonl", text))
    assert event.text == "m" and event.attrs == {"timestamp": "later"}


def test_claims() -> None:
    rows = [{"at": "2024-05-01T14:00:00Z", "text": "x"}]
    assert CONNECTOR.claims(Doc("e.jsonl", rows, fmt="jsonl"))
    assert CONNECTOR.claims(Doc("e.csv", [{"timestamp": "1", "message": "x"}], fmt="csv"))
    assert not CONNECTOR.claims(Doc("e.json", rows, fmt="json"))
    assert not CONNECTOR.claims(Doc("e.jsonl", [], fmt="jsonl"))
    assert not CONNECTOR.claims(Doc("e.csv", [{"at": "x", "body": "y"}], fmt="csv"))
    assert not CONNECTOR.claims(Doc("e.jsonl", [["at", "text"]], fmt="jsonl"))
