"""Jira: issues with their changelog and comments, from files or the live REST API (v2 or v3).

- `read.py`: file mode. What `GET /rest/api/{2,3}/issue/{key}?expand=changelog` returns, a
  search body (`{"issues": [...]}`), a plain list of issues, a comments page
  (`{"comments": [...]}`), a paged changelog (`{"values": [...]}`) and `jira:issue_updated`
  webhook payloads.
- `adf.py`: Atlassian Document Format to plain text and back.
- `client.py`: the settings (`JiraConfig`) and `JiraClient`, the connected client that harvest,
  `sources check` and `retro file-actions` share: the `jira` library's client configured never
  to retry by itself, reads retried under retro's policy, and the paged GETs the library lacks.
- `live.py`: live mode. Writes one `<KEY>.json` per issue with every comment and history
  embedded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.jira import client as jira_client
from connectors.jira import history, live, read
from retro.connector import (
    Connector,
    Doc,
    HistoryQuery,
    ImportedIncident,
    IncidentRef,
    ReadContext,
)
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["JiraConnector"]


class JiraConnector(Connector):
    """Jira issues: creation, status/priority/assignee/field changes, comments, deployments."""

    name: ClassVar[str] = "jira"
    title: ClassVar[str] = "Jira"
    display: ClassVar[str] = "Jira"
    roles: ClassVar[frozenset[str]] = frozenset({"tracker"})
    order: ClassVar[int] = 60
    harvest_help: ClassVar[str] = "an issue key"
    Config: ClassVar[type[BaseModel]] = jira_client.JiraConfig
    docs_url: ClassVar[str] = "docs/connectors/jira.md"

    def claims(self, doc: Doc) -> bool:
        return read.claims(doc)

    def read_bundle(self, docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
        return read.read_bundle(docs, ctx)

    def harvest(
        self,
        ref: IncidentRef,
        out: Path,
        config: BaseModel,
        progress: Progress = no_progress,
    ) -> SourceReport:
        return live.harvest_jira(ref, out, jira_client.as_config(config), progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check_jira(jira_client.as_config(config))

    history_help: ClassVar[str] = (
        "incident tickets (JQL): created, transitions, resolution, priority"
    )

    def import_history(
        self, query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
    ) -> Iterator[ImportedIncident]:
        return history.import_history(query, config, progress)

    def client(self, config: BaseModel) -> Any:
        """A connected `connectors.jira.client.JiraClient` (see its docstring)."""
        return jira_client.connect(jira_client.as_config(config))
