"""Follow-ups the team filed in its incident tool (incident.io follow-ups, Rootly action items)
are read from a bundle and become the draft's action items as they are written."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bundle_factory import CHAT, T0, iso, msg, ts, write_bundle

from retro.draft.engines.offline import OfflineEngine
from retro.draft.pipeline import generate
from retro.timeline.read import read_timeline

INCIDENT_IO = "01FDAG4SAP5TYPT98WGR2N7W91"
ROOTLY = "8150262f-a6e3-4561-8751-42cddc5daf2a"
FIXTURES = Path(__file__).parent / "fixtures" / "rootly"


def _incident_io_follow_up(
    fid: str, title: str, status: str, minutes: float, incident: str
) -> dict[str, Any]:
    return {
        "id": fid,
        "incident_id": incident,
        "title": title,
        "description": "",
        "status": status,
        "created_at": iso(minutes),
        "updated_at": iso(minutes),
        "priority": {"id": "01GNW4BAQ7XRMFF6FHKNXDFPRW", "name": "Urgent", "rank": 10},
        "assignee_team": {"id": "t1", "name": "Payments platform"},
    }


def _bundle(tmp_path: Path) -> Path:
    bundle = write_bundle(tmp_path / "b")
    iio = bundle / "incident_io"
    iio.mkdir()
    incident = json.loads(
        (
            Path(__file__).parent / "fixtures/incident_io/api_v2_incident_show.openapi_example.json"
        ).read_text(encoding="utf-8")
    )
    incident["incident"]["incident_timestamp_values"] = []
    incident["incident"]["created_at"] = iso(3)  # declared in incident.io during the incident
    (iio / "incident.json").write_text(json.dumps(incident), encoding="utf-8")
    follow_ups = [
        _incident_io_follow_up(
            "f1",
            "Cap the checkout pool size change at 20% per deploy",
            "outstanding",
            50,
            INCIDENT_IO,
        ),
        # filed at the review two days later: still this incident's
        _incident_io_follow_up(
            "f2",
            "Page the database on-call when pgbouncer waits exceed 1s",
            "completed",
            2900,
            INCIDENT_IO,
        ),
        _incident_io_follow_up(
            "f3", "Rewrite the pool config in YAML", "not_doing", 55, INCIDENT_IO
        ),
        _incident_io_follow_up(
            "f4", "Rotate the office wifi password", "outstanding", 52, "01OTHERINCIDENT0000000000"
        ),
    ]
    (iio / "follow_ups.json").write_text(json.dumps({"follow_ups": follow_ups}), encoding="utf-8")
    rootly = bundle / "rootly"
    rootly.mkdir()
    item = json.loads(
        (
            Path(__file__).parent / "fixtures/rootly/api_v1_action_item_get.openapi_example.json"
        ).read_text(encoding="utf-8")
    )
    item["data"]["attributes"].update(
        summary="Add a canary stage for checkout-api config changes",
        incident_id=ROOTLY,
        created_at=iso(60),
        status="open",
    )
    (rootly / "action_item.json").write_text(json.dumps(item), encoding="utf-8")
    return bundle


def test_filed_follow_ups_are_read_and_those_of_other_incidents_counted(tmp_path: Path) -> None:
    timeline = read_timeline(_bundle(tmp_path))
    filed = {e.text: e for e in timeline.events if e.attrs.get("follow_up")}
    assert set(filed) == {
        "Cap the checkout pool size change at 20% per deploy",
        "Page the database on-call when pgbouncer waits exceed 1s",
        "Rewrite the pool config in YAML",
        "Add a canary stage for checkout-api config changes",
    }
    assert filed["Rewrite the pool config in YAML"].attrs["status"] == "not_doing"
    report = next(r for r in timeline.sources if r.name == "incident_io")
    assert report.skipped == {"follow-up of another incident": 1}


def test_filed_follow_ups_are_action_items_as_written(tmp_path: Path) -> None:
    pm = generate(
        bundle=_bundle(tmp_path), engine=OfflineEngine(), out=tmp_path / "d.md"
    ).postmortem
    titles = [a.title for a in pm.action_items]
    assert "Cap the checkout pool size change at 20% per deploy" in titles
    assert "Page the database on-call when pgbouncer waits exceed 1s" in titles
    assert "Add a canary stage for checkout-api config changes" in titles
    assert not [t for t in titles if "YAML" in t or "wifi" in t]  # not doing; another incident


def _jira_task(key: str, summary: str, minutes: float) -> dict[str, Any]:
    issue = json.loads(
        (Path(__file__).parent / "fixtures/jira/ops-101_v3.json").read_text(encoding="utf-8")
    )
    issue["key"], issue["id"] = key, str(abs(hash(key)) % 100000)
    fields = issue["fields"]
    fields.update(summary=summary, created=iso(minutes).replace("Z", ".000+0000"))
    fields["issuetype"] = {**fields["issuetype"], "name": "Task"}
    fields["description"], fields["issuelinks"] = None, []
    fields["comment"] = {"comments": [], "total": 0, "maxResults": 0, "startAt": 0}
    issue["changelog"] = {"histories": [], "total": 0, "maxResults": 0, "startAt": 0}
    return issue


def test_a_tracker_task_filed_after_mitigation_is_a_follow_up_as_written(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    jira = bundle / "jira"
    jira.mkdir()
    tasks = {
        "OPS-120": ("Pgbouncer pool limits reviewed against max_connections", 30),
        "OPS-110": ("Drain checkout-api pods in zone b", 10),  # the response's own task
    }
    for key, (summary, minutes) in tasks.items():
        (jira / f"{key}.json").write_text(json.dumps(_jira_task(key, summary, minutes)), "utf-8")
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title for a in pm.action_items]
    assert "Pgbouncer pool limits reviewed against max_connections" in titles, titles
    assert "Drain checkout-api pods in zone b" not in titles, titles


def test_a_rootly_action_item_linked_only_by_its_relationship_is_read(tmp_path: Path) -> None:
    """JSON:API bodies may name the incident in `relationships` instead of the attributes."""
    bundle = _bundle(tmp_path)
    path = bundle / "rootly" / "action_item.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    del body["data"]["attributes"]["incident_id"]
    body["data"]["relationships"] = {"incident": {"data": {"id": ROOTLY, "type": "incidents"}}}
    path.write_text(json.dumps(body), encoding="utf-8")
    incident = json.loads(
        (FIXTURES / "api_v1_incident_get.openapi_example.json").read_text("utf-8")
    )
    incident["data"]["id"] = ROOTLY  # the bundle's own incident: items of others are skipped
    (bundle / "rootly" / "incident.json").write_text(json.dumps(incident), encoding="utf-8")
    timeline = read_timeline(bundle)
    filed = [e for e in timeline.events if e.attrs.get("follow_up") and e.source == "rootly"]
    assert [e.text for e in filed] == ["Add a canary stage for checkout-api config changes"]


def test_a_rootly_action_item_that_names_no_incident_is_the_bundles_own(tmp_path: Path) -> None:
    """Items listed under one incident's path name no incident of their own: they are read,
    not counted as another incident's."""
    bundle = _bundle(tmp_path)
    path = bundle / "rootly" / "action_item.json"
    body = json.loads(path.read_text(encoding="utf-8"))
    del body["data"]["attributes"]["incident_id"]
    path.write_text(json.dumps(body), encoding="utf-8")
    incident = json.loads(
        (FIXTURES / "api_v1_incident_get.openapi_example.json").read_text("utf-8")
    )
    incident["data"]["id"] = ROOTLY
    (bundle / "rootly" / "incident.json").write_text(json.dumps(incident), encoding="utf-8")
    timeline = read_timeline(bundle)
    filed = [e for e in timeline.events if e.attrs.get("follow_up") and e.source == "rootly"]
    assert [e.text for e in filed] == ["Add a canary stage for checkout-api config changes"]
    report = next(r for r in timeline.sources if r.name == "rootly")
    assert "action item of another incident" not in report.skipped


