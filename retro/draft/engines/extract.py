"""Cue phrases and sentence extraction for the offline engine. Deterministic, no network."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from retro.draft.engines.base import EvidenceRow
from retro.safety.policy import BLAME, INJECTION

ROOT_CAUSE = re.compile(
    r"\b(root cause|caused by|the cause|culprit|triggered by|due to|because|turn(s|ed)? out|traced (it |this )?(back )?to|"
    r"the (issue|problem|bug) (was|is)|responsible for|the reason|what happened was|resulted in|led to|"
    r"(suspected |likely |probable )?trigger(ed)?|that'?s why|which explains|explains (the|why)|"
    r"(lowered|reduced|raised|increased|changed|dropped|bumped|set) [\w.`' -]{1,40} (from|to) [\w.]+|"
    r"exhaust\w*|starv\w*|too (small|low|high|large|many|few)|caus(e|ed|es|ing)|expired|"
    r"ran [\w -]{0,30}against|(was|were|got|been) (deleted|dropped|truncated|overwritten|wiped)|"
    r"filled( up)?|ran out of|out of (memory|disk|space)|no space left|leak\w*|misconfigur\w+|"
    r"bug in|broke|faulty|partition(ed)?|unbounded|without (a )?(bound|limit|eviction|ttl|timeout)|"
    r"no (eviction|limit|ttl|timeout|backoff)|(don'?t|doesn'?t|never) (see any )?evict\w*|"
    r"would (explain|grow|cause)|working theory|packet loss|(packet|tcp) drops|dropp(ed|ing) packets|"
    r"throttl\w+|saturat\w+|overload\w*|fell behind|(has|have|had) been failing|(0|zero)[- ]bytes?|"
    r"wrong (host|server|box|machine|node|pane|window|terminal|cluster|database|db|region|account)|"
    r"(ran|run|executed) on [\w.-]+[.,]? (and )?not (on )?[\w.-]+|"
    r"(deleted|wiped|removed|truncated|overwritten) (during|while|by))\b",
    re.IGNORECASE,
)
HYPOTHESIS = re.compile(
    r"\b(looks like|seems|suspect\w*|hypothes\w+|likely|i think|found|confirmed|correlat\w+|smoking gun|"
    r"lines up|coincides)\b",
    re.IGNORECASE,
)
TECH = re.compile(
    r"\b(deploy\w*|config\w*|change\w*|flag|migration|cert\w*|expir\w+|disk|memory|oom|cpu|pool|limit\w*|"
    r"quota|dns|network|partition|timeout\w*|connection\w*|database|db|replica\w*|index|query|cache|"
    r"credential\w*|token|secret|leak|capacity|saturat\w+|bug|regression|version|upgrade|release|rollout|"
    r"backup|restore|delet\w+|drop\w*|rule|threshold|queue|lock\w*|route|bgp|load balancer|lb|tls|ssl)\b",
    re.IGNORECASE,
)
MITIGATION_ACTION = re.compile(
    r"\b(roll(ed|ing)? ?back|revert\w*|restart\w*|failover|failed over|fail over|scal(ed|ing) (up|out)|"
    r"restor\w+|re-?deploy\w*|disabl\w+ the|turn(ed)? off|drain\w*|re-?rout\w+|patch\w*|hotfix\w*|"
    r"renew\w*|rotat\w+|increas\w+|bump\w*|flush\w*|purg\w+|block\w*|silenc\w+|fix (is )?(out|deployed))\b",
    re.IGNORECASE,
)
IMPACT = re.compile(
    r"\b(customers?|users?|merchants?|requests?|orders?|checkouts?|payments?|logins?|errors?|5\d\d|"
    r"latency|p9\d|timeouts?|traffic|revenue|sign-?ups?|transactions?|downtime|unavailable|degraded)\b",
    re.IGNORECASE,
)
NUMBER = re.compile(
    r"\b\d+([.,]\d+)?\s?(%|percent|k\b|ms\b|s\b|x\b|rps|qps|customers|users|orders|requests)?",
    re.IGNORECASE,
)
WENT_POORLY = re.compile(
    r"\b(took (too |a )?(long|while)|confus\w+|unclear|couldn'?t find|can'?t find|no runbook|outdated|"
    r"didn'?t know|missing (dashboard|alert|runbook|metric)\w*|hard to|noisy|no alert|nobody (was )?paged|"
    r"slow to|stale|wrong (dashboard|runbook)|no access|permission denied|silently|undone|undid|"
    r"no signal|didn'?t catch|not obvious|wasn'?t obvious|flapp\w*|re-?applied)\b",
    re.IGNORECASE,
)
WENT_WELL = re.compile(
    r"\b(runbook (worked|helped|was (useful|helpful|accurate))|quick(ly)?|fast|smooth\w*|worked (well|as expected)|"
    r"caught (it )?early|nice (work|catch)|great (work|catch)|good (call|catch))\b",
    re.IGNORECASE,
)
LUCKY = re.compile(
    r"\b(lucky|luckily|fortunately|thankfully|by chance|happened to|low traffic|off-?peak|"
    r"could have been (much )?worse|close call|near miss)\b",
    re.IGNORECASE,
)
FOLLOW_UP = re.compile(
    r"(?:\baction items?\s*[:\-]|\bAI\s*:|\bfollow[- ]?ups?\s*[:\-]|\btodo\s*[:\-]|\bto-do\s*[:\-]|"
    r"\bwe (?:really )?need (?:to|a|an)\b|\bwe should\b(?! have)|\blet'?s (?:add|make|create|set up|get|write|put|build)\b|"
    r"\bnext time,? we\b|\bgoing forward,? we\b|\b(?:file|open|create) a ticket (?:to|for)\b|"
    r"\bwe(?:'ll| will) (?:add|need|write|create|set up|build)\b)",
    re.IGNORECASE,
)
SOURCE_PREFIX = re.compile(r"^[A-Z][A-Z0-9_]+-\d+ (comment|note):\s*")
FILLER = re.compile(
    r"^(ok(ay)?|so|ah|hm+|well|yeah|yep|alright|right|fyi|update|btw|also|and|ok so)[,:!.\s]+",
    re.IGNORECASE,
)
NEGATED = re.compile(
    r"\b(ruled out|unrelated|no sign|red herring|not (the|a) (cause|culprit|issue|problem)|"
    r"(isn'?t|wasn'?t|is not|was not) (it|the (cause|culprit|issue|problem)))\b",
    re.IGNORECASE,
)
RESOLUTION_TALK = re.compile(
    r"\b((is|has been|been) (resolved|fixed|mitigated)|monitoring the results|we are monitoring|"
    r"back to normal|all clear)\b",
    re.IGNORECASE,
)

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Za-z0-9\"'(\[@#`])|\n+")
_ABBREVIATION = re.compile(
    r"\b(e\.g|i\.e|vs|etc|approx|incl|no|fig|cf|mr|ms|dr|st)\.$", re.IGNORECASE
)


def split_sentences(text: str) -> list[str]:
    """Sentences, also when people skip the capital letter after a full stop ("done. next")."""
    parts: list[str] = []
    for piece in _SENTENCE.split(text):
        if parts and _ABBREVIATION.search(parts[-1]):
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return parts


@dataclass(frozen=True)
class Sentence:
    row: EvidenceRow
    text: str


def sentences(row: EvidenceRow) -> list[Sentence]:
    """Clean sentences of one row's text, without blame, injection or quoted code noise."""
    return [Sentence(row, text) for text in _clean_sentences(row.text)]


