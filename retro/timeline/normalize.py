"""Normalize: merge every source, dedupe, link cross-source alerts, assign ids, choose the window."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import datetime, timedelta
from hashlib import sha1
from operator import attrgetter
from typing import Any

from retro import registry
from retro.errors import BundleError
from retro.models import (
    CHANGE_TICKET,
    CHAT_KINDS,
    IncidentMeta,
    SourceInfo,
    SourceReport,
    Timeline,
    TimelineEvent,
    Window,
)
from retro.timeline.people import join_people

MARGIN_BEFORE = timedelta(minutes=30)
MARGIN_AFTER = timedelta(minutes=60)
CHAT_LOOKBACK = timedelta(hours=2)
LINK_WINDOW = timedelta(minutes=15)
CHANGE_LOOKBACK = timedelta(hours=6)
# How long after the window the team's follow-up work is still read: the review is usually
# within a week or two of the incident.
FOLLOW_UP_HORIZON = timedelta(days=14)

RESOLUTION_KINDS = frozenset({"page_resolved", "alert_resolved"})
_MAYBE_RESOLUTION = RESOLUTION_KINDS | {"status_change", "status_page_update"}
_RESOLVED_STATUS = re.compile(r"\b(resolved|closed|done|complete[d]?|fixed)\b", re.IGNORECASE)
_TOOL_RESOLVED = re.compile(r"^\s*(incident )?resolved\b", re.IGNORECASE)
_CHAT_SIGNAL = re.compile(
    r"\b(outage|incident|down|degraded|errors?|5\d\d|timeouts?|latency|failing|broken|"
    r"customers? (are )?(report|complain)\w*|can'?t (log ?in|access|connect)|unavailable|alert)\b",
    re.IGNORECASE,
)
Sources = dict[str, SourceInfo]


def shift(at: datetime, delta: timedelta) -> datetime:
    """at + delta, held at the ends of the calendar instead of overflowing (year 1 or 9999)."""
    try:
        return at + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=at.tzinfo)


def _sources(sources: Sources | None) -> Sources:
    """The given source table, or every registered connector's."""
    return registry.source_info() if sources is None else sources


def source_order(sources: Sources | None = None) -> dict[str, int]:
    """Each source's rank among events at the same time: the connectors' claim order."""
    infos = sorted(_sources(sources).values(), key=lambda i: (i.order, i.name))
    return {info.name: rank for rank, info in enumerate(infos)}


def with_role(sources: Sources | None, role: str) -> frozenset[str]:
    """The names of the sources whose connector declares `role`."""
    return frozenset(name for name, info in _sources(sources).items() if role in info.roles)


def sort_key(
    event: TimelineEvent, order: dict[str, int] | None = None
) -> tuple[datetime, int, str]:
    rank = (order if order is not None else source_order()).get(event.source, len(order or ()))
    return (event.at, rank, event.key)


def merge(
    events: Iterable[TimelineEvent], dropped: dict[str, int], sources: Sources | None = None
) -> list[TimelineEvent]:
    """Drop joins/leaves and merge events with one key (repeated notifications, re-exports).

    The result does not depend on input order: of several copies the earliest (by time, then
    file and record) is kept, and an edited copy's text wins over an unedited one.
    """
    first: dict[str, TimelineEvent] = {}
    repeats: dict[str, list[TimelineEvent]] = {}  # only keys seen more than once
    joins = 0
    for event in events:
        if event.kind == "membership":
            joins += 1
        elif (seen := first.setdefault(event.key, event)) is not event:
            repeats.setdefault(event.key, [seen]).append(event)
    if joins:
        _count(dropped, "joins and leaves", joins)
    merged: list[TimelineEvent] = []
    for key, only in first.items():
        copies = repeats.get(key)
        if copies is None:
            merged.append(only)
            continue
        copies.sort(
            key=lambda e: (
                e.at,
                e.provenance.file,
                e.provenance.record,
                e.kind,
                e.text,
                e.model_dump_json(),
            )
        )
        kept = copies[0].model_copy(update={"attrs": dict(copies[0].attrs)})
        _count(dropped, f"duplicate {kept.source} records merged", len(copies) - 1)
        kept.attrs["repeats"] = len(copies)
        edited = [e for e in copies if e.edited]
        if edited and not kept.edited:
            kept.text, kept.edited = edited[-1].text, True
        merged.append(kept)
    return sort_events(merged, sources)


