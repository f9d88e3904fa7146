"""Microsoft Teams file mode: Graph chatMessage bodies (and the CLI for Microsoft 365's JSON
output of them), read into timeline events.

Recognized by content: pages of `…/channels/{id}/messages` (with `$expand=replies`),
`…/messages/{id}/replies`, `/chats/{id}/messages`, delta and `getAllMessages` pages, a bare
list of chatMessages (`m365 teams message list --output json`), one chatMessage; and, as
context, conversation members, users, channels and chats, which give names and emails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from connectors._support import read_time
from connectors.teams.events import system_text
from connectors.teams.html import clean_name, identity_of, message_text
from retro.connector import Doc, ReadContext, parse_time
from retro.errors import BundleError
from retro.models import Actor, EventKind, Provenance, TimelineEvent

SOURCE = "teams"
_SAMPLE = 20  # claims() looks at this many items
_CONV_ID = re.compile(r"^19:\S+@(thread\.(tacv2|skype|v2)|unq\.gbl\.spaces)$")
# unknownFutureValue marks a system event only when it carries an eventDetail (checked apart).
_SYSTEM_TYPES = frozenset({"systemEventMessage", "chatEvent"})
_MEMBERSHIP = frozenset({"membersAdded", "membersDeleted", "membersJoined", "membersLeft"})
_CONTEXT_RE = {
    "team": re.compile(r"teams\('?([^'/()]+)'?\)|/teams/([^/?]+)"),
    "channel": re.compile(r"channels\('?([^'/()]+)'?\)|/channels/([^/?]+)"),
    "chat": re.compile(r"chats\('?([^'/()]+)'?\)|/chats/([^/?]+)"),
}
_MESSAGE_CONTEXT = ("/messages", "/replies", "getAllMessages", "getAllRetainedMessages")
_SKIP_DUPLICATE = "duplicate message (same conversation and id): the newest version is kept"
_SKIP_DELETED = "deleted message (counted, not shown)"


# --- recognizing documents -----------------------------------------------------------------------


def is_message(item: Any) -> bool:
    """A chatMessage object: an id, a creation time, and a body or a message type."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("id"), str | int)
        and "createdDateTime" in item
        and (isinstance(item.get("body"), dict) or isinstance(item.get("messageType"), str))
        and ("from" in item or "eventDetail" in item or "replyToId" in item)
    )


def _is_member(item: Any) -> bool:
    return isinstance(item, dict) and (
        str(item.get("@odata.type", "")).endswith("ConversationMember")
        or ("userId" in item and "roles" in item and "displayName" in item)
    )


def _is_user(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and isinstance(item.get("userPrincipalName"), str)
    )


def _is_conversation(item: Any) -> str | None:
    """ "channel" or "chat" when item is a Graph channel or chat object."""
    if not isinstance(item, dict) or not _CONV_ID.match(str(item.get("id", ""))):
        return None
    if "chatType" in item:
        return "chat"
    if "displayName" in item and ("membershipType" in item or "webUrl" in item):
        return "channel"
    return None


def _is_error(data: dict[str, Any]) -> bool:
    err = data.get("error")
    return (
        isinstance(err, dict)
        and isinstance(err.get("code"), str)
        and isinstance(err.get("innerError") or err.get("innererror"), dict)
    )


def _items_shape(items: list[Any], context: str) -> str | None:
    sample = items[:_SAMPLE]
    if not sample:
        return "messages" if any(k in context for k in _MESSAGE_CONTEXT) else None
    # One real message and no other kind of object: a stray value or a bad time is then
    # reported by read_bundle with its record, instead of the file going unrecognized.
    if any(is_message(x) for x in sample) and all(
        "createdDateTime" in x for x in sample if isinstance(x, dict)
    ):
        return "messages"
    for shape, test in (("members", _is_member), ("users", _is_user)):
        if all(test(x) for x in sample):
            return shape
    kinds = {_is_conversation(x) for x in sample}
    if len(kinds) == 1 and None not in kinds:
        return f"{kinds.pop()}s"
    return None


