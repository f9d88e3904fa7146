"""Names of people outside the incident (customers, vendors) that sit next to their email."""

from __future__ import annotations

import pytest

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