def test_each_file_is_listed_once_in_its_sources_report(tmp_path: Path) -> None:
    timeline = read_timeline(_bundle(tmp_path))
    for report in timeline.sources:
        assert len(report.files) == len(set(report.files)), report.name
    report = next(r for r in timeline.sources if r.name == "incident_io")
    assert sorted(report.files) == ["incident_io/follow_ups.json", "incident_io/incident.json"]


def test_the_follow_up_work_of_the_days_after_is_read_for_action_items(tmp_path: Path) -> None:
    """The window ends an hour after the resolution; the team's follow-up work goes on for days:
    a thread that collects follow-ups, its replies, and tracker tasks filed for the review. They
    stay for the action items; chat of the days after that is not about follow-ups does not,
    and none of it moves a milestone."""
    day = 24 * 60
    root = ts(day + 30)
    chat = [
        *CHAT,
        msg("U03", day + 30, "Collecting the follow-ups for Thursday's review here, add yours"),
        msg("U02", day + 32, "the pool config must refuse a size below 20", thread_ts=root),
        msg("U01", day + 33, "we need a load test for pool size changes", thread_ts=root),
        msg("U01", day + 40, "the pool is back to normal and we're resolved"),  # another thread
        msg("U03", day + 45, "we should get pizza for the team on Friday"),
    ]
    bundle = write_bundle(tmp_path / "b", chat=chat)
    jira = bundle / "jira"
    jira.mkdir()
    task = _jira_task("OPS-130", "Alert on pgbouncer wait time for checkout-api", day + 50)
    (jira / "OPS-130.json").write_text(json.dumps(task), "utf-8")
    timeline = read_timeline(bundle)
    assert timeline.window is not None and timeline.window.end < T0 + timedelta(days=1)
    assert "4 events of follow-up work from the days after kept" in timeline.window.reason
    texts = [e.text for e in timeline.events]
    assert "the pool config must refuse a size below 20" in texts
    assert not [t for t in texts if "pizza" in t or "back to normal and" in t]
    result = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md")
    titles = [a.title for a in result.postmortem.action_items]
    assert "The pool config must refuse a size below 20" in titles, titles
    assert "Add a load test for pool size changes" in titles, titles
    assert "Alert on pgbouncer wait time for checkout-api" in titles, titles
    resolved = result.postmortem.milestones["resolved"]
    assert resolved.at is not None and resolved.at < T0 + timedelta(hours=2)
    cited = {c for claim in result.postmortem.root_cause for c in claim.citations}
    later = {r.id for r in result.data.rows if r.later}
    assert later and not cited & later  # the story is told from the window


