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