def doc_shape(doc: Doc) -> str | None:
    """Which Teams shape a document has, or None when it is not Teams'."""
    if doc.fmt != "json":
        return None
    data = doc.data
    if isinstance(data, list):
        return _items_shape(data, "")
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("value"), list):
        return _items_shape(data["value"], _context_text(data))
    if is_message(data):
        return "message"
    if kind := _is_conversation(data):
        return kind
    if _is_error(data):
        return "error"
    return None


def claims(doc: Doc) -> bool:
    try:
        return doc_shape(doc) is not None
    except Exception:  # claims() must never raise, whatever the document holds
        return False


# --- where a message was said ---------------------------------------------------------------------


def _context_text(body: dict[str, Any]) -> str:
    keys = ("@odata.context", "@odata.nextLink", "@odata.deltaLink")
    return " ".join(unquote(str(body[k])) for k in keys if isinstance(body.get(k), str))


def _found(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return (match.group(1) or match.group(2)) if match else None


@dataclass
class _Where:
    """A document's own hints about its conversation, for messages that do not name it."""

    team: str | None = None
    conversation: str | None = None
    folder: str = ""

    @classmethod
    def of(cls, doc: Doc) -> _Where:
        text = _context_text(doc.data) if isinstance(doc.data, dict) else ""
        channel = _found(_CONTEXT_RE["channel"], text)
        chat = _found(_CONTEXT_RE["chat"], text)
        folder = PurePosixPath(doc.rel).parent.name
        return cls(_found(_CONTEXT_RE["team"], text), channel or chat, folder)


def _from_web_url(url: Any) -> tuple[str | None, str | None]:
    """The conversation id and team (groupId) in a message's webUrl."""
    if not isinstance(url, str) or "/l/message/" not in url:
        return None, None
    parts = urlsplit(url)
    segment = parts.path.split("/l/message/", 1)[1].split("/", 1)[0]
    group = parse_qs(parts.query).get("groupId", [None])[0]
    conv = unquote(segment)
    return (conv if _CONV_ID.match(conv) else None), group


def conversation_of(message: dict[str, Any], where: _Where, parent: str | None) -> str:
    """The message's conversation id: its own fields, its document, its root, its webUrl."""
    channel = message.get("channelIdentity")
    if isinstance(channel, dict) and isinstance(channel.get("channelId"), str):
        return str(channel["channelId"])
    if isinstance(message.get("chatId"), str) and message["chatId"]:
        return str(message["chatId"])
    if where.conversation:
        return where.conversation
    if parent:
        return parent
    from_url, _ = _from_web_url(message.get("webUrl"))
    return from_url or where.folder or "unknown"


# --- names, emails and actors ---------------------------------------------------------------------


class _Directory:
    """What every claimed document says about users and conversations."""

    def __init__(self, people: dict[str, dict[str, str]]) -> None:
        self.people = people
        self.known: dict[str, dict[str, Any]] = {}  # from members and users bodies
        self.seen: dict[str, str] = {}  # user id -> display name seen on a message
        self.conversations: dict[str, dict[str, Any]] = {}
        self.actors: dict[tuple[str, str, str], Actor] = {}

    def add_member(self, member: dict[str, Any]) -> None:
        uid = member.get("userId") or member.get("id")
        if isinstance(uid, str) and uid:
            entry = self.known.setdefault(uid, {})
            entry.setdefault("name", clean_name(member.get("displayName")))
            entry.setdefault("email", member.get("email") or None)

    def add_user(self, user: dict[str, Any]) -> None:
        entry = self.known.setdefault(str(user["id"]), {})
        entry["name"] = clean_name(user.get("displayName")) or entry.get("name")
        entry["email"] = user.get("mail") or user.get("userPrincipalName") or entry.get("email")
        entry["title"] = user.get("jobTitle") or entry.get("title")

    def add_conversation(self, conv: dict[str, Any], kind: str) -> None:
        name = conv.get("displayName") if kind == "channel" else conv.get("topic")
        ctype = "channel" if kind == "channel" else str(conv.get("chatType") or "chat")
        self.conversations[str(conv["id"])] = {"name": name or None, "type": ctype}

    def learn(self, message: dict[str, Any]) -> None:
        """Names the messages show, for ids no members or users body names."""
        _, who = identity_of(message.get("from"))
        for mention in message.get("mentions") or []:
            if isinstance(mention, dict):
                kind, mentioned = identity_of(mention.get("mentioned"))
                if kind == "user":
                    self._saw(mentioned)
        self._saw(who)

    def _saw(self, who: dict[str, Any]) -> None:
        uid, name = who.get("id"), clean_name(who.get("displayName"))
        if isinstance(uid, str) and name:
            self.seen.setdefault(uid, name)

    def fields(self, uid: str) -> dict[str, Any]:
        out = {k: v for k, v in self.known.get(uid, {}).items() if v}
        if not out.get("name") and uid in self.seen:
            out["name"] = self.seen[uid]
        # incident.yaml is written by a person on purpose, so it wins over the exports.
        out.update({k: v for k, v in self.people.get(uid, {}).items() if v})
        return out

    def name(self, uid: str) -> str | None:
        return self.fields(uid).get("name") if uid else None

    def actor(self, identity_set: Any) -> Actor | None:
        """The Actor of an identitySet (a user, a bot or a device); one shared object each."""
        kind, who = identity_of(identity_set)
        uid = str(who.get("id") or "")
        shown = clean_name(who.get("displayName")) or ""
        if not kind or (not uid and not shown):
            return None
        key = (kind, uid, shown)
        if key not in self.actors:
            self.actors[key] = self._actor(kind, uid, shown)
        return self.actors[key]

    def _actor(self, kind: str, uid: str, shown: str) -> Actor:
        if kind != "user":
            return Actor(source=SOURCE, id=uid or None, name=shown or None, is_bot=True)
        fields = self.fields(uid) if uid else {}
        return Actor(
            source=SOURCE,
            id=uid or None,
            name=fields.get("name") or shown or None,
            email=fields.get("email"),
            title=fields.get("title"),
        )


# --- reading messages -----------------------------------------------------------------------------


def _version(message: dict[str, Any], created: datetime) -> datetime:
    """When this copy of the message was last changed: a newer copy replaces an older one."""
    stamps = [created]
    for key in ("lastModifiedDateTime", "lastEditedDateTime", "deletedDateTime"):
        value = message.get(key)
        if isinstance(value, str) and value:
            try:
                stamps.append(parse_time(value, field_name=key))
            except BundleError:
                continue  # a copy with a bad stamp is still a copy; its creation time counts
    return max(stamps)


def _is_deleted(message: dict[str, Any]) -> bool:
    return bool(message.get("deletedDateTime")) or message.get("deleted") is True


def _kind(message: dict[str, Any], is_bot: bool, event_type: str | None) -> EventKind:
    if event_type is not None:
        return "membership" if event_type in _MEMBERSHIP else "note"
    return "bot_message" if is_bot else "message"


def _reactions(message: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in message.get("reactions") or []:
        if isinstance(r, dict) and isinstance(r.get("reactionType"), str):
            out[r["reactionType"]] = out.get(r["reactionType"], 0) + 1
    return out


@dataclass
class _Held:
    version: datetime
    event: TimelineEvent | None  # None: the newest copy says the message was deleted
    copies: int = 1


@dataclass
class _Reader:
    ctx: ReadContext
    directory: _Directory
    held: dict[str, _Held] = field(default_factory=dict)

    def __post_init__(self) -> None:
        extra = self.ctx.incident.model_extra or {}
        wanted = extra.get("teams_conversations") or []
        self.selected = {str(s).strip().lower() for s in wanted if str(s).strip()}

    def read(self, doc: Doc, prefix: str, items: list[Any], where: _Where) -> None:
        for i, item in enumerate(items):
            record = prefix if prefix == "message" else f"{prefix}[{i}]"
            self.read_one(doc, record, item, where, None)

    def read_one(self, doc: Doc, record: str, item: Any, where: _Where, parent: str | None) -> None:
        self.ctx.report.records += 1
        if not is_message(item):
            hint = "each item is a chatMessage as Microsoft Graph returns it (id, createdDateTime, body, from)"
            err = BundleError(doc.rel, "not a Teams chatMessage object", record=record, hint=hint)
            self.ctx.reject(err, reason="invalid message")
            return
        conv = conversation_of(item, where, parent)
        for j, reply in enumerate(item.get("replies") or []):
            self.read_one(doc, f"{record}.replies[{j}]", reply, where, conv)
        if self.selected and not self.is_selected(conv):
            self.ctx.report.skip("conversation not selected")
            return
        try:
            created = read_time(
                self.ctx,
                item["createdDateTime"],
                doc=doc,
                record=record,
                field_name="createdDateTime",
            )
        except BundleError as err:
            self.ctx.reject(err, reason="invalid message")
            return
        event = None if _is_deleted(item) else self.build(doc, record, item, conv, where, created)
        self.store(f"{SOURCE}:{conv}:{item['id']}", _version(item, created), event)

    def is_selected(self, conv: str) -> bool:
        name = self.directory.conversations.get(conv, {}).get("name") or ""
        return conv.lower() in self.selected or name.lower() in self.selected

    def build(
        self,
        doc: Doc,
        record: str,
        message: dict[str, Any],
        conv: str,
        where: _Where,
        created: datetime,
    ) -> TimelineEvent:
        detail = message.get("eventDetail")
        system = isinstance(detail, dict) or message.get("messageType") in _SYSTEM_TYPES
        event_type: str | None = None
        if system:
            event_type, text = system_text(detail, self.directory.name)
            actor = self.directory.actor(_obj(detail).get("initiator") or message.get("from"))
        else:
            actor = self.directory.actor(message.get("from"))
            text = message_text(message, self.directory.name) or "[no text]"
        is_bot = bool(actor and actor.is_bot)
        reply_to = message.get("replyToId")
        thread = f"{SOURCE}:{conv}:{reply_to}" if reply_to and reply_to != message["id"] else None
        edited = message.get("lastEditedDateTime")
        return TimelineEvent.of(
            key=f"{SOURCE}:{conv}:{message['id']}",
            at=created,
            source=SOURCE,
            kind=_kind(message, is_bot and not system, event_type),
            actor=actor,
            text=text,
            url=message["webUrl"] if isinstance(message.get("webUrl"), str) else None,
            thread=thread,
            parent=thread,
            provenance=Provenance.of(doc.rel, record),
            attrs=self.attrs(message, conv, where, event_type),
            is_bot=is_bot,
            edited=bool(edited),
        )

    def attrs(
        self, message: dict[str, Any], conv: str, where: _Where, event_type: str | None
    ) -> dict[str, Any]:
        known = self.directory.conversations.get(conv, {})
        channel = _obj(message.get("channelIdentity"))
        _, team_from_url = _from_web_url(message.get("webUrl"))
        kind = known.get("type") or ("channel" if channel or "thread.tacv2" in conv else "chat")
        attrs: dict[str, Any] = {
            "conversation_id": conv,
            "conversation": known.get("name") or conv,
            "conversation_type": kind,
            "team_id": channel.get("teamId") or where.team or team_from_url,
            "message_id": str(message["id"]),
            "reply_to": message.get("replyToId"),
            "message_type": message.get("messageType"),
        }
        if event_type:
            attrs["event_type"] = event_type
        if message.get("lastEditedDateTime"):
            attrs["edited_at"] = message["lastEditedDateTime"]
        if message.get("importance") not in (None, "normal"):
            attrs["importance"] = message["importance"]
        if reactions := _reactions(message):
            attrs["reactions"] = reactions
        _, app = identity_of(message.get("from"))
        if _obj(message.get("from")).get("application"):
            attrs["application_id"] = app.get("id")
            attrs["application_type"] = app.get("applicationIdentityType")
        files = [
            a.get("name")
            for a in message.get("attachments") or []
            if isinstance(a, dict) and a.get("contentType") == "reference" and a.get("name")
        ]
        if files:
            attrs["files"] = files
        mentioned = [
            name
            for m in message.get("mentions") or []
            if isinstance(m, dict)
            and (name := self._mentioned_name(m.get("mentioned"), m.get("mentionText")))
        ]
        if mentioned:
            attrs["mentions"] = list(dict.fromkeys(mentioned))
        return attrs

    def _mentioned_name(self, mentioned: Any, text: Any) -> str | None:
        kind, who = identity_of(mentioned)
        uid = str(who.get("id") or "")
        found = self.directory.name(uid) if kind == "user" else None
        return found or clean_name(who.get("displayName")) or clean_name(text)

    def store(self, key: str, version: datetime, event: TimelineEvent | None) -> None:
        held = self.held.get(key)
        if held is None:
            self.held[key] = _Held(version, event)
            return
        held.copies += 1
        # The dict keeps the first position, so the order does not depend on which copy wins.
        if version >= held.version:
            held.version, held.event = version, event

    def events(self) -> Iterator[TimelineEvent]:
        for held in self.held.values():
            if held.copies > 1:
                self.ctx.report.skip(_SKIP_DUPLICATE, held.copies - 1)
            if held.event is None:
                self.ctx.report.skip(_SKIP_DELETED)
            else:
                yield held.event


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- the whole source -----------------------------------------------------------------------------


def _reject_error_body(doc: Doc, ctx: ReadContext) -> None:
    err = doc.data["error"]
    message = str(err.get("message") or "")[:120]
    bad = BundleError(
        doc.rel,
        f"is a Microsoft Graph error response ({err.get('code')}: {message}), not data",
        hint="the call that wrote this file failed; fix the cause and export or harvest again",
    )
    ctx.reject(bad, reason="Graph error body")


def _context(docs: list[Doc], directory: _Directory, ctx: ReadContext) -> list[tuple[Doc, str]]:
    """Load members, users, channels and chats into the directory; return the message docs."""
    messages: list[tuple[Doc, str]] = []
    for doc in sorted(docs, key=lambda d: d.rel):
        shape = doc_shape(doc)
        if doc.rel not in ctx.report.files:
            ctx.report.files.append(doc.rel)
        items: list[Any] = doc.data.get("value", []) if isinstance(doc.data, dict) else doc.data
        if shape == "members":
            for member in items:
                directory.add_member(member)
        elif shape == "users":
            for user in items:
                directory.add_user(user)
        elif shape in ("channel", "chat"):
            directory.add_conversation(doc.data, shape)
        elif shape in ("channels", "chats"):
            for conv in items:
                directory.add_conversation(conv, shape[:-1])
        elif shape == "error":
            _reject_error_body(doc, ctx)
        elif shape in ("messages", "message"):
            messages.append((doc, shape))
    return messages


def _message_items(doc: Doc, shape: str) -> tuple[str, list[Any]]:
    if shape == "message":
        return "message", [doc.data]
    if isinstance(doc.data, dict):
        return "value", list(doc.data["value"])
    return "", list(doc.data)


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Every message of the claimed documents, with names, emails and threads resolved."""
    directory = _Directory(dict(ctx.incident.people))
    message_docs = _context(docs, directory, ctx)
    batches = [(doc, *_message_items(doc, shape)) for doc, shape in message_docs]
    for _, _, items in batches:
        for item in items:
            if isinstance(item, dict):
                directory.learn(item)
                for reply in item.get("replies") or []:
                    if isinstance(reply, dict):
                        directory.learn(reply)
    reader = _Reader(ctx, directory)
    for n, (doc, prefix, items) in enumerate(batches):
        reader.read(doc, prefix, items, _Where.of(doc))
        ctx.progress("teams: reading", n + 1, len(batches))
    yield from reader.events()
