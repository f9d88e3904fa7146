"""The offline engine: a useful, deterministic draft from cue phrases, rules and structure.

It never calls a network. Everything it states comes from the evidence rows, and each claim
cites the rows it rests on. Chat text is only ever quoted, never followed.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta

from retro.draft.engines import actions as act
from retro.draft.engines import extract as ex
from retro.draft.engines.base import DraftInput, Engine, EvidenceRow
from retro.draft.milestones import human_duration
from retro.models import ActionItem, Claim, Postmortem, Progress, no_progress

SILENCE = timedelta(minutes=20)
SLOW_ACK_S = 15 * 60


def hhmm(at: datetime | None) -> str:
    return f"{at:%H:%M} UTC" if at else "an unknown time"


class _Facts:
    """Indexes over the evidence that several sections share."""

    def __init__(self, data: DraftInput) -> None:
        self.data = data
        self.rows = data.rows
        self.by_id = {r.id: r for r in data.rows}
        self.ms = data.milestones
        self.human = [r for r in data.rows if r.kind == "message"]
        self.alerts = [r for r in data.rows if r.kind == "alert_firing" and not r.duplicate]
        self.changes = [r for r in data.rows if r.kind == "change_deployed"]

    def at(self, name: str) -> datetime | None:
        m = self.ms.get(name)
        return m.at if m else None

    def ev(self, *names: str) -> list[str]:
        return [i for n in names if (m := self.ms.get(n)) for i in m.evidence[:1]]

    def alert_names(self) -> list[str]:
        names = Counter(_alert_label(r) for r in self.alerts)
        return [n for n, _ in names.most_common(4) if n]

    def services(self) -> str:
        return ", ".join(self.data.services) if self.data.services else "the affected service"

    def between(self, start: str, end: str) -> list[EvidenceRow]:
        lo, hi = self.at(start), self.at(end)
        return [r for r in self.rows if (lo is None or r.at >= lo) and (hi is None or r.at <= hi)]


def _alert_label(row: EvidenceRow) -> str:
    """The alert's name as its text shows it: "[FIRING] HighErrorRate: summary" → HighErrorRate."""
    text = re.sub(
        r"^(Alert (#\S+ )?(triggered|resolved|created|closed)|Incident #\d+ (triggered|created)):\s*",
        "",
        row.text.strip(),
    )
    text = re.sub(r"^(\[[A-Za-z:0-9 ]+\]\s*)+", "", text).strip()
    return text.split(":", 1)[0].strip()[:60] if text else ""


def _claim(text: str, cites: list[str]) -> Claim:
    return Claim(text=text, citations=[c for c in dict.fromkeys(cites) if c])


class OfflineEngine(Engine):
    name = "offline"

    def draft(self, data: DraftInput, *, progress: Progress = no_progress) -> Postmortem:
        f = _Facts(data)
        progress("draft", 0, 10)
        pm = Postmortem(
            incident_id=data.incident_id,
            title=data.title or f"Incident {data.incident_id}",
            severity=data.severity,
            services=data.services,
            engine=self.name,
        )
        pm.trigger = trigger(f)
        pm.root_cause = root_cause(f)
        pm.impact = impact(f)
        pm.detection = detection(f)
        pm.response = response(f)
        pm.recovery = recovery(f)
        pm.summary = summary(f, pm)
        pm.contributing_factors = contributing(f)
        pm.went_well, pm.went_poorly, pm.got_lucky = went_well(f), went_poorly(f), got_lucky(f)
        pm.action_items = action_items(f, pm)
        pm.open_questions = open_questions(f, pm)
        progress("draft", 10, 10)
        return pm


def summary(f: _Facts, pm: Postmortem) -> list[Claim]:
    imp, mit, res = f.at("impact_start"), f.at("mitigated"), f.at("resolved")
    out: list[Claim] = []
    if imp:
        span = f"from {hhmm(imp)}" + (
            f" until mitigation at {hhmm(mit)} ({human_duration(int((mit - imp).total_seconds()))})"
            if mit
            else ""
        )
        out.append(
            _claim(
                f"On {imp:%Y-%m-%d}, {f.services()} {'were' if len(f.data.services) > 1 else 'was'} impaired {span}.",
                f.ev("impact_start", "mitigated"),
            )
        )
    out += pm.detection[:1]
    if pm.trigger:
        out.append(pm.trigger[0])
    elif pm.root_cause:
        out.append(pm.root_cause[0])
    mitigation = f.ms.get("mitigated")
    row = f.by_id.get(mitigation.evidence[0]) if mitigation and mitigation.evidence else None
    if row is not None and ex.usable(row) and (said := ex.sentences(row)):
        out.append(_claim(ex.quote(said[0]), [row.id]))
    elif pm.recovery:
        out.append(pm.recovery[0])
    if res:
        out.append(_claim(f"The incident was resolved at {hhmm(res)}.", f.ev("resolved")))
    return out


