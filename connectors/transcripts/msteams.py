"""Teams live mode for transcripts: the Graph online meeting transcripts API.

`GET /users/{organizer}/onlineMeetings/{meeting}/transcripts` lists a meeting's callTranscript
objects (paged by `@odata.nextLink`); `…/transcripts/{id}/content?$format=text/vtt` is the
WebVTT with `<v Speaker>` voice tags, whose cue times count from the transcript's
`createdDateTime`. A meeting may be named by its join URL instead of its id; it is then looked
up with `GET /users/{organizer}/onlineMeetings?$filter=JoinWebUrl eq '…'`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from connectors.teams.graph import GraphClient
from retro.errors import ConfigError, ConnectorError

SOURCE = "transcripts"
NEEDED_ROLES = ("OnlineMeetingTranscript.Read.All",)
_FORM = "use --from transcripts=teams:<organizer-user-id>/<meeting-id or join URL>"


def parse_target(value: str) -> tuple[str, str]:
    """(organizer user id, meeting id or join URL) from `teams:<user>/<meeting>`."""
    user, sep, meeting = value.partition("/")
    if not sep or not user.strip() or not meeting.strip():
        raise ConfigError(f"transcripts: teams:{value!r} names no meeting", hint=_FORM)
    return user.strip(), meeting.strip()


def meeting_id(api: GraphClient, user: str, meeting: str) -> str:
    """The online meeting id; a join URL is looked up among the organizer's meetings."""
    if not meeting.startswith("https://"):
        return meeting
    escaped = meeting.replace("'", "''")
    found = api.items(f"/users/{user}/onlineMeetings", {"$filter": f"JoinWebUrl eq '{escaped}'"})
    if not found or not isinstance(found[0].get("id"), str):
        hint = "check the join URL and that the user id is the meeting's organizer"
        raise ConnectorError(SOURCE, "no online meeting with that join URL", hint=hint)
    return str(found[0]["id"])


def transcripts(api: GraphClient, user: str, meeting: str) -> list[dict[str, Any]]:
    """The meeting's callTranscripts, oldest first, each once."""
    items = api.items(f"/users/{user}/onlineMeetings/{meeting}/transcripts")
    by_id = {str(t.get("id")): t for t in items if isinstance(t.get("id"), str)}
    return sorted(by_id.values(), key=lambda t: str(t.get("createdDateTime") or ""))


def content(api: GraphClient, user: str, meeting: str, transcript: str) -> str:
    path = (
        f"/users/{user}/onlineMeetings/{meeting}/transcripts/{quote(transcript, safe='')}/content"
    )
    text = api.text(path, {"$format": "text/vtt"})
    if not text.lstrip().startswith("WEBVTT"):
        hint = "Graph returned something other than WebVTT; check TEAMS_GRAPH_URL"
        raise ConnectorError(SOURCE, f"transcript {transcript} content is not WebVTT", hint=hint)
    return text


def sidecar(user: str, meeting: str, item: dict[str, Any]) -> dict[str, Any]:
    """What the bundle keeps about a Teams transcript: its start and the callTranscript."""
    return {
        "recording_start": item.get("createdDateTime"),
        "platform": "teams",
        "meeting_id": meeting,
        "organizer_id": user,
        "transcript_id": f"teams-{item.get('id')}",
        "source": {k: v for k, v in item.items() if not k.startswith("@odata")},
    }
