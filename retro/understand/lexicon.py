"""Structure read out of a sentence with the word classes in data/lexicon.v1.yaml.

The classifier says *what* a sentence is (a cause, a follow-up, an impact report); these
helpers read *details* out of it: a stated clock time and its zone, who reported a problem,
the work a follow-up asks for, the kind of that work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from retro.errors import ConfigError
from retro.understand.labels import data_text


@cache
def lexicon() -> dict[str, Any]:
    raw: Any = yaml.safe_load(data_text("lexicon.v1.yaml"))
    if not isinstance(raw, dict) or not {"times", "reporters", "follow_up", "action_types"} <= set(
        raw
    ):
        raise ConfigError("retro/understand/data/lexicon.v1.yaml is incomplete", hint="reinstall")
    return raw


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) if not any(c in w for c in "()[]?|") else w for w in words)


def _any_word(words: list[str]) -> re.Pattern[str]:
    """One of the words, whole, longest first, any case."""
    return re.compile(rf"\b({_alternation(sorted(words, key=len, reverse=True))})\b", re.I)


# --- stated times --------------------------------------------------------------------------------

# hours, minutes, optional seconds ("14:12:40 local": the zone word follows the seconds)
_CLOCK = (
    r"(?<![\w.:])(?P<h>2[0-3]|[01]?\d)(?!\d)(?:[:.h](?P<m>[0-5]\d)(?::[0-5]\d(?![\d:]))?)?"
    r"\s*(?P<ampm>[ap]\.?m\.?)?"
)


@dataclass(frozen=True)
class StatedTime:
    """A clock time written in a sentence, resolved to UTC."""

    at: datetime
    relation: str  # "onset", "end" or "at"
    zone: str  # "UTC", "local", an IANA name, or "" when the writer gave none
    span: tuple[int, int]


@cache
def _time_pattern() -> re.Pattern[str]:
    t = lexicon()["times"]
    before = _alternation(sorted(t["onset_before"] + t["end_before"], key=len, reverse=True))
    approx = _alternation(t["approximate"])
    zones = _alternation(sorted(t["zones"], key=len, reverse=True))
    return re.compile(
        rf"(?:\b(?P<rel>{before})\s+)?(?:(?:{approx})\s*)?{_CLOCK}"
        rf"(?:\s*(?:\(|,)?\s*(?P<zone>{zones})\b\)?)?",
        re.IGNORECASE,
    )


_HHMM = r"(?<![\w.:])(?:[01]?\d|2[0-3])[:.h][0-5]\d(?:\s*[ap]\.?m\.?)?(?![\w:])"


@cache
def _range_pattern() -> re.Pattern[str]:
    t = lexicon()["times"]
    joiners = _alternation(sorted(t["range_joiners"], key=len, reverse=True))
    approx = _alternation(t["approximate"])
    return re.compile(
        rf"{_HHMM}\s*(?:[a-z]{{2,5}}\s*)?(?:{joiners})\s*(?:(?:{approx})\s*)?{_HHMM}",
        re.IGNORECASE,
    )


def states_range(text: str) -> bool:
    """The sentence states a span of time ("9:41 to about 11:22"), not a single moment."""
    return _range_pattern().search(text) is not None


def stated_times(text: str, sent_at: datetime, local: tzinfo) -> list[StatedTime]:
    """Clock times in `text` that name a moment on the day it was written, in UTC.

    A time needs minutes ("14:05", "9.15") or am/pm ("9am") so that counts are not read as
    hours. Without a zone word, the reading (UTC or the incident's zone) that lands closest
    before the message wins: people state recent times.
    """
    t = lexicon()["times"]
    onset = {w.casefold() for w in t["onset_before"]}
    zones: dict[str, str] = {k.casefold(): v for k, v in t["zones"].items()}
    out: list[StatedTime] = []
    for m in _time_pattern().finditer(text):
        if m["m"] is None and m["ampm"] is None:
            continue
        hour, minute = int(m["h"]), int(m["m"] or 0)
        if m["ampm"]:
            if hour > 12:
                continue
            hour = hour % 12 + (12 if m["ampm"].lower().startswith("p") else 0)
        zone_word = (m["zone"] or "").casefold()
        zone_name = zones.get(zone_word, "")
        if zone_name == "other":
            continue  # someone else's clock, in a zone nobody named
        candidates: list[tzinfo]
        if zone_name == "local":
            candidates = [local]
        elif zone_name:
            candidates = [_zone(zone_name)]
        else:
            candidates = [UTC, local]
        readings = [_on_day(sent_at, hour, minute, tz) for tz in candidates]
        past = [r for r in readings if r <= sent_at + timedelta(minutes=2)]
        when = max(past) if past else min(readings)
        rel = (m["rel"] or "").casefold()
        relation = "onset" if rel in onset else "end" if rel else "at"
        out.append(StatedTime(when, relation, zone_name or "", m.span()))
    return out


def _on_day(sent_at: datetime, hour: int, minute: int, tz: tzinfo) -> datetime:
    local = sent_at.astimezone(tz)
    stated = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if stated > local + timedelta(hours=12):  # "23:50" written at 00:10 means yesterday
        stated -= timedelta(days=1)
    return stated.astimezone(UTC)


@cache
def _zone(name: str) -> tzinfo:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def local_zone(name: str | None) -> tzinfo:
    """The incident's zone from incident.yaml, else UTC."""
    return _zone(name) if name else UTC


# --- signals ---------------------------------------------------------------------------------------


@cache
def _quiet_severities() -> frozenset[str]:
    return frozenset(str(s).casefold() for s in lexicon()["signals"]["quiet_severities"])


@cache
def _symptoms() -> re.Pattern[str]:
    return _any_word(lexicon()["signals"]["symptom_words"])


@cache
def _failures() -> re.Pattern[str]:
    return _any_word(lexicon()["signals"]["failure_words"])


_CLAUSE_END = re.compile(r"[,;.!?](?:\s|$)|\s(?:but|and then|while|whereas)\s")


def names_failure_at(text: str, span: tuple[int, int]) -> bool:
    """The clause around `span` (a stated time) names a failure (lexicon
    `signals.failure_words`): "config push started 06:02, errors since 06:12" dates the
    errors at 06:12 only."""
    start = max((m.end() for m in _CLAUSE_END.finditer(text, 0, span[0])), default=0)
    end = next((m.start() for m in _CLAUSE_END.finditer(text, span[1])), len(text))
    return names_failure(text[start:end])


def names_failure(text: str) -> bool:
    """The text names a failure (lexicon `signals.failure_words`: errors, failing, down, …)."""
    return _failures().search(text) is not None


def symptom_alert(text: str) -> bool:
    """An alert about what users feel (errors, latency, availability), not a resource."""
    return _symptoms().search(text or "") is not None


@cache
def _signal(name: str) -> re.Pattern[str]:
    """A pattern of lexicon `signals` (said_mitigated, alerts_resolved, alert_hold)."""
    return re.compile(lexicon()["signals"][name], re.I)


def said_mitigated(sentence: str) -> bool:
    """A responder states the incident is mitigated, in so many words."""
    return _signal("said_mitigated").search(sentence.strip()) is not None


def no_effect(sentence: str) -> bool:
    """The sentence reports a step that changed nothing ("rollback done, no change")."""
    return _signal("no_effect").search(sentence) is not None


def states_impact_ended(sentence: str) -> bool:
    """The sentence says when the impact ended, in so many words ("customer impact ended …")."""
    return _signal("impact_ended").search(sentence) is not None


def dismisses(sentence: str) -> bool:
    """The sentence sets a signal aside: not urgent, not customer facing, expected load."""
    return _signal("dismissed").search(sentence) is not None


def says_ongoing(sentence: str) -> bool:
    """The sentence says the impact goes on ("still reporting errors"), `signals.ongoing`."""
    return _signal("ongoing").search(sentence) is not None


def denies_recovery(sentence: str) -> bool:
    """The sentence says the service is not recovering ("back to 81%, not recovering")."""
    return _signal("not_recovered").search(sentence) is not None


def about_alerts_resolving(sentence: str) -> bool:
    """The sentence reports alerts or checks resolving: the signals, not the incident."""
    return _signal("alerts_resolved").search(sentence) is not None


def alert_hold_minutes(text: str) -> int | None:
    """Minutes an alert's condition held before it fired, when its text says ("… for 5m")."""
    m = _signal("alert_hold").search(text or "")
    return int(m.group(1)) if m else None


def quiet_severity(severity: object) -> bool:
    """True for an alert level that usually pages nobody ("warning", "info")."""
    return str(severity or "").strip().casefold() in _quiet_severities()


# --- reporters ---------------------------------------------------------------------------------


@cache
def _customer_pattern() -> re.Pattern[str]:
    return _any_word(lexicon()["reporters"]["customer"])


@cache
def _ticket_ref() -> re.Pattern[str]:
    return re.compile(lexicon()["reporters"]["ticket_from"], re.IGNORECASE)


def names_customers(text: str) -> bool:
    """True when a sentence speaks of customers, users or support as the ones reporting, or
    cites a support ticket from an organisation ("#48213 from Harbourline Logistics")."""
    return _customer_pattern().search(text) is not None or _ticket_ref().search(text) is not None


# --- follow-ups --------------------------------------------------------------------------------


@cache
def _follow_up_patterns() -> tuple[
    re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str]
]:
    f = lexicon()["follow_up"]
    markers = re.compile(rf"^\s*(?:{'|'.join(f['markers'])})\s*[:,\-–—]\s*", re.I)
    frames = re.compile(rf"^\s*(?:{'|'.join(f['frames'])})\s+", re.I)
    pronoun = re.compile(rf"^\s*(?:{'|'.join(f['pronoun_only'])})\s*[.!?]*\s*$", re.I)
    hedge = re.compile(rf"^\s*(?:{'|'.join(f['hedges'])})\b", re.I)
    return markers, frames, pronoun, hedge


