"""Names of people outside the incident (customers, vendors) that sit next to their email."""

from __future__ import annotations

import pytest

from retro.draft.evidence import name_patterns
from retro.models import Person
from retro.safety.redact import Redactor, redact_text


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            'pasting: "Penelope Hargreaves (p.h@school.example): my whole class lost work"',
            "Penelope Hargreaves",
        ),
        ("> From: Ingrid Solberg <ingrid.solberg@northfjordbank.example>", "Ingrid Solberg"),
        (
            "Hi, Benedikt Sarkar here (benedikt.sarkar@stratocloud.example). We found it",
            "Benedikt Sarkar",
        ),
        ("escalated by Jan van Dijk <jan@vendor.example>", "Jan van Dijk"),
        (
            "> Priya Natarajan, Operations Manager, ops@harbourline.example",
            "Priya Natarajan",
        ),  # a mail signature: the job title sits between name and address
        ("Sam Lee | Head of Ops | sam@vendor.example", "Sam Lee"),
    ],
)
def test_a_name_next_to_an_email_is_redacted(text: str, name: str) -> None:
    out, counts = redact_text(text)
    assert name not in out
    assert counts["person_name"] == 1


def test_names_stay_when_emails_are_kept() -> None:
    assert "Ingrid Solberg" in Redactor(keep_emails=True).redact("Ingrid Solberg <i@x.example>")


def test_capitalized_words_without_an_email_stay() -> None:
    text = "Checkout API returned 503 from Payments Gateway at 14:02"
    assert redact_text(text) == (text, {})


def test_a_short_form_of_a_long_given_name_is_redacted_where_the_incident_uses_it_as_a_name() -> (
    None
):
    """ "Tunde" for Babatunde: a head or tail of a long given name, capitalised wherever it
    stands alone. "Asia" of Anastasia stays where the incident also writes "asia" as a word."""
    people = {
        "U1": Person(key="U1", name="Babatunde Okafor"),
        "U2": Person(key="U2", name="Anastasia Ivanova"),
    }
    labels = {"U1": "database engineer", "U2": "network engineer"}
    text = "pulling in Tunde for the db side\nmoving Asia traffic to asia-east1"
    scrub = name_patterns(people, labels, frozenset(), text)
    assert (
        scrub("Tunde, can you pause the vacuum?")
        == "the database engineer, can you pause the vacuum?"
    )
    assert scrub("Asia traffic is fine") == "Asia traffic is fine"
    assert "Tunde" in name_patterns(people, labels, frozenset(), "")("pulling in Tunde")
