"""Citation repair: one request to fix unsupported citations, then drop what is still unsupported.

A claim is unsupported when it cites an id that is not in the timeline or cites nothing. The
repair request lists the invalid ids, the valid candidate ids, the claims, and the candidate rows
(the rows that share the most words with the claims, plus the key events), because a bare list
of ids would give the model nothing to choose by. Afterwards invalid ids are removed everywhere
and claims left with no valid citation are dropped. Action items may cite nothing (gap
suggestions), so they lose invalid ids but are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from retro.draft.engines.base import DraftInput, EvidenceRow
from retro.draft.engines.llm_budget import rows_block, to_compact
from retro.draft.engines.llm_models import CLAIM_SECTIONS, CitationRepair
from retro.errors import EngineError
from retro.models import Claim, Postmortem

Call = Callable[[str, str, dict[str, str], type[BaseModel]], Any]
WORDS = re.compile(r"[a-z0-9][a-z0-9_.-]{3,}")
STOP = frozenset(
    [
        "that",
        "this",
        "with",
        "from",
        "were",
        "was",
        "have",
        "been",
        "into",
        "then",
        "than",
        "when",
        "what",
        "which",
        "while",
        "after",
        "before",
        "about",
        "their",
        "there",
        "they",
        "them",
        "these",
        "those",
        "also",
        "some",
        "more",
        "most",
        "over",
        "under",
        "during",
        "the",
    ]
)


def _words(text: str) -> set[str]:
    return {w for w in WORDS.findall(text.lower()) if w not in STOP}


class Repairer:
    """Validates a draft's citations against the timeline and repairs them once."""

    def __init__(
        self,
        call: Call,
        count: Callable[[str], int],
        *,
        per_claim: int = 12,
        max_rows: int = 80,
    ) -> None:
        self.call = call
        self.count = count
        self.per_claim = per_claim
        self.max_rows = max_rows

    def run(self, pm: Postmortem, data: DraftInput) -> dict[str, Any]:
        """Repair pm in place; return counts of what was asked, fixed and dropped."""
        valid = {r.id for r in data.rows}
        stats: dict[str, Any] = {
            "requests": 0,
            "claims_repaired": 0,
            "claims_dropped": 0,
            "citations_dropped": 0,
            "dropped_by_section": {},
        }
        bad = self._unsupported(pm, valid)
        if bad:
            try:
                fixes = self._ask(bad, valid, data)
                stats["requests"] = 1
                stats["claims_repaired"] = self._apply(pm, bad, fixes, valid)
            except EngineError as exc:  # a failed repair must not lose the draft: drop instead
                stats["requests"] = 1
                stats["error"] = exc.message
        self._sweep(pm, valid, stats)
        return stats

    def _unsupported(self, pm: Postmortem, valid: set[str]) -> dict[str, tuple[str, list[str]]]:
        """ref -> (text, cited ids) for claims and action items with a bad citation."""
        bad: dict[str, tuple[str, list[str]]] = {}
        for name in CLAIM_SECTIONS:
            for i, claim in enumerate(getattr(pm, name)):
                if not claim.citations or any(c not in valid for c in claim.citations):
                    bad[f"{name}[{i}]"] = (claim.text, list(claim.citations))
        for i, item in enumerate(pm.action_items):
            if any(c not in valid for c in item.citations):
                bad[f"action_items[{i}]"] = (item.title, list(item.citations))
        return bad

    def _candidates(
        self, bad: dict[str, tuple[str, list[str]]], data: DraftInput
    ) -> list[EvidenceRow]:
        index = [(row, _words(row.text)) for row in data.rows]
        chosen: dict[str, EvidenceRow] = {r.id: r for r in data.rows if r.key_event}
        for text, _cites in bad.values():
            words = _words(text)
            scored = sorted(
                ((len(words & w), -row.at.timestamp(), row) for row, w in index if words & w),
                key=lambda t: (t[0], t[1]),
                reverse=True,
            )
            for _score, _at, row in scored[: self.per_claim]:
                chosen.setdefault(row.id, row)
        rows = sorted(chosen.values(), key=lambda r: (r.at, r.id))
        return rows[: self.max_rows]

    def _ask(
        self, bad: dict[str, tuple[str, list[str]]], valid: set[str], data: DraftInput
    ) -> CitationRepair:
        rows = self._candidates(bad, data)
        invalid = sorted({c for _t, cites in bad.values() for c in cites if c not in valid})
        claims = "\n".join(
            json.dumps({"ref": ref, "text": text, "cited": cites}, ensure_ascii=False)
            for ref, (text, cites) in bad.items()
        )
        values = {
            "invalid_ids": ", ".join(invalid) or "(none: the sentences below cite nothing)",
            "valid_ids": ", ".join(r.id for r in rows) or "(none)",
            "claims": claims.replace("<", "\\u003c").replace(">", "\\u003e"),
            "timeline": rows_block(to_compact(r) for r in rows),
        }
        out = self.call("repair", "repair.v1.md", values, CitationRepair)
        assert isinstance(out, CitationRepair)
        return out

    @staticmethod
    def _apply(
        pm: Postmortem,
        bad: dict[str, tuple[str, list[str]]],
        fixes: CitationRepair,
        valid: set[str],
    ) -> int:
        repaired = 0
        for fix in fixes.fixes:
            if fix.ref not in bad:
                continue
            target = _resolve(pm, fix.ref)
            if target is None:
                continue
            new = [c.strip("[] ") for c in fix.cites]
            kept = [c for c in target.citations if c in valid]
            merged = list(dict.fromkeys(kept + [c for c in new if c in valid]))
            if any(c in valid for c in new):
                repaired += 1
            target.citations = merged
        return repaired

    @staticmethod
    def _sweep(pm: Postmortem, valid: set[str], stats: dict[str, Any]) -> None:
        for name in CLAIM_SECTIONS:
            kept: list[Claim] = []
            for claim in getattr(pm, name):
                good = [c for c in claim.citations if c in valid]
                stats["citations_dropped"] += len(claim.citations) - len(good)
                if good:
                    claim.citations = good
                    kept.append(claim)
                else:
                    stats["claims_dropped"] += 1
                    by = stats["dropped_by_section"]
                    by[name] = by.get(name, 0) + 1
            setattr(pm, name, kept)
        for item in pm.action_items:
            good = [c for c in item.citations if c in valid]
            stats["citations_dropped"] += len(item.citations) - len(good)
            item.citations = good


def _resolve(pm: Postmortem, ref: str) -> Any:
    match = re.fullmatch(r"([a-z_]+)\[(\d+)\]", ref.strip())
    if match is None:
        return None
    items = getattr(pm, match.group(1), None)
    index = int(match.group(2))
    if not isinstance(items, list) or index >= len(items):
        return None
    return items[index]
