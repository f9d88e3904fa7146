"""What an incident is indexed as (its own words), and repeat detection with its threshold."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from index_helpers import HashEmbedder, action, postmortem

from retro.index.content import (
    claim_text,
    own_words,
    plain_text,
    postmortem_chunks,
    postmortem_record,
    templates,
)
from retro.index.repeats import (
    REPEAT_THRESHOLD,
    Profile,
    is_repeat,
    profile_vector,
    profiles_for,
    profiles_from_store,
    repeats,
)
from retro.index.similarity import index_incidents
from retro.index.store import open_store
from retro.text import split_sentences

EVALS = Path(__file__).resolve().parents[1] / "evals"


# --- template wording ----------------------------------------------------------------------------


def test_every_template_matches_its_example() -> None:
    loaded = templates()
    assert len(loaded) >= 20 and len({t.id for t in loaded}) == len(loaded)
    for tpl in loaded:
        assert tpl.pattern.fullmatch(tpl.example), tpl.id
        assert own_words(tpl.example) != tpl.example  # dropped, or cut down to the quotation


@pytest.mark.parametrize(
    ("sentence", "kept"),
    [
        ("Customer-facing impact lasted about 1h 09m, from 13:55 UTC to 15:04 UTC.", ""),
        ("The first acknowledgement came at 09:46 UTC, 4m 25s after detection.", ""),
        ("The on-call SRE wrote: “The pool is exhausted.”", "The pool is exhausted."),
        (
            "A status page update said: “Identified - a fix is rolling out.”",
            "Identified - a fix is rolling out.",
        ),
        ("Alerts that fired: HighErrorRate, HighLatency.", "HighErrorRate, HighLatency"),
        (
            "Changes in the hours before impact: 13:52 UTC: “CHG-7 deployed”; 13:40 UTC: “flag on”.",
            "CHG-7 deployed flag on",
        ),
        (
            "The Postgres pool was exhausted after a deploy.",
            "The Postgres pool was exhausted after a deploy.",
        ),
    ],
)
def test_own_words(sentence: str, kept: str) -> None:
    assert own_words(sentence) == kept


def test_a_claim_loses_only_its_template_sentences() -> None:
    text = (
        "On 2024-07-09, docs-api was impaired from 09:41 UTC until mitigation at 10:05 UTC (23m). "
        "The trigger appears to be a change deployed at 09:17 UTC, shortly before impact began: "
        "“docs-api v5.31.0 promoted to 100%” The incident commander wrote: “Impact has stopped.”"
    )
    assert claim_text(text) == "docs-api v5.31.0 promoted to 100% Impact has stopped."


def test_plain_text_keeps_the_prose_of_a_markdown_document() -> None:
    doc = """---
incident_id: INC-7
status: final
---

# INC-7: Checkout down

> Draft written by retro. People appear as roles.

## Summary

