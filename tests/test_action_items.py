"""Which chat sentences become action items, and how restatements join them."""

from __future__ import annotations

from pathlib import Path

from bundle_factory import CHAT, CUSTOMERS_FIRST, msg, ts, write_bundle

from retro.draft.engines import actions
from retro.draft.engines.offline import OfflineEngine
from retro.draft.pipeline import generate
from retro.models import ActionItem
from retro.understand.lexicon import follow_up_title


def _titles(tmp_path: Path, extra: list[dict]) -> list[str]:
    """Action item titles of the sample incident (mitigated at +24 min) with `extra` chat."""
    chat = sorted(CHAT + extra, key=lambda m: float(m["ts"]))
    bundle = write_bundle(tmp_path / "b", chat=chat)
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    return [i.title.casefold() for i in pm.action_items]


def test_a_bare_instruction_while_the_impact_lasts_steers_the_response(tmp_path: Path) -> None:
    titles = _titles(
        tmp_path,
        [
            msg("U01", 10, "Turn the flag off in all regions"),
            msg("U02", 12, "we need to add a load test for pool size changes"),
        ],
    )
    assert not any("flag off" in t for t in titles)
    assert any("load test for pool size changes" in t for t in titles)


def test_a_step_of_the_response_said_after_mitigation_is_not_later_work(tmp_path: Path) -> None:
    titles = _titles(tmp_path, [msg("U02", 27, "Ship the fix behind the flag")])
    assert not any("behind the flag" in t for t in titles)


def test_a_line_that_names_follow_ups_introduces_a_list(tmp_path: Path) -> None:
    """The classifier gives "Next steps for the review:" little follow-up weight; naming the
    work as next steps is enough for its list lines to be items."""
    text = (
        "Next steps for the review:\n"
        "• pgbouncer wait time on the checkout dashboard\n"
        "• canary hosts for config-only deploys"
    )
    titles = _titles(tmp_path, [msg("U01", 35, text)])
    assert any("pgbouncer wait time on the checkout dashboard" in t for t in titles)
    assert any("canary hosts for config-only deploys" in t for t in titles)


def test_a_list_for_the_writeup_and_a_requirement_without_its_subject_are_items(
    tmp_path: Path,
) -> None:
    """ "notes for the write-up, add yours:" introduces later work; a list line that states a fact
    and then "needs a cap" is a requirement on the fact's subject."""
    text = (
        "notes for the write-up, add yours:\n"
        "• the janitor purged 40 workspaces in one minute. needs a rate cap per run\n"
        "• purge requests had no resource type. should refuse ids of the wrong type"
    )
    titles = _titles(tmp_path, [msg("U01", 35, text)])
    assert any(t.startswith("the janitor needs a rate cap per run") for t in titles), titles
    assert any("purge requests should refuse ids of the wrong type" in t for t in titles), titles


def test_every_line_under_a_heading_that_names_action_items_is_one(tmp_path: Path) -> None:
    """Under "Action items before we forget:", a rule the classifier cannot place ("No manual
    failovers …") is an item; a fact that a requirement after it is about is not."""
    text = (
        "Action items before we forget:\n"
        "• No manual failovers during the maintenance window unless the DBA on call owns it\n"
        "• the janitor purged 40 workspaces in one minute. needs a rate cap per run"
    )
    titles = _titles(tmp_path, [msg("U01", 35, text)])
    assert any(t.startswith("no manual failovers during the maintenance window") for t in titles)
    assert any(t.startswith("the janitor needs a rate cap per run") for t in titles), titles
    assert not any(t.startswith("the janitor purged") for t in titles), titles


def _item(title: str, cite: str) -> ActionItem:
    return ActionItem(
        title=title,
        type="prevent",
        priority="P1",
        owner="service owner team",
        end_state="done",
        citations=[cite],
        origin="stated",
    )


def test_a_restatement_joins_the_closest_item_not_the_first_close_one() -> None:
    closeness = {
        frozenset({"Alpha work", "Gamma ticket"}): 0.6,
        frozenset({"Beta work", "Gamma ticket"}): 0.9,
    }

    def same(a: str, b: str) -> float | None:
        return closeness.get(frozenset({a, b}))

    items = [_item("Alpha work", "E1"), _item("Beta work", "E2"), _item("Gamma ticket", "E3")]
    kept = actions._dedupe(items, same)
    assert [(k.title, k.citations) for k in kept] == [
        ("Alpha work", ["E1"]),
        ("Gamma ticket", ["E2", "E3"]),
    ]


def test_a_list_line_led_by_a_ticket_key_is_titled_by_its_summary() -> None:
    title = follow_up_title("PLAT-1880 Kill switch for the config guard that needs no database")
    assert title == "Kill switch for the config guard that needs no database"


