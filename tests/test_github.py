"""GitHub connector: REST bodies in file mode; live harvest of the changes before impact against
the emulator (Link paging, API version header, primary and secondary rate limits, faults)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.github import GitHubConnector
from connectors.github.live import GitHubConfig
from retro.connector import Doc, IncidentRef, ReadContext, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.github import (
    FIXTURES,
    REPO,
    TOKEN,
    VERSION,
    GitHubEmulator,
    primary_limit,
    secondary_limit,
)

CONNECTOR = GitHubConnector()
ALL_FIXTURES = FIXTURES.parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
CHANGE_ATTRS = ("change", "ref", "sha", "url", "environment")


def load(name: str) -> Doc:
    return Doc(rel=f"github/{name}", data=json.loads((FIXTURES / name).read_text("utf-8")))


def make_ctx(*, lenient: bool = False) -> ReadContext:
    return ReadContext(
        bundle=FIXTURES,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="github"),
        lenient=lenient,
    )


def read(*docs: Doc, ctx: ReadContext | None = None) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx or make_ctx()))


def documented() -> list[Doc]:
    return [load(p.name) for p in sorted(FIXTURES.glob("documented_*.json"))]


# --- conformance and file mode ---------------------------------------------------------------------


def test_every_sample_is_claimed_and_read() -> None:
    ctx = make_ctx()
    samples = [load(p.name) for p in sorted(FIXTURES.glob("*.json")) if "documented" not in p.name]
    events = read(*samples, ctx=ctx)
    assert ctx.report.records == 22
    assert ctx.report.skipped == {
        "pull request merged into another branch than the default": 1,  # PR 31 into a topic branch
        "workflow run of a workflow that does not deploy": 8,  # Build and CI runs
    }
    changes = [e for e in events if e.kind == "change_deployed"]
    assert sorted(e.attrs["change"] for e in changes) == [
        "deployment", "pull_request", "pull_request", "pull_request",
        "release", "release", "release", "release",
    ]  # fmt: skip
    # the 2012 pull list predates merge_commit_sha; releases name a branch, not a commit
    assert [e.key for e in changes if e.attrs.get("sha")] == ["github:deployment:262350588"]
    # the queued-only deployment is not a change that went out
    queued = next(e for e in events if e.key == "github:deployment:263877258")
    assert queued.kind == "other" and queued.attrs["outcome"] == "queued"
    unknown = next(e for e in events if e.key == "github:deployment:262350588")
    assert unknown.attrs["outcome"] == "unknown" and "outcome not in the bundle" in unknown.text


def test_changes_before_impact_carry_change_ref_sha_url_environment() -> None:
    events = read(*documented())
    rows = [
        (
            e.at.strftime("%m-%d %H:%M:%S"),
            *(e.attrs.get(k) for k in ("change", "ref", "environment")),
        )
        for e in events
        if e.kind == "change_deployed" and e.at.day == 1
    ]
    assert rows == [
        ("05-01 10:58:00", "pull_request", "main", None),
        ("05-01 11:00:00", "release", "v2024.05.01-2", None),
        ("05-01 13:31:00", "deployment", "main", "staging"),
        ("05-01 13:38:10", "pull_request", "main", None),
        ("05-01 13:39:30", "release", "v2024.05.01-3", None),
        ("05-01 13:41:20", "deployment", "main", "production"),
        ("05-01 13:41:25", "workflow_run", "main", None),
    ]
    deploy = next(e for e in events if e.key == "github:deployment:1400000003")
    assert deploy.text == "Deployed checkout-api main to production"  # the repository named
    release = next(e for e in events if e.attrs.get("ref") == "v2024.05.01-3")
    assert release.text.startswith("Released checkout-api v2024.05.01-3")
    assert deploy.attrs["sha"] == "9fceb02d0ae598e95dc970b74767f19372d61af8"
    assert deploy.attrs["url"] == "https://checkout.acme.example"
    assert deploy.attrs["statuses"][0].startswith("queued")
    assert deploy.actor is not None and deploy.actor.is_bot
    pull = next(e for e in events if e.key == f"github:{REPO}:pull:812")
    assert pull.text == "Merged PR #812 into main: Lower checkout DB pool size to 20"
    assert pull.url == "https://github.com/acme/checkout-api/pull/812"
    assert pull.actor is not None and pull.actor.handle == "bochen"


def test_failed_deploys_are_not_changes_and_skips_say_why() -> None:
    ctx = make_ctx()
    events = read(*documented(), ctx=ctx)
    failed = {e.key: e.text for e in events if e.kind == "other"}
    assert failed == {
        "github:deployment:1400000001": "Deployment of checkout-api main to production: failure",
        "github:run:9100002990": "Workflow Deploy production #411 on main: failure",
    }
    assert ctx.report.skipped == {
        "pull request closed without merging": 1,
        "pull request merged into another branch than the default": 1,
        "draft release (not published)": 1,
        "workflow run of a workflow that does not deploy": 1,
    }


def test_bad_record_is_a_bundle_error_or_a_counted_skip() -> None:
    body = json.loads((FIXTURES / "documented_rest_releases_list.json").read_text())
    body[1]["published_at"] = "May 1st"
    with pytest.raises(BundleError, match=r"github/x.json \[1\]: published_at"):
        read(Doc(rel="github/x.json", data=body))
    ctx = make_ctx(lenient=True)
    assert len(read(Doc(rel="github/x.json", data=body), ctx=ctx)) == 2  # of 4: a draft, a bad one
    assert ctx.report.skipped == {
        "draft release (not published)": 1,
        "invalid GitHub record: github/x.json [1]: published_at 'May 1st' is not a valid timestamp": 1,
    }


def test_claims_nothing_of_other_vendors() -> None:
    """Every other vendor's sample, here and in ../shared/fixtures when it is there."""
    roots = [ALL_FIXTURES, *([SHARED] if SHARED.is_dir() else [])]
    for root in roots:
        for path in sorted(root.rglob("*.json")):
            if FIXTURES not in path.parents:
                doc = Doc(rel=str(path.relative_to(root)), data=json.loads(path.read_text()))
                assert not CONNECTOR.claims(doc), path


