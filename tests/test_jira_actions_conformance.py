"""What the filer sends, compared with Atlassian's documented REST v3 examples in ../shared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from jira import JIRAError
from pydantic import SecretStr

from connectors.jira.live import JiraConfig
from retro.actions.jira import FileOptions, _refused, file_actions
from retro.actions.table import load
from tests.emulators.jira import JiraEmulator
from tests.test_jira_actions import write_draft

SHARED = Path(__file__).parents[1].parent / "shared" / "fixtures" / "jira"
pytestmark = pytest.mark.skipif(
    not SHARED.is_dir(), reason="../shared/fixtures/jira is not present"
)


def sample(name: str) -> Any:
    return json.loads((SHARED / f"rest_v3_{name}.openapi_example.json").read_text("utf-8"))


def text_nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "text":
            yield node
        for child in node.get("content") or []:
            yield from text_nodes(child)


@pytest.fixture
def sent(tmp_path: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """The create and link request bodies of one real filing run against the emulator."""
    with JiraEmulator() as emu:
        emu.seed_issue("OPS", "Checkout 500s", issuetype="Incident")
        draft = write_draft(tmp_path / "INC-101.md")
        text = draft.read_text().replace("| Status |", "| Status | Due |", 1)
        text = text.replace("|---|---|---|---|---|---|---|---|---|", "|" + "---|" * 10, 1)
        draft.write_text(text.replace("| proposed |", "| proposed | 2024-06-01 |", 1))
        config = JiraConfig(
            base_url=emu.url, email="alice@example.com", api_token=SecretStr("cloud-token")
        )
        file_actions(draft, FileOptions(project="OPS", incident_ticket="OPS-1"), config)
        posts = [(r.path.rsplit("/", 1)[-1], r.json()) for r in emu.log if r.method == "POST"]
        first: dict[str, Any] = {}
        for name, body in posts:
            first.setdefault(name, body)  # the first item's: it has the due date
        yield first["issue"], first["issueLink"]


def test_create_request_matches_the_documented_shape(sent: tuple[dict[str, Any], Any]) -> None:
    documented = sample("create_issue_request")["fields"]
    fields = sent[0]["fields"]
    assert set(fields) - {"project"} <= set(documented)  # every field we set is a documented one
    for name, value in fields.items():
        assert type(value) is type(documented[name]), name
    assert fields["issuetype"].keys() == documented["issuetype"].keys() == {"id"}
    assert len(fields["duedate"]) == len(documented["duedate"]) == len("YYYY-MM-DD")
    description = fields["description"]
    assert description.keys() == documented["description"].keys() == {"type", "version", "content"}
    assert description["version"] == documented["description"]["version"] == 1
    nodes = list(text_nodes(description))
    assert nodes and all(node["text"] for node in nodes)  # Cloud rejects empty text nodes
    assert {k for node in nodes for k in node} <= {"type", "text", "marks"}


def test_link_request_matches_the_documented_shape(sent: tuple[Any, dict[str, Any]]) -> None:
    documented = sample("create_issue_link_request")
    link = sent[1]
    assert set(link) <= set(documented)
    for side in ("type", "inwardIssue", "outwardIssue"):
        assert link[side].keys() == documented[side].keys()


def test_documented_400_becomes_one_line(tmp_path: Path) -> None:
    response = requests.Response()
    response.status_code = 400
    response._content = json.dumps(sample("create_issue_400")).encode()
    error = JIRAError(status_code=400, text=response.text, response=response)
    row = load(write_draft(tmp_path / "INC-101.md")).rows[0]
    message = str(_refused(error, row))
    assert message.startswith("jira: Jira refused to create “Add an alert on DB pool")
    assert "Field 'priority' is required" in message and "\n" not in message