@lru_cache(maxsize=131072)
def _clean_sentences(text: str) -> tuple[str, ...]:
    out = []
    for raw in split_sentences(SOURCE_PREFIX.sub("", text)):
        clean = FILLER.sub("", raw.strip(" \t-*>•")).strip()
        clean = re.sub(r"\s+", " ", clean)
        if len(clean) < 12 or len(clean) > 400 or clean.startswith("```"):
            continue
        if BLAME.search(clean) or INJECTION.search(clean):
            continue
        out.append(clean[0].upper() + clean[1:])
    return tuple(out)


def usable(row: EvidenceRow) -> bool:
    """Rows whose words can be quoted as evidence: people's messages and comments."""
    return row.kind in ("message", "comment", "note", "status_page_update") and not _injected(
        row.text
    )


@lru_cache(maxsize=131072)
def _injected(text: str) -> bool:
    return INJECTION.search(text) is not None


def rank(
    rows: list[EvidenceRow],
    cue: re.Pattern[str],
    *,
    boost: re.Pattern[str] | None = None,
    skip_negated: bool = True,
    require_boost: bool = False,
    limit: int = 3,
) -> list[Sentence]:
    """The sentences matching a cue, best first, one per row, distinct text."""
    scored: list[tuple[float, int, Sentence]] = []
    for pos, row in enumerate(rows):
        if not usable(row):
            continue
        best: tuple[float, Sentence] | None = None
        for sent in sentences(row):
            hits = len(cue.findall(sent.text))
            if not hits or (skip_negated and NEGATED.search(sent.text) and cue is not WENT_POORLY):
                continue
            boosts = len(boost.findall(sent.text)) if boost else 0
            if require_boost and not boosts:
                continue
            score = hits * 2.0 + boosts
            score += 0.5 if sent.text.endswith("?") is False else -2.0
            score += pos / max(len(rows), 1)  # later statements tend to be conclusions
            if best is None or score > best[0]:
                best = (score, sent)
        if best is not None:
            scored.append((best[0], -pos, best[1]))
    scored.sort(key=lambda item: (-item[0], item[1]))
    picked: list[Sentence] = []
    for _, _, sent in scored:
        if all(_overlap(sent.text, p.text) < 0.6 for p in picked):
            picked.append(sent)
        if len(picked) >= limit:
            break
    return picked


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.casefold()) if len(w) > 2}


def _overlap(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / max(1, min(len(wa), len(wb)))


def quote(sent: Sentence) -> str:
    """A claim that attributes a sentence to its speaker's role."""
    text = sent.text.rstrip()
    if text[-1] not in ".!?":
        text += "."
    who = sent.row.actor or "a responder"
    is_name = who.startswith("@") or all(w[:1].isupper() and not w.isupper() for w in who.split())
    if not is_name and not who.startswith(("the ", "a ", "an ")):
        who = f"the {who}"
    verb = (
        "commented"
        if sent.row.kind == "comment"
        else "posted"
        if sent.row.kind == "status_page_update"
        else "wrote"
    )
    return f"{who[0].upper() + who[1:]} {verb}: “{text}”"