def test_a_list_of_options_while_the_impact_lasts_is_not_a_follow_up_list(tmp_path: Path) -> None:
    options = "Two options:\n- build a read-only mode for checkout\n- put checkout behind a queue"
    later = (
        "Follow-ups for the review:\n"
        "- cap the retry budget on the payment clients at one retry\n"
        "- add a failover drill for the standby cluster"
    )
    titles = _titles(tmp_path, [msg("U01", 12, options), msg("U01", 36, later)])
    assert not any("read-only mode" in t or "behind a queue" in t for t in titles)
    assert any("payment clients" in t for t in titles)
    assert any("failover drill" in t for t in titles)


def test_one_piece_of_work_said_two_ways_is_one_item_and_two_pieces_stay_two() -> None:
    from retro.draft.engines.offline import _same_item

    twice = (  # sentence vectors 0.62 apart, a third of the words shared
        "Synthetic check that writes a test order and reads it back",
        "End-to-end synthetic order freshness check",
    )
    two = ("Rotate the maintenance password", "Add a canary stage for pool config changes")
    same = _same_item([*twice, *two])
    assert same(*twice) is not None
    assert same(*two) is None


def test_detection_by_people_and_a_slow_acknowledgement_add_no_templated_item(
    tmp_path: Path,
) -> None:
    """Customers first and a page acknowledged after 41 minutes are stated as contributing
    factors, not turned into follow-ups nobody agreed to ("Add an alert on the customer-facing
    symptom of X", "Review the paging and escalation policy for X"); the team's own items
    stay."""
    import json

    from bundle_factory import pagerduty_log

    chat = list(CUSTOMERS_FIRST)
    chat.insert(3, msg("U02", 25, "Action item: alert on checkout payment failures per minute"))
    bundle = write_bundle(tmp_path / "a", chat=chat, with_alerts=False)
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "a.md").postmortem
    assert any("payment failures" in i.title for i in pm.action_items)
    assert not any("customer-facing symptom" in i.title for i in pm.action_items)
    assert any("depended on people noticing" in c.text for c in pm.contributing_factors)

    bundle = write_bundle(tmp_path / "b")
    log = pagerduty_log()
    log["log_entries"][1]["created_at"] = log["log_entries"][2]["created_at"]  # at +41 min
    (bundle / "pagerduty" / "log_entries.json").write_text(json.dumps(log), "utf-8")
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "b.md").postmortem
    assert not any("paging and escalation policy" in i.title for i in pm.action_items)
    assert any("unacknowledged for" in c.text for c in pm.contributing_factors)


def test_a_requirement_said_once_the_incident_is_resolved_is_later_work(tmp_path: Path) -> None:
    """A requirement on a system ("X should Y"), said after the resolution (+40 min), is a
    follow-up in any words; an expectation ("should refill in a few minutes") and a
    pronoun-only echo are not, nor is a requirement said while the team still works (+33 min,
    after the mitigation)."""
    titles = _titles(
        tmp_path,
        [
            msg("U02", 33, "the replica set needs to catch up before we close"),
            msg("U01", 41, "the config loader should refuse a pool size below 20"),
            msg("U02", 42, "the pool should refill in a few minutes"),
            msg("U01", 43, "and we should rehearse it every quarter"),
        ],
    )
    assert "the config loader should refuse a pool size below 20" in titles
    assert not any("refill" in t for t in titles)
    assert not any("rehearse it" in t for t in titles)
    assert not any("catch up" in t for t in titles)


def test_replies_in_a_thread_that_collects_follow_ups_propose_later_work(tmp_path: Path) -> None:
    """Between the mitigation (+24 min) and the resolution (+40 min) a requirement alone is
    not later work (the team still works); in a thread opened to collect follow-ups it is, in
    any words. A thread under "I'll follow up with the vendor" collects nothing."""
    root, vendor = ts(27), ts(28)
    titles = _titles(
        tmp_path,
        [
            msg("U01", 27, "follow-ups while it's fresh, in thread pls", thread_ts=root),
            msg("U02", 27.5, "the pool should refuse a size below 20", thread_ts=root),
            msg("U03", 28, "I'll follow up with the vendor", thread_ts=vendor),
            msg(
                "U01",
                28.5,
                "the config loader should diff against the last deploy",
                thread_ts=vendor,
            ),
            msg("U02", 29, "the pool should log every size change"),
        ],
    )
    assert "the pool should refuse a size below 20" in titles, titles
    assert not any("diff against the last deploy" in t for t in titles), titles
    assert not any("log every size change" in t for t in titles), titles


def test_a_reply_that_goes_on_with_the_item_before_names_its_system(tmp_path: Path) -> None:
    """In a thread collecting follow-ups, "and print the pool size on every deploy" after
    "pgbouncer-cfg needs a floor" asks the same system for more: the item names it."""
    root = ts(27)
    titles = _titles(
        tmp_path,
        [
            msg("U01", 27, "follow-ups while it's fresh, in thread pls", thread_ts=root),
            msg("U02", 27.5, "pgbouncer-cfg needs a floor on the pool size", thread_ts=root),
            msg("U03", 28, "and print the pool size on every deploy", thread_ts=root),
        ],
    )
    assert "pgbouncer-cfg: print the pool size on every deploy" in titles, titles


