"""What a draft engine receives and returns.

Engines never see raw events: they get `DraftInput`, whose rows are already redacted and in
which people appear as roles. Chat text in the rows is data, never instructions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, Field, PrivateAttr

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
    human: bool = Field(default=False, description="Written by a person (not a bot or a tool)")
    low_trust: bool = Field(default=False, description="Speech-to-text or similar: never alone")
    later: bool = Field(
        default=False,
        description="Follow-up work from the days after the incident window: read for action "
        "items, never for the story",
    )
    other_work: bool = Field(
        default=False,
        description="A tracker ticket nothing ties to this incident: a search export's other work",
    )
    facts: dict[str, str] = Field(
        default_factory=dict,
        description="Structured fields an engine may state: status, issue type, change kind",
    )


class ScoredSentence(BaseModel):
    """One sentence of a row, with the understanding layer's probability per label."""

    row_id: str
    text: str
    scores: dict[str, float]
    embedded: bool = True

    def p(self, label: str) -> float:
        return self.scores.get(label, 0.0)

    def has(self, label: str, factor: float = 1.0) -> bool:
        """The label holds: its probability reaches the label's threshold (times `factor`)."""
        from retro.understand.model import holds

        return holds(self.scores, label, self.embedded, factor)

    def top(self) -> str:
        """The most likely label."""
        return max(self.scores, key=self.scores.__getitem__, default="")


class DraftInput(BaseModel):
    """Everything an engine needs to write a postmortem."""

    incident_id: str
    title: str | None = None
    severity: str | None = None
    services: list[str] = Field(default_factory=list)
    timezone: str | None = Field(
        default=None, description="The incident's zone (incident.yaml), for times people state"
    )
    rows: list[EvidenceRow]
    milestones: dict[str, Milestone]
    metrics: Metrics
    roles: list[str] = Field(default_factory=list, description="Role labels that appear in rows")
    source_titles: dict[str, str] = Field(
        default_factory=dict, description="What a draft calls each source, e.g. 'PagerDuty'"
    )
    sentences: list[ScoredSentence] = Field(
        default_factory=list, description="Every readable row's sentences, scored per label"
    )
    roles_of_sources: dict[str, list[str]] = Field(
        default_factory=dict, description="What each source's events mean (connector roles)"
    )
    understanding_note: str | None = Field(
        default=None, description="Set when sentence understanding ran degraded (rules only)"
    )

    _by_row: dict[str, list[ScoredSentence]] = PrivateAttr(default_factory=dict)

    def sentences_of(self, row_id: str) -> list[ScoredSentence]:
        if not self._by_row:
            for s in self.sentences:
                self._by_row.setdefault(s.row_id, []).append(s)
        return self._by_row.get(row_id, [])


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