# list markers before an item: bullets, quotes, "1." or "2)", not a number the item starts
# with ("9 to 12 minutes per pop is too slow")
_LEAD_JUNK = re.compile(r"^(?:[\s>*•·\-–—.)\]]+|\(?\d{1,2}[.)](?!\d)\s*)+")
# A ticket's key leading a list line ("PLAT-1880 Kill switch …") is not part of the work.
_KEY = r"\b[A-Z][A-Z0-9_]+-\d+\b"  # a tracker key: "PLAT-1880"
_LEAD_KEY = re.compile(rf"^{_KEY}[\s:–—-]*")
_TRAIL_JUNK = re.compile(
    r"[\s.!,;:…]+$|\s*(?:(?<![\w:]):[a-z][a-z0-9_+\-]{1,30}:|[\U0001F300-\U0001FAFF☀-➿])+\s*$"
)
_MARKS = re.compile(r"\s*\[E[0-9a-f]{4,16}\]")
_PROHIBITION = re.compile(
    r"^no\s+(?![,.!?]|idea\b|one\b|way\b|problem\b|worries\b)\S+(?:\s+\S+){2,}", re.I
)
_TICKET_KEY = re.compile(_KEY)
_ARTICLE = re.compile(r"^(a|an|the|some|more|better)\s", re.I)
_PRONOUN_SUBJECT = re.compile(r"^(it|this|that|they|these|those)\b", re.I)