def sort_events(events: list[TimelineEvent], sources: Sources | None = None) -> list[TimelineEvent]:
    """The events ordered by sort_key, with C-level sorts instead of a Python key per event.

    Sorting by key, grouping by source in source order, then sorting by time is the same
    order, because each sort is stable. A source no connector declares sorts last.
    """
    by_source: dict[str, list[TimelineEvent]] = {s: [] for s in source_order(sources)}
    for event in sorted(events, key=attrgetter("key")):
        by_source.setdefault(event.source, []).append(event)
    ordered = [e for group in by_source.values() for e in group]
    ordered.sort(key=attrgetter("at"))
    return ordered


ID_HEX_DIGITS = 16
"""Hex digits of an event id after the E: 64 bits of SHA-1 of the event's key.

Two of n events share an id with probability about n²/2⁶⁵: 2.7e-8 for a million events, 2.7e-12
for ten thousand (see docs/bundle.md). Nothing else goes into an id, so no event arriving or
leaving ever changes another event's id.
"""


def event_id(key: str) -> str:
    """The id of the event with this source key: E + the first 16 hex digits of SHA-1(key)."""
    return "E" + sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:ID_HEX_DIGITS]


def assign_ids(events: list[TimelineEvent]) -> None:
    """Ids derive from each event's key alone, so they survive re-runs and new data arriving.

    Keys are unique after merge. Two keys with one id (a 64-bit collision: in practice only a
    bundle crafted for it) stop the run, because a citation must never name two events.
    """
    seen: dict[str, TimelineEvent] = {}
    for event in events:
        ident = event_id(event.key)
        other = seen.setdefault(ident, event)
        if other is not event and other.key != event.key:
            raise BundleError(
                event.provenance.file,
                f"events {other.key!r} and {event.key!r} hash to the same id {ident}",
                record=event.provenance.record,
                hint="remove one of the two records (a 64-bit collision does not happen by "
                "chance); please report it",
            )
        # A plain str into the instance dict: pydantic's __setattr__ would cost more than the
        # hash, and the value needs no validation.
        event.__dict__["id"] = ident


_NAME_SPLIT = re.compile(r"[^a-z0-9]+")


def alert_name(event: TimelineEvent) -> str:
    """A comparable alert name: alertname label, else the title text."""
    attrs = event.attrs
    labels: dict[str, Any] = attrs["labels"] if isinstance(attrs.get("labels"), dict) else {}
    name = attrs.get("alertname") or labels.get("alertname") or attrs.get("alert_name")
    if not name:
        details: dict[str, Any] = attrs["details"] if isinstance(attrs.get("details"), dict) else {}
        name = details.get("alertname") or attrs.get("summary") or attrs.get("title") or event.text
    return "".join(_NAME_SPLIT.split(str(name).casefold()))


