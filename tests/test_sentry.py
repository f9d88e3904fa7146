"""Sentry connector: API 0 bodies and webhooks in file mode; live harvest against the emulator
(Link-header paging that ends on results="false", 429, 5xx, 401, dropped connections)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sentry import SentryConnector
from connectors.sentry.live import SentryConfig, links
from retro.connector import Doc, IncidentRef, ReadContext, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.sentry import FIXTURES, ORG, PROJECT, TOKEN, SentryEmulator

CONNECTOR = SentryConnector()
ALL_FIXTURES = FIXTURES.parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def load(name: str) -> Doc:
    return Doc(rel=f"sentry/{name}", data=json.loads((FIXTURES / name).read_text("utf-8")))


def make_ctx(*, lenient: bool = False) -> ReadContext:
    return ReadContext(
        bundle=FIXTURES,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="sentry"),
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
    events = read(*[load(p.name) for p in sorted(FIXTURES.glob("*.json"))], ctx=ctx)
    assert ctx.report.records == 1 + 3 + 2 + 1  # docs list, documented list + details, webhook
    assert ctx.report.skipped == {"webhook action `resolved` has no time of its own": 1}
    onsets = [e for e in events if e.kind == "error_spike"]
    assert {e.attrs["issue_id"] for e in onsets} >= {"1", "1638821441"}  # the recorded issues
    docs_issue = next(e for e in onsets if e.attrs["issue_id"] == "1")
    assert (
        docs_issue.attrs["count"] == 1 and docs_issue.attrs["first_seen"] == "2018-11-06T21:19:55Z"
    )
    assert (
        docs_issue.url == "https://sentry.io/the-interstellar-jurisdiction/pump-station/issues/1/"
    )


def test_error_onsets_first_seen_regression_and_escalation() -> None:
    events = read(*documented())
    onsets = [
        (e.at.strftime("%m-%d %H:%M:%S"), e.attrs["onset"], e.attrs["short_id"])
        for e in events
        if e.kind == "error_spike"
    ]
    assert onsets == [
        ("04-12 09:14:03", "first_seen", "CHECKOUT-API-2Z"),
        ("05-01 13:49:40", "first_seen", "CHECKOUT-API-3F"),
        ("05-01 13:52:30", "regression", "CHECKOUT-API-2Z"),
        ("05-01 13:58:00", "escalating", "CHECKOUT-API-3F"),
        ("05-01 14:05:11", "first_seen", "CHECKOUT-API-40"),
    ]
    pool = next(e for e in events if e.attrs.get("short_id") == "CHECKOUT-API-3F")
    assert pool.attrs["count"] == 18342 and pool.attrs["user_count"] == 5120
    assert pool.attrs["first_release"] == "checkout-api@2024.05.01-3" and pool.is_bot
    regressed = next(e for e in events if e.attrs.get("onset") == "regression")
    assert regressed.attrs["substatus"] == "regressed"
    assert regressed.attrs["release"] == "checkout-api@2024.05.01-3"
    assert regressed.attrs["first_seen"] == "2024-04-12T09:14:03Z"


def test_activity_is_comments_and_other_never_status_changes() -> None:
    events = read(*documented())
    comment = next(e for e in events if e.kind == "comment")
    assert comment.text.startswith("Pool exhausted since the 13:41 deploy")
    assert comment.actor is not None and comment.actor.email == "ana.ruiz@example.com"
    assert not comment.is_bot
    resolved = next(e for e in events if e.attrs.get("activity") == "set_resolved")
    assert resolved.kind == "other" and resolved.text.startswith("Sentry issue resolved:")
    assert not [e for e in events if e.kind == "status_change"]


def test_list_and_details_of_one_issue_are_one_onset() -> None:
    ctx = make_ctx()
    events = read(*documented(), ctx=ctx)
    keys = [e.key for e in events]
    assert len(keys) == len(set(keys)) and not ctx.report.skipped
    first_seen = [e for e in events if e.key == "sentry:issue:4501002233:first_seen"]
    assert len(first_seen) == 1 and first_seen[0].provenance.file.endswith("activity.json")


def test_bad_record_is_a_bundle_error_or_a_counted_skip() -> None:
    body = json.loads((FIXTURES / "documented_api_0_organization_issues_list.json").read_text())
    body[1]["firstSeen"] = "2024-05-01 13:49"
    with pytest.raises(BundleError, match=r"sentry/x.json \[1\]: firstSeen"):
        read(Doc(rel="sentry/x.json", data=body))
    ctx = make_ctx(lenient=True)
    assert len(read(Doc(rel="sentry/x.json", data=body), ctx=ctx)) == 2
    assert sum(ctx.report.skipped.values()) == 1


def test_claims_nothing_of_other_vendors() -> None:
    """Every other vendor's sample, here and in ../shared/fixtures when it is there."""
    roots = [ALL_FIXTURES, *([SHARED] if SHARED.is_dir() else [])]
    for root in roots:
        for path in sorted(root.rglob("*.json")):
            if FIXTURES not in path.parents:
                doc = Doc(rel=str(path.relative_to(root)), data=json.loads(path.read_text()))
                assert not CONNECTOR.claims(doc), path


@pytest.mark.parametrize("data", [None, 1, "x", [], [{"id": 1}], {"action": "x", "data": {}}])
def test_claims_never_raises_and_rejects_junk(data: object) -> None:
    assert not CONNECTOR.claims(Doc(rel="sentry/x.json", data=data))


