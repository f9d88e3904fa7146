"""`retro harvest` across sources (retro/timeline/harvest.py) and `retro sources check`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from retro import registry
from retro.cli.main import cli
from retro.config import field_env
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress
from retro.timeline.harvest import MANIFEST, check_sources, checks_exit_code
from tests.emulators.pagerduty import PagerDutyEmulator

INC = "Q0CHK7LAT42"


class _NoSettings(BaseModel):
    pass


class BuggyConnector(Connector):
    """A live source whose harvest and check fail with a plain bug, not a RetroError."""

    name: ClassVar[str] = "buggy"
    title: ClassVar[str] = "Buggy"
    Config: ClassVar[type[BaseModel]] = _NoSettings
    order: ClassVar[int] = 1  # harvested before every built-in

    def claims(self, doc: Doc) -> bool:
        return False

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return iter(())

    def harvest(
        self, ref: IncidentRef, out: Path, config: BaseModel, progress: Progress = no_progress
    ) -> SourceReport:
        raise KeyError("page")

    def check(self, config: BaseModel) -> list[str]:
        raise TypeError("'NoneType' object is not subscriptable")


@pytest.fixture
def with_buggy(monkeypatch: pytest.MonkeyPatch) -> None:
    classes = {"buggy": BuggyConnector, **registry.connector_classes()}
    monkeypatch.setattr(registry, "connector_classes", lambda: classes)


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch) -> Iterator[PagerDutyEmulator]:
    with PagerDutyEmulator() as emu:
        assert isinstance(emu, PagerDutyEmulator)
        monkeypatch.setenv("PAGERDUTY_TOKEN", "pd-test-token")
        monkeypatch.setenv("PAGERDUTY_API_URL", emu.url)
        yield emu


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("retro: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- harvest ---------------------------------------------------------------------------------------


def test_a_source_that_raises_anything_is_reported_and_the_others_run(
    with_buggy: None, pagerduty: PagerDutyEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    code, stdout, err = run(
        "harvest", "--incident", "INC-1", "--out", str(out), "--from", "buggy=x", "--pagerduty", INC
    )
    assert code == 2 and stdout.strip() == str(out)
    line = one_error_line(err)
    assert "1 source(s) failed: buggy: unexpected KeyError" in line and "RETRO_DEBUG=1" in line
    assert (out / "pagerduty" / f"incident-{INC}.json").exists()
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["incident"] == "INC-1"
    assert manifest["sources"]["pagerduty"]["complete"] is True
    assert manifest["sources"]["pagerduty"]["report"]["records"] > 0
    buggy = manifest["sources"]["buggy"]
    assert buggy["complete"] is False and buggy["report"]["status"] == "failed"
    assert "unexpected KeyError" in buggy["report"]["error"]


def test_retro_debug_shows_the_bug(
    with_buggy: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRO_DEBUG", "1")
    result = CliRunner().invoke(
        cli, ["harvest", "--incident", "I", "--out", str(tmp_path), "--from", "buggy=x"]
    )
    assert isinstance(result.exception, KeyError)


def test_a_source_run_again_with_other_targets_is_fetched_again(
    pagerduty: PagerDutyEmulator, tmp_path: Path
) -> None:
    args = ["harvest", "--incident", "INC-1", "--out", str(tmp_path), "--pagerduty", INC]
    assert run(*args)[0] == 0
    pagerduty.log.clear()
    code, _, err = run(*args)
    assert code == 0 and pagerduty.log == [] and "already harvested" in err
    code, _, _ = run(*args, "--since", "2024-05-01T13:00:00Z")  # another window: fetched
    assert code == 0 and pagerduty.log
    pagerduty.log.clear()
    (tmp_path / "pagerduty" / f"alerts-{INC}.json").unlink()  # a file gone: fetched again
    code, _, _ = run(*args, "--since", "2024-05-01T13:00:00Z")
    assert code == 0 and (tmp_path / "pagerduty" / f"alerts-{INC}.json").exists()


@pytest.mark.parametrize(
    "content", [b"\xff\xfe\x00binary", b"id: [unclosed\n", b"- just\n- a list\n"]
)
def test_a_broken_incident_yaml_is_one_line(
    pagerduty: PagerDutyEmulator, tmp_path: Path, content: bytes
) -> None:
    (tmp_path / "incident.yaml").write_bytes(content)
    code, _, err = run("harvest", "--incident", "I", "--out", str(tmp_path), "--pagerduty", INC)
    assert code == 2 and "incident.yaml" in one_error_line(err)
    assert pagerduty.log == []


def test_an_incident_yaml_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "incident.yaml")  # reading it would never end
    code, _, err = run("harvest", "--incident", "I", "--out", str(tmp_path), "--pagerduty", INC)
    assert code == 2 and "incident.yaml" in one_error_line(err)


def test_out_on_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(
        "harvest", "--incident", "I", "--out", str(blocker / "b"), "--pagerduty", INC
    )
    assert code == 2 and "a file is in the way" in one_error_line(err)


# --- sources check ---------------------------------------------------------------------------------


@pytest.fixture
def nothing_configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No source's variable set, and no retro.toml (keys: conftest's empty user folder)."""
    monkeypatch.chdir(tmp_path)
    for cls in registry.connector_classes().values():
        for field in cls.Config.model_fields:
            env = field_env(cls.Config, field)
            if env:
                monkeypatch.delenv(env, raising=False)


