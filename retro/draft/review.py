"""Read a postmortem's Markdown, edited or not, back into the Postmortem model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from retro.draft.milestones import compute_metrics
from retro.draft.render import HEADING_TO_KEY, MILESTONE_LABELS
from retro.errors import BundleError
from retro.files import load_yaml, read_text
from retro.models import CLAIM_FIELDS, ActionItem, Claim, Milestone, Postmortem
from retro.text import split_sentences

CITATION = re.compile(r"\[(E[0-9a-fA-F]{1,16})\]")
EVENT_ID = re.compile(r"\bE[0-9a-fA-F]{1,16}\b")
_LABEL_TO_MILESTONE = {v.casefold(): k for k, v in MILESTONE_LABELS.items()}
# Block structure only: the inline rules would build child tokens nobody reads, and they are
# half the cost of a big draft. Each inline token still carries its raw text as `content`.
# Pipe tables are read line by line (_tables), as GitHub-flavoured Markdown reads them:
# markdown-it's table rule builds a dozen tokens per row and costs 0.3 ms a row.
_MD = MarkdownIt("commonmark").disable("inline")
MAX_DRAFT_BYTES = 5_000_000
MAX_DRAFT_LINES = 50_000
MAX_FRONT_MATTER_BYTES = 256_000
MAX_COLUMNS = 64
"""What `show`, `check`, `generate` and the action commands read: a draft retro writes is far
under these (about 150 KB and 600 lines; its Timeline table holds a few hundred rows), and the
Markdown parser's cost grows with both bytes and lines. A table wider than MAX_COLUMNS is not
read as a table. See docs/drafts.md (Limits)."""


@dataclass
class Section:
    heading: str
    key: str | None
    start: int  # first body line (0-based)
    end: int
    body: str
    tokens: list[Token] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # the body's lines, start to end


@dataclass
class Document:
    path: str
    meta: dict[str, Any]
    title: str
    sections: dict[str, Section]
    lines: list[str]
    body_offset: int


def split_front_matter(text: str, path: str) -> tuple[dict[str, Any], str, int]:
    if not text.startswith("---"):
        return {}, text, 0
    end = text.find("\n---", 3)
    if end < 0:
        raise BundleError(
            path, "front matter is not closed", record="line 1", hint="end it with a line `---`"
        )
    if end > MAX_FRONT_MATTER_BYTES:
        raise BundleError(
            path,
            f"front matter is over {MAX_FRONT_MATTER_BYTES // 1000} KB",
            record="line 1",
            hint="retro writes a few KB there; remove what was pasted into it",
        )
    meta = load_yaml(text[3:end], path, what="front matter")
    rest_start = text.find("\n", end + 4)
    rest = text[rest_start + 1 :] if rest_start >= 0 else ""
    return (meta if isinstance(meta, dict) else {}), rest, text[: rest_start + 1].count("\n")


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR as LF: Markdown parsers and editors count lines that way."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def parse_document(text: str, path: str = "<draft>") -> Document:
    """Front matter, title and `##` sections of a draft, parsed once, in time linear in its size.

    Line numbers count LF, CRLF and lone CR alike, as the Markdown parser and editors do.
    """
    text = normalize_newlines(text)
    meta, body, offset = split_front_matter(text, path)
    lines = body.split("\n")
    tokens = _MD.parse(body)
    title = ""
    # heading text, its first line, the first line after it, its first token
    heads: list[tuple[str, int, int, int]] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            content = tokens[i + 1].content.strip()
            if tok.tag == "h1" and not title:
                title = content
            elif tok.tag == "h2":
                heads.append((content, tok.map[0], tok.map[1], i))
    sections: dict[str, Section] = {}
    for n, (heading, _, start, first) in enumerate(heads):
        last = heads[n + 1][3] if n + 1 < len(heads) else len(tokens)
        end = heads[n + 1][1] if n + 1 < len(heads) else len(lines)
        body_text = "\n".join(lines[start:end]).strip()
        key = HEADING_TO_KEY.get(heading.casefold())
        sections[key or heading] = Section(
            heading, key, start, end, body_text, tokens[first + 3 : last], lines[start:end]
        )
    return Document(path, meta, title, sections, lines, offset)


def claims_from_text(text: str) -> list[Claim]:
    """Split prose into sentences, each with the citations written in it."""
    claims = []
    for sentence in split_sentences(" ".join(text.split())):
        ids = CITATION.findall(sentence)
        clean = " ".join(CITATION.sub("", sentence).split())
        if clean and not clean.startswith("_None"):
            claims.append(Claim(text=clean, citations=list(dict.fromkeys(ids))))
    return claims


def blocks(tokens: list[Token]) -> list[str]:
    """Text of each paragraph / list item / table cell, in order."""
    out = []
    for tok in tokens:
        if tok.type == "inline" and tok.content.strip():
            if tok.level == 1 and "|" in tok.content and "-" in tok.content:
                out.extend(_paragraph_blocks(tok.content))
            else:
                out.append(tok.content)
    return out


def _paragraph_blocks(content: str) -> list[str]:
    """A paragraph that holds a pipe table: the text before it, then each non-empty cell."""
    lines = content.split("\n")
    found = _tables(lines)
    if not found:
        return [content]
    first = found[0]
    before = "\n".join(lines[: first.start]).strip()
    cells = [c for row in [first.header, *first.rows] for c in row if c.strip()]
    # What ends the table inside the paragraph (an ordered item "2. …") starts a block of its own.
    after = _LIST_MARKER.sub("", "\n".join(lines[first.end :]).strip(), count=1)
    return ([before] if before else []) + cells + ([after] if after else [])


def claims_of(section: Section | None) -> list[Claim]:
    if section is None:
        return []
    return [c for block in blocks(section.tokens) for c in claims_from_text(block)]


# --- pipe tables, read the way GitHub-flavoured Markdown (and markdown-it) reads them -----------

_CELL_PIPE = re.compile(r"(?<!\\)\|")
_DELIMITER_CELL = re.compile(r":?-+:?")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# What ends a table (and a paragraph): a fence, quote, rule, list item, heading or HTML block.
_BLOCK_START = re.compile(
    r"^ {0,3}(?:`{3}|~{3}|>|([-*_])(?:[ \t]*\1){2,}[ \t]*$|[-+*](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)"
    r"|#{1,6}(?:[ \t]|$)|<[A-Za-z/!?])"
)


_LIST_MARKER = re.compile(r"^(?:[-+*]|\d{1,9}[.)])[ \t]+")


@dataclass
class PipeTable:
    start: int  # index of the header line
    end: int  # index after the last row
    header: list[str]
    rows: list[list[str]]


def _cells(line: str, limit: int) -> list[str]:
    """The cells of a table line, at most `limit` of them (a longer row's extra cells are
    ignored, as GitHub ignores them), without splitting the rest of a very long line."""
    text = line.strip()
    lead = text.startswith("|")
    parts = _CELL_PIPE.split(text, maxsplit=limit + lead)
    if lead and parts and parts[0].strip() == "":
        parts = parts[1:]
    if len(parts) <= limit and parts and parts[-1].strip() == "" and text.endswith("|"):
        parts = parts[:-1]
    return [p.strip().replace("\\|", "|") for p in parts[:limit]] + (
        [""] if len(parts) > limit else []
    )


def _delimiter(line: str, columns: int) -> bool:
    text = line.strip()
    if not text or text[0] not in "|-:" or not set(text) <= set("|-: \t"):
        return False
    cells = [c.strip() for c in text.split("|", columns + 2)]
    if cells and cells[0] == "":
        cells = cells[1:]
    if cells and cells[-1] == "":
        cells = cells[:-1]
    return len(cells) == columns and all(_DELIMITER_CELL.fullmatch(c) for c in cells)


def _tables(lines: list[str]) -> list[PipeTable]:
    """Every pipe table in lines (outside fenced code), with rows padded or cut to the header."""
    found: list[PipeTable] = []
    fence: str | None = None
    n = 0
    while n < len(lines):
        line = lines[n]
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            n += 1
            continue
        if opened:
            fence = opened.group(1)
            n += 1
            continue
        if (
            n + 1 < len(lines)
            and _CELL_PIPE.search(line)
            and not line.startswith("    ")
            and not _BLOCK_START.match(line)
        ):
            header = _cells(line, MAX_COLUMNS)
            if len(header) < MAX_COLUMNS + 1 and _delimiter(lines[n + 1], len(header)):
                rows: list[list[str]] = []
                m = n + 2
                while m < len(lines):
                    row = lines[m]
                    if not row.strip() or row.startswith("    ") or _BLOCK_START.match(row):
                        break
                    cells = _cells(row, len(header))
                    rows.append((cells + [""] * len(header))[: len(header)])
                    m += 1
                found.append(PipeTable(n, m, header, rows))
                n = m
                continue
        n += 1
    return found


def section_table(section: Section) -> list[list[str]]:
    """Rows of the section's first table (header excluded) as cell texts.

    A table is found where markdown-it's table rule would find one: in a top-level
    paragraph (which a table starts or interrupts), never in a quote, list or HTML block.
    """
    for tok in section.tokens:
        if tok.type == "paragraph_open" and tok.level == 0 and tok.map:
            lines = section.lines[tok.map[0] - section.start : tok.map[1] - section.start]
            found = _tables(lines)
            if found:
                return found[0].rows
    return []


_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%z",
)
TIME_HINT = "write it as YYYY-MM-DD HH:MM[:SS] in UTC, or `unknown`"


def is_unknown_time(value: str) -> bool:
    """True for a time cell that says no time on purpose: empty, `unknown` or `-`."""
    return value.strip().replace(" UTC", "").lower() in ("", "unknown", "-")


def _time(value: str) -> datetime | None:
    """A table's time cell as aware UTC; None when it is unknown or does not parse."""
    value = value.strip().replace(" UTC", "")
    if is_unknown_time(value):
        return None
    for fmt in _TIME_FORMATS:
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        try:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            return None
    return None


