"""The "## Action items" table of a postmortem's Markdown: read rows, rewrite single cells.

`retro file-actions` and `retro sync-actions` change only the Tracking, Status (and, when a
person added one, Assignee) cells of a row and keep every other byte of the file: line endings,
alignment, human edits elsewhere. Columns are found by their header names, so extra columns a
team adds (Components, Due) are read and the default table stays as `retro.render` writes it.

Each row has a stable identity, its marker label `retro-<12 hex>`: derived from the incident id
and the title when the row is first filed, and written into the Tracking cell before the issue
is created, so rewording the title afterwards keeps it (see `ActionRow.marker`).

`table_problems(text)` says whether the table is well-formed and, if not, what is wrong where;
`load` refuses a malformed table with the first problem, and `retro check` reports them all.
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
from retro.text import overlap

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
MARKER = re.compile(r"\bretro-[0-9a-f]{12}\b")
HEADER_HINT = (
    "keep the header retro wrote, with the |---| line under it: "
    "| # | Action | Type | Priority | Owner | End state | Evidence | Tracking | Status |"
)
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
    def written_marker(self) -> str:
        """The marker a filing run wrote into the Tracking cell before creating the issue."""
        found = MARKER.search(self.get("tracking"))
        return found.group(0) if found else ""

    @property
    def marker(self) -> str:
        """The row's identity: the marker written in Tracking, else derived from the title."""
        return self.written_marker or marker(self.incident_id, self.title)


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
    """The file's exact text (no newline translation), or a one-line RetroError.

    retro.files' rule: only a regular UTF-8 file within the draft size limit is read.
    """
    from retro.draft.review import read_draft

    return read_draft(path)


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


@dataclass(frozen=True)
class TableProblem:
    """One thing wrong with the action items table, at a 1-based line of the file."""

    line: int
    message: str
    hint: str


@dataclass
class _Table:
    header: int | None = None  # 0-based line indices into text.split("\n")
    columns: dict[str, int] = field(default_factory=dict)
    rows: list[int] = field(default_factory=list)
    problems: list[TableProblem] = field(default_factory=list)
    found_section: bool = False


_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BLOCK_START = re.compile(r"^\s{0,3}(#{1,6}\s|>|[-*+]\s|\d+[.)]\s|```|~~~|<)")
_LIST_ITEM = re.compile(r"^\s{0,3}([-*+]|\d+[.)])\s+\S")
_ITEM_NUMBER = re.compile(r"^\s*\d+\s*$")


def _section_range(lines: list[str]) -> tuple[int, int] | None:
    """(first, end) line indices of the `## Action items` section's body, fences respected."""
    from retro.draft.render import HEADING_TO_KEY

    fenced = False
    first: int | None = None
    for n, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if _FENCE.match(line):
            fenced = not fenced
            continue
        heading = None if fenced else _HEADING.match(line)
        if heading is None or len(heading.group(1)) > 2:
            continue
        if first is not None:
            return first, n
        if len(heading.group(1)) == 2 and HEADING_TO_KEY.get(heading.group(2).casefold()) == (
            "action_items"
        ):
            first = n + 1
    return (first, len(lines)) if first is not None else None


def _has_pipe(line: str) -> bool:
    return bool(_PIPE.search(line))


def _scan(lines: list[str]) -> _Table:
    """Find the action items table the way GitHub-flavoured Markdown reads it."""
    table = _Table()
    span = _section_range(lines)
    if span is None:
        return table
    table.found_section = True
    first, end = span
    for n in range(first, end):
        line = lines[n].rstrip("\r")
        below = lines[n + 1].rstrip("\r") if n + 1 < end else ""
        if line.lstrip().startswith("|") or (_has_pipe(line) and _SEPARATOR.match(below)):
            _read_table(lines, n, end, table)
            return table
    listed = next((n for n in range(first, end) if _LIST_ITEM.match(lines[n])), None)
    if listed is not None:
        table.problems.append(
            TableProblem(
                listed + 1,
                "the action items section has a list but no table: listed items are never filed",
                "write each action item as a row of the table; " + HEADER_HINT,
            )
        )
    return table  # no table: no action items


def _read_table(lines: list[str], n: int, end: int, table: _Table) -> None:
    header = lines[n].rstrip("\r")
    cells = [header[a:b] for a, b in split_cells(header)]
    separator = lines[n + 1].rstrip("\r") if n + 1 < end else ""
    problem = _header_problem(header, cells, separator, n)
    if problem is not None:
        table.problems.append(problem)
        return
    table.header, table.columns = n, _roles(cells)
    n += 2
    while n < end:
        line = lines[n].rstrip("\r")
        if not line.strip() or (_BLOCK_START.match(line) and not line.lstrip().startswith("|")):
            break
        if not _has_pipe(line):
            message = "text right under the action items table is read as one of its rows"
            hint = "leave a blank line between the table and the text"
            table.problems.append(TableProblem(n + 1, message, hint))
            return
        width = len(split_cells(line))
        if width > len(cells):
            message = f"action item row has {width} cells but the header has {len(cells)}"
            hint = "a | inside a cell must be written \\|"
            table.problems.append(TableProblem(n + 1, message, hint))
        table.rows.append(n)
        n += 1
    _later_tables(lines, n, end, table)


