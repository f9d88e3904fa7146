"""Read a postmortem's Markdown, edited or not, back into the Postmortem model."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from retro.draft.milestones import compute_metrics
from retro.draft.render import HEADING_TO_KEY, MILESTONE_LABELS
from retro.errors import BundleError
from retro.models import CLAIM_FIELDS, ActionItem, Claim, Milestone, Postmortem

CITATION = re.compile(r"\[(E[0-9a-fA-F]{1,12})\]")
_LABEL_TO_MILESTONE = {v.casefold(): k for k, v in MILESTONE_LABELS.items()}
_SENTENCE_END = re.compile(r"(?<=[.!?”\"])((?:\s*\[E[0-9a-fA-F]{1,12}\])*)\s+(?=[A-Z“\"(])")
_MD = MarkdownIt("commonmark").enable("table")


@dataclass
class Section:
    heading: str
    key: str | None
    start: int  # first body line (0-based)
    end: int
    body: str
    tokens: list[Token] = field(default_factory=list)


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
    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as exc:
        raise BundleError(
            path,
            f"front matter is not valid YAML ({exc})",
            hint="fix the YAML between the --- lines",
        ) from None
    rest_start = text.find("\n", end + 4)
    rest = text[rest_start + 1 :] if rest_start >= 0 else ""
    return (meta if isinstance(meta, dict) else {}), rest, text[: rest_start + 1].count("\n")


def parse_document(text: str, path: str = "<draft>") -> Document:
    meta, body, offset = split_front_matter(text, path)
    lines = body.splitlines()
    tokens = _MD.parse(body)
    title = ""
    heads: list[tuple[str, int]] = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            content = tokens[i + 1].content.strip()
            if tok.tag == "h1" and not title:
                title = content
            elif tok.tag == "h2":
                heads.append((content, tok.map[1]))
    sections: dict[str, Section] = {}
    for n, (heading, start) in enumerate(heads):
        end = heads[n + 1][1] - 1 if n + 1 < len(heads) else len(lines)
        body_text = "\n".join(lines[start:end]).strip()
        key = HEADING_TO_KEY.get(heading.casefold())
        sections[key or heading] = Section(
            heading, key, start, end, body_text, _MD.parse(body_text)
        )
    return Document(path, meta, title, sections, lines, offset)


def claims_from_text(text: str) -> list[Claim]:
    """Split prose into sentences, each with the citations written in it."""
    claims = []
    for sentence in _split_sentences(text):
        ids = CITATION.findall(sentence)
        clean = " ".join(CITATION.sub("", sentence).split())
        if clean and not clean.startswith("_None"):
            claims.append(Claim(text=clean, citations=list(dict.fromkeys(ids))))
    return claims


def _split_sentences(text: str) -> list[str]:
    marked = _SENTENCE_END.sub(lambda m: f"{m.group(1)}\x00", " ".join(text.split()))
    return [s.strip() for s in marked.split("\x00") if s.strip()]


def blocks(tokens: list[Token]) -> list[str]:
    """Text of each paragraph / list item, in order."""
    out = []
    for tok in tokens:
        if tok.type == "inline" and tok.content.strip():
            out.append(tok.content)
    return out


def claims_of(section: Section | None) -> list[Claim]:
    if section is None:
        return []
    return [c for block in blocks(section.tokens) for c in claims_from_text(block)]


def table(tokens: list[Token]) -> list[list[str]]:
    """Rows of the first table (header excluded) as cell texts."""
    rows: list[list[str]] = []
    current: list[str] | None = None
    in_body = False
    for i, tok in enumerate(tokens):
        if tok.type == "tbody_open":
            in_body = True
        elif tok.type == "tbody_close":
            break
        elif in_body and tok.type == "tr_open":
            current = []
        elif in_body and tok.type == "tr_close" and current is not None:
            rows.append(current)
        elif in_body and tok.type == "td_open" and current is not None:
            current.append(tokens[i + 1].content.strip() if tokens[i + 1].type == "inline" else "")
    return rows


def _time(value: str) -> datetime | None:
    value = value.strip().replace(" UTC", "")
    if not value or value.lower() in ("unknown", "-"):
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def milestones_of(section: Section | None) -> dict[str, Milestone]:
    out: dict[str, Milestone] = {}
    if section is None:
        return out
    for row in table(section.tokens):
        if len(row) < 2:
            continue
        name = _LABEL_TO_MILESTONE.get(row[0].strip("* ").casefold())
        if name is None:
            continue
        evidence = re.findall(r"E[0-9a-fA-F]{1,12}", row[2]) if len(row) > 2 else []
        try:
            confidence = float(row[3]) if len(row) > 3 else 0.0
        except ValueError:
            confidence = 0.0
        out[name] = Milestone(
            name=name,  # type: ignore[arg-type]
            at=_time(row[1]),
            evidence=evidence,  # type: ignore[arg-type]
            confidence=min(max(confidence, 0.0), 1.0),
            rule=row[4] if len(row) > 4 else "",
        )
    return out


def timeline_of(section: Section | None) -> list[dict[str, Any]]:
    if section is None:
        return []
    out = []
    for row in table(section.tokens):
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
    for row in table(section.tokens):
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
        services=list(meta.get("services") or []),
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


def _meta_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def read_postmortem(path: Path) -> Postmortem:
    """Parse a Markdown postmortem file into the model."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BundleError(
            path, "does not exist", hint="pass the path of a postmortem Markdown file"
        ) from None
    except UnicodeDecodeError:
        raise BundleError(path, "is not UTF-8 text", hint="save it as UTF-8") from None
    return to_postmortem(parse_document(text, str(path)))


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
