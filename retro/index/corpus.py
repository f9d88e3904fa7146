"""Reading incidents to index: JSON/JSONL corpora of {id, title, text, ...} and Markdown drafts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from retro.errors import BundleError, ConfigError
from retro.index.content import context_text, corpus_chunks, postmortem_chunks, postmortem_record
from retro.index.similarity import snippet
from retro.index.store.base import Chunk, IncidentRecord, IndexedAction
from retro.models import Claim, Postmortem
from retro.text import split_sentences


def first_sentence(text: str, limit: int = 100) -> str:
    """A title for a record that has none."""
    sentences = split_sentences(text.strip())
    return snippet(sentences[0] if sentences else text.strip(), limit)


# --- reading files to index ------------------------------------------------------------------------

_LIST_KEYS = ("incidents", "entries", "items", "records", "postmortems")


def _corpus_rows(path: Path) -> list[tuple[str, object]]:
    """(record label, value) of every record of a JSON or JSONL corpus file."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(raw.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((f"line {n}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise BundleError(
                        path,
                        f"invalid JSON: {exc.msg}",
                        record=f"line {n}",
                        hint="each line must be one JSON object",
                    ) from exc
        return rows
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BundleError(
            path,
            f"invalid JSON at line {exc.lineno}: {exc.msg}",
            hint="fix the file or export it again",
        ) from exc
    if isinstance(data, dict):
        data = next((data[k] for k in _LIST_KEYS if isinstance(data.get(k), list)), [data])
    if not isinstance(data, list):
        raise BundleError(path, "expected a list of incidents", hint="see docs/similarity.md")
    return [(f"[{i}]", v) for i, v in enumerate(data)]


def _parse_date(value: object, path: Path, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise BundleError(
            path,
            f"date {value!r} is not ISO-8601",
            record=where,
            hint="write dates as 2024-05-01 or 2024-05-01T12:00:00Z",
        ) from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _text_list(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v.get("title", "")) if isinstance(v, dict) else str(v) for v in value]
    return []


_KNOWN = frozenset(
    {
        *("id", "title", "text", "description", "url", "date", "started", "severity"),
        *("services", "summary", "impact", "root_cause", "alerts", "action_items"),
    }
)


def _action(value: object) -> IndexedAction:
    if isinstance(value, dict):
        return IndexedAction(
            title=str(value.get("title", "")),
            status=str(value.get("status", "open")),
            tracking=str(value.get("tracking", "")),
        )
    return IndexedAction(title=str(value))


def corpus_item(obj: object, path: Path, where: str) -> tuple[IncidentRecord, list[Chunk]]:
    """One {id, title, text, url, date, ...} record as an incident record and its chunks."""
    if not isinstance(obj, dict) or obj.get("id") in (None, ""):
        raise BundleError(
            path,
            "a record needs an object with an id",
            record=where,
            hint="each record is {id, title, text, url, date, ...}",
        )
    text = str(obj.get("text") or obj.get("description") or "")
    title = str(obj.get("title") or first_sentence(text) or obj["id"])
    actions = [_action(a) for a in (obj.get("action_items") or [])]
    record = IncidentRecord(
        id=str(obj["id"]),
        title=title,
        url=obj.get("url") or None,
        started=_parse_date(obj.get("date") or obj.get("started"), path, where),
        severity=str(obj["severity"]) if obj.get("severity") else None,
        services=_text_list(obj.get("services")),
        source=str(path),
        root_cause=" ".join(_text_list(obj.get("root_cause"))),
        action_items=actions,
        extra={k: v for k, v in obj.items() if k not in _KNOWN},
    )
    fields = {
        "summary": " ".join(_text_list(obj.get("summary"))),
        "impact": " ".join(_text_list(obj.get("impact"))),
        "root_cause": record.root_cause,
        "context": context_text(
            record.services, _text_list(obj.get("alerts")), [a.title for a in actions]
        ),
    }
    return record, corpus_chunks(record, text, fields)


def markdown_item(path: Path) -> tuple[IncidentRecord, list[Chunk]]:
    """A Markdown postmortem, read back with the review round trip."""
    try:
        from retro.draft.review import read_postmortem
    except ImportError as exc:
        raise ConfigError(
            f"Cannot index {path}: this build cannot read Markdown postmortems yet",
            hint="index a JSON/JSONL corpus instead",
        ) from exc
    pm = read_postmortem(path)
    resolved = str(path.resolve())
    return postmortem_record(pm, source=resolved, url=resolved), postmortem_chunks(pm)


def iter_path(path: Path) -> Iterator[tuple[IncidentRecord, list[Chunk]]]:
    """Incidents in a file (.md, .json, .jsonl) or, recursively, a folder of them."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix.lower() in (".md", ".json", ".jsonl"):
                yield from iter_path(child)
        return
    if not path.exists():
        raise ConfigError(
            f"No such file: {path}", hint="pass Markdown postmortems or JSON/JSONL corpora"
        )
    suffix = path.suffix.lower()
    if suffix == ".md":
        yield markdown_item(path)
    elif suffix in (".json", ".jsonl"):
        for where, obj in _corpus_rows(path):
            yield corpus_item(obj, path, where)
    else:
        raise ConfigError(
            f"Cannot index {path}: unknown file type {suffix or '(none)'}",
            hint="pass .md postmortems or .json/.jsonl corpora",
        )


def postmortem_from_file(path: Path) -> Postmortem:
    """The postmortem to compare: a Markdown draft, or one {id, title, text, ...} JSON record."""
    if path.suffix.lower() == ".md":
        try:
            from retro.draft.review import read_postmortem
        except ImportError as exc:
            raise ConfigError(
                f"Cannot read {path}: this build cannot read Markdown postmortems yet",
                hint="pass one JSON record instead",
            ) from exc
        return read_postmortem(path)
    rows = _corpus_rows(path) if path.suffix.lower() in (".json", ".jsonl") else []
    if len(rows) != 1:
        raise ConfigError(
            f"Cannot compare {path}: expected one postmortem",
            hint="pass a Markdown postmortem or a JSON file holding one record",
        )
    record, chunks = corpus_item(rows[0][1], path, rows[0][0])
    claims = lambda field: [Claim(text=c.text) for c in chunks if c.field == field]  # noqa: E731
    return Postmortem(
        incident_id=record.id,
        title=record.title,
        engine="record",  # people's words: every sentence counts (retro.index.content)
        severity=record.severity,
        services=record.services,
        started=record.started,
        summary=claims("summary") + claims("text"),
        impact=claims("impact"),
        root_cause=claims("root_cause"),
    )
