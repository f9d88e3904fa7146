"""Plain-text helpers every stage shares: the one sentence splitter and the one word-overlap
measure, so the engines, milestones, `retro check` and the review round trip cut and compare
text the same way.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# A sentence ends at . ! ? (or a closing quote after one), optionally followed by citation
# marks ("[E1a2b3]"), then whitespace before something that can start a sentence (a citation
# mark cannot: "done. [E1a2b3]" is one sentence with its citation). People in
# chat often skip the capital letter after a full stop ("done. next"), so lower case counts.
_END = re.compile(
    r"(?<=[.!?…])([\"'”’)\]]*)((?:\s*\[E[0-9a-fA-F]{1,16}\])*)\s+"
    r"(?!\[E[0-9a-fA-F]{1,16}\])(?=[\w\"'“‘(\[@#`*•-])"
)
_BREAK = re.compile(r"(?:^|\s*\n)\s*(?:[-*•]\s+|\(?\d{1,2}[.)]\s+)?")
_ABBREVIATION = re.compile(
    r"(?:^|[\s(])(?:e\.g|i\.e|vs|etc|approx|incl|no|fig|cf|mr|mrs|ms|dr|st|ca|est|min|max|avg"
    r"|[A-Z])\.$",
    re.IGNORECASE,
)


# A numbered list written on one line ("plan: 1) scale down 2) turn on the throttle 3) …"):
# each number after the first starts an item, when they count up from 1.
_INLINE_ITEM = re.compile(r"(?:^|(?<=\s))\(?(\d)\)\s+(?=\w)")


def _inline_items(line: str) -> str:
    marks = list(_INLINE_ITEM.finditer(line))
    numbers = [int(m.group(1)) for m in marks]
    if len(marks) < 2 or numbers != list(range(1, len(numbers) + 1)):
        return line
    cuts = [0, *(m.start() for m in marks[1:]), len(line)]
    return "\n".join(line[a:b].strip() for a, b in zip(cuts, cuts[1:], strict=False))


def _inside_brackets(head: str, closing: str) -> bool:
    """An end mark inside brackets the sentence opened, before a word in lower case ("a review
    of every replace(year=…) in the codebase", "restarted it (again!) and"): the brackets
    close, the sentence goes on. A sentence that is itself in brackets ("(It was the cache.)")
    ends with them."""
    if not closing or closing[0] not in ")]":
        return False
    head = head.lstrip()
    return (
        head.count("(") + head.count("[") > head.count(")") + head.count("]")
        and head[:1] not in "(["
    )


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, in order, stripped; bullets, line breaks and the numbers of a
    list written on one line end a sentence.

    Citation marks that follow a sentence stay with it; abbreviations ("e.g.", "vs.") and
    decimal numbers ("3.5") do not end one.
    """
    out: list[str] = []
    if ")" in text:
        text = "\n".join(_inline_items(line) for line in text.split("\n"))
    for line in _BREAK.split(text):
        line = line.strip()
        if not line:
            continue
        start = 0
        pieces: list[str] = []
        for match in _END.finditer(line):
            head = line[start : match.end(2)].strip()
            if _ABBREVIATION.search(line[: match.start(1)]):
                continue
            if line[match.end()].islower() and _inside_brackets(
                line[start : match.start(1)], match.group(1)
            ):
                continue
            pieces.append(head)
            start = match.end()
        pieces.append(line[start:].strip())
        out.extend(p for p in pieces if p)
    return out


# Function words: they carry no topic, so overlap ignores them. This is grammar, not a list of
# incident phrases: it does not change with the incidents retro reads.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "then",
        "so",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "without",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "doing",
        "have",
        "has",
        "had",
        "having",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "i",
        "me",
        "my",
        "we",
        "us",
        "our",
        "you",
        "your",
        "he",
        "him",
        "his",
        "she",
        "her",
        "they",
        "them",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "all",
        "any",
        "each",
        "both",
        "few",
        "more",
        "most",
        "other",
        "some",
        "such",
        "no",
        "nor",
        "not",
        "only",
        "own",
        "same",
        "than",
        "too",
        "very",
        "can",
        "will",
        "just",
        "should",
        "would",
        "could",
        "may",
        "might",
        "must",
        "shall",
        "also",
        "into",
        "over",
        "under",
        "again",
        "further",
        "once",
        "about",
        "above",
        "below",
        "up",
        "down",
        "out",
        "off",
        "until",
        "while",
        "during",
        "before",
        "after",
        "through",
        "between",
        "against",
        "because",
        "get",
        "got",
        "gets",
        "getting",
        "let",
        "lets",
        "ok",
        "okay",
        "yes",
        "yeah",
        "yep",
        "hi",
        "hey",
        "please",
        "thanks",
        "thank",
        "via",
        "per",
        "every",
        "onto",
        "since",
    ]
)
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*[a-z0-9]|[a-z0-9]")
_NUMERIC = re.compile(r"\d+(?:[.,]\d+)*")


def words(text: str) -> list[str]:
    """Lower-case word tokens of `text` (NFKC; dotted and hyphenated identifiers stay whole)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold().replace("’", "'"))


def stem(word: str) -> str:
    """A crude, stable suffix stripper: enough to match alert/alerts/alerting."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word.rstrip("e") if len(word) > 3 else word


def content_words(text: str, stop: frozenset[str] = STOPWORDS) -> frozenset[str]:
    """Stems of the words of `text` that carry meaning: no function words, no bare numbers,
    nothing under three letters."""
    return _content(text, stop)


@lru_cache(maxsize=65536)
def _content(text: str, stop: frozenset[str]) -> frozenset[str]:
    return frozenset(
        stem(w)
        for w in words(text)
        if len(w) > 2 and w not in stop and not _NUMERIC.fullmatch(w.replace(":", ""))
    )


def overlap(a: str, b: str, *, how: str = "jaccard", stop: frozenset[str] = STOPWORDS) -> float:
    """How much two texts share their content words, 0..1: the one word-overlap measure.

    how="jaccard": shared / all (symmetric); how="dice": 2 shared / (|a| + |b|); how="containment":
    shared / |a| (how much of `a` is in `b`).
    """
    return word_overlap(content_words(a, stop), content_words(b, stop), how=how)


def word_overlap(
    left: frozenset[str] | set[str], right: frozenset[str] | set[str], *, how: str = "jaccard"
) -> float:
    """overlap() on word sets already made, for callers that compare one set many times."""
    if not left or not right:
        return 0.0
    shared = len(left & right)
    if how == "jaccard":
        return shared / len(left | right)
    if how == "dice":
        return 2 * shared / (len(left) + len(right))
    if how == "containment":
        return shared / len(left)
    raise ValueError(f"unknown overlap {how!r}")
