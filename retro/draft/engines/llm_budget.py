"""Token counting, deterministic compression and chunking of evidence rows for LLM prompts.

Before a model sees any chat, the rows are compressed without a model:
1. long texts are truncated (key events are kept verbatim up to a generous cap);
2. chatter is dropped: joins and leaves, and chat the understanding layer reads as saying
   nothing about the incident ("+1", "thanks", "brb"; see retro.draft.grounding);
3. repeated rows (bot noise, flapping alerts; digits ignored) collapse into the first one with a
   repeat count and the time of the last;
4. when the rest is still over the token budget, rows are ranked by kind and by the strongest
   label the understanding layer gives their sentences, and the lowest-ranked are dropped. Key
   events are always kept.
Each row a prompt carries is tagged with the labels that hold for it (at most two).
Then the kept rows are packed into chunks, keeping each thread in one chunk where it fits.

Token counts use tiktoken when its encoding file is already cached on this machine (tiktoken
downloads encodings from the internet on first use, which retro never triggers). Otherwise a
deterministic estimate is used (see `estimate_tokens`). Both sides of every ratio use the same counter.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from retro.draft.engines.base import EvidenceRow

if TYPE_CHECKING:
    from retro.draft.grounding import Grounding

TIKTOKEN_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
WORD_PIECE = re.compile(r"\w{1,6}")
PUNCT_PIECE = re.compile(r"[^\w\s]{1,2}")
KIND_WEIGHT: dict[str, float] = {
    "change_deployed": 9,
    "status_page_update": 8,
    "ticket_created": 7,
    "alert_firing": 6,
    "alert_resolved": 6,
    "status_change": 6,
    "priority_change": 5,
    "page_triggered": 6,
    "page_acknowledged": 6,
    "page_resolved": 6,
    "page_escalated": 5,
    "page_unacknowledged": 4,
    "note": 5,
    "comment": 4,
    "page_assigned": 2,
    "page_notified": 1,
    "assignee_change": 3,
    "field_change": 2,
    "message": 2,
    "bot_message": 1,
    "other": 1,
    "membership": 0,
}


# --- counting ------------------------------------------------------------------------------------
def estimate_tokens(text: str) -> int:
    """Deterministic estimate: a word is one token per started 6 characters, a run of
    punctuation one per started 2 characters (BPE merges `":"` and `{"` into single tokens)."""
    return len(WORD_PIECE.findall(text)) + len(PUNCT_PIECE.findall(text))


def _tiktoken_cached(name: str) -> bool:
    """True when tiktoken can load `name` without a download."""
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if cache == "":
        return False
    folder = cache or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    key = hashlib.sha1(TIKTOKEN_BLOB.format(name=name).encode()).hexdigest()
    return os.path.exists(os.path.join(folder, key))


@lru_cache(maxsize=8)
def token_counter(model: str = "gpt-4o-mini") -> tuple[Callable[[str], int], str]:
    """Return (count, method) for the model: tiktoken if its encoding is cached, else estimate."""
    try:
        import tiktoken

        try:
            name = tiktoken.encoding_name_for_model(model)
        except KeyError:
            name = "o200k_base"
        if _tiktoken_cached(name):
            enc = tiktoken.get_encoding(name)
            return (lambda text: len(enc.encode(text, disallowed_special=()))), f"tiktoken:{name}"
    except Exception:  # a broken or missing tiktoken must not stop a draft: estimate instead
        pass
    return estimate_tokens, "estimate"


# --- compact rows --------------------------------------------------------------------------------
@dataclass
class CompactRow:
    """A row as prompts carry it, with short keys."""

    id: str
    t: str
    src: str
    kind: str
    who: str
    text: str
    thread: str | None
    key: bool
    at: float
    score: float = 0.0
    repeats: int = 0
    last_t: str | None = None
    tags: tuple[str, ...] = ()

    def as_json(self) -> str:
        data: dict[str, Any] = {"id": self.id, "t": self.t}
        # Most rows are chat messages; the prompts say these are the defaults, to save tokens.
        if self.src != "slack":
            data["src"] = self.src
        if self.kind != "message":
            data["kind"] = self.kind
        if self.who:
            data["who"] = self.who
        data["text"] = self.text
        if self.tags:
            data["lab"] = ",".join(self.tags)
        if self.thread and self.thread != self.id:
            data["th"] = self.thread
        if self.key:
            data["key"] = 1
        if self.repeats:
            data["rep"] = self.repeats
            data["last_t"] = self.last_t
        # Escaping < and > keeps a row from closing the </timeline> delimiter around it.
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return line.replace("<", "\\u003c").replace(">", "\\u003e")


def rows_block(rows: Iterable[CompactRow]) -> str:
    return "\n".join(r.as_json() for r in rows)


def raw_transcript(rows: list[EvidenceRow]) -> str:
    """The uncompressed transcript the 25% bar is measured against: one full line per row."""
    return "\n".join(f"{r.at.isoformat()} [{r.source}/{r.kind}] {r.actor}: {r.text}" for r in rows)


@dataclass
class Compression:
    """The outcome of compress(): kept rows and what happened to the others."""

    rows: list[CompactRow]
    raw_tokens: int
    kept_tokens: int
    budget: int
    counts: dict[str, int] = field(default_factory=dict)
    key_ids: list[str] = field(default_factory=list)


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20].rstrip()} … [+{len(text) - limit + 20} chars]"


def _score(row: EvidenceRow, text: str, grounding: Grounding | None) -> float:
    score = KIND_WEIGHT.get(row.kind, 1.0)
    if grounding is not None:
        score += 3.0 * min(2.0, grounding.relevance(row.id))
    score += 2.0 if row.linked else 0.0
    score += min(2.0, len(text) / 200)
    return score


def _signature(row: EvidenceRow, text: str) -> str:
    return "\x1f".join((row.source, row.kind, row.actor, re.sub(r"\d+", "#", text.lower())[:300]))


def _compact(row: EvidenceRow, text: str, grounding: Grounding | None = None) -> CompactRow:
    return CompactRow(
        id=row.id,
        t=row.at.strftime("%m-%d %H:%M:%S"),
        src=row.source,
        kind=row.kind,
        who=row.actor,
        text=text,
        thread=row.thread,
        key=row.key_event,
        at=row.at.timestamp(),
        score=_score(row, text, grounding),
        tags=tuple(grounding.tags(row.id)) if grounding is not None else (),
    )


def to_compact(
    row: EvidenceRow, max_chars: int = 400, grounding: Grounding | None = None
) -> CompactRow:
    """One row as prompts carry it, its text truncated to max_chars."""
    return _compact(row, _truncate(row.text, max_chars), grounding)


def _lossless(
    rows: list[EvidenceRow],
    counts: dict[str, int],
    *,
    max_chars: int,
    key_chars: int,
    grounding: Grounding | None,
) -> list[CompactRow]:
    """Steps 1-3: truncate, drop chatter, collapse repeats."""
    out: list[CompactRow] = []
    seen: dict[str, CompactRow] = {}
    for row in rows:
        if row.key_event:
            out.append(_compact(row, _truncate(row.text, key_chars), grounding))
            continue
        text = _truncate(row.text, max_chars)
        if text != " ".join(row.text.split()):
            counts["truncated"] = counts.get("truncated", 0) + 1
        if row.kind == "membership" or (grounding is not None and grounding.chatter(row)):
            counts["chatter"] = counts.get("chatter", 0) + 1
            continue
        sig = _signature(row, text)
        first = seen.get(sig)
        if first is not None:
            first.repeats += 1
            first.last_t = row.at.strftime("%m-%d %H:%M:%S")
            counts["repeats"] = counts.get("repeats", 0) + 1
            continue
        compact = _compact(row, text, grounding)
        seen[sig] = compact
        out.append(compact)
    return out


def compress(
    rows: list[EvidenceRow],
    *,
    count: Callable[[str], int] = estimate_tokens,
    share: float = 0.10,
    min_budget: int = 3000,
    max_chars: int = 400,
    key_chars: int = 4000,
    grounding: Grounding | None = None,
) -> Compression:
    """Compress rows to at most max(min_budget, share × raw tokens), keeping every key event.

    Without `grounding` (the understanding layer's reading of the rows) only joins and leaves
    count as chatter and rows rank by kind alone.
    """
    raw = count(raw_transcript(rows))
    budget = max(min_budget, int(raw * share))
    counts: dict[str, int] = {}
    kept = _lossless(rows, counts, max_chars=max_chars, key_chars=key_chars, grounding=grounding)
    sizes = {id(r): count(r.as_json()) + 1 for r in kept}
    total = sum(sizes.values())
    if total > budget:
        total = sum(sizes[id(r)] for r in kept if r.key)
        chosen: set[int] = {id(r) for r in kept if r.key}
        # Highest score first; earlier rows win ties so the choice is deterministic.
        for r in sorted((r for r in kept if not r.key), key=lambda r: (-r.score, r.at, r.id)):
            if total + sizes[id(r)] <= budget:
                chosen.add(id(r))
                total += sizes[id(r)]
        counts["ranked_out"] = len(kept) - len(chosen)
        kept = [r for r in kept if id(r) in chosen]
    keys = [r.id for r in rows if r.key_event]
    return Compression(kept, raw, total, budget, counts, keys)


def chunk(
    rows: list[CompactRow], *, max_tokens: int, count: Callable[[str], int] = estimate_tokens
) -> list[list[CompactRow]]:
    """Pack rows into chunks of at most max_tokens, keeping a thread together when it fits."""
    units: dict[str, list[CompactRow]] = {}
    for r in rows:
        units.setdefault(r.thread or r.id, []).append(r)
    ordered = sorted(units.values(), key=lambda u: (u[0].at, u[0].id))
    chunks: list[list[CompactRow]] = []
    current: list[CompactRow] = []
    size = 0
    for unit in ordered:
        unit_size = sum(count(r.as_json()) + 1 for r in unit)
        if current and size + unit_size > max_tokens:
            chunks.append(current)
            current, size = [], 0
        if unit_size > max_tokens:  # a thread bigger than a chunk is split in time order
            for r in unit:
                r_size = count(r.as_json()) + 1
                if current and size + r_size > max_tokens:
                    chunks.append(current)
                    current, size = [], 0
                current.append(r)
                size += r_size
            continue
        current.extend(unit)
        size += unit_size
    if current:
        chunks.append(current)
    return [sorted(c, key=lambda r: (r.at, r.id)) for c in chunks]
