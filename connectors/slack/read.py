"""Slack file mode: export folders and Web API bodies, read into timeline events."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from connectors.slack.text import message_text
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import (
    Actor,
    EventKind,
    Provenance,
    TimelineEvent,
)

_TS = re.compile(r"^\d{9,11}(\.\d{1,6})?$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UWB][A-Z0-9]{2,}$")
# Files of a workspace export that hold no timeline data, as Slack's help article "How to read
# Slack data exports" lists them; each shape maps to the reason its records are skipped.
_ASIDE = {
    "integration_logs": "integration_logs.json: app activity log, not timeline data",
    "canvases": "canvases.json: canvas links, not timeline data",
    "content_flags": "content_flags.json: content flags, not timeline data",
}
# An empty list has no content to recognize; these export names are the only hint there is.
_EXPORT_LISTS = frozenset(
    {"users.json", "channels.json", "groups.json", "dms.json", "mpims.json", "org_users.json"}
    | {f"{name}.json" for name in _ASIDE}
)
_LOG_APP_KEYS = ("service_id", "service_type", "app_id", "app_type")
_SAMPLE = 20  # claims() looks at this many items, so it stays cheap on big day files

MEMBERSHIP_SUBTYPES = frozenset({"channel_join", "channel_leave", "group_join", "group_leave"})
CHAT_SUBTYPES = frozenset(
    {
        "thread_broadcast",
        "reply_broadcast",
        "file_share",
        "me_message",
        "bot_message",
        "slackbot_response",
    }
)
SKIPPED_SUBTYPES = {
    "message_deleted": "message_deleted: deletion notices are not events",
    "message_replied": "message_replied: thread notice (the reply itself is read)",
}
_UNKNOWN_USER_HINT = "add the user to slack/users.json or map it under `people:` in incident.yaml"


# --- recognizing documents ---------------------------------------------------------------------


def _is_message(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "message" and "ts" in item


def _is_user(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("id"), str)
        and isinstance(item.get("profile"), dict)
    )


def _is_channel(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        return False
    keys = ("is_channel", "is_group", "is_im", "is_mpim", "members", "topic", "purpose")
    return (
        bool(_CHANNEL_ID.match(item["id"])) and "created" in item and any(k in item for k in keys)
    )


def _is_integration_log(item: Any) -> bool:
    """An entry of integration_logs.json (team.integrationLogs): who changed which app, when."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("change_type"), str)
        and "date" in item
        and ("user_id" in item or "user_name" in item)
        and any(k in item for k in _LOG_APP_KEYS)
    )


def _aside_shape(data: list[Any], name: str) -> str | None:
    """Which non-message export file this is, or None."""
    if all(_is_integration_log(x) for x in data):
        return "integration_logs"
    # Slack does not document the items of these two, so the export name has to say it.
    stem = name.removesuffix(".json")
    if stem in ("canvases", "content_flags") and all(isinstance(x, dict) for x in data):
        return stem
    return None


def _list_shape(data: list[Any], rel: str) -> str | None:
    name = PurePosixPath(rel).name
    if not data:
        return "empty" if name in _EXPORT_LISTS else None
    sample = data[:_SAMPLE]
    if aside := _aside_shape(sample, name):
        return aside
    # One real message and no other kind of object: a bad ts or a stray value in a day file is
    # then reported by read_bundle with its record, instead of the file going unrecognized.
    if any(_is_message(x) for x in sample) and all(
        x.get("type") == "message" for x in sample if isinstance(x, dict)
    ):
        return "messages"
    if any(_is_user(x) for x in sample) and all(
        _is_user(x) or _USER_ID.match(str(x.get("id"))) for x in sample if isinstance(x, dict)
    ):
        return "users"
    if all(_is_channel(x) for x in sample):
        return "channels"
    return None


