"""Slack message text to plain text: mrkdwn tokens, Block Kit, attachments and file shares.

Slack stores `<@U123>`, `<#C123|name>`, `<https://x|label>` and `&amp;`-escaped text. A postmortem
wants what people saw, so mentions become names and links keep both label and address.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

NameLookup = Callable[[str], str | None]
"""Map an id (user or channel) to a display name, or None when unknown."""

_TOKEN = re.compile(r"<([^<>\n]+)>")
_SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def render_mrkdwn(text: str, *, user: NameLookup, channel: NameLookup) -> str:
    """Render Slack mrkdwn to plain text, resolving mentions through the lookups."""
    if not text:
        return ""

    text = _unbold(text)
    if "<" not in text:  # most messages have no tokens; skip building the closure
        return _unescape(text)

    def replace(match: re.Match[str]) -> str:
        return _render_token(match.group(1), user=user, channel=channel)

    return _unescape(_TOKEN.sub(replace, text))


# `*bold*` around words, not "5 * 3", "*.log" or "api/*"; code spans keep their asterisks.
_BOLD = re.compile(r"(?<![\w*/.])\*(?=[^\s*])([^*\n]{1,200}?)(?<=[^\s*])\*(?![\w*/])")
_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)


def _unbold(text: str) -> str:
    """Slack's bold markers removed outside code: "*eu-west-1* is down" -> "eu-west-1 is
    down"."""
    if "*" not in text:
        return text
    parts = _CODE.split(text)
    return "".join(p if i % 2 else _BOLD.sub(r"\1", p) for i, p in enumerate(parts))


def _render_token(body: str, *, user: NameLookup, channel: NameLookup) -> str:
    target, _, label = body.partition("|")
    if target.startswith("@"):
        uid = target[1:]
        return "@" + (user(uid) or label.lstrip("@") or uid)
    if target.startswith("#"):
        cid = target[1:]
        return "#" + (label.lstrip("#") or channel(cid) or cid)
    if target.startswith("!"):
        return _render_command(target[1:], label)
    if target.startswith("mailto:"):
        address = target[len("mailto:") :]
        return address if not label or label == address else f"{label} ({address})"
    if not label or label == target:
        return target
    return f"{label} ({target})"


def _render_command(command: str, label: str) -> str:
    """Render `<!here>`, `<!subteam^S1|@sre>`, `<!date^epoch^format|fallback>` and the like."""
    name, _, rest = command.partition("^")
    if name in _SPECIAL:
        return _SPECIAL[name]
    if name == "subteam":
        return label if label.startswith("@") else "@" + (label or rest)
    if name == "date":
        if label:
            return label
        epoch = rest.partition("^")[0]
        try:
            return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        except (ValueError, OverflowError, OSError):
            return epoch
    return label or name


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    # &amp; last, so "&amp;lt;" stays the literal text "&lt;" as Slack meant it.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --- Block Kit and attachments ------------------------------------------------------------------


def blocks_text(blocks: Any, *, user: NameLookup, channel: NameLookup) -> str:
    """Plain text of a message's Block Kit blocks (rich_text, section, header, context)."""
    if not isinstance(blocks, list):
        return ""
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, dict):
            text = _block_text(block, user=user, channel=channel)
            if text.strip():
                lines.append(text.strip())
    return "\n".join(lines)


def _block_text(block: dict[str, Any], *, user: NameLookup, channel: NameLookup) -> str:
    kind = block.get("type")
    if kind == "rich_text":
        return "\n".join(
            _rich_element(e, user=user, channel=channel)
            for e in block.get("elements") or []
            if isinstance(e, dict)
        )
    if kind in ("section", "header"):
        parts = [_text_object(block.get("text"), user=user, channel=channel)]
        parts += [_text_object(f, user=user, channel=channel) for f in block.get("fields") or []]
        return "\n".join(p for p in parts if p)
    if kind == "context":
        parts = [_text_object(e, user=user, channel=channel) for e in block.get("elements") or []]
        return " ".join(p for p in parts if p)
    return ""


