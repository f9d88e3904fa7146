"""Render a Postmortem to Markdown that people edit like code and `retro.review` reads back."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

import yaml

from retro.draft.milestones import human_duration
from retro.models import MILESTONES, Claim, Postmortem, TimelineEvent, stable_hash

# (front-matter key, heading, Postmortem field or None for built sections)
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("milestones", "Milestones and metrics"),
    ("impact", "Impact"),
    ("detection", "Detection"),
    ("response", "Response"),
    ("recovery", "Recovery"),
    ("root_cause", "Root cause and trigger"),
    ("contributing_factors", "Contributing factors"),
    ("timeline", "Timeline"),
    ("went_well", "What went well"),
    ("went_poorly", "What went poorly"),
    ("got_lucky", "Where we got lucky"),
    ("action_items", "Action items"),
    ("open_questions", "Open questions"),
    ("similar", "Similar past incidents"),
    ("sources", "Sources"),
)
REQUIRED_HEADINGS = tuple(h for _, h in SECTIONS)
HEADING_TO_KEY = {h.casefold(): k for k, h in SECTIONS}
MILESTONE_LABELS = {
    "impact_start": "Impact start",
    "detected": "Detected",
    "acknowledged": "Acknowledged",
    "declared": "Declared",
    "mitigated": "Mitigated",
    "resolved": "Resolved",
    "first_update": "First customer update",
}
METRIC_LABELS = {
    "time_to_detect_s": "Time to detect",
    "time_to_acknowledge_s": "Time to acknowledge",
    "time_to_mitigate_s": "Time to mitigate",
    "time_to_resolve_s": "Time to resolve",
    "duration_s": "Impact duration",
    "time_to_first_update_s": "Time to first customer update",
}
OPTIONAL_METRICS = frozenset({"time_to_first_update_s"})  # shown only when the evidence has one
EMPTY = "_None found in the evidence._"


def ts(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "unknown"


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def cite(ids: list[str]) -> str:
    return "".join(f"[{i}]" for i in ids)


def claim_line(claim: Claim) -> str:
    refs = cite(claim.citations)
    return f"{claim.text} {refs}".rstrip()


def claims_block(claims: list[Claim], *, paragraph: bool = False) -> str:
    if not claims:
        return EMPTY
    if paragraph:
        return " ".join(claim_line(c) for c in claims)
    return "\n".join(f"- {claim_line(c)}" for c in claims)


# --- hashes: how a re-run tells a person's edits from what retro wrote ---------------------------
#
# `retro_hashes` in the front matter holds, for each section, the hash of the body retro
# generated from the evidence alone, before any human edit was applied. A section whose text
# does not match is a person's, and stays so on every later run: retro never re-hashes a
# person's text as its own. The milestones table also gets a hash per row
# (`milestones.<name>`) and one of the rest of the section (`milestones.rest`), so an edited
# time is kept as an override while the other rows follow new evidence.

_PIPE = re.compile(r"(?<!\\)\|")
_SEPARATOR_CELL = re.compile(r":?-+:?")
_LABEL_TO_MILESTONE = {v.casefold(): k for k, v in MILESTONE_LABELS.items()}


def _canonical(body: str) -> str:
    """The body with layout normalized: a Markdown formatter's changes are not edits."""
    out = []
    for raw in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("|"):
            cells = [" ".join(c.split()) for c in _PIPE.split(line.strip("|"))]
            if all(_SEPARATOR_CELL.fullmatch(c) for c in cells if c):
                line = "|---|"
            else:
                line = "|".join(cells)
        else:
            line = " ".join(line.split())
        out.append(line)
    return "\n".join(out)


def section_hash(body: str) -> str:
    """Hash of a section body as the generator wrote it; a different hash means a human edited it."""
    return hashlib.sha1(_canonical(body).encode("utf-8")).hexdigest()[:12]


def legacy_section_hash(body: str) -> str:
    """section_hash as retro before 0.x wrote it, so drafts it wrote still read as unedited."""
    normalized = "\n".join(line.rstrip() for line in body.strip().splitlines())
    return hashlib.sha1(normalized.encode("utf-8")).hexdigest()[:12]


def unedited(stored: object, body: str) -> bool:
    """True when body is what retro wrote for a section whose stored hash is `stored`."""
    return isinstance(stored, str) and stored in (section_hash(body), legacy_section_hash(body))


def row_hash(cells: list[str]) -> str:
    """Hash of one table row's cells as a Markdown parser reads them back."""
    return stable_hash(*(" ".join(c.split()) for c in cells))


def milestone_row_of(line: str) -> str | None:
    """The milestone a table line is the row of, or None."""
    if not line.lstrip().startswith("|"):
        return None
    cells = _PIPE.split(line.strip().strip("|"))
    return _LABEL_TO_MILESTONE.get(cells[0].strip().strip("* ").casefold()) if cells else None


