"""`retro report`: facts from drafts, the metrics and their definitions, review dates from front
matter and git, repeats, filters, and the Markdown / CSV / JSON / HTML outputs."""

from __future__ import annotations

import csv
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from index_helpers import HashEmbedder

from retro.cli.main import cli
from retro.draft.render import render
from retro.draft.review import read_postmortem
from retro.errors import BundleError
from retro.insights.drafts import draft_facts, git_dates
from retro.insights.facts import ActionFact, IncidentFacts
from retro.insights.output import render_html, render_markdown, report_json, write_outputs
from retro.insights.report import METRICS, Filters, build_report, metric_value, percentile
from retro.insights.sources import load
from retro.models import ActionItem, Claim, Milestone, Postmortem

SNAPSHOT = Path(__file__).parent / "snapshots" / "sample-offline.md"


def _at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def draft_file(
    path: Path,
    incident_id: str,
    times: dict[str, str],
    *,
    severity: str = "SEV2",
    services: tuple[str, ...] = ("checkout",),
    status: str = "draft",
    actions: tuple[tuple[str, str], ...] = (("Add a pool saturation alert", "open"),),
    cause: str = "The database pool was too small for the traffic.",
    summary: str = "",
) -> Path:
    """A draft as retro writes it (render), with the given milestones and action items."""
    pm = Postmortem(
        incident_id=incident_id,
        title=f"{incident_id} outage",
        severity=severity,
        status=status,
        services=list(services),
        summary=[Claim(text=summary or f"{incident_id} broke checkout.")],
        root_cause=[Claim(text=cause)],
        milestones={
            name: Milestone(name=name, at=_at(value), confidence=0.8, rule="test")  # type: ignore[arg-type]
            for name, value in times.items()
        },
        action_items=[
            ActionItem(
                title=title,
                type="prevent",
                priority="P1",
                owner="sre team",
                end_state="verified",
                status=state,  # type: ignore[arg-type]
            )
            for title, state in actions
        ],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(pm), encoding="utf-8")
    return path


# --- facts from drafts -----------------------------------------------------------------------------


def test_draft_facts_agree_with_the_full_reader_on_the_sample_draft() -> None:
    facts = draft_facts(SNAPSHOT)
    pm = read_postmortem(SNAPSHOT)
    assert facts.id == pm.incident_id and facts.title == pm.title
    assert facts.times == {n: m.at for n, m in pm.milestones.items() if m.at}
    assert [(a.title, a.status, a.priority, a.owner) for a in facts.actions] == [
        (a.title, a.status, a.priority, a.owner) for a in pm.action_items
    ]
    assert facts.services == ["checkout-api", "payments"] and facts.severity == "SEV2"


def test_a_person_editing_a_milestone_time_counts_as_edited(tmp_path: Path) -> None:
    path = draft_file(
        tmp_path / "INC-1432.md",
        "INC-1432",
        {"impact_start": "2024-05-14 13:55:00", "resolved": "2024-05-14 15:29:12"},
    )
    assert set(draft_facts(path).origins.values()) == {"inferred"}  # as retro wrote it
    text = path.read_text(encoding="utf-8").replace(
        "| Resolved | 2024-05-14 15:29:12 |", "| Resolved | 2024-05-14 15:45:00 |"
    )
    path.write_text(text, encoding="utf-8")
    facts = draft_facts(path)
    assert facts.times["resolved"] == datetime(2024, 5, 14, 15, 45, tzinfo=UTC)
    assert set(facts.origins.values()) == {"edited"}
    row = next(
        r
        for r in build_report([facts]).table("time_to_x").rows
        if r["period"] == "all" and r["metric"] == "time_to_resolve"
    )
    assert (row["n"], row["edited"], row["inferred"], row["median_min"]) == (1, 1, 0, 110.0)


# --- the metrics -----------------------------------------------------------------------------------


