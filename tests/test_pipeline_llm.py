"""The openai engine through the whole pipeline: what leaves the machine has no names or secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from retro.cli.draft import sample_bundle
from retro.cli.main import cli
from retro.draft.engines.llm import OpenAIEngine
from retro.draft.engines.llm_cache import ResponseCache
from retro.draft.pipeline import generate
from retro.draft.review import read_postmortem
from tests.emulators.openai import OpenAIEmulator


@pytest.fixture()
def emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(api_key="sk-emulator") as emu:
        emu.responder = lambda body: {}
        yield emu


def _forbidden() -> list[str]:
    expected = yaml.safe_load((sample_bundle().parent / "expected.yaml").read_text())
    return [str(f) for f in expected["forbidden"]]


def test_requests_carry_no_names_or_secrets(emulator: OpenAIEmulator, tmp_path: Path) -> None:
    engine = OpenAIEngine(
        model="gpt-4o-mini",
        base_url=emulator.url + "/v1",
        api_key="sk-emulator",
        cache=ResponseCache(tmp_path / "cache", enabled=False),
    )
    result = generate(bundle=sample_bundle(), engine=engine, out=tmp_path / "d.md")
    assert emulator.bodies, "the engine sent no request"
    sent = json.dumps(emulator.bodies)
    for value in _forbidden():
        assert value not in sent, value
    for person in result.timeline.people.values():
        if person.is_bot:
            continue
        for value in (person.name, *person.emails):
            if value and len(value) > 3:
                assert value not in sent, value
    assert "[REDACTED:slack_token]" in sent
    assert read_postmortem(tmp_path / "d.md").engine == "openai"


def test_generate_cli_with_the_openai_engine(
    emulator: OpenAIEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-emulator")
    monkeypatch.setenv("RETRO_LLM_CACHE", "0")
    out = tmp_path / "llm.md"
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--bundle",
            str(sample_bundle()),
            "--out",
            str(out),
            "--engine",
            "openai",
            "--model",
            "gpt-4o-mini",
            "--base-url",
            emulator.url + "/v1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["usage"]["calls"] >= 1
    assert out.exists()


def test_wrong_key_is_one_line(
    emulator: OpenAIEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    monkeypatch.setenv("RETRO_LLM_CACHE", "0")
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--bundle",
            str(sample_bundle()),
            "--out",
            str(tmp_path / "x.md"),
            "--engine",
            "openai",
            "--base-url",
            emulator.url + "/v1",
        ],
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert (
        len([line for line in result.stderr.splitlines() if line.startswith("retro: error:")]) == 1
    )


def test_sections_whose_claims_all_fail_fall_back_to_the_offline_engine(
    emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.pipeline import check_citations
    from tests.test_engine_llm import good_reply

    emulator.responder = good_reply  # a summary and a detection claim, and one action item
    emulator.cite_urls = True  # ... citing URLs instead of row ids, as SmolLM2 did
    engine = OpenAIEngine(
        base_url=emulator.url + "/v1",
        api_key="sk-emulator",
        cache=ResponseCache(tmp_path / "cache", enabled=False),
    )
    result = generate(bundle=sample_bundle(), engine=engine, out=tmp_path / "d.md")
    pm = result.postmortem
    offline = OfflineEngine().draft(result.data)
    check_citations(offline, {r.id for r in result.data.rows})
    assert pm.summary and pm.summary == offline.summary
    assert pm.detection == offline.detection
    report = next(s for s in pm.sources if s.name == "offline engine fallback")
    assert report.skipped[
        "claims of the offline engine used in Summary, as the model's 1 claim did not check out"
    ] == len(offline.summary)
    assert any(k.endswith("in Impact, as the model wrote none") for k in report.skipped)
    assert "**Offline engine fallback**: " in result.markdown
    valid = {r.id for r in result.data.rows}
    for name in ("summary", "impact", "detection", "response", "recovery", "root_cause"):
        for claim in getattr(pm, name):
            assert claim.citations and set(claim.citations) <= valid, (name, claim)
    assert read_postmortem(tmp_path / "d.md").engine == "openai"


def test_no_fallback_when_the_model_filled_every_section(
    emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    from retro.draft.engines.base import DraftInput
    from retro.draft.pipeline import fill_from_offline
    from retro.models import CLAIM_FIELDS, Claim, Metrics, Postmortem

    pm = Postmortem(incident_id="INC-1", title="t")
    for name in CLAIM_FIELDS:
        setattr(pm, name, [Claim(text="x", citations=["E1"])])
    engine = OpenAIEngine(base_url=emulator.url + "/v1", api_key="sk-emulator")
    data = DraftInput(incident_id="INC-1", rows=[], milestones={}, metrics=Metrics())
    assert fill_from_offline(pm, data, engine, wrote={}) is None
