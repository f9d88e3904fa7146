"""The five new sources together (Datadog, New Relic, Statuspage, Sentry, GitHub), as the registry
sees them: every sample is claimed first by its own connector among all registered ones;
`retro harvest` through the CLI and the settings' environment variables writes files that each
land with their own connector when read back; and GitHub's window of changes ends at the first
alert another source harvested in the same run."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from connectors.datadog import DatadogConnector
from connectors.datadog.live import DatadogConfig
from connectors.github import GitHubConnector
from connectors.github.live import GitHubConfig
from connectors.newrelic import NewRelicConnector
from connectors.newrelic.live import NewRelicConfig
from connectors.sentry import SentryConnector
from connectors.sentry.live import SentryConfig
from connectors.statuspage import StatuspageConnector
from connectors.statuspage.history import StatuspageConfig
from retro import registry
from retro.cli.main import cli
from retro.connector import Connector, Doc, IncidentRef, parse_time
from retro.timeline.bundle import claim, load
from tests.emulators import datadog, github, newrelic, sentry, statuspage
from tests.emulators.base import FAULTS, Emulator


@pytest.fixture
def live() -> Iterator[tuple[dict[str, str], github.GitHubEmulator]]:
    """The five emulators running, the environment that points retro at them, and GitHub's."""
    dd = datadog.DatadogEmulator().start()
    nr = newrelic.NewRelicEmulator().start()
    gh = github.GitHubEmulator()
    gh.start()
    sn = sentry.SentryEmulator().start()
    sp = statuspage.StatuspageEmulator().start()
    env = {
        "DD_API_KEY": datadog.API_KEY,
        "DD_APP_KEY": datadog.APP_KEY,
        "DATADOG_API_URL": dd.url,
        "NEW_RELIC_API_KEY": newrelic.KEY,
        "NEW_RELIC_API_URL": nr.url,
        "GITHUB_TOKEN": github.TOKEN,
        "GITHUB_API_URL": gh.url,
        "SENTRY_AUTH_TOKEN": sentry.TOKEN,
        "SENTRY_URL": sn.url,
        "STATUSPAGE_API_KEY": statuspage.KEY,
        "STATUSPAGE_API_URL": sp.url,
    }
    yield env, gh
    for emu in (dd, nr, gh, sn, sp):
        emu.stop()


FIXTURES = Path(__file__).parent / "fixtures"
SOURCES = ("datadog", "newrelic", "statuspage", "sentry", "github")


@pytest.mark.parametrize("source", SOURCES)
def test_each_sample_is_claimed_first_by_its_own_connector(source: str) -> None:
    """Claim order decides: a looser reader earlier in the order must not take these files."""
    connectors = registry.connectors()
    for path in sorted((FIXTURES / source).glob("*.json")):
        doc = Doc(rel=f"{source}/{path.name}", data=json.loads(path.read_text("utf-8")))
        owner = claim(doc, connectors)
        assert owner is not None and owner.name == source, (path.name, owner and owner.name)


TARGETS = [
    "datadog=incident:4217",
    "datadog=events:source:alert",
    "newrelic=3141592",
    f"statuspage={statuspage.PAGE_ID}",
    "sentry=acme/checkout-api",
    "github=acme/checkout-api",
]


def test_five_sources_harvest_and_read_back_each_as_its_own(
    live: tuple[dict[str, str], github.GitHubEmulator], tmp_path: Path
) -> None:
    env, _ = live
    out = tmp_path / "bundle"
    args = ["harvest", "--incident", "INC-9", "--out", str(out), "--until", "2024-05-01T16:00:00Z"]
    for target in TARGETS:
        args += ["--from", target]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    written = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*.json") if not p.name.startswith(".")
    )
    raw = load(out, connectors=registry.connectors())
    by_source = {r.name: r for r in raw.reports}
    assert set(by_source) == {"datadog", "newrelic", "statuspage", "sentry", "github"}
    for name, report in by_source.items():
        assert report.status == "ok", (name, report)
        assert all(f.startswith(f"{name}/") for f in report.files), (name, report.files)
    assert sorted(f for r in raw.reports for f in r.files) == written  # every file, once
    assert not raw.bundle_report.skipped
    kinds = {(e.source, e.kind) for e in raw.events}
    assert {("datadog", "alert_firing"), ("newrelic", "page_acknowledged"),
            ("statuspage", "status_page_update"), ("sentry", "error_spike"),
            ("github", "change_deployed")} <= kinds  # fmt: skip