def impact(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    imp, mit = f.at("impact_start"), f.at("mitigated")
    if imp and mit:
        out.append(
            _claim(
                f"Customer-facing impact lasted about {human_duration(int((mit - imp).total_seconds()))}, "
                f"from {hhmm(imp)} to {hhmm(mit)}.",
                f.ev("impact_start", "mitigated"),
            )
        )
    names = f.alert_names()
    if names:
        cites = [r.id for r in f.alerts if _alert_label(r) in names][:3]
        out.append(_claim(f"Alerts that fired: {', '.join(names)}.", cites))
    window = f.between("impact_start", "resolved") or f.rows
    figures = [
        s for s in ex.rank(window, ex.IMPACT, boost=ex.NUMBER, limit=4) if ex.NUMBER.search(s.text)
    ]
    out += [_claim(ex.quote(s), [s.row.id]) for s in figures[:3]]
    updates = [r for r in f.rows if r.kind == "status_page_update"][:2]
    out += [
        _claim(f"A status page update said: “{ex.FILLER.sub('', r.text)[:240]}”", [r.id])
        for r in updates
    ]
    return out


def detection(f: _Facts) -> list[Claim]:
    det = f.ms.get("detected")
    out: list[Claim] = []
    if det and det.at and det.evidence:
        row = f.by_id.get(det.evidence[0])
        if row and row.kind in ("alert_firing", "page_triggered"):
            what = _alert_label(row) or row.text[:80]
            out.append(
                _claim(
                    f"The incident was detected by an automated {f.data.source_titles.get(row.source, row.source)} signal ({what}) at {hhmm(det.at)}.",
                    [row.id],
                )
            )
        elif row:
            out.append(
                _claim(
                    f"No alert fired before the first human report at {hhmm(det.at)}; people, not monitoring, detected the incident.",
                    [row.id],
                )
            )
    ttd = f.data.metrics.time_to_detect_s
    if ttd is not None and ttd > 0:
        out.append(
            _claim(f"Time to detect was {human_duration(ttd)}.", f.ev("impact_start", "detected"))
        )
    pages = [r for r in f.rows if r.kind == "page_triggered"][:1]
    acks = f.ms.get("acknowledged")
    if pages:
        out.append(
            _claim(
                f"{f.data.source_titles.get(pages[0].source, pages[0].source)} paged the on-call at {hhmm(pages[0].at)}.",
                [pages[0].id],
            )
        )
    if acks and acks.at and f.data.metrics.time_to_acknowledge_s is not None:
        out.append(
            _claim(
                f"The first acknowledgement came at {hhmm(acks.at)}, {human_duration(f.data.metrics.time_to_acknowledge_s)} after detection.",
                f.ev("detected", "acknowledged"),
            )
        )
    escalations = [r for r in f.rows if r.kind == "page_escalated"]
    if escalations:
        out.append(
            _claim(
                f"The page escalated {len(escalations)} time(s), first at {hhmm(escalations[0].at)}.",
                [escalations[0].id],
            )
        )
    return out


def response(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    dec = f.ms.get("declared")
    if dec and dec.at and dec.evidence:
        out.append(_claim(f"The incident was declared at {hhmm(dec.at)}.", dec.evidence[:1]))
    window = f.between("detected", "mitigated")
    for sent in ex.rank(window, ex.HYPOTHESIS, boost=ex.TECH, require_boost=True, limit=3):
        out.append(_claim(ex.quote(sent), [sent.row.id]))
    changes = [r for r in window if r.kind in ("priority_change", "page_escalated")][:1]
    titles = f.data.source_titles
    out += [_claim(f"{titles.get(r.source, r.source)}: {r.text[:160]}", [r.id]) for r in changes]
    return out


def recovery(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    window = f.between("detected", "resolved")
    actions = ex.rank(window, ex.MITIGATION_ACTION, boost=ex.TECH, limit=2)
    out += [_claim(ex.quote(s), [s.row.id]) for s in sorted(actions, key=lambda s: s.row.at)]
    mit = f.ms.get("mitigated")
    if mit and mit.at:
        out.append(
            _claim(f"The impact was mitigated at {hhmm(mit.at)} ({mit.rule}).", mit.evidence[:2])
        )
    ttm = f.data.metrics.time_to_mitigate_s
    if ttm is not None:
        out.append(
            _claim(
                f"Time to mitigate was {human_duration(ttm)} from impact start.",
                f.ev("impact_start", "mitigated"),
            )
        )
    return out


def trigger(f: _Facts) -> list[Claim]:
    imp = f.at("impact_start") or (f.rows[0].at if f.rows else None)
    if imp is None:
        return []
    near = [r for r in f.changes if imp - timedelta(hours=3) <= r.at <= imp + timedelta(minutes=5)]
    if near:
        row = near[-1]
        return [
            _claim(
                f"The trigger appears to be a change deployed at {hhmm(row.at)}, shortly before impact began: “{row.text[:200]}”",
                [row.id],
            )
        ]
    return []


def root_cause(f: _Facts) -> list[Claim]:
    """The stated mechanism: cue sentences from people's words, else the best-supported hypothesis."""
    # Follow-up lists name fixes, not causes ("no standing credentials on laptops").
    rows = [
        r
        for r in f.rows
        if r.kind != "status_page_update" and not act.FOLLOW_UP_ROOT.search(r.text)
    ]
    picked = [
        s
        for s in ex.rank(rows, ex.ROOT_CAUSE, boost=ex.TECH, limit=4)
        if not ex.RESOLUTION_TALK.search(s.text)
    ][:2]
    if not picked:
        picked = ex.rank(rows, ex.HYPOTHESIS, boost=ex.TECH, limit=1)
    claims = [_claim(ex.quote(s), [s.row.id]) for s in picked]
    ticket = _incident_ticket(f)
    if ticket is not None and ex.ROOT_CAUSE.search(ticket.text):
        claims.append(
            _claim(f"The incident ticket names it: “{_ticket_title(ticket.text)}”", [ticket.id])
        )
    return claims


def _incident_ticket(f: _Facts) -> EvidenceRow | None:
    tickets = [r for r in f.rows if r.kind == "ticket_created"]
    own = [r for r in tickets if r.text.startswith(f"{f.data.incident_id} ")]
    found = own or tickets
    return found[0] if found else None


def _ticket_title(text: str) -> str:
    return re.sub(r"^[A-Z][A-Z0-9_]+-\d+ created:\s*", "", text)[:200]


def contributing(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    det = f.ms.get("detected")
    if det and "human report" in det.rule:
        out.append(
            _claim(
                "No alert covered this failure mode, so detection depended on reports from people.",
                det.evidence[:1],
            )
        )
    tta = f.data.metrics.time_to_acknowledge_s
    if tta is not None and tta > SLOW_ACK_S:
        out.append(
            _claim(
                f"The page went unacknowledged for {human_duration(tta)}.",
                f.ev("detected", "acknowledged"),
            )
        )
    factors = ex.rank(
        f.rows,
        re.compile(
            r"\b(also|contribut\w+|made (it|this|things) ((way|much|a lot|even) )?worse|compound\w+|on top of|"
            r"(is|was) why|(were|was|are) (flying )?blind|nothing (looks at|watches|alerts on)|"
            r"no canary|without (a )?(canary|review|test|load test)|wasn'?t caught|missing|lack of|"
            r"could never|no signal|at once|untested|not tested|assum\w+|silently|undone|undid|"
            r"re-?applied|no (alert|monitoring|runbook)|too (small|low|high|large|big|many|few|long|slow|short|aggressive|tight)|never|only (on|in|for|checks?|watch\w*)|"
            r"nobody|no one|not monitored|unmonitored|nothing (alerted|paged|caught)|took \d+|"
            r"at the same time|simultaneous\w*|all (pods|hosts|nodes|instances))\b",
            re.I,
        ),
        boost=ex.TECH,
        require_boost=False,
        limit=4,
    )
    out += [_claim(ex.quote(s), [s.row.id]) for s in factors]
    if len(f.alerts) >= 15:
        out.append(
            _claim(
                f"{len(f.alerts)} alerts fired during the incident, which made the signal hard to read.",
                [f.alerts[0].id, f.alerts[-1].id],
            )
        )
    return out


def went_well(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    m = f.data.metrics
    det = f.ms.get("detected")
    if (
        det
        and "human report" not in det.rule
        and m.time_to_detect_s is not None
        and m.time_to_detect_s <= 600
    ):
        out.append(
            _claim(
                f"Monitoring detected the problem within {human_duration(m.time_to_detect_s)} of impact.",
                f.ev("impact_start", "detected"),
            )
        )
    if m.time_to_acknowledge_s is not None and m.time_to_acknowledge_s <= 300:
        out.append(
            _claim(
                f"The on-call acknowledged within {human_duration(m.time_to_acknowledge_s)}.",
                f.ev("acknowledged"),
            )
        )
    out += [_claim(ex.quote(s), [s.row.id]) for s in ex.rank(f.rows, ex.WENT_WELL, limit=2)]
    return out


def went_poorly(f: _Facts) -> list[Claim]:
    out: list[Claim] = []
    m = f.data.metrics
    if m.time_to_acknowledge_s is not None and m.time_to_acknowledge_s > SLOW_ACK_S:
        out.append(
            _claim(
                f"Acknowledgement took {human_duration(m.time_to_acknowledge_s)}.",
                f.ev("detected", "acknowledged"),
            )
        )
    det = f.ms.get("detected")
    if det and "human report" in det.rule:
        out.append(_claim("Customers noticed the problem before monitoring did.", det.evidence[:1]))
    out += [_claim(ex.quote(s), [s.row.id]) for s in ex.rank(f.rows, ex.WENT_POORLY, limit=3)]
    return out


def got_lucky(f: _Facts) -> list[Claim]:
    return [
        _claim(ex.quote(s), [s.row.id])
        for s in ex.rank(f.rows, ex.LUCKY, skip_negated=False, limit=2)
    ]


def action_items(f: _Facts, pm: Postmortem) -> list[ActionItem]:
    services = f.data.services
    svc = services[0] if services else "the affected service"
    gaps: list[ActionItem] = []
    det = f.ms.get("detected")
    if det and "human report" in det.rule:
        gaps.append(
            act.gap(
                "detect",
                "P1",
                f"Add an alert on the customer-facing symptom of {svc} that fires before customers report it",
                "SRE team",
                det.evidence[:1],
            )
        )
    tta = f.data.metrics.time_to_acknowledge_s
    if (tta is not None and tta > SLOW_ACK_S) or any(r.kind == "page_escalated" for r in f.rows):
        gaps.append(
            act.gap(
                "process",
                "P1",
                f"Review the paging and escalation policy for {svc} so a page is acknowledged within 5 minutes",
                "SRE team",
                f.ev("detected", "acknowledged"),
                "The escalation policy escalates after 5 minutes, and a test page is acknowledged within 5 minutes.",
            )
        )
    if pm.trigger and not any("canary" in r.text.casefold() for r in f.rows):
        gaps.append(
            act.gap(
                "prevent",
                "P1",
                f"Roll out changes to {svc} through a canary stage with automatic rollback",
                "platform team",
                pm.trigger[0].citations,
            )
        )
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
    if len(f.alerts) >= 15:
        gaps.append(
            act.gap(
                "detect",
                "P2",
                "Group and deduplicate the alerts that fired together so one failure pages once",
                "SRE team",
                [f.alerts[0].id],
            )
        )
    return act.merge(act.stated(f.data), gaps)


def open_questions(f: _Facts, pm: Postmortem) -> list[str]:
    out: list[str] = []
    imp = f.at("impact_start")
    if not pm.trigger and not pm.root_cause:
        out.append(
            f"What changed shortly before {hhmm(imp)}? The evidence shows no deploy, config change or stated cause."
        )
    elif not pm.root_cause:
        out.append(
            "Why did the change cause this failure? No responder stated the mechanism in the evidence."
        )
    det = f.ms.get("detected")
    if det and "human report" in det.rule:
        out.append(f"Why did no alert fire before the first report at {hhmm(det.at)}?")
    out += _silences(f)
    for name, m in f.ms.items():
        if m.at and m.confidence < 0.5:
            out.append(
                f"Is the {name.replace('_', ' ')} time ({hhmm(m.at)}) right? It was inferred from: {m.rule}."
            )
    asked = ex.rank(
        f.human,
        re.compile(r"\b(why|how come|what caused|do we know)\b.*\?$", re.I),
        skip_negated=False,
        limit=2,
    )
    out += [
        f"Asked during the incident and not clearly answered: “{s.text}” [{s.row.id}]"
        for s in asked
    ]
    return out


def _silences(f: _Facts) -> list[str]:
    rows = f.between("detected", "mitigated")
    out = []
    for prev, cur in zip(rows, rows[1:], strict=False):
        if cur.at - prev.at >= SILENCE:
            out.append(
                f"What happened between {hhmm(prev.at)} and {hhmm(cur.at)}? The timeline has no events in that stretch "
                f"[{prev.id}] [{cur.id}]."
            )
    return out[:3]