def follow_up_title(sentence: str, *, max_len: int = 140, listed: bool = False) -> str | None:
    """The work a follow-up sentence asks for, as an instruction ("Add an alert on X"), or None
    when the sentence is a hedge, names no work, or only points at something said before.
    `listed`: a line of a follow-ups list, where "No X during Y" is a rule to adopt."""
    markers, frames, pronoun, hedge = _follow_up_patterns()
    text = _MARKS.sub("", sentence).strip()
    text = _LEAD_KEY.sub("", _LEAD_JUNK.sub("", text))
    unframed = text
    text = markers.sub("", text)
    if hedge.search(text):
        return None
    for _ in range(3):  # frames can stack: "going forward we need to make sure ..."
        stripped = frames.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    text = _TRAIL_JUNK.sub("", text).strip().strip("\"'“”`")
    infinitive = text[3:] if text[:3].casefold() == "to " else None
    if infinitive is not None and (
        _leads_with_verb(infinitive)
        or infinitive.split(" ", 1)[0].casefold() in lexicon()["end_states"]["detect_leads"]
    ):
        text = infinitive  # "we must to add …", "AI: to page on …": the infinitive's "to"
    if (need := _follow_up_pattern("need_noun").match(text)) is not None:
        rest = text[need.end() :]
        text = rest if _ARTICLE.match(rest) else f"{lexicon()['follow_up']['noun_verb']} {rest}"
    first_clause = re.split(r"\s*[,;:—–]\s+", text, maxsplit=1)[0]
    if not text or _PRONOUN_SUBJECT.match(text) or _bookkeeping(text):
        return None
    if pronoun.match(text) or pronoun.match(first_clause):
        return None  # "rotate it once we're out of this, I'll add a follow-up"
    clauses = re.split(r"\s*[,;]\s+", text)
    if (
        len(clauses) >= 2
        and pronoun.match(frames.sub("", clauses[-1], count=1))
        and len(clauses[0].split()) <= 5
        and not _leads_with_verb(text)
    ):
        return None  # "Good point on the runbook, let's do that too": agreeing, not the work
    if re.match(r"^\w+,\s", text):
        return None  # "Do, and add it to the follow-ups": an answer to a question, not work
    if len(_TICKET_KEY.findall(text)) >= 2 and not _leads_with_verb(text):
        return None  # "OPS-17, OPS-18, OPS-19, more after the review": where the items are
    requirement = _follow_up_pattern("requirement").match(text) is not None
    stated_as_requirement = requirement or _wish_patterns()[0].match(text) is not None
    if text == unframed and _PASSIVE_REPORT.match(text):
        return None  # "Opsgenie alert auto-closed by Alertmanager": what happened, not work
    rule = listed and _PROHIBITION.match(text) is not None  # "No deploys on Fridays without …"
    if len(text.split()) < 3 or (_reports(text) and not stated_as_requirement):
        return None
    if _remark(text) and not rule:
        return None
    if (needed := _follow_up_pattern("needed").match(text)) is not None:
        text = f"{lexicon()['follow_up']['noun_verb']} {needed['thing']}{needed['rest']}"
        requirement = stated_as_requirement = True  # "a runbook is needed": add the runbook
    commands = _leads_with_verb(text)
    if (
        _follow_up_pattern("copula_remark").match(text)
        and not stated_as_requirement
        and not commands
    ):
        return None  # "history is in the review": how things are, not work
    if _ARTICLE.match(text) and not requirement and _follow_up_pattern("said_of").match(text):
        return None  # "the hit ratio warning is too noisy": a remark, not a thing to add
    if _follow_up_pattern("inference").search(text):
        return None  # "R10 must mean the app crashed": a conclusion, not an obligation
    if _follow_up_pattern("state_note").match(text):
        return None  # "incident.io -> Fixing": a status noted, not work
    if not stated_as_requirement and not commands and _follow_up_pattern("done_report").match(text):
        return None  # "the read-back check merged as change 91": work done, not work to do
    if _follow_up_pattern("done_clause").search(text):
        return None  # "I already pushed the fix, so that one is done": done, not to do
    if _ARTICLE.match(text) and not requirement:
        text = f"{lexicon()['follow_up']['noun_verb']} {text[0].lower()}{text[1:]}"
    if len(text) > max_len:
        short = _shorten(text, max_len)
        if short is None:
            return None
        text = short
    return text[0].upper() + text[1:]


