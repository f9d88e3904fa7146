"""Helpers for the similarity-index tests: a fast word-hashing embedder and sample postmortems."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from retro.index.embeddings import Embedder, Progress
from retro.models import ActionItem, Claim, Postmortem


class HashEmbedder(Embedder):
    """Bag of hashed words: texts sharing words get close vectors; counts what it embeds."""

    name: ClassVar[str] = "test-hash"
    dim = 64

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @property
    def embedded(self) -> int:
        return sum(len(c) for c in self.calls)

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                slot = int(hashlib.md5(word.encode()).hexdigest()[:8], 16) % self.dim
                out[row, slot] += 1.0
            out[row, 0] += 0.01  # no zero vectors
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        if progress is not None:
            progress(len(texts))
        return out


def action(
    title: str, status: str = "open", tracking: str = "", origin: str = "stated"
) -> ActionItem:
    """An action item people stated (an engine's "gap" item is template wording)."""
    return ActionItem(
        title=title,
        type="prevent",
        priority="P1",
        owner="SRE",
        end_state="done when verified",
        status=status,  # type: ignore[arg-type]
        tracking=tracking,
        origin=origin,  # type: ignore[arg-type]
    )


def postmortem(
    incident_id: str,
    title: str,
    *,
    summary: str = "",
    impact: str = "",
    root_cause: str = "",
    factors: str = "",
    services: list[str] | None = None,
    actions: list[ActionItem] | None = None,
    severity: str | None = None,
    engine: str = "human",
) -> Postmortem:
    """A postmortem people wrote (engine "human"): every sentence of it is its own words."""
    claim = lambda text: [Claim(text=text)] if text else []  # noqa: E731
    return Postmortem(
        incident_id=incident_id,
        title=title,
        engine=engine,
        severity=severity,
        services=services or [],
        summary=claim(summary),
        impact=claim(impact),
        root_cause=claim(root_cause),
        contributing_factors=claim(factors),
        action_items=actions or [],
    )