def _dict_shape(data: dict[str, Any]) -> str | None:
    if _is_message(data):
        return "message"
    ok = data.get("ok")
    if ok is False and isinstance(data.get("error"), str):
        return "api_error"
    if ok is not True:
        return None
    if isinstance(data.get("messages"), list):
        return "api_messages"
    if isinstance(data.get("members"), list):
        return "api_users"
    if _is_user(data.get("user")):
        return "api_user"
    if _is_channel(data.get("channel")):
        return "api_channel"
    if isinstance(data.get("channels"), list):
        return "api_channels"
    logs = data.get("logs")
    if isinstance(logs, list) and all(_is_integration_log(x) for x in logs[:_SAMPLE]):
        return "api_integration_logs"
    return None


def doc_shape(doc: Doc) -> str | None:
    """Which Slack shape a document has, or None when it is not Slack's."""
    if doc.fmt != "json":
        return None
    if isinstance(doc.data, list):
        return _list_shape(doc.data, doc.rel)
    if isinstance(doc.data, dict):
        return _dict_shape(doc.data)
    return None


# --- the workspace: users, channels and people ---------------------------------------------------


def _str(value: Any) -> str | None:
    """value when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _obj(value: Any) -> dict[str, Any]:
    """value when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _user_fields(user: dict[str, Any]) -> dict[str, Any]:
    profile = _obj(user.get("profile"))
    return {
        "name": profile.get("real_name")
        or user.get("real_name")
        or profile.get("display_name")
        or user.get("name"),
        "email": profile.get("email"),
        "title": profile.get("title"),
        "handle": profile.get("display_name") or user.get("name"),
        "is_bot": bool(user.get("is_bot")),
    }


def _profile_fields(profile: dict[str, Any]) -> dict[str, Any]:
    name = profile.get("real_name") or profile.get("display_name") or profile.get("name")
    return {
        "name": name,
        "email": profile.get("email"),
        "title": profile.get("title"),
        "handle": profile.get("display_name") or profile.get("name"),
    }


class _UnknownUserError(Exception):
    def __init__(self, uid: str) -> None:
        super().__init__(uid)
        self.uid = uid


