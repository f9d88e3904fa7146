"""The "## Action items" table of a postmortem's Markdown: read rows, rewrite single cells.

`retro file-actions` and `retro sync-actions` change only the Tracking, Status (and, when a
person added one, Assignee) cells of a row and keep every other byte of the file: line endings,
alignment, human edits elsewhere. Columns are found by their header names, so extra columns a
team adds (Components, Due) are read and the default table stays as `retro.render` writes it.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retro.errors import BundleError
from retro.models import stable_hash
from retro.review import CITATION, Document, parse_document, timeline_of

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
        lead = old[: len(old) - len(old.lstrip())] or " "
        trail = old[len(old.rstrip()) :] or " "
        text = wanted[index].replace("|", "\\|")
        body = body[:start] + lead + text + trail + body[end:]
    return body + cr


def replace_text(path: Path, text: str) -> None:
    """Write via a temp file, fsync and rename; keeps the file's permission bits."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_row(
    path: Path, *, find: Any, values: dict[str, str], what: str
) -> ActionRow:
    """Re-read the file, change the cells of the first row `find(row)` accepts, write it back."""
    text = read_file(path)
    pm = load(path, text)
    row = next((r for r in pm.rows if find(r)), None)
    if row is None:
        raise BundleError(
            path,
            f"cannot find the action item row for {what} any more",
            hint="was the file edited during the run? run the command again",
        )
    lines = text.split("\n")
    lines[row.line] = set_cells(lines[row.line], row.columns, values)
    new = "\n".join(lines)
    if new != text:
        replace_text(path, new)
    return row


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
        replace_text(path, new)
