"""The "## Action items" table of a postmortem's Markdown: read rows, rewrite single cells.

`retro file-actions` and `retro sync-actions` change only the Tracking, Status (and, when a
person added one, Assignee) cells of a row and keep every other byte of the file: line endings,
alignment, human edits elsewhere. Columns are found by their header names, so extra columns a
team adds (Components, Due) are read and the default table stays as `retro.render` writes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retro.draft.review import CITATION, Document, parse_document, timeline_of
from retro.errors import BundleError
from retro.files import write_atomic
from retro.models import stable_hash

# Header name (casefolded) -> column role. The first nine are the table retro.render writes.
COLUMN_NAMES = {
    "#": "number",
    "action": "title",
    "action item": "title",
    "title": "title",
    "type": "type",
    "priority": "priority",
    "owner": "owner",
    "end state": "end_state",
    "evidence": "evidence",
    "tracking": "tracking",
    "jira": "tracking",
    "status": "status",
    "component": "components",
    "components": "components",
    "due": "due",
    "due date": "due",
    "assignee": "assignee",
}
CLOSED_STATUSES = frozenset({"done", "wontfix", "skipped"})
JIRA_KEY = re.compile(r"\b[A-Z][A-Z0-9_]+-\d+\b")
_PIPE = re.compile(r"(?<!\\)\|")
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
_WORD = re.compile(r"[a-z0-9]+")


def is_open(item: Any) -> bool:
    """True while an action item still needs work: its status is not done, wontfix or skipped."""
    status = str(getattr(item, "status", item) or "proposed").strip().lower()
    return status not in CLOSED_STATUSES


def normalize_title(title: str) -> str:
    """Lowercase words only, so cosmetic edits (case, punctuation, spacing) keep the marker."""
    return " ".join(_WORD.findall(unescape(title).casefold()))


def marker(incident_id: str, title: str) -> str:
    """The stable label `retro-<hash>` of one action item of one incident."""
    return "retro-" + stable_hash(incident_id.strip(), normalize_title(title), length=12)


def unescape(text: str) -> str:
    return text.replace("\\|", "|").strip()


def split_cells(line: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each cell's content in a table line; pipes are the borders."""
    body = line.rstrip("\r")
    pipes = [m.start() for m in _PIPE.finditer(body)]
    edges = pipes if body.lstrip().startswith("|") else [-1, *pipes]
    spans = [(edges[i] + 1, edges[i + 1]) for i in range(len(edges) - 1)]
    tail = edges[-1] + 1 if edges else 0
    if body[tail:].strip() or not spans:
        spans.append((tail, len(body)))  # a last cell with no closing pipe
    return spans


@dataclass
class ActionRow:
    """One row of the action items table."""

    line: int  # 0-based index into the file's "\n"-separated lines
    cells: list[str]
    columns: dict[str, int]
    incident_id: str

    def get(self, role: str) -> str:
        i = self.columns.get(role)
        return unescape(self.cells[i]) if i is not None and i < len(self.cells) else ""

    @property
    def title(self) -> str:
        return self.get("title")

    @property
    def tracking(self) -> str:
        found = JIRA_KEY.search(self.get("tracking"))
        return found.group(0) if found else ""

    @property
    def status(self) -> str:
        return self.get("status").lower() or "proposed"

    @property
    def priority(self) -> str:
        return self.get("priority").upper()

    @property
    def citations(self) -> list[str]:
        return list(dict.fromkeys(CITATION.findall(self.get("evidence"))))

    @property
    def components(self) -> list[str]:
        raw = self.get("components")
        return [c.strip() for c in re.split(r"[,;]", raw) if c.strip() and c.strip() != "-"]

    @property
    def due(self) -> str:
        value = self.get("due")
        return "" if value in ("", "-") else value

    @property
    def marker(self) -> str:
        return marker(self.incident_id, self.title)


