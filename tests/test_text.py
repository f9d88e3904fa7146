"""The one sentence splitter and overlap measure every stage shares (retro.text)."""

from __future__ import annotations

import pytest

from retro.draft.render import claims_block
from retro.draft.review import claims_from_text
from retro.models import Claim
from retro.text import overlap, split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("The deploy failed. Checkout recovered.", ["The deploy failed.", "Checkout recovered."]),
        # A citation after the full stop belongs to that sentence, also at the end of the text.
        ("Checkout failed. [E0a1b2c3d4e5f6a7b]", ["Checkout failed. [E0a1b2c3d4e5f6a7b]"]),
        (
            "A failed. [E01][E02] B recovered. [E03]",
            ["A failed. [E01][E02]", "B recovered. [E03]"],
        ),
        ("A failed. [E01] [E02]", ["A failed. [E01] [E02]"]),
        # Abbreviations and decimals do not end a sentence; chat's lower case after one does.
        (
            "Latency rose, e.g. on the API to 3.5 seconds. done. next",
            ["Latency rose, e.g. on the API to 3.5 seconds.", "done.", "next"],
        ),
        ("- first item\n- second item", ["first item", "second item"]),
        # A numbered list written on one line: each number after the first starts an item.
        (
            "Plan: 1) scale the workers down 2) turn on the throttle 3) scale back up slowly",
            ["Plan: 1) scale the workers down", "turn on the throttle", "scale back up slowly"],
        ),
        ("(1) roll back\n(2) page the db on-call", ["roll back", "page the db on-call"]),
        # A lone number in parentheses is no list.
        (
            "we have 2) options and step 3) is the slow one",
            ["we have 2) options and step 3) is the slow one"],
        ),
        # An end mark inside brackets the sentence opened does not end it before lower case;
        # a sentence that is itself in brackets ends with them.
        (
            "review every other replace(year=…) in the codebase",
            ["review every other replace(year=…) in the codebase"],
        ),
        (
            "I restarted it (again!) and it held. See the doc (v2.) Then go",
            ["I restarted it (again!) and it held.", "See the doc (v2.)", "Then go"],
        ),
        ("(It was the cache.) then we rolled back", ["(It was the cache.)", "then we rolled back"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_rendered_claims_read_back_with_every_citation() -> None:
    claims = [
        Claim(text="Checkout returned errors for 40 minutes.", citations=["E0a1b2c3d4e5f6a7b"]),
        Claim(text="The release was rolled back.", citations=["E01", "E02"]),
        Claim(text="Error rates returned to normal.", citations=["E1111222233334444"]),
    ]
    # A paragraph section, and a list section item by item (Markdown hands review each item).
    assert claims_from_text(claims_block(claims, paragraph=True)) == claims
    items = claims_block(claims).splitlines()
    assert [c for item in items for c in claims_from_text(item.removeprefix("- "))] == claims


def test_overlap_ignores_function_words_and_word_forms() -> None:
    assert overlap("the deploys failed", "a deploy failing") == pytest.approx(1.0)
    assert overlap("cache stampede", "database failover") == 0.0
