"""Faults on any page of every live source: nothing lost, duplicated or reordered.

Each live source (Slack, PagerDuty, Opsgenie, Alertmanager) is harvested once cleanly from its
emulator; then the same harvest meets one fault (tests/emulators/base.py FAULTS: 429 with and
without Retry-After, 500/502/503/504, a connection dropped before and after the server
answered, an HTML body, a body cut short, a connection cut mid-body, an answer slower than the
timeout) on the first, a middle or the last request. The faulted bundle must be byte-identical
to the clean one, with exactly one retry, and Retry-After honoured. When the fault outlasts the
retries, `retro harvest` exits 2 with one error line, records the source as incomplete in
.harvest.json, and the next run resumes to the same bundle without fetching it all again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, SecretStr

from connectors.alertmanager.live import AlertmanagerConfig
from connectors.opsgenie.live import OpsgenieConfig
from connectors.pagerduty.live import PagerDutyConfig
from connectors.slack.live import SlackConfig
from retro import registry
from retro.cli.main import cli
from retro.connector import IncidentRef
from retro.models import SourceReport
from tests.emulators.alertmanager import AlertmanagerEmulator, gettable_alert
from tests.emulators.base import FAULTS, Emulator
from tests.emulators.opsgenie import OpsgenieEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.slack import SlackEmulator
from tests.slack_workspace import TOKEN, workspace

SOURCES = ("slack", "pagerduty", "opsgenie", "alertmanager")
RETRIES = 2
TIMEOUT_S = 0.5  # the emulators' slow answer comes after SLOW_S (longer); a loaded machine
# must not make an ordinary answer time out, so not less
BACKOFF_S = 0.01
PD_INCIDENT = "Q0CHK7LAT42"


@dataclass
class Live:
    """One live source under test: its emulator, its settings, how the CLI reaches it, and
    what a clean harvest gives (the baseline every faulted harvest must equal)."""

    name: str
    emu: Emulator
    targets: list[str]
    config: BaseModel
    env: dict[str, str]
    toml: dict[str, Any]
    cli_args: list[str]
    clean: dict[str, Any] = field(default_factory=dict)  # the source folder's files
    requests: int = 0  # how many requests the clean harvest made

    def harvest(self, out: Path) -> SourceReport:
        ref = IncidentRef(incident_id="INC-1", targets={self.name: self.targets})
        return registry.get(self.name).harvest(ref, out, self.config)


def _slack() -> Live:
    emu = SlackEmulator(workspace(), token=TOKEN).start()
    assert isinstance(emu, SlackEmulator)
    settings = {"max_retries": RETRIES, "retry_backoff": BACKOFF_S, "timeout": TIMEOUT_S}
    config = SlackConfig(token=SecretStr(TOKEN), base_url=emu.api_url, page_size=2, **settings)
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": emu.api_url, "SLACK_PAGE_SIZE": "2"}
    args = ["--slack-channel", "inc-42-checkout"]
    return Live("slack", emu, ["inc-42-checkout"], config, env, settings, args)


def _pagerduty() -> Live:
    emu = PagerDutyEmulator().start()
    settings = {"max_retries": RETRIES, "backoff": BACKOFF_S, "timeout": TIMEOUT_S, "page_size": 3}
    config = PagerDutyConfig(token=SecretStr("pd-test-token"), base_url=emu.url, **settings)
    env = {"PAGERDUTY_TOKEN": "pd-test-token", "PAGERDUTY_API_URL": emu.url}
    return Live(
        "pagerduty", emu, [PD_INCIDENT], config, env, settings, ["--pagerduty", PD_INCIDENT]
    )


def _opsgenie() -> Live:
    emu = OpsgenieEmulator().start()
    settings = {"max_retries": RETRIES, "backoff": BACKOFF_S, "timeout": TIMEOUT_S, "page_size": 3}
    config = OpsgenieConfig(api_key=SecretStr("og-test-key"), base_url=emu.url, **settings)
    env = {"OPSGENIE_API_KEY": "og-test-key", "OPSGENIE_API_URL": emu.url}
    args = ["--opsgenie-alert", "512", "--opsgenie-incident", "42"]
    return Live("opsgenie", emu, ["alert:512", "incident:42"], config, env, settings, args)


def _alertmanager() -> Live:
    from datetime import UTC, datetime

    t0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    alerts = [
        gettable_alert({"alertname": "HighErrorRate", "service": "checkout"}, starts_at=t0),
        gettable_alert({"alertname": "DiskFull", "severity": "warning"}, starts_at=t0),
        gettable_alert({"alertname": "Muted"}, starts_at=t0, silenced_by=["s-1"]),
    ]
    emu = AlertmanagerEmulator(alerts).start()
    settings = {
        "max_retries": RETRIES,
        "backoff_s": BACKOFF_S,
        "timeout_s": TIMEOUT_S,
        "groups": True,
    }
    config = AlertmanagerConfig(base_url=emu.url, **settings)  # type: ignore[arg-type]
    return Live(
        "alertmanager",
        emu,
        ["current"],
        config,
        {"ALERTMANAGER_URL": emu.url},
        settings,
        ["--alertmanager"],
    )


MAKERS = {
    "slack": _slack,
    "pagerduty": _pagerduty,
    "opsgenie": _opsgenie,
    "alertmanager": _alertmanager,
}


@pytest.fixture(scope="module", params=SOURCES)
def _source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One emulator per source for the module (harvests only read), with its clean baseline."""
    source = MAKERS[request.param]()
    with ExitStack() as stack:
        stack.callback(source.emu.stop)
        out = tmp_path_factory.mktemp(f"clean-{source.name}")
        source.harvest(out)
        source.clean = files(out / source.name)
        source.requests = len(source.emu.log)
        yield source


