"""One action item as a Jira issue: its summary and description (ADF for REST v3, wiki markup
for v2), built from the row and the draft's Timeline table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retro.actions.table import ActionRow, PostmortemFile

EMAIL = re.compile(r"[^@\s<>()|]+@[^@\s<>()|]+\.[A-Za-z]{2,}")
_WIKI_SPECIAL = re.compile(r"([\\{}\[\]|*_^~+!#])")


@dataclass
class Brief:
    """What an issue description says about one action item."""

    title: str
    end_state: str
    kind: str
    priority: str
    owner: str
    incident_id: str
    incident_title: str
    postmortem: str
    postmortem_url: str | None
    evidence: list[tuple[str, str, str]]  # (event id, "YYYY-MM-DD HH:MM:SS UTC", text)
    marker: str

    @classmethod
    def of(cls, pm: PostmortemFile, row: ActionRow, url: str | None) -> Brief:
        evidence = []
        for event_id in row.citations:
            event = pm.timeline.get(event_id)
            if event is None:
                evidence.append((event_id, "", "(not in the Timeline table)"))
                continue
            when = str(event.get("at", "")).replace("T", " ").removesuffix("Z")
            evidence.append((event_id, f"{when} UTC", str(event.get("text", ""))))
        return cls(
            title=row.title,
            end_state=row.get("end_state"),
            kind=row.get("type"),
            priority=row.priority,
            owner=row.get("owner"),
            incident_id=pm.incident_id,
            incident_title=pm.incident_title,
            postmortem=shown_path(pm.path),
            postmortem_url=url,
            evidence=evidence,
            marker=row.marker,
        )

    def details(self) -> list[tuple[str, str]]:
        pairs = [("Type", self.kind), ("Priority", self.priority), ("Owner", self.owner)]
        return [(k, v) for k, v in pairs if v and v != "-"]


def shown_path(path: Path) -> str:
    """The postmortem's path relative to its git repository (absolute paths mean little)."""
    resolved = path.resolve()
    for parent in resolved.parents:
        if (parent / ".git").exists():
            return resolved.relative_to(parent).as_posix()
    return path.as_posix()


def summary(title: str) -> str:
    """A Jira summary: one line, at most 255 characters."""
    one = " ".join(title.split())
    return one if len(one) <= 255 else one[:254] + "…"


def _t(text: str, *marks: str, href: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    kinds: list[dict[str, Any]] = [{"type": m} for m in marks]
    if href:
        kinds.append({"type": "link", "attrs": {"href": href}})
    if kinds:
        node["marks"] = kinds
    return node


def _p(*inline: dict[str, Any]) -> dict[str, Any]:
    # Jira Cloud rejects empty text nodes.
    return {"type": "paragraph", "content": [n for n in inline if n.get("text")]}


def _h(text: str) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": 3}, "content": [_t(text)]}


def _ul(items: list[list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "type": "bulletList",
        "content": [{"type": "listItem", "content": [_p(*i)]} for i in items],
    }


def adf(brief: Brief) -> dict[str, Any]:
    """The description as an Atlassian Document (Jira Cloud, REST v3)."""
    where = [_t(brief.postmortem, "code")]
    if brief.postmortem_url:
        where += [_t(" — "), _t(brief.postmortem_url, href=brief.postmortem_url)]
    evidence = [
        [_t(i, "code"), _t(f" {when} — {text}" if when else f" {text}")]
        for i, when, text in brief.evidence
    ]
    content = [
        _p(
            _t("Action item from the postmortem of "),
            _t(f"{brief.incident_id}: {brief.incident_title}", "strong"),
            _t("."),
        ),
        _h("Done when"),
        _p(_t(brief.end_state or "(no end state written yet)")),
    ]
    if brief.details():
        content.append(_ul([[_t(f"{k}: ", "strong"), _t(v)] for k, v in brief.details()]))
    content += [_h("Postmortem"), _p(*where), _h("Evidence")]
    content.append(_ul(evidence) if evidence else _p(_t("No timeline events cited.")))
    content.append(
        _p(
            _t(
                f"Filed by retro. The label {brief.marker} lets retro find this issue again; keep it.",
                "em",
            )
        )
    )
    return {"type": "doc", "version": 1, "content": content}


def wiki_escape(text: str) -> str:
    """Text with Jira wiki markup characters escaped, so it shows as written."""
    return _WIKI_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def wiki(brief: Brief) -> str:
    """The description in Jira wiki markup (Jira Server/Data Center, REST v2)."""
    e = wiki_escape
    where = "{{" + e(brief.postmortem) + "}}"
    if brief.postmortem_url:
        where += f" — [{e(brief.postmortem_url)}|{brief.postmortem_url}]"
    lines = [
        f"Action item from the postmortem of *{e(brief.incident_id)}: {e(brief.incident_title)}*.",
        "",
        "h3. Done when",
        e(brief.end_state) or "(no end state written yet)",
        "",
    ]
    lines += [f"* *{k}:* {e(v)}" for k, v in brief.details()]
    lines += ["", "h3. Postmortem", where, "", "h3. Evidence"]
    lines += [
        "* {{" + i + "}} " + (f"{e(when)} — {e(text)}" if when else e(text))
        for i, when, text in brief.evidence
    ] or ["No timeline events cited."]
    lines += [
        "",
        f"_Filed by retro. The label {e(brief.marker)} lets retro find this issue again; keep it._",
    ]
    return "\n".join(lines)
