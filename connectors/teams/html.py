"""Teams message bodies to plain text: HTML with `<at>` mentions, emoji, attachments and cards.

A chatMessage's `body.content` is HTML (or plain text when `contentType` is "text"). Mentions
are `<at id="N">label</at>` whose N indexes the message's `mentions[]`; Teams splits a
two-word name into two `<at>` tags that mention the same user, which read here as one
"@Jane Smith". Cards and quoted replies sit in `attachments[]`, and the body marks where each
one goes with `<attachment id="…"></attachment>`; those not marked are added at the end.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

NameLookup = Callable[[str], str | None]
"""A user id to the name retro knows for it (members, users, incident.yaml), or None."""

_BLOCK = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "tr", "table", "blockquote", "pre", "hr"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "codeblock"}
)
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")
_ATTACHMENT_TYPES = {
    "application/vnd.microsoft.card.adaptive": "adaptive",
    "application/vnd.microsoft.card.hero": "hero",
    "application/vnd.microsoft.card.thumbnail": "hero",
    "application/vnd.microsoft.teams.card.o365connector": "connector",
    "messageReference": "quote",
    "reference": "file",
}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def identity_of(identity_set: Any) -> tuple[str, dict[str, Any]]:
    """The kind ("user", "application", …) and object of an identitySet's one identity."""
    ids = _obj(identity_set)
    for kind in ("user", "application", "device", "conversation", "tag"):
        found = ids.get(kind)
        if isinstance(found, dict):
            return kind, found
    return "", {}


def clean_name(value: Any) -> str | None:
    """A display name, or None for an empty one or Teams' `orgid:<guid>` placeholder."""
    name = _str(value)
    return None if not name or name.startswith("orgid:") else name


# --- mentions ------------------------------------------------------------------------------------


class Mentions:
    """A message's mentions[], by the id its `<at>` tags use."""

    def __init__(self, mentions: Any, names: NameLookup) -> None:
        self.by_id: dict[str, tuple[str, str | None]] = {}
        for mention in mentions if isinstance(mentions, list) else []:
            if not isinstance(mention, dict):
                continue
            kind, who = identity_of(mention.get("mentioned"))
            target = _str(who.get("id")) or None
            name = (names(target) if target and kind == "user" else None) or clean_name(
                who.get("displayName")
            )
            label = name or _str(mention.get("mentionText"))
            self.by_id[str(mention.get("id"))] = (label, f"{kind}:{target}" if target else None)

    def label(self, at_id: str, inner: str) -> tuple[str, str | None]:
        """The name to show for `<at id=at_id>inner</at>`, and whom it mentions."""
        label, target = self.by_id.get(at_id, ("", None))
        return label or inner.strip(), target


# --- HTML ----------------------------------------------------------------------------------------