@cache
def _imperative_leads() -> re.Pattern[str]:
    f = lexicon()["follow_up"]
    ends = lexicon()["end_states"]
    verbs = [*f["imperative_leads"], *ends["in_place"], *ends["participles"]]
    return re.compile(rf"^(?:{'|'.join(sorted(verbs, key=len, reverse=True))})\b", re.I)


def _leads_with_verb(text: str) -> bool:
    """An instruction: the text starts with a verb of work ("make sure", "add", "rotate")."""
    return _imperative_leads().match(text) is not None


@cache
def _follow_up_pattern(name: str) -> re.Pattern[str]:
    """A pattern of lexicon `follow_up`: `requirement` (a subject and a modal, kept as it is,
    not a noun phrase to "Add"), `copula_remark`, `said_of`, `state_note`, `done_report`,
    `done_clause`, `subjectless`, `first_verb`, `marker_as_verb`, `need_noun`, `needed`,
    `inference`, `proposal`, `agreement`."""
    return re.compile(lexicon()["follow_up"][name], re.I)


@cache
def _wish_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    f = lexicon()["follow_up"]
    return re.compile(f["wish"], re.I), re.compile(f["wish_expectation"], re.I)


def states_wish(sentence: str) -> bool:
    """A requirement on a system in any words ("the dry run should list each id"), not an
    expectation ("should refill in 10 min") or hindsight ("should have")."""
    wish, expectation = _wish_patterns()
    text = sentence.strip()
    return (
        wish.search(text) is not None
        and expectation.search(text) is None
        and not text.endswith("?")
    )


