"""Filing under faults and races (issue 12, items 12-19 and the filing side of 4 and 11).

The real `jira` library and real `retro` processes against the Jira emulator: dropped
connections after a commit, duplicates, two runs at once, a reworded title after a crash, a
403 on the link, paged create metadata, retried reads, a dry run with no Jira, malformed
tables and redaction of everything sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from retro.actions.table import load, marker, table_problems
from tests import test_jira_actions as filing
from tests.emulators.base import SLOW_S, Request
from tests.emulators.jira import JiraEmulator
from tests.test_jira_actions import (
    ITEMS,
    cells,
    cloud_env,
    creates,
    file_cmd,
    jira_json,
    retro_process,
    run,
    write_draft,
    writes,
)

emu = filing.emu  # the same fixtures: an emulator with OPS-1, and a clean working folder
workdir = filing.workdir
CREATE = "/rest/api/3/issue$"


def posts(emu: JiraEmulator, path_end: str) -> list[Request]:
    return [r for r in emu.log if r.method == "POST" and r.path.endswith(path_end)]


def one_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("retro: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


# --- 12: no create is re-sent without a marker search first -------------------------------------


def test_dropped_connection_after_commit_is_adopted_never_a_second_issue(
    emu: JiraEmulator, workdir: Path
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    emu.inject(CREATE, drop=True, after=True)  # Jira commits the create, the answer is lost
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert result.exit_code == 0, result.stderr
    first = jira_json(result)[0]
    assert (first["action"], first["key"]) == ("adopted", "OPS-2")
    assert "answered ConnectionError but was committed" in first["note"]
    assert creates(emu) == 2 and list(emu.issues) == ["OPS-1", "OPS-2", "OPS-3"]
    assert cells(draft) == [("OPS-2", "open"), ("OPS-3", "open")]


def test_dropped_connection_before_commit_stops_then_the_rerun_files_once(
    emu: JiraEmulator, workdir: Path
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    emu.inject(CREATE, drop=True)  # nothing reached Jira
    failed = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    line = one_line(failed)
    assert "may or may not have created it" in line and "never filed twice" in line
    assert creates(emu) == 1 and list(emu.issues) == ["OPS-1"]
    again = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert again.exit_code == 0, again.stderr
    assert [r["action"] for r in jira_json(again)] == ["created", "created"]
    assert list(emu.issues) == ["OPS-1", "OPS-2", "OPS-3"]


def test_a_rate_limited_create_is_sent_again_only_after_a_marker_search(
    emu: JiraEmulator, workdir: Path, waits: list[float]
) -> None:
    (workdir / "retro.toml").write_text("[connectors.jira]\nmax_retries = 3\n")
    draft = write_draft(workdir / "INC-101.md")
    emu.inject(CREATE, status=429, headers={"Retry-After": "5"}, times=2)
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    assert result.exit_code == 0, result.stderr
    assert waits[:2] == [5.0, 5.0]  # Retry-After honoured
    # Between two creates of the same item there is always a search for its marker.
    mark = marker("INC-101", ITEMS[0].title)
    kinds = [
        "create" if r.method == "POST" and r.path.endswith("/issue") else "marker search"
        for r in emu.log
        if (r.method == "POST" and r.path.endswith("/issue")) or mark in str(r.query) + str(r.body)
    ]
    sent = [i for i, k in enumerate(kinds) if k == "create"]
    assert len(sent) >= 3  # item 1 sent three times (two 429s), item 2 once
    assert all("marker search" in kinds[a + 1 : b] for a, b in zip(sent, sent[1:3], strict=False))
    assert list(emu.issues) == ["OPS-1", "OPS-2", "OPS-3"]


def test_the_library_never_retries_by_itself(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    # Committed, then a 503 with Retry-After: the library used to send the POST again.
    emu.inject(CREATE, status=503, after=True, headers={"Retry-After": "1"})
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert result.exit_code == 0, result.stderr
    assert jira_json(result)[0]["action"] == "adopted"
    assert creates(emu) == 2 and len(emu.issues) == 3  # no second POST of item 1


# --- 13: a duplicate found by its marker is reported on every run until resolved ---------------


def test_a_duplicate_is_reported_every_run_until_resolved(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    assert file_cmd(emu, draft, "--incident-ticket", "OPS-1").exit_code == 0
    mark = marker("INC-101", ITEMS[0].title)
    # A second issue carries item 1's marker (say a create Jira committed twice).
    extra = emu.seed_issue("OPS", ITEMS[0].title, labels=["postmortem", "INC-101", mark])
    for _ in range(2):
        result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
        assert result.exit_code == 0, result.stderr
        note = jira_json(result)[0]["note"]
        assert f"duplicate: {extra} also carries {mark} (tracked: OPS-2)" in note
        assert f"action item 1: duplicate: {extra} also carries {mark}" in result.stderr
    emu.issues[extra].fields.update(status="Done", resolution="Duplicate")
    resolved = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert "duplicate" not in jira_json(resolved)[0]["note"] and "duplicate" not in resolved.stderr
    assert creates(emu) == 2


def test_docs_say_what_happens_to_a_duplicate() -> None:
    text = (Path(__file__).parents[1] / "docs" / "jira-actions.md").read_text()
    docs = " ".join(text.replace("*", "").split())
    assert "reported on every run until it is resolved" in docs
    assert "The next run reports both" not in docs  # what the old docs claimed, untrue


# --- 14: two runs at once on one draft ------------------------------------------------------------


def test_two_processes_on_one_draft_make_no_duplicates(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    args = ("file-actions", str(draft), "--project", "OPS", "--incident-ticket", "OPS-1")
    second: list[subprocess.Popen[bytes]] = []
    released = threading.Event()
    stderr_lines: list[str] = []

    def hold_first_create(req: Request) -> None:
        """Hold run 1's first create until run 2 waits for the lock or sends a create too."""
        if released.is_set():
            return
        if second:  # run 2's own create got here: no lock kept it out
            released.set()
            return
        proc = retro_process(workdir, emu, *args)
        second.append(proc)
        assert proc.stderr is not None
        for raw in proc.stderr:
            stderr_lines.append(raw.decode())
            if "waiting for it to finish" in stderr_lines[-1] or released.is_set():
                break
        released.set()

    emu.before_create = hold_first_create
    first = retro_process(workdir, emu, *args)
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second[0].communicate(timeout=120)
    assert first.returncode == 0, err1.decode()
    assert second[0].returncode == 0, "".join(stderr_lines) + err2.decode()
    assert any("waiting for it to finish" in line for line in stderr_lines)
    assert list(emu.issues) == ["OPS-1", "OPS-2", "OPS-3"]  # one issue per item
    assert creates(emu) == 2
    assert "skipped" in out2.decode() and "already tracked" in out2.decode()
    assert cells(draft) == [("OPS-2", "open"), ("OPS-3", "open")]
    assert not (workdir / ".INC-101.md.retro-lock").exists()


