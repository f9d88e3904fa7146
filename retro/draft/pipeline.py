"""The draft pipeline: timeline → milestones → metrics → engine → checked, rendered Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retro import __version__
from retro.draft.engines.base import DraftInput, Engine, EvidenceRow, ScoredSentence
from retro.draft.evidence import (
    NameScrubber,
    evidence_rows,
    prepare,
    scrub_names,
    scrubber_for,
    strip_controls,
)
from retro.draft.milestones import compute_metrics, infer_milestones
from retro.draft.render import (
    evidence_hash,
    milestone_hashes,
    milestones_body,
    render,
    rest_hash,
    row_hash,
    section_bodies,
    section_hash,
    unedited,
)
from retro.draft.review import (
    CITATION,
    EVENT_ID,
    milestone_rows,
    milestones_of,
    parse_document,
    read_draft,
    time_parses,
    timeline_of,
)
from retro.files import output_target, write_output
from retro.models import CLAIM_FIELDS, Claim, Milestone, Postmortem, Progress, Timeline, no_progress
from retro.safety import policy
from retro.safety.redact import Redactor
from retro.timeline.read import read_timeline
from retro.understand.layer import Reading, Understanding, shared

TABLE_LIMIT = 400


@dataclass
class DraftResult:
    postmortem: Postmortem
    markdown: str
    timeline: Timeline
    data: DraftInput
    dropped_claims: int
    kept_sections: list[str]
    changed_citations: list[str] = field(default_factory=list)  # kept text cites a changed event


def check_citations(pm: Postmortem, valid: set[str]) -> int:
    """Remove citations to unknown events; drop claims left with none. Returns claims dropped."""
    dropped = 0
    for name in CLAIM_FIELDS:
        kept: list[Claim] = []
        for claim in getattr(pm, name):
            claim.citations = [c for c in claim.citations if c in valid]
            if claim.citations and policy.unsafe(claim.text) is None:
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


def leave_out_rows(rows: list[EvidenceRow], reading: Reading) -> dict[str, str]:
    """Rows kept out of the draft by safety policy (blame, instructions to a model): id -> why.

    The policy rules judge every message, a bot's too (an instruction can arrive through a
    webhook); the classifier judges only what people wrote: alert text posted by a bot reads
    to it like anything but chat. The raw text stays in the bundle.
    """
    out: dict[str, str] = {}
    for row in rows:
        if row.kind not in ("message", "comment", "note", "bot_message", "status_page_update"):
            continue
        sentences: list[tuple[str, Mapping[str, float]]] = [
            (s.text, s.scores if row.human else {}) for s in reading.of(row.id)
        ]
        if reason := policy.leave_out(sentences or [(row.text, {})]):
            out[row.id] = reason
    return out


def left_out_report(left_out: dict[str, str]) -> Any:
    """The Sources line that counts what policy kept out, with the event ids."""
    from retro.models import SourceReport

    skipped: dict[str, int] = {}
    for reason in sorted(set(left_out.values())):
        ids = sorted(i for i, r in left_out.items() if r == reason)
        skipped[f"left out ({policy.REASONS.get(reason, reason)}): {', '.join(ids)}"] = len(ids)
    return SourceReport(name="policy", status="ok", skipped=skipped)


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


def _scrub_output(pm: Postmortem, redactor: Redactor, patterns: NameScrubber) -> None:
    """LLMs can echo names or secrets; scrub every claim the engine wrote, as the evidence was."""
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
    understanding: Understanding | None = None,
) -> tuple[Postmortem, DraftInput, int]:
    """Stages 3-5 and the citation check, on an already built timeline.

    The evidence rows are read by the sentence-understanding layer first; chat that carries
    blame or an instruction to a model is left out of everything that follows (milestones,
    engines, the Timeline table) and counted in Sources.
    """
    redactor = Redactor()
    scrubber = scrubber_for(timeline, names)
    rows = evidence_rows(timeline, names=names, redactor=redactor, scrubber=scrubber)
    progress("understand", 0, None)
    reading = (understanding or shared()).read(rows, human={r.id for r in rows if r.human})
    left_out = leave_out_rows(rows, reading)
    kept_rows = [r for r in rows if r.id not in left_out]
    milestones = infer_milestones(timeline, reading, skip=frozenset(left_out))
    for name, m in (overrides or {}).items():
        if m.at is not None:
            milestones[name] = m.model_copy(update={"overridden": True})
    metrics = compute_metrics(milestones)
    kept = set(r.id for r in kept_rows)
    sentences = [
        ScoredSentence(row_id=s.row_id, text=s.text, scores=s.scores, embedded=s.embedded)
        for s in reading.sentences
        if s.row_id in kept
    ]
    data = prepare(
        timeline,
        milestones,
        metrics,
        names=names,
        redactor=redactor,
        rows=kept_rows,
        sentences=sentences,
        understanding_note=reading.degraded,
        scrubber=scrubber,
    )
    pm = engine.draft(data, progress=progress)
    _scrub_output(pm, redactor, scrubber)
    wrote = {name: len(getattr(pm, name)) for name in CLAIM_FIELDS}
    dropped = check_citations(pm, {r.id for r in data.rows})
    fallback = fill_from_offline(pm, data, engine, wrote=wrote)
    pm.milestones, pm.metrics = milestones, metrics
    from retro.draft.review import all_citations

    pm.timeline = table_rows(data, set(all_citations(pm)))
    pm.sources = list(timeline.sources)
    pm.redactions = dict(redactor.counts)
    pm.started = milestones["impact_start"].at if "impact_start" in milestones else None
    pm.ended = milestones["resolved"].at if "resolved" in milestones else None
    pm.severity = pm.severity or data.severity
    pm.services = pm.services or list(data.services)
    pm.engine, pm.generator_version = engine.name, f"retro {__version__}"
    pm.model = getattr(engine, "model", None)
    if timeline.dropped:
        from retro.models import SourceReport

        pm.sources.append(SourceReport(name="timeline", skipped=dict(timeline.dropped)))
    if left_out:
        pm.sources.append(left_out_report(left_out))
    if fallback is not None:
        pm.sources.append(fallback)
    if reading.degraded:
        from retro.models import SourceReport

        pm.sources.append(
            SourceReport(name="understanding", status="partial", error=reading.degraded)
        )
    return pm, data, dropped


def fill_from_offline(
    pm: Postmortem, data: DraftInput, engine: Engine, *, wrote: Mapping[str, int]
) -> Any:
    """Fill each claim section a model left empty from the offline engine's draft; say so.

    A section is empty when the model wrote nothing there or every claim it wrote was dropped
    (uncited, citing unknown rows, unsafe). The offline engine runs on the same DraftInput, only
    when a section needs it. Returns the Sources entry that names each filled section and why,
    counting the claims used, or None.
    """
    empty = [name for name in CLAIM_FIELDS if not getattr(pm, name)]
    if engine.name == "offline" or not empty:
        return None
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.render import SECTIONS
    from retro.models import SourceReport

    offline = OfflineEngine().draft(data)
    check_citations(offline, {r.id for r in data.rows})
    engine_drops: dict[str, int] = getattr(engine, "dropped_by_section", dict)()
    headings = dict(SECTIONS) | {"trigger": "Trigger"}
    report = SourceReport(name="offline engine fallback", status="partial")
    for name in empty:
        claims = getattr(offline, name)
        if not claims:
            continue
        setattr(pm, name, claims)
        lost = wrote.get(name, 0) + engine_drops.get(name, 0)
        why = (
            f"the model's {lost} claim{'s' * (lost != 1)} did not check out"
            if lost
            else "the model wrote none"
        )
        where = headings.get(name, name)
        noun = f"claim{'s' * (len(claims) != 1)}"
        report.skip(f"{noun} of the offline engine used in {where}, as {why}", len(claims))
    return report if report.skipped else None


@dataclass
class Edits:
    """What a person changed in an earlier draft, read back before a re-run."""

    keep: dict[str, str] = field(default_factory=dict)  # section key -> body kept verbatim
    overrides: dict[str, Milestone] = field(default_factory=dict)  # milestone rows they changed
    evidence: dict[str, str] = field(default_factory=dict)  # retro_evidence as last written
    newline: str = "\n"


def read_edits(existing: str, path: str = "<draft>") -> Edits:
    """Every section a person changed since retro wrote it, whatever run wrote it last.

    Hashes in the front matter are those of what retro generated from the evidence alone, so a
    person's text never becomes retro's: it is kept on this run and on every later one.
    """
    doc = parse_document(existing, path)
    hashes = doc.meta.get("retro_hashes")
    hashes = hashes if isinstance(hashes, dict) else {}
    evidence = doc.meta.get("retro_evidence")
    edits = Edits(
        evidence={str(k): str(v) for k, v in evidence.items() if v is not None}
        if isinstance(evidence, dict)
        else {},
        newline="\r\n" if existing.count("\r\n") * 2 > existing.count("\n") else "\n",
    )
    for key, section in doc.sections.items():
        if section.key is None or unedited(hashes.get(key), section.body):
            continue
        if key == "milestones":
            edits.overrides, verbatim = _milestone_edits(section, hashes)
            if verbatim:
                edits.keep[key] = section.body
        else:
            edits.keep[key] = section.body
    return edits


def _milestone_edits(section: Any, hashes: dict[str, Any]) -> tuple[dict[str, Milestone], bool]:
    """(overrides, keep the section verbatim) for an edited milestones section.

    A row whose hash differs from the one retro wrote is a person's: its time overrides the
    inferred one, and the section is re-rendered around it. When re-rendering would lose part
    of the edit (a time that does not parse or is set to unknown, a deleted or added row, text
    outside the rows) the section is kept exactly as the person left it.
    """
    legacy = not any(str(k).startswith("milestones.") for k in hashes)
    rows = milestone_rows(section)
    changed = [
        name
        for name, cells in rows
        if legacy or hashes.get(f"milestones.{name}") != row_hash(cells)
    ]
    parsed = milestones_of(section)
    overrides = {n: parsed[n] for n in changed if n in parsed and parsed[n].at is not None}
    cells = dict(rows)
    repeated = len(cells) < len(rows)  # a row a person copied: re-rendering would drop it
    verbatim = repeated or any(not time_parses(cells[n][1]) or n not in overrides for n in changed)
    if not legacy:
        present = {name for name, _ in rows}
        deleted = any(
            str(k).startswith("milestones.") and str(k)[11:] not in present
            for k in hashes
            if k != "milestones.rest"
        )
        verbatim = verbatim or deleted or hashes.get("milestones.rest") != rest_hash(section.body)
    return overrides, verbatim


def edited_sections(existing: str) -> tuple[dict[str, str], dict[str, Milestone]]:
    """Sections a human changed since retro last wrote them, and milestone overrides."""
    edits = read_edits(existing)
    return edits.keep, edits.overrides


def upgrade_citations(body: str, ids: list[str]) -> str:
    """Citations to short ids of an earlier retro ([E3fa9c]) as today's id of the same event.

    Every id is a prefix of one hash of the event's key, so an old id names the event whose
    current id starts with it; an id that matches no event, or more than one, stays as it is.
    """
    from bisect import bisect_left

    known = set(ids)

    def replace(match: Any) -> str:
        cid = match.group(1)
        if cid in known:
            return match.group(0)
        prefix = "E" + cid[1:].lower()
        i = bisect_left(ids, prefix)
        found = [x for x in ids[i : i + 2] if x.startswith(prefix)]
        return f"[{found[0]}]" if len(found) == 1 else match.group(0)

    return CITATION.sub(replace, body)


def _hashes(pm: Postmortem, timeline: Timeline, overrides: dict[str, Milestone]) -> dict[str, str]:
    """The hashes of what retro generates from the evidence alone (see render.py)."""
    bodies = section_bodies(pm)
    written = bodies["milestones"]
    pure = pm
    if overrides:
        inferred = infer_milestones(timeline)
        pure = pm.model_copy(update={"milestones": inferred, "metrics": compute_metrics(inferred)})
        bodies["milestones"] = milestones_body(pure)
    hashes = {k: section_hash(v) for k, v in bodies.items()}
    hashes.update(milestone_hashes(pure))
    hashes["milestones.rest"] = rest_hash(written)
    return hashes


def _evidence(
    pm: Postmortem, timeline: Timeline, keep: dict[str, str], before: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """retro_evidence for this draft, and the ids kept text cites whose event has changed.

    retro's own claims were just written against the events as they are now; a person's kept
    text was written against them as they were, so its citations keep their earlier hashes
    until the person removes them (`retro check --bundle` reports the difference).
    """
    from retro.draft.review import all_citations

    events = timeline.by_id()
    cited = set(all_citations(pm))
    cited.update(i for m in pm.milestones.values() for i in m.evidence)
    human = {cid for body in keep.values() for cid in CITATION.findall(body)}
    if "milestones" in keep:
        human.update(EVENT_ID.findall(keep["milestones"]))
    out: dict[str, str] = {}
    changed: list[str] = []
    for cid in sorted((cited | human) & events.keys()):
        now = evidence_hash(events[cid])
        if cid in human and cid in before:
            out[cid] = before[cid]
            if before[cid] != now:
                changed.append(cid)
        else:
            out[cid] = now
    return out, changed


def generate(
    *,
    bundle: Path,
    engine: Engine,
    out: Path | str | None = None,
    names: bool = False,
    lenient: bool = False,
    similar: Any = None,
    progress: Progress = no_progress,
) -> DraftResult:
    """The whole job: a bundle in, a checked Markdown draft out (kept human edits on re-runs).

    `out` is checked before any work (see retro.files): an existing regular file is read as
    the earlier draft and replaced atomically, `-` is standard output, anything else refused.
    """
    target = output_target(out) if out is not None else None
    existing = read_draft(target.path) if target and target.exists and target.path else None
    timeline = read_timeline(bundle, lenient=lenient, progress=progress)
    edits = read_edits(existing, str(out)) if existing is not None else Edits()
    pm, data, dropped = build_postmortem(
        timeline, engine, names=names, overrides=edits.overrides, progress=progress
    )
    if similar is not None:
        pm.similar = similar(pm)
    ids = sorted(r.id for r in data.rows)
    keep = {k: upgrade_citations(v, ids) for k, v in edits.keep.items()}
    if "timeline" in keep:
        # The person's table stays; retro's claims may cite only the events it shows.
        shown = {
            row["id"]
            for row in timeline_of(
                parse_document("## Timeline\n\n" + keep["timeline"]).sections.get("timeline")
            )
        }
        dropped += check_citations(pm, shown & set(ids))
    hashes = _hashes(pm, timeline, edits.overrides)
    evidence, changed = _evidence(pm, timeline, keep, edits.evidence)
    markdown = strip_controls(render(pm, keep=keep, hashes=hashes, evidence=evidence))
    if edits.newline != "\n":
        markdown = markdown.replace("\n", edits.newline)
    if target is not None:
        write_output(target, markdown)
    kept = sorted(set(keep) | ({"milestones"} if edits.overrides else set()))
    return DraftResult(pm, markdown, timeline, data, dropped, kept, changed)