def link_cross_source(events: list[TimelineEvent], sources: Sources | None = None) -> int:
    """Link one alert seen by a monitor and by a pager; the pager's copy points to the monitor's."""
    monitor_sources, pager_sources = with_role(sources, "monitor"), with_role(sources, "pager")
    monitors = [e for e in events if e.kind == "alert_firing" and e.source in monitor_sources]
    pagers = [
        e
        for e in events
        if e.kind in ("alert_firing", "page_triggered") and e.source in pager_sources
    ]
    if not pagers or not monitors:
        return 0
    # Only monitors within LINK_WINDOW of a page can match it: an alert storm has thousands
    # of firings, so candidates come from a time-sorted list by bisection, and names are
    # worked out once per monitor, when first needed.
    monitors.sort(key=attrgetter("at"))
    times = [m.at for m in monitors]
    names: dict[int, str] = {}
    linked = 0
    for pager in pagers:
        pname = alert_name(pager)
        if not pname:
            continue
        best: TimelineEvent | None = None
        lo = bisect_left(times, shift(pager.at, -LINK_WINDOW))
        hi = bisect_right(times, shift(pager.at, LINK_WINDOW))
        for i in range(lo, hi):
            monitor = monitors[i]
            mname = names.get(i)
            if mname is None:
                mname = names[i] = alert_name(monitor)
            same = bool(mname and (mname in pname or pname in mname))
            if same and (best is None or abs(monitor.at - pager.at) < abs(best.at - pager.at)):
                best = monitor
        if best is not None:
            pager.duplicate_of = best.id
            pager.links.append(best.id)
            best.links.append(pager.id)
            linked += 1
    return linked


def _is_resolution(event: TimelineEvent, trackers: frozenset[str]) -> bool:
    """An alert or page resolving, a tracked ticket or incident record moving to resolved, a
    status page's resolved update, or an incident tool's resolved time."""
    if event.kind in RESOLUTION_KINDS or event.attrs.get("milestone") == "resolved":
        return True
    if event.kind == "status_page_update":
        return "resolved" in event.attrs.get("customer_update_marks", ())
    if event.kind == "status_change" and event.source in trackers:
        to = event.attrs.get("to")
        if to is not None:
            # Resolved -> Closed after the review is not a second resolution
            after_resolved = _RESOLVED_STATUS.search(str(event.attrs.get("from") or ""))
            return bool(_RESOLVED_STATUS.search(str(to))) and not after_resolved
        # an incident tool's own record (Rootly, incident.io): "Incident resolved: <title>"
        return bool(_TOOL_RESOLVED.match(event.text))
    return False


def _other_ticket(event: TimelineEvent, incident_keys: set[str]) -> bool:
    """A tracker ticket that is not the incident's own: not one of its keys, and of a type
    that is not an incident (a task, story or follow-up); and a change ticket, even one
    incident.yaml lists (its Done is the change finished, not the incident resolved)."""
    key = event.attrs.get("key")
    if event.kind != "status_change" or not key:
        return False
    kind = str(event.attrs.get("issuetype") or "")
    if CHANGE_TICKET.search(kind):
        return True
    if str(key) in incident_keys:
        return False
    return bool(kind) and not _INCIDENT_TICKET.search(kind)


def choose_window(
    events: list[TimelineEvent],
    incident: IncidentMeta,
    *,
    before: timedelta = MARGIN_BEFORE,
    after: timedelta = MARGIN_AFTER,
    sources: Sources | None = None,
) -> Window | None:
    """From the first signal (less a margin) to the last resolution (plus a margin).

    events are sorted by time, as merge returns them.
    """
    if not events:
        return None
    spec = incident.window
    signals = _signals(events, incident)
    if signals:
        first = min(e.at for e in signals)
        lookback = shift(first, -CHAT_LOOKBACK)
        early_chat = [
            e
            for e in _between(events, lookback, first)
            if e.kind == "message" and e.at < first and _CHAT_SIGNAL.search(e.text)
        ]
        start_at = min([first, *(e.at for e in early_chat)])
        reason = "first alert, page or ticket" + (" (or earlier chat report)" if early_chat else "")
    else:
        start_at, reason = _busiest_chat_start(events), "start of the incident conversation"
    trackers = with_role(sources, "tracker")
    found = [
        e
        for e in events
        if (e.kind in _MAYBE_RESOLUTION or "milestone" in e.attrs)
        and e.at >= start_at
        and _is_resolution(e, trackers)
    ]
    # A follow-up ticket done days later is not the incident's resolution: another ticket's
    # resolution counts only when nothing else (alert, page, incident ticket or tool, status
    # page) resolved.
    incident_keys = {incident.id, *incident.jira_keys}
    own = [e for e in found if not _other_ticket(e, incident_keys)]
    resolutions = [e.at for e in (own or found)]
    end_at = max(resolutions) if resolutions else max(e.at for e in events)
    start = spec.start or shift(start_at, -before)
    end = spec.end or shift(end_at, after)
    if spec.start or spec.end:
        reason = (
            "incident.yaml window" if spec.start and spec.end else reason + "; incident.yaml bound"
        )
    return Window(start=start, end=end, reason=reason)