@cache
def _another_lead() -> re.Pattern[str]:
    leads = _alternation(lexicon()["follow_up"]["another_leads"])
    return re.compile(rf"^\W*(?:{leads})\b", re.I)


def opens_another(sentence: str) -> bool:
    """The sentence opens a further item ("Also: …", "And we should …": lexicon
    `follow_up.another_leads`)."""
    return _another_lead().match(sentence) is not None


@cache
def _not_imperative() -> frozenset[str]:
    return frozenset(w.casefold() for w in lexicon()["follow_up"]["not_imperative"])


def _remark(text: str) -> bool:
    """A title that starts like a remark ("there's a flag", "should be possible")."""
    first = text.split(" ", 1)[0].casefold().strip(",.:;!")
    return first in _not_imperative()


_NOT_PAST = frozenset(
    [
        "need",
        "feed",
        "embed",
        "seed",
        "shed",
        "speed",
        "bleed",
        "proceed",
        "exceed",
        "succeed",
        "breed",
        "heed",
        "weed",
        "reseed",
    ]
)


def _reports(text: str) -> bool:
    """A title that starts with a past or progressive verb reports work ("subscribed the
    channel", "moving the status page"), it does not ask for it."""
    first = text.split(" ", 1)[0].casefold().strip(",.:;")
    if first in _NOT_PAST or len(first) < 5:
        return False
    return first.endswith(("ed", "ing"))


# A short subject, then a past participle with its agent: a report in the passive voice.
_PASSIVE_REPORT = re.compile(
    r"^(?!(?:we|i|you|they|let'?s)\b)(?:[\w/.+'-]+\s+){1,4}?(?:auto-?)?[a-z]{2,}(?:ed|en)\s+by\b",
    re.I,
)


def _shorten(text: str, max_len: int) -> str | None:
    """The first whole clause that fits, never a cut word or an open parenthesis."""
    for sep in (" so that ", " because ", "; ", " — ", " - ", ", which ", " (", ", "):
        head = text.split(sep, 1)[0]
        if len(head) <= max_len and len(head.split()) >= 3:
            return head.rstrip(" ,;:")
    return None


@cache
def _type_patterns() -> list[tuple[str, re.Pattern[str]]]:
    types = lexicon()["action_types"]
    return [
        (name, re.compile(rf"\b({_alternation(sorted(words, key=len, reverse=True))})", re.I))
        for name, words in types.items()
        if name != "examples"
    ]


def action_type(title: str) -> str:
    """investigate, detect, prevent, mitigate, repair or process.

    The leading verb decides first ("Document the failover" is process work); otherwise the
    first class, in the file's order, with a word in the title.
    """
    verb = title.split(" ", 1)[0]
    for name, pattern in _type_patterns():
        if pattern.match(verb):
            return name
    for name, pattern in _type_patterns():
        if pattern.search(title):
            return name
    return "prevent"


# --- statements ----------------------------------------------------------------------------------


@cache
def _statement_patterns() -> tuple[re.Pattern[str], list[tuple[re.Pattern[str], str]]]:
    s = lexicon()["statement"]
    fillers = re.compile(
        rf"^(?:(?:{_alternation(sorted(s['fillers'], key=len, reverse=True))})\b[\s,:;.!-]*)+", re.I
    )
    # "us west", "us-east-1": a region, not "us"
    region = rf"(?!\s*(?:{_alternation(s['us_regions'])})\b)"
    persons = [
        (re.compile(rf"\b{re.escape(k)}\b(?![-/]){region if k == 'us' else ''}", re.I), v)
        for k, v in sorted(s["first_person"].items(), key=lambda kv: -len(kv[0]))
    ]
    return fillers, persons


_EMOJI = re.compile(
    r"(?<![\w:]):[a-z][a-z0-9_+\-]{1,30}:(?![\w:])|[\U0001F300-\U0001FAFF\u2600-\u27BF]"
)
_MENTION_LEAD = re.compile(r"^(?:@\S+\s*)+")


_I = r"(?<![\w.'])i"
# "I think" -> "the SRE thinks": the verb agrees with the role
_I_VERB = re.compile(
    rf"{_I}\s+((?:really|also|just|still)\s+)?(think|want|need|guess|see|know|suggest|agree|"
    r"believe|feel|mean|hope|prefer|expect|assume|doubt)\b",
    re.I,
)