def rest_hash(body: str) -> str:
    """Hash of the milestones section without its milestone rows (metrics, notes, diagram)."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return section_hash("\n".join(line for line in lines if milestone_row_of(line) is None))


def milestone_cells(pm: Postmortem) -> dict[str, list[str]]:
    """The cells of each milestone's row, as they read back from the Markdown."""
    out = {}
    for name in MILESTONES:
        m = pm.milestones.get(name)
        if m is not None:
            out[name] = [
                MILESTONE_LABELS[name],
                ts(m.at),
                ", ".join(m.evidence) or "-",
                f"{m.confidence:.2f}",
                " ".join(m.rule.split()) or "-",
            ]
    return out


def milestone_hashes(pm: Postmortem) -> dict[str, str]:
    """`milestones.<name>` -> hash of the row, for the milestones as retro inferred them."""
    return {f"milestones.{name}": row_hash(c) for name, c in milestone_cells(pm).items()}


def evidence_hash(event: TimelineEvent) -> str:
    """A short hash of what a cited event says and when: `retro check --bundle` compares it."""
    at = event.at.isoformat() if event.at else ""
    return stable_hash(event.key, at, event.text, length=8)


def milestones_body(pm: Postmortem) -> str:
    lines = ["| Milestone | Time (UTC) | Evidence | Confidence | Rule |", "|---|---|---|---|---|"]
    for cells in milestone_cells(pm).values():
        lines.append("| " + " | ".join(cell(c) for c in cells) + " |")
    lines += [
        "",
        "Edit a time above to override it; `retro show` recomputes the metrics from this table.",
        "",
    ]
    lines += ["| Metric | Value |", "|---|---|"]
    for key, label in METRIC_LABELS.items():
        value = getattr(pm.metrics, key)
        if value is None and key in OPTIONAL_METRICS:
            continue
        lines.append(f"| {label} | {human_duration(value)} |")
    lines += ["", mermaid(pm)]
    return "\n".join(lines)


def mermaid(pm: Postmortem) -> str:
    nodes = sorted(
        (
            (n, pm.milestones[n].at)
            for n in MILESTONES
            if n in pm.milestones and pm.milestones[n].at
        ),
        key=lambda node: node[1],  # type: ignore[arg-type,return-value]
    )
    if not nodes:
        return ""
    lines = ["```mermaid", "flowchart LR"]
    first = nodes[0][1]
    for i, (name, at) in enumerate(nodes):
        assert at is not None and first is not None
        offset = human_duration(int((at - first).total_seconds()))
        lines.append(f'    m{i}["{MILESTONE_LABELS[name]}<br/>{at:%H:%M} UTC<br/>+{offset}"]')
    lines += [f"    m{i} --> m{i + 1}" for i in range(len(nodes) - 1)]
    lines.append("```")
    return "\n".join(lines)


def root_cause_body(pm: Postmortem) -> str:
    parts = [
        "**Trigger**",
        "",
        claims_block(pm.trigger),
        "",
        "**Root cause**",
        "",
        claims_block(pm.root_cause),
    ]
    return "\n".join(parts)


def timeline_body(pm: Postmortem) -> str:
    lines = ["| Time (UTC) | Source | Kind | Actor | Event | Id |", "|---|---|---|---|---|---|"]
    omitted = 0
    for row in pm.timeline:
        if "omitted" in row:
            omitted = int(row["omitted"])
            continue
        star = "★ " if row.get("key") else ""
        lines.append(
            f"| {row['at']} | {row['source']} | {row['kind']} | {cell(row.get('actor', ''))} | "
            f"{star}{cell(row['text'])} | {row['id']} |"
        )
    if omitted:
        lines.append(
            f"\n{omitted} routine events are not shown; `retro timeline --bundle …` lists them all."
        )
    lines.append("\n★ marks the evidence for a milestone.")
    return "\n".join(lines)