_INCIDENT_TICKET = re.compile(r"incident|outage|sev|problem|postmortem", re.IGNORECASE)
SIGNAL_LOOKBACK = timedelta(hours=6)


def _signals(events: list[TimelineEvent], incident: IncidentMeta) -> list[TimelineEvent]:
    """Alerts, pages and incident tickets; alerts long before the page are background noise.

    A change ticket opened the day before, or a warning that has fired for days, is not the
    start of this incident: signals count only within six hours before the first page or
    incident ticket, when there is one.
    """
    incident_keys = (incident.id, *incident.jira_keys)
    tickets = []
    alerts = []
    for e in events:
        if e.kind == "alert_firing" or e.kind == "page_triggered":
            if e.duplicate_of is None:
                alerts.append(e)
        elif (
            e.kind == "ticket_created"
            and not CHANGE_TICKET.search(str(e.attrs.get("issuetype", "")))
            and (
                _INCIDENT_TICKET.search(str(e.attrs.get("issuetype", "")))
                or str(e.attrs.get("key", "")) in incident_keys
            )
        ):
            # a change ticket listed with the incident's keys was opened to plan the work,
            # often days before: its creation is no signal of the incident
            tickets.append(e)
    anchors = [e for e in alerts if e.kind == "page_triggered"] + tickets
    if not anchors:
        return alerts
    floor = shift(min(e.at for e in anchors), -SIGNAL_LOOKBACK)
    return [e for e in alerts + tickets if e.at >= floor]


def _busiest_chat_start(events: list[TimelineEvent]) -> datetime:
    """With no alert or page: the start of the longest burst of activity (gaps under 2 h)."""
    bursts: list[list[TimelineEvent]] = [[events[0]]]
    for event in events[1:]:
        if event.at - bursts[-1][-1].at > CHAT_LOOKBACK:
            bursts.append([])
        bursts[-1].append(event)
    return max(bursts, key=len)[0].at