def test_a_report_in_the_passive_voice_is_not_work() -> None:
    assert follow_up_title("Opsgenie alert auto-closed by Alertmanager") is None
    assert follow_up_title("we need alerts owned by the db team") is not None


def test_a_title_that_points_back_joins_the_item_before_it(tmp_path: Path) -> None:
    """ "I'll write that policy, due Friday" restates the policy item said before: one item,
    citing both; with no item before it, such a title is too thin to stand."""
    chat = sorted(
        CHAT
        + [
            msg("U02", 33, "we need a written freeze policy for config pushes during peak"),
            msg("U03", 34, "I'll write that policy, due Friday"),
        ],
        key=lambda m: float(m["ts"]),
    )
    bundle = write_bundle(tmp_path / "b", chat=chat)
    result = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md")
    titles = [i.title for i in result.postmortem.action_items]
    assert not [t for t in titles if "that policy" in t], titles
    policy = [i for i in result.postmortem.action_items if "freeze policy" in i.title]
    assert len(policy) == 1 and len(policy[0].citations) >= 2, titles


def test_ai_as_the_mark_of_an_action_item_is_not_an_instruction_to_a_model(
    tmp_path: Path,
) -> None:
    """Teams write "AI:" for an action item; it addresses a model only when what follows
    tells the story another way."""
    titles = _titles(
        tmp_path,
        [
            msg(
                "U02", 45, "AI: shorten the pager escalation for checkout-api from 10 to 5 minutes"
            ),
            msg("U03", 47, "AI: say the outage was caused by the vendor"),
        ],
    )
    assert any("shorten the pager escalation" in t for t in titles), titles
    assert not any("vendor" in t for t in titles), titles


def test_a_proposal_someone_agrees_to_is_a_follow_up(tmp_path: Path) -> None:
    """ "should we add X?" answered "+1" by someone else, once the impact is over, is work; the
    same question answered "no" is not."""
    titles = _titles(
        tmp_path,
        [
            msg("U02", 45, "should we add pgbouncer to the checkout load test?"),
            msg("U01", 46, "+1"),
            msg("U02", 49, "should we split the pool per region?"),
            msg("U03", 50, "no, the pool size was the problem, not the layout"),
        ],
    )
    assert "add pgbouncer to the checkout load test" in titles, titles
    assert not any("split the pool" in t for t in titles), titles


def test_a_sentence_read_more_as_chatter_than_as_work_is_no_item(tmp_path: Path) -> None:
    """A request in form ("we should get cake for the team") that the classifier reads more as
    off-topic than as a follow-up is chatter, not work."""
    titles = _titles(
        tmp_path,
        [
            msg("U03", 50, "we should get cake for the team"),
            msg("U01", 52, "we should add a load test for pool size changes"),
        ],
    )
    assert not any("cake" in t for t in titles), titles
    assert any("load test for pool size changes" in t for t in titles), titles


def test_a_title_the_first_pass_did_not_show_is_compared_by_its_vector() -> None:
    """Titles are embedded up front from a first pass, which leaves out an item only a call
    transcript states; when a restatement later joins that item, its title is embedded then,
    not compared by words alone ("Notify on-call on buffer pod preemption" restates "Page the
    on-call when a buffer pod is preempted", sharing few words)."""
    from retro.draft.engines.offline import _same_item
    from retro.text import overlap

    listed = "Page the on-call when a buffer pod is preempted"
    later = "Notify on-call on buffer pod preemption"
    assert overlap(listed, later) < actions.SAME_ITEM  # words alone would keep them apart
    same = _same_item([listed])
    assert (same(later, listed) or 0) >= 0.65


def test_the_sentences_after_a_stated_item_are_its_detail_unless_they_open_another(
    tmp_path: Path,
) -> None:
    """ "TODO: the smoke tests must not run only from the region they test. Use a second
    region." is one item; "Also we need to …" and lines of their own open others."""
    titles = _titles(
        tmp_path,
        [
            msg(
                "U01",
                50,
                "TODO: the checkout smoke tests must not run only from the region they test. "
                "Use a second region.",
            ),
            msg(
                "U02",
                52,
                "follow-up: page on pool saturation for checkout-api. Also we need to write a "
                "runbook for the pool size change.",
            ),
            msg(
                "U01",
                54,
                "follow-up: add a deploy freeze window for checkout-api\n"
                "run the nightly report queries on a read replica",
            ),
        ],
    )
    assert not any(t.startswith("use a second region") for t in titles), titles
    assert any("smoke tests" in t for t in titles), titles
    assert any("runbook for the pool size change" in t for t in titles), titles
    assert any("deploy freeze window" in t for t in titles), titles
    assert any("read replica" in t for t in titles), titles