def test_githubs_window_ends_at_the_first_alert_harvested_before_it(
    live: tuple[dict[str, str], github.GitHubEmulator], tmp_path: Path
) -> None:
    env, gh = live
    out = tmp_path / "bundle"
    args = ["harvest", "--incident", "INC-9", "--out", str(out), "--until", "2024-05-01T16:00:00Z"]
    args += ["--from", "datadog=events:source:alert", "--from", "github=acme/checkout-api"]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    runs = [r for r in gh.log if r.path.endswith("/actions/runs")]
    # Datadog's first notification (a Warn at 13:49:00), harvested first, is the start of
    # impact: GitHub fetches the 24 hours of changes before it, up to --until
    assert runs[0].q("created") == "2024-04-30T13:49:00Z..2024-05-01T16:00:00Z"


# --- every named fault on a middle request of each source ------------------------------------------

WINDOW = {"since": parse_time("2024-05-01T13:50:00Z"), "until": parse_time("2024-05-01T16:00:00Z")}
FAST = {"backoff": 0.01, "max_retries": 2, "timeout": 0.3}  # the emulators' slow answer is later


def _case(
    source: str,
) -> tuple[Emulator, Connector, Callable[[Emulator], BaseModel], list[str], str]:
    """(emulator, connector, settings for it, targets, the paged path to fault)."""
    if source == "datadog":
        return (datadog.DatadogEmulator(), DatadogConnector(),
                lambda e: DatadogConfig(api_key=datadog.API_KEY, app_key=datadog.APP_KEY,
                                        base_url=e.url, page_size=2, **FAST),
                ["events:source:alert", "incident:4217"], "/api/v2/events$")  # fmt: skip
    if source == "github":
        return (github.GitHubEmulator(), GitHubConnector(),
                lambda e: GitHubConfig(token=github.TOKEN, base_url=e.url, page_size=1, **FAST),
                ["acme/checkout-api"], "/actions/runs$")  # fmt: skip
    if source == "newrelic":
        return (newrelic.NewRelicEmulator(), NewRelicConnector(),
                lambda e: NewRelicConfig(api_key=newrelic.KEY, base_url=e.url, **FAST),
                ["3141592"], "/graphql$")  # fmt: skip
    if source == "sentry":
        return (sentry.SentryEmulator(extra=4), SentryConnector(),
                lambda e: SentryConfig(token=sentry.TOKEN, base_url=e.url, page_size=2, **FAST),
                ["acme/checkout-api"], "/issues/$")  # fmt: skip
    return (statuspage.StatuspageEmulator(), StatuspageConnector(),
            lambda e: StatuspageConfig(api_key=statuspage.KEY, base_url=e.url, page_size=1, **FAST),
            [statuspage.PAGE_ID], "/incidents$")  # fmt: skip


@pytest.mark.parametrize("source", SOURCES)
def test_any_fault_on_a_middle_page_leaves_the_bundle_byte_identical(
    source: str, tmp_path: Path
) -> None:
    emu, connector, settings, targets, pattern = _case(source)
    ref = IncidentRef(incident_id="INC-1", targets={source: targets}, **WINDOW)
    with emu:
        clean = tmp_path / "clean"
        connector.harvest(ref, clean, settings(emu))
        want = {p.name: p.read_bytes() for p in (clean / source).glob("*.json")}
        for n, fault in enumerate(FAULTS):
            emu.inject_fault(fault, pattern, skip=1)
            out = tmp_path / f"fault-{n}"
            connector.harvest(ref, out, settings(emu))
            got = {p.name: p.read_bytes() for p in (out / source).glob("*.json")}
            assert got == want, fault
            assert not emu.faults, f"{fault} was never hit"