@dataclass
class PostmortemFile:
    """A postmortem Markdown file with its action items table located."""

    path: Path
    text: str
    doc: Document
    incident_id: str
    incident_title: str
    rows: list[ActionRow] = field(default_factory=list)
    timeline: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_file(path: Path) -> str:
    """The file's exact text (no newline translation), or a one-line BundleError."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise BundleError(path, "does not exist", hint="pass a postmortem Markdown file") from None
    except UnicodeDecodeError:
        raise BundleError(path, "is not UTF-8 text", hint="save it as UTF-8") from None


def load(path: Path, text: str | None = None) -> PostmortemFile:
    """Parse the postmortem and its action items table."""
    text = read_file(path) if text is None else text
    doc = parse_document(text, str(path))
    meta = doc.meta
    head, _, rest = doc.title.partition(":")
    incident_id = str(meta.get("incident_id") or (head.strip() if rest else "") or path.stem)
    incident_title = str(meta.get("title") or rest.strip() or doc.title)
    pm = PostmortemFile(path, text, doc, incident_id, incident_title)
    pm.rows = _rows(pm)
    pm.timeline = {row["id"]: row for row in timeline_of(doc.sections.get("timeline"))}
    return pm


def _rows(pm: PostmortemFile) -> list[ActionRow]:
    section = pm.doc.sections.get("action_items")
    if section is None:
        raise BundleError(
            pm.path, "has no `## Action items` section", hint="is this a retro postmortem?"
        )
    lines = pm.text.split("\n")
    first = pm.doc.body_offset + section.start
    last = min(pm.doc.body_offset + section.end, len(lines))
    rows: list[ActionRow] = []
    columns: dict[str, int] | None = None
    for n in range(first, last):
        line = lines[n].rstrip("\r")
        if not line.strip().startswith("|"):
            if columns is not None and rows:
                break  # the first table ends; later tables are not action items
            continue
        if _SEPARATOR.match(line):
            continue
        cells = [line[a:b] for a, b in split_cells(line)]
        if columns is None:
            columns = _columns(pm.path, cells, n)
            continue
        rows.append(ActionRow(n, cells, columns, pm.incident_id))
    return rows


def _columns(path: Path, header: list[str], line: int) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        role = COLUMN_NAMES.get(" ".join(name.split()).casefold())
        if role and role not in columns:
            columns[role] = i
    for needed in ("title", "tracking", "status"):
        if needed not in columns:
            raise BundleError(
                path,
                f"the action items table has no {needed.replace('title', 'Action')} column",
                record=f"line {line + 1}",
                hint="keep the table header retro wrote: | # | Action | … | Tracking | Status |",
            )
    return columns


def set_cells(line: str, columns: dict[str, int], values: dict[str, str]) -> str:
    """The line with the cells of the given roles replaced; every other character is kept."""
    cr = "\r" if line.endswith("\r") else ""
    body = line[: len(line) - len(cr)]
    spans = split_cells(body)
    wanted = {columns[role]: value for role, value in values.items() if role in columns}
    if wanted and max(wanted) >= len(spans):
        # A row with fewer cells than the header: pad it so the target cell exists.
        missing = max(wanted) + 1 - len(spans)
        base = body.rstrip()
        closed = base.endswith("|") and not base.endswith("\\|")
        body = base + ("" if closed else " |") + "  |" * missing
        spans = split_cells(body)
    for index in sorted(wanted, reverse=True):
        start, end = spans[index]
        old = body[start:end]
        # Keep the cell's own padding; a blank cell gets one space each side.
        lead = old[: len(old) - len(old.lstrip())] if old.strip() else " "
        trail = old[len(old.rstrip()) :] if old.strip() else " "
        text = wanted[index].replace("|", "\\|")
        body = body[:start] + lead + text + trail + body[end:]
    return body + cr


def update_row(path: Path, row: ActionRow, values: dict[str, str], *, find: Any) -> None:
    """Re-read the file and change cells of the row `find(row)` accepts; write it back."""
    text = read_file(path)
    lines = text.split("\n")
    found: ActionRow | None = None
    if row.line < len(lines):
        # Fast path: the row is still on its line (only cells changed since it was read).
        line = lines[row.line].rstrip("\r")
        same = ActionRow(
            row.line, [line[a:b] for a, b in split_cells(line)], row.columns, row.incident_id
        )
        found = same if line.lstrip().startswith("|") and find(same) else None
    if found is None:
        found = next((r for r in load(path, text).rows if find(r)), None)
    if found is None:
        raise BundleError(
            path,
            f"cannot find the row of action item “{row.title}” any more",
            hint="was the file edited during the run? run the command again",
        )
    lines[found.line] = set_cells(lines[found.line], found.columns, values)
    new = "\n".join(lines)
    if new != text:
        write_atomic(path, new)


def update_rows(path: Path, changes: list[tuple[str, dict[str, str]]]) -> None:
    """Apply (tracking key -> cell values) to every row tracking that key, in one write."""
    text = read_file(path)
    pm = load(path, text)
    lines = text.split("\n")
    by_key = dict(changes)
    for row in pm.rows:
        values = by_key.get(row.tracking)
        if values:
            lines[row.line] = set_cells(lines[row.line], row.columns, values)
    new = "\n".join(lines)
    if new != text:
        write_atomic(path, new)


# --- matching action items across incidents --------------------------------------------------

_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "for",
        "to",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "into",
        "is",
        "are",
        "be",
        "this",
        "that",
        "it",
        "its",
        "as",
    ]
)


def incident_label(incident_id: str) -> str:
    """The incident id as a Jira label: labels cannot contain whitespace."""
    return re.sub(r"\s+", "-", incident_id.strip())[:255] or "incident"


def tokens(text: str) -> set[str]:
    """Content words of a summary, lightly stemmed (plural s)."""
    words = re.findall(r"[a-z0-9]+", text.casefold())
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words if w not in _STOPWORDS}


def similarity(a: str, b: str) -> float:
    """Token Jaccard of two summaries, 0..1."""
    ta, tb = tokens(a), tokens(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0


# --- one action item as a Jira issue description (ADF for REST v3, wiki markup for v2) ----------

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
