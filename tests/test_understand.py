"""The sentence-understanding layer: rules as data, the classifier, the layer, and its honesty."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from retro.errors import ConfigError
from retro.understand import cues as cue_mod
from retro.understand.labels import data_text, labels
from retro.understand.layer import Understanding
from retro.understand.lexicon import (
    about_alerts_resolving,
    action_type,
    agreed_proposal,
    alert_hold_minutes,
    carried_subject,
    collects_follow_ups,
    continued_title,
    denies_recovery,
    dismisses,
    follow_up_title,
    full_name,
    gap_title,
    lexicon,
    local_zone,
    names_customers,
    names_failure_at,
    names_follow_ups,
    no_effect,
    owner_in,
    refers_back,
    requirement_subject,
    rules_out,
    said_mitigated,
    says_ongoing,
    short_names,
    stated_times,
    statement,
    states_impact_ended,
    states_range,
    states_wish,
    symptom_alert,
)
from retro.understand.model import holds, packaged

ROOT = Path(__file__).resolve().parents[1]


def test_every_cue_matches_its_example_and_the_file_validates() -> None:
    table = cue_mod.cues()
    assert len(table) > 50
    for cue in table:
        assert cue.pattern.search(cue.example), cue
    assert {c.label for c in table} == set(labels())  # every label has at least one cue


def test_a_cue_whose_example_does_not_match_is_refused() -> None:
    bad = "cues:\n  - {label: cause, weight: 0.5, pattern: 'caused by', example: 'nothing here'}\n"
    with pytest.raises(ConfigError, match="does not match"):
        cue_mod.parse(bad)
    with pytest.raises(ConfigError, match="unknown label"):
        cue_mod.parse("cues:\n  - {label: nope, weight: 0.5, pattern: 'x', example: 'x'}\n")


def test_the_label_file_and_the_shipped_classifier_agree() -> None:
    model = packaged()
    assert model.labels == labels()
    assert model.full.weights.shape[1] == len(labels())
    for label in labels():
        assert 0 < model.threshold(label) < 1


def test_the_classifier_reads_plain_sentences_no_cue_knows() -> None:
    """Plain reports, in words the cue file does not hold, land on the right label."""
    understanding = Understanding()
    cases = {
        "error rates went back to their usual level a few minutes later": {"recovery"},
        "maybe the new proxy build is mangling the headers?": {"question", "hypothesis"},
        "going to switch traffic over to the standby region": {"mitigation"},
        "next quarter we will add a staging soak test for schema migrations": {"follow_up"},
        "please remember to bring snacks to the offsite": {"off_topic"},
    }
    scores = understanding.score(list(cases))
    for (text, wanted), got in zip(cases.items(), scores, strict=True):
        top = max(got, key=got.__getitem__)
        assert top in wanted, (text, sorted(got.items(), key=lambda kv: -kv[1])[:3])


PLAIN_CAUSES = [
    "the migration locked the orders table",
    "the nightly report job locked the invoices table for forty minutes",
    "the certificate on the payments gateway expired at midnight",
    "a retry loop in the mobile client hammered the auth service",
    "the new index build saturated disk IO on the primary",
    "the config push set the connection limit to 8",
]
PLAIN_RECOVERIES = [
    "error rate returned to baseline",
    "the 5xx graph is flat again at zero",
    "p99 is down to 180ms, same as yesterday",
    "orders are going through again",
    "logins succeed from every region now",
    "the queue is empty and consumers are idle",
    "dashboards show normal traffic since 14:20",
]


def test_plain_reports_of_recovery_and_cause_measured() -> None:
    """The probe of issue 11 (plain sentences no cue list knew): recovery reports were missed 6
    of 7 times by the old phrase lists, plain causes 4 of 4. Measured now, as floors:
    recovery 6/7 carry the label; causes are the most likely label in 3/6 but reach the
    cause threshold in only 1/6 (a known limit, reported in docs/drafts.md)."""
    understanding = Understanding()
    recoveries = understanding.score(PLAIN_RECOVERIES)
    assert sum(holds(s, "recovery") for s in recoveries) >= 6
    causes = understanding.score(PLAIN_CAUSES)
    assert sum(max(s, key=s.__getitem__) == "cause" for s in causes) >= 3
    assert sum(holds(s, "cause") for s in causes) >= 1


def test_policy_words_steer_nothing_when_said_about_systems() -> None:
    """ "failed to start" is a fact about a job, never blame; the layer keeps it."""
    from retro.safety import policy

    assert policy.blame("The backup job failed to start after the deploy.") is None
    assert policy.blame("This is entirely Morgan's fault.") is not None
    assert policy.counterfactual("This could have been much worse.") is None


def test_reading_splits_scores_and_degrades_honestly() -> None:
    class Row:
        def __init__(self, id: str, text: str) -> None:
            self.id, self.kind, self.text = id, "message", text

    rows = [Row("E1", "Disk on db-2 filled up with WAL. We are failing over now.")]
    reading = Understanding().read(rows)
    assert [s.text for s in reading.of("E1")] == [
        "Disk on db-2 filled up with WAL.",
        "We are failing over now.",
    ]
    assert reading.degraded is None
    offline = Understanding(use_embedder=False).read(rows)
    assert offline.degraded is not None or not any(s.embedded for s in offline.sentences)


def test_the_embedding_budget_keeps_big_incidents_fast() -> None:
    understanding = Understanding(budget=3)
    texts = [f"checkout error rate spiked to {n}% after the deploy" for n in range(10)]
    understanding.score(texts)
    assert len(understanding.embedded) == 3


def test_lexicon_examples_hold() -> None:
    lex = lexicon()
    zone = local_zone("Europe/Berlin")
    from datetime import UTC, datetime

    sent = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for ex in lex["times"]["examples"]:
        found = stated_times(ex["text"], sent.replace(hour=23), zone)
        if ex["onset"] is None:  # someone else's clock: no moment
            assert found == [], ex
            continue
        assert found and found[0].relation == "onset", ex
        shown = zone if ex["zone"] == "local" else local_zone(ex["zone"])
        assert found[0].at.astimezone(shown).strftime("%H:%M") == ex["onset"], ex
    for ex in lex["signals"]["failure_examples"]:
        last = stated_times(ex["text"], sent.replace(hour=23), UTC)[-1]
        assert names_failure_at(ex["text"], last.span) is ex["failure"], ex
    for ex in lex["follow_up"]["examples"]:
        assert follow_up_title(ex["text"]) == ex["title"], ex
    for ex in lex["follow_up"]["continues_examples"]:
        title, subject = follow_up_title(ex["text"]), requirement_subject(ex["before"])
        got = continued_title(ex["text"], title, subject) if title and subject else None
        assert got == ex["title"], ex
    for ex in lex["action_types"]["examples"]:
        assert action_type(ex["text"]) == ex["type"], ex
    for ex in lex["reporters"]["examples"]:
        assert names_customers(ex["text"]) == (ex["reporter"] == "customer"), ex
    for ex in lex["follow_up"]["wish_examples"]:
        assert states_wish(ex["text"]) == ex["wish"], ex
    for ex in lex["follow_up"]["list_name_examples"]:
        assert (names_follow_ups().search(ex["text"]) is not None) == ex["names"], ex
    for ex in lex["follow_up"]["not_work_examples"]:
        assert (follow_up_title(ex["text"]) is not None) == ex["work"], ex
    for ex in lex["follow_up"]["carried_examples"]:
        assert carried_subject(ex["text"], ex["before"]) == ex["subject"], ex
    for ex in lex["follow_up"]["collects_examples"]:
        assert collects_follow_ups(ex["text"]) == ex["collects"], ex
    for ex in lex["follow_up"]["refers_back_examples"]:
        assert refers_back(ex["text"]) == ex["refers"], ex
    for ex in lex["signals"]["ongoing_examples"]:
        assert says_ongoing(ex["text"]) == ex["ongoing"], ex
    for ex in lex["follow_up"]["proposal_examples"]:
        assert agreed_proposal(ex["text"], ex["answer"]) == ex["title"], ex
    for ex in lex["short_names"]["examples"]:
        assert full_name(ex["text"], short_names(ex["services"])) == ex["full"], ex
    for ex in lex["follow_up"]["owner_examples"]:
        assert owner_in(ex["text"]) == ex["owner"], ex
    from retro.draft.engines.actions import end_state

    for ex in lex["end_states"]["examples"]:
        assert end_state(ex["title"], ex["type"]) == ex["end_state"], ex
    signals = (
        ("symptom_examples", symptom_alert, "symptom"),
        ("said_mitigated_examples", said_mitigated, "said"),
        ("alert_hold_examples", alert_hold_minutes, "minutes"),
        ("alerts_resolved_examples", about_alerts_resolving, "about_alerts"),
        ("not_recovered_examples", denies_recovery, "denied"),
        ("no_effect_examples", no_effect, "none"),
        ("dismissed_examples", dismisses, "dismissed"),
        ("impact_ended_examples", states_impact_ended, "ended"),
    )
    for key, read, field in signals:
        for ex in lex["signals"][key]:
            assert read(ex["text"]) == ex[field], ex
    for ex in lex["gap_examples"]:
        assert gap_title(ex["text"]) == ex["title"], ex
    for ex in lex["times"]["range_examples"]:
        assert states_range(ex["text"]) == ex["range"], ex
    for ex in lex["ruled_out_examples"]:
        assert rules_out(ex["text"]) == ex["rules_out"], ex
    for ex in lex["statement"]["examples"]:
        assert statement(ex["text"]) == ex["statement"], ex


def test_follow_up_titles_are_never_cut_mid_sentence_or_pronoun_only() -> None:
    long = "we need to " + "make the janitor refuse ids of the wrong type " * 5
    title = follow_up_title(long)
    assert title is None or not title.endswith(("the", "of", "…"))
    assert follow_up_title("do that") is None
    assert follow_up_title("maybe we should add retries") is None
    assert follow_up_title("subscribed this channel to deploy notifications") is None


def test_a_version_number_is_not_a_clock_time() -> None:
    from datetime import UTC, datetime

    assert stated_times("v2.31 shipped", datetime(2024, 5, 1, tzinfo=UTC), local_zone(None)) == []


# --- held-out protection -------------------------------------------------------------------------


HELD_OUT_SETS = (
    "heldout-2",
    "heldout-3",
    "heldout-4",
    "heldout-5",
    "heldout-6",
    "heldout-7",
    "heldout-8",
    "heldout-9",
    "heldout-10",
    "heldout-11",
    "heldout-12",
)


def _heldout_sentences(name: str) -> set[str]:
    """Every sentence-long text of a held-out set's bundles (chat, tickets, transcripts)."""
    found: set[str] = set()
    for path in (ROOT / "evals" / name).rglob("*"):
        if path.suffix not in (".json", ".jsonl", ".csv", ".vtt", ".txt") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for value in re.findall(
            r'"(?:text|body|message|content|summary)"\s*:\s*"((?:[^"\\]|\\.){40,})"', text
        ):
            found.add(" ".join(value.split()).casefold()[:80])
    return found


