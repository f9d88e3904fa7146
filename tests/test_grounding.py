"""The LLM engine reads the understanding layer: labels choose and tag prompt rows, and a claim
whose cited chat cannot carry its section is repaired or dropped, counted, and the section falls
back to the offline engine (retro.draft.grounding, data/sections.v1.yaml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from retro.draft.engines import llm_server
from retro.draft.engines.llm_budget import compress
from retro.draft.engines.llm_cache import ResponseCache
from retro.draft.grounding import Grounding
from retro.models import CLAIM_FIELDS
from retro.understand.labels import labels, section_support
from tests.emulators.openai import OpenAIEmulator
from tests.test_engine_llm import KEY, data_for, engine, row, tool_name, user_text

GREETING = "good morning everyone, grabbing a coffee first"
CAUSE = (
    "the nightly index rebuild took an exclusive lock on the accounts table, so every login "
    "query queued behind it until the pool ran out"
)
RECOVERY = "login latency is back to normal since the rebuild was cancelled"


def rows() -> list[Any]:
    return [
        row(
            1,
            0,
            "[FIRING:1] LoginLatencyHigh p99 9.1s",
            source="alertmanager",
            kind="alert_firing",
            actor="Alertmanager",
            key_event=True,
        ),
        row(2, 2, GREETING),
        row(3, 9, CAUSE, actor="a database engineer"),
        row(4, 20, RECOVERY),
        row(5, 21, "+1"),
        row(6, 25, "Resolved", source="pagerduty", kind="page_resolved", key_event=True),
    ]


@pytest.fixture(scope="module")
def grounding() -> Grounding:
    return Grounding(data_for(rows()))


def test_the_sections_file_names_every_claim_section_and_only_known_labels() -> None:
    support = section_support()
    assert set(support.sections) == set(CLAIM_FIELDS)
    known = set(labels())
    assert all(wanted <= known and wanted for wanted in support.sections.values())
    assert 0 < support.relaxed <= 1 and "off_topic" in support.uninformative


def test_a_root_cause_citing_a_greeting_is_not_grounded(grounding: Grounding) -> None:
    greeting, cause, recovery, alert = (rows()[i].id for i in (1, 2, 3, 0))
    assert not grounding.supports("root_cause", [greeting])
    assert grounding.supports("root_cause", [cause])
    assert grounding.supports("recovery", [recovery])
    # Rows that are not prose carry their meaning in their kind; one good row is enough.
    assert grounding.supports("root_cause", [alert])
    assert grounding.supports("root_cause", [greeting, cause])
    # Unknown ids and no ids are citation repair's business, not this check's.
    assert grounding.supports("root_cause", ["Enothere"]) and grounding.supports("summary", [])


def test_chatter_and_tags_come_from_the_labels(grounding: Grounding) -> None:
    alert, greeting, cause, recovery, plus_one, _ = rows()
    assert grounding.chatter(greeting) and grounding.chatter(plus_one)
    assert not grounding.chatter(cause) and not grounding.chatter(recovery)
    assert not grounding.chatter(alert), "only chat can be chatter"
    assert "cause" in grounding.tags(cause.id) and grounding.tags(greeting.id) == []
    assert grounding.relevance(cause.id) > grounding.relevance(greeting.id) == 0.0
    assert grounding.strongest("root_cause", 1) == [cause.id]


def test_prompt_rows_skip_chatter_and_carry_their_labels(grounding: Grounding) -> None:
    data = rows()
    comp = compress(data, grounding=grounding)
    sent = {r.id: r for r in comp.rows}
    assert data[1].id not in sent and data[4].id not in sent and comp.counts["chatter"] == 2
    assert '"lab":"cause' in sent[data[2].id].as_json()
    # Without the layer's reading only joins and leaves are chatter.
    assert len(compress(data).rows) == len(data)


@pytest.fixture
def emu() -> Any:
    with OpenAIEmulator(api_key=KEY) as server:
        llm_server.forget()
        yield server


def claims_citing(section: str, row_id: str) -> dict[str, Any]:
    return {section: [{"text": "The cause of the incident was found.", "cites": [row_id]}]}


def test_an_ungrounded_claim_is_sent_for_repair_and_moves_to_the_rows_that_state_it(
    emu: OpenAIEmulator,
) -> None:
    data = rows()
    greeting, cause = data[1].id, data[2].id
    repairs: list[dict[str, Any]] = []

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        if tool_name(body) == "CitationRepair":
            repairs.append(body)
            return {"fixes": [{"ref": "root_cause[0]", "cites": [cause]}]}
        return claims_citing("root_cause", greeting)

    emu.responder = reply
    eng = engine(emu)
    pm = eng.draft(data_for(data))
    assert [c.citations for c in pm.root_cause] == [[cause]], "the greeting was replaced"
    asked = user_text(repairs[0])
    claims = asked.split("<claims>")[1].split("</claims>")[0].strip().splitlines()
    assert [json.loads(c) for c in claims] == [
        {
            "ref": "root_cause[0]",
            "text": "The cause of the incident was found.",
            "cited": [greeting],
            "problem": "the cited rows do not state this",
        }
    ]
    assert cause in asked, "the repair request offers the row that states the cause"
    figures = eng.figures()["repair"]
    assert figures["claims_repaired"] == 1 and figures["claims_dropped_ungrounded"] == 0


def test_a_claim_still_ungrounded_after_repair_is_dropped_counted_and_filled_offline(
    emu: OpenAIEmulator, tmp_path: Path
) -> None:
    from retro.cli.draft import sample_bundle
    from retro.draft.engines.llm import OpenAIEngine
    from retro.draft.pipeline import generate

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        if tool_name(body) == "CitationRepair":
            return {"fixes": []}  # the model finds nothing better
        timeline = user_text(body).split("<timeline>")[1].split("</timeline>")[0]
        chat = [json.loads(line) for line in timeline.strip().splitlines()]
        # Cite the IC's declaration ("Declaring a SEV2 …", which carries no label of cause) as
        # the cause.
        declaring = [
            r["id"]
            for r in chat
            if r.get("kind", "message") == "message"
            and r["text"].startswith("Declaring")
            and not set(r.get("lab", "").split(","))
            & {"cause", "trigger", "contributing", "investigation", "hypothesis"}
        ]
        return claims_citing("root_cause", declaring[0])

    emu.responder = reply
    eng = OpenAIEngine(
        base_url=emu.url + "/v1",
        api_key=KEY,
        cache=ResponseCache(tmp_path / "cache", enabled=False),
        timeout=10,
    )
    result = generate(bundle=sample_bundle(), engine=eng, out=tmp_path / "d.md")
    assert eng.figures()["repair"]["claims_dropped_ungrounded"] == 1
    assert eng.dropped_by_section()["root_cause"] == 1
    report = next(s for s in result.postmortem.sources if s.name == "offline engine fallback")
    assert any(
        "in Root cause and trigger, as the model's 1 claim did not check out" in k
        for k in report.skipped
    )
    assert result.postmortem.root_cause, "the offline engine's root cause fills the section"
