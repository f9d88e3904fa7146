"""Scoring functions for the evals: each takes plain inputs and returns numbers and evidence.

Definitions and thresholds are documented in evals/README.md; keep the two in step.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from retro.models import Metrics, Milestone
from retro.text import content_words as _content_words
from retro.text import word_overlap

METRIC_KEYS = (
    "time_to_detect_s",
    "time_to_acknowledge_s",
    "time_to_mitigate_s",
    "time_to_resolve_s",
)
EMBED_ACTION_THRESHOLD = 0.5  # MiniLM cosine; calibration pairs in tests/test_evals.py
TOKEN_ACTION_THRESHOLD = 0.3  # Dice of content-word stems, for the fallback matcher
LEXICAL_SUPPORT_THRESHOLD = 0.5  # share of a claim's content words found in the cited rows
EMBED_SUPPORT_THRESHOLD = 0.6  # MiniLM cosine between a claim and its best cited row
SMALL_NUMBER = 10  # bare integers below this are list numbers, counts and role suffixes
TIME_SLACK_S = 60  # printed times and durations are rounded to the minute


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP = _words(
    """a an the and or but if of to in on at by for from with without into onto over under
    about after before during while until since than then that this these those there their
    them they it its is are was were be been being has have had do does did not no nor so such
    as we our us you your he she his her i me my can could would should will may might must
    also just only very more most some any all each every both other which who whom whose what
    when where why how up down out off again once here own same too via per
    wrote said commented posted"""
)
# Hyphenated English words that are not service or host names.
COMPOUNDS = _words(
    """on-call customer-facing follow-up follow-ups root-cause post-mortem e-mail re-run
    roll-back rolled-back long-term short-term real-time end-to-end up-to-date well-known
    high-priority low-priority read-only in-flight off-peak non-zero day-to-day one-off
    self-service write-ahead sign-up sign-in log-in check-in time-to-detect multi-region
    cross-region out-of-band"""
)
# Capitalised words a draft uses that are not person names.
PROPER_WORDS = _words(
    """pagerduty slack grafana alertmanager opsgenie jira prometheus kubernetes github utc
    monday tuesday wednesday thursday friday saturday sunday january february march april may
    june july august september october november december sev incident action the on an a
    customer customers status page"""
)

_TIME = re.compile(r"(?<![\d:])([01]?\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?(?![\d:])")
_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_DURATION = re.compile(
    r"(?<![\w.])(?:(\d+)\s?h(?:ours?|rs?)?)?\s?(?:(\d+)\s?m(?:in(?:ute)?s?)?)?\s?(?:(\d+)\s?s(?:ec(?:ond)?s?)?)?(?![\w])",
    re.IGNORECASE,
)
_DECIMAL_DURATION = re.compile(
    r"(?<![\w.])(\d+\.\d+)\s?(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b", re.IGNORECASE
)
_NUMBER = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d+)*)([A-Za-z%]{0,3})(?![\w])")
_ANY_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_URL = re.compile(r"https?://([^/\s)>\]\"'”]+)[^\s)>\]\"'”]*")
_IDENT = re.compile(r"(?<![\w.@/-])([A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)+)(?![\w@/-])")
_PERSON = re.compile(r"\b([A-Z][a-z]{2,}(?:\s+[A-Z][a-z]{2,})+)\b")
_CITE = re.compile(r"\[E[0-9a-fA-F]{1,16}\]")
# retro's own redaction marks ("[REDACTED:grafana_token]") stand for removed text, not entities.
_REDACTED = re.compile(r"\[REDACTED:[a-z_]+\]")


# --- text normalisation and phrase matching ----------------------------------------------------


def normalize(text: str) -> str:
    """Casefold, unify quotes and dashes, and treat - _ / as spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"[`*“”\"'’‘]", "", text)
    text = re.sub(r"[\s\-‐‑‒–—_/]+", " ", text)
    return text.strip()


def phrase_present(phrase: str, text: str) -> bool:
    """Any " | "-separated alternative occurs in text at word boundaries (plural s/es allowed)."""
    hay = normalize(text)
    for alt in phrase.split("|"):
        needle = normalize(alt)
        if needle and re.search(
            r"(?<![a-z0-9])" + re.escape(needle) + r"(?:s|es)?(?![a-z0-9])", hay
        ):
            return True
    return False


@dataclass
class Recall:
    value: float
    found: list[str]
    missing: list[str]


def fact_recall(facts: Sequence[str], text: str) -> Recall:
    """Share of facts with any alternative present in text; 1.0 when no facts are expected."""
    found = [f for f in facts if phrase_present(f, text)]
    missing = [f for f in facts if f not in found]
    return Recall(len(found) / len(facts) if facts else 1.0, found, missing)