@pytest.mark.parametrize("data", [None, 1, "x", [], [{"sha": 1}], {"workflow_runs": "x"}])
def test_claims_never_raises_and_rejects_junk(data: object) -> None:
    assert not CONNECTOR.claims(Doc(rel="github/x.json", data=data))


# --- live mode -------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[GitHubEmulator]:
    with GitHubEmulator() as server:
        yield server  # type: ignore[misc]


def config(emu: GitHubEmulator, **kw: object) -> GitHubConfig:
    return GitHubConfig(token=TOKEN, base_url=emu.url, backoff=0.01, **kw)  # type: ignore[arg-type]


IMPACT = {"since": parse_time("2024-05-01T13:50:00Z"), "until": parse_time("2024-05-01T16:00:00Z")}


def harvest(
    emu: GitHubEmulator, out: Path, *, when: dict | None = None, **kw: object
) -> SourceReport:
    ref = IncidentRef(
        incident_id="INC-1", targets={"github": [REPO]}, **(IMPACT if when is None else when)
    )
    return CONNECTOR.harvest(ref, out, config(emu, **kw))


def read_dir(folder: Path) -> list[TimelineEvent]:
    return read(
        *[Doc(rel=p.name, data=json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    )


def summary(events: list[TimelineEvent]) -> list[tuple[str, str, str, tuple]]:
    return [
        (e.key, e.kind, e.at.isoformat(), tuple(e.attrs.get(k) for k in CHANGE_ATTRS))
        for e in events
    ]


def test_harvest_fetches_the_lookback_and_round_trips(emu: GitHubEmulator, tmp_path: Path) -> None:
    report = harvest(emu, tmp_path, page_size=2)
    assert report.status == "ok"
    assert report.skipped == {"workflow runs of workflows that do not deploy": 1}
    outside = {
        f"github:{REPO}:pull:790",
        "github:release:160000001",
        "github:deployment:1399999000",
    }
    expected = [e for e in read(*documented()) if e.key not in outside]
    assert summary(read_dir(tmp_path / "github")) == summary(expected)
    log = emu.log
    assert {r.headers["x-github-api-version"] for r in log} == {VERSION}
    assert {r.headers["authorization"] for r in log} == {f"Bearer {TOKEN}"}
    # newest-first lists stop at the first page that reaches back past the window
    assert [r.q("page") for r in log if r.path.endswith("/deployments")] == [None, "2"]
    pulls = [r for r in log if r.path.endswith("/pulls")]
    assert pulls[0].q("base") == "main" and pulls[0].q("state") == "closed"
    runs = [r for r in log if r.path.endswith("/actions/runs")]
    assert runs[0].q("created") == "2024-04-30T13:50:00Z..2024-05-01T16:00:00Z"
    assert len(runs) == 2  # three runs, two per page, followed by the Link header


def test_faults_on_any_page_lose_duplicate_and_reorder_nothing(
    emu: GitHubEmulator, tmp_path: Path, waits: list[float]
) -> None:
    clean = tmp_path / "clean"
    harvest(emu, clean, page_size=1)
    emu.log.clear()
    pattern = "/actions/runs$"  # three pages of one run each
    emu.inject(pattern, status=502, body={"message": "Server Error"})
    emu.inject(pattern, drop=True, skip=1)
    emu.inject(pattern, **secondary_limit("30"), skip=2)
    emu.inject(pattern, truncate="cut", skip=2)
    faulted = tmp_path / "faulted"
    harvest(emu, faulted, page_size=1)
    for path in sorted((clean / "github").glob("*.json")):
        assert (faulted / "github" / path.name).read_bytes() == path.read_bytes(), path.name
    pages = [r.q("page") for r in emu.log if r.path.endswith("/actions/runs")]
    assert pages == [None, None, "2", "2", "3", "3", "3"]
    assert len(waits) == 4 and waits[2] == 30.0


def test_primary_limit_waits_for_the_reset(
    emu: GitHubEmulator, tmp_path: Path, waits: list[float]
) -> None:
    emu.inject("/releases$", **primary_limit(reset_in=5))
    harvest(emu, tmp_path)
    assert len(waits) == 1 and 3.0 <= waits[0] <= 5.0


def test_primary_limit_far_away_stops_with_the_reset_time(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    emu.inject("/pulls$", **primary_limit(reset_in=3000))
    with pytest.raises(
        ConnectorError, match="hourly rate limit is used up; run the harvest again after"
    ):
        harvest(emu, tmp_path)


def test_secondary_limit_without_retry_after_waits_a_minute(
    emu: GitHubEmulator, tmp_path: Path, waits: list[float]
) -> None:
    emu.inject("/deployments$", **secondary_limit(None))
    emu.inject("/deployments$", status=429, headers={"retry-after": "4"})
    harvest(emu, tmp_path)
    assert waits == [60.0, 4.0]


def test_a_plain_403_is_not_retried(emu: GitHubEmulator, tmp_path: Path) -> None:
    body = {"message": "Resource not accessible by personal access token", "documentation_url": "x"}
    emu.inject("/deployments$", status=403, body=body)
    with pytest.raises(ConnectorError, match="may not read /repos/acme/checkout-api/deployments"):
        harvest(emu, tmp_path)
    assert len([r for r in emu.log if r.path.endswith("/deployments")]) == 1


def test_errors_are_one_line_with_the_fix(
    emu: GitHubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"github": [REPO]}, **IMPACT)
    with pytest.raises(ConnectorError, match="rejected the token \\(401: Bad credentials"):
        CONNECTOR.harvest(ref, tmp_path, GitHubConfig(token="bad", base_url=emu.url))  # type: ignore[arg-type]
    other = IncidentRef(incident_id="INC-1", targets={"github": ["acme/nope"]}, **IMPACT)
    with pytest.raises(ConnectorError, match="not found \\(404: Not Found\\); check OWNER/REPO"):
        CONNECTOR.harvest(other, tmp_path, config(emu))
    bad = IncidentRef(incident_id="INC-1", targets={"github": ["just-a-name"]}, **IMPACT)
    with pytest.raises(ConfigError, match="OWNER/REPO"):
        CONNECTOR.harvest(bad, tmp_path, config(emu))
    with pytest.raises(ConnectorError, match="API version 1999-01-01 is not supported"):
        CONNECTOR.harvest(ref, tmp_path, config(emu, api_version="1999-01-01"))
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(MissingCredential, match="GITHUB_TOKEN"):
        CONNECTOR.harvest(ref, tmp_path, GitHubConfig())


def test_without_since_the_window_ends_at_the_other_sources_first_signal(
    emu: GitHubEmulator, tmp_path: Path
) -> None:
    shutil.copytree(FIXTURES.parent / "pagerduty", tmp_path / "pagerduty")  # harvested earlier
    harvest(emu, tmp_path, when={"until": parse_time("2024-05-01T16:00:00Z")})
    runs = [r for r in emu.log if r.path.endswith("/actions/runs")]
    # PagerDuty's first alert fired at 14:03:11; the changes of the 24 hours before it
    assert runs[0].q("created") == "2024-04-30T14:03:11Z..2024-05-01T16:00:00Z"


def test_without_any_anchor_the_lookback_ends_at_until(emu: GitHubEmulator, tmp_path: Path) -> None:
    harvest(emu, tmp_path, when={"until": parse_time("2024-05-01T16:00:00Z")}, lookback_hours=6)
    runs = [r for r in emu.log if r.path.endswith("/actions/runs")]
    assert runs[0].q("created") == "2024-05-01T10:00:00Z..2024-05-01T16:00:00Z"


def test_check_reports_the_rate_limit(emu: GitHubEmulator) -> None:
    assert CONNECTOR.check(config(emu))[1] == "token accepted; requests left this hour: 4999/5000"
