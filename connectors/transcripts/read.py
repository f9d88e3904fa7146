"""Meeting transcripts file mode: transcript files and the metadata that dates them, read into
timeline events (one per speaker turn, marked low-trust).

Recognized by content: WebVTT (`WEBVTT` first), SubRip, plain-text transcripts (timed lines or
front matter), Google Meet `transcriptEntries` pages and `participants` pages; and, as
context, sidecars (`<name>.meta.json` with `recording_start`), Zoom recordings bodies, Teams
callTranscript bodies and Meet transcript resources. Cue times are offsets from the recording
start; see docs/connectors/transcripts.md for where the start comes from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from connectors.transcripts import meet
from connectors.transcripts.parse import (
    Cue,
    Parsed,
    TranscriptError,
    clock,
    looks_like_srt,
    looks_like_text_transcript,
    looks_like_vtt,
    parse_cues,
    parse_text,
)
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import Actor, Provenance, TimelineEvent

SOURCE = "transcripts"
MERGE_GAP = 30.0  # seconds of silence after which one speaker's next cue starts a new line
MERGE_SPAN = 120.0  # a merged line covers at most this many seconds, so its time stays honest
_ZOOM_NAME = re.compile(r"GMT(\d{8})-(\d{6})")
_SUFFIXES = (".transcript", ".cc")
_START_HINT = (
    'add {stem}.meta.json beside it with {{"recording_start": "2024-05-01T14:00:00Z"}}, a '
    "`NOTE recording_start: …` block (WebVTT) or front matter (text), or list it under "
    "`transcripts:` in incident.yaml"
)
_SKIP_MERGED = "cue merged into the same speaker's line before it"
_SKIP_EMPTY = "empty cue (no words)"


# --- recognizing documents ------------------------------------------------------------------------


def _is_call_transcript(item: Any) -> bool:
    """A Teams callTranscript (v1.0 or beta, or the CLI for Microsoft 365's output of one)."""
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return False
    if "createdDateTime" not in item or "body" in item or "from" in item:
        return False
    specific = (
        "transcriptContentUrl",
        "meetingOrganizer",
        "meetingOrganizerId",
        "contentCorrelationId",
    )
    # The beta list holds only id and createdDateTime; Teams transcript ids are base64 of
    # "1##0##<guid>", which always starts "MSMjMCMj".
    return any(k in item for k in specific) or (
        set(item) <= {"id", "createdDateTime", "@odata.type"} and item["id"].startswith("MSMj")
    )


def _is_zoom_meeting(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("recording_files"), list)
        and any(k in item for k in ("uuid", "topic", "start_time"))
    )


def _json_shape(data: Any) -> str | None:
    if isinstance(data, list):
        if data and all(_is_call_transcript(x) for x in data):
            return "teams_transcripts"
        return "meet_entries" if data and all(meet.is_entry(x) for x in data) else None
    if not isinstance(data, dict):
        return None
    if "recording_start" in data and not ("file_type" in data or "recording_files" in data):
        return "sidecar"
    if _is_zoom_meeting(data):
        return "zoom_recordings"
    if isinstance(data.get("meetings"), list) and all(
        _is_zoom_meeting(m) for m in data["meetings"]
    ):
        return "zoom_recordings"
    value = data.get("value")
    if isinstance(value, list) and value and all(_is_call_transcript(x) for x in value):
        return "teams_transcripts"
    if _is_call_transcript(data):
        return "teams_transcripts"
    return meet.shape(data)


def doc_shape(doc: Doc) -> str | None:
    """Which transcript shape a document has, or None."""
    if doc.fmt == "json":
        return _json_shape(doc.data)
    if doc.fmt != "text" or not isinstance(doc.data, str):
        return None
    suffix = PurePosixPath(doc.rel).suffix.lower()
    if looks_like_vtt(doc.data):
        return "vtt"
    if looks_like_srt(doc.data):
        return "srt"
    if suffix == ".txt" and looks_like_text_transcript(doc.data):
        return "text"
    return None


def claims(doc: Doc) -> bool:
    try:
        return doc_shape(doc) is not None
    except Exception:  # claims() must never raise, whatever the document holds
        return False


# --- what dates a transcript ----------------------------------------------------------------------


def stems(rel: str) -> list[str]:
    """Folder-relative names a sidecar may use: `bridge` for bridge.vtt; both `x.transcript`
    and `x` for Zoom's x.transcript.vtt."""
    path = PurePosixPath(rel)
    stem = str(path.with_suffix(""))
    found = [stem]
    for suffix in _SUFFIXES:
        if stem.endswith(suffix):
            found.append(stem[: -len(suffix)])
    return found