def actions_body(pm: Postmortem) -> str:
    if not pm.action_items:
        return EMPTY
    lines = [
        "| # | Action | Type | Priority | Owner | End state | Evidence | Tracking | Status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, item in enumerate(pm.action_items, start=1):
        lines.append(
            f"| {n} | {cell(item.title)} | {item.type} | {item.priority} | {cell(item.owner)} | "
            f"{cell(item.end_state)} | {cite(item.citations) or '-'} | {item.tracking or '-'} | {item.status} |"
        )
    lines.append(
        "\nSet Status to `approved` (or leave `proposed`) to file an item with `retro file-actions`; "
        "`skipped` never files it."
    )
    return "\n".join(lines)


def questions_body(pm: Postmortem) -> str:
    return "\n".join(f"- {q}" for q in pm.open_questions) if pm.open_questions else EMPTY


def similar_body(pm: Postmortem) -> str:
    if not pm.similar:
        return "_No similar past incidents found (index postmortems with `retro index add`)._"
    lines = []
    for s in pm.similar:
        link = f"[{s.id}: {s.title}]({s.url})" if s.url else f"{s.id}: {s.title}"
        why = f" — {'; '.join(s.why[:2])}" if s.why else ""
        lines.append(f"- {link} (score {s.score:.2f}){why}")
        lines += [
            f"  - **This repeats {s.id}; its action item “{a}” is still open.**"
            for a in s.open_action_items
        ]
    return "\n".join(lines)


# Drafting steps that report in Sources beside the harvested sources: each reads as one line
# of counts under its own heading, not as a source with files and records.
STEP_HEADINGS = {
    "timeline": "**Normalization** left out:",
    "policy": "**Left out by policy**:",
    "offline engine fallback": "**Offline engine fallback**:",
}


def sources_body(pm: Postmortem) -> str:
    lines = []
    for r in pm.sources:
        if r.name in STEP_HEADINGS:
            counts = ", ".join(f"{n} {reason}" for reason, n in sorted(r.skipped.items()))
            lines.append(f"- {STEP_HEADINGS[r.name]} {counts}")
            continue
        err = f"; error: {r.error}" if r.error else ""
        lines.append(
            f"- **{r.name}**: {r.status}; {len(r.files)} files, {r.records} records read, "
            f"{r.events} events; {r.counts()}{err}"
        )
    if pm.redactions:
        lines.append(
            "- **Redacted** before drafting: "
            + ", ".join(f"{n} {k}" for k, n in sorted(pm.redactions.items()))
        )
    else:
        lines.append(
            "- **Redacted** before drafting: nothing matched the secret and personal-data patterns"
        )
    return "\n".join(lines)


def section_bodies(pm: Postmortem) -> dict[str, str]:
    return {
        "summary": claims_block(pm.summary, paragraph=True),
        "milestones": milestones_body(pm),
        "impact": claims_block(pm.impact),
        "detection": claims_block(pm.detection),
        "response": claims_block(pm.response),
        "recovery": claims_block(pm.recovery),
        "root_cause": root_cause_body(pm),
        "contributing_factors": claims_block(pm.contributing_factors),
        "timeline": timeline_body(pm),
        "went_well": claims_block(pm.went_well),
        "went_poorly": claims_block(pm.went_poorly),
        "got_lucky": claims_block(pm.got_lucky),
        "action_items": actions_body(pm),
        "open_questions": questions_body(pm),
        "similar": similar_body(pm),
        "sources": sources_body(pm),
    }


def front_matter(
    pm: Postmortem, hashes: dict[str, str], evidence: dict[str, str] | None = None
) -> dict[str, Any]:
    def iso(at: datetime | None) -> str | None:
        return at.isoformat().replace("+00:00", "Z") if at else None

    return {
        "incident_id": pm.incident_id,
        "title": pm.title,
        "severity": pm.severity,
        "status": pm.status,
        "started": iso(pm.started),
        "ended": iso(pm.ended),
        "services": pm.services,
        "engine": pm.engine,
        "model": pm.model,
        "generator_version": pm.generator_version,
        "retro_hashes": hashes,
        **({"retro_evidence": dict(sorted(evidence.items()))} if evidence else {}),
    }


def render(
    pm: Postmortem,
    *,
    keep: dict[str, str] | None = None,
    hashes: dict[str, str] | None = None,
    evidence: dict[str, str] | None = None,
) -> str:
    """Markdown for a postmortem. `keep` maps section keys to human-edited bodies to keep.

    `hashes` are those of the bodies generated from the evidence alone (by default, the bodies
    of pm); `evidence` maps each cited event id to its evidence_hash.
    """
    bodies = section_bodies(pm)
    if hashes is None:
        hashes = {k: section_hash(v) for k, v in bodies.items()}
        hashes.update(milestone_hashes(pm))
        hashes["milestones.rest"] = rest_hash(bodies["milestones"])
    for key, body in (keep or {}).items():
        bodies[key] = body
    meta = yaml.safe_dump(
        front_matter(pm, hashes, evidence), sort_keys=False, allow_unicode=True
    ).strip()
    out = [
        "---",
        meta,
        "---",
        "",
        f"# {pm.incident_id}: {pm.title}",
        "",
        "> Draft written by retro. Every factual sentence cites the timeline events behind it, "
        "like [E1a2b3]; the ids are in the Timeline table. People appear as roles. "
        "Review and edit, then run `retro check` on this file.",
        "",
    ]
    for key, heading in SECTIONS:
        out += [f"## {heading}", "", bodies[key].strip(), ""]
    return "\n".join(out).rstrip() + "\n"