def _third_person(who: str) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        verb = m[2]
        ending = "es" if verb.casefold().endswith(("s", "sh", "ch", "x")) else "s"
        return f"{who} {m[1] or ''}{verb}{ending}"

    return replace


_SELF = (
    (re.compile(rf"{_I}(?:'|’)?m\b|{_I} am\b", re.I), "{who} is"),
    (re.compile(rf"{_I}(?:'|’)?ve\b|{_I} have\b", re.I), "{who} has"),
    (re.compile(rf"{_I}(?:'|’)?ll\b|{_I} will\b", re.I), "{who} will"),
    (re.compile(rf"{_I}(?:'|’)d\b", re.I), "{who} would"),
    (re.compile(r"\bmy\b", re.I), "{who}'s"),
    (re.compile(rf"{_I}(?![\w.'’])", re.I), "{who}"),
)


def _pronoun(repl: str) -> Callable[[re.Match[str]], str]:
    """A first-person word's replacement; "US" in capitals is the country or region
    ("US-West"), not "us"."""

    def sub(m: re.Match[str]) -> str:
        return m.group(0) if m.group(0) == "US" else repl

    return sub


def statement(sentence: str, speaker: str = "") -> str:
    """A chat sentence as a report sentence: fillers, emoji and leading mentions dropped,
    "we" made "the team" and "I" the speaker's role, a capital letter and a full stop."""
    fillers, persons = _statement_patterns()
    text = _MARKS.sub("", sentence)
    text = _EMOJI.sub("", text)
    text = _MENTION_LEAD.sub("", text.strip())
    text = fillers.sub("", text).strip(" -–—:,")
    for pattern, repl in persons:
        text = pattern.sub(_pronoun(repl), text)
    who = speaker or "a responder"
    text = _I_VERB.sub(_third_person(who), text)
    for pattern, repl in _SELF:
        text = pattern.sub(repl.format(who=who), text)
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…\"”')" else text + "."


@cache
def _ruled_out() -> re.Pattern[str]:
    words = lexicon()["ruled_out"]
    return re.compile(rf"({_alternation(sorted(words, key=len, reverse=True))})", re.I)


@cache
def _ruled_out_fragment() -> re.Pattern[str]:
    return re.compile(lexicon()["ruled_out_fragment"], re.I)


_NEGATED = re.compile(
    r"\b(?:not|never|no|isn't|wasn't|aren't|weren't|n't)\s+(?:\w+\s+){0,2}$", re.I
)


def rules_out(text: str) -> bool:
    """True when a sentence discards a theory ("not the deploy", "DNS was a red herring"), and
    not when it denies that ("it is very much not a false alarm")."""
    if _ruled_out_fragment().match(text):
        return True
    for m in _ruled_out().finditer(text):
        negative = m.group(0).casefold().startswith(("not ", "n't", "didn't", "did not", "wasn't"))
        if negative or not _NEGATED.search(text[: m.start()]):
            return True
    return False


_IDENTIFIER = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)+(?![\w-])")


def identifiers(text: str) -> frozenset[str]:
    """Names of systems, hosts and changes in a text: words joined by "-" or "_"
    ("payments-api", "CHG-214", "auto_bootstrap"), not compounds of plain English ("on-call")."""
    common = _common_compounds()
    return frozenset(
        low
        for m in _IDENTIFIER.finditer(text)
        if len(low := m.group(0).casefold()) >= 5
        and low not in common
        and not all(len(part) <= 2 for part in re.split(r"[-_]", low))
    )


@cache
def _common_compounds() -> frozenset[str]:
    return frozenset(w.casefold() for w in lexicon()["common_compounds"])


def short_names(names: Iterable[str]) -> dict[str, str]:
    """Short name -> full name for systems whose last name part no other system shares
    ("rank" -> "lexis-rank"), leaving out words for people and roles."""
    data = lexicon()["short_names"]
    not_names = {w.casefold() for w in data["not_names"]}
    found: dict[str, set[str]] = {}
    for name in {n.casefold() for n in names}:
        last = re.split(r"[-_]", name)[-1]
        if len(last) >= 4 and last != name and last not in not_names:
            found.setdefault(last, set()).add(name)
    return {short: full.pop() for short, full in found.items() if len(full) == 1}