def _safe(value: str) -> str:
    return re.sub(r"[^\w.-]+", "_", value)


@dataclass
class _ApiStart:
    ids: list[str]
    start: Any
    record: str
    doc: Doc
    title: str | None = None


@dataclass
class _Context:
    """Sidecars, API metadata and Meet participants from every claimed document."""

    sidecars: dict[str, tuple[Doc, dict[str, Any]]] = field(default_factory=dict)
    api: list[_ApiStart] = field(default_factory=list)
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)
    used_sidecars: set[str] = field(default_factory=set)

    def add_zoom(self, doc: Doc) -> None:
        meetings = doc.data.get("meetings") if "meetings" in doc.data else [doc.data]
        for i, meeting in enumerate(meetings):
            title = meeting.get("topic")
            for j, rec in enumerate(meeting.get("recording_files") or []):
                if not isinstance(rec, dict) or "recording_start" not in rec:
                    continue
                ids = [str(rec.get("id") or "")]
                if rec.get("file_type") in ("TRANSCRIPT", "CC"):
                    ids += [str(meeting.get("uuid") or ""), str(meeting.get("id") or "")]
                prefix = f"meetings[{i}]." if "meetings" in doc.data else ""
                self.api.append(
                    _ApiStart(
                        ids, rec["recording_start"], f"{prefix}recording_files[{j}]", doc, title
                    )
                )

    def add_teams(self, doc: Doc) -> None:
        data = doc.data
        items = data if isinstance(data, list) else data.get("value", [data])
        prefix = "" if isinstance(data, list) else ("value" if "value" in data else "")
        for i, item in enumerate(items):
            ids = [str(item["id"])]
            record = f"{prefix}[{i}]" if prefix or isinstance(data, list) else "transcript"
            self.api.append(_ApiStart(ids, item["createdDateTime"], record, doc))

    def match_api(self, rel: str) -> _ApiStart | None:
        """API metadata whose id the transcript file's name contains."""
        name = PurePosixPath(rel).name
        for entry in self.api:
            for ident in entry.ids:
                if len(ident) >= 6 and (ident in name or _safe(ident) in name):
                    return entry
        return None

    def sidecar(self, rel: str) -> tuple[Doc, dict[str, Any]] | None:
        for stem in stems(rel):
            if stem in self.sidecars:
                self.used_sidecars.add(stem)
                return self.sidecars[stem]
        return None


@dataclass
class _Start:
    at: datetime | None
    how: str
    meta: dict[str, Any]


def _yaml_entry(ctx: ReadContext, rel: str) -> dict[str, Any] | None:
    table = (ctx.incident.model_extra or {}).get("transcripts")
    if not isinstance(table, dict):
        return None
    path = PurePosixPath(rel)
    for key in (rel, path.name, str(path.with_suffix("")), path.stem):
        entry = table.get(key)
        if isinstance(entry, str | datetime):
            return {"recording_start": entry}
        if isinstance(entry, dict):
            return entry
    return None


def _zoom_name_start(rel: str) -> datetime | None:
    """Zoom names cloud recordings GMT<yyyymmdd>-<hhmmss>…: the recording's start in UTC."""
    match = _ZOOM_NAME.search(PurePosixPath(rel).name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1) + match.group(2) + "+0000", "%Y%m%d%H%M%S%z")
    except ValueError:
        return None


def resolve_start(doc: Doc, parsed: Parsed, ctx: ReadContext, known: _Context) -> _Start:
    """The wall-clock time of offset 0, and where it came from (see the module docstring)."""
    if parsed.cues and all(c.at is not None for c in parsed.cues):
        return _Start(None, "cue times", dict(parsed.meta))
    candidates: list[tuple[str, Doc, str, dict[str, Any]]] = []
    side = known.sidecar(doc.rel)
    if side is not None:
        candidates.append(("sidecar", side[0], "recording_start", side[1]))
    candidates.append(("transcript file", doc, "recording_start", parsed.meta))
    entry = _yaml_entry(ctx, doc.rel)
    if entry is not None:
        candidates.append(("incident.yaml", _YAML_DOC, f"transcripts.{doc.rel}", entry))
    for how, source, record, meta in candidates:
        value = meta.get("recording_start")
        if value not in (None, ""):
            at = ctx.time(value, doc=source, record=record, field_name="recording_start")
            return _Start(at, how, {**parsed.meta, **meta})
    api = known.match_api(doc.rel)
    if api is not None:
        at = ctx.time(api.start, doc=api.doc, record=api.record, field_name="recording_start")
        return _Start(at, f"API metadata ({api.doc.rel})", {"title": api.title, **parsed.meta})
    named = _zoom_name_start(doc.rel)
    if named is not None:
        return _Start(named, "Zoom file name (GMT…)", dict(parsed.meta))
    stem = PurePosixPath(stems(doc.rel)[-1]).name
    raise BundleError(
        doc.rel, "no recording start for the cue times", hint=_START_HINT.format(stem=stem)
    )


