"""`retro check`: lint a postmortem draft, human-edited ones included.

Errors: missing sections, dangling citations, blame and counterfactual wording, names,
incomplete action items, a malformed action items table, a milestone time that does not
parse, and (with the bundle) a citation whose event is gone or changed. Warnings: vague
wording, uncited sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from retro.draft.render import MILESTONE_LABELS, REQUIRED_HEADINGS
from retro.draft.review import (
    CITATION,
    EVENT_ID,
    TIME_HINT,
    Document,
    action_items_of,
    milestone_rows,
    parse_document,
    time_parses,
    timeline_of,
)
from retro.models import ActionType, Priority
from retro.safety import policy

Severity = Literal["error", "warning"]
# a mail domain ends in a top-level label of letters: "web-app@2025.02.11.2" is a release
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,24}\b(?![.-]?\w)")
# A person's full name as an owner: capitalised words, accented letters included ("Søren Dahl")
_NAME_WORD = r"[A-ZÀ-ÖØ-ÞĀ-Ž][a-zß-öø-ÿā-ž]+"
_FULL_NAME = rf"{_NAME_WORD}( {_NAME_WORD})+"
HANDLE = re.compile(r"(?<![\w`\]:/.-])@([a-z][\w.-]{2,})\b", re.IGNORECASE)
ROLE_HANDLES = frozenset(
    {"here", "channel", "everyone", "oncall", "on-call", "sre", "sres", "team"}
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
    text: str,
    path: str = "<draft>",
    *,
    names: list[str] | None = None,
    events: dict[str, str] | None = None,
) -> list[Finding]:
    """Every finding for one draft, in line order.

    `events` maps each event id of the bundle's timeline to its render.evidence_hash; with it,
    citations are checked against the bundle too.
    """
    doc = parse_document(text, path)
    findings: list[Finding] = []
    findings += _sections(doc)
    findings += _citations(doc)
    findings += _wording(doc)
    findings += _names(doc, names or [])
    findings += _actions(doc)
    findings += _action_table(text)
    findings += _milestone_times(doc)
    if events is not None:
        findings += _bundle_citations(doc, events)
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
            kind = "counterfactual"
            m = policy.counterfactual(quoted)
            if m is None:
                kind, m = "blame", policy.blame(quoted)
            if m is not None:
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
        for pattern in policy.rules()["person_verbs"]:
            for m in pattern.finditer(line):
                out.append(
                    Finding(
                        lineno,
                        "warning",
                        f"possible person name “{m.group(1)}”: use a role instead",
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
            not policy.find("team_words", item.owner)
            and re.fullmatch(_FULL_NAME, item.owner.strip())
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
        elif len(end.split()) < 4 or not policy.find("verifiable", end) or policy.vague(end):
            out.append(
                Finding(
                    line,
                    "error",
                    f"{label} end state “{end[:60]}” is not verifiable: say how anyone can tell it is done",
                )
            )
        if (vague := policy.vague(item.title)) is not None:
            out.append(
                Finding(
                    line,
                    "warning",
                    f"{label} title is vague (“{vague.group(0)}”): name the concrete change",
                )
            )  # type: ignore[union-attr]
    return out


def _action_table(text: str) -> list[Finding]:
    """A table `retro file-actions` cannot read reliably would silently file nothing."""
    from retro.actions.table import table_problems

    return [
        Finding(p.line, "error", f"{p.message}; {p.hint}" if p.hint else p.message)
        for p in table_problems(text)
    ]


def _milestone_times(doc: Document) -> list[Finding]:
    """A milestone time a person edited into something unreadable: never overwritten, reported."""
    section = doc.sections.get("milestones")
    out: list[Finding] = []
    for name, cells in milestone_rows(section):
        if time_parses(cells[1]):
            continue
        assert section is not None
        label = MILESTONE_LABELS[name]
        out.append(
            Finding(
                _line_of(doc, label, section.start),
                "error",
                f"milestone {label} time “{cells[1][:60]}” does not parse: {TIME_HINT} "
                "(re-runs keep the table as written until it does)",
            )
        )
    return out


def _cited(doc: Document) -> dict[str, int]:
    """Every cited event id, with the 1-based file line where it is first cited."""
    out: dict[str, int] = {}
    for key, section in doc.sections.items():
        if key in ("timeline", "sources", "milestones"):
            continue
        for offset, line in enumerate(doc.lines[section.start : section.end]):
            for cid in CITATION.findall(line):
                out.setdefault(cid, section.start + offset + 1 + doc.body_offset)
    table = doc.sections.get("milestones")
    for name, cells in milestone_rows(table):
        assert table is not None
        for cid in EVENT_ID.findall(cells[2] if len(cells) > 2 else ""):
            out.setdefault(cid, _line_of(doc, MILESTONE_LABELS[name], table.start))
    return out


def _bundle_citations(doc: Document, events: dict[str, str]) -> list[Finding]:
    """Citations whose event is not in the bundle's timeline, or changed since the draft."""
    written = doc.meta.get("retro_evidence")
    written = written if isinstance(written, dict) else {}
    out: list[Finding] = []
    for cid, lineno in _cited(doc).items():
        before = written.get(cid)
        if cid not in events:
            out.append(
                Finding(
                    lineno,
                    "error",
                    f"citation [{cid}] is not an event of the bundle's timeline: the event is "
                    "gone or outside the incident window; cite another",
                )
            )
        elif before is not None and str(before) != events[cid]:
            out.append(
                Finding(
                    lineno,
                    "error",
                    f"citation [{cid}]: the event changed since this draft cited it; re-read "
                    f"it, fix what cites it, then delete {cid} from retro_evidence in the front "
                    "matter",
                )
            )
    return out