def time_parses(value: str) -> bool:
    """True when a time cell is a time retro reads, or unknown on purpose."""
    return is_unknown_time(value) or _time(value) is not None


def milestone_rows(section: Section | None) -> list[tuple[str, list[str]]]:
    """(milestone name, cells) of each row of the milestones table that names a milestone."""
    if section is None:
        return []
    out = []
    for row in section_table(section):
        name = _LABEL_TO_MILESTONE.get(row[0].strip("* ").casefold()) if row else None
        if name is not None and len(row) >= 2:
            out.append((name, row))
    return out


def milestones_of(section: Section | None) -> dict[str, Milestone]:
    out: dict[str, Milestone] = {}
    for name, row in milestone_rows(section):
        evidence = EVENT_ID.findall(row[2]) if len(row) > 2 else []
        try:
            confidence = float(row[3]) if len(row) > 3 else 0.0
        except ValueError:
            confidence = 0.0
        if confidence != confidence:  # NaN
            confidence = 0.0
        out[name] = Milestone(
            name=name,  # type: ignore[arg-type]
            at=_time(row[1]),
            evidence=evidence,
            confidence=min(max(confidence, 0.0), 1.0),
            rule=row[4] if len(row) > 4 else "",
        )
    return out


def timeline_of(section: Section | None) -> list[dict[str, Any]]:
    if section is None:
        return []
    out = []
    for row in section_table(section):
        if len(row) < 6:
            continue
        at = _time(row[0])
        text = row[4].replace("\\|", "|")
        out.append(
            {
                "id": row[5].strip(),
                "at": at.isoformat().replace("+00:00", "Z") if at else row[0],
                "source": row[1],
                "kind": row[2],
                "actor": row[3],
                "text": text.removeprefix("★ "),
                "key": text.startswith("★"),
            }
        )
    return out


