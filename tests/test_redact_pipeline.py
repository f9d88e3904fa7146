"""What leaves the machine carries none of the corpus's secrets or personal data.

Every format in tests/redact_corpus.py is planted in a Slack message of one bundle, which is
drafted with the openai engine against the local OpenAI emulator. The request bodies the engine
sends, and the draft it writes, must hold none of the planted values. A tag next to each value
proves its message was in the request, so the test cannot pass because a row was left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retro.draft.engines.llm import OpenAIEngine
from retro.draft.engines.llm_cache import ResponseCache
from retro.draft.evidence import evidence_rows
from retro.draft.pipeline import generate
from retro.safety.redact import Redactor
from retro.timeline.read import read_timeline
from tests.bundle_factory import CHAT, msg, write_bundle
from tests.emulators.openai import OpenAIEmulator, tool_name
from tests.redact_corpus import SECRETS, Case

ROW_ID = re.compile(r'"id":\s*"(E[0-9A-Za-z]+)"')
TAG = re.compile(r"probe\d{3}")


def _slack_escape(text: str) -> str:
    """Slack exports store &, < and > escaped; the reader unescapes them."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tag(i: int) -> str:
    return f"probe{i:03d}"


def _planted_chat() -> list[dict[str, Any]]:
    users = ("U01", "U02", "U03")
    planted = [
        msg(users[i % 3], 10.05 + i * 0.1, _slack_escape(f"{case.text}\n({_tag(i)})"))
        for i, case in enumerate(SECRETS)
    ]
    return [*CHAT, *planted]


def _values() -> list[tuple[Case, str]]:
    return [(case, value) for case in SECRETS for value in case.secrets]


@pytest.fixture()
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(api_key="sk-emulator") as emu:
        emu.responder = lambda body: {}
        yield emu


def _engine(emulator: OpenAIEmulator, tmp_path: Path) -> OpenAIEngine:
    # budgets large enough that every row goes into one request: nothing is left out unseen
    return OpenAIEngine(
        model="gpt-4o-mini",
        base_url=emulator.url + "/v1",
        api_key="sk-emulator",
        cache=ResponseCache(tmp_path / "cache", enabled=False),
        evidence_share=1.0,
        min_evidence_tokens=1_000_000,
        single_call_tokens=1_000_000,
    )


def test_llm_requests_carry_none_of_the_planted_values(
    emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    bundle = write_bundle(tmp_path / "bundle", chat=_planted_chat())
    result = generate(bundle=bundle, engine=_engine(emulator, tmp_path), out=tmp_path / "d.md")
    assert emulator.bodies, "the engine sent no request"
    sent = json.dumps(emulator.bodies, ensure_ascii=False)
    # every planted row the engine was given went out; policy may keep a few out (they are
    # counted in Sources), but most must go, or this test would prove nothing
    given = {t for r in result.data.rows for t in TAG.findall(r.text)}
    assert len(given) >= 60, f"only {len(given)} planted rows reached the engine"
    assert all(tag in sent for tag in given), sorted(t for t in given if t not in sent)
    leaked = [f"{case.fmt}: {value!r}" for case, value in _values() if value in sent]
    assert not leaked, leaked


def test_evidence_rows_of_every_planted_message_are_clean(tmp_path: Path) -> None:
    """All rows, including any that policy keeps out of a draft: text, facts and actor."""
    bundle = write_bundle(tmp_path / "bundle", chat=_planted_chat())
    rows = evidence_rows(read_timeline(bundle))
    assert {t for r in rows for t in TAG.findall(r.text)} == {_tag(i) for i in range(len(SECRETS))}
    seen = json.dumps([[r.text, r.actor, r.facts] for r in rows], ensure_ascii=False)
    leaked = [f"{case.fmt}: {value!r}" for case, value in _values() if value in seen]
    assert not leaked, leaked


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    """A model that writes every planted text back, in context: in claims, action items and
    open questions. (A bare value with no label or prefix, "Rotate T1Nbq…", cannot be told
    from an id; a model never sees one, since its evidence is redacted in context.)"""
    if tool_name(body) != "PostmortemDraft":
        return {}
    ids = ROW_ID.findall(" ".join(str(m.get("content")) for m in body["messages"]))
    claims = [{"text": case.text, "cites": [ids[0]]} for case in SECRETS]
    actions = [
        {
            "title": f"Rotate what was pasted: {case.text}",
            "type": "repair",
            "priority": "P1",
            "owner": "the platform team",
            "end_state": f"No longer valid: {case.text}",
            "origin": "gap",
            "cites": [ids[0]],
        }
        for case in SECRETS
        if "\n" not in case.text
    ]
    return {
        "summary": claims,
        "action_items": actions,
        "open_questions": [f"Why was this pasted? {case.text}" for case in SECRETS],
    }


def test_values_an_llm_echoes_never_reach_the_draft(
    emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    emulator.responder = _echo
    bundle = write_bundle(tmp_path / "bundle", chat=_planted_chat())
    out = tmp_path / "d.md"
    generate(bundle=bundle, engine=_engine(emulator, tmp_path), out=out)
    draft = out.read_text(encoding="utf-8")
    assert draft.count("Rotate what was pasted") >= 60, "the echoed action items were dropped"
    leaked = [f"{case.fmt}: {value!r}" for case, value in _values() if value in draft]
    assert not leaked, leaked


def test_redactor_counts_every_planted_format_once_per_case() -> None:
    """The same corpus straight through one Redactor: each case finds at least one marker."""
    redactor = Redactor()
    for case in SECRETS:
        out = redactor.redact(case.text)
        assert "[REDACTED:" in out, case.fmt
    assert sum(redactor.counts.values()) >= len(SECRETS)


# Incident metadata and bot display names are free text too: they go through the Redactor
# in retro/draft/evidence.py before they reach a request or the draft.
@pytest.mark.parametrize("where", ["services", "bot name"])
def test_incident_metadata_and_bot_names_are_redacted(
    where: str, emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    value = "jane.doe@gmail.com"
    chat = list(CHAT)
    if where == "bot name":
        bot = {"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": "updated"}
        chat.append({**bot, "username": f"Jane via Zendesk ({value})", "ts": "1714572300.0001"})
    bundle = write_bundle(tmp_path / "bundle", chat=chat)
    if where == "services":
        (bundle / "incident.yaml").write_text(
            f"id: INC-101\ntitle: Checkout errors\nservices: [checkout-api, 'billing {value}']\n",
            encoding="utf-8",
        )
    out = tmp_path / "d.md"
    generate(bundle=bundle, engine=_engine(emulator, tmp_path), out=out)
    assert value not in json.dumps(emulator.bodies)
    assert value not in out.read_text(encoding="utf-8")