# --- milestones and time-to-X ------------------------------------------------------------------


@dataclass
class MilestoneScore:
    name: str
    expected: datetime
    inferred: datetime | None
    tolerance_min: float
    error_min: float | None
    hit: bool


def score_milestones(
    expected: dict[str, tuple[datetime, float]], inferred: dict[str, Milestone]
) -> tuple[float, list[MilestoneScore]]:
    """Share of expected milestones inferred within tolerance; a missing milestone is a miss."""
    rows: list[MilestoneScore] = []
    for name, (at, tol) in expected.items():
        got = inferred.get(name)
        when = got.at if got else None
        err = abs((when - at).total_seconds()) / 60 if when else None
        rows.append(MilestoneScore(name, at, when, tol, err, err is not None and err <= tol))
    share = sum(r.hit for r in rows) / len(rows) if rows else 1.0
    return share, rows


def metric_errors(expected: Metrics, inferred: Metrics) -> dict[str, float | None]:
    """Absolute error in minutes of each time-to-X metric, None unless both exist."""
    out: dict[str, float | None] = {}
    for key in METRIC_KEYS:
        want, got = getattr(expected, key), getattr(inferred, key)
        out[key] = None if want is None or got is None else round(abs(want - got) / 60, 2)
    return out


# --- similarity: the project's embedder, or a deterministic token overlap ----------------------


def content_words(text: str) -> frozenset[str]:
    """Stems of the non-stop, non-numeric words of text (retro.text, with the scorer's stop
    words: quoting verbs such as "wrote" are not content)."""
    return _content_words(text, STOP)


class Matcher(Protocol):
    name: str
    action_threshold: float

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> list[list[float]]:
        """Pairwise similarities, len(left) rows by len(right) columns."""
        ...


class TokenMatcher:
    """Dice coefficient over content-word stems: deterministic, no model."""

    name = "token-overlap"
    action_threshold = TOKEN_ACTION_THRESHOLD
    support_threshold: float | None = None

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> list[list[float]]:
        lw, rw = [content_words(t) for t in left], [content_words(t) for t in right]
        return [[word_overlap(a, b, how="dice") for b in rw] for a in lw]


class EmbeddingMatcher:
    """Cosine similarity of the project's embedder (all-MiniLM-L6-v2, offline)."""

    name = "embedding:all-MiniLM-L6-v2"
    action_threshold = EMBED_ACTION_THRESHOLD
    support_threshold: float | None = EMBED_SUPPORT_THRESHOLD

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self._cache: dict[str, Any] = {}

    def _vectors(self, texts: Sequence[str]) -> list[Any]:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for text, vec in zip(todo, self.embedder.embed(todo), strict=True):
                self._cache[text] = vec
        return [self._cache[t] for t in texts]

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> list[list[float]]:
        if not left or not right:
            return [[] for _ in left]
        lv, rv = self._vectors(left), self._vectors(right)
        return [[float(a @ b) for b in rv] for a in lv]


def load_matcher(kind: str = "auto") -> tuple[Matcher, str]:
    """The matcher to use and a note on why; `auto` falls back to tokens if the model is unusable."""
    if kind == "token":
        return TokenMatcher(), "token overlap chosen with --matcher token"
    try:
        from retro.index.embeddings import MiniLMEmbedder

        matcher = EmbeddingMatcher(MiniLMEmbedder())
        matcher.similarity(["warm up"], ["warm up"])
        return matcher, "project embedder (retro.index.embeddings.MiniLMEmbedder)"
    except Exception as exc:  # any failure to load or run the model means: fall back, loudly
        if kind == "embedding":
            raise
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return TokenMatcher(), f"FALLBACK to token overlap; embedder unusable ({reason})"


# --- action items ------------------------------------------------------------------------------


@dataclass
class ActionMatch:
    recall: float
    precision: float
    pairs: list[tuple[str, str, float]]
    unmatched_expected: list[str]
    unmatched_drafted: list[str]