def test_many_drafts_read_in_worker_processes_match_one_by_one_and_report_the_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import retro.insights.drafts as drafts

    paths = [
        draft_file(tmp_path / f"INC-{n}.md", f"INC-{n}", {"impact_start": "2026-03-01 10:00:00"})
        for n in range(6)
    ]
    bad = tmp_path / "INC-bad.md"
    bad.write_bytes(b"---\ntitle: [unclosed\n---\n# x\n")
    monkeypatch.setattr(drafts, "PARALLEL_FROM", 2)
    monkeypatch.setattr(drafts, "_CHUNK", 2)  # several chunks, over more than one process
    read = drafts.read_drafts([*paths, bad])
    assert read[bad] is None
    for path in paths:
        assert read[path] == draft_facts(path)
    # The report counts the unreadable draft under --lenient and names it otherwise.
    monkeypatch.setenv("RETRO_USER_PATH", str(tmp_path / "user"))
    loaded = load(drafts=[tmp_path], use_git=False, lenient=True)
    assert len(loaded.incidents) == 6
    assert loaded.skipped == {"draft that could not be read": 1}
    with pytest.raises(BundleError, match="front matter is not valid YAML"):
        load(drafts=[tmp_path], use_git=False, cache=False)


def _facts(
    n: int, minutes: int, *, origin: str = "inferred", start_known: bool = True
) -> IncidentFacts:
    start = datetime(2024, 1 + n % 6, 2, tzinfo=UTC) + timedelta(days=n)
    times = {
        "detected": start + timedelta(minutes=2),
        "resolved": start + timedelta(minutes=minutes),
    }
    if start_known:
        times["impact_start"] = start
    return IncidentFacts(
        id=f"I{n}",
        title=f"i{n}",
        origin="draft",
        severity="SEV1" if n % 2 else "SEV2",
        services=["api"],
        times=times,
        origins=dict.fromkeys(times, origin),  # type: ignore[arg-type]
    )


def test_median_p90_n_and_who_set_the_times() -> None:
    incidents = [_facts(n, m) for n, m in enumerate([10, 20, 30, 40, 1000])]
    incidents.append(_facts(9, 50, origin="imported", start_known=False))
    report = build_report(incidents)
    row = next(
        r
        for r in report.table("time_to_x").rows
        if r["period"] == "all" and r["metric"] == "time_to_resolve"
    )
    assert row["n"] == 6 and row["median_min"] == 35.0
    assert row["p90_min"] == round(percentile([10, 20, 30, 40, 48, 1000], 0.9), 1) == 524.0
    assert row["mean_min"] == round((10 + 20 + 30 + 40 + 1000 + 48) / 6, 1)
    assert (row["inferred"], row["imported"], row["from_detection"]) == (5, 1, 1)
    detect = next(
        r
        for r in report.table("time_to_x").rows
        if r["period"] == "all" and r["metric"] == "time_to_detect"
    )
    assert detect["n"] == 5  # needs an impact start: no fallback for detection


def test_a_negative_duration_is_left_out() -> None:
    bad = _facts(1, 10)
    bad.times["resolved"] = bad.times["impact_start"] - timedelta(minutes=5)
    assert metric_value(bad, METRICS[-1]) is None


def test_filters_and_quarters() -> None:
    incidents = [_facts(n, 30 + n) for n in range(12)]
    report = build_report(
        incidents,
        filters=Filters(since=datetime(2024, 3, 1, tzinfo=UTC), severities=["sev1"]),
        group_by="quarter",
    )
    assert report.incidents == sum(
        1 for i in incidents if i.severity == "SEV1" and i.start >= datetime(2024, 3, 1, tzinfo=UTC)
    )  # type: ignore[operator]
    assert set(report.periods) <= {"2024-Q1", "2024-Q2", "2024-Q3"}