def test_link_header_parsing() -> None:
    header = (
        '<https://sentry.io/api/0/x/?cursor=0:0:1>; rel="previous"; results="false"; '
        'cursor="0:0:1", <https://sentry.io/api/0/x/?cursor=0:100:0>; rel="next"; '
        'results="false"; cursor="0:100:0"'
    )
    parsed = links(header)
    assert parsed["next"] == {
        "url": "https://sentry.io/api/0/x/?cursor=0:100:0",
        "rel": "next",
        "results": "false",
        "cursor": "0:100:0",
    }
    assert links("") == {}


# --- live mode -------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[SentryEmulator]:
    with SentryEmulator(extra=5) as server:
        yield server  # type: ignore[misc]


def config(emu: SentryEmulator, **kw: object) -> SentryConfig:
    return SentryConfig(token=TOKEN, base_url=emu.url, backoff=0.01, **kw)  # type: ignore[arg-type]


WINDOW = {"since": parse_time("2024-05-01T12:00:00Z"), "until": parse_time("2024-05-01T16:00:00Z")}


def harvest(emu: SentryEmulator, out: Path, *targets: str, **kw: object) -> SourceReport:
    ref = IncidentRef(incident_id="INC-1", targets={"sentry": list(targets)}, **WINDOW)
    return CONNECTOR.harvest(ref, out, config(emu, **kw))


def read_dir(folder: Path) -> list[TimelineEvent]:
    return read(
        *[Doc(rel=p.name, data=json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    )


def summary(events: list[TimelineEvent]) -> list[tuple[str, str, str, str]]:
    return [(e.key, e.kind, e.at.isoformat(), e.text) for e in events]


def test_harvest_pages_until_results_false_and_round_trips(
    emu: SentryEmulator, tmp_path: Path
) -> None:
    report = harvest(emu, tmp_path, f"{ORG}/{PROJECT}", page_size=3)
    listed = json.loads((tmp_path / "sentry" / f"issues-{ORG}-{PROJECT}.json").read_text())
    assert len(listed) == 3 + 5  # resolved ones too: the query is sent empty
    pages = [r for r in emu.log if r.path.endswith("/issues/")]
    assert [r.q("cursor") for r in pages] == [None, "0:3:0", "0:6:0"]  # then results="false"
    assert all(r.q("project") == "4504177" for r in pages)
    assert pages[0].q("start") == "2024-05-01T12:00:00+00:00"
    assert report.status == "ok" and len(report.files) == 1 + 8
    want = {e.key for e in read(*documented())}
    assert want <= {e.key for e in read_dir(tmp_path / "sentry")}
    got = [e for e in read_dir(tmp_path / "sentry") if e.key in want]
    assert summary(got) == summary(read(*documented()))


def test_faults_lose_duplicate_and_reorder_nothing(
    emu: SentryEmulator, tmp_path: Path, waits: list[float]
) -> None:
    # A 500 on page 1, a dropped connection on page 2, a 429 and a body cut off on page 3.
    emu.inject("/issues/$", status=500, body={"detail": "Internal Error"})
    emu.inject("/issues/$", drop=True, skip=1)
    emu.inject("/issues/$", status=429, headers={"Retry-After": "3"}, skip=2)
    emu.inject("/issues/$", truncate="cut", skip=2)
    harvest(emu, tmp_path, ORG, page_size=2, max_issues=0)
    listed = json.loads((tmp_path / "sentry" / f"issues-{ORG}.json").read_text())
    expected = sorted(emu.issues, key=lambda i: i["lastSeen"], reverse=True)
    assert [i["id"] for i in listed] == [i["id"] for i in expected]
    cursors = [r.q("cursor") for r in emu.log if r.path.endswith("/issues/")]
    assert cursors == [None, None, "0:2:0", "0:2:0", "0:4:0", "0:4:0", "0:4:0", "0:6:0"]
    assert len(waits) == 4 and waits[2] == 3.0


def test_max_issues_limits_details_and_says_so(emu: SentryEmulator, tmp_path: Path) -> None:
    report = harvest(emu, tmp_path, f"{ORG}/{PROJECT}", max_issues=2)
    assert report.skipped == {"issue details not fetched (over max_issues)": 6}
    assert len([f for f in report.files if "/issue-" in f]) == 2


def test_one_issue_by_id(emu: SentryEmulator, tmp_path: Path) -> None:
    harvest(emu, tmp_path, f"{ORG}/issues/4388007121")
    events = read_dir(tmp_path / "sentry")
    assert [e.attrs.get("onset") for e in events if e.kind == "error_spike"] == [
        "first_seen",
        "regression",
    ]


def test_errors_are_one_line_with_the_fix(
    emu: SentryEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"sentry": [ORG]}, **WINDOW)
    with pytest.raises(ConnectorError, match="rejected the token \\(401: Invalid token"):
        CONNECTOR.harvest(ref, tmp_path, SentryConfig(token="bad", base_url=emu.url))  # type: ignore[arg-type]
    with pytest.raises(ConnectorError, match="not found \\(404.*project slugs"):
        harvest(emu, tmp_path, f"{ORG}/nope")
    emu.inject("/issues/$", status=503, times=9)
    with pytest.raises(ConnectorError, match="HTTP 503"):
        harvest(emu, tmp_path, ORG, max_retries=2)
    with pytest.raises(ConfigError, match="ORG/PROJECT"):
        harvest(emu, tmp_path, "a/b/c/d")
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    with pytest.raises(MissingCredential, match="SENTRY_AUTH_TOKEN"):
        CONNECTOR.harvest(ref, tmp_path, SentryConfig())


def test_check_lists_organizations(emu: SentryEmulator) -> None:
    assert CONNECTOR.check(config(emu))[1] == "organizations the token reads: acme"