def _project_texts() -> list[tuple[str, str]]:
    texts = [
        ("cues.v1.yaml", data_text("cues.v1.yaml")),
        ("lexicon.v1.yaml", data_text("lexicon.v1.yaml")),
    ]
    for name in ("policy.v1.yaml", "person_slots.v1.yaml"):
        path = ROOT / "retro" / "safety" / "data" / name
        texts.append((name, path.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "training").rglob("*.jsonl")):
        texts.append((path.name, path.read_text(encoding="utf-8")))
    texts.append(("name_words.txt", (ROOT / "training" / "name_words.txt").read_text("utf-8")))
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name != "test_understand.py":
            texts.append((path.name, path.read_text(encoding="utf-8")))
    return texts


@pytest.mark.parametrize("held_out", HELD_OUT_SETS)
def test_no_held_out_sentence_is_in_rules_training_data_or_tests(held_out: str) -> None:
    heldout = _heldout_sentences(held_out)
    assert len(heldout) > 200  # the held-out set is there and was read
    hits = []
    for name, text in _project_texts():
        flat = " ".join(text.split()).casefold()
        hits += [f"{name}: {s[:60]}" for s in heldout if s in flat]
    assert not hits, "held-out sentences leaked:\n" + "\n".join(hits[:20])


def test_the_training_corpus_is_well_formed() -> None:
    known = set(labels())
    ids: set[str] = set()
    for path in sorted((ROOT / "training" / "sentences").glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            row = json.loads(line)
            assert row["id"] not in ids, (path.name, n)
            ids.add(row["id"])
            assert row["text"].strip() and set(row["labels"]) <= known, (path.name, n)
    assert len(ids) > 7000


def test_metrics_file_reports_each_label_on_the_held_out_split() -> None:
    metrics = json.loads((ROOT / "training" / "metrics.json").read_text(encoding="utf-8"))
    assert set(labels()) <= set(metrics["full"]) and metrics["held_out"] > 1000


def test_labels_file_has_a_description_and_example_per_label() -> None:
    raw = yaml.safe_load(data_text("labels.v1.yaml"))
    for name, info in raw["labels"].items():
        assert info["description"] and info["example"], name
