"""Transcript files to cues: WebVTT (Zoom, Teams, Teams metadataContent), SubRip and plain text.

A cue is what one caption block says: an offset from the recording start (or, in Teams'
metadataContent, an absolute time), an optional speaker and the words. Speakers come from
WebVTT voice tags (`<v Ana Ruiz>…</v>`, Teams), a `Speaker Name: text` prefix (Zoom), or the
JSON payload of Teams' metadataContent cues (`speakerName`, `spokenText`, `startDateTime`).

Settings a transcript may carry about itself (its `recording_start`, title, platform, speakers)
come from a `NOTE` block of `key: value` lines in WebVTT, or from YAML front matter between
`---` lines at the top of a plain-text transcript.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d+))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s.*)?$")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)*\s+([^>]+)>")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|<\d[\d:.]*>")
_SPACES = re.compile(r"\s+")
_PREFIX = re.compile(r"^([^:\n]{1,60}?):\s+(\S.*)$")
_TEXT_TIME = re.compile(rf"^[\[(]?{_TIME}[\])]?(?:\s*[-–]\s*|\s+|$)(.*)$")
_ZOOM_CAPTION = re.compile(rf"^\[([^\]]{{1,60}})\]\s+{_TIME}\s*$")
_NOTE_KEY = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*:\s*(.+?)\s*$")
SPEAKER_SHARE = 0.6  # this share of cues with a `Name: ` prefix makes the prefixes speakers


class TranscriptError(ValueError):
    """A transcript that cannot be read; `line` is where (1-based), when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Cue:
    """One caption block."""

    index: int
    line: int
    start: float | None  # seconds from the recording start
    end: float | None
    text: str
    speaker: str | None = None
    ident: str | None = None
    at: datetime | None = None  # an absolute start, when the file gives one (metadataContent)
    end_at: datetime | None = None


@dataclass
class Parsed:
    cues: list[Cue]
    fmt: str  # "vtt", "srt", "text" or "meet"
    meta: dict[str, Any] = field(default_factory=dict)
    voices: bool = False  # speakers came from WebVTT voice tags (as Teams writes them)


def seconds(h: str | None, m: str, s: str, frac: str | None) -> float:
    """A WebVTT/SubRip time as seconds; `0:0:5.320` (Teams' short form) included."""
    value = int(h or 0) * 3600 + int(m) * 60 + int(s)
    return value + (float(f"0.{frac}") if frac else 0.0)


def clock(value: float) -> str:
    """Seconds as hh:mm:ss.mmm."""
    ms = round(value * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _clean(text: str) -> str:
    return _SPACES.sub(" ", html.unescape(_TAG.sub("", text))).strip()


# --- WebVTT and SubRip ---------------------------------------------------------------------------


_HEADER = re.compile(r"^WEBVTT(?:[ \t\r\n]|$)")


def looks_like_vtt(text: str) -> bool:
    """The WebVTT signature: "WEBVTT", then a space, a tab, a line break or nothing."""
    return bool(_HEADER.match(text.lstrip("\ufeff")))


def looks_like_srt(text: str) -> bool:
    lines = [ln for ln in text.lstrip("\ufeff").splitlines()[:6] if ln.strip()]
    return len(lines) >= 2 and lines[0].strip().isdigit() and bool(_TIMING.match(lines[1]))


def _blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks, each with the 1-based number of its first line."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line.rstrip())
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _note(block: list[str], meta: dict[str, Any]) -> None:
    """`key: value` lines of a NOTE block become settings (recording_start, title, …)."""
    first = block[0][4:].strip()
    for line in ([first] if first else []) + block[1:]:
        match = _NOTE_KEY.match(line)
        if match:
            meta.setdefault(match.group(1).lower(), match.group(2))


def parse_cues(text: str, fmt: str) -> Parsed:
    """Cues of a WebVTT ("vtt") or SubRip ("srt") file."""
    lines = text.lstrip("\ufeff").splitlines()
    meta: dict[str, Any] = {}
    cues: list[Cue] = []
    blocks = _blocks(lines)
    if fmt == "vtt":
        if not blocks or not _HEADER.match(blocks[0][1][0]):
            raise TranscriptError("does not start with WEBVTT", 1)
        blocks = blocks[1:]
    for number, block in blocks:
        head = block[0].strip()
        if fmt == "vtt" and head.startswith(("NOTE", "STYLE", "REGION")):
            if head.startswith("NOTE"):
                _note(block, meta)
            continue
        timing_at = 0 if _TIMING.match(block[0]) else 1
        if timing_at >= len(block) or not _TIMING.match(block[timing_at]):
            raise TranscriptError(f"cue has no `start --> end` timing line: {head[:60]!r}", number)
        timing = _TIMING.match(block[timing_at])
        assert timing is not None
        g = timing.groups()
        cues.append(
            Cue(
                index=len(cues),
                line=number,
                start=seconds(*g[0:4]),
                end=seconds(*g[4:8]),
                text="\n".join(block[timing_at + 1 :]),
                ident=head if timing_at == 1 else None,
            )
        )
    voices = _speakers(cues)
    return Parsed(cues, fmt, meta, voices)


def _payload(cue: Cue) -> bool:
    """Split a cue's raw payload into speaker and words (voice tag or metadataContent JSON);
    True when a voice tag named the speaker."""
    raw = cue.text.strip()
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and "spokenText" in data:
            cue.speaker = str(data.get("speakerName") or "").strip() or None
            cue.text = _clean(str(data.get("spokenText") or ""))
            cue.at = _iso(data.get("startDateTime"))
            cue.end_at = _iso(data.get("endDateTime"))
            return False
    voice = _VOICE.search(raw)
    if voice:
        cue.speaker = voice.group(1).strip() or None
    cue.text = _clean(raw)
    return voice is not None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.strip().replace("Z", "+00:00"))
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _is_name(prefix: str) -> bool:
    words = prefix.split()
    return 0 < len(words) <= 6 and not prefix.strip().isdigit() and "http" not in prefix.lower()