def test_a_ticket_filed_days_later_about_other_work_is_left_out(tmp_path: Path) -> None:
    """A search export brings in the tracker's other work of those days. A ticket filed after
    the window is this incident's follow-up only when it links to one of its tickets, names it
    (its id, keys, channel or services), carries a follow-up label or is named in the bundle
    ("filed OPS-154 so we …")."""
    day = 24 * 60
    chat = [*CHAT, msg("U02", day + 40, "filed OPS-154 so we rehearse the restore")]
    bundle = write_bundle(tmp_path / "b", chat=chat)
    jira = bundle / "jira"
    jira.mkdir()
    tasks = {
        "OPS-150": "Upgrade the office VPN client on build agents",  # other work
        "OPS-151": "Refuse pool sizes below 20 in the chart",  # links to the incident
        "OPS-152": "Alert on pgbouncer wait time for checkout-api",  # names the service
        "OPS-153": "Canary stage for config pushes",  # a follow-up label
        "OPS-154": "Restore drill for the orders database",  # chat names it
        "OPS-155": "Renew the public wildcard certificate",  # names the incident to disown it
    }
    for n, (key, summary) in enumerate(tasks.items()):
        task = _jira_task(key, summary, day + 50 + n)
        task["fields"]["labels"], task["fields"]["components"] = [], []
        if key == "OPS-151":
            task["fields"]["issuelinks"] = [
                {
                    "type": {"name": "Relates", "outward": "relates to"},
                    "outwardIssue": {"key": "INC-101"},
                }
            ]
        if key == "OPS-153":
            task["fields"]["labels"] = ["postmortem-followup"]
        if key == "OPS-155":
            task["fields"]["description"] = "Yearly renewal, unrelated to INC-101."
        (jira / f"{key}.json").write_text(json.dumps(task), "utf-8")
    timeline = read_timeline(bundle)
    assert timeline.window is not None
    assert "4 events of follow-up work from the days after kept" in timeline.window.reason
    assert not [e for e in timeline.events if "VPN" in e.text]
    assert [r for r in timeline.sources if r.name == "jira"][0].skipped == {
        "outside the incident window": 2
    }
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title for a in pm.action_items]
    assert "Refuse pool sizes below 20 in the chart" in titles, titles
    assert "Alert on pgbouncer wait time for checkout-api" in titles, titles
    assert "Canary stage for config pushes" in titles, titles
    assert "Restore drill for the orders database" in titles, titles
    assert not [t for t in titles if "VPN" in t or "wildcard" in t], titles


