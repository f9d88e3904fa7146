"""Normalization: merge, dedupe, ids, cross-source links and the incident window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from retro.models import Actor, IncidentMeta, Provenance, SourceReport, TimelineEvent
from retro.timeline.normalize import (
    assign_ids,
    build_timeline,
    choose_window,
    link_cross_source,
    merge,
)

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


def ev(
    key: str,
    minutes: float,
    kind: str = "message",
    source: str = "slack",
    text: str = "hello",
    **attrs: object,
) -> TimelineEvent:
    return TimelineEvent(
        key=key,
        at=T0 + timedelta(minutes=minutes),
        source=source,
        kind=kind,  # type: ignore[arg-type]
        text=text,
        provenance=Provenance(file="f.json", record=key),
        attrs=dict(attrs),
    )


def test_repeated_notifications_merge_into_one_event() -> None:
    dropped: dict[str, int] = {}
    events = [ev("alertmanager:fp1:t:firing", 0, "alert_firing", "alertmanager") for _ in range(3)]
    merged = merge(events, dropped)
    assert len(merged) == 1
    assert merged[0].attrs["repeats"] == 3
    assert dropped == {"duplicate alertmanager records merged": 2}


def test_joins_and_leaves_are_dropped_and_counted() -> None:
    dropped: dict[str, int] = {}
    merged = merge([ev("a", 0, "membership"), ev("b", 1)], dropped)
    assert [e.key for e in merged] == ["b"]
    assert dropped["joins and leaves"] == 1


def test_ids_are_stable_short_and_independent_of_other_events() -> None:
    a = [ev("slack:C1:1.0", 0), ev("slack:C1:2.0", 1)]
    b = [
        ev("slack:C1:2.0", 1),
        ev("jira:INC-1:created", 2, "ticket_created", "jira"),
        ev("slack:C1:1.0", 0),
    ]
    assign_ids(a)
    assign_ids(b)
    ids_a = {e.key: e.id for e in a}
    ids_b = {e.key: e.id for e in b}
    assert ids_a["slack:C1:1.0"] == ids_b["slack:C1:1.0"]
    assert all(e.id.startswith("E") and len(e.id) == 17 for e in a + b)  # E + 64 bits in hex


def test_pagerduty_copy_of_an_alertmanager_alert_is_linked_not_repeated() -> None:
    events = [
        ev(
            "am:1",
            0,
            "alert_firing",
            "alertmanager",
            "[FIRING] HighErrorRate: 5xx above 5%",
            alertname="HighErrorRate",
        ),
        ev(
            "pd:1",
            1,
            "alert_firing",
            "pagerduty",
            "HighErrorRate firing",
            summary="[FIRING:1] HighErrorRate checkout",
        ),
        ev("pd:2", 40, "alert_firing", "pagerduty", "DiskFull", summary="DiskFull"),
    ]
    assign_ids(events)
    assert link_cross_source(events) == 1
    am, pd, other = events
    assert pd.duplicate_of == am.id and am.links == [pd.id]
    assert other.duplicate_of is None


def test_window_runs_from_first_signal_to_resolution_with_margins() -> None:
    events = [
        ev("chat-before", -600, text="lunch plans?"),
        ev("early-report", -20, text="customers report errors on checkout"),
        ev("alert", 0, "alert_firing", "alertmanager"),
        ev("resolve", 50, "page_resolved", "pagerduty"),
        ev("chat-after", 600, text="anyone for coffee"),
    ]
    window = choose_window(events, IncidentMeta(id="X"))
    assert window is not None
    assert window.start == T0 - timedelta(minutes=20 + 30)
    assert window.end == T0 + timedelta(minutes=50 + 60)


def test_the_incident_records_resolution_ends_the_window_not_the_last_alert() -> None:
    """Alerts clear at +50 min but the work goes on; the incident tool, the status page or an
    incident-tool time says when it was resolved, and the window runs to that."""
    base = [
        ev("alert", 0, "alert_firing", "alertmanager"),
        ev("clear", 50, "alert_resolved", "alertmanager"),
    ]
    records = {
        "rootly": ev("r", 300, "status_change", "rootly", "Incident resolved: EU errors"),
        "incident_io": ev("i", 300, "status_change", "incident_io", "Resolved at: EU errors"),
        "statuspage": ev(
            "s",
            300,
            "status_page_update",
            "statuspage",
            "Resolved - fixed",
            customer_update_marks=["resolved"],
        ),
        "datadog": ev("d", 300, "status_change", "datadog", "resolved", milestone="resolved"),
    }
    for name, record in records.items():
        window = choose_window([*base, record], IncidentMeta(id="X"))
        assert window is not None and window.end == T0 + timedelta(minutes=300 + 60), name
    closed = ev("c", 4000, "status_change", "incident_io", "Closed at: EU errors")
    window = choose_window([*base, closed], IncidentMeta(id="X"))
    assert window is not None and window.end == T0 + timedelta(minutes=50 + 60)


def test_a_follow_up_ticket_done_days_later_does_not_stretch_the_window() -> None:
    """The incident ticket's resolution ends the window; a task filed for the review and done
    three days later does not, unless nothing else resolved."""
    alert = ev("alert", 0, "alert_firing", "alertmanager")
    own = ev("own", 90, "status_change", "jira", to="Done", issuetype="Incident")
    task = ev("task", 4320, "status_change", "jira", to="Done", issuetype="Task")
    own.attrs["key"], task.attrs["key"] = "INC-7", "OPS-9"
    window = choose_window([alert, own, task], IncidentMeta(id="X"))
    assert window is not None and window.end == T0 + timedelta(minutes=90 + 60)
    # with no other resolution, the only ticket resolved is still the best end there is
    window = choose_window([alert, task], IncidentMeta(id="X"))
    assert window is not None and window.end == T0 + timedelta(minutes=4320 + 60)


def test_build_timeline_counts_out_of_window_chatter_per_source() -> None:
    report = SourceReport(name="slack")
    events = [
        ev("a", -900, text="unrelated"),
        ev("alert", 0, "alert_firing", "alertmanager"),
        ev("b", 5, text="looking"),
        ev("r", 30, "page_resolved", "pagerduty"),
    ]
    tl = build_timeline(incident=IncidentMeta(id="X"), events=events, reports=[report])
    assert [e.key for e in tl.events] == ["alert", "b", "r"]
    assert tl.dropped["outside the incident window"] == 1
    assert report.skipped == {"outside the incident window": 1}


def test_people_join_across_sources_by_email_then_name() -> None:
    events = [
        ev("s1", 0, actor=None),
        ev("s2", 1),
        ev("p1", 2, "page_acknowledged", "pagerduty"),
        ev("j1", 3, "comment", "jira"),
    ]
    events[1].actor = Actor(
        source="slack", id="U1", name="dana", email="Dana@Example.com", title="SRE"
    )
    events[2].actor = Actor(
        source="pagerduty", id="PX1", name="Dana Whitfield", email="dana@example.com"
    )
    events[3].actor = Actor(source="jira", id="acc-9", name="Dana Whitfield")
    tl = build_timeline(incident=IncidentMeta(id="X"), events=events, reports=[])
    keys = {e.actor.person for e in tl.events if e.actor}
    assert len(keys) == 1
    person = tl.people[keys.pop()]
    assert person.name == "Dana Whitfield" and person.titles == ["SRE"]
    assert sorted(person.accounts) == ["jira:acc-9", "pagerduty:PX1", "slack:U1"]


event_strategy = st.builds(
    lambda key, minutes, kind: ev(f"k{key}", minutes, kind),
    st.integers(0, 40),
    st.integers(0, 300),
    st.sampled_from(["message", "alert_firing", "membership", "page_resolved"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(event_strategy, max_size=60), st.randoms(use_true_random=False))
def test_merge_is_order_independent_and_loses_nothing(
    events: list[TimelineEvent], rnd: random.Random
) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)
    d1: dict[str, int] = {}
    d2: dict[str, int] = {}
    first = merge(events, d1)
    second = merge(shuffled, d2)
    assert [e.model_dump() for e in first] == [e.model_dump() for e in second]
    assert d1 == d2
    # every input is either in the output, merged into it, or a counted join/leave
    assert len(first) + sum(d1.values()) == len(events)
    assert {e.key for e in events if e.kind != "membership"} == {e.key for e in first}


def test_copies_merged_into_an_event_are_counted_apart_from_skipped_records() -> None:
    """An alert's repeated notifications are not lost: Sources counts them after "merged:";
    a conflicting copy (same id, other content) is a skip."""
    from retro.models import SourceReport

    report = SourceReport(name="alertmanager")
    report.skip("repeated notifications of one alert", 6)
    report.skip("conflicting duplicate message (same channel and ts, different content)")
    report.skip("channel not selected", 2)
    assert report.counts() == (
        "skipped: 2 channel not selected, 1 conflicting duplicate message (same channel and ts, "
        "different content); merged: 6 repeated notifications of one alert"
    )
    assert SourceReport(name="x").counts() == "skipped: none"


def test_a_change_deployed_hours_before_the_window_stays_as_a_trigger_candidate() -> None:
    """Any source's deployed change in the six hours before the window (a Jira change ticket
    moving to Done, a rollout batch in a generic log) stays in the timeline; older ones and
    other events that early do not."""
    events = [
        ev("old-change", -420, "change_deployed", "jira", text="CHG-1 deployed"),
        ev("change", -120, "change_deployed", "jira", text="CHG-2 deployed"),
        ev("chatter", -120, text="lunch?"),
        ev("alert", 0, "alert_firing", "alertmanager"),
        ev("r", 30, "page_resolved", "pagerduty"),
    ]
    reports = [SourceReport(name=n) for n in ("jira", "slack", "alertmanager", "pagerduty")]
    tl = build_timeline(incident=IncidentMeta(id="X"), events=events, reports=reports)
    assert [e.key for e in tl.events] == ["change", "alert", "r"]
    # each source counts only what it lost: the change kept as a trigger candidate is not
    by_name = {r.name: r for r in tl.sources}
    assert by_name["jira"].skipped == {"outside the incident window": 1}
    assert by_name["slack"].skipped == {"outside the incident window": 1}
    assert tl.dropped["outside the incident window"] == 2


def test_a_low_urgency_page_before_the_real_one_is_not_the_detection() -> None:
    """PagerDuty notifies a low-urgency incident by its quieter rules (a disk filling up on a
    log host at -25 min): like a warning, it is neither the detection nor the impact start."""
    from retro.draft.milestones import infer_milestones

    events = [
        ev(
            "pd:disk",
            -25,
            "page_triggered",
            "pagerduty",
            "Incident #1 triggered: disk 86% used",
            urgency="low",
        ),
        ev(
            "pd:api",
            0,
            "page_triggered",
            "pagerduty",
            "Incident #2 triggered: API unreachable",
            urgency="high",
        ),
        ev("pd:api:ack", 3, "page_acknowledged", "pagerduty", "Acknowledged by Dana"),
        ev("pd:api:res", 40, "page_resolved", "pagerduty", "Resolved"),
    ]
    tl = build_timeline(incident=IncidentMeta(id="X"), events=events, reports=[])
    found = infer_milestones(tl)
    assert found["detected"].at == T0
    assert found["impact_start"].at == T0


def test_a_change_ticket_listed_with_the_incident_does_not_open_the_window() -> None:
    """incident.yaml lists the change ticket with the incident's keys; it was opened five days
    before to plan the work. Its creation is no signal: the window opens at the page."""
    change = ev("chg", -5 * 24 * 60, "ticket_created", "jira", "CHG-7 created: upgrade switches")
    change.attrs.update({"key": "CHG-7", "issuetype": "Change"})
    events = [
        change,
        ev("page", 0, "page_triggered", "pagerduty", "Incident #1 triggered: storage slow"),
        ev("res", 60, "page_resolved", "pagerduty", "Resolved"),
    ]
    meta = IncidentMeta(id="INC-9", jira_keys=["INC-9", "CHG-7"])
    tl = build_timeline(incident=meta, events=events, reports=[])
    assert tl.window is not None and tl.window.start > T0 - timedelta(hours=2)


def test_a_change_ticket_listed_with_the_incident_done_days_later_does_not_end_the_window() -> None:
    """incident.yaml lists the migration's change ticket; it moves to Done two days later. Its
    Done is the change finished, not the incident resolved: the page's resolution ends the
    window."""
    done = ev("chg-done", 2 * 24 * 60, "status_change", "jira", to="Done", issuetype="Change")
    done.attrs["key"] = "CHG-7"
    events = [
        ev("page", 0, "page_triggered", "pagerduty", "Incident #1 triggered: storage slow"),
        ev("res", 60, "page_resolved", "pagerduty", "Resolved"),
        done,
    ]
    window = choose_window(events, IncidentMeta(id="INC-9", jira_keys=["INC-9", "CHG-7"]))
    assert window is not None and window.end == T0 + timedelta(minutes=60 + 60)