class _Renderer(HTMLParser):
    """Collects text, with line breaks at block tags and mentions resolved."""

    def __init__(self, mentions: Mentions, cards: dict[str, str]) -> None:
        super().__init__(convert_charrefs=True)
        self.mentions = mentions
        self.cards = cards
        self.used: set[str] = set()
        self.out: list[str] = []
        self.at: tuple[str, list[str]] | None = None  # the open <at>: its id and text
        self.last_target: str | None = None  # whom the previous mention named, to join halves
        self.last_at_end = -1  # len(self.out) just after the previous mention
        self.link: tuple[str, int] | None = None  # the open <a>: its href, where its text starts
        self.skip = 0  # inside <style>/<script>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("style", "script"):
            self.skip += 1
        elif tag == "at":
            self.at = (a.get("id", ""), [])
        elif tag in _BLOCK:
            self.out.append("\n")
            if tag == "li":
                self.out.append("- ")
        elif tag == "a":
            self.link = (a.get("href", ""), len(self.out))
        elif tag in ("img", "emoji"):
            self._image(tag, a)
        elif tag == "attachment":
            self._attachment(a.get("id", ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in ("at", "a"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self.skip = max(0, self.skip - 1)
        elif tag == "at" and self.at is not None:
            self._mention(*self.at)
            self.at = None
        elif tag == "a" and self.link is not None:
            href, start = self.link
            self.link = None
            label = "".join(self.out[start:]).strip()
            if href and href != label and not href.startswith("mailto:"):
                self.out.append(f" ({href})" if label else href)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.at is not None:
            self.at[1].append(data)
        else:
            self.out.append(data)

    def _mention(self, at_id: str, parts: list[str]) -> None:
        label, target = self.mentions.label(at_id, "".join(parts))
        between = "".join(self.out[self.last_at_end :]) if self.last_at_end >= 0 else None
        if target and target == self.last_target and between is not None and not between.strip():
            # The second half of a split name: the first half already shows the whole name.
            del self.out[self.last_at_end :]
        else:
            self.out.append("@" + label if label else "")
        self.last_target = target
        self.last_at_end = len(self.out)

    def _image(self, tag: str, a: dict[str, str]) -> None:
        alt = a.get("alt", "").strip()
        if alt and (tag == "emoji" or a.get("itemtype", "").endswith("/Emoji")):
            self.out.append(alt)
        elif alt and alt.lower() not in ("image", "img", "picture"):
            self.out.append(f"[image: {alt}]")
        else:
            self.out.append("[image]")

    def _attachment(self, att_id: str) -> None:
        card = self.cards.get(att_id)
        if card:
            self.used.add(att_id)
            self.out.append(f"\n{card}\n")


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_text(content: str, mentions: Mentions, cards: dict[str, str]) -> tuple[str, set[str]]:
    """Plain text of an HTML body, and the ids of the attachments it placed."""
    if "<" not in content and "&" not in content:
        return _tidy(content), set()
    renderer = _Renderer(mentions, cards)
    renderer.feed(content)
    renderer.close()
    return _tidy("".join(renderer.out)), renderer.used


# --- attachments and cards ---------------------------------------------------------------------


def _card_json(att: dict[str, Any]) -> dict[str, Any]:
    content = att.get("content")
    if isinstance(content, str) and content.strip().startswith("{"):
        try:
            content = json.loads(content)
        except ValueError:
            return {}
    return _obj(content)


def _adaptive(element: Any, out: list[str]) -> None:
    """TextBlocks, RichTextBlocks and FactSets of an Adaptive Card, in reading order."""
    if isinstance(element, list):
        for item in element:
            _adaptive(item, out)
        return
    if not isinstance(element, dict):
        return
    kind = element.get("type")
    if kind == "TextBlock" and _str(element.get("text")):
        out.append(_str(element["text"]))
    elif kind == "RichTextBlock":
        inlines = element.get("inlines") or []
        text = "".join(
            i if isinstance(i, str) else str(_obj(i).get("text") or "") for i in inlines
        ).strip()
        if text:
            out.append(text)
    elif kind == "FactSet":
        for fact in element.get("facts") or []:
            title, value = _str(_obj(fact).get("title")), _str(_obj(fact).get("value"))
            if title or value:
                out.append(f"{title}: {value}".strip(": "))
    for key in ("body", "items", "columns"):
        if key in element:
            _adaptive(element[key], out)


def _connector_card(card: dict[str, Any], out: list[str]) -> None:
    for key in ("title", "summary", "text"):
        if _str(card.get(key)):
            out.append(_str(card[key]))
    for section in card.get("sections") or []:
        section = _obj(section)
        for key in ("activityTitle", "activitySubtitle", "activityText", "title", "text"):
            if _str(section.get(key)):
                out.append(_str(section[key]))
        for fact in section.get("facts") or []:
            name, value = _str(_obj(fact).get("name")), _str(_obj(fact).get("value"))
            if name or value:
                out.append(f"{name}: {value}".strip(": "))


def _quote(att: dict[str, Any], names: NameLookup) -> str:
    card = _card_json(att)
    preview = _str(card.get("messagePreview"))
    _, sender = identity_of(card.get("messageSender"))
    who = (names(_str(sender.get("id"))) if sender.get("id") else None) or clean_name(
        sender.get("displayName")
    )
    if not preview:
        return ""
    return f"> {who}: {preview}" if who else f"> {preview}"


def attachment_text(att: dict[str, Any], names: NameLookup) -> str:
    """One attachment as text: a card's visible text, a quoted reply, or a file's name."""
    kind = _ATTACHMENT_TYPES.get(str(att.get("contentType")), "")
    out: list[str] = []
    if kind == "adaptive":
        _adaptive(_card_json(att).get("body"), out)
    elif kind == "hero":
        card = _card_json(att)
        out += [_str(card.get(k)) for k in ("title", "subtitle", "text") if _str(card.get(k))]
    elif kind == "connector":
        _connector_card(_card_json(att), out)
    elif kind == "quote":
        return _quote(att, names)
    name = _str(att.get("name"))
    if kind == "file" or (not out and name):
        return f"[file: {name or _str(att.get('contentUrl')) or 'attachment'}]"
    text = "\n".join(_once(html.unescape(t) for t in out))
    if "<" in text:  # connector cards may carry HTML
        text, _ = html_text(text, Mentions(None, names), {})
    return text.strip()


def message_text(message: dict[str, Any], names: NameLookup) -> str:
    """The plain text of a chatMessage: its body with mentions resolved, then its attachments."""
    attachments = [a for a in message.get("attachments") or [] if isinstance(a, dict)]
    cards = {str(a.get("id")): attachment_text(a, names) for a in attachments}
    body = _obj(message.get("body"))
    raw = body.get("content")
    content = raw if isinstance(raw, str) else ""
    used: set[str] = set()
    if str(body.get("contentType")).lower() == "html":
        text, used = html_text(content, Mentions(message.get("mentions"), names), cards)
    else:
        text = _tidy(content)
    rest = [cards[k] for k in cards if k not in used and cards[k]]
    subject = _str(message.get("subject"))
    # a bot's subject is often its card's title, and a card repeats its title in a section:
    # each line of the subject and the cards is shown once
    shown = {line.strip().casefold() for line in text.split("\n")}
    if subject.casefold() in shown:
        subject = ""
    shown.add(subject.casefold())
    card_lines = [line for part in rest for line in part.split("\n")]
    tail = [line for line in _once(card_lines) if line.strip().casefold() not in shown]
    return "\n".join(p for p in [subject, text, *tail] if p)


def _once(lines: Any) -> list[str]:
    """Lines in order, each shown once (case aside)."""
    seen: set[str] = set()
    out = []
    for line in lines:
        key = line.strip().casefold()
        if key and key not in seen:
            seen.add(key)
            out.append(line)
    return out