# --- 15: the marker survives rewording ------------------------------------------------------------


def test_rewording_a_title_after_a_crash_adopts_the_issue(emu: JiraEmulator, workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    args = ("file-actions", str(draft), "--project", "OPS", "--incident-ticket", "OPS-1")
    proc = retro_process(workdir, emu, *args)
    emu.after_create = lambda _key: os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    emu.after_create = None
    assert list(emu.issues) == ["OPS-1", "OPS-2"] and cells(draft)[0] == ("", "proposed")
    # A reviewer rewords the title before anyone re-runs.
    draft.write_text(
        draft.read_text().replace(ITEMS[0].title, "Page on-call when the DB pool saturates")
    )
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(r["key"], r["action"]) for r in jira_json(result)] == [
        ("OPS-2", "adopted"),
        ("OPS-3", "created"),
    ]
    assert list(emu.issues) == ["OPS-1", "OPS-2", "OPS-3"]


def test_a_row_keeps_its_marker_until_it_is_tracked(tmp_path: Path) -> None:
    draft = write_draft(tmp_path / "INC-101.md")
    row = load(draft).rows[0]
    derived = marker("INC-101", ITEMS[0].title)
    assert row.marker == derived and row.written_marker == ""
    draft.write_text(draft.read_text().replace("| [Eff506] | - |", f"| [Eff506] | {derived} |"))
    draft.write_text(draft.read_text().replace(ITEMS[0].title, "Something else entirely"))
    again = load(draft).rows[0]
    assert again.marker == derived and again.tracking == "" and again.title != ITEMS[0].title


# --- 16: the key is written before the link; a 403 on the link names Link Issues ------------------