@cache
def _short_subject() -> re.Pattern[str]:
    return re.compile(lexicon()["short_names"]["subject"], re.I)


def full_name(title: str, short: Mapping[str, str]) -> str:
    """A requirement whose subject is a system's short name, with the system named in full
    ("Rank should shed load" -> "lexis-rank should shed load")."""
    m = _short_subject().match(title)
    if m is None or (full := short.get(m["name"].casefold())) is None:
        return title
    return full + title[m.end("name") :]


def discards(text: str) -> bool:
    """The sentence's point is that something was not the cause ("the gateway roll out is not
    it, it was still in us-west"), not a statement that uses the words to introduce one ("this
    is the symptom, not the cause: the queue is unbounded")."""
    return rules_out(text) and _labelled(text) is None


def _labelled(text: str) -> tuple[re.Match[str], int] | None:
    """The ruling-out words used as a label ("Ruled out: …", "not the cause: …"), with where
    the text after the colon starts."""
    m = _ruled_out().search(text)
    label = re.match(r"\s*:\s*", text[m.end() :]) if m is not None else None
    return (m, m.end() + label.end()) if m is not None and label is not None else None


_CLAUSE = re.compile(r"\s*[,;:]\s+|\s+(?:but|and|so|because)\s+", re.I)
_COPULA_END = re.compile(r"\s+(?:is|was|are|were|'s)(?:\s+(?:a|an|the|just|all))?\s*$", re.I)


def ruled_out_subject(text: str) -> str:
    """What a sentence that rules out a theory names, without the words that rule it out
    ("payments-api deploy ruled out" -> "payments-api deploy")."""
    if _ruled_out_fragment().match(text):
        return re.sub(r"^\W*(?:.*?\bnot\s+)", "", text, count=1, flags=re.I)
    if (label := _labelled(text)) is not None:
        # a label: "Ruled out: per-workspace restore (35 min each, …)" names what follows
        rest = text[label[1] :]
        return rest[: next((b.start() for b in _CLAUSE.finditer(rest)), len(rest))].strip()
    m = _ruled_out().search(text)
    if m is not None:  # the clause that rules out: "gateway roll out is not it, it was …"
        start = max((b.end() for b in _CLAUSE.finditer(text, 0, m.start())), default=0)
        end = next((b.start() for b in _CLAUSE.finditer(text, m.end())), len(text))
        text = text[start:end]
    return _COPULA_END.sub("", _ruled_out().sub(" ", text)).strip()


# --- gaps --------------------------------------------------------------------------------------


@cache
def _gap_patterns() -> list[tuple[re.Pattern[str], str]]:
    return [(re.compile(g["pattern"], re.I), g["title"]) for g in lexicon()["gaps"]]


def gap_title(sentence: str) -> str | None:
    """The work a stated missing safeguard implies ("no alert on X" -> "Alert on X"), or None."""
    for pattern, title in _gap_patterns():
        if m := pattern.search(sentence):
            x = re.split(r"\s+(?:so|and|but|which|because|until|when)\s", m.group("x"))[0]
            x = _TRAIL_JUNK.sub("", x).strip().strip("\"'“”`")
            x = re.sub(r"^(?:on|at|for|about)\s+", "", x)  # "nothing alerts on it": not "on it"
            if len(x.split()) < 1 or _PRONOUN_SUBJECT.match(x) or x.casefold() == "them":
                return None
            text = title.replace("{x}", x).replace("{1}", m.group(1) if m.groups() else "")
            return text[0].upper() + text[1:]
    return None


# --- owners and markers ---------------------------------------------------------------------------


@cache
def _owner_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    f = lexicon()["follow_up"]
    self_pattern = re.compile(rf"^\s*(?:{'|'.join(f['self'])})\b", re.I)
    team = re.compile(
        rf"\b(?:the )?([a-z][\w-]*(?: [a-z][\w-]*)?) ({'|'.join(f['team_words'])})\b", re.I
    )
    return self_pattern, team


def owner_in(text: str) -> str | None:
    """ "self" when the writer takes the work, a team the sentence names, or None."""
    self_pattern, team = _owner_patterns()
    if self_pattern.search(text):
        return "self"
    if m := team.search(text):
        name = f"{m.group(1)} {m.group(2)}".lower()
        if not name.startswith(("a ", "an ", "this ", "that ", "our ", "every ")):
            return name
    return None