def _header_problem(header: str, cells: list[str], separator: str, n: int) -> TableProblem | None:
    """What is wrong with the table's header row (line n) and the |---| line under it."""
    missing = [r for r in ("title", "tracking", "status") if r not in _roles(cells)]
    if missing:
        if _SEPARATOR.match(header):
            message = "the action items table has no header row above its |---| line"
        elif _ITEM_NUMBER.match(cells[0] if cells else ""):
            message = "the action items table has no header row (its first row is an item)"
        else:
            name = missing[0].replace("title", "Action")
            message = f"the action items table has no {name} column"
        return TableProblem(n + 1, message, HEADER_HINT)
    if not _SEPARATOR.match(separator):
        message = "the action items table has no |---| line under its header, so Markdown "
        return TableProblem(n + 2, message + "shows no table", HEADER_HINT)
    if len(split_cells(separator)) != len(cells):
        message = (
            f"the |---| line has {len(split_cells(separator))} cells and the header "
            f"{len(cells)}, so Markdown shows no table"
        )
        return TableProblem(n + 2, message, "give the |---| line one cell per header column")
    return None


def _later_tables(lines: list[str], n: int, end: int, table: _Table) -> None:
    """Rows after the table (a blank line split it), or a second action items table, would
    silently not be filed; an unrelated table (no Action column) is fine."""
    m = n
    while m < end:
        line = lines[m].rstrip("\r")
        if not line.lstrip().startswith("|"):
            m += 1
            continue
        below = lines[m + 1].rstrip("\r") if m + 1 < end else ""
        if _SEPARATOR.match(below) and "title" not in _roles(
            [line[a:b] for a, b in split_cells(line)]
        ):
            m += 2
            while m < end and lines[m].strip():
                m += 1  # skip the unrelated table
            continue
        table.problems.append(
            TableProblem(
                m + 1,
                "a second action items table, or rows cut off by a blank line, is never filed",
                "keep every action item in the one table, with no blank line between rows",
            )
        )
        return


def _roles(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for i, name in enumerate(header):
        role = COLUMN_NAMES.get(" ".join(unescape(name).split()).casefold())
        if role and role not in columns:
            columns[role] = i
    return columns


def table_problems(text: str) -> list[TableProblem]:
    """What is wrong with the draft's action items table; empty when it is well-formed.

    A draft with no `## Action items` section, or a section with no table, has no problems
    here (it has no action items); a section that lists items without a table has one.
    """
    lines = text.split("\n")
    table = _scan(lines)
    problems = list(table.problems)
    seen: dict[str, int] = {}
    for n in table.rows:
        line = lines[n].rstrip("\r")
        tracking = table.columns["tracking"]
        spans = split_cells(line)
        cell = line[spans[tracking][0] : spans[tracking][1]] if tracking < len(spans) else ""
        written = MARKER.search(cell)
        if written and written.group(0) in seen:
            problems.append(
                TableProblem(
                    n + 1,
                    f"two rows carry the marker {written.group(0)} (lines {seen[written.group(0)]}"
                    f" and {n + 1})",
                    "a copied row must not keep the marker: set its Tracking cell to -",
                )
            )
        elif written:
            seen[written.group(0)] = n + 1
    return sorted(problems, key=lambda p: p.line)


def _rows(pm: PostmortemFile) -> list[ActionRow]:
    lines = pm.text.split("\n")
    table = _scan(lines)
    if not table.found_section:
        raise BundleError(
            pm.path, "has no `## Action items` section", hint="is this a retro postmortem?"
        )
    problems = table_problems(pm.text)
    if problems:
        first = problems[0]
        raise BundleError(pm.path, first.message, record=f"line {first.line}", hint=first.hint)
    rows = []
    for n in table.rows:
        line = lines[n].rstrip("\r")
        cells = [line[a:b] for a, b in split_cells(line)]
        rows.append(ActionRow(n, cells, table.columns, pm.incident_id))
    return rows


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
        found = same if _has_pipe(line) and find(same) else None
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


def incident_label(incident_id: str) -> str:
    """The incident id as a Jira label: labels cannot contain whitespace."""
    return re.sub(r"\s+", "-", incident_id.strip())[:255] or "incident"


def similarity(a: str, b: str) -> float:
    """Word Jaccard of two summaries, 0..1 (retro.text.overlap, the one overlap measure)."""
    return overlap(a, b, how="jaccard")
