"""Citation repair: one request to fix unsupported citations, then drop what is still unsupported.

A claim is unsupported when it cites an id that is not in the timeline, cites nothing, or cites
only chat that cannot carry its section (retro.draft.grounding: a "root cause" citing a
greeting). The repair request lists the invalid ids, the valid candidate ids, the claims, and
the candidate rows (the rows that share the most words with the claims, the rows that best carry
each claim's section, and the key events), because a bare list of ids would give the model
nothing to choose by. Afterwards invalid ids are removed everywhere, and claims left with no
valid citation, or still citing nothing that can carry them, are dropped and counted per
section. Action items may cite nothing (gap suggestions), so they lose invalid ids but are kept.
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
from retro.draft.grounding import Grounding
from retro.errors import EngineError
from retro.models import Claim, Postmortem
from retro.text import content_words

Call = Callable[[str, str, dict[str, str], type[BaseModel]], Any]


class Repairer:
    """Validates a draft's citations against the timeline and repairs them once."""

    def __init__(
        self,
        call: Call,
        count: Callable[[str], int],
        *,
        per_claim: int = 12,
        max_rows: int = 80,
        grounding: Grounding | None = None,
    ) -> None:
        self.call = call
        self.count = count
        self.per_claim = per_claim
        self.max_rows = max_rows
        self.grounding = grounding
        self.ungrounded: set[str] = set()

    def run(self, pm: Postmortem, data: DraftInput) -> dict[str, Any]:
        """Repair pm in place; return counts of what was asked, fixed and dropped."""
        valid = {r.id for r in data.rows}
        stats: dict[str, Any] = {
            "requests": 0,
            "claims_repaired": 0,
            "claims_dropped": 0,
            "claims_dropped_ungrounded": 0,
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
                ref = f"{name}[{i}]"
                if not claim.citations or any(c not in valid for c in claim.citations):
                    bad[ref] = (claim.text, list(claim.citations))
                elif not self._grounded(name, claim.citations):
                    bad[ref] = (claim.text, list(claim.citations))
                    self.ungrounded.add(ref)
        for i, item in enumerate(pm.action_items):
            if any(c not in valid for c in item.citations):
                bad[f"action_items[{i}]"] = (item.title, list(item.citations))
        return bad

    def _candidates(
        self, bad: dict[str, tuple[str, list[str]]], data: DraftInput
    ) -> list[EvidenceRow]:
        index = [(row, content_words(row.text)) for row in data.rows]
        by_id = {row.id: row for row in data.rows}
        chosen: dict[str, EvidenceRow] = {r.id: r for r in data.rows if r.key_event}
        for ref, (text, _cites) in bad.items():
            section = ref.split("[", 1)[0]
            if self.grounding is not None and section in CLAIM_SECTIONS:
                for row_id in self.grounding.strongest(section, self.per_claim // 2):
                    chosen.setdefault(row_id, by_id[row_id])
            words = content_words(text)
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
            json.dumps(
                {"ref": ref, "text": text, "cited": cites}
                | (
                    {"problem": "the cited rows do not state this"}
                    if ref in self.ungrounded
                    else {}
                ),
                ensure_ascii=False,
            )
            for ref, (text, cites) in bad.items()
        )
        values = {
            "invalid_ids": ", ".join(invalid) or "(none)",
            "valid_ids": ", ".join(r.id for r in rows) or "(none)",
            "claims": claims.replace("<", "\\u003c").replace(">", "\\u003e"),
            "timeline": rows_block(to_compact(r, grounding=self.grounding) for r in rows),
        }
        out = self.call("repair", "repair.v1.md", values, CitationRepair)
        assert isinstance(out, CitationRepair)
        return out

    def _apply(
        self,
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
            # A claim whose rows could not carry it gets the new ids instead of the old ones.
            kept = [] if fix.ref in self.ungrounded else [c for c in target.citations if c in valid]
            merged = list(dict.fromkeys(kept + [c for c in new if c in valid]))
            if any(c in valid for c in new):
                repaired += 1
            target.citations = merged
        return repaired

    def _grounded(self, section: str, citations: list[str]) -> bool:
        return self.grounding is None or self.grounding.supports(section, citations)

    def _sweep(self, pm: Postmortem, valid: set[str], stats: dict[str, Any]) -> None:
        by = stats["dropped_by_section"]
        for name in CLAIM_SECTIONS:
            kept: list[Claim] = []
            for claim in getattr(pm, name):
                good = [c for c in claim.citations if c in valid]
                stats["citations_dropped"] += len(claim.citations) - len(good)
                if not good:
                    stats["claims_dropped"] += 1
                elif not self._grounded(name, good):
                    stats["claims_dropped"] += 1
                    stats["claims_dropped_ungrounded"] += 1
                else:
                    claim.citations = good
                    kept.append(claim)
                    continue
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
