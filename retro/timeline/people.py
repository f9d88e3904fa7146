"""Join the actors that each source names into people: by email first, then by name."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

from retro.models import Actor, Person, TimelineEvent, stable_hash

_IC_SELF = re.compile(
    r"\b(i'?m|i am|i'?ll be|i will be|i'?ll take|taking|i'?ll act as|acting as)\b[^.!?\n]{0,25}?"
    r"\b(ic|incident commander|incident lead|incident manager|commander)\b",
    re.IGNORECASE,
)
_IC_OTHER = re.compile(
    r"@(?P<who>[\w.\- ]{2,40}?)\s+(is|will be|as)\s+(the\s+)?(ic|incident commander|incident lead)\b"
    r"|\b(ic|incident commander|incident lead)\s*(is|:|=)\s*@(?P<who2>[\w.\-]{2,40})",
    re.IGNORECASE,
)


@lru_cache(maxsize=65536)
def normalize_name(name: str | None) -> str:
    """Casefolded, accent-free, single-spaced name, for matching across sources."""
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^\w\s]", " ", text.casefold())
    return " ".join(text.split())


class _Union:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, i: int) -> int:
        self.parent.setdefault(i, i)
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _identity(actor: Actor) -> tuple[str, str, str, bool]:
    return (
        actor.account() or "",
        (actor.email or "").casefold(),
        normalize_name(actor.name),
        actor.is_bot,
    )


# attrs that name a person who is not the event's actor (paged, assigned, notified users)
MENTION_KEYS = (
    "user",
    "assignee",
    "assignees",
    "acknowledged_by",
    "closed_by",
    "owner",
    "escalated_to",
)


_MENTION_SET = frozenset(MENTION_KEYS)


def mentioned(event: TimelineEvent) -> list[Actor]:
    """People an event names in its attrs without being their actor."""
    if event.kind != "assignee_change" and _MENTION_SET.isdisjoint(event.attrs):
        return []  # the common case, checked cheaply: most events name nobody else
    out: list[Actor] = []
    for key in MENTION_KEYS:
        value = event.attrs.get(key)
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item.strip() and len(item) < 80:
                email = event.attrs.get(f"{key}_email") if not isinstance(value, list) else None
                out.append(
                    Actor(
                        source=event.source,
                        name=item.strip(),
                        email=email if isinstance(email, str) else None,
                    )
                )
    if event.kind == "assignee_change":
        for key in ("from", "to"):
            name = event.attrs.get(key)
            if (
                isinstance(name, str)
                and name.strip()
                and name.strip().lower() not in ("none", "unassigned")
            ):
                out.append(Actor(source=event.source, name=name.strip()))
    return out


def join_people(
    events: list[TimelineEvent], chat: frozenset[str] | None = None
) -> dict[str, Person]:
    """Give every event's actor a `person` key; return the people by key.

    `chat` names the chat sources (default: every registered source with the chat role); their
    actors keep the bot flag their workspace gave them, and their one-word names are handles.
    """
    if chat is None:
        from retro import registry

        chat = frozenset(n for n, i in registry.source_info().items() if "chat" in i.roles)
    actors: list[Actor] = []
    index: dict[tuple[str, str, str, bool], int] = {}
    # Connectors share one Actor object among an author's events, so identities are computed
    # once per object; the events keep every object alive, so ids stay unique meanwhile.
    slot: dict[int, int] = {}
    by_id: dict[int, Actor] = {}
    for event in events:
        if event.actor is not None and id(event.actor) not in slot:
            slot[id(event.actor)] = _index_of(event.actor, index, actors)
            by_id[id(event.actor)] = event.actor
        if event.kind == "assignee_change" or not _MENTION_SET.isdisjoint(event.attrs):
            for actor in mentioned(event):
                _index_of(actor, index, actors)
    groups = _group(actors)
    people: dict[str, Person] = {}
    member_key: dict[int, str] = {}
    for members in groups.values():
        person = _person([actors[i] for i in members], chat)
        people[person.key] = person
        for i in members:
            member_key[i] = person.key
    for actor_id, i in slot.items():
        actor = by_id[actor_id]
        if actor.person != (key := member_key[i]):
            actor.person = key
    detect_roles(events, people)
    return people


def _index_of(
    actor: Actor, index: dict[tuple[str, str, str, bool], int], actors: list[Actor]
) -> int:
    """The position of actor's identity in actors, appending it when new."""
    ident = _identity(actor)
    if ident not in index:
        index[ident] = len(actors)
        actors.append(actor)
    return index[ident]


