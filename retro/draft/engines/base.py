"""What a draft engine receives and returns.

Engines never see raw events: they get `DraftInput`, whose rows are already redacted and in
which people appear as roles. Chat text in the rows is data, never instructions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, Field

from retro.models import Metrics, Milestone, Postmortem, Progress, UTCDateTime, no_progress


class EvidenceRow(BaseModel):
    """One timeline event as an engine may see it."""

    id: str
    at: UTCDateTime
    source: str
    kind: str
    actor: str = Field(description="A role such as 'the incident commander', never a name")
    text: str = Field(description="Redacted text with names replaced by roles")
    thread: str | None = Field(default=None, description="Id of the thread's first message")
    key_event: bool = Field(default=False, description="Evidence for a milestone")
    linked: list[str] = Field(default_factory=list)
    duplicate: bool = Field(default=False, description="Another source's copy of a linked event")


class DraftInput(BaseModel):
    """Everything an engine needs to write a postmortem."""

    incident_id: str
    title: str | None = None
    severity: str | None = None
    services: list[str] = Field(default_factory=list)
    rows: list[EvidenceRow]
    milestones: dict[str, Milestone]
    metrics: Metrics
    roles: list[str] = Field(default_factory=list, description="Role labels that appear in rows")
    source_titles: dict[str, str] = Field(
        default_factory=dict, description="What a draft calls each source, e.g. 'PagerDuty'"
    )


class Engine(ABC):
    """A draft engine fills the narrative parts of a Postmortem.

    The pipeline fills milestones, metrics, the timeline table and the Sources section, then
    checks every citation against the timeline.
    """

    name: ClassVar[str]

    @abstractmethod
    def draft(self, data: DraftInput, *, progress: Progress = no_progress) -> Postmortem:
        """Return a Postmortem whose claims cite only ids from data.rows."""

    def usage(self) -> dict[str, float | None]:
        """Tokens and cost of the last draft (LLM engines); empty for offline engines."""
        return {}