def _speakers(cues: list[Cue]) -> bool:
    """Voice tags and JSON payloads name speakers; else `Name: text` when most cues have one.
    True when voice tags did."""
    voices = [_payload(cue) for cue in cues]
    if any(c.speaker for c in cues):
        return any(voices)
    spoken = [c for c in cues if c.text]
    prefixed = [(c, m) for c in spoken if (m := _PREFIX.match(c.text)) and _is_name(m.group(1))]
    if spoken and len(prefixed) >= SPEAKER_SHARE * len(spoken):
        for cue, match in prefixed:
            cue.speaker, cue.text = match.group(1).strip(), match.group(2).strip()
    return False


# --- plain text -----------------------------------------------------------------------------------


def front_matter(text: str) -> tuple[dict[str, Any], list[str], int]:
    """YAML front matter (between `---` lines at the top), the remaining lines, their offset."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, lines, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            import yaml

            try:
                data = yaml.safe_load("\n".join(lines[1:end])) or {}
            except yaml.YAMLError as exc:
                raise TranscriptError(f"front matter is not valid YAML ({exc})", 1) from None
            if not isinstance(data, dict):
                raise TranscriptError("front matter must be `key: value` lines", 1)
            return data, lines[end + 1 :], end + 1
    raise TranscriptError("front matter opened with --- is never closed", 1)


def _time_line(line: str) -> tuple[float, str] | None:
    match = _TEXT_TIME.match(line)
    if not match:
        return None
    g = match.groups()
    return seconds(*g[0:4]), g[4].strip()


def looks_like_text_transcript(text: str) -> bool:
    """Front matter that says so, or timed lines: at least two among the first fifty lines."""
    try:
        meta, lines, _ = front_matter(text)
    except TranscriptError:
        return False
    if "recording_start" in meta or meta.get("transcript") is True:
        return True
    timed = sum(
        1
        for line in lines[:50]
        if line.strip() and (_time_line(line.strip()) or _ZOOM_CAPTION.match(line.strip()))
    )
    return timed >= 2


def parse_text(text: str) -> Parsed:
    """Cues of a plain-text transcript.

    Understood lines: `[00:01:23] Ana Ruiz: words` (brackets, parentheses or none; the speaker is
    optional), a time alone on its line (it applies to the lines that follow, as in a Google
    Meet transcript saved from Docs), `[Ana Ruiz] 00:01:23` followed by the words (Zoom's saved
    captions) and `Ana Ruiz: words` under the last time seen. Any other line continues the cue
    before it.
    """
    meta, lines, offset = front_matter(text)
    cues: list[Cue] = []
    now: float | None = None
    speaker: str | None = None  # a Zoom caption header's speaker, for the lines below it
    open_cue: Cue | None = None
    for number, raw in enumerate(lines, start=offset + 1):
        line = raw.strip()
        if not line:
            open_cue = None
            continue
        caption = _ZOOM_CAPTION.match(line)
        if caption:
            speaker, now = caption.group(1).strip(), seconds(*caption.groups()[1:5])
            open_cue = None
            continue
        timed = _time_line(line)
        if timed is not None:
            now, line = timed
            speaker = None
            open_cue = None
            if not line:
                continue
        prefix = _PREFIX.match(line)
        if prefix and speaker is None and _is_name(prefix.group(1)) and now is not None:
            open_cue = _text_cue(cues, number, now, prefix.group(1).strip(), prefix.group(2))
        elif open_cue is not None:
            open_cue.text += " " + line
        elif now is not None:
            open_cue = _text_cue(cues, number, now, speaker, line)
        # Lines before the first time (a title, an attendee list) are not part of any cue.
    for cue in cues:
        cue.text = _clean(cue.text)
    return Parsed(cues, "text", meta)


def _text_cue(cues: list[Cue], line: int, start: float, speaker: str | None, text: str) -> Cue:
    cue = Cue(index=len(cues), line=line, start=start, end=None, text=text, speaker=speaker)
    cues.append(cue)
    return cue
