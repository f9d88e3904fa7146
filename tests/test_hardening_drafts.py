"""Issue 12, items 2, 3 and 4: human edits survive re-runs, ids and citations stay true, and a
malformed action items table is an error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from bundle_factory import msg, ts, write_bundle
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from retro.cli.main import cli
from retro.draft.engines.offline import OfflineEngine
from retro.draft.pipeline import generate
from retro.draft.review import parse_document, read_postmortem
from retro.errors import BundleError
from retro.models import Provenance, TimelineEvent
from retro.timeline import normalize
from retro.timeline.normalize import assign_ids

MITIGATED = re.compile(r"^\| Mitigated \| ([^|]*?) \|", re.M)
ENGINE = OfflineEngine()  # one engine for the module: it loads its sentence model once


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def _draft(tmp_path: Path) -> tuple[Path, Path]:
    bundle = write_bundle(tmp_path / "bundle")
    out = tmp_path / "INC-101.md"
    generate(bundle=bundle, engine=ENGINE, out=out)
    return bundle, out


def _rerun(bundle: Path, out: Path) -> list[str]:
    return generate(bundle=bundle, engine=ENGINE, out=out).kept_sections


def _set_mitigated(text: str, value: str) -> str:
    return MITIGATED.sub(lambda m: m.group(0).replace(m.group(1), value), text, count=1)


# --- item 2: human edits survive any number of re-runs ------------------------------------------


def test_an_edited_milestone_time_survives_every_rerun(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    inferred = MITIGATED.search(out.read_text()).group(1)  # type: ignore[union-attr]
    assert inferred != "2024-05-01 14:33:00"
    out.write_text(_set_mitigated(out.read_text(), "2024-05-01 14:33:00"))
    for _ in range(2):  # the second run used to put the inferred time back
        assert "milestones" in _rerun(bundle, out)
        assert MITIGATED.search(out.read_text()).group(1) == "2024-05-01 14:33:00"  # type: ignore[union-attr]
        pm = read_postmortem(out)
        assert pm.metrics.time_to_mitigate_s == (33 - 0) * 60  # impact starts at 14:00
    # New evidence arrives: the edit still stands, and the draft picks up the new message.
    day = sorted((bundle / "slack" / "inc-101").glob("*.json"))[0]
    messages = json.loads(day.read_text())
    messages.append(msg("U02", 36, "We need a load test of checkout-api pool limits"))
    day.write_text(json.dumps(messages))
    _rerun(bundle, out)
    assert MITIGATED.search(out.read_text()).group(1) == "2024-05-01 14:33:00"  # type: ignore[union-attr]
    assert "load test of checkout-api" in out.read_text()


def test_unedited_rows_follow_new_evidence_while_the_edited_one_stays(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    out.write_text(_set_mitigated(out.read_text(), "2024-05-01 14:33:00"))
    _rerun(bundle, out)
    meta = parse_document(out.read_text()).meta
    assert set(meta["retro_hashes"]) >= {"milestones.mitigated", "milestones.rest"}
    # Only the edited row is an override; the others are still retro's, by their hashes.
    text = out.read_text()
    row = re.search(r"^\| Resolved \|.*$", text, re.M).group(0)  # type: ignore[union-attr]
    assert "milestones" in _rerun(bundle, out)
    assert row in out.read_text()


def test_an_unparseable_milestone_time_is_a_check_error_and_never_overwritten(
    tmp_path: Path,
) -> None:
    bundle, out = _draft(tmp_path)
    out.write_text(_set_mitigated(out.read_text(), "around 4pm yesterday"))
    check = _run("check", str(out))
    assert check.exit_code == 1
    assert re.search(
        r":\d+: error: milestone Mitigated time “around 4pm yesterday” does not parse", check.stdout
    )
    for _ in range(2):
        assert "milestones" in _rerun(bundle, out)
        assert MITIGATED.search(out.read_text()).group(1) == "around 4pm yesterday"  # type: ignore[union-attr]


def test_a_milestone_set_to_unknown_on_purpose_stays_unknown(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    out.write_text(_set_mitigated(out.read_text(), "unknown"))
    assert _run("check", str(out)).stdout.count("does not parse") == 0
    for _ in range(2):
        _rerun(bundle, out)
        assert MITIGATED.search(out.read_text()).group(1) == "unknown"  # type: ignore[union-attr]


SECTIONS = {
    "Summary": "summary",
    "Impact": "impact",
    "Action items": "action_items",
    "Open questions": "open_questions",
    "Timeline": "timeline",
    "Similar past incidents": "similar",
    "Sources": "sources",
}


def test_an_edit_to_any_section_survives_reruns(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    text = out.read_text()
    for heading in SECTIONS:
        note = f"A note the review meeting added to {heading} by hand."
        text = text.replace(f"## {heading}\n\n", f"## {heading}\n\n{note}\n\n", 1)
    out.write_text(text)
    for _ in range(2):
        assert set(_rerun(bundle, out)) >= set(SECTIONS.values())
        for heading in SECTIONS:
            assert f"A note the review meeting added to {heading} by hand." in out.read_text()
    assert _run("check", str(out)).exit_code in (0, 1)  # and the draft still reads


def test_reformatting_a_table_is_not_an_edit(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    text = out.read_text()
    start = text.index("## Timeline")
    end = text.index("## What went well")
    padded = re.sub(r" \| ", "  |  ", text[start:end])  # what a Markdown formatter does
    out.write_text(text[:start] + padded + text[end:])
    assert _rerun(bundle, out) == []


def test_drafts_hashed_by_an_earlier_retro_read_as_unedited(tmp_path: Path) -> None:
    from retro.draft.render import legacy_section_hash

    bundle, out = _draft(tmp_path)
    original = out.read_text()
    doc = parse_document(original)
    old = {k: legacy_section_hash(s.body) for k, s in doc.sections.items() if s.key}
    head, _, body = original[4:].partition("\n---\n")
    meta = yaml.safe_load(head)
    meta["retro_hashes"] = old
    meta.pop("retro_evidence", None)
    out.write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body)
    assert _rerun(bundle, out) == []
    assert out.read_text() == original


def test_deleting_a_milestone_row_is_kept(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    text = re.sub(r"^\| Declared \|.*\n", "", out.read_text(), flags=re.M)
    out.write_text(text)
    for _ in range(2):
        assert "milestones" in _rerun(bundle, out)
        assert "| Declared |" not in out.read_text()


# --- item 3: stable ids, and citations whose event changed --------------------------------------


def _event(key: str) -> TimelineEvent:
    from datetime import UTC, datetime

    return TimelineEvent.of(
        key=key,
        at=datetime(2024, 5, 1, tzinfo=UTC),
        source="slack",
        kind="message",
        provenance=Provenance.of("f.json", key),
    )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=40, unique=True),
    st.lists(st.text(min_size=1, max_size=30), max_size=40, unique=True),
)
def test_an_events_id_depends_on_its_own_key_alone(keys: list[str], others: list[str]) -> None:
    from retro.timeline.normalize import event_id

    alone = [_event(k) for k in keys]
    crowd = [_event(k) for k in [*others, *keys] if k not in set(others) or k in set(keys)]
    crowd = list({e.key: e for e in crowd}.values())
    assign_ids(alone)
    assign_ids(crowd)
    by_key = {e.key: e.id for e in crowd}
    for event in alone:
        assert event.id == by_key[event.key] == event_id(event.key)
        assert re.fullmatch(r"E[0-9a-f]{16}", event.id)


def test_a_new_event_never_takes_an_existing_events_id() -> None:
    # SHA-1 of these two keys share their first 5 hex digits (0b320): with 5-digit ids, the
    # one that arrived later took the id the earlier one had, and a kept citation moved.
    old, new = "slack:C101:1714572823.000100", "slack:C101:1714572401.000100"
    before = [_event(old)]
    after = [_event(new), _event(old)]
    assign_ids(before)
    assign_ids(after)
    assert before[0].id == after[1].id
    assert after[0].id != after[1].id


def test_a_collision_stops_the_run_instead_of_sharing_an_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(normalize, "ID_HEX_DIGITS", 1)  # 16 possible ids: 17 keys must collide
    with pytest.raises(BundleError, match="hash to the same id"):
        assign_ids([_event(f"slack:C1:{n}") for n in range(17)])


def test_ids_do_not_change_when_new_events_arrive(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    before = {r["id"]: r["text"] for r in read_postmortem(out).timeline}
    day = sorted((bundle / "slack" / "inc-101").glob("*.json"))[0]
    messages = json.loads(day.read_text())
    messages += [msg("U02", 20 + n / 100, f"noise {n}") for n in range(40)]
    day.write_text(json.dumps(messages))
    generate(bundle=bundle, engine=ENGINE, out=out)
    after = {r["id"]: r["text"] for r in read_postmortem(out).timeline}
    assert all(after.get(i, text) == text for i, text in before.items())


def _cited_slack_message(out: Path, bundle: Path) -> tuple[str, dict[str, object]]:
    """(id, message) of a Slack message the draft cites."""
    from hashlib import sha1

    meta = parse_document(out.read_text()).meta
    day = sorted((bundle / "slack" / "inc-101").glob("*.json"))[0]
    for message in json.loads(day.read_text()):
        ident = "E" + sha1(f"slack:C101:{message['ts']}".encode()).hexdigest()[:16]
        if ident in meta["retro_evidence"]:
            return ident, message
    raise AssertionError("the draft cites no Slack message")


def test_check_reports_a_citation_whose_event_changed(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    assert _run("check", str(out), "--bundle", str(bundle)).exit_code == 0
    ident, message = _cited_slack_message(out, bundle)
    day = sorted((bundle / "slack" / "inc-101").glob("*.json"))[0]
    messages = json.loads(day.read_text())
    for m in messages:
        if m["ts"] == message["ts"]:
            m["text"] = "Something else entirely was said here"
    day.write_text(json.dumps(messages))
    check = _run("check", str(out), "--bundle", str(bundle))
    assert check.exit_code == 1
    assert f"citation [{ident}]: the event changed since this draft cited it" in check.stdout


def test_check_reports_a_citation_whose_event_is_gone(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    ident, message = _cited_slack_message(out, bundle)
    day = sorted((bundle / "slack" / "inc-101").glob("*.json"))[0]
    day.write_text(json.dumps([m for m in json.loads(day.read_text()) if m["ts"] != message["ts"]]))
    check = _run("check", str(out), "--bundle", str(bundle))
    assert check.exit_code == 1
    assert f"citation [{ident}] is not an event of the bundle's timeline" in check.stdout


def test_kept_text_citing_a_changed_event_is_reported_after_a_rerun(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    ident, message = _cited_slack_message(out, bundle)
    text = re.sub(
        r"(## Summary\n\n).*?\n",
        rf"\1The review meeting's own summary. [{ident}]\n",
        out.read_text(),
        count=1,
        flags=re.S,
    )
    out.write_text(text)
    day = sorted((bundle / "slack" / "inc-101").glob("*.json"))[0]
    messages = json.loads(day.read_text())
    messages.append(
        {
            "type": "message",
            "subtype": "message_changed",
            "ts": ts(50),
            "channel": "C101",
            "message": {
                **message,
                "text": "Edited: the opposite of before",
                "edited": {"ts": ts(50)},
            },
        }
    )
    day.write_text(json.dumps(messages))
    result = generate(bundle=bundle, engine=ENGINE, out=out)
    assert "summary" in result.kept_sections and ident in result.changed_citations
    check = _run("check", str(out), "--bundle", str(bundle))
    assert f"citation [{ident}]: the event changed" in check.stdout


def test_short_ids_of_an_earlier_retro_are_upgraded_in_kept_text(tmp_path: Path) -> None:
    bundle, out = _draft(tmp_path)
    ident, _ = _cited_slack_message(out, bundle)
    short = ident[:6]  # what retro wrote before ids had 64 bits
    text = re.sub(
        r"(## Summary\n\n).*?\n",
        rf"\1Our summary. [{short}]\n",
        out.read_text(),
        count=1,
        flags=re.S,
    )
    out.write_text(text)
    generate(bundle=bundle, engine=ENGINE, out=out)
    assert f"Our summary. [{ident}]" in out.read_text()


# --- item 4: a malformed action items table is an error -----------------------------------------


def test_an_action_table_without_its_header_is_a_check_error(tmp_path: Path) -> None:
    _, out = _draft(tmp_path)
    text = out.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| # | Action |"))
    out.write_text(text.replace(header + "\n", ""))
    check = _run("check", str(out))
    assert check.exit_code == 1
    assert "no header row" in check.stdout


def test_two_action_item_phrases_in_one_message_are_two_items(tmp_path: Path) -> None:
    from bundle_factory import CHAT

    said = (
        "action item: add a dashboard panel for pgbouncer client wait time, "
        "action item: document the rollback steps for pool config changes"
    )
    bundle = write_bundle(tmp_path / "b", chat=[*CHAT, msg("U02", 45, said)])
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title.casefold() for a in pm.action_items]
    first = [t for t in titles if "dashboard panel for pgbouncer client wait time" in t]
    second = [t for t in titles if "document the rollback steps for pool config changes" in t]
    assert len(first) == 1 and len(second) == 1 and first != second, titles
    assert "action item" not in first[0], titles


def test_a_line_that_introduces_a_list_of_follow_ups_is_not_an_item(tmp_path: Path) -> None:
    from bundle_factory import CHAT

    said = (
        "For the retro, a few things we should do to stop a repeat:\n"
        "- add an alert on pgbouncer client wait time above 500ms\n"
        "- require a second reviewer for pool size changes to checkout-api"
    )
    bundle = write_bundle(tmp_path / "b", chat=[*CHAT, msg("U02", 45, said)])
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title.casefold() for a in pm.action_items]
    assert not [t for t in titles if "for the retro" in t or "things we should do" in t], titles
    assert [t for t in titles if "pgbouncer client wait time" in t], titles
    assert [t for t in titles if "second reviewer for pool size changes" in t], titles


def test_a_requirement_is_titled_as_stated_not_with_a_verb_in_front(tmp_path: Path) -> None:
    from bundle_factory import CHAT

    said = "follow-up: the pool config must be validated against the DB's max_connections"
    bundle = write_bundle(tmp_path / "b", chat=[*CHAT, msg("U02", 45, said)])
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title for a in pm.action_items]
    assert "The pool config must be validated against the DB's max_connections" in titles, titles