def test_a_review_call_recorded_days_later_is_read_for_action_items(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    calls = bundle / "transcripts"
    calls.mkdir()
    start = iso(3 * 24 * 60)
    (calls / "review.txt").write_text(
        f"---\nrecording_start: {start}\n---\n"
        "[00:00:05] Dana Whitfield: okay so we had the pool drop to five on Tuesday\n"
        "[00:01:10] Marco Ferreira: yeah so the thing we should do is add a canary stage "
        "for checkout-api config pushes\n"
        "[00:01:40] Priya Raman: agreed\n",
        encoding="utf-8",
    )
    result = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md")
    items = result.postmortem.action_items
    review = {r.id for r in result.data.rows if r.later and r.source == "transcripts"}
    assert len(review) == 3
    said = [a for a in items if review & set(a.citations)]
    assert said and "canary stage" in said[0].title, [a.title for a in items]


def test_a_follow_up_only_a_call_transcript_states_is_not_an_item(tmp_path: Path) -> None:
    """Speech-to-text is never alone: a follow-up said only on the call is left out; one that
    chat also states is an item citing both."""
    bundle = write_bundle(tmp_path / "b")
    calls = bundle / "transcripts"
    calls.mkdir()
    (calls / "bridge.txt").write_text(
        f"---\nrecording_start: {iso(26)}\n---\n"
        "[00:00:05] Marco Ferreira: we should add a lint rule for the pool size in the chart\n"
        "[00:00:40] Dana Whitfield: and we need a canary stage for config changes to checkout-api\n",
        encoding="utf-8",
    )
    result = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md")
    call = {r.id for r in result.data.rows if r.low_trust}
    titles = [a.title for a in result.postmortem.action_items]
    assert not [t for t in titles if "lint rule" in t], titles
    canary = [a for a in result.postmortem.action_items if "canary stage" in a.title]
    assert canary and call & set(canary[0].citations)


def test_a_rootly_incident_event_is_a_note_by_its_author(tmp_path: Path) -> None:
    """Rootly's timeline events name their author only by `user_display_name`."""
    bundle = write_bundle(tmp_path / "b")
    (bundle / "rootly").mkdir()
    body = json.loads((FIXTURES / "api_v1_incident_event_get.openapi_example.json").read_text())
    body["data"]["attributes"]["occurred_at"] = iso(12)
    (bundle / "rootly" / "event.json").write_text(json.dumps(body), encoding="utf-8")
    (note,) = [e for e in read_timeline(bundle).events if e.source == "rootly"]
    assert note.kind == "note" and note.actor is not None
    assert note.actor.name == "Misti Christiansen"


def test_a_ticket_filed_days_later_is_one_item_as_its_summary_says(tmp_path: Path) -> None:
    """A bug filed for the review is the follow-up its summary names; the sentences of its
    description explain it and ask for nothing more."""
    bundle = write_bundle(tmp_path / "b")
    jira = bundle / "jira"
    jira.mkdir()
    task = _jira_task("OPS-140", "Pool size validation accepts values below 20", 2 * 24 * 60)
    task["fields"]["issuetype"]["name"] = "Bug"
    task["fields"]["description"] = (
        "The validator only checks the type. We should also add a dashboard panel for it."
    )
    (jira / "OPS-140.json").write_text(json.dumps(task), "utf-8")
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title for a in pm.action_items]
    assert "Pool size validation accepts values below 20" in titles, titles
    assert not [t for t in titles if "dashboard panel" in t], titles


