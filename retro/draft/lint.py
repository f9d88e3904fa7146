"""`retro check`: lint a postmortem draft, human-edited ones included.

Errors: missing sections, dangling citations, blame and counterfactual wording, names,
incomplete action items. Warnings: vague wording, uncited sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from retro.draft.render import REQUIRED_HEADINGS
from retro.draft.review import CITATION, Document, action_items_of, parse_document, timeline_of
from retro.models import ActionType, Priority
from retro.safety.policy import BLAME, VAGUE

Severity = Literal["error", "warning"]
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
HANDLE = re.compile(r"(?<![\w`\]:/.-])@([a-z][\w.-]{2,})\b", re.IGNORECASE)
ROLE_HANDLES = frozenset(
    {"here", "channel", "everyone", "oncall", "on-call", "sre", "sres", "team"}
)
PERSON_VERB = re.compile(
    r"\b([A-Z][a-z]{2,} [A-Z][a-z]{2,})\b(?= (said|wrote|asked|noted|reported|deployed|pushed|merged|"
    r"acknowledged|paged|ran|restarted|rolled|decided|approved|missed|forgot))"
)
TEAM_WORDS = re.compile(
    r"\b(team|squad|guild|group|on-?call|sre|engineer|lead|manager|commander|owner|"
    r"platform|infra\w*|security|database|network|support|ops|operations|rotation)\b",
    re.I,
)
NARRATIVE = (
    "summary",
    "impact",
    "detection",
    "response",
    "recovery",
    "root_cause",
    "contributing_factors",
    "went_well",
    "went_poorly",
    "got_lucky",
)
VERIFIABLE = re.compile(
    r"\b(alert|fires?|pages?|test\w*|verified|shown|confirm\w*|blocked|merged|linked|documented|deployed|enabled|"
    r"within|under|at least|at most|no more than|%|dashboard|check|drill|game day|runbook|exists?|passes|measured|"
    r"reviewed|automat\w+|every|zero|none)\b",
    re.IGNORECASE,
)


@dataclass
class Finding:
    line: int
    severity: Severity
    message: str

    def format(self, path: str) -> str:
        return f"{path}:{self.line}: {self.severity}: {self.message}"


def _line_of(doc: Document, needle: str, start: int = 0) -> int:
    """1-based file line of the first body line at or after `start` containing needle."""
    for i in range(start, len(doc.lines)):
        if needle and needle in doc.lines[i]:
            return i + 1 + doc.body_offset
    return start + 1 + doc.body_offset


def check_text(
    text: str, path: str = "<draft>", *, names: list[str] | None = None
) -> list[Finding]:
    """Every finding for one draft, in line order."""
    doc = parse_document(text, path)
    findings: list[Finding] = []
    findings += _sections(doc)
    findings += _citations(doc)
    findings += _wording(doc)
    findings += _names(doc, names or [])
    findings += _actions(doc)
    return sorted(findings, key=lambda f: (f.line, f.message))


def _sections(doc: Document) -> list[Finding]:
    present = {s.heading.casefold() for s in doc.sections.values()}
    return [
        Finding(1 + doc.body_offset, "error", f"missing section: ## {h}")
        for h in REQUIRED_HEADINGS
        if h.casefold() not in present
    ]


def _citations(doc: Document) -> list[Finding]:
    known = {row["id"] for row in timeline_of(doc.sections.get("timeline"))}
    out: list[Finding] = []
    for key, section in doc.sections.items():
        if key in ("timeline", "sources"):
            continue
        for offset, line in enumerate(doc.lines[section.start : section.end]):
            for cid in CITATION.findall(line):
                if cid not in known:
                    out.append(
                        Finding(
                            section.start + offset + 1 + doc.body_offset,
                            "error",
                            f"citation [{cid}] is not an event in the Timeline table",
                        )
                    )
    return out


def _wording(doc: Document) -> list[Finding]:
    out: list[Finding] = []
    for key in NARRATIVE + ("open_questions", "action_items"):
        section = doc.sections.get(key)
        if section is None:
            continue
        for offset, line in enumerate(doc.lines[section.start : section.end]):
            lineno = section.start + offset + 1 + doc.body_offset
            quoted = re.sub(
                r"“[^”]*”", "", line
            )  # a quote of the evidence is reported, not asserted
            if m := BLAME.search(quoted):
                kind = "counterfactual" if re.search(r"have$", m.group(0), re.I) else "blame"
                out.append(
                    Finding(
                        lineno,
                        "error",
                        f"{kind} wording: “{m.group(0)}”; describe what happened and why the system allowed it",
                    )
                )
            if key in NARRATIVE and CITATION.search(line) is None and _is_claim(line):
                out.append(
                    Finding(
                        lineno,
                        "warning",
                        "sentence cites no timeline event; add [E…] or move it to Open questions",
                    )
                )
    return out


def _is_claim(line: str) -> bool:
    text = line.strip()
    return (
        bool(text)
        and not text.startswith(("|", "**", "_", "```", "#", ">"))
        and len(text.split()) > 4
    )


def _names(doc: Document, names: list[str]) -> list[Finding]:
    out: list[Finding] = []
    lowered = [(n, n.casefold()) for n in names if len(n) > 2]
    for i, line in enumerate(doc.lines):
        lineno = i + 1 + doc.body_offset
        for m in EMAIL.finditer(line):
            if "[REDACTED" not in line[max(0, m.start() - 10) : m.end() + 10]:
                out.append(Finding(lineno, "error", f"personal email address: {m.group(0)}"))
        for m in HANDLE.finditer(line):
            if m.group(1).casefold() not in ROLE_HANDLES:
                out.append(
                    Finding(lineno, "error", f"person handle @{m.group(1)}: use a role instead")
                )
        for m in PERSON_VERB.finditer(line):
            out.append(
                Finding(
                    lineno, "warning", f"possible person name “{m.group(1)}”: use a role instead"
                )
            )
        folded = line.casefold()
        for name, low in lowered:
            if re.search(r"(?<!\w)" + re.escape(low) + r"(?!\w)", folded):
                out.append(Finding(lineno, "error", f"name “{name}” appears: use a role instead"))
    return out


def _actions(doc: Document) -> list[Finding]:
    section = doc.sections.get("action_items")
    if section is None:
        return []
    out: list[Finding] = []
    for n, item in enumerate(action_items_of(section), start=1):
        line = _line_of(doc, f"| {n} |", section.start)
        label = f"action item {n}"
        if not item.owner.strip() or item.owner.strip() == "-":
            out.append(Finding(line, "error", f"{label} has no owner (a role or team)"))
        elif EMAIL.search(item.owner) or (
            not TEAM_WORDS.search(item.owner)
            and re.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)+", item.owner.strip())
        ):
            out.append(
                Finding(
                    line,
                    "error",
                    f"{label} owner “{item.owner}” looks like a person: use a role or team",
                )
            )
        if item.priority not in get_args(Priority):
            out.append(
                Finding(line, "error", f"{label} priority “{item.priority}” must be P0, P1 or P2")
            )
        if item.type not in get_args(ActionType):
            out.append(
                Finding(
                    line,
                    "error",
                    f"{label} type “{item.type}” must be one of {', '.join(get_args(ActionType))}",
                )
            )
        end = item.end_state.strip()
        if not end or end == "-":
            out.append(Finding(line, "error", f"{label} has no verifiable end state"))
        elif len(end.split()) < 4 or not VERIFIABLE.search(end) or VAGUE.search(end):
            out.append(
                Finding(
                    line,
                    "error",
                    f"{label} end state “{end[:60]}” is not verifiable: say how anyone can tell it is done",
                )
            )
        if (vague := VAGUE.search(item.title)) is not None:
            out.append(
                Finding(
                    line,
                    "warning",
                    f"{label} title is vague (“{vague.group(0)}”): name the concrete change",
                )
            )  # type: ignore[union-attr]
    return out
