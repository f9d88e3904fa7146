"""What the LLM is asked to return, and how it becomes a Postmortem.

Every field has a description: the schema is sent as the function's parameters, so the
descriptions are part of the prompt (as in Netflix Dispatch's `ai/models.py`). Lists default to
empty so that a small model that leaves out a section still validates.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from retro.models import ActionItem, ActionType, Claim, Priority

CITES = "Ids of the timeline rows that support this, exactly as written in the rows, e.g. E1a2b3"
INLINE_CITE = re.compile(r"\s*\[((?:E[0-9A-Za-z]+)(?:\s*,\s*E[0-9A-Za-z]+)*)\]")

Aspect = Literal[
    "impact",
    "detection",
    "response",
    "recovery",
    "root_cause",
    "trigger",
    "contributing_factor",
    "went_well",
    "went_poorly",
    "got_lucky",
    "other",
]


class DraftClaim(BaseModel):
    """One factual sentence and the rows behind it."""

    text: str = Field(
        description="One blameless factual sentence; people as roles; no ids inside the text"
    )
    cites: list[str] = Field(default_factory=list, description=CITES + "; at least one")


class DraftAction(BaseModel):
    """One follow-up action item."""

    title: str = Field(description="Imperative, specific title, e.g. 'Add a canary stage to X'")
    type: ActionType = Field(
        description="investigate, prevent, mitigate, repair, detect or process"
    )
    priority: Priority = Field(description="P0 (urgent), P1 (soon) or P2 (later)")
    owner: str = Field(description="A role or team such as 'the payments team'; never a name")
    end_state: str = Field(
        description="A verifiable end state: how anyone can tell the item is done"
    )
    origin: Literal["stated", "gap"] = Field(
        description="stated: someone proposed it during the incident; gap: the evidence shows it"
    )
    cites: list[str] = Field(default_factory=list, description=CITES)


class PostmortemDraft(BaseModel):
    """The narrative sections of a blameless postmortem, every sentence cited."""

    summary: list[DraftClaim] = Field(
        default_factory=list,
        description="Two to four sentences: what happened, the impact, how it was detected and resolved",
    )
    impact: list[DraftClaim] = Field(
        default_factory=list,
        description="Who and what was affected and for how long, with figures from the rows",
    )
    detection: list[DraftClaim] = Field(
        default_factory=list,
        description="How and when the problem was noticed: alert, page or report",
    )
    response: list[DraftClaim] = Field(
        default_factory=list, description="What responders did, in order, until mitigation"
    )
    recovery: list[DraftClaim] = Field(
        default_factory=list, description="How service was restored and confirmed healthy"
    )
    root_cause: list[DraftClaim] = Field(
        default_factory=list,
        description="The underlying cause as far as the evidence shows; empty if unknown",
    )
    trigger: list[DraftClaim] = Field(
        default_factory=list,
        description="The change or event that set the incident off; empty if unknown",
    )
    contributing_factors: list[DraftClaim] = Field(
        default_factory=list, description="Conditions that made it worse or slower to fix"
    )
    went_well: list[DraftClaim] = Field(default_factory=list, description="What went well")
    went_poorly: list[DraftClaim] = Field(default_factory=list, description="What went poorly")
    got_lucky: list[DraftClaim] = Field(default_factory=list, description="Where we got lucky")
    action_items: list[DraftAction] = Field(
        default_factory=list,
        description="Stated follow-ups plus items for gaps the evidence shows",
    )
    open_questions: list[str] = Field(
        default_factory=list,
        description="What the evidence cannot explain, as questions for the review meeting",
    )


class NoteFact(BaseModel):
    """One fact noted from a part of the timeline."""

    aspect: Aspect = Field(description="Which postmortem section the fact belongs to")
    text: str = Field(description="One short blameless sentence; people as roles")
    cites: list[str] = Field(default_factory=list, description=CITES)


class NoteFollowUp(BaseModel):
    """A follow-up someone proposed during the incident."""

    text: str = Field(description="What was proposed, as an imperative phrase")
    owner: str = Field(default="", description="The role or team that offered or was asked")
    cites: list[str] = Field(default_factory=list, description=CITES)


class ChunkNotes(BaseModel):
    """Compact notes from one part of a long incident timeline."""

    facts: list[NoteFact] = Field(default_factory=list, description="Facts, in time order")
    follow_ups: list[NoteFollowUp] = Field(
        default_factory=list, description="Follow-ups people stated in this part"
    )
    open_questions: list[str] = Field(
        default_factory=list, description="What this part leaves unexplained"
    )


class RepairFix(BaseModel):
    """New citations for one sentence."""

    ref: str = Field(description="The ref of the sentence, exactly as given, e.g. summary[0]")
    cites: list[str] = Field(
        default_factory=list,
        description="Valid ids that support the sentence; empty if none does",
    )


class CitationRepair(BaseModel):
    """Citation fixes for the listed sentences."""

    fixes: list[RepairFix] = Field(default_factory=list, description="One fix per sentence")


CLAIM_SECTIONS: tuple[str, ...] = (
    "summary",
    "impact",
    "detection",
    "response",
    "recovery",
    "root_cause",
    "trigger",
    "contributing_factors",
    "went_well",
    "went_poorly",
    "got_lucky",
)


def split_inline(text: str, cites: list[str]) -> tuple[str, list[str]]:
    """Move `[E1a2b3]` markers a model left inside the text into the citation list."""
    found: list[str] = []
    for match in INLINE_CITE.finditer(text):
        found.extend(part.strip() for part in match.group(1).split(","))
    clean = INLINE_CITE.sub("", text).strip()
    return clean, _unique([c.strip().strip("[]") for c in cites] + found)


def _unique(ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        if i:
            seen.setdefault(i, None)
    return list(seen)


def to_claim(c: DraftClaim) -> Claim:
    text, cites = split_inline(c.text, c.cites)
    return Claim(text=text, citations=cites)


def to_action(a: DraftAction) -> ActionItem:
    title, cites = split_inline(a.title, a.cites)
    return ActionItem(
        title=title,
        type=a.type,
        priority=a.priority,
        owner=a.owner,
        end_state=split_inline(a.end_state, [])[0],
        citations=cites,
        origin=a.origin,
    )


def sections(draft: PostmortemDraft) -> dict[str, list[Claim]]:
    """The claim sections of a draft as Postmortem claims."""
    return {name: [to_claim(c) for c in getattr(draft, name)] for name in CLAIM_SECTIONS}