The **checkout** pool ran out of connections after [the deploy](https://x/1). [E1a2b3]

## Milestones and metrics

| Milestone | Time (UTC) |
|---|---|
| Detected | 2024-05-01 10:00 |

```mermaid
flowchart LR
```

## What went poorly

_None found in the evidence._

**Trigger**

- The on-call SRE wrote: “max_connections was lowered to 8.”
<!-- a comment -->
"""
    assert plain_text(doc).splitlines() == [
        "The checkout pool ran out of connections after the deploy.",
        "max_connections was lowered to 8.",
    ]


def test_postmortem_chunks_hold_no_template_wording() -> None:
    pm = postmortem(
        "INC-1",
        "Checkout errors",
        summary="On 2024-05-01, checkout was impaired from 10:00 UTC until mitigation at 10:30 UTC (30m).",
        impact="Customer-facing impact lasted about 30m, from 10:00 UTC to 10:30 UTC.",
        root_cause="The on-call SRE wrote: “The pool was exhausted.”",
        actions=[
            action(
                "Review the paging and escalation policy for checkout so a page is acknowledged within 5 minutes"
            ),
            action("Add an alert on the symptom", origin="gap"),
            action("Cap the pool per pod"),
        ],
    )
    assert {c.field: c.text for c in postmortem_chunks(pm)} == {
        "summary": "Checkout errors.",
        "root_cause": "The pool was exhausted.",
        "context": "Cap the pool per pod.",
    }


def _case_bundles() -> list[Path]:
    from retro.cli.draft import sample_bundle

    cases = sorted(p for p in (EVALS / "cases").iterdir() if (p / "incident.yaml").is_file())
    return [sample_bundle(), *cases]


_DIGITS = re.compile(r"\d+")
_QUOTED = re.compile(r"“[^“”]*”")


def shape(sentence: str) -> str:
    """A sentence with its numbers and quotations masked: what stays the same across incidents."""
    return " ".join(_DIGITS.sub("N", _QUOTED.sub("“…”", sentence)).casefold().split())


@pytest.mark.slow
def test_no_sentence_shape_shared_by_drafts_of_different_incidents_is_indexed() -> None:
    """Template wording is what the drafts of different incidents say alike. Drafts of the
    sample and the eval cases (offline engine) are indexed; no indexed sentence may have the
    shape of one in a draft of two other incidents. A failure names the sentence: add its shape
    to retro/index/data/boilerplate.v1.yaml."""
    from retro.draft.engines.offline import OfflineEngine
    from retro.draft.pipeline import generate

    seen: dict[str, set[str]] = {}
    for bundle in _case_bundles():
        pm = generate(bundle=bundle, engine=OfflineEngine()).postmortem
        for chunk in postmortem_chunks(pm):
            if chunk.field == "context":  # names and action items, not sentences
                continue
            for sentence in split_sentences(chunk.text):
                seen.setdefault(shape(sentence), set()).add(pm.incident_id)
    shared = {s: ids for s, ids in seen.items() if len(ids) >= 3}
    assert not shared, shared


# --- the repeat measure --------------------------------------------------------------------------


def _profile(pid: str, vector: list[float], started: datetime | None = None) -> Profile:
    return Profile(pid, started, profile_vector(np.asarray([vector], dtype=np.float32)))


def test_profile_uses_what_happened_and_why() -> None:
    rows = np.eye(3, dtype=np.float32)
    fields = ["summary", "impact", "root_cause"]
    expected = np.asarray([1, 0, 1], dtype=np.float32) / np.sqrt(2)
    np.testing.assert_allclose(profile_vector(rows, fields), expected, atol=1e-6)
    only_context = profile_vector(rows[:2], ["context", "impact"])  # no profile field: all rows
    np.testing.assert_allclose(only_context, np.asarray([1, 1, 0]) / np.sqrt(2), atol=1e-6)
    assert not profile_vector(np.zeros((0, 3), dtype=np.float32)).any()


def test_is_repeat_at_the_threshold() -> None:
    angle = np.arccos(REPEAT_THRESHOLD)
    a = _profile("A", [1.0, 0.0])
    at = _profile("B", [float(np.cos(angle)) + 1e-6, float(np.sin(angle))])
    below = _profile("C", [float(np.cos(angle + 0.05)), float(np.sin(angle + 0.05))])
    assert is_repeat(a, at) and is_repeat(at, a)
    assert not is_repeat(a, below)
    assert not is_repeat(a, a)  # an incident does not repeat itself


def test_repeats_orders_each_pair_by_time_and_lists_the_best_first() -> None:
    jan, mar = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    profiles = [
        _profile("LATE", [1.0, 0.05, 0.0], mar),
        _profile("EARLY", [1.0, 0.0, 0.0], jan),
        _profile("UNDATED", [1.0, 0.2, 0.0]),
        _profile("OTHER", [0.0, 0.0, 1.0], jan),
    ]
    pairs = repeats(profiles)
    assert [(p.earlier, p.later) for p in pairs] == [
        ("EARLY", "LATE"),
        ("LATE", "UNDATED"),  # undated incidents come after dated ones
        ("EARLY", "UNDATED"),
    ]
    assert pairs[0].score > pairs[1].score > pairs[2].score >= REPEAT_THRESHOLD
    assert repeats(profiles, threshold=0.9999) == []
    assert repeats(profiles, block=1) == pairs  # blocks do not change the answer


def test_profiles_from_the_index_match_profiles_of_the_texts(tmp_path: Path) -> None:
    emb = HashEmbedder()
    pool = postmortem(
        "INC-1",
        "Checkout pool exhausted",
        summary="Orders failed.",
        root_cause="The on-call SRE wrote: “The checkout pool was exhausted after the deploy.”",
        factors="No alert on the pool.",
    )
    cert = postmortem("INC-2", "Certificate expired", root_cause="Renewal failed silently.")
    items = [(postmortem_record(p), postmortem_chunks(p)) for p in (pool, cert)]
    for backend_url in (f"sqlite:///{tmp_path / 'i.db'}",):
        with open_store(backend_url) as store:
            index_incidents(items, store=store, embedder=emb)
            stored = {p.id: p.vector for p in profiles_from_store(store)}
            assert set(stored) == {"INC-1", "INC-2"}
            assert [p.id for p in profiles_from_store(store, ["INC-2"])] == ["INC-2"]
            embedded_before = emb.embedded
            fresh = {p.id: p.vector for p in profiles_for(items, embedder=emb, store=store)}
            assert emb.embedded == embedded_before  # stored vectors were reused
    for pid in stored:
        np.testing.assert_allclose(stored[pid], fresh[pid], atol=1e-5)


# --- the eval that chose the threshold -------------------------------------------------------------


def test_repeats_eval_rule_and_intervals() -> None:
    from evals import repeats as ev

    pairs = ev.Pairs()
    for n in range(30):  # scores 0.30 .. 0.59; same kind above 0.50, and one slip at 0.55
        score = 0.30 + n / 100
        pairs.add(n, n + 100, score, score > 0.50 and n != 25)
    assert ev.choose_threshold(pairs) == 0.50
    precision, recall, flagged = ev.precision_recall(pairs, 0.50)
    assert (flagged, round(precision, 3), recall) == (10, 0.8, 1.0)
    low, high = ev.bootstrap(pairs, 0.50, rounds=200)["precision"]
    assert low <= precision <= high
    assert ev.auc(pairs) > 0.9


def test_repeats_eval_labels_and_split() -> None:
    from evals import repeats as ev

    if not (ev.SHARED / "corpus" / "incident_crossref_labels.json").is_file():
        pytest.skip("../shared/corpus is absent")
    incidents = ev.load_incidents(ev.SHARED)
    assert sum("description" in i.views for i in incidents) == 190
    assert sum("structured" in i.views for i in incidents) == 43
    for inc in incidents:
        assert "uncategorized" not in inc.labels.get("danluu", set())
        for record in inc.views.values():  # labels never reach the indexed text
            text = " ".join(record.values())
            assert not any(
                label in text
                for labels in inc.labels.values()
                for label in labels
                if len(label) > 12
            )
    labelled = next(i for i in incidents if i.labels)
    assert ev.same_kind(labelled, labelled) is True
    assert ev.half_of("x") in ("calibration", "held-out")
    assert {i.half for i in incidents} == {"calibration", "held-out"}