@pytest.fixture
def live(_source: Live) -> Live:
    """The source with no faults queued and an empty request log."""
    _source.emu.faults.clear()
    _source.emu.log.clear()
    return _source


VOLATILE = {"requestId", "took"}  # Opsgenie stamps every answer with these


def files(bundle: Path) -> dict[str, Any]:
    """Every file of a bundle by relative path: bytes, and JSON bodies without the per-answer
    stamps (so two harvests of the same data compare equal, order included)."""
    return {
        p.relative_to(bundle).as_posix(): _stable(p)
        for p in sorted(bundle.rglob("*"))
        if p.is_file()
    }


def _stable(path: Path) -> Any:
    raw = path.read_bytes()
    if path.suffix != ".json" or b'"requestId"' not in raw:
        return raw
    return _strip(json.loads(raw))


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in VOLATILE}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def assert_waited(fault: str, waits: list[float], retries: int = 1) -> None:
    assert len(waits) == retries, waits
    if fault == "429 with Retry-After":
        assert waits == [7.0] * retries  # the server's wait, exactly
    else:
        assert all(0 < w <= BACKOFF_S * 2**retries * 1.5 for w in waits), waits


# --- one fault, retried --------------------------------------------------------------------------


# A slow answer costs TIMEOUT_S of real time, so it is tried at one position only.
CASES = [
    (fault, position)
    for fault in FAULTS
    for position in (("middle",) if fault == "slow answer" else ("first", "middle", "last"))
]