def action_items_of(section: Section | None) -> list[ActionItem]:
    if section is None:
        return []
    items = []
    for row in section_table(section):
        if len(row) < 9:
            row = row + [""] * (9 - len(row))
        _, title, kind, priority, owner, end_state, evidence, tracking, status = row[:9]
        items.append(
            ActionItem.model_construct(
                title=title,
                type=kind.strip().lower(),
                priority=priority.strip().upper(),
                owner=owner,
                end_state=end_state,
                citations=CITATION.findall(evidence),
                tracking="" if tracking.strip() in ("-", "") else tracking.strip(),
                status=(status.strip().lower() or "proposed"),
                origin="human",
            )
        )
    return items


def root_cause_of(section: Section | None) -> tuple[list[Claim], list[Claim]]:
    """(trigger, root cause) from the **Trigger** / **Root cause** parts."""
    if section is None:
        return [], []
    trigger: list[Claim] = []
    cause: list[Claim] = []
    target = cause
    for block in blocks(section.tokens):
        label = block.strip("* ").casefold()
        if label == "trigger":
            target = trigger
            continue
        if label == "root cause":
            target = cause
            continue
        target.extend(claims_from_text(block))
    return trigger, cause


def questions_of(section: Section | None) -> list[str]:
    if section is None:
        return []
    return [" ".join(b.split()) for b in blocks(section.tokens) if not b.startswith("_None")]