_YAML_DOC = Doc(rel="incident.yaml", data=None)


# --- turning cues into events --------------------------------------------------------------------


class _Speakers:
    """One shared Actor per speaker label, with emails from the sidecar or incident.yaml."""

    def __init__(self, people: dict[str, dict[str, str]]) -> None:
        self.people = people
        self.actors: dict[tuple[str, str], Actor] = {}

    def actor(self, label: str | None, mapping: Any, ident: str | None = None) -> Actor | None:
        if not label:
            return None
        given = mapping.get(label) if isinstance(mapping, dict) else None
        fields: dict[str, Any] = {"email": given} if isinstance(given, str) else dict(given or {})
        fields.update({k: v for k, v in self.people.get(label, {}).items() if v})
        key = (label, str(sorted(fields.items())))
        if key not in self.actors:
            self.actors[key] = Actor(
                source=SOURCE,
                id=ident,
                name=str(fields.get("name") or label),
                email=fields.get("email") or None,
                title=fields.get("title") or None,
            )
        return self.actors[key]


def _when(cue: Cue, start: datetime | None) -> datetime:
    if cue.at is not None:
        return cue.at
    assert start is not None and cue.start is not None
    return start + timedelta(seconds=cue.start)


def _end(cue: Cue, start: datetime | None) -> datetime:
    if cue.end_at is not None:
        return cue.end_at
    if cue.end is not None and cue.start is not None:
        return _when(cue, start) + timedelta(seconds=max(0.0, cue.end - cue.start))
    return _when(cue, start)


def groups(cues: list[Cue], start: datetime | None) -> list[list[Cue]]:
    """Consecutive cues of one named speaker, merged while the pauses and the span stay short."""
    out: list[list[Cue]] = []
    for cue in cues:
        last = out[-1] if out else None
        if last is not None and cue.speaker and cue.speaker == last[0].speaker:
            gap = (_when(cue, start) - _end(last[-1], start)).total_seconds()
            span = (_when(cue, start) - _when(last[0], start)).total_seconds()
            if gap <= MERGE_GAP and span <= MERGE_SPAN:
                last.append(cue)
                continue
        out.append([cue])
    return out


def _platform(parsed: Parsed, meta: dict[str, Any]) -> str:
    if isinstance(meta.get("platform"), str):
        return str(meta["platform"]).lower()
    if parsed.voices or (parsed.fmt == "vtt" and any(c.at is not None for c in parsed.cues)):
        return "teams"
    if parsed.fmt == "vtt" and parsed.cues and parsed.cues[0].ident == "1":
        return "zoom"
    return "unknown"


@dataclass
class _Transcript:
    doc: Doc
    parsed: Parsed
    start: _Start
    tid: str


def _events(t: _Transcript, ctx: ReadContext, speakers: _Speakers) -> Iterator[TimelineEvent]:
    meta = t.start.meta
    spoken = [c for c in t.parsed.cues if c.text]
    if len(spoken) < len(t.parsed.cues):
        ctx.report.skip(_SKIP_EMPTY, len(t.parsed.cues) - len(spoken))
    platform = _platform(t.parsed, meta)
    title = meta.get("title") or PurePosixPath(t.doc.rel).name
    used: set[str] = set()
    for group in groups(spoken, t.start.at):
        first, last = group[0], group[-1]
        if len(group) > 1:
            ctx.report.skip(_SKIP_MERGED, len(group) - 1)
        at = _when(first, t.start.at)
        stamp = f"{round(first.start * 1000):09d}" if first.start is not None else at.isoformat()
        key = f"{SOURCE}:{t.tid}:{stamp}"
        n = 1
        while key in used:
            n += 1
            key = f"{SOURCE}:{t.tid}:{stamp}-{n}"
        used.add(key)
        attrs: dict[str, Any] = {
            "low_trust": True,
            "transcript": str(title),
            "platform": platform,
            "speaker": first.speaker,
            "cues": len(group),
            "start_from": t.start.how,
        }
        if first.start is not None:
            attrs["offset"] = clock(first.start)
            attrs["end_offset"] = clock(last.end if last.end is not None else last.start or 0)
        if t.start.at is not None:
            attrs["recording_start"] = t.start.at.isoformat()
        if t.parsed.fmt == "meet":
            where = str(first.ident)
        else:
            where = f"cue {first.ident}" if first.ident else f"line {first.line}"
        yield TimelineEvent.of(
            key=key,
            at=at,
            source=SOURCE,
            kind="message",
            actor=speakers.actor(first.speaker, meta.get("speakers")),
            text=" ".join(c.text for c in group),
            url=meta.get("url") if isinstance(meta.get("url"), str) else None,
            provenance=Provenance.of(t.doc.rel, where),
            attrs=attrs,
        )


