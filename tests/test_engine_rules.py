"""Offline engine rules that turn chat into milestones, causes and action item titles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from retro.draft.engines.actions import imperative, title_from
from retro.draft.engines.extract import ROOT_CAUSE
from retro.draft.milestones import human_reports, mitigated, stated_onset
from retro.models import Actor, IncidentMeta, Provenance, Timeline, TimelineEvent

T0 = datetime(2025, 1, 6, 13, 0, tzinfo=UTC)
ALICE = Actor(source="slack", id="U1", name="alice")


def _msg(minutes: int, text: str) -> TimelineEvent:
    return TimelineEvent.of(
        key=f"slack:C1:{minutes}",
        at=T0 + timedelta(minutes=minutes),
        source="slack",
        kind="message",
        actor=ALICE,
        text=text,
        provenance=Provenance.of("slack/inc/d.json", f"[{minutes}]"),
    )


@pytest.mark.parametrize(
    ("said", "title"),
    [
        (
            "rank should shed load when it's over capacity instead of falling over. right now a pod dies",
            "Make rank shed load when it's over capacity instead of falling over",
        ),
        (
            "and the capacity dash needs a cold-cache number, my 2x came from the warm one",
            "Add a cold-cache number to the capacity dash",
        ),
        (
            "the runbook should be linked from the alert",
            "Ensure the runbook is linked from the alert",
        ),
        (
            "I'll write up drain-to-one-cluster-then-ramp as a runbook. none of us had done it",
            "Write up drain-to-one-cluster-then-ramp as a runbook",
        ),
        (
            "we export process_open_fds and nothing looks at it. would have told us",
            "Alert on process_open_fds",
        ),
        (
            "also nothing alerts on tgw packet drops. i only found it with mtr",
            "Alert on tgw packet drops",
        ),
        (
            "we should ask AWS to pre-scale the gateway before every holiday break, calendar reminder or whatever",
            "Ask AWS to pre-scale the gateway before every holiday break",
        ),
        ("we should do that regularly", None),  # nothing left to file without the sentence before
        ("rotating the meta db password now", None),  # work in progress, not a follow-up
        ("thanks all, +1", None),
    ],
)
def test_follow_up_reply_becomes_an_instruction(said: str, title: str | None) -> None:
    assert imperative(said) == title


def test_cue_sentences_and_gaps_become_titles_outside_threads() -> None:
    assert (
        title_from("We need an alert on DB pool saturation") == "Add an alert on DB pool saturation"
    )
    assert title_from("there is no alert on replica lag at all") == "Alert on replica lag at all"
    assert title_from("the pool is saturated") is None


def _timeline(*events: TimelineEvent) -> Timeline:
    timeline = Timeline(incident=IncidentMeta(id="X"), events=[])
    timeline.__dict__["events"] = list(events)
    return timeline


def test_a_step_that_changed_nothing_is_not_mitigation() -> None:
    timeline = _timeline(
        _msg(
            5, "rollback done, api-gateway back on 2.13.2. no change in errors, so not the deploy"
        ),
        _msg(60, "error rate is back to normal, we are mitigated"),
    )
    found = mitigated(timeline, None)
    assert found is not None and found.event.at == T0 + timedelta(minutes=60)


def test_a_later_no_effect_report_contradicts_a_mitigation_claim() -> None:
    timeline = _timeline(
        _msg(5, "rollback complete, error rate is back to normal"),
        _msg(12, "hm, it didn't help, the graphs look the same"),
        _msg(50, "failover complete, traffic is flowing again"),
    )
    found = mitigated(timeline, None)
    assert found is not None and found.event.at == T0 + timedelta(minutes=50)


@pytest.mark.parametrize(
    "text",
    [
        "mtr shows 9-14% packet loss at the gateway hop",
        "the ec2 api is throttling our RunInstances calls",
        "web tier saturated, every worker busy",
        "Working theory: the cache tier is overloaded",
    ],
)
def test_network_and_capacity_failures_read_as_causes(text: str) -> None:
    assert ROOT_CAUSE.search(text)


@pytest.mark.parametrize(
    ("said", "title"),
    [
        (
            "We've also never restored one of those dumps",
            "Test restoring one of those dumps regularly",
        ),
        ("we never practiced the failover", "Practice the failover regularly"),
        ("the re-seed procedure only exists in my head", "Document the re-seed procedure"),
        (
            "purge job shouldn't hard-delete on reports alone",
            "Ensure purge job cannot hard-delete on reports alone",
        ),
        ("index restart has to get faster", "Make index restart get faster"),
        ("removal should be slow too", "Ensure removal is slow"),
        ("pretty sure reimage takes a host range the same way", None),  # a hunch, not a task
        (
            "status page really can't keep its data on the thing it reports on",
            "Ensure status page cannot keep its data on the thing it reports on",
        ),
    ],
)
def test_more_follow_up_shapes(said: str, title: str | None) -> None:
    assert imperative(said) == title


def _status(minutes: int, text: str) -> TimelineEvent:
    return TimelineEvent.of(
        key=f"generic:status:{minutes}",
        at=T0 + timedelta(minutes=minutes),
        source="generic",
        kind="status_page_update",
        text=text,
        provenance=Provenance.of("events.jsonl", f"line {minutes}"),
    )


def test_partial_recovery_and_estimates_are_not_mitigation() -> None:
    timeline = _timeline(
        _msg(5, "reads recovering. PUTs still failing, placement is down. not mitigated yet"),
        _status(6, "Update - Reads are recovering. Uploads are still failing."),
        _status(7, "Estimated recovery early afternoon."),
        _status(40, "Monitoring - A fix has been implemented and we are monitoring the results."),
    )
    found = mitigated(timeline, None)
    assert found is not None and found.event.at == T0 + timedelta(minutes=40)


def test_a_time_that_dates_a_copy_is_not_an_onset() -> None:
    timeline = _timeline(
        _msg(30, "options: 1) last night's dump 2) the staging copy from 12:10 today"),
        _msg(31, "errors since 12:40 on every write"),
    )
    found = stated_onset(timeline, T0 + timedelta(minutes=20))
    assert found is not None and found[1] == T0 - timedelta(minutes=20)


def test_stated_times_are_read_in_the_zone_closest_before_the_message() -> None:
    # the incident's zone is UTC-4; "since 10:04" sent at 14:07 UTC means 14:04 UTC, which is
    # after the first signal, so it is no onset (not 10:04 UTC, four hours earlier)
    timeline = _timeline(_msg(67, "ok this is holding. errors flat since 10:04"))
    timeline.incident.timezone = "America/New_York"
    assert stated_onset(timeline, T0 + timedelta(minutes=10)) is None


def test_a_customer_report_pasted_over_two_lines_is_a_report() -> None:
    timeline = _timeline(
        _msg(3, "Harbourline replied on the ticket:\n> our drivers can't see run sheets")
    )
    assert len(human_reports(timeline)) == 1