def _text_object(obj: Any, *, user: NameLookup, channel: NameLookup) -> str:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return ""
    if obj.get("type") == "mrkdwn":
        return render_mrkdwn(obj["text"], user=user, channel=channel)
    return str(obj["text"])


def _rich_element(element: dict[str, Any], *, user: NameLookup, channel: NameLookup) -> str:
    """One rich_text container (section, list, quote, preformatted) as text."""
    kind = element.get("type")
    children = [c for c in element.get("elements") or [] if isinstance(c, dict)]
    if kind == "rich_text_list":
        items = [_rich_element(c, user=user, channel=channel) for c in children]
        return "\n".join(f"- {item}" for item in items)
    inline = "".join(_rich_leaf(c, user=user, channel=channel) for c in children)
    if kind == "rich_text_quote":
        return "\n".join(f"> {line}" for line in inline.splitlines())
    return inline


def _rich_leaf(leaf: dict[str, Any], *, user: NameLookup, channel: NameLookup) -> str:
    kind = leaf.get("type")
    if kind == "text":
        return str(leaf.get("text") or "")
    if kind == "link":
        url = str(leaf.get("url") or "")
        label = str(leaf.get("text") or "")
        return f"{label} ({url})" if label and label != url else url
    if kind == "user":
        uid = str(leaf.get("user_id") or "")
        return "@" + (user(uid) or uid)
    if kind == "channel":
        cid = str(leaf.get("channel_id") or "")
        return "#" + (channel(cid) or cid)
    if kind == "usergroup":
        return "@" + str(leaf.get("usergroup_id") or "")
    if kind == "broadcast":
        return "@" + str(leaf.get("range") or "here")
    if kind == "emoji":
        return f":{leaf.get('name')}:"
    if kind == "date":
        return str(leaf.get("fallback") or leaf.get("timestamp") or "")
    return str(leaf.get("text") or "")


def attachments_text(attachments: Any, *, user: NameLookup, channel: NameLookup) -> str:
    """Plain text of legacy attachments: pretext, title, text and fields, else the fallback."""
    if not isinstance(attachments, list):
        return ""
    out: list[str] = []
    for att in attachments:
        if not isinstance(att, dict):
            continue
        parts = [att.get("pretext"), att.get("title"), att.get("text")]
        for f in att.get("fields") or []:
            if isinstance(f, dict) and (f.get("title") or f.get("value")):
                parts.append(f"{f.get('title') or ''}: {f.get('value') or ''}".strip(": "))
        texts = [render_mrkdwn(p, user=user, channel=channel) for p in parts if isinstance(p, str)]
        texts = [t for t in texts if t.strip()]
        if not texts and isinstance(att.get("fallback"), str):
            texts = [render_mrkdwn(att["fallback"], user=user, channel=channel)]
        if texts:
            out.append("\n".join(texts))
    return "\n".join(out)


def file_names(files: Any) -> list[str]:
    """The title (or name) of every shared file, in order."""
    if not isinstance(files, list):
        return []
    names: list[str] = []
    for f in files:
        if isinstance(f, dict):
            name = f.get("title") or f.get("name") or f.get("id")
            if isinstance(name, str) and name:
                names.append(name)
    return names


def message_text(message: dict[str, Any], *, user: NameLookup, channel: NameLookup) -> str:
    """The plain text of a message: text, else blocks, else attachments; plus shared files."""
    raw = message.get("text")
    if type(raw) is str and "<" not in raw and "&" not in raw and "files" not in message:
        plain = raw.strip()
        if plain:  # the common case: plain text that needs no rendering
            return plain
    text = render_mrkdwn(raw, user=user, channel=channel) if isinstance(raw, str) else ""
    if not text.strip():
        text = blocks_text(message.get("blocks"), user=user, channel=channel)
    if not text.strip():
        text = attachments_text(message.get("attachments"), user=user, channel=channel)
    files = [f"[file: {name}]" for name in file_names(message.get("files"))]
    return "\n".join(p for p in [text.strip(), *files] if p)