def build_timeline(
    *,
    incident: IncidentMeta,
    events: Iterable[TimelineEvent],
    reports: list[SourceReport],
    before: timedelta = MARGIN_BEFORE,
    after: timedelta = MARGIN_AFTER,
    sources: Sources | None = None,
) -> Timeline:
    """The normalize stage: one sorted, deduplicated, windowed timeline."""
    sources = _sources(sources)
    dropped: dict[str, int] = {}
    merged = merge(events, dropped, sources)
    assign_ids(merged)
    link_cross_source(merged, sources)
    window = choose_window(merged, incident, before=before, after=after, sources=sources)
    inside = merged
    if window is not None:
        inside = _between(merged, window.start, window.end)
        # Changes shortly before the window are trigger candidates ("what changed before
        # impact"): they stay, whatever the window.
        # A change any source records as deployed (a Jira change ticket moving to Done, a
        # PagerDuty change event) counts the same as a change source's.
        changes = with_role(sources, "changes")
        early = [
            e
            for e in _between(merged, window.start - CHANGE_LOOKBACK, window.start)
            if (e.source in changes or e.kind == "change_deployed") and e.at < window.start
        ]
        inside = early + inside
        # Follow-ups the team filed in its incident tool belong to the incident whenever they
        # were written (often at the review, days later): they stay too, and so does the
        # follow-up work of the days after (see _follow_up_work).
        later = [e for e in merged if _filed_later(e, window)]
        other = _other_work(merged, window, incident)
        work = _follow_up_work(merged, window, incident, sources, other)
        work = [e for e in work if not _filed_later(e, window)]
        if work:
            reason = (
                f"{window.reason}; {len(work)} events of follow-up work from the days after kept"
            )
            window = window.model_copy(update={"reason": reason})
        inside = inside + sorted(later + work, key=attrgetter("at"))
        for event in inside:
            if event.key in other and event.attrs.get("key") and event.at <= window.end:
                event.attrs["other_work"] = True  # read neither as a report nor a follow-up
        if merged and not inside and (incident.window.start or incident.window.end):
            raise BundleError(
                "incident.yaml",
                f"the window {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC "
                f"holds none of the {len(merged)} events (they run from "
                f"{merged[0].at:%Y-%m-%d %H:%M} to {merged[-1].at:%Y-%m-%d %H:%M} UTC)",
                record="window",
                hint="fix window: in incident.yaml, or remove it to let retro choose one",
            )
        outside = len(merged) - len(inside)
        if outside:
            dropped["outside the incident window"] = outside
            _count_outside(merged, inside, reports)
    people = join_people(inside, with_role(sources, "chat") | with_role(sources, "transcript"))
    for event in inside:
        if event.actor is not None and event.actor.is_bot and event.kind in CHAT_KINDS:
            event.is_bot = True
            event.kind = "bot_message"
    timeline = Timeline(
        incident=incident,
        events=[],
        people=people,
        window=window,
        sources=reports,
        dropped=dropped,
        source_info=sources,
    )
    # Every event is already a TimelineEvent; validating the list would only re-check that.
    timeline.__dict__["events"] = inside
    return timeline


def _between(events: list[TimelineEvent], start: datetime, end: datetime) -> list[TimelineEvent]:
    """The events with start <= at <= end, from events sorted by time."""
    at = attrgetter("at")
    return events[bisect_left(events, start, key=at) : bisect_right(events, end, key=at)]


def _filed_later(event: TimelineEvent, window: Window) -> bool:
    """A follow-up filed in the incident tool after the window: it stays in the timeline."""
    return event.at > window.end and event.attrs.get("follow_up") is True


def _follow_up_work(
    events: list[TimelineEvent],
    window: Window,
    incident: IncidentMeta,
    sources: Sources,
    other: set[str],
) -> list[TimelineEvent]:
    """What the team wrote about its follow-up work in the days after the window: tracker
    tickets it filed for it (not the incident's own, not incidents or changes, and not
    `other` work, see _other_work), a message, comment or note that collects follow-ups
    ("Follow-ups for Tuesday's review:") with the replies in its thread, and the calls recorded
    then (the review). They stay in the timeline for the action items; the milestones read
    only the window."""
    after = _between(events, window.end, shift(window.end, FOLLOW_UP_HORIZON))
    after = [e for e in after if e.at > window.end]
    if not after:
        return []
    from retro.understand.lexicon import collects_follow_ups  # the lexicon loads only if needed

    calls = with_role(sources, "transcript")
    roots = {
        e.key
        for e in after
        if e.kind in ("message", "comment", "note") and collects_follow_ups(e.text)
    }
    return [
        e
        for e in after
        if e.key in roots
        or (e.thread is not None and e.thread in roots)
        or (e.source in calls and e.kind in CHAT_KINDS)
        or (_tracker_ticket(e, incident) and e.key not in other)
    ]


def _tracker_ticket(event: TimelineEvent, incident: IncidentMeta) -> bool:
    """A ticket filed in a tracker: not one the incident tool filed as a follow-up, not the
    incident's own, not an incident or a change."""
    kind = str(event.attrs.get("issuetype") or "")
    return (
        event.kind == "ticket_created"
        and not event.attrs.get("follow_up")
        and str(event.attrs.get("key") or "") not in {incident.id, *incident.jira_keys}
        and not _INCIDENT_TICKET.search(kind)
        and not CHANGE_TICKET.search(kind)
    )


