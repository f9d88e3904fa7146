"""Atlassian Document Format (ADF) to plain text, for Jira REST v3 descriptions and comments.

ADF is a tree of nodes: `{"type": "doc", "content": [{"type": "paragraph", "content": [...]}]}`.
Blocks become lines; lists get "- " or "1. " markers; mentions, emoji, dates and cards keep the
text a reader would see in Jira. Unknown node types fall back to their children, so new node
types degrade to their text instead of vanishing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_BLOCKS = {
    "paragraph",
    "heading",
    "codeBlock",
    "blockquote",
    "bulletList",
    "orderedList",
    "listItem",
    "panel",
    "rule",
    "table",
    "tableRow",
    "mediaSingle",
    "mediaGroup",
    "expand",
    "nestedExpand",
    "taskList",
    "taskItem",
    "decisionList",
    "decisionItem",
    "blockCard",
    "embedCard",
}


def is_adf(value: Any) -> bool:
    """True when value looks like an ADF document."""
    return isinstance(value, dict) and value.get("type") == "doc" and "content" in value


def adf_to_text(value: Any) -> str:
    """Plain text of an ADF document; strings pass through; anything else becomes ''."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        return ""
    return "\n".join(line.rstrip() for line in _block(value).strip("\n").splitlines()).strip()


def text_to_adf(text: str) -> dict[str, Any]:
    """A minimal ADF document for text: one paragraph per line, as Jira's editor stores it."""
    paragraphs = []
    for line in text.split("\n"):
        content = [{"type": "text", "text": line}] if line else []
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def _children(node: dict[str, Any]) -> list[dict[str, Any]]:
    content = node.get("content")
    return [c for c in content if isinstance(c, dict)] if isinstance(content, list) else []


def _block(node: dict[str, Any]) -> str:
    """Text of a node; block nodes end with a newline."""
    kind = node.get("type")
    attrs = as_dict(node.get("attrs"))
    if kind in ("doc", "panel", "expand", "nestedExpand", "layoutSection", "layoutColumn"):
        title = f"{attrs['title']}\n" if attrs.get("title") else ""
        return title + "".join(_block(c) for c in _children(node))
    if kind in ("bulletList", "orderedList", "taskList", "decisionList"):
        return _list(node, kind, attrs)
    if kind == "codeBlock":
        return "".join(_inline(c) for c in _children(node)) + "\n"
    if kind == "blockquote":
        inner = "".join(_block(c) for c in _children(node)).strip("\n")
        return "\n".join(f"> {line}" for line in inner.splitlines()) + "\n"
    if kind == "rule":
        return "---\n"
    if kind == "table":
        return "".join(_block(c) for c in _children(node))
    if kind == "tableRow":
        cells = [" ".join(_block(c).split("\n")).strip() for c in _children(node)]
        return " | ".join(cells) + "\n"
    if kind in ("tableCell", "tableHeader", "listItem", "taskItem", "decisionItem"):
        return (
            "".join(_block(c) if c.get("type") in _BLOCKS else _inline(c) for c in _children(node))
            + "\n"
        )
    if kind in ("blockCard", "embedCard"):
        return f"{attrs.get('url', '')}\n"
    if kind in ("mediaSingle", "mediaGroup"):
        return "".join(_inline(c) for c in _children(node)) + "\n"
    if kind in ("paragraph", "heading") or kind not in _BLOCKS:
        return "".join(_inline(c) for c in _children(node)) + ("\n" if kind != "text" else "")
    return "".join(_block(c) for c in _children(node))


def _list(node: dict[str, Any], kind: str, attrs: dict[str, Any]) -> str:
    lines: list[str] = []
    number = int(attrs.get("order", 1) or 1)
    for i, item in enumerate(_children(node)):
        if kind == "orderedList":
            marker = f"{number + i}. "
        elif item.get("type") == "taskItem":
            marker = "[x] " if (item.get("attrs") or {}).get("state") == "DONE" else "[ ] "
        else:
            marker = "- "
        text = _block(item).strip("\n").splitlines() or [""]
        lines.append(marker + text[0])
        # Nested lists and continuation lines are indented under their item.
        lines.extend("  " + rest for rest in text[1:])
    return "\n".join(lines) + "\n"


def _inline(node: dict[str, Any]) -> str:
    kind = node.get("type")
    attrs = as_dict(node.get("attrs"))
    if kind == "text":
        text = str(node.get("text", ""))
        for mark in node.get("marks") or []:
            href = (mark.get("attrs") or {}).get("href") if isinstance(mark, dict) else None
            if isinstance(mark, dict) and mark.get("type") == "link" and href and href != text:
                text = f"{text} ({href})"
        return text
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        label = attrs.get("text") or attrs.get("displayName") or attrs.get("id") or "someone"
        return label if str(label).startswith("@") else f"@{label}"
    if kind == "emoji":
        return str(attrs.get("shortName") or attrs.get("text") or "")
    if kind == "inlineCard":
        return str(attrs.get("url") or "")
    if kind == "status":
        return f"[{attrs.get('text', '')}]"
    if kind == "date":
        return _date(attrs.get("timestamp"))
    if kind == "media":
        return f"[{attrs.get('alt') or attrs.get('type') or 'attachment'}]"
    if kind in _BLOCKS:
        return _block(node)
    return "".join(_inline(c) for c in _children(node))


def _date(stamp: Any) -> str:
    try:
        return datetime.fromtimestamp(int(stamp) / 1000, tz=UTC).strftime("%Y-%m-%d")
    except (TypeError, ValueError, OverflowError):
        return str(stamp or "")


def as_dict(value: Any) -> dict[str, Any]:
    """value when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}
