"""Generic events file mode: JSONL and CSV records with a time and a text."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import EVENT_KINDS, Actor, EventKind, Provenance, TimelineEvent

TIME_KEYS = ("at", "time", "timestamp")
TEXT_KEYS = ("text", "message")
_KNOWN = {"source", "actor", "actor_email", "kind", "id", "url"}
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_PEEK = 5  # records inspected by claims(); the rest are checked while reading


def _present(value: Any) -> bool:
    return value not in (None, "") and not (isinstance(value, str) and not value.strip())


def _pick(record: dict[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """The first alias present with a value, and that value."""
    for key in keys:
        if _present(record.get(key)):
            return key, record[key]
    return None, None


def _line_numbers(doc: Doc) -> list[int]:
    """File line of each record; exact when the file is on disk, positional otherwise."""
    offset = 2 if doc.fmt == "csv" else 1  # a CSV's first line is the header
    fallback = [i + offset for i in range(len(doc.data))]
    if doc.path is None or not doc.path.is_file():
        return fallback
    try:
        with doc.path.open(encoding="utf-8-sig", newline="") as handle:
            if doc.fmt == "csv":
                reader = csv.reader(handle)
                next(reader, None)
                lines = [reader.line_num for row in reader if row]
            else:
                lines = [n for n, text in enumerate(handle, start=1) if text.strip()]
    except (OSError, UnicodeDecodeError, csv.Error):
        return fallback
    # Blank lines and quoted newlines shift positions; trust the file only if the counts agree.
    return lines if len(lines) == len(doc.data) else fallback


def _actor(record: dict[str, Any]) -> Actor | None:
    raw = str(record.get("actor") or "").strip()
    email = str(record.get("actor_email") or "").strip() or None
    if _EMAIL.match(raw):
        return Actor(source="generic", email=raw.lower())
    if not raw and not email:
        return None
    return Actor(source="generic", name=raw or None, email=email.lower() if email else None)


def claims(doc: Doc) -> bool:
    if doc.fmt not in ("jsonl", "csv") or not isinstance(doc.data, list) or not doc.data:
        return False
    keys: set[str] = set()
    for record in doc.data[:_PEEK]:
        if isinstance(record, dict):
            keys.update(k for k in record if isinstance(k, str))
    return bool(keys & set(TIME_KEYS)) and bool(keys & set(TEXT_KEYS))


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    for doc in docs:
        lines = _line_numbers(doc)
        for record, line_no in zip(doc.data, lines, strict=True):
            ctx.report.records += 1
            event = _event(record, doc, line_no, ctx)
            if event is not None:
                yield event


def _event(record: Any, doc: Doc, line_no: int, ctx: ReadContext) -> TimelineEvent | None:
    where = f"line {line_no}"
    if not isinstance(record, dict):
        hint = 'write one JSON object per line, e.g. {"at": "...", "text": "..."}'
        ctx.reject(BundleError(doc.rel, "record is not an object", record=where, hint=hint))
        return None
    time_key, raw_at = _pick(record, TIME_KEYS)
    text_key, text = _pick(record, TEXT_KEYS)
    missing = [name for name, value in (("at", raw_at), ("text", text)) if value is None]
    if missing:
        fields = " and ".join(f"`{m}`" for m in missing)
        hint = "give every record `at` (ISO 8601, e.g. 2024-05-01T14:03:00Z) and `text`"
        err = BundleError(doc.rel, f"{fields} is missing or empty", record=where, hint=hint)
        ctx.reject(err, reason="generic record without at/text")
        return None
    try:
        at = ctx.time(raw_at, doc=doc, record=where, field_name=time_key or "at")
    except BundleError as err:
        ctx.reject(err, reason="bad generic time")
        return None
    kind, attrs = _kind_and_attrs(record, used={time_key, text_key})
    ident = str(record["id"]).strip() if _present(record.get("id")) else None
    return TimelineEvent.of(
        key=f"generic:{doc.rel}:{ident}" if ident else f"generic:{doc.rel}:line-{line_no}",
        at=at,
        source="generic",
        kind=kind,
        actor=_actor(record),
        text=str(text).strip(),
        url=str(record["url"]).strip() if _present(record.get("url")) else None,
        provenance=Provenance.of(doc.rel, where),
        attrs=attrs,
    )


def _kind_and_attrs(
    record: dict[str, Any], used: set[str | None]
) -> tuple[EventKind, dict[str, Any]]:
    """A known kind is used as is; anything else becomes a note that keeps the raw value."""
    attrs: dict[str, Any] = {}
    for key, value in record.items():
        if key in _KNOWN or key in used or not _present(value):
            continue
        # csv.DictReader puts cells beyond the header under the key None.
        attrs[key if isinstance(key, str) else "extra_cells"] = value
    if _present(record.get("source")):
        attrs["origin"] = str(record["source"]).strip()
    if _present(record.get("id")):
        attrs["id"] = str(record["id"]).strip()
    raw_kind = str(record.get("kind") or "").strip()
    if raw_kind in EVENT_KINDS:
        return raw_kind, attrs  # type: ignore[return-value]
    if raw_kind:
        attrs["raw_kind"] = raw_kind
    return "note", attrs