def to_postmortem(doc: Document) -> Postmortem:
    s = doc.sections.get
    meta = doc.meta
    trigger, cause = root_cause_of(s("root_cause"))
    milestones = milestones_of(s("milestones"))
    incident_id = str(meta.get("incident_id") or doc.title.split(":", 1)[0] or Path(doc.path).stem)
    title = str(
        meta.get("title") or (doc.title.split(":", 1)[1].strip() if ":" in doc.title else doc.title)
    )
    return Postmortem.model_construct(
        incident_id=incident_id,
        title=title,
        severity=meta.get("severity"),
        status=meta.get("status", "draft"),
        services=_meta_list(meta.get("services")),
        engine=meta.get("engine", "human"),
        model=meta.get("model"),
        generator_version=meta.get("generator_version", ""),
        started=_meta_time(meta.get("started")),
        ended=_meta_time(meta.get("ended")),
        summary=claims_of(s("summary")),
        impact=claims_of(s("impact")),
        detection=claims_of(s("detection")),
        response=claims_of(s("response")),
        recovery=claims_of(s("recovery")),
        root_cause=cause,
        trigger=trigger,
        contributing_factors=claims_of(s("contributing_factors")),
        went_well=claims_of(s("went_well")),
        went_poorly=claims_of(s("went_poorly")),
        got_lucky=claims_of(s("got_lucky")),
        action_items=action_items_of(s("action_items")),
        open_questions=questions_of(s("open_questions")),
        milestones=milestones,
        metrics=compute_metrics(milestones),
        timeline=timeline_of(s("timeline")),
        similar=[],
        sources=[],
        redactions={},
    )


def _meta_list(value: Any) -> list[str]:
    """A front-matter list of names; a person may have written one name, or anything at all."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    return []


def _meta_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def read_draft(path: Path) -> str:
    """A draft's text, line endings kept: a regular UTF-8 file within the limits above."""
    text = read_text(path, max_bytes=MAX_DRAFT_BYTES, what="postmortem Markdown file")
    lines = text.count("\n") + text.count("\r") - text.count("\r\n")
    if lines > MAX_DRAFT_LINES:
        raise BundleError(
            path,
            f"has {lines} lines, over the limit of {MAX_DRAFT_LINES} for a postmortem Markdown file",
            hint="see docs/drafts.md (Limits)",
        )
    return text


def read_postmortem(path: Path) -> Postmortem:
    """Parse a Markdown postmortem file into the model."""
    return to_postmortem(parse_document(read_draft(path), str(path)))


def all_citations(pm: Postmortem) -> list[str]:
    """Every event id the postmortem cites, in first-seen order."""
    ids: list[str] = []
    for name in CLAIM_FIELDS:
        for claim in getattr(pm, name):
            ids.extend(claim.citations)
    for item in pm.action_items:
        ids.extend(item.citations)
    for q in pm.open_questions:
        ids.extend(CITATION.findall(q))
    return list(dict.fromkeys(ids))


def show_json(pm: Postmortem) -> dict[str, Any]:
    """The object `retro show --json` prints."""

    def iso(at: datetime | None) -> str | None:
        return at.isoformat().replace("+00:00", "Z") if at else None

    return {
        "incident_id": pm.incident_id,
        "title": pm.title,
        "severity": pm.severity,
        "status": pm.status,
        "services": pm.services,
        "milestones": {
            n: {"at": iso(m.at), "evidence": m.evidence, "confidence": m.confidence, "rule": m.rule}
            for n, m in pm.milestones.items()
        },
        "metrics": pm.metrics.model_dump(),
        "timeline": [
            {k: r.get(k) for k in ("id", "at", "source", "kind", "actor", "text")}
            for r in pm.timeline
        ],
        "summary": [c.model_dump() for c in pm.summary],
        "root_cause": [c.model_dump() for c in pm.trigger + pm.root_cause],
        "contributing_factors": [c.model_dump() for c in pm.contributing_factors],
        "action_items": [
            {
                k: getattr(a, k)
                for k in ("title", "type", "priority", "owner", "end_state", "tracking", "status")
            }
            for a in pm.action_items
        ],
        "open_questions": pm.open_questions,
        "citations": all_citations(pm),
    }
