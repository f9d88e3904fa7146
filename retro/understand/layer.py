"""Score the sentences of an incident's evidence: `Understanding.read(rows)` -> `Reading`.

Every sentence of a person's message, comment, note, ticket or status update is scored on every
label. Sentences are embedded with all-MiniLM-L6-v2 and scored by the full classifier head,
most promising first, up to a budget (so a 2,000-message incident still drafts in seconds);
the rest are scored by the light head (cues and surface features). When the embedder cannot
run, every sentence gets the light head and `Reading.degraded` says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from retro.text import split_sentences
from retro.understand.labels import labels
from retro.understand.model import Classifier, holds, light_features, packaged

if TYPE_CHECKING:
    import numpy as np

READ_KINDS = frozenset(
    {"message", "bot_message", "comment", "note", "status_page_update", "ticket_created"}
)
CONTENT = frozenset(labels()) - {"off_topic", "question", "investigation"}
BUDGET = 800  # sentences embedded per incident; the rest get the light head


class Row(Protocol):
    """What the layer needs of an evidence row (EvidenceRow and TimelineEvent both fit)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Sentence:
    """One sentence of one row, with a probability per label."""

    row_id: str
    index: int
    text: str
    scores: dict[str, float]
    embedded: bool

    def p(self, label: str) -> float:
        return self.scores.get(label, 0.0)

    def has(self, label: str, factor: float = 1.0) -> bool:
        """The label holds: its probability reaches the label's threshold (times `factor`)."""
        return holds(self.scores, label, self.embedded, factor)

    def top(self) -> str:
        return max(self.scores, key=self.scores.__getitem__)


@dataclass
class Reading:
    """The scored sentences of one incident."""

    sentences: list[Sentence] = field(default_factory=list)
    degraded: str | None = None
    _by_row: dict[str, list[Sentence]] = field(default_factory=dict, repr=False)
    vectors: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for s in self.sentences:
            self._by_row.setdefault(s.row_id, []).append(s)

    def of(self, row_id: str) -> list[Sentence]:
        return self._by_row.get(row_id, [])

    def p(self, row_id: str, label: str) -> float:
        """The row's strongest sentence for `label`."""
        return max((s.p(label) for s in self.of(row_id)), default=0.0)

    def with_label(self, label: str, threshold: float = 0.5) -> list[Sentence]:
        return [s for s in self.sentences if s.p(label) >= threshold]


class Understanding:
    """The scorer. One instance keeps its embedder and its vectors cache."""

    def __init__(
        self,
        *,
        classifier: Classifier | None = None,
        embedder: Any = None,
        budget: int = BUDGET,
        use_embedder: bool = True,
    ) -> None:
        self.classifier = classifier or packaged()
        self._embedder = embedder
        self.budget = budget
        self.use_embedder = use_embedder
        self.degraded: str | None = None
        self.embedded: set[str] = set()
        self._cache: dict[str, np.ndarray] = {}

    def embedder(self) -> Any:
        if self._embedder is None and self.use_embedder and self.degraded is None:
            try:
                from retro.index.embeddings import MiniLMEmbedder

                self._embedder = MiniLMEmbedder()
            except Exception as exc:  # a missing model package must not stop a draft
                self.degraded = f"embedder unavailable ({type(exc).__name__}): rules only"
        return self._embedder

    def score(
        self, texts: Sequence[str], priority: Sequence[float] | None = None
    ) -> list[dict[str, float]]:
        """Label probabilities per text; the `budget` highest-priority texts are embedded."""
        import numpy as np

        names = self.classifier.labels
        if not texts:
            return []
        unique = list(dict.fromkeys(texts))
        light = light_features(unique)
        probs = self.classifier.light.predict(light)
        order = _order(unique, light, probs, names, priority, texts)
        chosen = order[: self.budget]
        embedder = self.embedder() if chosen else None
        if embedder is not None:
            vectors = self.vectors([unique[i] for i in chosen])
            if vectors is not None:
                full = np.hstack([vectors, light[chosen]])
                probs[chosen] = self.classifier.full.predict(full)
        index = {t: i for i, t in enumerate(unique)}
        self.embedded = {unique[i] for i in chosen} if embedder is not None else set()
        return [dict(zip(names, map(float, probs[index[t]]), strict=True)) for t in texts]

    def vectors(self, texts: Sequence[str]) -> np.ndarray | None:
        """MiniLM vectors of texts (cached), or None when the embedder cannot run."""
        import numpy as np

        embedder = self.embedder()
        if embedder is None:
            return None
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            try:
                for text, vector in zip(missing, embedder.embed(missing), strict=True):
                    self._cache[text] = vector
            except Exception as exc:
                self.degraded = f"embedder failed ({type(exc).__name__}): rules only"
                self._embedder = None
                return None
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 384))

    def read(self, rows: Iterable[Row], *, human: set[str] | None = None) -> Reading:
        """Split every readable row into sentences and score them all.

        `human` names the rows written by people; their sentences are embedded first.
        """
        pieces: list[tuple[str, int, str]] = []
        for row in rows:
            if row.kind not in READ_KINDS:
                continue
            for i, sentence in enumerate(split_sentences(row.text)):
                if len(sentence) >= 3:
                    pieces.append((row.id, i, sentence[:600]))
        texts = [p[2] for p in pieces]
        priority = [1.0 if human is None or p[0] in human else 0.4 for p in pieces]
        scored = self.score(texts, priority)
        embedded: set[str] = self.embedded
        sentences = [
            Sentence(row_id, i, text, scores, text in embedded)
            for (row_id, i, text), scores in zip(pieces, scored, strict=True)
        ]
        reading = Reading(sentences, self.degraded)
        reading.vectors = {t: self._cache[t] for t in embedded if t in self._cache}
        return reading


def _order(
    unique: list[str],
    light: np.ndarray,
    probs: np.ndarray,
    names: tuple[str, ...],
    priority: Sequence[float] | None,
    texts: Sequence[str],
) -> list[int]:
    """Which texts to embed first: the light head's strongest content label, times the row's
    priority, times a little for length (one-word chatter is rarely evidence)."""
    content = [j for j, n in enumerate(names) if n in CONTENT]
    weight: dict[str, float] = {}
    if priority is not None:
        for text, pr in zip(texts, priority, strict=True):
            weight[text] = max(weight.get(text, 0.0), pr)
    keyed = []
    for i, text in enumerate(unique):
        words = len(text.split())
        score = float(probs[i, content].max()) * weight.get(text, 1.0) * min(1.0, words / 6)
        keyed.append((-score, i))
    return [i for _, i in sorted(keyed)]


_SHARED: Understanding | None = None


def shared() -> Understanding:
    """One Understanding per process, so the embedder loads once and its vector cache is
    shared by the pipeline and the engines."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Understanding()
    return _SHARED
