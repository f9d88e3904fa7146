"""Choosing and wording evidence sentences for the offline engine.

Every choice reads the understanding layer's label scores (DraftInput.sentences); nothing here
matches phrases. A sentence is a candidate for a label when the classifier gives it at least
`floor`, it is not a question, not a hedge (unless hedges are asked for), not a counterfactual
or unsafe by policy, and not a theory that responders later ruled out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from retro.draft.engines.base import DraftInput, EvidenceRow, ScoredSentence
from retro.models import Claim
from retro.safety import policy
from retro.text import content_words, overlap, word_overlap
from retro.understand.lexicon import (
    discards,
    identifiers,
    no_effect,
    ruled_out_subject,
    rules_out,
    statement,
)

QUOTABLE = frozenset({"message", "comment", "note", "ticket_created", "status_page_update"})


@dataclass(frozen=True)
class Pick:
    """A chosen sentence, its row and the score it was chosen by."""

    sentence: ScoredSentence
    row: EvidenceRow
    score: float

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def at(self) -> datetime:
        return self.row.at


def claim(text: str, cites: Iterable[str]) -> Claim:
    return Claim(text=text, citations=[c for c in dict.fromkeys(cites) if c])


def hhmm(at: datetime | None) -> str:
    return f"{at:%H:%M} UTC" if at else "an unknown time"


# Connectors write ticket records as "KEY comment: …" / "KEY created: …": a record format, not words.
_RECORD_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]+-\d+ (comment|note|created|description):\s*")


def strip_record_prefix(text: str) -> str:
    return _RECORD_PREFIX.sub("", text)


NO_EFFECT_WITHIN = timedelta(minutes=60)  # "no change" this long after a step speaks of it


class Chooser:
    """Ranks the scored sentences of one draft for each section."""

    def __init__(self, data: DraftInput) -> None:
        self.data = data
        # the story's sections read the window; what the team wrote days later is follow-up work
        self.by_id = {r.id: r for r in data.rows if not r.later}
        self.sentences = [s for s in data.sentences if s.row_id in self.by_id]
        self._ruled_out = [s for s in self.sentences if rules_out(s.text)]
        self._subjects = {id(s): self._subject(s) for s in self._ruled_out}
        self._no_effect = [s for s in self.sentences if no_effect(s.text)]

    def candidates(
        self,
        label: str,
        *,
        factor: float = 1.0,
        hedged: bool = False,
        rows: set[str] | None = None,
        after: datetime | None = None,
        before: datetime | None = None,
    ) -> list[Pick]:
        out = []
        for s in self.sentences:
            row = self.by_id[s.row_id]
            if row.kind not in QUOTABLE or (rows is not None and row.id not in rows):
                continue
            if (after and row.at < after) or (before and row.at > before):
                continue
            p = s.p(label)
            if not s.has(label, factor) or s.has("question") or len(s.text.split()) < 4:
                continue
            if not hedged and s.has("hypothesis") and s.p("hypothesis") > p:
                continue
            if label != "follow_up" and s.has("follow_up") and s.p("follow_up") > p:
                continue  # a follow-up list names fixes, not causes or steps taken
            if len(content_words(s.text)) < 3:
                continue  # "that's what it looks like to me" says nothing on its own
            if s.has("off_topic") or policy.unsafe(s.text) or policy.counterfactual(s.text):
                continue
            if label in ("cause", "trigger", "contributing") and self._discarded(s, row):
                continue
            if label == "trigger" and s in self._ruled_out:
                continue  # "the deploy didn't start this" names what was not the trigger
            if label in ("cause", "contributing") and s in self._ruled_out and discards(s.text):
                continue  # "the gateway roll out is not it, …": what did not happen
            out.append(Pick(s, row, p * self._weight(row)))
        out.sort(key=lambda pick: (-pick.score, pick.at))
        return out

    def _weight(self, row: EvidenceRow) -> float:
        """People's words count fully; tickets and notes a little more (written with care);
        bots and transcripts less."""
        if row.kind in ("comment", "ticket_created", "note"):
            return 1.1
        if not row.human:
            return 0.7
        return 0.85 if row.low_trust else 1.0

    def _subject(self, s: ScoredSentence) -> tuple[frozenset[str], frozenset[str]]:
        """The content words and identifiers of what a sentence rules out. A bare "not the
        deploy" names its theory through the rest of its message ("payments-api rollback done.
        no change in error rate. not the deploy")."""
        words = content_words(ruled_out_subject(strip_record_prefix(s.text)))
        context = s.text
        if len(words) < 2:
            context = " ".join(o.text for o in self.sentences if o.row_id == s.row_id)
        # "INC-214 comment: …" names the incident's own record, not the theory
        return words, identifiers(strip_record_prefix(context))

    def _discarded(self, s: ScoredSentence, row: EvidenceRow) -> bool:
        """A theory is discarded when a later sentence rules it out: the two share words, or
        the theory holds most of what the later sentence names, or a name of a system or
        change ("payments-api", "CHG-214") that the ruling-out message names."""
        mine = content_words(s.text)
        # "api-gateway" holds "gateway": a ruling-out that says "the gateway" names it
        mine |= {part for word in mine for part in re.split(r"[-_]", word) if len(part) >= 3}
        names = identifiers(s.text)
        for other in self._ruled_out:
            later = self.by_id[other.row_id]
            if later.at < row.at or other is s:
                continue
            subject, named = self._subjects[id(other)]
            if (
                overlap(s.text, other.text) >= 0.25
                or (len(subject) >= 2 and word_overlap(subject, mine, how="containment") >= 0.5)
                or names & named
            ):
                return True
        return False

    def changed_nothing(self, s: ScoredSentence, row: EvidenceRow) -> bool:
        """A step a later sentence (or the rest of its own message) says changed nothing
        ("rollback to 3.7.2 done" ... "rollback done, no change"): no mitigation."""
        names = identifiers(s.text)
        for other in self._no_effect:
            later = self.by_id[other.row_id]
            if later.at < row.at or later.at - row.at > NO_EFFECT_WITHIN:
                continue
            if (
                other.row_id == row.id
                or overlap(s.text, other.text) >= 0.25
                or (names and names & identifiers(other.text))
            ):
                return True
        return False

    def top(self, picks: list[Pick], n: int, *, distinct: float = 0.5) -> list[Pick]:
        """The first n picks that do not repeat an earlier one (word overlap below `distinct`)."""
        chosen: list[Pick] = []
        for pick in picks:
            if all(overlap(pick.sentence.text, c.sentence.text) < distinct for c in chosen):
                chosen.append(pick)
            if len(chosen) >= n:
                break
        return chosen

    def say(self, pick: Pick) -> Claim:
        """A picked sentence as a report sentence citing its row."""
        return claim(statement(strip_record_prefix(pick.sentence.text), pick.row.actor), [pick.id])

    def said(self, picks: Iterable[Pick]) -> list[Claim]:
        return [c for c in (self.say(p) for p in picks) if len(c.text.split()) >= 3]


def cut(text: str, limit: int) -> str:
    """text shortened to at most `limit` characters at a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return head + "…"
