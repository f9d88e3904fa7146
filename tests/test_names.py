"""People no user list names stay out of drafts; words and systems that look like names stay in."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from retro.draft.engines.offline import OfflineEngine
from retro.draft.pipeline import DraftResult, generate
from retro.safety.names import given_names, lower_surnames, system_words, unlisted
from tests.bundle_factory import CHAT, msg, write_bundle

ROOT = Path(__file__).resolve().parents[1]


def _found(text: str, exclude: frozenset[str] = frozenset()) -> list[str]:
    return [text[start:end] for start, end in unlisted(text, exclude)]


def test_given_names_of_many_origins_are_listed_and_english_words_are_not() -> None:
    names = given_names()
    assert {"wen", "ines", "priya", "ngozi", "yusuf", "siobhan", "thiago", "ignatius"} <= names
    assert not {"will", "may", "mark", "page", "grant", "aurora", "jan", "sep"} & names
    assert not {"general", "less", "hence", "atlas"} & names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Wen is restarting the primary now", ["Wen"]),
        ("ask Ines’s team about the quota", ["Ines"]),
        ("handing over to Ngozi for the EU morning", ["Ngozi"]),
        ("Will this hold until Monday? Mark it as mitigated in May", []),
        ("the lexis-rank pods and host Maya-01 and @priya and nginx.conf", []),
        ("Lukas Kowalczyk pushed the change", ["Lukas Kowalczyk"]),
        ("Just Tobi's change, Operator: matteo.r", ["Tobi", "matteo.r"]),
    ],
)
def test_unlisted_names_are_found_in_prose_only(text: str, names: list[str]) -> None:
    assert _found(text) == names


def test_a_word_the_incident_uses_in_an_identifier_is_a_system() -> None:
    texts = ["oskar-ingest is leaking fds", "mail priya@example.com", "ping matteo.r or dana_w"]
    systems = system_words(texts)
    assert "oskar" in systems
    assert not {"priya", "matteo", "dana"} & systems  # emails and logins spell people's names
    assert _found("Oskar is down again, Priya is on it", systems) == ["Priya"]


def _drafted(tmp_path: Path, *said: Any) -> DraftResult:
    """The offline draft of the standard bundle with `said` added to its chat."""
    bundle = write_bundle(tmp_path / "bundle", chat=[*CHAT, *said])
    return generate(bundle=bundle, engine=OfflineEngine())


def test_a_person_outside_the_user_lists_never_reaches_the_draft(tmp_path: Path) -> None:
    result = _drafted(
        tmp_path,
        msg("U02", 12.5, "Wen from the storage team says the replica is caught up"),
        msg("U01", 13.0, "thanks, Ines will double-check the pool settings tomorrow"),
        msg("U03", 13.5, "Lukas Kowalczyk from networking is joining the bridge"),
    )
    assert "Wen" not in result.markdown.split()
    assert "Ines" not in result.markdown
    assert "Kowalczyk" not in result.markdown and "Lukas" not in result.markdown
    texts = [row.text for row in result.data.rows]
    assert any("a teammate from the storage team says" in t for t in texts)
    assert any("thanks, a teammate will double-check" in t for t in texts)


def test_a_name_chat_writes_in_lower_case_is_found_with_its_surname() -> None:
    """Chat skips capitals: "siobhan okonkwowski" is a person. A lower-case word is her
    surname only when the incident writes it nowhere else and it is no common English word:
    "yusuf said" keeps its verb; "the thiago cluster" is a system."""
    text = (
        "the carrier's noc (siobhan okonkwowski) says they dropped the route. yusuf said ok. "
        "Siobhan okonkwowski again. restart the thiago cluster"
    )
    surnames = lower_surnames(text)
    assert surnames == {"okonkwowski"}
    found = [text[a:b] for a, b in unlisted(text, frozenset(), surnames)]
    assert found == ["siobhan okonkwowski", "yusuf", "Siobhan okonkwowski"]
    assert _found(text) == ["Siobhan"]  # without the surnames, lower case is not read


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("faker", "names", "english_words")),
    reason="`make names` installs faker, names and english-words; the runtime never needs them",
)
def test_the_shipped_list_is_what_make_names_builds(tmp_path: Path) -> None:
    shipped = (ROOT / "retro" / "safety" / "data" / "first_names.v1.txt").read_text("utf-8")
    code = (
        "import sys; sys.path.insert(0, 'training'); import build_names as b; "
        "print('\\n'.join(b.build()))"
    )
    built = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    listed = [line for line in shipped.splitlines() if line and not line.startswith("#")]
    assert built == listed


def test_a_github_user_with_a_hyphenated_login_is_a_person_not_a_system() -> None:
    from retro.models import Actor
    from retro.timeline.people import looks_like_system

    chat = frozenset({"slack"})
    user = Actor(source="github", id="1", name="mkowal-qs", handle="mkowal-qs", is_human=True)
    assert not looks_like_system(user, chat)
    # with nothing to say who holds it, a hyphenated name outside chat is a system
    assert looks_like_system(Actor(source="github", id="2", name="payouts-gateway"), chat)


def test_a_name_no_list_holds_is_found_where_chat_puts_a_person() -> None:
    import yaml

    from retro.safety.names import not_names, slotted

    raw = yaml.safe_load((ROOT / "retro/safety/data/person_slots.v1.yaml").read_text("utf-8"))
    for ex in raw["examples"]:
        text = ex["text"]
        found = [text[a:b] for a, b in slotted(text, frozenset({"grafana"}))]
        assert found == ex["names"], ex
    # a word the incident writes in lower case, or uses in a host or URL, is not a name
    words = not_names(["the rollout is done", "see https://kaveri.example/x"], ["Slack"])
    assert {"rollout", "kaveri", "slack"} <= words
    assert slotted("thanks Rollout, and thanks Kaveri", words) == []
    # a particle the incident writes in lower case ("van") does not make a surname a word
    text = "Annelies van Boer from Kessler Logistics asked for an ETA"
    assert [text[a:b] for a, b in slotted(text, frozenset({"van"}))] == ["Annelies van Boer"]


def test_things_named_after_a_person_and_a_name_in_brackets_never_reach_the_draft(
    tmp_path: Path,
) -> None:
    """A person's laptop or sandbox named after them ("marco-laptop", "marc-sandbox", a head of
    the given name) is their role's; a full name in brackets after the customer it speaks for
    ("Kestrel Apparel (Ilona Varga) says") is a person no list holds."""
    result = _drafted(
        tmp_path,
        msg("U01", 12.2, "the drop came from the VPN, host marco-laptop, app db-reset"),
        msg("U01", 12.4, "use the marc-sandbox key to try the canary"),
        msg("U03", 12.6, "Kestrel Apparel (Ilona Varga) says their packers are idle"),
    )
    texts = [row.text for row in result.data.rows]
    for name in ("marco", "marc-", "Ilona", "Varga"):
        assert (
            name not in result.markdown.casefold()
            if name.islower()
            else name not in result.markdown
        )
        assert not any(name in t for t in texts), name
    assert any("host the database engineer's laptop" in t for t in texts), texts
    assert any("use the database engineer's sandbox key" in t for t in texts), texts
    assert any("Kestrel Apparel (a teammate) says" in t for t in texts), texts


def test_a_person_named_only_in_a_person_slot_never_reaches_the_draft(tmp_path: Path) -> None:
    chat = [*CHAT, msg("U02", 12.5, "Oluwadamilare said the replica is caught up")]
    bundle = write_bundle(tmp_path / "bundle", chat=chat)
    result = generate(bundle=bundle, engine=OfflineEngine())
    assert "Oluwadamilare" not in result.markdown
    assert any("a teammate said the replica" in row.text for row in result.data.rows)
