"""The offline engine: a deterministic draft from structured evidence and the sentence layer.

It never calls a network. Each section opens with what the evidence shows (milestones, alerts,
pages, statuses), then the statements people made that the understanding layer labels for that
section, worded as report sentences and each citing its row. When the evidence is weak or
contradicts itself, the draft says so in Open questions instead of writing a confident sentence.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, tzinfo
from typing import Any

from retro.draft.engines import actions as act
from retro.draft.engines.base import DraftInput, Engine, EvidenceRow
from retro.draft.engines.compose import Chooser, Pick, claim, cut, hhmm
from retro.draft.milestones import human_duration
from retro.models import ActionItem, Claim, Postmortem, Progress, no_progress
from retro.safety import policy
from retro.text import content_words, overlap
from retro.understand.lexicon import (
    discards,
    local_zone,
    stated_times,
    statement,
    states_range,
    symptom_alert,
)

SILENCE = timedelta(minutes=20)
SLOW_ACK_S = 15 * 60
# as far back as the timeline keeps changes before its window: a leak a flag rollout started
# can take hours to exhaust a heap
CHANGE_LOOKBACK = timedelta(hours=6)
# A named trigger dates something at least this long before the impact.
TRIGGER_LEAD = timedelta(minutes=1)
SIGNAL_KINDS = ("alert_firing", "page_triggered")


class _Facts:
    """Indexes over the evidence that several sections share."""

    def __init__(self, data: DraftInput) -> None:
        self.data = data
        # the story is told from the window; rows kept from the days after are follow-up work
        self.rows = [r for r in data.rows if not r.later]
        self.by_id = {r.id: r for r in data.rows}
        self.ms = data.milestones
        self.pick = Chooser(data)
        self.alerts = [r for r in self.rows if r.kind == "alert_firing" and not r.duplicate]
        changes = {s for s, roles in data.roles_of_sources.items() if "changes" in roles}
        self.changes = [
            r
            for r in self.rows
            if r.kind == "change_deployed" or (r.source in changes and not r.human)
        ]

    def at(self, name: str) -> datetime | None:
        m = self.ms.get(name)
        return m.at if m else None

    def ev(self, *names: str) -> list[str]:
        return [i for n in names if (m := self.ms.get(n)) for i in m.evidence[:1]]

    def rule(self, name: str) -> str:
        m = self.ms.get(name)
        return m.rule if m else ""

    def title(self, row: EvidenceRow) -> str:
        return self.data.source_titles.get(row.source, row.source)

    def services(self) -> str:
        return ", ".join(self.data.services) if self.data.services else "the affected service"

    def between(self, start: str, end: str) -> list[EvidenceRow]:
        lo, hi = self.at(start), self.at(end)
        return [r for r in self.rows if (lo is None or r.at >= lo) and (hi is None or r.at <= hi)]


def _alert_label(row: EvidenceRow) -> str:
    """The alert's name: its connector's field, else as its text shows it ("[FIRING]
    HighErrorRate: summary" -> HighErrorRate)."""
    named = row.facts.get("alert_name") or row.facts.get("alertname")
    if named:
        return cut(named, 60)
    text = row.text.strip()
    for prefix in ("[FIRING]", "[FIRING:1]", "[RESOLVED]"):
        text = text.removeprefix(prefix).strip()
    for lead in ("Alert triggered:", "Alert created:", "Incident triggered:", "Alert #"):
        if text.startswith(lead):
            text = text[len(lead) :].strip()
            if lead == "Alert #":
                text = text.split(" ", 1)[-1].split(":", 1)[-1].strip()
    return cut(text.split(":", 1)[0].strip(), 60)


class OfflineEngine(Engine):
    name = "offline"

    def draft(self, data: DraftInput, *, progress: Progress = no_progress) -> Postmortem:
        progress("draft", 0, 10)
        f = _Facts(data)
        pm = Postmortem(
            incident_id=data.incident_id,
            title=data.title or f"Incident {data.incident_id}",
            severity=data.severity,
            services=list(data.services),
        )
        pm.trigger = trigger(f)
        pm.root_cause = root_cause(f, pm.trigger)
        pm.detection = detection(f)
        pm.impact = impact(f)
        pm.response = response(f)
        pm.recovery = recovery(f)
        pm.summary = summary(f, pm)
        pm.contributing_factors = contributing(f, pm)
        pm.went_well, pm.went_poorly, pm.got_lucky = went_well(f), went_poorly(f), got_lucky(f)
        pm.action_items = action_items(f, pm)
        pm.contributing_factors += missing_safeguards(pm.action_items)
        pm.open_questions = open_questions(f, pm)
        progress("draft", 10, 10)
        return pm


# --- summary, impact, detection --------------------------------------------------------------------


def summary(f: _Facts, pm: Postmortem) -> list[Claim]:
    imp, mit, res = f.at("impact_start"), f.at("mitigated"), f.at("resolved")
    out: list[Claim] = []
    if imp:
        verb = "were" if len(f.data.services) > 1 else "was"
        span = (
            f"for {human_duration(int((mit - imp).total_seconds()))}, from {hhmm(imp)} to {hhmm(mit)}"
            if mit and mit >= imp
            else f"from {hhmm(imp)}"
        )
        out.append(
            claim(
                f"On {imp:%Y-%m-%d}, {f.services()} {verb} impaired {span}.",
                f.ev("impact_start", "mitigated"),
            )
        )
    out += pm.detection[:1]
    if pm.trigger:
        out.append(pm.trigger[0])
    if pm.root_cause:
        out.append(pm.root_cause[0])
    mitigation = [
        c for c in pm.recovery if not c.text.startswith(("The impact was mitigated", "Time to"))
    ]
    out += mitigation[:1]
    if res:
        out.append(claim(f"The incident was resolved at {hhmm(res)}.", f.ev("resolved")))
    return out


def impact(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    imp, mit = f.at("impact_start"), f.at("mitigated")
    if imp and mit and mit >= imp:
        out.append(
            claim(
                f"Customer-facing impact lasted about {human_duration(int((mit - imp).total_seconds()))}, "
                f"from {hhmm(imp)} to {hhmm(mit)}.",
                f.ev("impact_start", "mitigated"),
            )
        )
    names = [n for n, _ in Counter(_alert_label(r) for r in f.alerts).most_common(4) if n]
    if names:
        cites = [r.id for r in f.alerts if _alert_label(r) in names][:3]
        out.append(claim(f"Alerts that fired: {', '.join(names)}.", cites))
    picks = f.pick.candidates("impact")
    # Figures say more than adjectives: statements with a number first.
    picks.sort(key=lambda p: (not any(ch.isdigit() for ch in p.sentence.text), -p.score))
    out += f.pick.said(f.pick.top(picks, 3))
    updates = [r for r in f.rows if r.kind == "status_page_update"][:1]
    out += [
        claim(f"The first status page update said: “{cut(r.text, 240)}”", [r.id]) for r in updates
    ]
    return out


def detection(f: _Facts) -> list[Claim]:
    det = f.ms.get("detected")
    out: list[Claim] = []
    if det and det.at and det.evidence:
        row = f.by_id.get(det.evidence[0])
        rule = det.rule
        if row and row.kind in SIGNAL_KINDS and "person" not in rule:
            what = _alert_label(row) or cut(row.text, 80)
            out.append(
                claim(
                    f"Monitoring detected the incident: {f.title(row)} raised “{what}” at {hhmm(det.at)}.",
                    [row.id],
                )
            )
        elif row and row.kind in SIGNAL_KINDS:
            out.append(
                claim(
                    f"A responder raised a page by hand in {f.title(row)} at {hhmm(det.at)}; no automated signal came first.",
                    [row.id],
                )
            )
        elif row and "customer" in rule:
            out.append(
                claim(
                    f"Customers reported the problem first, at {hhmm(det.at)}; no alert fired before that.",
                    [row.id],
                )
            )
        elif row:
            out.append(
                claim(
                    f"A person noticed the problem first, at {hhmm(det.at)}; no alert fired before that.",
                    [row.id],
                )
            )
    ttd = f.data.metrics.time_to_detect_s
    if ttd is not None and ttd > 0:
        out.append(
            claim(f"Time to detect was {human_duration(ttd)}.", f.ev("impact_start", "detected"))
        )
    alerts_after = [r for r in f.alerts if det and det.at and r.at > det.at]
    if det and "alert" not in det.rule and "page" not in det.rule and alerts_after:
        first = alerts_after[0]
        gap = int((first.at - det.at).total_seconds()) if det.at else 0
        out.append(
            claim(
                f"The first alert, “{_alert_label(first)}”, fired {human_duration(gap)} later.",
                [first.id],
            )
        )
    pages = [r for r in f.rows if r.kind == "page_triggered"][:1]
    if pages and (not det or pages[0].id not in det.evidence):
        out.append(
            claim(f"{f.title(pages[0])} paged the on-call at {hhmm(pages[0].at)}.", [pages[0].id])
        )
    acks = f.ms.get("acknowledged")
    if acks and acks.at and f.data.metrics.time_to_acknowledge_s is not None:
        out.append(
            claim(
                f"The first acknowledgement came at {hhmm(acks.at)}, "
                f"{human_duration(f.data.metrics.time_to_acknowledge_s)} after detection.",
                f.ev("detected", "acknowledged"),
            )
        )
    escalations = [r for r in f.rows if r.kind == "page_escalated"]
    if escalations:
        out.append(
            claim(
                f"The page escalated {len(escalations)} time(s), first at {hhmm(escalations[0].at)}.",
                [escalations[0].id],
            )
        )
    return out


# --- response and recovery ---------------------------------------------------------------------------


def response(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    dec = f.ms.get("declared")
    if dec and dec.at and dec.evidence:
        out.append(
            claim(f"The incident was declared at {hhmm(dec.at)} ({dec.rule}).", dec.evidence[:1])
        )
    window = {r.id for r in f.between("detected", "mitigated")}
    theories = f.pick.top(f.pick.candidates("hypothesis", hedged=True, rows=window), 2)
    for pick in theories:
        out.append(
            claim(
                f"Responders considered: “{statement(pick.sentence.text, pick.row.actor).rstrip('.')}”.",
                [pick.id],
            )
        )
    return out


def recovery(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    start = f.at("detected")
    actions = [
        p
        for p in f.pick.candidates("mitigation", after=start)
        if not p.sentence.has("setback") and not f.pick.changed_nothing(p.sentence, p.row)
    ]
    chosen = sorted(f.pick.top(actions, 3), key=lambda p: p.at)
    out += f.pick.said(chosen)
    mit = f.ms.get("mitigated")
    if mit and mit.at:
        out.append(
            claim(f"The impact was mitigated at {hhmm(mit.at)} ({mit.rule}).", mit.evidence[:2])
        )
    ttm = f.data.metrics.time_to_mitigate_s
    if ttm is not None and ttm >= 0:
        out.append(
            claim(
                f"Time to mitigate was {human_duration(ttm)} from impact start.",
                f.ev("impact_start", "mitigated"),
            )
        )
    return out


# --- cause -------------------------------------------------------------------------------------------


def _impact_at(f: _Facts) -> datetime | None:
    return f.at("impact_start") or (f.rows[0].at if f.rows else None)


def trigger(f: _Facts) -> list[Claim]:
    """What responders named as the trigger, then the changes before impact as candidates.

    A change that completed after impact began is never listed: it cannot be the trigger.
    """
    imp = _impact_at(f)
    zone = local_zone(f.data.timezone)
    out: list[Claim] = []
    named = (
        p
        for p in f.pick.candidates("trigger")
        if max(p.sentence.p("impact"), p.sentence.p("setback")) < p.sentence.p("trigger")
        and not p.sentence.has("mitigation")  # "Rollback of api started" is the response
    )
    # the times a sentence states are read only for the best candidates, until one passes
    first = next((p for p in named if not _dates_otherwise(p, imp, zone)), None)
    out += f.pick.said([first] if first else [])
    if imp is None:
        return out
    changes = [r for r in f.changes if imp - CHANGE_LOOKBACK <= r.at <= imp + timedelta(minutes=2)]
    if changes:
        listed = "; ".join(f"{hhmm(r.at)}: “{cut(r.text, 120)}”" for r in changes[-3:])
        tail = (
            "" if out else " The last one is the likely trigger, though no responder confirmed it."
        )
        out.append(
            claim(
                f"Changes in the hours before impact: {listed}.{tail}", [r.id for r in changes[-3:]]
            )
        )
    return out


def _dates_otherwise(pick: Pick, impact: datetime | None, zone: tzinfo) -> bool:
    """The sentence dates something other than a trigger: the symptom ("5xx started 13:42
    UTC", "errors rising since 07:58"), or only events after the impact began ("hosts were
    added back at 09:51"), while a trigger comes before the impact."""
    text = pick.sentence.text
    if states_range(text):
        return True  # "9:41 to about 11:22": how long something lasted, not a trigger's moment
    times = stated_times(text, pick.row.at, zone)
    if symptom_alert(text) and any(t.relation == "onset" for t in times):
        return True
    return impact is not None and bool(times) and all(t.at > impact - TRIGGER_LEAD for t in times)


def root_cause(f: _Facts, trig: list[Claim]) -> list[Claim]:
    """The mechanism people stated, then the findings that support it.

    Symptoms ("pods are being OOMKilled") are impact, not cause. With no statement of cause,
    the strongest hypothesis is given as a hypothesis.
    """
    stated = [
        p
        for p in f.pick.candidates("cause")
        if p.sentence.p("impact") < p.sentence.p("cause") and not _repeats(p, trig)
    ]
    start = f.at("detected")
    findings = [
        Pick(p.sentence, p.row, p.sentence.p("cause") + 0.5 * p.score)
        for p in f.pick.candidates("investigation", after=start)
        if p.sentence.has("cause", 0.4) and not p.sentence.has("impact") and not _repeats(p, trig)
    ]
    findings.sort(key=lambda p: -p.score)
    chosen = f.pick.top(stated + findings, 3)
    if chosen:
        return f.pick.said(chosen)
    hunches = f.pick.top(f.pick.candidates("cause", factor=0.6, hedged=True), 1)
    return [
        claim(
            f"Responders suspected, without confirming: “{statement(p.sentence.text, p.row.actor).rstrip('.')}”.",
            [p.id],
        )
        for p in hunches
    ]


def _repeats(pick: Pick, claims: list[Claim]) -> bool:
    return any(
        pick.id in c.citations and overlap(pick.sentence.text, c.text) >= 0.5 for c in claims
    )


def contributing(f: _Facts, pm: Postmortem) -> list[Claim]:
    out: list[Claim] = []
    det = f.ms.get("detected")
    if det and det.evidence and ("customer" in det.rule or "person" in det.rule):
        out.append(
            claim(
                "No alert covered this failure mode, so detection depended on people noticing it.",
                det.evidence[:1],
            )
        )
    tta = f.data.metrics.time_to_acknowledge_s
    if tta is not None and tta > SLOW_ACK_S:
        out.append(
            claim(
                f"The page went unacknowledged for {human_duration(tta)}.",
                f.ev("detected", "acknowledged"),
            )
        )
    used = {c for claims in (pm.root_cause, pm.trigger) for x in claims for c in x.citations}
    picks = [p for p in f.pick.candidates("contributing") if p.id not in used]
    chosen = f.pick.top(picks, 4)
    if len(chosen) < 4:  # reflections fill free places; they never push out the classifier's
        more = sorted(
            (p for p in _reflections(f) if p.id not in used), key=lambda p: (-p.score, p.at)
        )
        chosen = f.pick.top(chosen + more, 4)
    out += f.pick.said(chosen)
    if len(f.alerts) >= 15:
        out.append(
            claim(
                f"{len(f.alerts)} alerts fired during the incident, which made the signal hard to read.",
                [f.alerts[0].id, f.alerts[-1].id],
            )
        )
    return out


# What a sentence said once the impact is over must not read as first, to count as a reflection.
_NOT_REFLECTION = frozenset(
    {
        "follow_up",
        "went_well",
        "lucky",
        "status_update",
        "recovery",
        "resolution",
        "question",
        "off_topic",
        "blame",
        "model_instruction",
        "mitigation",
        "setback",
        "declaration",
    }
)
# ... nor hold at all, even when another label reads first.
_NEVER_REFLECTION = ("question", "follow_up", "recovery", "mitigation")
REFLECTION_WEIGHT = 0.6  # below a statement the classifier reads as a contributing factor


def _reflections(f: _Facts) -> list[Pick]:
    """Once the impact is over, the team says what made it worse in plain words ("pdx1-a is
    just too big as one index cell", "nothing looks at process_open_fds"); the classifier often
    reads them as findings. A declarative sentence of a person then, read first as a cause,
    contributing factor or finding, is a candidate, weighted below the classifier's own."""
    calm = f.at("mitigated")
    if calm is None:
        return []
    out = []
    for s in f.data.sentences:
        row = f.by_id.get(s.row_id)
        if (
            row is None
            or row.later
            or row.at < calm
            or not row.human
            or row.kind not in ("message", "comment", "note")
        ):
            continue
        if s.top() in _NOT_REFLECTION or any(s.has(x) for x in _NEVER_REFLECTION):
            continue  # "5xx ratio 0.3%, p99 normal everywhere" is a reading of the recovery
        if len(content_words(s.text)) < 4 or policy.unsafe(s.text) or policy.counterfactual(s.text):
            continue
        if discards(s.text):
            continue  # "the gateway roll out is not it": what did not happen
        score = max(s.p("contributing"), s.p("cause"), s.p("investigation"))
        out.append(Pick(s, row, REFLECTION_WEIGHT * score))
    return out


# --- reflection --------------------------------------------------------------------------------------


def went_well(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    m = f.data.metrics
    det_rule = f.rule("detected")
    if (
        "automated" in det_rule
        and m.time_to_detect_s is not None
        and 0 < m.time_to_detect_s <= 600
        and "same as detection" not in f.rule("impact_start")
    ):
        out.append(
            claim(
                f"Monitoring detected the problem within {human_duration(m.time_to_detect_s)} of impact.",
                f.ev("impact_start", "detected"),
            )
        )
    if (
        m.time_to_acknowledge_s is not None
        and 0 <= m.time_to_acknowledge_s <= 300
        and f.ev("acknowledged")
    ):
        out.append(
            claim(
                f"The on-call acknowledged within {human_duration(m.time_to_acknowledge_s)}.",
                f.ev("acknowledged"),
            )
        )
    out += f.pick.said(f.pick.top(f.pick.candidates("went_well"), 2))
    return out


def went_poorly(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    m = f.data.metrics
    if m.time_to_acknowledge_s is not None and m.time_to_acknowledge_s > SLOW_ACK_S:
        out.append(
            claim(
                f"Acknowledgement took {human_duration(m.time_to_acknowledge_s)}.",
                f.ev("detected", "acknowledged"),
            )
        )
    det = f.ms.get("detected")
    if det and det.evidence and "customer" in det.rule:
        out.append(claim("Customers noticed the problem before monitoring did.", det.evidence[:1]))
    setbacks = f.pick.top(f.pick.candidates("setback"), 2)
    out += [
        claim(
            f"A step did not work at first: “{statement(p.sentence.text, p.row.actor).rstrip('.')}”.",
            [p.id],
        )
        for p in setbacks
    ]
    return out


def got_lucky(f: _Facts) -> list[Claim]:
    return f.pick.said(f.pick.top(f.pick.candidates("lucky"), 2))


# --- follow-up ---------------------------------------------------------------------------------------


# MiniLM cosine above which two titles are one piece of work. 0.8 kept restatements apart
# ("Add a canary for config changes" / "Canary stage with an error-rate gate for config
# changes", 0.75); 0.65, with the later restatement's title kept, measured on the gated,
# development and held-out-3 sets: action precision 67/51/36% -> 67/54/40%, recall 85/37/73%
# -> 83/37/73%.
SAME_ITEM_COSINE = 0.65
# Closer in meaning than most pairs and sharing some words: one piece of work said twice
# ("Staged (canary) rollout for config changes" / "config changes should go out through a
# canary"); two items about one system share words but not meaning (cosine below this).
# Measured on the gated, development and held-out-3 sets: action precision 77/54/50% ->
# 81/57/50%, recall unchanged. A paraphrase pair about one system can still pass it.
NEAR_ITEM_COSINE = 0.55
NEAR_ITEM_WORDS = 0.2


SAME_ITEM_MAX = 80  # more stated items than this: compare words only (embedding them all costs)


def _same_item(titles: list[str]) -> act.SameItem:
    """Two titles are one item when their sentence vectors agree (word overlap as fallback).

    The titles are embedded in one batch up front; a title the first pass did not show (an
    item a call transcript alone states, left out there, that a later restatement joins) is
    embedded when it is first compared. With more than SAME_ITEM_MAX titles, words only.
    """
    from retro.understand.layer import shared

    layer = shared()
    vectors = layer.vectors(titles) if 0 < len(titles) <= SAME_ITEM_MAX else None
    known = dict(zip(titles, vectors, strict=True)) if vectors is not None else {}

    def vector(title: str) -> Any:
        if title not in known and vectors is not None:
            more = layer.vectors([title])
            if more is not None:
                known[title] = more[0]
        return known.get(title)

    def same(a: str, b: str) -> float | None:
        words = overlap(a, b)
        va, vb = vector(a), vector(b)
        if va is None or vb is None:
            return words if words >= act.SAME_ITEM else None
        cosine = float(va @ vb)
        near = cosine >= NEAR_ITEM_COSINE and words >= NEAR_ITEM_WORDS
        return cosine if words >= act.SAME_ITEM or cosine >= SAME_ITEM_COSINE or near else None

    return same


def action_items(f: _Facts, pm: Postmortem) -> list[ActionItem]:
    causes = pm.root_cause + pm.trigger
    raw = act.stated(f.data, causes, lambda a, b: None) + act.implied(f.data)
    same = _same_item(list(dict.fromkeys(item.title for item in raw)))
    stated = act.stated(f.data, causes, same)
    # A detection by people and a slow acknowledgement are stated as contributing factors and
    # in what went poorly; a templated follow-up for them ("Add an alert on the customer-facing
    # symptom of X", "Review the paging and escalation policy for X") is work nobody agreed to
    # (measured: 0 of 8 such items on the development sets matched a reviewer's item).
    gaps: list[ActionItem] = []
    if not pm.root_cause and not pm.trigger:
        gaps.append(
            act.gap(
                "investigate",
                "P1",
                "Determine what triggered the incident and record it in this postmortem",
                "incident commander",
                f.ev("impact_start"),
            )
        )
    return act.merge(stated, act.implied(f.data) + gaps, same)


# Follow-ups that add a safeguard: the work exists because the safeguard did not.
SAFEGUARD_TYPES = frozenset({"prevent", "detect", "process"})
SAFEGUARDS_LISTED = 5


def missing_safeguards(items: list[ActionItem]) -> list[Claim]:
    """The safeguards the team's own follow-ups add were not in place during the incident: one
    contributing-factor claim listing them, citing where each was said. Repairs, mitigations and
    investigations say nothing about what was missing; retro's own suggestions are not evidence."""
    named = [i for i in items if i.origin == "stated" and i.type in SAFEGUARD_TYPES and i.citations]
    # the most urgent first (P0: the safeguard against this incident's own cause), then as said
    named = sorted(named, key=lambda i: i.priority)[:SAFEGUARDS_LISTED]
    if not named:
        return []
    listed = ", ".join(f"“{i.title.rstrip('.')}”" for i in named)
    return [
        claim(
            f"The follow-ups add safeguards that were missing or too weak: {listed}.",
            [c for i in named for c in i.citations[:1]],
        )
    ]


def open_questions(f: _Facts, pm: Postmortem) -> list[str]:
    out: list[str] = []
    imp = f.at("impact_start")
    if not pm.trigger and not pm.root_cause:
        out.append(
            f"What changed shortly before {hhmm(imp)}? The evidence shows no deploy, configuration change or stated cause."
        )
    elif not pm.root_cause or all("suspected" in c.text for c in pm.root_cause):
        out.append(
            "What is the mechanism of the failure? No responder stated it as established in the evidence."
        )
    if pm.trigger and "no responder confirmed" in pm.trigger[0].text:
        out.append(
            f"Was the change before impact really the trigger? Nobody said so in the evidence [{pm.trigger[0].citations[0]}]."
        )
    det = f.ms.get("detected")
    if det and det.at and ("customer" in det.rule or "person" in det.rule):
        out.append(f"Why did no alert fire before the first report at {hhmm(det.at)}?")
    if "same as detection" in f.rule("impact_start"):
        out.append(
            "When did the impact really begin? The evidence shows no earlier symptom than detection, so time to detect reads 0."
        )
    out += _silences(f)
    for name, m in f.ms.items():
        if m.at and m.confidence < 0.5 and not m.overridden:
            out.append(
                f"Is the {name.replace('_', ' ')} time ({hhmm(m.at)}) right? It was inferred from: {m.rule}."
            )
    out += _unanswered(f)
    return out


def _silences(f: _Facts) -> list[str]:
    rows = f.between("detected", "mitigated")
    out = []
    for prev, cur in zip(rows, rows[1:], strict=False):
        if cur.at - prev.at >= SILENCE:
            out.append(
                f"What happened between {hhmm(prev.at)} and {hhmm(cur.at)}? The timeline has no events in that stretch [{prev.id}] [{cur.id}]."
            )
    return out[:2]


def _unanswered(f: _Facts) -> list[str]:
    """Substantive questions responders asked about cause or impact that nothing later answers."""
    out: list[str] = []
    for s in f.pick.sentences:
        row = f.pick.by_id[s.row_id]
        if not row.human or not s.has("question", 1.5) or len(s.text.split()) < 5:
            continue
        later = [
            o
            for o in f.pick.sentences
            if f.pick.by_id[o.row_id].at > row.at
            and not o.has("question")
            and overlap(s.text, o.text) >= 0.3
        ]
        if later:
            continue
        asked = statement(s.text).rstrip(".")
        asked = asked if asked.endswith("?") else asked + "?"
        out.append(
            f"Asked by {row.actor or 'a responder'} at {hhmm(row.at)} and not answered in the evidence: “{asked}” [{row.id}]"
        )
        if len(out) >= 2:
            break
    return out
