"""GitHub: the changes that went out before an incident, as `change_deployed` events.

- `read.py`: file mode. REST bodies (deployments, deployment statuses, pull requests, releases,
  workflow runs, the repository) recognised by content.
- `live.py`: live mode. Fetches the changes of a window before impact (`window.py`) with httpx,
  following Link pages within GitHub's rate limits, and writes them under out/github/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel

from connectors.github import live, read
from retro.connector import Connector, Doc, IncidentRef, ReadContext
from retro.models import Progress, SourceReport, TimelineEvent, no_progress

__all__ = ["GitHubConnector"]


class GitHubConnector(Connector):
    """Deployments, merged pull requests, releases and deploy workflow runs from GitHub."""

    name: ClassVar[str] = read.SOURCE
    title: ClassVar[str] = "GitHub"
    display: ClassVar[str] = "GitHub"
    roles: ClassVar[frozenset[str]] = frozenset({"changes"})
    # Late: its live harvest reads the other sources' files to find the start of impact.
    order: ClassVar[int] = 90
    harvest_help: ClassVar[str] = (
        "OWNER/REPO (changes in the lookback before --since, or before the earliest "
        "page or alert the other sources harvested)"
    )
    Config: ClassVar[type[BaseModel]] = live.GitHubConfig
    docs_url: ClassVar[str] = "https://docs.github.com/en/rest"

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
        return live.harvest(ref, out, config, progress)

    def check(self, config: BaseModel) -> list[str]:
        return live.check(config)