def _other_work(events: list[TimelineEvent], window: Window, incident: IncidentMeta) -> set[str]:
    """Event keys of the tracker tickets, from the window's start to the end of the follow-up
    horizon, that nothing ties to this incident: no link to it, no mention of it (see _about),
    no follow-up label, and no text of the bundle naming their key. A search export's other
    work of those days (an unrelated bug, a chore): neither a report of symptoms nor a
    follow-up."""
    tickets = [
        e
        for e in _between(events, window.start, shift(window.end, FOLLOW_UP_HORIZON))
        if _tracker_ticket(e, incident)
    ]
    if not tickets:
        return set()
    names = _incident_names(events, window, incident)
    named = _named_keys(events)
    return {
        e.key
        for e in tickets
        if str(e.attrs.get("key") or "") not in named and not _about(e, names)
    }


# A label or component a team gives the tickets of its incident process.
_FOLLOW_UP_LABEL = re.compile(
    r"post[-_ ]?mortem|post[-_ ]?incident|incident|follow[-_ ]?up|action[-_ ]?item|retro|"
    r"\bpir\b|\brca\b|\bsev",
    re.IGNORECASE,
)
# Named only to say it is not: "unrelated to INC-212"
_DISOWNED = re.compile(
    r"\b(?:unrelated to|not related to|nothing to do with|independent of|separate from)\s+\S+",
    re.IGNORECASE,
)


def _incident_names(
    events: list[TimelineEvent], window: Window, incident: IncidentMeta
) -> re.Pattern[str]:
    """The names that tie a ticket to this incident: its id, keys, channels and services, and
    the keys of the tickets the window holds."""
    keys = {str(e.attrs.get("key")) for e in _between(events, window.start, window.end)}
    names = {
        incident.id,
        *incident.jira_keys,
        *incident.slack_channels,
        *incident.services,
        *(k for k in keys if k != "None"),
    }
    names = {n.strip().lstrip("#") for n in names if len(n.strip().lstrip("#")) >= 3}
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])" if names else r"(?!)", re.I)


_TICKET_KEY = re.compile(r"(?<![\w-])[A-Z][A-Z0-9]{1,9}-\d{1,7}(?![\w-])")


def _named_keys(events: list[TimelineEvent]) -> set[str]:
    """Ticket keys the bundle's texts name outside the ticket itself ("filed OPS-2252 for the
    runbook"): the team's conversation ties them to the incident."""
    named: set[str] = set()
    for e in events:
        if "-" in e.text:
            own = str(e.attrs.get("key") or "")
            named.update(k for k in _TICKET_KEY.findall(e.text) if k != own)
    return named


def _about(ticket: TimelineEvent, names: re.Pattern[str]) -> bool:
    """Whether a ticket is about this incident: it links to one of its tickets, names it (its
    id, keys, channel or services; not its own key, not to disown it) or carries a follow-up
    label."""
    attrs = ticket.attrs
    links = [str(link.get("key") or "") for link in attrs.get("links") or []]
    tags = [str(t) for t in [*(attrs.get("labels") or []), *(attrs.get("components") or [])]]
    text = "\n".join([ticket.text, str(attrs.get("description") or ""), *links, *tags])
    text = _DISOWNED.sub(" ", text)
    if key := str(attrs.get("key") or ""):
        text = text.replace(key, " ")  # a ticket in the window names itself
    return bool(names.search(text)) or any(_FOLLOW_UP_LABEL.search(t) for t in tags)


def _count_outside(
    events: list[TimelineEvent], inside: list[TimelineEvent], reports: list[SourceReport]
) -> None:
    """Each source's events left out by the window, as its report counts them: not the changes
    kept as trigger candidates or the follow-ups filed later, which stay."""
    by_name = {r.name: r for r in reports}
    kept = {id(e) for e in inside}
    for event in events:
        if id(event) not in kept and event.source in by_name:
            by_name[event.source].skip("outside the incident window")


def _count(counter: dict[str, int], reason: str, n: int = 1) -> None:
    counter[reason] = counter.get(reason, 0) + n
