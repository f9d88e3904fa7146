"""Google Meet REST API v2 bodies: transcript entries, participants and transcript resources.

No licensed sample of these bodies was found; the shapes follow Google's reference pages for
`conferenceRecords.transcripts.entries.list` (`transcriptEntries[]` with `name`,
`participant`, `text`, `languageCode`, `startTime`, `endTime`; `nextPageToken`),
`conferenceRecords.participants.list` (`participants[]` with `signedinUser`, `anonymousUser`
or `phoneUser`, each with a `displayName`) and `conferenceRecords.transcripts` (`name`,
`state`, `startTime`, `endTime`, `docsDestination`). Entry times are absolute (RFC 3339), so
Meet transcripts need no recording start.
"""

from __future__ import annotations

import re
from typing import Any

from connectors.transcripts.parse import Cue, Parsed
from retro.connector import Doc, ReadContext
from retro.errors import BundleError

_RECORD = re.compile(r"^conferenceRecords/[^/]+$")
_TRANSCRIPT = re.compile(r"^conferenceRecords/[^/]+/transcripts/[^/]+$")
_PARTICIPANT = re.compile(r"^conferenceRecords/[^/]+/participants/[^/]+$")


def is_entry(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("participant"), str)
        and "text" in item
        and "startTime" in item
    )


def _is_participant(item: Any) -> bool:
    return isinstance(item, dict) and bool(_PARTICIPANT.match(str(item.get("name", ""))))


def shape(data: dict[str, Any]) -> str | None:
    """The Meet shape of a JSON object, or None."""
    entries = data.get("transcriptEntries")
    if isinstance(entries, list) and all(is_entry(e) for e in entries):
        # An empty last page is still a Meet page; the name of the key says so.
        return "meet_entries"
    people = data.get("participants")
    if isinstance(people, list) and all(_is_participant(p) for p in people):
        return "meet_participants"
    name = str(data.get("name", ""))
    if _TRANSCRIPT.match(name) or _RECORD.match(name):
        return "meet_metadata"
    listed = data.get("transcripts") or data.get("conferenceRecords")
    if (
        isinstance(listed, list)
        and listed
        and all(
            isinstance(t, dict)
            and (_TRANSCRIPT.match(str(t.get("name", ""))) or _RECORD.match(str(t.get("name", ""))))
            for t in listed
        )
    ):
        return "meet_metadata"
    return None


def participants(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Participant resource name -> {"name": display name, "user": users/… when signed in}."""
    out: dict[str, dict[str, Any]] = {}
    for p in data.get("participants") or []:
        if not _is_participant(p):
            continue
        for kind in ("signedinUser", "anonymousUser", "phoneUser"):
            who = p.get(kind)
            if isinstance(who, dict):
                out[p["name"]] = {"name": who.get("displayName"), "user": who.get("user")}
                break
    return out


def to_parsed(doc: Doc, ctx: ReadContext, people: dict[str, dict[str, Any]]) -> tuple[Parsed, str]:
    """The entries of a transcriptEntries page as cues with absolute times, and the transcript
    id they share (`conferenceRecords/…/transcripts/…`)."""
    data = doc.data
    items = data if isinstance(data, list) else data.get("transcriptEntries") or []
    prefix = "" if isinstance(data, list) else "transcriptEntries"
    cues: list[Cue] = []
    transcript = ""
    for i, entry in enumerate(items):
        record = f"{prefix}[{i}]"
        ctx.report.records += 1
        try:
            at = ctx.time(entry.get("startTime"), doc=doc, record=record, field_name="startTime")
            end = entry.get("endTime")
            end_at = ctx.time(end, doc=doc, record=record, field_name="endTime") if end else None
        except BundleError as err:
            ctx.reject(err, reason="invalid transcript entry")
            continue
        who = people.get(entry["participant"], {})
        name = str(entry.get("name") or "")
        transcript = transcript or name.rsplit("/entries/", 1)[0]
        cues.append(
            Cue(
                index=len(cues),
                line=i,
                start=None,
                end=None,
                text=str(entry.get("text") or "").strip(),
                # Without a participants body the resource id still tells speakers apart.
                speaker=who.get("name")
                or f"Meet participant {entry['participant'].rsplit('/', 1)[-1]}",
                ident=record,
                at=at,
                end_at=end_at,
            )
        )
    # Speaker turns are read in time order, whatever order the pages came in.
    cues.sort(key=lambda c: (c.at, c.index))
    return Parsed(cues, "meet", {"platform": "meet"}), transcript