@pytest.mark.parametrize(("fault", "position"), CASES)
def test_a_fault_on_any_request_loses_duplicates_and_reorders_nothing(
    live: Live, fault: str, position: str, tmp_path: Path, waits: list[float]
) -> None:
    total = live.requests
    skip = {"first": 0, "middle": total // 2, "last": total - 1}[position]
    live.emu.inject_fault(fault, skip=skip)
    report = live.harvest(tmp_path)
    assert files(tmp_path / live.name) == live.clean
    assert len(live.emu.log) == total + 1  # the faulted request once more, nothing else
    assert live.emu.faults == []
    assert report.records > 0
    assert_waited(fault, waits)


# --- retries run out: one line, recorded, resumable ------------------------------------------------


def run_cli(live: Live, out: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    for key, value in live.env.items():
        monkeypatch.setenv(key, value)
    lines = [f"[connectors.{live.name}]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in live.toml.items()]
    (Path.cwd() / "retro.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["harvest", "--incident", "INC-1", "--out", str(out), *live.cli_args]
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("fault", list(FAULTS))
def test_retries_run_out_one_line_then_the_next_run_resumes(
    live: Live, fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    monkeypatch.chdir(tmp_path)
    total = live.requests
    live.emu.inject_fault(fault, skip=total // 2, times=RETRIES + 1)

    code, out, err = run_cli(live, tmp_path / "b", monkeypatch)
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("retro: error:")]
    assert len(errors) == 1 and f"{live.name}: " in errors[0], err
    assert "run the same command again to resume" in errors[0]
    assert_waited(fault, waits, retries=RETRIES)
    manifest = json.loads((tmp_path / "b" / ".harvest.json").read_text())
    entry = manifest["sources"][live.name]
    assert entry["complete"] is False and entry["report"]["error"] in errors[0]
    stopped_after = len(live.emu.log)
    live.emu.log.clear()

    code, _, err = run_cli(live, tmp_path / "b", monkeypatch)
    assert code == 0, err
    # Nothing lost or written twice, and no checkpoint left behind.
    assert files(tmp_path / "b" / live.name) == live.clean
    resumed = len(live.emu.log)
    if live.name != "alertmanager":  # a snapshot is taken whole again; the rest resume
        assert resumed < total, (resumed, total)
    assert stopped_after - (RETRIES + 1) + resumed >= total


def test_slack_failing_does_not_stop_pagerduty_and_a_rerun_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pd, slack = _pagerduty(), _slack()
    try:
        # Issue 12 item 20: a 502 HTML page after the first, past the retries, was a
        # JSONDecodeError traceback (exit 1) and PagerDuty, after Slack, got no request.
        slack.emu.inject(
            "^/api/conversations.history$",
            **slack.emu.fault_spec("502 HTML"),
            times=RETRIES + 1,
            skip=1,
        )
        for key, value in {**pd.env, **slack.env}.items():
            monkeypatch.setenv(key, value)
        settings = [
            f"[connectors.{s.name}]\n"
            + "".join(f"{k} = {json.dumps(v)}\n" for k, v in s.toml.items())
            for s in (pd, slack)
        ]
        (tmp_path / "retro.toml").write_text("\n".join(settings), encoding="utf-8")
        args = ["harvest", "--incident", "INC-1", "--out", str(tmp_path / "b")]
        args += [*pd.cli_args, *slack.cli_args]
        first = CliRunner().invoke(cli, args)
        # Slack comes first and fails; PagerDuty still runs and completes.
        assert first.exit_code == 2 and len(pd.emu.log) > 0
        assert "slack: conversations.history #inc-42-checkout: Slack answered HTTP 502" in (
            first.stderr
        )
        manifest = json.loads((tmp_path / "b" / ".harvest.json").read_text())
        assert manifest["sources"]["pagerduty"]["complete"] is True
        assert manifest["sources"]["slack"]["complete"] is False
        pd.emu.log.clear()
        second = CliRunner().invoke(cli, args)
        assert second.exit_code == 0, second.stderr
        assert pd.emu.log == []  # complete: not fetched again
        assert "pagerduty: already harvested" in second.stderr
        third = CliRunner().invoke(cli, [*args, "--refresh"])
        assert third.exit_code == 0 and len(pd.emu.log) > 0
    finally:
        pd.emu.stop()
        slack.emu.stop()


def test_the_fault_catalogue() -> None:
    assert len(FAULTS) == 12
    assert {"drop", "truncate", "delay"} <= {k for spec in FAULTS.values() for k in spec}
    with pytest.raises(ValueError):
        Emulator().inject(".*")  # a fault must do something