def test_a_403_on_the_link_keeps_the_key_and_files_the_other_items(
    emu: JiraEmulator, workdir: Path
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    forbidden = {"errorMessages": ["You do not have the permission to link issues."], "errors": {}}
    emu.inject("/issueLink$", status=403, body=forbidden)
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    line = one_line(result)
    assert "OPS-2 is filed but not linked to OPS-1" in line
    assert "Link Issues permission" in line and "CAPTCHA" not in line
    assert "created  OPS-2" in result.stdout and "created  OPS-3" in result.stdout
    assert cells(draft) == [("OPS-2", "open"), ("OPS-3", "open")]  # both keys written
    assert [v["inward"] for v in emu.links.values()] == ["OPS-3"]
    # Once the permission is granted, a re-run adds the missing link and files nothing.
    again = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    assert again.exit_code == 0, again.stderr
    assert "linked OPS-2 relates to OPS-1" in again.stderr
    assert sorted(v["inward"] for v in emu.links.values()) == ["OPS-2", "OPS-3"]
    assert creates(emu) == 2


# --- 17: create-screen metadata is paged -----------------------------------------------------------


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_create_metadata_is_read_page_by_page(deployment: str, workdir: Path) -> None:
    with JiraEmulator(deployment=deployment) as jira:
        jira.seed_issue("OPS", "Checkout 500s", issuetype="Incident")
        jira.custom_fields = {f"customfield_{10100 + i}": f"Field {i}" for i in range(60)}
        jira.custom_fields_first = True  # priority, components and due date are on page 2
        draft = write_draft(workdir / "INC-101.md")
        text = draft.read_text().replace("| Status |", "| Status | Components | Due |", 1)
        text = text.replace("|---|---|---|---|---|---|---|---|---|", "|" + "---|" * 11, 1)
        text = text.replace("| - | proposed |", "| - | proposed | database | 2024-06-01 |")
        draft.write_text(text)
        env = (
            cloud_env(jira)
            if deployment == "Cloud"
            else {"JIRA_URL": jira.url, "JIRA_PAT": "server-pat"}
        )
        result = run(env, "file-actions", str(draft), "--project", "OPS")
        assert result.exit_code == 0, result.stderr
        assert "not on the create screen" not in result.stderr
        for key in ("OPS-2", "OPS-3"):
            fields = jira.issues[key].fields
            assert fields["priority"] in ("High", "Highest")
            assert fields["components"] == ["database"] and fields["duedate"] == "2024-06-01"
        pages = [r for r in jira.log if "/issue/createmeta/" in r.path]
        assert [r.q("startAt") for r in pages] == ["0", "50"]


# --- 18: reads are retried as documented -----------------------------------------------------------


def filed(emu: JiraEmulator, workdir: Path) -> Path:
    draft = write_draft(workdir / "INC-101.md")
    assert file_cmd(emu, draft).exit_code == 0
    return draft


@pytest.mark.parametrize(
    ("status", "headers"),
    [(500, {}), (502, {}), (503, {}), (504, {}), (429, {}), (429, {"Retry-After": "7"})],
)
def test_sync_retries_5xx_and_429(
    emu: JiraEmulator, workdir: Path, waits: list[float], status: int, headers: dict[str, str]
) -> None:
    (workdir / "retro.toml").write_text("[connectors.jira]\nmax_retries = 2\n")
    draft = filed(emu, workdir)
    emu.issues["OPS-2"].fields.update(status="Done", resolution="Done")
    waits.clear()
    emu.inject("/issue/OPS-2$", status=status, headers=headers, times=2)
    result = run(cloud_env(emu), "sync-actions", str(draft))
    assert result.exit_code == 0, result.stderr
    assert cells(draft)[0] == ("OPS-2", "done")
    assert len(waits) == 2 and emu.faults == []
    if headers:
        assert waits == [7.0, 7.0]


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 200, "raw": b"<html><body>Login</body></html>"}, "malformed response body"),
        ({"status": 200, "raw": b'{"key": "OPS-2", "fie'}, "malformed response body"),
        ({"status": 200, "raw": b"{}"}, "malformed response body"),
        ({"delay": SLOW_S}, "no answer from Jira"),
        ({"drop": True}, "no answer from Jira"),
        ({"status": 503}, "Jira answered 503 on issue OPS-2 after 2 retries"),
    ],
)
def test_sync_read_faults_past_the_retries_are_one_line(
    emu: JiraEmulator, workdir: Path, fault: dict[str, Any], expected: str
) -> None:
    (workdir / "retro.toml").write_text(
        "[connectors.jira]\nmax_retries = 2\nmax_retry_delay_s = 0.01\ntimeout_s = 0.3\n"
    )
    draft = filed(emu, workdir)
    before = draft.read_text()
    emu.inject("/issue/OPS-2$", times=3, **fault)
    line = one_line(run(cloud_env(emu), "sync-actions", str(draft)))
    assert expected in line and "OPS-2" in line
    assert draft.read_text() == before
    emu.inject("/issue/OPS-2$", times=1, **fault)  # once: retried, then fine
    assert run(cloud_env(emu), "sync-actions", str(draft)).exit_code == 0


