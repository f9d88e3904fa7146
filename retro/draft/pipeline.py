"""The draft pipeline: timeline → milestones → metrics → engine → checked, rendered Markdown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retro import __version__
from retro.draft.engines.base import DraftInput, Engine, EvidenceRow
from retro.draft.evidence import NameScrubber, assign_roles, name_patterns, prepare, scrub_names
from retro.draft.milestones import compute_metrics, infer_milestones
from retro.draft.render import render, section_hash
from retro.draft.review import CITATION, milestones_of, parse_document
from retro.files import write_atomic
from retro.models import CLAIM_FIELDS, Claim, Milestone, Postmortem, Progress, Timeline, no_progress
from retro.safety.policy import BLAME, INJECTION
from retro.safety.redact import Redactor
from retro.timeline.read import read_timeline

TABLE_LIMIT = 400


@dataclass
class DraftResult:
    postmortem: Postmortem
    markdown: str
    timeline: Timeline
    data: DraftInput
    dropped_claims: int
    kept_sections: list[str]


def check_citations(pm: Postmortem, valid: set[str]) -> int:
    """Remove citations to unknown events; drop claims left with none. Returns claims dropped."""
    dropped = 0
    for name in CLAIM_FIELDS:
        kept: list[Claim] = []
        for claim in getattr(pm, name):
            claim.citations = [c for c in claim.citations if c in valid]
            if (
                claim.citations
                and not BLAME.search(claim.text)
                and not INJECTION.search(claim.text)
            ):
                kept.append(claim)
            else:
                dropped += 1
        setattr(pm, name, kept)
    for item in pm.action_items:
        item.citations = [c for c in item.citations if c in valid]
    pm.open_questions = [
        CITATION.sub(lambda m: m.group(0) if m.group(1) in valid else "", q).strip()
        for q in pm.open_questions
    ]
    return dropped


def table_rows(data: DraftInput, cited: set[str]) -> list[dict[str, Any]]:
    """Timeline table rows: everything for small incidents; key, cited and non-chat events for big ones."""
    rows = data.rows
    if len(rows) > TABLE_LIMIT:
        important = [
            r.id
            for r in rows
            if r.key_event or r.id in cited or r.kind not in ("message", "bot_message")
        ]
        taken = set(important)
        rest = [r.id for r in rows if r.id not in taken and r.kind == "message"]
        keep = (
            set(important[:TABLE_LIMIT]) | set(rest[: max(0, TABLE_LIMIT - len(important))]) | cited
        )
        shown = [r for r in rows if r.id in keep]
        omitted = len(rows) - len(shown)
    else:
        shown, omitted = rows, 0
    out = [_row(r) for r in shown]
    return out + ([{"omitted": omitted}] if omitted else [])


def _row(r: EvidenceRow) -> dict[str, Any]:
    text = " ".join(r.text.split())
    return {
        "id": r.id,
        "at": f"{r.at:%Y-%m-%d %H:%M:%S}",
        "source": r.source,
        "kind": r.kind,
        "actor": r.actor,
        "text": text[:200] + ("…" if len(text) > 200 else ""),
        "key": r.key_event,
    }


def _scrub_output(pm: Postmortem, timeline: Timeline, redactor: Redactor, names: bool) -> None:
    """LLMs can echo names or secrets; scrub every claim the engine wrote, as the evidence was."""
    patterns = NameScrubber() if names else name_patterns(timeline.people, assign_roles(timeline))
    for name in CLAIM_FIELDS:
        for claim in getattr(pm, name):
            claim.text = scrub_names(redactor.redact(claim.text), patterns)
    for item in pm.action_items:
        item.title = scrub_names(redactor.redact(item.title), patterns)
        item.owner = scrub_names(item.owner, patterns).removeprefix("the ")
        item.end_state = scrub_names(redactor.redact(item.end_state), patterns)
    pm.open_questions = [scrub_names(redactor.redact(q), patterns) for q in pm.open_questions]
    pm.title = scrub_names(redactor.redact(pm.title), patterns)


def build_postmortem(
    timeline: Timeline,
    engine: Engine,
    *,
    names: bool = False,
    overrides: dict[str, Milestone] | None = None,
    progress: Progress = no_progress,
) -> tuple[Postmortem, DraftInput, int]:
    """Stages 3-5 and the citation check, on an already built timeline."""
    milestones = infer_milestones(timeline)
    for name, m in (overrides or {}).items():
        if m.at is not None:
            milestones[name] = m.model_copy(update={"overridden": True})
    metrics = compute_metrics(milestones)
    redactor = Redactor()
    data = prepare(timeline, milestones, metrics, names=names, redactor=redactor)
    pm = engine.draft(data, progress=progress)
    _scrub_output(pm, timeline, redactor, names)
    dropped = check_citations(pm, {r.id for r in data.rows})
    pm.milestones, pm.metrics = milestones, metrics
    from retro.draft.review import all_citations

    pm.timeline = table_rows(data, set(all_citations(pm)))
    pm.sources = list(timeline.sources)
    pm.redactions = dict(redactor.counts)
    pm.started = milestones["impact_start"].at if "impact_start" in milestones else None
    pm.ended = milestones["resolved"].at if "resolved" in milestones else None
    pm.severity = pm.severity or timeline.incident.severity
    pm.services = pm.services or list(timeline.incident.services)
    pm.engine, pm.generator_version = engine.name, f"retro {__version__}"
    pm.model = getattr(engine, "model", None)
    if timeline.dropped:
        from retro.models import SourceReport

        pm.sources.append(SourceReport(name="timeline", skipped=dict(timeline.dropped)))
    return pm, data, dropped


def edited_sections(existing: str) -> tuple[dict[str, str], dict[str, Milestone]]:
    """Sections a human changed since retro last wrote them, and milestone overrides."""
    doc = parse_document(existing)
    hashes = doc.meta.get("retro_hashes") or {}
    keep: dict[str, str] = {}
    overrides: dict[str, Milestone] = {}
    for key, section in doc.sections.items():
        if section.key is None or hashes.get(key) == section_hash(section.body):
            continue
        if key == "milestones":
            overrides = milestones_of(section)
        elif key not in ("timeline", "sources", "similar"):
            keep[key] = section.body
    return keep, overrides


def generate(
    *,
    bundle: Path,
    engine: Engine,
    out: Path | None = None,
    names: bool = False,
    lenient: bool = False,
    similar: Any = None,
    progress: Progress = no_progress,
) -> DraftResult:
    """The whole job: a bundle in, a checked Markdown draft out (kept human edits on re-runs)."""
    timeline = read_timeline(bundle, lenient=lenient, progress=progress)
    keep: dict[str, str] = {}
    overrides: dict[str, Milestone] = {}
    if out is not None and out.exists():
        keep, overrides = edited_sections(out.read_text(encoding="utf-8"))
    pm, data, dropped = build_postmortem(
        timeline, engine, names=names, overrides=overrides, progress=progress
    )
    if similar is not None:
        pm.similar = similar(pm)
    markdown = render(pm, keep=keep)
    if out is not None:
        write_atomic(out, markdown)
    return DraftResult(pm, markdown, timeline, data, dropped, sorted(keep))