def _group(actors: list[Actor]) -> dict[int, list[int]]:
    union = _Union()
    seen: dict[str, int] = {}
    for i, actor in enumerate(actors):
        union.find(i)
        keys = [f"acct:{actor.account()}"] if actor.account() else []
        if actor.email:
            keys.append(f"email:{actor.email.casefold()}")
        name = normalize_name(actor.name)
        # Bots share names freely ("Alertmanager"), so only humans join by name.
        if name and not actor.is_bot and len(name) > 2:
            keys.append(f"name:{name}")
        for key in keys:
            if key in seen:
                union.join(seen[key], i)
            else:
                seen[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(actors)):
        groups.setdefault(union.find(i), []).append(i)
    return groups


def looks_like_system(actor: Actor, chat: frozenset[str]) -> bool:
    """A name-only actor outside chat that names a system, not a person.

    People in pagers and trackers carry emails or full names. A one-token name is a system when
    it has a hyphen, underscore or digit ("payouts-gateway", "argo_cd") or is a capitalized word
    ("Alertmanager", "Stratocloud"); a lowercase login ("niamh", "callum.rw") is a person. Chat
    actors keep their flag from the workspace's users list, and an account its source calls a
    person's (a GitHub "User", hyphenated login or not) is one.
    """
    if actor.is_bot or actor.is_human or actor.source in chat or actor.email:
        return actor.is_bot
    name = (actor.name or "").strip()
    if not name or " " in name:
        return False
    if re.search(r"[-_\d]", name):
        return True
    return name[0].isupper() and "." not in name


def _person(members: list[Actor], chat: frozenset[str]) -> Person:
    emails = sorted({a.email.casefold() for a in members if a.email})
    names = Counter(a.name for a in members if a.name)
    accounts = sorted({acct for a in members if (acct := a.account())})
    anchor = (
        emails[0]
        if emails
        else (
            accounts[0]
            if accounts
            else normalize_name(names.most_common(1)[0][0] if names else "unknown")
        )
    )
    full = max(names, key=lambda n: (len(n.split()) > 1, names[n], len(n)), default=None)
    handles = sorted(
        {a.handle for a in members if a.handle}
        | {a.name for a in members if a.source in chat and a.name and " " not in a.name}
    )
    handle = handles[0] if handles else None
    titles = sorted({a.title for a in members if a.title})
    return Person(
        key="P" + stable_hash(anchor, length=5),
        name=full,
        handle=handle,
        handles=handles,
        emails=emails,
        titles=titles,
        accounts=accounts,
        is_bot=all(looks_like_system(a, chat) for a in members),
    )


def _may_name_ic(text: str) -> bool:
    """False when text cannot match _IC_SELF, which needs the word "ic", "commander",
    "incident lead" or "incident manager". Five times cheaper than running it on all chat."""
    if not text.isascii():
        return True  # case folding beyond ASCII is the regexes' business
    low = text.lower()
    if "commander" in low or "incident lead" in low or "incident manager" in low:
        return True
    i = low.find("ic")
    while i != -1:
        before, after = low[i - 1 : i], low[i + 2 : i + 3]
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        i = low.find("ic", i + 1)
    return False


def detect_roles(events: list[TimelineEvent], people: dict[str, Person]) -> None:
    """Mark the incident commander when someone declares it in chat."""
    by_name = {normalize_name(n): p.key for p in people.values() for n in (p.name, p.handle) if n}
    for event in events:
        if event.kind != "message" or event.actor is None or event.actor.person is None:
            continue
        key: str | None = None
        if _may_name_ic(event.text) and _IC_SELF.search(event.text):
            key = event.actor.person
        elif "@" in event.text and (match := _IC_OTHER.search(event.text)):  # both forms need @
            who = normalize_name(match.group("who") or match.group("who2"))
            key = by_name.get(who)
        if key and "incident commander" not in people[key].roles:
            people[key].roles.append("incident commander")
            event.attrs.setdefault("marks", []).append("ic_declared")