# --- 19: a dry run needs no Jira -----------------------------------------------------------------


def test_dry_run_with_no_jira_configured(workdir: Path) -> None:
    draft = write_draft(workdir / "INC-101.md")
    before = draft.read_bytes()
    result = run({}, "file-actions", str(draft), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("would create") == 2
    assert "duplicates were not checked" in result.stderr
    as_json = run({}, "file-actions", str(draft), "--dry-run", "--json")
    notes = [(r["action"], r["note"], r["dry_run"]) for r in jira_json(as_json)]
    assert notes == [("created", "duplicates not checked (no Jira configured)", True)] * 2
    assert draft.read_bytes() == before
    bad = draft.read_text().replace("| P1 |", "| P7 |", 1)
    draft.write_text(bad)
    assert "has priority 'P7'" in one_line(run({}, "file-actions", str(draft), "--dry-run"))


# --- 4: a malformed table is refused --------------------------------------------------------------

HEADER = "| # | Action | Type | Priority | Owner | End state | Evidence | Tracking | Status |"
SEPARATOR = "|---|---|---|---|---|---|---|---|---|"


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda t: t.replace(HEADER + "\n" + SEPARATOR + "\n", ""), "has no header row"),
        (lambda t: t.replace(HEADER + "\n", ""), "has no header row"),
        (lambda t: t.replace(SEPARATOR + "\n", ""), "no |---| line under its header"),
        (lambda t: t.replace("| Add an alert on", "| Add an alert | on"), "10 cells"),
        (lambda t: t.replace("proposed |\n| 2 |", "proposed |\n\n| 2 |"), "cut off by a blank"),
        (lambda t: t.replace("proposed |\n\nSet", "proposed |\nSet"), "read as one of its rows"),
    ],
)
def test_a_malformed_table_is_refused_with_one_line(
    emu: JiraEmulator, workdir: Path, breakage: Any, expected: str
) -> None:
    draft = write_draft(workdir / "INC-101.md")
    assert table_problems(draft.read_text()) == []
    draft.write_text(breakage(draft.read_text()))
    problems = table_problems(draft.read_text())
    assert problems and expected in problems[0].message
    line = one_line(file_cmd(emu, draft, "--incident-ticket", "OPS-1"))
    assert expected in line and f"line {problems[0].line}" in line
    assert writes(emu) == []
    assert "line" in one_line(run({}, "file-actions", str(draft), "--dry-run"))


def test_items_written_as_a_list_are_a_problem(tmp_path: Path) -> None:
    text = write_draft(tmp_path / "INC-101.md", items=[]).read_text()
    assert table_problems(text) == []  # no items at all is fine
    listed = text.replace(
        "## Action items\n\n_None found in the evidence._",
        "## Action items\n\n- Add an alert on DB pool saturation (P1)",
    )
    assert "list but no table" in table_problems(listed)[0].message


# --- 11: nothing reaches Jira unredacted -----------------------------------------------------------

TOKEN = "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"


def sent_bodies(emu: JiraEmulator) -> str:
    return "\n".join(r.body.decode() for r in emu.log if r.method in ("POST", "PUT"))


def test_titles_descriptions_and_evidence_are_redacted(emu: JiraEmulator, workdir: Path) -> None:
    items = [
        ITEMS[0].model_copy(
            update={
                "title": f"Rotate the deploy token {TOKEN}",
                "end_state": "The old token ops-bot@example.com used is revoked.",
            }
        )
    ]
    draft = write_draft(workdir / "INC-101.md", items=items)
    draft.write_text(draft.read_text().replace("for checkout-api |", f"for checkout-api {TOKEN} |"))
    result = file_cmd(emu, draft, "--incident-ticket", "OPS-1")
    assert result.exit_code == 0, result.stderr
    sent = sent_bodies(emu)
    assert TOKEN not in sent and "ops-bot@example.com" not in sent
    fields = emu.issues["OPS-2"].fields
    assert fields["summary"] == "Rotate the deploy token [REDACTED:github_token]"
    assert "[REDACTED:github_token]" in json.dumps(fields["description"])


def test_an_ssn_in_a_title_never_reaches_jira(emu: JiraEmulator, workdir: Path) -> None:
    items = [ITEMS[0].model_copy(update={"title": "Rotate SSN 123-45-6789"})]
    draft = write_draft(workdir / "INC-101.md", items=items)
    result = file_cmd(emu, draft)
    assert result.exit_code == 0, result.stderr
    assert "123-45-6789" not in sent_bodies(emu)
