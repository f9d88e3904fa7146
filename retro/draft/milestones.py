"""Infer incident milestones from the timeline's evidence, and the time-to-X metrics.

Each milestone carries its time, the ids of the events behind it, a confidence and the rule
that chose it, so a reviewer can check it and override it in the Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from retro.models import Metrics, Milestone, Timeline, TimelineEvent, seconds_between

CUSTOMER_REPORT = re.compile(
    r"\b(customers?|users?|clients?|merchants?|tenants?|support|tickets?|zendesk|complain\w*|report\w*)\b"
    # [\s\S]: a pasted ticket or mail puts the symptom on the next line
    r"[\s\S]{0,80}?\b(error|errors|fail\w*|down|can'?t|cannot|couldn'?t|could not|unable|broken|slow|"
    r"timeouts?|5\d\d|missing|outage|stopped|not (working|loading|showing|updating|arriving))\b",
    re.IGNORECASE,
)
ACK_CUE = re.compile(
    r"\b(ack(ed|ing|nowledg\w*)?|looking( into it| at it| now)?|on it|investigating|i'?m on|taking a look|checking)\b",
    re.IGNORECASE,
)
DECLARE_CUE = re.compile(
    r"\b(declar\w+|open(ing|ed)?|start(ing|ed)?|rais(ing|ed))\b.{0,30}\b(an? )?(sev ?\d|incident|major incident)\b"
    r"|\bsev ?[0-4]\b.{0,20}\b(declared|incident)\b",
    re.IGNORECASE,
)
MITIGATION_CUE = re.compile(
    r"\b(mitigat\w+|rolled back|rollback (is )?(complete|done|finished)|revert(ed)? (is )?(out|deployed|done|live)|"
    r"back to normal|recover(ed|ing)|error rates? (is |are )?(back|down|dropp\w+|normal)|stabili[sz]ed|"
    r"service (is )?restored|restored service|traffic (is )?(back|flowing)|green again|healthy again|fix (is )?(out|deployed|live)|"
    r"(synced|deployed|applied|rolled out|shipped) the (revert|rollback|fix|hotfix)|"
    r"(revert|rollback|fix|hotfix) (has been |was |is )?(synced|deployed|applied|rolled out|live|out)|"
    r"failover (is )?(complete|done)|workaround (is )?(in place|live|applied)|(flowing|working|serving) again|"
    r"(is|are) back (up|online)|impact\b[^.]{0,30}?\b(is|has been|has) (now )?(over|ended|stopped)|no (more|longer) (errors|failing))\b",
    re.IGNORECASE,
)
RESOLVE_CUE = re.compile(
    r"\b(resolv(ed|ing) (the |this )?incident|incident (is )?(now )?(resolved|closed|over)|clos(e|ing) (out )?(the |this )?incident|"
    r"marking (it |this )?(as )?resolved|all clear|fully resolved|we('re| are) resolved|^resolved\b)",
    re.IGNORECASE,
)
NEGATION = re.compile(
    r"\b(not|n't|no longer|isn'?t|aren'?t|still|yet|if|once|until|till|whether|before|after|when|"
    r"expect\w*|estimat\w*|hope\w*|eta|soon|will|should|almost|close to|wait\w*)\b",
    re.IGNORECASE,
)
FAILURE = re.compile(
    r"\b(error|errors|fail\w*|down|can'?t|cannot|unable|broken|slow|timeouts?|5\d\d|missing|outage|"
    r"stopped|not (working|loading|showing|updating|arriving)|unavailable|degraded)\b",
    re.IGNORECASE,
)
# Data-loss incidents date copies and lost writes ("restore the copy from 17:05"); such a time
# says what data survived, not when the impact began.
DATA_POINT = re.compile(
    r"\b(cop(y|ies)|snapshots?|backups?|dumps?|restor\w*|(is|are|was|were|be|get) lost|"
    r"written|created|changed)\b",
    re.IGNORECASE,
)
ENDED = re.compile(
    r"\b(stopped|ended|over|resolved|recovered|back to normal|mitigated|fixed|cleared|"
    r"flat|stable|steady|holding|under \d|below)\b",
    re.I,
)
STATED_ONSET = re.compile(
    r"\b(since|started at|starting at|began at|beginning at|step at|spike at|jump at|from)\s+"
    r"(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)\b",
    re.IGNORECASE,
)
MITIGATION_WINDOW = timedelta(minutes=30)
RESOLVED_STATUS = re.compile(r"\b(resolved|closed|done|complete[d]?|fixed)\b", re.IGNORECASE)
MITIGATED_STATUS = re.compile(r"\b(mitigat\w+|monitoring|recover\w+)\b", re.IGNORECASE)

PAGE_ACK_KINDS = ("page_acknowledged",)


@dataclass
class Candidate:
    event: TimelineEvent
    confidence: float
    rule: str
    support: tuple[str, ...] = ()
    at: datetime | None = None  # when the milestone is earlier than its evidence (a stated time)

    @property
    def when(self) -> datetime:
        return self.at or self.event.at


def _human_messages(timeline: Timeline) -> list[TimelineEvent]:
    return [e for e in timeline.events if e.kind == "message" and not e.is_bot]


def _affirmative(event: TimelineEvent, cue: re.Pattern[str]) -> bool:
    """The cue matches in a sentence that does not negate or defer it ("not mitigated yet")."""
    for sentence in re.split(r"(?<=[.!?])\s+|\n", event.text):
        match = cue.search(sentence)
        if match and not NEGATION.search(
            sentence[: match.start()] + " " + sentence[match.end() :][:20]
        ):
            return not sentence.rstrip().endswith("?")
    return False


def _alerts(timeline: Timeline) -> list[TimelineEvent]:
    return [e for e in timeline.events if e.kind == "alert_firing" and e.duplicate_of is None]


def stated_onset(timeline: Timeline, before: datetime) -> tuple[TimelineEvent, datetime] | None:
    """An onset time a responder states ("errors since 13:55") that is earlier than `before`.

    Typed times may be UTC or the incident's local zone; a time that lands in the three hours
    before the first signal, in either reading, is taken.
    """
    zones = [UTC, _zone(timeline)]
    found: list[tuple[TimelineEvent, datetime]] = []
    for event in timeline.events:
        if event.kind not in ("message", "comment", "note") or event.is_bot:
            continue
        for match in STATED_ONSET.finditer(event.text):
            sentence = _sentence_at(event.text, match.start())
            if ENDED.search(sentence):  # "impact has stopped as of 10:04" states an end
                continue
            if match[1].casefold() in ("since", "from") and DATA_POINT.search(sentence):
                continue  # "the staging copy from 17:05" dates data, not an onset
            explicit_utc = re.match(r"\s*(utc|z|gmt)\b", event.text[match.end() :], re.IGNORECASE)
            readings = [
                event.at.astimezone(tz)
                .replace(hour=int(match["h"]), minute=int(match["m"]), second=0, microsecond=0)
                .astimezone(UTC)
                for tz in (zones[:1] if explicit_utc else zones)
            ]
            # People state recent times: of the UTC and local readings, the one closest
            # before the message is what they meant ("errors flat since 10:04", sent 10:07).
            past = [r for r in readings if r <= event.at]
            stated = max(past, default=None)
            if stated is not None and before - timedelta(hours=3) <= stated < before:
                found.append((event, stated))
    return min(found, key=lambda pair: pair[1], default=None)


def _sentence_at(text: str, pos: int) -> str:
    start = max(text.rfind(".", 0, pos), text.rfind("\n", 0, pos)) + 1
    ends = [i for i in (text.find(".", pos), text.find("\n", pos)) if i >= 0]
    return text[start : min(ends) if ends else len(text)]


def human_reports(timeline: Timeline) -> list[TimelineEvent]:
    """Reports of customer-facing symptoms: chat messages, and support tickets about failures."""
    chat = [e for e in _human_messages(timeline) if CUSTOMER_REPORT.search(e.text)]
    tickets = [
        e
        for e in timeline.events
        if e.kind == "ticket_created"
        and "incident" not in str(e.attrs.get("issuetype", "")).casefold()
        and FAILURE.search(e.text)
    ]
    return sorted(chat + tickets, key=lambda e: e.at)


def _zone(timeline: Timeline) -> tzinfo:
    """Times people type are in the incident's zone when incident.yaml names one, else UTC."""
    if timeline.incident.timezone:
        try:
            return ZoneInfo(timeline.incident.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def impact_start(timeline: Timeline, detected: Candidate | None) -> Candidate | None:
    """The earliest symptom: a stated onset, an alert's startsAt, or an earlier customer report."""
    first = impact_from_signals(timeline, detected)
    if first is None:
        return None
    onset = stated_onset(timeline, first.event.at)
    if onset is not None:
        event, at = onset
        return Candidate(event, 0.6, f"onset time stated by a responder ({at:%H:%M} UTC)", at=at)
    return first


def impact_from_signals(timeline: Timeline, detected: Candidate | None) -> Candidate | None:
    """The earliest symptom: an alert's startsAt, or a customer report before any alert."""
    monitors = timeline.with_role("monitor")
    alerts = [e for e in _alerts(timeline) if e.source in monitors] or _alerts(timeline)
    reports = human_reports(timeline)
    first_alert = min(alerts, key=lambda e: e.at, default=None)
    first_report = min(reports, key=lambda e: e.at, default=None)
    if first_alert and (first_report is None or first_alert.at <= first_report.at):
        return Candidate(first_alert, 0.8, "first alert's start time (startsAt)")
    if first_report:
        return Candidate(first_report, 0.5, "first report of customer-facing symptoms")
    return (
        Candidate(detected.event, 0.3, "no earlier symptom: same as detection")
        if detected
        else None
    )


def detected(timeline: Timeline) -> Candidate | None:
    """The first automated signal, or the first human report when that came earlier."""
    signals = [
        e
        for e in timeline.events
        if e.duplicate_of is None and (e.kind == "alert_firing" or (e.kind == "page_triggered"))
    ]
    reports = human_reports(timeline)
    first_signal = min(signals, key=lambda e: e.at, default=None)
    first_report = min(reports, key=lambda e: e.at, default=None)
    if first_signal and (first_report is None or first_signal.at <= first_report.at):
        kind = "alert" if first_signal.kind == "alert_firing" else "page"
        return Candidate(first_signal, 0.85, f"first {kind} received")
    if first_report:
        return Candidate(first_report, 0.6, "first human report (no alert fired earlier)")
    tickets = [e for e in timeline.events if e.kind == "ticket_created"]
    if tickets:
        return Candidate(min(tickets, key=lambda e: e.at), 0.4, "incident ticket opened")
    return None


def acknowledged(timeline: Timeline, after: Candidate | None) -> Candidate | None:
    acks = [e for e in timeline.events if e.kind in PAGE_ACK_KINDS]
    if acks:
        return Candidate(min(acks, key=lambda e: e.at), 0.9, "first page acknowledgement")
    start = after.event.at if after else None
    replies = [
        e
        for e in _human_messages(timeline)
        if (start is None or e.at >= start) and ACK_CUE.search(e.text)
    ]
    if replies:
        return Candidate(replies[0], 0.5, "first responder message saying they were on it")
    return None


def declared(timeline: Timeline) -> Candidate | None:
    marked = [e for e in timeline.events if "ic_declared" in e.attrs.get("marks", [])]
    cues = [e for e in _human_messages(timeline) if DECLARE_CUE.search(e.text)]
    tickets = [
        e
        for e in timeline.events
        if e.kind == "ticket_created"
        and "incident" in str(e.attrs.get("issuetype", "incident")).casefold()
    ]
    found = [Candidate(e, 0.7, "incident commander named in chat") for e in marked]
    found += [Candidate(e, 0.7, "incident declared in chat") for e in cues]
    found += [Candidate(e, 0.6, "incident ticket opened") for e in tickets]
    return min(found, key=lambda c: c.event.at, default=None)


# Status pages lead each update with its state: "Monitoring - A fix has been implemented …".
_STATUS_LEAD = re.compile(
    r"^\s*(investigating|identified|monitoring|update|resolved|completed|scheduled|"
    r"in progress|verifying|postmortem)\s*[-–—:]",
    re.IGNORECASE,
)


def _status_to(timeline: Timeline, pattern: re.Pattern[str]) -> list[TimelineEvent]:
    """Status changes and status-page updates whose new state matches pattern.

    A status-page update without a state field is read by its leading state word; with none,
    its text must say so affirmatively ("recovering" in "reads are recovering, uploads are
    still failing" or "estimated recovery this afternoon" does not count).
    """
    out = []
    for e in timeline.events:
        if e.kind not in ("status_change", "status_page_update"):
            continue
        state = e.attrs.get("to") or e.attrs.get("status")
        if state:
            matched = bool(pattern.search(str(state)))
        elif e.kind == "status_page_update" and (lead := _STATUS_LEAD.match(e.text)):
            matched = bool(pattern.search(lead.group(1)))
        else:
            matched = _affirmative(e, pattern) and not STILL_IMPAIRED.search(e.text)
        if matched:
            out.append(e)
    return out


# A step that responders say changed nothing ("rollback done. no change in errors") mitigated
# nothing, in the same message or within the next 30 minutes.
NO_EFFECT = re.compile(
    r"\b(no change in (the )?(errors?|error rates?|5xx|latency|graphs?|dashboards?|symptoms?)|"
    r"no (improvement|difference|effect)|made no difference|didn'?t (help|fix (it|anything)|change anything)|"
    r"did not (help|fix (it|anything)|change anything)|not the deploy|(errors?|5xx) (are |is )?unchanged)\b",
    re.IGNORECASE,
)
# A message that also says the impact goes on ("reads recovering. PUTs still failing. not
# mitigated yet") reports partial recovery, not mitigation.
STILL_IMPAIRED = re.compile(
    r"\b(not (yet )?(mitigated|resolved|recovered|fixed)|still (failing|down|broken|erroring|seeing errors))\b",
    re.IGNORECASE,
)
REGRESSION = re.compile(
    r"\b(going back up|back up again|(errors?|5xx|latency|alerts?) (are |is )?(back|climbing|rising|spiking)|"
    r"still (seeing|failing|broken|down|erroring)|not (fixed|mitigated|resolved|recovered)|regress\w*|"
    r"undone|undid|re-?applied|flipped back|came back|returned|relapsed|again,? (errors|failing|down))\b",
    re.IGNORECASE,
)


def mitigated(timeline: Timeline, detected_at: Candidate | None) -> Candidate | None:
    """The first claim of mitigation that nothing later contradicts.

    Claims come from responders ("rolled back, error rate back to normal") and statuses
    (Mitigated, Monitoring). A claim that responders contradict within 30 minutes ("errors going
    back up") was premature, and the next one is taken. With no claim, the time every firing
    alert cleared.
    """
    start = detected_at.event.at if detected_at else timeline.events[0].at
    claims = [
        Candidate(e, 0.75, "status moved to mitigated/monitoring")
        for e in _status_to(timeline, MITIGATED_STATUS)
        if e.at >= start
    ]
    claims += [
        Candidate(e, 0.7, "responder reported mitigation")
        for e in _human_messages(timeline)
        if e.at >= start
        and _affirmative(e, MITIGATION_CUE)
        and not NO_EFFECT.search(e.text)
        and not STILL_IMPAIRED.search(e.text)
    ]
    claims.sort(key=lambda c: c.event.at)
    cleared = _alerts_cleared(timeline, start)
    for claim in claims:
        if _contradicted(timeline, claim.event.at):
            continue
        if (
            cleared is not None
            and claim.event.at <= cleared.at <= claim.event.at + MITIGATION_WINDOW
        ):
            return Candidate(
                claim.event,
                min(0.85, claim.confidence + 0.1),
                claim.rule + ", as alerts cleared",
                (cleared.id,),
            )
        return claim
    return Candidate(cleared, 0.6, "all firing alerts cleared") if cleared else None


def _contradicted(timeline: Timeline, at: datetime) -> bool:
    """Responders report the problem back within 30 minutes after `at`."""
    return any(
        e.kind == "message"
        and not e.is_bot
        and at < e.at <= at + MITIGATION_WINDOW
        and (REGRESSION.search(e.text) or NO_EFFECT.search(e.text))
        for e in timeline.events
    )


def _alerts_cleared(timeline: Timeline, start: object) -> TimelineEvent | None:
    """The resolution of the last alert still firing, when every alert resolved."""
    firing: dict[str, TimelineEvent] = {}
    last: TimelineEvent | None = None
    lifecycles = timeline.with_role("alerts")
    for event in timeline.events:
        key = event.key.rsplit(":", 1)[0]
        if event.kind == "alert_firing" and event.source in lifecycles:
            firing[key] = event
        elif event.kind == "alert_resolved" and key in firing:
            del firing[key]
            last = event
    return last if last is not None and not firing else None


def resolved(timeline: Timeline, mitigated_at: Candidate | None) -> Candidate | None:
    floor = mitigated_at.event.at if mitigated_at else None

    def after(e: TimelineEvent) -> bool:
        return floor is None or e.at >= floor

    official = [e for e in _status_to(timeline, RESOLVED_STATUS) if after(e)]
    pages = [e for e in timeline.events if e.kind == "page_resolved" and after(e)]
    chat = [e for e in _human_messages(timeline) if after(e) and _affirmative(e, RESOLVE_CUE)]
    human_pages = [e for e in pages if e.actor is not None and not e.actor.is_bot and not e.is_bot]
    found = [Candidate(e, 0.7, "responder declared the incident resolved") for e in chat[:1]]
    found += [Candidate(e, 0.8, "incident ticket or status page resolved") for e in official[:1]]
    found += [Candidate(e, 0.75, "page resolved by a responder") for e in human_pages[:1]]
    if found:
        # A person's declaration wins over automatic resolution (alerts clearing resolve pages).
        return min(found, key=lambda c: c.event.at)
    if pages:
        return Candidate(max(pages, key=lambda e: e.at), 0.6, "last page resolved")
    alerts = [e for e in timeline.events if e.kind == "alert_resolved" and after(e)]
    if alerts:
        return Candidate(max(alerts, key=lambda e: e.at), 0.4, "last alert resolved")
    return None


def infer_milestones(timeline: Timeline) -> dict[str, Milestone]:
    """The milestones stage."""
    if not timeline.events:
        return {}
    det = detected(timeline)
    imp = impact_start(timeline, det)
    if imp and det and imp.when > det.event.at:
        imp = Candidate(det.event, det.confidence * 0.6, "no earlier symptom: same as detection")
    ack = acknowledged(timeline, det)
    dec = declared(timeline)
    mit = mitigated(timeline, det)
    res = resolved(timeline, mit)
    if mit is None and res is not None:
        mit = Candidate(res.event, 0.3, "no separate mitigation found: same as resolution")
    out: dict[str, Milestone] = {}
    for name, cand in (
        ("impact_start", imp),
        ("detected", det),
        ("acknowledged", ack),
        ("declared", dec),
        ("mitigated", mit),
        ("resolved", res),
    ):
        if cand is None:
            out[name] = Milestone(name=name, rule="no evidence found")  # type: ignore[arg-type]
            continue
        at = cand.when
        out[name] = Milestone(
            name=name,  # type: ignore[arg-type]
            at=at,
            evidence=[cand.event.id, *cand.support],  # type: ignore[arg-type]
            confidence=round(cand.confidence, 2),
            rule=cand.rule,
        )
    return out


def compute_metrics(milestones: dict[str, Milestone]) -> Metrics:
    """Time to detect/ack/mitigate/resolve. Definitions are in docs/milestones.md."""

    def at(name: str) -> object:
        m = milestones.get(name)
        return m.at if m else None

    return Metrics(
        time_to_detect_s=seconds_between(at("impact_start"), at("detected")),  # type: ignore[arg-type]
        time_to_acknowledge_s=seconds_between(at("detected"), at("acknowledged")),  # type: ignore[arg-type]
        time_to_mitigate_s=seconds_between(at("impact_start"), at("mitigated")),  # type: ignore[arg-type]
        time_to_resolve_s=seconds_between(at("impact_start"), at("resolved")),  # type: ignore[arg-type]
        duration_s=seconds_between(at("impact_start"), at("mitigated")),  # type: ignore[arg-type]
    )


def human_duration(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    sign = "-" if seconds < 0 else ""
    td = timedelta(seconds=abs(seconds))
    hours, rem = divmod(int(td.total_seconds()), 3600)
    minutes, secs = divmod(rem, 60)
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m" + (f" {secs:02d}s" if secs and minutes < 10 else "")
    return f"{sign}{secs}s"


Rule = Callable[[Timeline], Candidate | None]