class _Workspace:
    """Everything known about users and channels, from every claimed document."""

    def __init__(self, people: dict[str, dict[str, str]]) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.by_name: dict[str, str] = {}
        self.people = people
        self.has_users = False
        self.actors: dict[tuple[str | None, bool, str | None, str | None], Actor | None] = {}
        self.authors: dict[tuple[Any, ...], tuple[bool, Actor | None]] = {}

    def add_users(self, doc: Doc, prefix: str, items: list[Any], ctx: ReadContext) -> None:
        self.has_users = True
        for i, user in enumerate(items):
            if _is_user(user):
                self.users[user["id"]] = user
                continue
            err = BundleError(
                doc.rel,
                "user record has no string id and profile object",
                record=f"{prefix}[{i}]",
                hint="users.json holds Slack user objects as users.list returns them",
            )
            ctx.reject(err, reason="invalid user")

    def add_channels(self, items: list[Any]) -> None:
        for channel in items:
            if isinstance(channel, dict) and isinstance(channel.get("id"), str):
                self.channels[channel["id"]] = channel
                if isinstance(channel.get("name"), str):
                    self.by_name[channel["name"]] = channel["id"]

    def add_profiles(self, items: list[Any]) -> None:
        """Remember embedded user_profile objects, so mentions of those users get names too."""
        for m in items:
            if isinstance(m, dict) and isinstance(m.get("user_profile"), dict):
                self.profiles.setdefault(str(m.get("user")), m["user_profile"])

    def folder_channel(self, folder: str) -> str:
        """The channel id of a day file's folder: matched by channel name, then by id."""
        if folder in self.by_name:
            return self.by_name[folder]
        return folder or "unknown"

    def channel_name(self, cid: str) -> str | None:
        name = self.channels.get(cid, {}).get("name")
        return name if isinstance(name, str) and name else None

    def user_label(self, uid: str) -> str | None:
        """The name a mention shows: display name, then real name, then handle."""
        user = self.users.get(uid)
        if user is not None:
            profile = user.get("profile") or {}
            return (
                profile.get("display_name")
                or profile.get("real_name")
                or user.get("real_name")
                or user.get("name")
            )
        if self.people.get(uid, {}).get("name"):
            return self.people[uid]["name"]
        profile = self.profiles.get(uid) or {}
        return profile.get("display_name") or profile.get("real_name") or profile.get("name")

    def identity(self, uid: str, message: dict[str, Any]) -> dict[str, Any] | None:
        """What users.json, the embedded profile and incident.yaml `people:` say about uid."""
        fields: dict[str, Any] | None = None
        own = message.get("user_profile")
        if uid in self.users:
            fields = _user_fields(self.users[uid])
        elif isinstance(own, dict) or uid in self.profiles:
            fields = _profile_fields(own if isinstance(own, dict) else self.profiles[uid])
        person = self.people.get(uid)
        if person:
            # incident.yaml is written by a person on purpose, so it wins over the export.
            fields = {**(fields or {}), **{k: v for k, v in person.items() if v}}
        return fields

    def is_bot(self, message: dict[str, Any]) -> bool:
        uid = message.get("user")
        return bool(
            message.get("subtype") in ("bot_message", "slackbot_response")
            or message.get("bot_id")
            or uid == "USLACKBOT"
            or (isinstance(uid, str) and self.users.get(uid, {}).get("is_bot"))
        )

    def author(self, message: dict[str, Any]) -> tuple[bool, Actor | None]:
        """Whether a message is a bot's, and its author; may raise _UnknownUserError.

        Both depend only on the fields in the cache key when the message embeds no profile,
        so big channels look each author up once.
        """
        key = (
            message.get("user"),
            message.get("subtype"),
            message.get("username"),
            message.get("bot_id"),
        )
        plain = "user_profile" not in message and "bot_profile" not in message
        if plain:
            try:
                return self.authors[key]  # only keys of str and None are stored, see below
            except KeyError:
                plain = all(v is None or type(v) is str for v in key)
            except TypeError:  # an unhashable value, e.g. a list
                plain = False
        bot = self.is_bot(message)
        found = bot, self.actor(message, bot)
        if plain:
            self.authors[key] = found
        return found

    def actor(self, message: dict[str, Any], bot: bool) -> Actor | None:
        """The author of a message (one shared Actor per author); may raise _UnknownUserError."""
        uid = message.get("user") if isinstance(message.get("user"), str) else None
        username, bot_id = message.get("username"), message.get("bot_id")
        # Without embedded profiles the actor depends on these fields alone, so big channels
        # share one Actor per author instead of building (and validating) one per message.
        cacheable = (
            "user_profile" not in message
            and "bot_profile" not in message
            and (username is None or isinstance(username, str))
            and (bot_id is None or isinstance(bot_id, str))
        )
        if not cacheable:
            return self._actor(message, uid, bot)
        key = (uid, bot, username, bot_id)
        if key not in self.actors:
            self.actors[key] = self._actor(message, uid, bot)
        return self.actors[key]

    def _actor(self, message: dict[str, Any], uid: str | None, bot: bool) -> Actor | None:
        fields = self.identity(uid, message) if uid else None
        if fields is None and uid and not bot and self.has_users:
            raise _UnknownUserError(uid)
        fields = fields or {}
        name = _str(fields.get("name"))
        profile = _obj(message.get("bot_profile"))
        if bot:
            # `username` is what the channel showed for the bot, so it beats the app's name.
            name = _str(message.get("username")) or _str(profile.get("name")) or name
            if uid == "USLACKBOT" and not name:
                name = "Slackbot"
        actor_id = uid or _str(message.get("bot_id")) or _str(profile.get("id"))
        if not actor_id and not name:
            return None
        # Profiles are free-form JSON: a field of another type is left out, not an error.
        return Actor(
            source="slack",
            id=actor_id,
            name=name,
            email=_str(fields.get("email")),
            title=_str(fields.get("title")),
            handle=_str(fields.get("handle")),
            is_bot=bot or bool(fields.get("is_bot")),
        )


# --- reading messages ----------------------------------------------------------------------------


