"""Statuspage connector: Manage API and public API bodies in file mode, live harvest against
the emulator (page paging with no metadata, 420/429, 5xx, 401, dropped connections)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.statuspage import StatuspageConnector
from connectors.statuspage.history import StatuspageConfig
from connectors.statuspage.read import incidents_of
from retro.connector import Doc, IncidentRef, ReadContext, parse_time
from retro.errors import BundleError, ConfigError, ConnectorError, MissingCredential
from retro.models import IncidentMeta, SourceReport, TimelineEvent
from tests.emulators.statuspage import FIXTURES, KEY, PAGE_ID, StatuspageEmulator

CONNECTOR = StatuspageConnector()
ALL_FIXTURES = FIXTURES.parent
SHARED = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
CHECKOUT = "documented_manage_api_v1_incident_get.json"


def load(name: str) -> Doc:
    return Doc(rel=f"statuspage/{name}", data=json.loads((FIXTURES / name).read_text("utf-8")))


def make_ctx(*, lenient: bool = False) -> ReadContext:
    return ReadContext(
        bundle=FIXTURES,
        incident=IncidentMeta(id="INC-1"),
        report=SourceReport(name="statuspage"),
        lenient=lenient,
    )


def read(*docs: Doc, ctx: ReadContext | None = None) -> list[TimelineEvent]:
    assert all(CONNECTOR.claims(d) for d in docs)
    return list(CONNECTOR.read_bundle(list(docs), ctx or make_ctx()))


def marked(events: list[TimelineEvent]) -> list[tuple[str, str, str]]:
    return [
        (e.attrs["incident_id"], e.attrs["customer_update"], e.attrs["status"])
        for e in events
        if e.attrs.get("customer_update")
    ]


# --- conformance: every recorded sample ------------------------------------------------------------


def test_every_sample_is_claimed_and_each_update_is_one_event() -> None:
    docs = [load(p.name) for p in sorted(FIXTURES.glob("*.json"))]
    ctx = make_ctx()
    events = read(*docs, ctx=ctx)
    updates = sum(len(i["incident_updates"]) for d in docs for i in incidents_of(d.data) or [])
    assert len(events) == updates == 22 and not ctx.report.skipped
    assert {e.kind for e in events} == {"status_page_update"}
    assert [e.at for e in events] == sorted(e.at for e in events)


FAROS = SHARED / "other_incident_tools" / "faros" / "statuspage_incidents.json"


@pytest.mark.skipif(not FAROS.is_file(), reason="../shared/fixtures is absent")
def test_first_and_resolved_posts_are_marked_per_incident() -> None:
    """The real Manage API body in ../shared (faros-ai/airbyte-connectors, Apache-2.0)."""
    events = read(Doc(rel="statuspage/faros.json", data=json.loads(FAROS.read_text("utf-8"))))
    assert marked(events) == [
        ("12zwlm6q5twt", "first", "monitoring"),
        ("12zwlm6q5twt", "resolved", "resolved"),
        ("mm4x7m368bzv", "first", "identified"),
        ("zyrnzw0h585r", "first", "identified"),
        ("mm4x7m368bzv", "resolved", "resolved"),
    ]
    first = next(e for e in events if e.attrs.get("customer_update") == "first")
    assert first.attrs["first_public"] is True and first.attrs["customer_update_marks"] == ["first"]
    assert sum(bool(e.attrs.get("first_public")) for e in events) == 3


def test_an_active_incident_from_a_public_page_has_only_its_first_post() -> None:
    events = read(load("public_api_v2_summary_githubstatus_active_incident.json"))
    assert marked(events) == [("ljwdk6qml8z8", "first", "investigating")]
    assert events[0].text.startswith("Investigating - We are investigating reports")
    assert events[0].attrs["page_name"] == "GitHub"
    assert events[0].attrs["components"] == ["Packages: operational"]


def test_the_checkout_incident_reads_like_the_page() -> None:
    events = read(load(CHECKOUT))
    assert [(e.at.strftime("%H:%M:%S"), e.text.split(" - ")[0]) for e in events] == [
        ("13:58:30", "Investigating"),
        ("14:10:45", "Identified"),
        ("14:32:00", "Monitoring"),
        ("14:50:12", "Resolved"),
    ]
    assert events[0].attrs["incident_started_at"] == "2024-05-01T13:50:00Z"
    assert events[0].url == "https://stspg.io/abc123xyz" and events[0].attrs["impact"] == "major"


def test_scheduled_maintenance_is_not_a_customer_update_milestone() -> None:
    events = read(load("manage_api_v1_pages_incidents_docs_example_hubot.json"))
    assert events[0].attrs["maintenance"] is True and "customer_update" not in events[0].attrs


def test_a_backfilled_update_says_so() -> None:
    body = json.loads((FIXTURES / CHECKOUT).read_text())
    body["incident_updates"][3]["created_at"] = "2024-05-01T16:00:00Z"  # posted two hours later
    (first, *_) = read(Doc(rel="statuspage/x.json", data=body))
    assert first.attrs["backfilled"] is True and first.attrs["posted_at"] == "2024-05-01T16:00:00Z"


def test_same_update_in_two_bodies_is_one_event() -> None:
    one = load(CHECKOUT)
    listed = Doc(rel="statuspage/list.json", data=[copy.deepcopy(one.data)])
    ctx = make_ctx()
    assert len(read(one, listed, ctx=ctx)) == 4
    assert ctx.report.skipped == {"update repeated in another body": 4}


def test_bad_time_is_a_bundle_error_naming_the_update() -> None:
    body = json.loads((FIXTURES / CHECKOUT).read_text())
    body["incident_updates"][1]["display_at"] = "yesterday"
    with pytest.raises(BundleError, match=r"incident.incident_updates\[1\]: display_at"):
        read(Doc(rel="statuspage/x.json", data=body))
    ctx = make_ctx(lenient=True)
    assert read(Doc(rel="statuspage/x.json", data=body), ctx=ctx) == []
    assert sum(ctx.report.skipped.values()) == 1


def test_claims_nothing_of_other_vendors() -> None:
    """Every other sample here and in ../shared/fixtures; the one Statuspage body there is ours."""
    roots = [ALL_FIXTURES, *([SHARED] if SHARED.is_dir() else [])]
    for root in roots:
        for path in sorted(root.rglob("*.json")):
            if FIXTURES in path.parents:
                continue
            doc = Doc(rel=str(path.relative_to(root)), data=json.loads(path.read_text()))
            assert CONNECTOR.claims(doc) == (path.name == "statuspage_incidents.json"), path


@pytest.mark.parametrize(
    "data", [None, 3, "x", [], [{}], {"incidents": "x"}, {"incidents": [{"id": 1}]}, {"page": {}}]
)
def test_claims_never_raises_and_rejects_junk(data: object) -> None:
    assert not CONNECTOR.claims(Doc(rel="statuspage/x.json", data=data))


def test_a_quiet_public_page_is_still_claimed() -> None:
    page = {"id": PAGE_ID, "name": "Acme", "url": "https://status.acme.example"}
    assert CONNECTOR.claims(Doc(rel="x.json", data={"page": page, "incidents": []}))


# --- live mode -------------------------------------------------------------------------------------


@pytest.fixture
def emu() -> Iterator[StatuspageEmulator]:
    with StatuspageEmulator() as server:
        yield server  # type: ignore[misc]


def config(emu: StatuspageEmulator, **kw: object) -> StatuspageConfig:
    return StatuspageConfig(api_key=KEY, base_url=emu.url, backoff=0.01, **kw)  # type: ignore[arg-type]


WINDOW = {"since": parse_time("2024-05-01T12:00:00Z"), "until": parse_time("2024-05-01T16:00:00Z")}


def harvest(emu: StatuspageEmulator, out: Path, *targets: str, **kw: object) -> SourceReport:
    ref = IncidentRef(incident_id="INC-1", targets={"statuspage": list(targets)}, **WINDOW)
    return CONNECTOR.harvest(ref, out, config(emu, **kw))


def read_dir(folder: Path) -> list[TimelineEvent]:
    docs = [Doc(rel=p.name, data=json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    return read(*docs)


def summary(events: list[TimelineEvent]) -> list[tuple[str, str, str, str]]:
    return [(e.key, e.at.isoformat(), e.text, str(e.attrs.get("customer_update"))) for e in events]


def test_manage_api_harvest_keeps_the_window_and_round_trips(
    emu: StatuspageEmulator, tmp_path: Path
) -> None:
    report = harvest(emu, tmp_path, PAGE_ID, page_size=2)
    assert report.status == "ok" and report.files == [f"statuspage/incidents-{PAGE_ID}.json"]
    assert report.skipped == {"incident outside the window": 3}  # the rest were never fetched
    assert summary(read_dir(tmp_path / "statuspage")) == summary(read(load(CHECKOUT)))
    pages = [r.q("page") for r in emu.log if r.path.endswith("/incidents")]
    assert pages == ["1", "2"]  # all of page 2 ended before the window: older pages are not read
    assert {r.headers["authorization"] for r in emu.log} == {f"OAuth {KEY}"}


def test_paging_loses_duplicates_and_reorders_nothing(
    emu: StatuspageEmulator, tmp_path: Path, waits: list[float]
) -> None:
    emu.incidents = [copy.deepcopy(emu.incidents[0]) for _ in range(5)]
    for n, inc in enumerate(emu.incidents):
        inc["id"] = f"chk{n}"
    # A 503 on page 1, a dropped connection on page 2, a 420 and a body cut off on page 3.
    emu.inject("/incidents$", status=503)
    emu.inject("/incidents$", drop=True, skip=1)
    emu.inject("/incidents$", status=420, headers={"Retry-After": "2"}, skip=2)
    emu.inject("/incidents$", truncate="cut", skip=2)
    harvest(emu, tmp_path, PAGE_ID, page_size=2)
    body = json.loads((tmp_path / "statuspage" / f"incidents-{PAGE_ID}.json").read_text())
    assert [i["id"] for i in body] == ["chk0", "chk1", "chk2", "chk3", "chk4"]
    pages = [r.q("page") for r in emu.log if r.path.endswith("/incidents")]
    assert pages == ["1", "1", "2", "2", "3", "3", "3"]
    assert len(waits) == 4 and waits[2] == 2.0


def test_one_incident_by_id_and_by_public_url(emu: StatuspageEmulator, tmp_path: Path) -> None:
    harvest(emu, tmp_path / "a", f"{PAGE_ID}/p1k9r0q2m3zt")
    assert summary(read_dir(tmp_path / "a" / "statuspage")) == summary(read(load(CHECKOUT)))
    report = harvest(emu, tmp_path / "b", f"{emu.url}/incidents/p1k9r0q2m3zt")
    port = emu.url.rsplit(":", 1)[1]
    assert report.files == [f"statuspage/incidents-127-0-0-1-{port}.json"]
    assert summary(read_dir(tmp_path / "b" / "statuspage")) == summary(read(load(CHECKOUT)))
    public = [r for r in emu.log if r.path == "/api/v2/incidents.json"]
    assert public and "authorization" not in public[0].headers


def test_public_page_keeps_incidents_overlapping_the_window(
    emu: StatuspageEmulator, tmp_path: Path
) -> None:
    report = harvest(emu, tmp_path, emu.url)
    assert report.skipped == {"incident outside the window": 7}
    assert {e.attrs["incident_id"] for e in read_dir(tmp_path / "statuspage")} == {"p1k9r0q2m3zt"}


def test_errors_are_one_line_with_the_fix(emu: StatuspageEmulator, tmp_path: Path) -> None:
    ref = IncidentRef(incident_id="INC-1", targets={"statuspage": [PAGE_ID]}, **WINDOW)
    with pytest.raises(ConnectorError, match="rejected the key \\(401: Could not authenticate"):
        CONNECTOR.harvest(ref, tmp_path, StatuspageConfig(api_key="bad", base_url=emu.url))  # type: ignore[arg-type]
    with pytest.raises(ConnectorError, match="cannot read .*404"):
        harvest(emu, tmp_path, "nosuchpage")
    emu.inject("/incidents$", status=429, headers={"Retry-After": "1"}, times=9)
    with pytest.raises(ConnectorError, match="still rate limited"):
        harvest(emu, tmp_path, PAGE_ID, max_retries=2)
    with pytest.raises(MissingCredential, match="STATUSPAGE_API_KEY"):
        CONNECTOR.harvest(ref, tmp_path, StatuspageConfig(base_url=emu.url))
    with pytest.raises(ConfigError, match="public page URL"):
        harvest(emu, tmp_path, "Not A Page!")


def test_check_lists_the_pages_the_key_reads(emu: StatuspageEmulator) -> None:
    assert CONNECTOR.check(config(emu))[1] == "pages the key may read: Acme Status"
    public = StatuspageConfig(public_url=emu.url)
    assert CONNECTOR.check(public)[1] == "8 recent incidents listed"
