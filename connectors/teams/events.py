"""Teams system event messages (`eventDetail`) as one line of text each.

Graph documents some thirty eventMessageDetail types ("System messages" in the Graph docs);
the ones an incident timeline cares about (calls, recordings, transcripts, members, renames,
pins) get a sentence, every other one its type name in words plus any display name it carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from connectors.teams.html import clean_name, identity_of

NameLookup = Callable[[str], str | None]
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_WORDS = re.compile(r"(?<=[a-z])(?=[A-Z])")


def event_type(detail: Any) -> str:
    """ "callEnded" for "#microsoft.graph.callEndedEventMessageDetail"; "system" if unknown."""
    odata = str(detail.get("@odata.type", "")) if isinstance(detail, dict) else ""
    name = odata.rsplit(".", 1)[-1].removesuffix("EventMessageDetail")
    return name or "system"


def duration_text(value: Any) -> str | None:
    """ "40 min 19 s" for the ISO 8601 duration "PT40M19.26S"; None when not one."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or not any(match.groupdict().values()):
        return None
    d, h, m = (int(match[k] or 0) for k in ("d", "h", "m"))
    s = int(float(match["s"] or 0))
    h += 24 * d
    parts = [f"{h} h" if h else "", f"{m} min" if m else "", f"{s} s" if s or not (h or m) else ""]
    return " ".join(p for p in parts if p)


def _who(identity: Any, names: NameLookup) -> str | None:
    """A person's (or app's) name from an identity or identitySet."""
    kind, who = identity_of(identity)
    if not kind and isinstance(identity, dict):
        who = identity  # teamworkUserIdentity: members[] hold bare identities
    uid = str(who.get("id") or "")
    return (names(uid) if uid else None) or clean_name(who.get("displayName"))


def _people(items: Any, names: NameLookup, key: str | None = None) -> str:
    """ "Ana Ruiz, Bo Chen and 2 others" for members whose names are known or not."""
    found: list[str] = []
    unknown = 0
    for item in items if isinstance(items, list) else []:
        who = _who(item.get(key) if key and isinstance(item, dict) else item, names)
        if who:
            found.append(who)
        else:
            unknown += 1
    if unknown:
        found.append(f"{unknown} {'other' if found else 'member'}{'s' if unknown > 1 else ''}")
    if not found:
        return "unknown members"
    return found[0] if len(found) == 1 else ", ".join(found[:-1]) + " and " + found[-1]


def _call(kind: str, detail: dict[str, Any], names: NameLookup) -> str:
    what = "Meeting" if detail.get("callEventType") == "meeting" else "Call"
    if kind == "callStarted":
        return f"{what} started"
    took = duration_text(detail.get("callDuration"))
    who = _people(detail.get("callParticipants"), names, "participant")
    return f"{what} ended" + (f" after {took}" if took else "") + f" (participants: {who})"


def _recording(detail: dict[str, Any]) -> str:
    name = detail.get("callRecordingDisplayName") or "recording"
    took = duration_text(detail.get("callRecordingDuration"))
    status = detail.get("callRecordingStatus")
    extra = ", ".join(str(p) for p in (took, status) if p)
    return f"Call recording {name!r}" + (f" ({extra})" if extra else "")


def system_text(detail: Any, names: NameLookup) -> tuple[str, str]:
    """The event type and one line describing a system event message."""
    kind = event_type(detail)
    d = detail if isinstance(detail, dict) else {}
    if kind in ("callStarted", "callEnded"):
        return kind, _call(kind, d, names)
    texts = {
        "callRecording": lambda: _recording(d),
        "callTranscript": lambda: "Call transcript available",
        "membersAdded": lambda: f"Added to the conversation: {_people(d.get('members'), names)}",
        "membersDeleted": lambda: (
            f"Removed from the conversation: {_people(d.get('members'), names)}"
        ),
        "membersJoined": lambda: f"Joined: {_people(d.get('members'), names)}",
        "membersLeft": lambda: f"Left: {_people(d.get('members'), names)}",
        "chatRenamed": lambda: f"Chat renamed to {d.get('chatDisplayName')!r}",
        "channelRenamed": lambda: f"Channel renamed to {d.get('channelDisplayName')!r}",
        "channelAdded": lambda: f"Channel {d.get('channelDisplayName')!r} added",
        "teamRenamed": lambda: f"Team renamed to {d.get('teamDisplayName')!r}",
        "messagePinned": lambda: "Message pinned",
        "messageUnpinned": lambda: "Message unpinned",
    }
    if kind in texts:
        return kind, texts[kind]()
    words = _WORDS.sub(" ", kind).lower() if kind != "system" else "system event"
    named = [str(v) for k, v in d.items() if k.endswith("DisplayName") and v]
    return kind, (words[:1].upper() + words[1:]) + (f": {', '.join(named)}" if named else "")