@cache
def marker_split() -> re.Pattern[str]:
    """Where a follow-up marker ("action item:", "TODO:") starts a new item in a sentence."""
    markers = "|".join(lexicon()["follow_up"]["markers"])
    return re.compile(rf"(?:(?<=\s)|^)(?=(?:{markers})\s*[:\-–])", re.I)


@cache
def names_follow_ups() -> re.Pattern[str]:
    """A line that names follow-up work as such ("Follow-ups I'm writing down:", "next steps")."""
    words = [
        m for m in lexicon()["follow_up"]["markers"] if len(re.sub(r"\[.*?\]|[?\\-]", "", m)) > 3
    ]
    markers = "|".join(words + lexicon()["follow_up"]["list_names"])
    return re.compile(rf"\b(?:{markers})\b", re.I)


def carried_subject(text: str, before: str) -> str | None:
    """The subject a sentence that starts with its modal ("needs a cap", "should refuse …")
    leaves out: the words before the first verb of the sentence before, at most five."""
    f = lexicon()["follow_up"]
    if _follow_up_pattern("subjectless").match(text) is None:
        return None
    m = _follow_up_pattern("first_verb").search(before)
    if m is None:
        return None
    subject = before[: m.start()].strip(" -•*>:")
    words = subject.split()
    if not 1 <= len(words) <= 5 or words[0].casefold() in f["carried_not_subjects"]:
        return None
    return subject


def requirement_subject(title: str) -> str | None:
    """The system a requirement names as its subject ("capctl needs a per-subsystem floor" ->
    "capctl"), or None (a person, a pronoun, an article-led noun, no modal)."""
    m = _follow_up_pattern("requirement_subject").match(title.strip())
    if m is None:
        return None
    subject = m["subject"]
    first = subject.casefold().split()[0]
    if first in lexicon()["follow_up"]["carried_not_subjects"] or _ARTICLE.match(subject):
        return None
    return None if first in _not_imperative() else subject


def continued_title(text: str, title: str, subject: str) -> str | None:
    """A reply that goes on with the items before it ("and print the list of hosts first")
    and asks for work without naming its system, with that system (the subject of the last
    requirement before it) as its subject ("drainctl: print the list of hosts first")."""
    if _follow_up_pattern("continues").search(text) is None:
        return None
    if _follow_up_pattern("requirement_subject").match(title) or _ARTICLE.match(title):
        return None  # it names its own subject: "the restart should be slower too"
    return f"{subject}: {title[0].lower()}{title[1:]}"


def proposes(question: str) -> str | None:
    """The work a question proposes ("should we add X to the load test?"), without its lead,
    or None for any other sentence."""
    text = question.strip()
    lead = _follow_up_pattern("proposal").match(text)
    if lead is None or not text.endswith("?"):
        return None
    return text[lead.end() :].rstrip("?").strip()


def agreed_proposal(question: str, answer: str) -> str | None:
    """The work a question proposes when the answer agrees ("+1", "yes please"), as a title;
    None otherwise."""
    work = proposes(question)
    if work is None or _follow_up_pattern("agreement").match(answer.strip()) is None:
        return None
    return follow_up_title(work)


def refers_back(title: str) -> bool:
    """A follow-up title that points back at something said before ("write that policy",
    "add a test for it"): a restatement, too thin to stand alone."""
    return _follow_up_pattern("refers_back").search(title) is not None


def collects_follow_ups(text: str) -> bool:
    """A message that names follow-ups as such ("follow-ups while it's fresh, in thread pls"),
    not as a verb ("I'll follow up with the vendor")."""
    m = names_follow_ups().search(text)
    return m is not None and _follow_up_pattern("marker_as_verb").match(text, m.end()) is None


@cache
def _bookkeeping_pattern() -> re.Pattern[str]:
    f = lexicon()["follow_up"]
    return re.compile(
        rf"^(?:{'|'.join(f['bookkeeping'])})(?:\s+{f['bookkeeping_when']})?(?:\s+for \w+)?\s*[.!]*\s*$",
        re.I,
    )


def _bookkeeping(text: str) -> bool:
    """Filing the tickets or writing the postmortem: the work is in the tickets, not this."""
    return _bookkeeping_pattern().match(text) is not None