# --- the whole source -----------------------------------------------------------------------------


def _reject_all(ctx: ReadContext, err: BundleError, reason: str, n: int) -> None:
    """Strict: raise err. Lenient: count every cue of the file as skipped, with the reason."""
    if not ctx.lenient:
        raise err
    ctx.report.skip(f"{reason}: {err.message}"[:160], max(n, 1))


def _parse(doc: Doc, shape: str) -> Parsed:
    if shape == "text":
        return parse_text(doc.data)
    return parse_cues(doc.data, shape)


def _transcript(doc: Doc, shape: str, ctx: ReadContext, known: _Context) -> _Transcript | None:
    try:
        parsed = _parse(doc, shape)
    except TranscriptError as exc:
        record = f"line {exc.line}" if exc.line else None
        err = BundleError(
            doc.rel,
            f"not a readable transcript: {exc}",
            record=record,
            hint="check the file against docs/connectors/transcripts.md",
        )
        _reject_all(ctx, err, "invalid transcript", 1)
        return None
    ctx.report.records += len(parsed.cues)
    if not parsed.cues:
        ctx.report.skip(f"transcript without cues: {doc.rel}")
        return None
    try:
        start = resolve_start(doc, parsed, ctx, known)
    except BundleError as err:
        _reject_all(ctx, err, "no recording start", len(parsed.cues))
        return None
    tid = str(start.meta.get("transcript_id") or stems(doc.rel)[0])
    return _Transcript(doc, parsed, start, tid)


def _load_context(docs: list[Doc], ctx: ReadContext) -> tuple[_Context, list[tuple[Doc, str]]]:
    known = _Context()
    texts: list[tuple[Doc, str]] = []
    for doc in sorted(docs, key=lambda d: d.rel):
        if doc.rel not in ctx.report.files:
            ctx.report.files.append(doc.rel)
        shape = doc_shape(doc)
        if shape == "sidecar":
            name = PurePosixPath(doc.rel).name
            stem = str(
                PurePosixPath(doc.rel).parent / name.split(".meta.json")[0].removesuffix(".json")
            )
            known.sidecars[stem.removeprefix("./")] = (doc, doc.data)
        elif shape == "zoom_recordings":
            known.add_zoom(doc)
        elif shape == "teams_transcripts":
            known.add_teams(doc)
        elif shape == "meet_participants":
            known.participants.update(meet.participants(doc.data))
        elif shape in ("vtt", "srt", "text", "meet_entries"):
            texts.append((doc, shape))
    return known, texts


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Every speaker turn of every transcript, at its wall-clock time, marked low-trust."""
    known, texts = _load_context(docs, ctx)
    speakers = _Speakers(dict(ctx.incident.people))
    for n, (doc, shape) in enumerate(texts):
        transcript: _Transcript | None
        if shape == "meet_entries":
            parsed, tid = meet.to_parsed(doc, ctx, known.participants)
            start = _Start(None, "cue times", dict(parsed.meta))
            transcript = _Transcript(doc, parsed, start, tid or stems(doc.rel)[0])
        else:
            transcript = _transcript(doc, shape, ctx, known)
        if transcript is not None:
            yield from _events(transcript, ctx, speakers)
        ctx.progress("transcripts: reading", n + 1, len(texts))
    for stem, (doc, _) in known.sidecars.items():
        if stem not in known.used_sidecars:
            ctx.report.skip(f"sidecar matches no transcript file: {doc.rel}")