def test_two_tickets_one_tracker_holds_are_two_items(tmp_path: Path) -> None:
    """Two tasks the team filed apart in one tracker are two pieces of work, however alike
    their words; neither swallows the other."""
    bundle = write_bundle(tmp_path / "b")
    jira = bundle / "jira"
    jira.mkdir()
    tasks = {
        "OPS-150": "Alert on pgbouncer wait time for checkout-api",
        "OPS-151": "Alert on pgbouncer client queue length for checkout-api",
    }
    for n, (key, summary) in enumerate(tasks.items()):
        (jira / f"{key}.json").write_text(json.dumps(_jira_task(key, summary, 50 + n)), "utf-8")
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title for a in pm.action_items]
    assert all(summary in titles for summary in tasks.values()), titles


def test_a_ticket_the_team_declined_is_no_item(tmp_path: Path) -> None:
    """Jira says "Won't Do" as a status or as the resolution of a Done ticket: the team decided
    against the work at the review, so it is no action item."""
    day = 24 * 60
    bundle = write_bundle(tmp_path / "b")
    jira = bundle / "jira"
    jira.mkdir()
    tasks = {
        "OPS-160": ("Move checkout-api to a bigger database instance", {"name": "Won't Do"}, None),
        "OPS-161": ("Shard the checkout-api orders table", {"name": "Done"}, "Won't Fix"),
        "OPS-162": ("Alert on pgbouncer wait time for checkout-api", {"name": "Done"}, "Done"),
    }
    for n, (key, (summary, status, resolution)) in enumerate(tasks.items()):
        task = _jira_task(key, summary, day + 50 + n)
        task["fields"]["status"] = {**task["fields"]["status"], **status}
        task["fields"]["resolution"] = {"name": resolution} if resolution else None
        (jira / f"{key}.json").write_text(json.dumps(task), "utf-8")
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title for a in pm.action_items]
    assert "Alert on pgbouncer wait time for checkout-api" in titles, titles
    assert not [t for t in titles if "bigger database" in t or "Shard" in t], titles


def test_a_ticket_in_the_window_that_nothing_ties_to_the_incident_is_other_work(
    tmp_path: Path,
) -> None:
    """A search export also holds the tracker's other work of those hours: an unrelated bug
    whose description sounds like customers' symptoms is no report of this incident, and an
    unrelated chore filed after the mitigation is no follow-up. A task that names the service
    still is."""
    bundle = write_bundle(tmp_path / "b")
    jira = bundle / "jira"
    jira.mkdir()
    bug = _jira_task("OPS-170", "Invoice PDF shows the wrong VAT rate for Belgian buyers", -20)
    bug["fields"]["issuetype"]["name"] = "Bug"
    bug["fields"]["labels"], bug["fields"]["components"] = ["billing"], []
    bug["fields"]["description"] = "Two customers report invoices with 21% VAT instead of 6%."
    chore = _jira_task("OPS-171", "Rotate the office printer certificates", 30)
    task = _jira_task("OPS-172", "Alert on pgbouncer wait time for checkout-api", 31)
    renew = _jira_task("OPS-173", "We need to renew the staging wildcard certificate", 35)
    renew["fields"]["issuetype"]["name"] = "Bug"
    for t in (chore, task, renew):
        t["fields"]["labels"], t["fields"]["components"] = [], []
    for t in (bug, chore, task, renew):
        (jira / f"{t['key']}.json").write_text(json.dumps(t), "utf-8")
    timeline = read_timeline(bundle)
    other = {e.attrs.get("key") for e in timeline.events if e.attrs.get("other_work")}
    assert other == {"OPS-170", "OPS-171", "OPS-173"}
    pm = generate(bundle=bundle, engine=OfflineEngine(), out=tmp_path / "d.md").postmortem
    titles = [a.title for a in pm.action_items]
    assert "Alert on pgbouncer wait time for checkout-api" in titles, titles
    assert not [t for t in titles if "printer" in t or "wildcard" in t], titles
    assert pm.milestones["detected"].at.strftime("%H:%M") == iso(0)[11:16]