def test_sources_check_with_nothing_configured_passes(nothing_configured: None) -> None:
    """Before: Grafana and generic FAILED ("not supported"), Alertmanager probed localhost,
    and the command always exited 2."""
    code, out, _ = run("sources", "check")
    assert code == 0, out
    assert "grafana: no live mode" in out and "generic: no live mode" in out
    assert "alertmanager: not configured: No Alertmanager URL" in out
    assert "slack: not configured" in out and "FAILED" not in out


def test_sources_check_exit_codes(
    nothing_configured: None, pagerduty: PagerDutyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run("sources", "check")
    assert code == 0 and "pagerduty: ok" in out and "user token of" in out
    code, out, _ = run("sources", "check", "--source", "grafana")
    assert code == 0 and out.startswith("grafana: no live mode")
    code, out, _ = run("sources", "check", "--source", "slack")  # named, so it must be set up
    assert code == 2 and "slack: not configured" in out
    monkeypatch.setenv("PAGERDUTY_TOKEN", "wrong")
    code, out, _ = run("sources", "check")
    assert code == 2 and "pagerduty: FAILED: pagerduty: the API rejected the token (401" in out


def test_sources_check_unknown_source_is_one_line() -> None:
    """Before: `--source nosuch` printed nothing and exited 0."""
    code, out, err = run("sources", "check", "--source", "nosuch")
    line = one_error_line(err)
    assert code == 2 and out == ""
    assert "unknown source 'nosuch'" in line and "slack" in line and "pagerduty" in line


def test_sources_check_json(nothing_configured: None, pagerduty: PagerDutyEmulator) -> None:
    code, out, _ = run("sources", "check", "--json", "--source", "pagerduty", "--source", "generic")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["pagerduty"]["status"] == "ok" and rows["pagerduty"]["verified"]
    assert rows["generic"] == {
        "name": "generic",
        "title": rows["generic"]["title"],
        "status": "no live mode",
        "verified": [],
        "error": None,
        "asked": True,
        "failed": False,
    }


def test_a_buggy_check_is_that_sources_failure(with_buggy: None, nothing_configured: None) -> None:
    results = check_sources(["buggy", "grafana"])
    assert [r.status for r in results] == ["failed", "no live mode"]
    assert results[0].error is not None and "unexpected TypeError" in results[0].error
    assert checks_exit_code(results) == 2
    assert checks_exit_code(check_sources(["grafana"])) == 0
