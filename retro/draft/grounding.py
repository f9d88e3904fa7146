"""What the understanding layer says about each evidence row, in the form a model's draft needs.

The LLM engine reads the same sentence labels as the offline engine and milestones:

- `relevance(row)`: how strongly the row's best sentence carries an informative label, as a
  share of that label's threshold. Prompts rank rows by it when the evidence is over budget.
- `chatter(row)`: a chat row that says nothing about the incident (too short to read, or
  off_topic holds and outweighs every informative label). Left out of prompts first. Blame and
  instructions to a model are not chatter: the pipeline's policy leaves those out and counts
  them.
- `tags(row)`: at most two labels a prompt row is tagged with, so a model sees which rows state
  a cause, a mitigation or a follow-up.
- `supports(section, citations)`: whether a claim's cited rows can carry a claim of that
  section (retro/understand/data/sections.v1.yaml). A "root cause" citing a greeting cannot.

Everything is relative to the labels' thresholds, so one number means the same for every label.
"""

from __future__ import annotations

from collections.abc import Iterable

from retro.draft.engines.base import DraftInput, EvidenceRow
from retro.understand.labels import section_support
from retro.understand.model import cut

CHAT_KINDS = frozenset({"message", "bot_message"})


class Grounding:
    """The label evidence of one DraftInput's rows."""

    def __init__(self, data: DraftInput) -> None:
        self.support = section_support()
        self._kinds = {r.id: r.kind for r in data.rows}
        pieces: Iterable[tuple[str, dict[str, float], bool]]
        if data.sentences or not data.rows:
            pieces = ((s.row_id, s.scores, s.embedded) for s in data.sentences)
        else:  # a DraftInput built without the pipeline: read its rows here, the same way
            from retro.understand.layer import shared

            reading = shared().read(data.rows, human={r.id for r in data.rows if r.human})
            pieces = ((s.row_id, s.scores, s.embedded) for s in reading.sentences)
        self._ratios: dict[str, list[dict[str, float]]] = {}
        self._ranked: dict[str, list[str]] = {}
        for row_id, scores, embedded in pieces:
            ratio = {label: p / cut(label, embedded) for label, p in scores.items()}
            self._ratios.setdefault(row_id, []).append(ratio)

    def _noise(self, ratio: dict[str, float]) -> float:
        return max((ratio.get(label, 0.0) for label in self.support.uninformative), default=0.0)

    def _best(self, ratio: dict[str, float], wanted: Iterable[str]) -> float:
        return max((ratio.get(label, 0.0) for label in wanted), default=0.0)

    def relevance(self, row_id: str) -> float:
        """The row's strongest informative label as a share of its threshold (0 without prose)."""
        informative = self.support.sections["summary"]
        return max(
            (
                self._best(r, informative)
                for r in self._ratios.get(row_id, [])
                if self._best(r, informative) >= self._noise(r)
            ),
            default=0.0,
        )

    def chatter(self, row: EvidenceRow) -> bool:
        """A chat message with nothing to read, or whose every sentence is off-topic first."""
        if row.kind == "membership":
            return True
        if row.kind not in CHAT_KINDS or row.key_event:
            return False
        sentences = self._ratios.get(row.id, [])
        if not sentences:  # under three characters: chatter unless it is a number ("50")
            alnum = [ch for ch in row.text if ch.isalnum()]
            return len(alnum) < 2 or not any(ch.isdigit() for ch in alnum)
        informative = self.support.sections["summary"]
        return all(
            r.get("off_topic", 0.0) >= 1.0 and r.get("off_topic", 0.0) > self._best(r, informative)
            for r in sentences
        )

    def tags(self, row_id: str) -> list[str]:
        """The prompt tags that hold for the row, strongest first (at most two)."""
        best: dict[str, float] = {}
        for r in self._ratios.get(row_id, []):
            noise = self._noise(r)
            for label in self.support.prompt_tags:
                value = r.get(label, 0.0)
                if value >= 1.0 and value >= noise and value > best.get(label, 0.0):
                    best[label] = value
        return sorted(best, key=lambda label: (-best[label], label))[:2]

    def supports(self, section: str, citations: Iterable[str]) -> bool:
        """Whether any cited row can carry a claim of `section`.

        A row that is not prose (an alert, a page, a deploy, a ticket field) always can; a
        prose row can when one of its sentences carries one of the section's labels at the
        relaxed factor and no less than any uninformative label. Unknown ids are not judged
        here (citation repair handles them).
        """
        wanted = self.support.sections.get(section)
        if wanted is None:
            return True
        judged = False
        for row_id in citations:
            kind = self._kinds.get(row_id)
            if kind is None:
                continue
            judged = True
            if kind not in self.support.checked_kinds:
                return True
            for r in self._ratios.get(row_id, []):
                best = self._best(r, wanted)
                if best >= self.support.relaxed and best >= self._noise(r):
                    return True
        return not judged

    def strongest(self, section: str, n: int) -> list[str]:
        """The ids of the n prose rows that best carry `section`'s labels (for repair)."""
        if section not in self._ranked:
            wanted = self.support.sections.get(section, frozenset())
            scored = [
                (max(self._best(r, wanted) for r in ratios), row_id)
                for row_id, ratios in self._ratios.items()
                if wanted and row_id in self._kinds and self.supports(section, [row_id])
            ]
            self._ranked[section] = [i for _s, i in sorted(scored, key=lambda t: (-t[0], t[1]))]
        return self._ranked[section][:n]