@dataclass
class _Batch:
    """The messages of one document, with what is needed to name their records."""

    doc: Doc
    prefix: str
    items: list[Any]
    folder: str
    single: bool = False
    channel: str = ""  # the folder's channel id, for messages that do not name theirs

    def record(self, i: int) -> str:
        return "message" if self.single else f"{self.prefix}[{i}]"


def _json_type(value: Any) -> str:
    """What JSON calls a value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _ts_value(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _reactions(message: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    reactions = message.get("reactions")
    for r in reactions if isinstance(reactions, list) else []:
        if isinstance(r, dict) and isinstance(r.get("name"), str):
            count, users = r.get("count"), r.get("users")
            out[r["name"]] = (
                count if isinstance(count, int) else len(users) if isinstance(users, list) else 0
            )
    return out


_ATTR_FIELDS = frozenset({"reply_count", "reactions", "files", "bot_id", "edited"})


def _kind(subtype: Any, is_bot: bool) -> EventKind:
    if subtype in MEMBERSHIP_SUBTYPES:
        return "membership"
    if subtype and subtype not in CHAT_SUBTYPES:
        return "note"
    return "bot_message" if is_bot else "message"


class _Reader:
    """Turns message records into events; the latest version of each message wins."""

    def __init__(self, ws: _Workspace, ctx: ReadContext) -> None:
        self.ws = ws
        self.ctx = ctx
        self.events: dict[str, tuple[float, TimelineEvent]] = {}
        self.selected = {s.strip().lstrip("#").lower() for s in ctx.incident.slack_channels}
        extra = ctx.incident.model_extra or {}
        url = extra.get("slack_workspace_url")
        self.workspace_url = url.rstrip("/") if isinstance(url, str) and url else None
        self.labels: dict[str, str] = {}  # channel id -> name shown in attrs

    def read(self, batch: _Batch) -> None:
        self.ctx.report.records += len(batch.items)
        batch.channel = self.ws.folder_channel(batch.folder)
        for i, item in enumerate(batch.items):
            self.read_one(batch, i, item)

    def read_one(self, batch: _Batch, i: int, item: Any) -> None:
        record = "message" if batch.single else f"{batch.prefix}[{i}]"
        if not isinstance(item, dict):
            hint = "each item of a Slack day file is a message object"
            err = BundleError(
                batch.doc.rel, "message is not a JSON object", record=record, hint=hint
            )
            self.ctx.reject(err, reason="invalid message")
            return
        subtype = item.get("subtype")
        if subtype is not None and not isinstance(subtype, str):
            err = BundleError(
                batch.doc.rel,
                f"subtype is {_json_type(subtype)}, not a string",
                record=record,
                hint="Slack writes a message's subtype as a string; fix or remove the record",
            )
            self.ctx.reject(err, reason="invalid message")
            return
        if subtype in SKIPPED_SUBTYPES:
            self.ctx.report.skip(SKIPPED_SUBTYPES[subtype])
            return
        message, version, changed = item, 0.0, False
        if subtype == "message_changed":
            inner = item.get("message")
            if not isinstance(inner, dict):
                hint = "a message_changed record carries the new message under `message`"
                err = BundleError(
                    batch.doc.rel, "message_changed has no message", record=record, hint=hint
                )
                self.ctx.reject(err, reason="invalid message")
                return
            message = {"channel": item.get("channel"), **inner}
            version, changed = _ts_value(item.get("ts")), True
        cid = message.get("channel")
        if not (cid and type(cid) is str):
            cid = batch.channel
        if self.selected and not self.is_selected(cid):
            self.ctx.report.skip("channel not selected")
            return
        event = self.build(batch, record, message, cid, changed)
        if event is not None:
            edited = message.get("edited")
            if type(edited) is dict and "ts" in edited:
                version = max(version, _ts_value(edited["ts"]))
            self.store(event, version, changed)

    def is_selected(self, cid: str) -> bool:
        if not self.selected:
            return True
        name = self.ws.channel_name(cid) or cid
        return cid.lower() in self.selected or name.lower() in self.selected

    def build(
        self, batch: _Batch, record: str, message: dict[str, Any], cid: str, changed: bool
    ) -> TimelineEvent | None:
        doc = batch.doc
        ts = message.get("ts")
        if not isinstance(ts, str) or not _TS.match(ts):
            hint = 'a Slack ts is epoch seconds as a string, e.g. "1714571000.123456"'
            shown = repr(ts) if len(repr(ts)) <= 40 else repr(ts)[:37] + "..."
            err = BundleError(
                doc.rel, f"ts {shown} is not a Slack timestamp", record=record, hint=hint
            )
            self.ctx.reject(err, reason="invalid message")
            return None
        for name in ("text", "subtype"):  # an edit's inner message too
            value = message.get(name)
            if value is not None and not isinstance(value, str):
                # An object or a number where Slack always writes a string: a corrupt record,
                # not a message with no words.
                err = BundleError(
                    doc.rel,
                    f"{name} is {_json_type(value)}, not a string",
                    record=record,
                    hint=f"Slack writes a message's {name} as a string; fix or remove the record",
                )
                self.ctx.reject(err, reason="invalid message")
                return None
        try:
            bot, actor = self.ws.author(message)
        except _UnknownUserError as exc:
            err = BundleError(
                doc.rel,
                f"user {exc.uid} is not in users.json",
                record=record,
                hint=_UNKNOWN_USER_HINT,
            )
            self.ctx.reject(err, reason="unknown user")
            return None
        is_bot = bot or bool(actor and actor.is_bot)
        subtype = message.get("subtype")
        thread_ts = message.get("thread_ts") if isinstance(message.get("thread_ts"), str) else None
        thread = f"slack:{cid}:{thread_ts}" if thread_ts and thread_ts != ts else None
        return TimelineEvent.of(
            key=f"slack:{cid}:{ts}",
            # What parse_time does with a ts that matched _TS, without its general checks.
            at=datetime.fromtimestamp(float(ts), tz=UTC),
            source="slack",
            kind=_kind(subtype, is_bot),
            actor=actor,
            text=message_text(message, user=self.ws.user_label, channel=self.ws.channel_name),
            url=(
                None
                if self.workspace_url is None
                else self.permalink(cid, ts, thread_ts if thread else None)
            ),
            thread=thread,
            parent=thread,
            provenance=Provenance.of(doc.rel, record),
            attrs=self.attrs(message, cid, ts, thread_ts, subtype),
            is_bot=is_bot,
            edited=changed or bool(message.get("edited")),
        )

    def permalink(self, cid: str, ts: str, thread_ts: str | None) -> str | None:
        if self.workspace_url is None:
            return None
        url = f"{self.workspace_url}/archives/{cid}/p{ts.replace('.', '')}"
        return f"{url}?thread_ts={thread_ts}&cid={cid}" if thread_ts else url

    def attrs(
        self, message: dict[str, Any], cid: str, ts: str, thread_ts: str | None, subtype: Any
    ) -> dict[str, Any]:
        label = self.labels.get(cid)
        if label is None:
            label = self.labels[cid] = self.ws.channel_name(cid) or cid
        attrs: dict[str, Any] = {
            "channel_id": cid,
            "channel": label,
            "ts": ts,
            "thread_ts": thread_ts,
            "subtype": subtype if isinstance(subtype, str) else None,
        }
        if len(message.keys() & _ATTR_FIELDS) == 0:
            return attrs  # a plain message: none of the fields below
        if isinstance(message.get("reply_count"), int):
            attrs["reply_count"] = message["reply_count"]
        if reactions := _reactions(message):
            attrs["reactions"] = reactions
        shared = message.get("files")
        if files := [f for f in shared if isinstance(f, dict)] if isinstance(shared, list) else []:
            attrs["files"] = [f.get("title") or f.get("name") or f.get("id") for f in files]
        if isinstance(message.get("bot_id"), str):
            attrs["bot_id"] = message["bot_id"]
        if isinstance(message.get("edited"), dict) and message["edited"].get("ts"):
            attrs["edited_ts"] = message["edited"]["ts"]
        return attrs

    def store(self, event: TimelineEvent, version: float, changed: bool) -> None:
        previous = self.events.get(event.key)
        if previous is None:
            self.events[event.key] = (version, event)
            return
        if changed or previous[1].edited or event.edited:
            # An edit: the latest version wins, by the edit's own time.
            self.ctx.report.skip("message_changed: folded into the original message")
            if version >= previous[0]:
                # The dict keeps the first position, so the timeline order does not change.
                self.events[event.key] = (version, event)
        elif _same_message(previous[1], event):
            self.ctx.report.skip("duplicate message (same channel and ts)")
        else:
            # Two different messages claim one channel and ts, and neither is an edit: Slack
            # never writes that, so one copy is corrupt. The first read (in path order) stays.
            self.ctx.report.skip(CONFLICTING_DUPLICATE)


CONFLICTING_DUPLICATE = (
    "conflicting duplicate message (same channel and ts, different content): kept the first"
)


def _same_message(a: TimelineEvent, b: TimelineEvent) -> bool:
    """True when two records of one channel and ts say the same thing by the same author."""
    author_a = a.actor.id if a.actor else None
    author_b = b.actor.id if b.actor else None
    return a.text == b.text and author_a == author_b and a.kind == b.kind


def _batches(docs: list[Doc], ws: _Workspace, ctx: ReadContext) -> list[_Batch]:
    """Load users and channels into ws; return the message documents, in path order."""
    batches: list[_Batch] = []
    for doc in sorted(docs, key=lambda d: d.rel):
        shape, data = doc_shape(doc), doc.data
        folder = PurePosixPath(doc.rel).parent.name
        if doc.rel not in ctx.report.files:
            ctx.report.files.append(doc.rel)
        if shape == "users":
            ws.add_users(doc, "", data, ctx)
        elif shape == "api_users":
            ws.add_users(doc, "members", data["members"], ctx)
        elif shape == "api_user":
            ws.add_users(doc, "user", [data["user"]], ctx)
        elif shape == "channels":
            ws.add_channels(data)
        elif shape == "api_channel":
            ws.add_channels([data["channel"]])
        elif shape == "api_channels":
            ws.add_channels(data["channels"])
        elif shape == "messages":
            batches.append(_Batch(doc, "", data, folder))
        elif shape == "api_messages":
            batches.append(_Batch(doc, "messages", data["messages"], folder))
        elif shape == "message":
            batches.append(_Batch(doc, "", [data], folder, single=True))
        elif shape == "api_error":
            _reject_error_body(doc, ctx)
        elif shape in _ASIDE or shape == "api_integration_logs":
            items = data["logs"] if shape == "api_integration_logs" else data
            ctx.report.records += len(items)
            ctx.report.skip(_ASIDE[shape.removeprefix("api_")], len(items))
    for batch in batches:
        ws.add_profiles(batch.items)
    return batches


def _reject_error_body(doc: Doc, ctx: ReadContext) -> None:
    error = doc.data.get("error")
    err = BundleError(
        doc.rel,
        f"is a Slack API error response ({error}), not data",
        hint="the call that wrote this file failed; fix the cause and export or harvest again",
    )
    ctx.reject(err, reason="Slack API error body")


def claims(doc: Doc) -> bool:
    """True when doc is any part of a Slack export or a Web API body."""
    try:
        return doc_shape(doc) is not None
    except Exception:  # claims() must never raise, whatever the document holds
        return False


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Every message of the claimed documents, users and channels resolved."""
    ws = _Workspace(dict(ctx.incident.people))
    batches = _batches(docs, ws, ctx)
    if batches and not ws.has_users:
        ctx.report.skip("no users.json: names unresolved")
    reader = _Reader(ws, ctx)
    for n, batch in enumerate(batches):
        reader.read(batch)
        ctx.progress("slack: reading", n + 1, len(batches))
    for _, event in reader.events.values():
        yield event
