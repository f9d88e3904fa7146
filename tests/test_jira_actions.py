"""`retro file-actions` / `retro sync-actions`: the real `jira` library against the Jira emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from connectors.jira.adf import adf_to_text, is_adf
from retro.actions import jira as jira_actions
from retro.actions.table import load, marker, split_cells
from retro.cli.main import cli
from retro.draft.render import render
from retro.models import ActionItem, Postmortem
from tests.emulators.jira import JiraEmulator

ROOT = Path(__file__).resolve().parents[1]
TIMELINE = [
    {
        "id": "Eff506",
        "at": "2024-05-01 14:30:00",
        "source": "slack",
        "kind": "message",
        "actor": "database engineer",
        "text": "Action item: add an alert on DB pool saturation for checkout-api",
    },
    {
        "id": "E2f7d9",
        "at": "2024-05-01 14:31:00",
        "source": "slack",
        "kind": "message",
        "actor": "incident commander",
        "text": "We need a canary stage for config changes [to] checkout-api {now}",
    },
]
ITEMS = [
    ActionItem(
        title="Add an alert on DB pool saturation for checkout-api",
        type="detect",
        priority="P1",
        owner="database team",
        end_state="A pool-saturation alert pages the on-call within 5 minutes.",
        citations=["Eff506"],
    ),
    ActionItem(
        title="Add a canary stage for config changes to checkout-api",
        type="prevent",
        priority="P0",
        owner="carol@example.com",
        end_state="Config changes to checkout-api go through a canary stage.",
        citations=["E2f7d9", "Eabc12"],
    ),
]


def write_draft(path: Path, *, incident_id: str = "INC-101", items: list[Any] = ITEMS) -> Path:
    """A rendered draft with human edits in several places, as reviewers leave them."""
    pm = Postmortem(
        incident_id=incident_id,
        title="Checkout errors after pool config change",
        action_items=list(items),
        timeline=list(TIMELINE),
    )
    text = render(pm)
    text = text.replace(
        "## Summary\n\n_None found in the evidence._",
        "## Summary\n\nHuman-written summary,   with odd  spacing.   \n\n<!-- reviewer note -->",
    )
    text = text.replace(
        "`skipped` never files it.", "`skipped` never files it.\n\n*Reviewed by the SRE team.*"
    )
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def emu() -> Iterator[JiraEmulator]:
    emulator = JiraEmulator().start()
    emulator.seed_issue("OPS", "Checkout 500s", issuetype="Incident")  # OPS-1, the incident
    yield emulator
    emulator.stop()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cwd with a retro.toml that keeps retries short, and no Jira settings in the env."""
    for name in ("JIRA_URL", "JIRA_EMAIL", "JIRA_API_TOKEN", "JIRA_PAT", "JIRA_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "retro.toml").write_text(
        "[connectors.jira]\nmax_retry_delay_s = 0.01\nmax_retries = 2\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cloud_env(emu: JiraEmulator) -> dict[str, str]:
    return {"JIRA_URL": emu.url, "JIRA_EMAIL": "alice@example.com", "JIRA_API_TOKEN": "cloud-token"}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def file_cmd(emu: JiraEmulator, path: Path, *extra: str) -> Result:
    return run(cloud_env(emu), "file-actions", str(path), "--project", "OPS", *extra)


def writes(emu: JiraEmulator) -> list[str]:
    return [f"{r.method} {r.path}" for r in emu.log if r.method in ("POST", "PUT", "DELETE")]


def creates(emu: JiraEmulator) -> int:
    return sum(1 for w in writes(emu) if w.endswith("/issue"))


def assert_only_cells_changed(before: str, after: str, path: Path) -> None:
    """Every byte is kept except the Tracking/Status (and Assignee) cells of action rows."""
    old, new = before.split("\n"), after.split("\n")
    assert len(old) == len(new)
    rows = {r.line: r for r in load(path, after).rows}
    for n, (a, b) in enumerate(zip(old, new, strict=True)):
        if a == b:
            continue
        assert n in rows, f"line {n + 1} changed but is not an action row: {b!r}"
        cols = rows[n].columns
        allowed = {cols["tracking"], cols["status"], cols.get("assignee", -1)}
        cells_a = [a[s:e] for s, e in split_cells(a)]
        cells_b = [b[s:e] for s, e in split_cells(b)]
        for i, (x, y) in enumerate(zip(cells_a, cells_b, strict=True)):
            assert x == y or i in allowed, f"cell {i} of line {n + 1} changed: {x!r} -> {y!r}"


def cells(path: Path) -> list[tuple[str, str]]:
    return [(r.tracking, r.status) for r in load(path).rows]


# --- filing -------------------------------------------------------------------------------------


def test_file_creates_links_and_writes_back_only_two_cells(
    emu: JiraEmulator, workdir: Path
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    before = draft.read_text()
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--postmortem-url", "https://w/p")
    assert result.exit_code == 0, result.stderr
    assert "created  OPS-2" in result.stdout and "created  OPS-3" in result.stdout
    assert "linked OPS-2 relates to OPS-1" in result.stderr
    assert cells(draft) == [("OPS-2", "open"), ("OPS-3", "open")]
    assert_only_cells_changed(before, draft.read_text(), draft)
    assert "Human-written summary,   with odd  spacing.   \n" in draft.read_text()

    first, second = emu.issues["OPS-2"].fields, emu.issues["OPS-3"].fields
    mark = marker("INC-101", ITEMS[0].title)
    assert first["labels"] == ["postmortem", "INC-101", mark]
    assert first["priority"] == "High" and second["priority"] == "Highest"
    assert first["issuetype"] == "Task" and first["assignee"] is None
    assert second["assignee"] == "acc-carol"  # owner is an email: looked up to an accountId
    assert is_adf(first["description"])
    text = adf_to_text(first["description"])
    assert "A pool-saturation alert pages the on-call within 5 minutes." in text
    assert "INC-101: Checkout errors after pool config change" in text
    assert "INC-101.md" in text and "https://w/p" in text
    assert (
        "Eff506 2024-05-01 14:30:00 UTC — Action item: add an alert on DB pool saturation" in text
    )
    assert "Eabc12 (not in the Timeline table)" in adf_to_text(second["description"])
    assert mark in text
    assert sorted((v["inward"], v["outward"]) for v in emu.links.values()) == [
        ("OPS-2", "OPS-1"),
        ("OPS-3", "OPS-1"),
    ]


def test_filing_twice_creates_nothing_new(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    assert file_cmd(emu, draft, "--incident-ticket", "OPS-1").exit_code == 0
    after_first, log_size, writes_before = draft.read_text(), len(emu.log), writes(emu)
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(r["key"], r["action"]) for r in jira_json(result)] == [
        ("OPS-2", "skipped"),
        ("OPS-3", "skipped"),
    ]
    assert jira_json(result)[0]["url"] == f"{emu.url}/browse/OPS-2"
    assert draft.read_text() == after_first
    assert len(emu.issues) == 3 and writes(emu) == writes_before
    # Nothing pending: one search of this incident's issues (for duplicates), nothing else.
    asked = [r.path.rsplit("/", 1)[-1] for r in emu.log[log_size:] if "/rest/api/" in r.path]
    assert asked.count("jql") == 1 and set(asked) <= {"serverInfo", "field", "jql"}


def jira_json(result: Result) -> list[dict[str, Any]]:
    import json

    return list(json.loads(result.stdout))


def test_lost_write_back_is_adopted_not_duplicated(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    pristine = draft.read_text()
    assert file_cmd(emu, draft, "--incident-ticket", "OPS-1").exit_code == 0
    draft.write_text(pristine)  # as if the write-back never happened
    emu.links.clear()
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(r["key"], r["action"]) for r in jira_json(result)] == [
        ("OPS-2", "adopted"),
        ("OPS-3", "adopted"),
    ]
    assert len(emu.issues) == 3 and cells(draft) == [("OPS-2", "open"), ("OPS-3", "open")]
    assert len(emu.links) == 2  # the adopted issues get their missing link, once


def retro_process(workdir: Path, emu: JiraEmulator, *args: str) -> subprocess.Popen[bytes]:
    """A real `retro` process (not CliRunner), so that a test can kill it from outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JIRA_")}
    env |= cloud_env(emu) | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "retro.cli", *args]
    return subprocess.Popen(
        command, env=env, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_killed_between_create_and_write_back_then_rerun(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    pristine = draft.read_text()
    args = ("file-actions", str(draft), "--project", "OPS", "--incident-ticket", "OPS-1")
    proc = retro_process(workdir, emu, *args)
    # Jira commits the first create; the process dies before it hears the answer.
    emu.after_create = lambda _key: os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    emu.after_create = None
    assert list(emu.issues) == ["OPS-1", "OPS-2"]  # the first create happened, then the kill
    # ... before the key was written back: the row holds only its marker.
    assert cells(draft) == [("", "proposed"), ("", "proposed")]
    assert load(draft).rows[0].written_marker == marker("INC-101", ITEMS[0].title)
    again = retro_process(workdir, emu, *args)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err.decode()
    assert "adopted  OPS-2" in out.decode() and "created  OPS-3" in out.decode()
    assert list(emu.issues) == ["OPS-1", "OPS-2", "OPS-3"]
    assert cells(draft) == [("OPS-2", "open"), ("OPS-3", "open")]
    assert_only_cells_changed(pristine, draft.read_text(), draft)


def test_500_after_commit_is_adopted_in_the_same_run(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    emu.inject("/rest/api/3/issue$", status=500, after=True, body={"errorMessages": ["boom"]})
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert result.exit_code == 0, result.stderr
    first = jira_json(result)[0]
    assert first["action"] == "adopted" and first["key"] == "OPS-2"
    assert "answered HTTP 500 but was committed" in first["note"]
    assert "checking whether Jira committed it" in result.stderr
    assert len(emu.issues) == 3 and cells(draft) == [("OPS-2", "open"), ("OPS-3", "open")]


def test_500_after_commit_unseen_by_search_is_adopted_on_rerun(
    emu: JiraEmulator, workdir: Path
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    pristine = draft.read_text()
    emu.index_lag_s = 3600  # the search index has not caught up with the create yet
    emu.inject("/rest/api/3/issue$", status=500, after=True, body={"errorMessages": ["boom"]})
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("retro: error: jira: Jira answered 500 on create issue")
    assert "adopted, never filed twice" in line
    assert list(emu.issues) == ["OPS-1", "OPS-2"]
    # Only the row's marker was written (before the create), so the rerun finds the issue.
    mark = marker("INC-101", ITEMS[0].title)
    assert draft.read_text() == pristine.replace("| [Eff506] | - |", f"| [Eff506] | {mark} |")
    emu.index_lag_s = 0.0
    again = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert again.exit_code == 0, again.stderr
    assert [(r["key"], r["action"]) for r in jira_json(again)] == [
        ("OPS-2", "adopted"),
        ("OPS-3", "created"),
    ]
    assert len(emu.issues) == 3


def test_429_on_create_is_retried_once_filed(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    emu.inject(
        "/rest/api/3/issue$",
        status=429,
        headers={"Retry-After": "0"},
        body={"errorMessages": ["Rate limit exceeded"]},
    )
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    assert result.exit_code == 0, result.stderr
    assert creates(emu) == 3 and len(emu.issues) == 3  # one refused + two committed
    assert emu.faults == []


def test_dry_run_changes_nothing(emu: JiraEmulator, workdir: Path) -> None:
    items = [*ITEMS, ITEMS[0].model_copy(update={"title": "Document the pool size runbook"})]
    draft = write_draft(workdir / "INC-101.md", items=items)
    # Item 1 was filed by an earlier crashed run; item 2 duplicates another incident's item.
    emu.seed_issue("OPS", ITEMS[0].title, labels=["postmortem", marker("INC-101", ITEMS[0].title)])
    emu.seed_issue("OPS", "Canary stage for config changes to checkout-api", labels=["postmortem"])
    before_bytes, before_issues = draft.read_bytes(), dict(emu.issues)
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "would adopt" in lines[1] and "OPS-2" in lines[1]
    assert "would link to duplicate  OPS-3" in lines[2]
    assert "would create" in lines[3] and "would create in OPS as Task" in lines[3]
    assert "Dry run: nothing was filed" in result.stderr
    assert writes(emu) == [] and draft.read_bytes() == before_bytes
    assert emu.issues == before_issues and emu.links == {}


def test_cross_incident_duplicate_is_linked_not_created(emu: JiraEmulator, workdir: Path) -> None:
    done = emu.seed_issue(
        "OPS",
        "Add alert on DB pool saturation for checkout-api",
        status="Done",
        labels=["postmortem"],
    )
    other = emu.seed_issue(
        "OPS", "Alert on DB pool saturation for checkout-api", labels=["postmortem", "INC-7"]
    )
    draft = write_draft(workdir / "INC-101.md")
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert result.exit_code == 0, result.stderr
    dup, new = jira_json(result)
    assert dup["action"] == "linked-duplicate" and dup["key"] == other != done
    assert f"same action as {other}" in dup["note"] and "similarity 0.80" in dup["note"]
    assert new["action"] == "created"
    assert creates(emu) == 1
    assert cells(draft)[0] == (other, "open")
    assert {"type": "Relates", "inward": other, "outward": "OPS-1"} in emu.links.values()
    table = file_cmd(
        emu, write_draft(workdir / "C.md", incident_id="INC-102"), "--incident-ticket", "OPS-1"
    )
    assert "linked to duplicate" in table.stdout and f"same action as {other}" in table.stdout


def test_server_pat_gets_wiki_markup_and_username(workdir: Path) -> None:
    with JiraEmulator(deployment="Server") as emu:
        incident = emu.seed_issue("OPS", "Checkout 500s", issuetype="Incident")
        draft = write_draft(workdir / "INC-101.md", incident_id=incident)
        env = {"JIRA_URL": emu.url, "JIRA_PAT": "server-pat"}
        result = run(env, "file-actions", str(draft), "--project", "OPS")
        assert result.exit_code == 0, result.stderr
        assert all("/rest/api/2/" in r.path for r in emu.log if r.path.startswith("/rest/api"))
        assert any(r.headers.get("authorization") == "Bearer server-pat" for r in emu.log)
        second = emu.issues["OPS-3"].fields
        description = second["description"]
        assert isinstance(description, str)
        assert (
            "h3. Done when\nConfig changes to checkout-api go through a canary stage."
            in description
        )
        assert "* {{E2f7d9}} 2024-05-01 14:31:00 UTC — We need a canary stage" in description
        assert r"\[to\] checkout-api \{now\}" in description  # wiki markup escaped
        assert second["assignee"] == "acc-carol"  # found by email, sent as the username
        # The incident id is a Jira key that exists: it is linked without --incident-ticket.
        assert {"type": "Relates", "inward": "OPS-2", "outward": incident} in emu.links.values()


def test_components_and_due_date_from_extra_columns(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    text = draft.read_text().replace(
        "| Tracking | Status |", "| Tracking | Status | Components | Due |"
    )
    text = text.replace(
        "|---|---|---|---|---|---|---|---|---|", "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    text = text.replace("| - | proposed |", "| - | proposed | database, api | 2024-06-01 |", 1)
    draft.write_text(text)
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    assert result.exit_code == 0, result.stderr
    assert emu.issues["OPS-2"].fields["components"] == ["database", "api"]
    assert emu.issues["OPS-2"].fields["duedate"] == "2024-06-01"
    assert emu.issues["OPS-3"].fields["components"] == []
    assert "| OPS-2 | open | database, api | 2024-06-01 |" in draft.read_text()
    bad = write_draft(workdir / "D.md", incident_id="INC-5")
    bad.write_text(
        bad.read_text()
        .replace("| Status |", "| Status | Component |")
        .replace(
            "|---|---|---|---|---|---|---|---|---|", "|---|---|---|---|---|---|---|---|---|---|"
        )
        .replace("| proposed |", "| proposed | payments |", 1)
    )
    failed = file_cmd(emu, bad)
    assert failed.exit_code == 2 and "valid components: api, database, web" in failed.stderr


def test_priority_map_from_retro_toml_and_flag(emu: JiraEmulator, workdir: Path) -> None:
    (workdir / "retro.toml").write_text(
        '[connectors.jira]\nmax_retry_delay_s = 0.01\n[jira]\npriority_map = { P1 = "Low" }\n'
    )
    draft = write_draft(workdir / "INC-101.md")
    assert file_cmd(emu, draft).exit_code == 0
    assert [emu.issues[k].fields["priority"] for k in ("OPS-2", "OPS-3")] == ["Low", "Highest"]
    renamed = [i.model_copy(update={"title": f"Unrelated task {n}"}) for n, i in enumerate(ITEMS)]
    other = write_draft(workdir / "B.md", incident_id="INC-2", items=renamed)
    assert file_cmd(emu, other, "--priority-map", "P0=High,P1=Lowest").exit_code == 0
    assert [emu.issues[k].fields["priority"] for k in ("OPS-4", "OPS-5")] == ["Lowest", "High"]


# --- clear errors -------------------------------------------------------------------------------


def one_line_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--project", "NOPE"],
            "Jira project 'NOPE' does not exist or is not visible to this account; "
            "valid project keys: CHG, OPS",
        ),
        (
            ["--project", "OPS", "--issue-type", "Epic"],
            "issue type 'Epic' is not available in project OPS; "
            "valid issue types: Task, Bug, Incident, Change",
        ),
        (
            ["--project", "OPS", "--priority-map", "P0=Blocker"],
            "Jira priority 'Blocker' (mapped from P0) is not valid in project OPS; "
            "valid priorities: Highest, High, Medium, Low, Lowest",
        ),
        (
            ["--project", "OPS", "--incident-ticket", "OPS-999"],
            "incident ticket OPS-999 does not exist",
        ),
        (["--project", "OPS", "--priority-map", "P3=Low"], "bad priority map key 'P3'"),
    ],
)
def test_bad_settings_exit_2_listing_valid_values(
    emu: JiraEmulator, workdir: Path, args: list[str], expected: str
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    before = draft.read_bytes()
    line = one_line_error(run(cloud_env(emu), "file-actions", str(draft), *args))
    assert expected in line and line.startswith("retro: error: ")
    assert writes(emu) == [] and draft.read_bytes() == before


def test_project_priority_scheme_is_enforced(emu: JiraEmulator, workdir: Path) -> None:
    emu.projects["OPS"].priorities = ["High", "Medium", "Low"]
    line = one_line_error(file_cmd(emu, write_draft(workdir / "INC-101.md")))
    assert "'Highest' (mapped from P0)" in line and "valid priorities: High, Medium, Low" in line
    ok = file_cmd(emu, workdir / "INC-101.md", "--priority-map", "P0=High,P1=Medium,P2=Low")
    assert ok.exit_code == 0, ok.stderr


def test_401_is_one_line_naming_the_variables(emu: JiraEmulator, workdir: Path) -> None:
    env = cloud_env(emu) | {"JIRA_API_TOKEN": "wrong"}
    draft = write_draft(workdir / "INC-101.md")
    line = one_line_error(run(env, "file-actions", str(draft), "--project", "OPS"))
    assert (
        "401" in line and "JIRA_EMAIL" in line and "JIRA_API_TOKEN" in line and "JIRA_PAT" in line
    )
    tracked = file_cmd(emu, draft)
    assert tracked.exit_code == 0
    sync = one_line_error(run(env, "sync-actions", str(draft)))
    assert "401" in sync and "JIRA_PAT" in sync


def test_missing_project_and_credentials(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    assert "pass --project KEY" in one_line_error(run(cloud_env(emu), "file-actions", str(draft)))
    line = one_line_error(
        run({"JIRA_URL": emu.url}, "file-actions", str(draft), "--project", "OPS")
    )
    assert "No Jira token" in line


# --- sync-back ----------------------------------------------------------------------------------


def test_sync_back_updates_status_and_keeps_human_edits(emu: JiraEmulator, workdir: Path) -> None:
    items = [*ITEMS, ITEMS[0].model_copy(update={"title": "Document the pool size runbook"})]
    draft = write_draft(workdir / "INC-101.md", items=items)
    assert file_cmd(emu, draft, "--incident-ticket", "OPS-1").exit_code == 0
    # A reviewer edits the file after filing; Jira moves on.
    draft.write_text(draft.read_text().replace("Human-written summary", "Edited again"))
    before, log_size = draft.read_text(), len(emu.log)
    emu.issues["OPS-2"].fields.update(status="In Progress", assignee="acc-bob")
    emu.issues["OPS-3"].fields.update(status="Done", resolution="Won't Do")
    emu.issues["OPS-4"].fields.update(status="Deployed", resolution="Done")
    result = run(cloud_env(emu), "sync-actions", str(draft))
    assert result.exit_code == 0, result.stderr
    assert "open → in_progress" in result.stdout and "Bob Oncall" in result.stdout
    assert "open → wontfix" in result.stdout and "Won't Do" in result.stdout
    assert "3 of 3 items changed" in result.stderr
    assert cells(draft) == [("OPS-2", "in_progress"), ("OPS-3", "wontfix"), ("OPS-4", "done")]
    assert_only_cells_changed(before, draft.read_text(), draft)
    assert "Edited again" in draft.read_text()
    assert not jira_actions.is_open(load(draft).rows[1]) and jira_actions.is_open(
        load(draft).rows[0]
    )
    assert [r for r in emu.log[log_size:] if r.method != "GET"] == []  # sync only reads
    again = run(cloud_env(emu), "sync-actions", str(draft), "--json")
    assert again.exit_code == 0 and "No changes." in again.stderr
    assert [r["changed"] for r in jira_json(again)] == [False, False, False]


def test_sync_updates_an_assignee_column_and_reports_missing_issues(
    emu: JiraEmulator, workdir: Path
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    assert file_cmd(emu, draft).exit_code == 0
    text = draft.read_text().replace("| Status |", "| Status | Assignee |")
    text = text.replace(
        "|---|---|---|---|---|---|---|---|---|", "|---|---|---|---|---|---|---|---|---|---|"
    )
    text = text.replace("| OPS-3 | open |", "| OPS-3 | open | - |")
    draft.write_text(text)
    emu.issues["OPS-3"].fields.update(assignee="acc-bob")
    del emu.issues["OPS-2"]
    result = run(cloud_env(emu), "sync-actions", str(draft), "--json")
    assert result.exit_code == 0, result.stderr
    missing, moved = jira_json(result)
    assert "not found in Jira" in missing["note"] and not missing["changed"]
    assert moved["changed"] and moved["assignee"] == "Bob Oncall"
    assert "| OPS-3 | open | Bob Oncall |" in draft.read_text()
    assert "OPS-2: not found in Jira" in result.stderr