def test_action_items_coverage_and_review_time() -> None:
    base = _facts(1, 60)
    base.has_postmortem, base.status = True, "final"
    base.reviewed_at = base.times["resolved"] + timedelta(days=3)
    base.actions = [
        ActionFact(
            title="a",
            status="done",
            priority="P1",
            owner="sre",
            closed=base.times["resolved"] + timedelta(days=10),
        ),
        ActionFact(
            title="b",
            status="open",
            priority="P1",
            owner="sre",
            due=datetime(2024, 2, 1, tzinfo=UTC),
        ),
        ActionFact(title="c", status="in_progress", priority="P2", owner="db"),
    ]
    other = _facts(2, 60)  # no postmortem
    report = build_report([base, other], as_of=datetime(2024, 6, 1, tzinfo=UTC))
    rows = {(r["owner"], r["priority"]): r for r in report.table("action_items").rows}
    sre = rows[("sre", "P1")]
    assert (sre["total"], sre["closed"], sre["open"], sre["overdue"]) == (2, 1, 1, 1)
    assert sre["completion_pct"] == 50.0 and sre["median_days_to_close"] == 10.0
    assert rows[("all", "all")]["total"] == 3
    cov = {r["severity"]: r for r in report.table("coverage").rows}
    assert cov["all"]["incidents"] == 2 and cov["all"]["with_postmortem"] == 1
    assert cov["SEV1"]["median_days_to_review"] == 3.0


# --- review and close dates ---------------------------------------------------------------------


def test_reviewed_at_in_front_matter(tmp_path: Path) -> None:
    path = draft_file(
        tmp_path / "A.md",
        "A",
        {"impact_start": "2024-05-01 10:00:00", "resolved": "2024-05-01 11:00:00"},
        status="final",
    )
    path.write_text(
        path.read_text().replace("status: final\n", "status: final\nreviewed_at: 2024-05-06\n")
    )
    facts = draft_facts(path)
    assert facts.is_final and facts.reviewed_at == datetime(2024, 5, 6, tzinfo=UTC)
    assert facts.reviewed_from == "front matter"


