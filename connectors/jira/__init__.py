"""Jira: issues with their changelog and comments, from files or the live REST API (v2 or v3).

- `read.py`: file mode. What `GET /rest/api/{2,3}/issue/{key}?expand=changelog` returns, a
  search body (`{"issues": [...]}`), a plain list of issues, a comments page
  (`{"comments": [...]}`), a paged changelog (`{"values": [...]}`) and `jira:issue_updated`
  webhook payloads.
- `adf.py`: Atlassian Document Format to plain text and back.
- `live.py`: live mode. Uses the `jira` library and writes one `<KEY>.json` per issue with
  every comment and history embedded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.jira import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
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
    Config: ClassVar[type[BaseModel]] = live.JiraConfig
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
        return live.harvest_jira(ref, out, live.as_config(config), progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check_jira(live.as_config(config))