def match_actions(expected: Sequence[str], drafted: Sequence[str], matcher: Matcher) -> ActionMatch:
    """One-to-one greedy matching by similarity above the matcher's threshold."""
    sims = matcher.similarity(list(expected), list(drafted))
    scored = sorted(
        ((s, i, j) for i, row in enumerate(sims) for j, s in enumerate(row)),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_e: set[int] = set()
    used_d: set[int] = set()
    pairs: list[tuple[str, str, float]] = []
    for s, i, j in scored:
        if s < matcher.action_threshold:
            break
        if i in used_e or j in used_d:
            continue
        used_e.add(i)
        used_d.add(j)
        pairs.append((expected[i], drafted[j], round(s, 3)))
    recall = len(pairs) / len(expected) if expected else 1.0
    # An empty list of action items earns no precision when some were expected.
    precision = len(pairs) / len(drafted) if drafted else (0.0 if expected else 1.0)
    return ActionMatch(
        recall,
        precision,
        pairs,
        [e for i, e in enumerate(expected) if i not in used_e],
        [d for j, d in enumerate(drafted) if j not in used_d],
    )


# --- figures: times, dates, durations and numbers ---------------------------------------------


@dataclass
class Figures:
    """What the generator may state without quoting it: milestone times, metrics and counts."""

    times: set[str] = field(default_factory=set)  # "HH:MM"
    dates: set[str] = field(default_factory=set)  # "YYYY-MM-DD"
    durations_s: set[int] = field(default_factory=set)
    counts: set[int] = field(default_factory=set)

    @classmethod
    def build(
        cls,
        milestones: dict[str, Milestone],
        metrics: Metrics,
        row_times: Iterable[datetime] = (),
        counts: Iterable[int] = (),
    ) -> Figures:
        """Milestone times and every difference between them, metrics, row times and counts."""
        ats = [m.at for m in milestones.values() if m.at is not None]
        out = cls(counts=set(counts))
        for at in [*ats, *row_times]:
            out.times.add(f"{at:%H:%M}")
            out.dates.add(f"{at:%Y-%m-%d}")
        out.durations_s = {abs(int((a - b).total_seconds())) for a in ats for b in ats}
        out.durations_s |= {v for v in metrics.model_dump().values() if isinstance(v, int)}
        return out

    def has_duration(self, seconds: int) -> bool:
        return any(abs(seconds - d) <= TIME_SLACK_S for d in self.durations_s)

    def has_time(self, hhmm: str) -> bool:
        h, m = (int(x) for x in hhmm.split(":"))
        want = h * 60 + m
        return any(
            abs(want - (int(t[:2]) * 60 + int(t[3:]))) % (24 * 60) in (0, 1, 24 * 60 - 1)
            for t in self.times
        )


def durations(text: str) -> list[tuple[str, int]]:
    """Durations written like the generator ("1h 05m", "28m", "45s") or in words ("40 minutes")."""
    out: list[tuple[str, int]] = []
    for m in _DURATION.finditer(text):
        if not m.group(0).strip() or not any(m.groups()):
            continue
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        out.append((m.group(0).strip(), h * 3600 + mi * 60 + s))
    for m in _DECIMAL_DURATION.finditer(text):
        unit = m.group(2).casefold()
        scale = 3600 if unit.startswith("h") else 60 if unit.startswith("m") else 1
        out.append((m.group(0), int(float(m.group(1)) * scale)))
    return out


def source_numbers(text: str) -> set[str]:
    """Every number in the source text, as normalised strings."""
    return {_norm_number(n) for n in _ANY_NUMBER.findall(text)}


def _norm_number(n: str) -> str:
    n = re.sub(r",(?=\d{3}\b)", "", n)
    return n.rstrip(".,")


def ungrounded_figures(
    text: str, figures: Figures, source_text: str, numbers: set[str]
) -> list[str]:
    """Times, dates, durations and numbers in text that neither the source nor the figures hold."""
    out: list[str] = []
    text = _CITE.sub(" ", text)
    low_source = source_text.casefold()
    for m in _DATE.finditer(text):
        if m.group(0) not in figures.dates and m.group(0) not in source_text:
            out.append(m.group(0))
    text = _DATE.sub(" ", text)
    for m in _TIME.finditer(text):
        hhmm = f"{int(m.group(1)):02d}:{m.group(2)}"
        if not figures.has_time(hhmm) and m.group(0) not in source_text:
            out.append(m.group(0))
    text = _TIME.sub(" ", text)
    for raw, seconds in durations(text):
        if not figures.has_duration(seconds) and raw.casefold() not in low_source:
            out.append(raw)
    text = _DURATION.sub(" ", _DECIMAL_DURATION.sub(" ", text))
    for m in _NUMBER.finditer(text):
        value = _norm_number(m.group(1))
        small = value.isdigit() and int(value) < SMALL_NUMBER
        counted = value.isdigit() and int(value) in figures.counts
        if not (small or counted or value in numbers):
            out.append(m.group(0))
    return out


# --- unsupported entities ----------------------------------------------------------------------


@dataclass
class Entity:
    kind: str  # host, service, number, person
    text: str


def _strip_identifiers(text: str, numbers: set[str] | None) -> tuple[str, list[Entity]]:
    """Pull URLs and dotted/hyphenated identifiers out of text, classified as host or service.

    Versions and decimals (v5.31.0, 99.5) are checked against the source numbers unless
    numbers is None.
    """
    found: list[Entity] = []

    def url(m: re.Match[str]) -> str:
        found.append(Entity("host", m.group(1).casefold()))
        return " "

    text = _URL.sub(url, text)

    def ident(m: re.Match[str]) -> str:
        token = m.group(1)
        low = token.casefold()
        if re.fullmatch(r"v?\d+(?:\.\d+)+", low):
            if numbers is not None and low.lstrip("v") not in numbers:
                found.append(Entity("number", token))
            return " "
        if (
            low in COMPOUNDS
            or all(len(part) == 1 for part in re.split(r"[-_.]", low))  # e.g, i.e, a.m
            or _DATE.fullmatch(token)
            or (token[:1].isupper() and "-" in token and token.replace("-", "").isalpha())
        ):
            return m.group(0)
        kind = "host" if "." in token or re.search(r"\d", token) else "service"
        found.append(Entity(kind, low))
        return " "

    return _IDENT.sub(ident, text), found


def entities(
    text: str, figures: Figures, source_text: str, numbers: set[str], *, check_figures: bool = True
) -> list[Entity]:
    """Hosts, services, numbers and person-like names in text that appear in no source.

    check_figures=False skips numbers: an action item's "within 5 minutes" is a target, not a fact.
    """
    low_source = source_text.casefold()
    text = _REDACTED.sub(" ", _CITE.sub(" ", text))
    rest, idents = _strip_identifiers(text, numbers if check_figures else None)
    out = [e for e in idents if e.kind == "number" or not _in(e.text, low_source)]
    for m in _PERSON.finditer(rest):
        words = m.group(1).split()
        if any(
            w.casefold() in PROPER_WORDS or re.search(rf"\b{w.casefold()}\b", source_text)
            for w in words
        ):
            continue  # a capitalised common word, not a name
        if not _in(m.group(1).casefold(), low_source):
            out.append(Entity("person", m.group(1)))
    if check_figures:
        out += [
            Entity("number", n) for n in ungrounded_figures(rest, figures, source_text, numbers)
        ]
    return out


def _in(needle: str, hay: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(needle) + r"(?![\w])", hay) is not None


# --- citation support --------------------------------------------------------------------------


@dataclass
class Support:
    supported: bool
    overlap: float
    similarity: float | None
    ungrounded: list[str]
    reason: str


def claim_support(
    claim: str,
    rows: Sequence[str],
    *,
    figures: Figures,
    from_milestones: bool = False,
    similarity: float | None = None,
    embed_threshold: float | None = None,
) -> Support:
    """Do the cited rows support the claim? Figures must be grounded, then words or meaning match.

    rows are the cited rows' text (with actor and kind). from_milestones: every cited row is
    evidence for a milestone, so a claim about milestones whose figures all check out against
    the milestones is derived from them, not quoted.
    """
    joined = " ".join(rows)
    bad = ungrounded_figures(claim, figures, joined, source_numbers(joined))
    words = content_words(_CITE.sub(" ", claim))
    row_words = content_words(joined)
    overlap = len(words & row_words) / len(words) if words else 1.0
    if bad:
        return Support(False, overlap, similarity, bad, "figure not in the cited rows")
    if overlap >= LEXICAL_SUPPORT_THRESHOLD:
        return Support(True, overlap, similarity, [], "lexical")
    if similarity is not None and embed_threshold is not None and similarity >= embed_threshold:
        return Support(True, overlap, similarity, [], "embedding")
    if from_milestones and _milestone_claim(claim):
        return Support(True, overlap, similarity, [], "milestone figures")
    return Support(False, overlap, similarity, [], "cited rows do not say this")


MILESTONE_WORDS = re.compile(
    r"\b(impact\w*|impaired|detect\w*|acknowledg\w*|unacknowledged|declared|mitigat\w*|"
    r"resolv\w*|recover\w*|time to|lasted|duration|paged?|alerts? fired)\b",
    re.IGNORECASE,
)


def _milestone_claim(text: str) -> bool:
    """A claim about milestones that states a time or a duration, as the generator writes them."""
    return bool(MILESTONE_WORDS.search(text)) and bool(_TIME.search(text) or durations(text))


def word_count(text: str) -> int:
    return len(re.findall(r"[\w’'-]+", text))