def _git(repo: Path, *args: str, when: str | None = None) -> None:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
        "PATH": "/usr/bin:/bin",
    }
    if when:
        env |= {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def test_review_and_close_dates_from_git_history(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    path = draft_file(
        repo / "pm" / "B.md",
        "B",
        {"impact_start": "2024-05-01 10:00:00", "resolved": "2024-05-01 11:00:00"},
    )
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "draft", when="2024-05-02T09:00:00+00:00")
    text = path.read_text().replace("status: draft", "status: final")
    text = text.replace("| open |", "| done |")
    path.write_text(text)
    _git(repo, "commit", "-qam", "final", when="2024-05-09T12:00:00+00:00")
    loaded = load(drafts=[repo / "pm"], use_git=True)
    [facts] = loaded.incidents
    assert loaded.git and facts.reviewed_from == "git"
    assert facts.reviewed_at == datetime(2024, 5, 9, 12, 0, tzinfo=UTC)
    assert facts.actions[0].status == "done" and facts.actions[0].closed == facts.reviewed_at
    assert git_dates([tmp_path / "nowhere.md"]).used is False


# --- repeats -----------------------------------------------------------------------------------


def test_repeats_pair_a_later_incident_with_its_earlier_twin_and_its_open_items(
    tmp_path: Path,
) -> None:
    from retro.insights.repeats import find

    pool = "Connection pool exhausted on the checkout database after a config change"
    first = draft_file(
        tmp_path / "A.md",
        "A",
        {"impact_start": "2024-01-05 10:00:00", "resolved": "2024-01-05 11:00:00"},
        cause=pool,
        summary="Checkout database pool exhausted; orders failed.",
    )
    second = draft_file(
        tmp_path / "B.md",
        "B",
        {"impact_start": "2024-03-05 10:00:00", "resolved": "2024-03-05 12:00:00"},
        cause=pool,
        summary="Checkout database pool exhausted; orders failed again.",
    )
    third = draft_file(
        tmp_path / "C.md",
        "C",
        {"impact_start": "2024-04-05 10:00:00", "resolved": "2024-04-05 12:00:00"},
        cause="TLS certificate expired on the edge proxies",
        summary="Edge proxies rejected TLS handshakes for mobile clients.",
        services=("edge",),
    )
    incidents = [draft_facts(p) for p in (first, second, third)]
    pairs, note = find(incidents, None, HashEmbedder())
    assert [(p.later, p.earlier) for p in pairs] == [("B", "A")], note
    assert pairs[0].open_items == ["Add a pool saturation alert"]
    assert (
        pairs[0].shared == ["checkout"] and "REPEAT" not in note and "retro.index.repeats" in note
    )
    report = build_report(incidents, pairs=pairs)
    rate = next(r for r in report.table("repeat_rate").rows if r["period"] == "all")
    assert (rate["incidents"], rate["repeats"], rate["rate_pct"], rate["with_open_items"]) == (
        3,
        1,
        33.3,
        1,
    )


# --- outputs -----------------------------------------------------------------------------------


def test_outputs_markdown_csv_json_and_one_self_contained_html(tmp_path: Path) -> None:
    incidents = [_facts(n, 30 + 7 * n) for n in range(8)]
    report = build_report(incidents)
    written = write_outputs(report, tmp_path)
    names = {p.name for p in written}
    assert {"report.md", "report.html", "report.json"} <= names
    assert {f"{t}.csv" for t in report.tables} <= names
    md = (tmp_path / "report.md").read_text()
    assert "```mermaid\nxychart-beta" in md and "## Repeat-incident rate" in md
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["incidents"] == 8 and set(data["tables"]) == set(report.tables)
    with (tmp_path / "time_to_x.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0].keys() >= {"period", "metric", "n", "median_min", "p90_min", "mean_min"}
    page = (tmp_path / "report.html").read_text()
    assert "Chart.js v4" in page and "http://" not in page.split("<style>")[1].split("</style>")[0]
    assert "<script src" not in page and "<link" not in page
    assert render_markdown(report) == md and render_html(report).count("<canvas") == 7
    assert report_json(report)["tables"]["time_to_x"]["columns"][0] == "period"


def test_cli_report_over_a_folder_of_drafts(tmp_path: Path) -> None:
    draft_file(
        tmp_path / "pm" / "A.md",
        "A",
        {
            "impact_start": "2024-05-01 10:00:00",
            "detected": "2024-05-01 10:05:00",
            "resolved": "2024-05-01 11:00:00",
        },
    )
    draft_file(
        tmp_path / "pm" / "B.md",
        "B",
        {"impact_start": "2024-06-01 10:00:00", "resolved": "2024-06-01 10:30:00"},
    )
    runner = CliRunner()
    result = runner.invoke(
        cli, ["report", str(tmp_path / "pm"), "--no-index", "--no-repeats", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["incidents"] == 2 and data["periods"] == ["2024-05", "2024-06"]
    out = runner.invoke(
        cli,
        [
            "report",
            str(tmp_path / "pm"),
            "--no-index",
            "--no-repeats",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert out.exit_code == 0 and (tmp_path / "r" / "report.html").is_file()
    bad = runner.invoke(cli, ["report", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert bad.exit_code == 2 and "No index" in bad.output


@pytest.mark.slow
def test_report_from_the_index_on_postgresql(tmp_path: Path) -> None:
    from pg_server import fresh_database

    from retro.connector import ImportedIncident
    from retro.index.similarity import index_incidents
    from retro.index.store import open_store
    from retro.insights import make_report
    from retro.insights.importer import index_record

    records = [
        ImportedIncident(
            source="pagerduty",
            id=f"P{n}",
            title=f"checkout errors {n % 3}",
            severity="P1",
            services=["checkout"],
            times={
                "detected": datetime(2024, 1 + n % 4, 3, tzinfo=UTC),
                "resolved": datetime(2024, 1 + n % 4, 3, 1, tzinfo=UTC),
            },
        )
        for n in range(12)
    ]
    draft_file(
        tmp_path / "pm" / "A.md",
        "A",
        {"impact_start": "2024-02-01 10:00:00", "resolved": "2024-02-01 11:00:00"},
    )
    with fresh_database() as url:
        with open_store(url) as store:
            index_incidents(
                [index_record(r) for r in records], store=store, embedder=HashEmbedder()
            )
            index_incidents(
                [
                    __import__("retro.index.corpus", fromlist=["markdown_item"]).markdown_item(
                        tmp_path / "pm" / "A.md"
                    )
                ],
                store=store,
                embedder=HashEmbedder(),
            )
        report = make_report(db=url, repeats=False, use_git=False)
    assert report.incidents == 13 and report.imported == 12
    row = next(
        r
        for r in report.table("time_to_x").rows
        if r["period"] == "all" and r["metric"] == "time_to_resolve"
    )
    assert row["n"] == 13 and row["imported"] == 12 and row["from_detection"] == 12
