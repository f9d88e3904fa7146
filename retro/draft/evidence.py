"""Prepare the evidence an engine sees: redacted text, and people as roles instead of names."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from retro.draft.engines.base import DraftInput, EvidenceRow, ScoredSentence
from retro.models import Metrics, Milestone, Person, Timeline
from retro.safety.names import lower_surnames, not_names, owned_things, slotted, system_words
from retro.safety.names import unlisted as unlisted_names
from retro.safety.redact import Redactor
from retro.timeline.people import normalize_name

_SENIORITY = re.compile(
    r"\b(senior|sr\.?|junior|jr\.?|staff|principal|lead|head of|chief|ii|iii|iv|i|associate|intern)\b",
    re.IGNORECASE,
)
_TITLE_ROLES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), role)
    for p, role in (
        (r"\bsre\b|site reliability", "SRE"),
        (r"database|dba\b|postgres|mysql", "database engineer"),
        (r"network", "network engineer"),
        (r"security", "security engineer"),
        (r"support|customer success|cx\b", "support engineer"),
        (r"engineering manager|eng manager|\bem\b", "engineering manager"),
        (r"product manager|\bpm\b", "product manager"),
        (r"devops|platform|infrastructure|infra\b", "platform engineer"),
        (r"data engineer", "data engineer"),
        (r"front.?end|web", "frontend engineer"),
        (r"back.?end", "backend engineer"),
        (r"communications|comms|pr\b", "communications lead"),
        (r"director|vp\b|cto|vice president", "engineering leader"),
        (r"engineer|developer|swe", "engineer"),
    )
)
COMMON_WORDS = frozenset(
    [
        "will",
        "may",
        "june",
        "april",
        "mark",
        "bill",
        "rob",
        "pat",
        "sam",
        "max",
        "art",
        "grant",
        "bob",
        "jack",
        "ray",
        "dawn",
        "faith",
        "hope",
        "joy",
        "chase",
        "page",
        "case",
        "lee",
        "long",
        "young",
        "king",
        "rose",
        "victor",
        "summer",
        "sky",
        "river",
        "the",
        "and",
        "all",
        "new",
    ]
)


# --- sanitising: chat markup and control characters never reach an engine or the draft ---------

# Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks) and the
# two-character escapes; then C0/C1 control characters (NUL included; tab and newlines stay),
# and the bidirectional overrides and isolates that make text display in another order than
# it reads (U+202A-U+202E, U+2066-U+2069).
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]?|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Links and images, as Markdown and HTML write them. Evidence keeps what a reader saw (a link's
# text, an image's alt text) and a plain web address; a script, data or file address, an
# image (a tracking pixel loads when the draft is viewed) and HTML tags are dropped.
_DANGEROUS = r"(?:(?:java|vb|live)script:(?=\S)|data:[\w.+-]+/[\w.+-]+[;,]|file://)"
_MD_IMAGE = re.compile(r"!\[([^\[\]\n]*)\]\(([^()\n]*(?:\([^()\n]*\)[^()\n]*)*)\)")
_MD_LINK = re.compile(r"\[([^\[\]\n]*)\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?[^()\n]*\)")
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^<>\s]*)>")
_HTML_IMG = re.compile(r"<img\b[^<>]*>", re.IGNORECASE)
_HTML_ALT = re.compile(r"\balt\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", re.IGNORECASE)
_HTML_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>", re.DOTALL)
_BARE_DANGEROUS = re.compile(
    r"\s?\(\s*" + _DANGEROUS + r"[^\s]*\)|(?<![\w])" + _DANGEROUS + r"[^\s\]>\"']*",
    re.IGNORECASE,
)
_SAFE_SCHEME = re.compile(r"(?:https?|mailto|ftp)://|mailto:", re.IGNORECASE)
_NEEDS_WORK = re.compile(
    r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069<\[]|" + _DANGEROUS,
    re.IGNORECASE,
)


def strip_controls(text: str) -> str:
    """text without terminal escapes, control characters (but tab and newlines) and bidi overrides."""
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    return _CONTROLS.sub("", text)


def _image(match: re.Match[str]) -> str:
    return match.group(1).strip()


def _link(match: re.Match[str]) -> str:
    label, url = match.group(1).strip(), match.group(2).strip()
    if not url or not _SAFE_SCHEME.match(url):
        return label  # javascript:, data:, relative or unknown addresses: the text only
    return url if not label or label == url else f"{label} ({url})"


def _autolink(match: re.Match[str]) -> str:
    url = match.group(1)
    return url if _SAFE_SCHEME.match(url) else ""


def _html_image(match: re.Match[str]) -> str:
    alt = _HTML_ALT.search(match.group(0))
    return (alt.group(1) or alt.group(2) or "").strip() if alt else ""


def sanitize(text: str) -> str:
    """Evidence text as plain text: no markup that could render, load or run in the draft.

    Links keep their visible text (and a web address, written out); images, HTML tags and
    script, data or file addresses are dropped; so are terminal escapes, control characters
    and bidi overrides.
    """
    if not text or not _NEEDS_WORK.search(text):
        return text
    text = strip_controls(text)
    if "[" in text:
        text = _MD_IMAGE.sub(_image, text)
        text = _MD_LINK.sub(_link, text)
    if "<" in text:
        text = _HTML_IMG.sub(_html_image, text)
        text = _AUTOLINK.sub(_autolink, text)
        text = _HTML_TAG.sub("", text)
    return _BARE_DANGEROUS.sub("", text)


def role_for(person: Person, oncall: set[str]) -> str:
    """A role label for one person, from incident roles, paging and profile titles."""
    if person.is_bot:
        return f"{person.name or 'bot'} (bot)"
    if "incident commander" in person.roles:
        return "incident commander"
    title_role = next(
        (
            role
            for pattern, role in _TITLE_ROLES
            for title in person.titles
            if pattern.search(_SENIORITY.sub("", title))
        ),
        None,
    )
    if person.key in oncall:
        return "on-call SRE" if title_role == "SRE" else "on-call engineer"
    return title_role or "responder"


def assign_roles(timeline: Timeline) -> dict[str, str]:
    """person key -> unique role label ("database engineer 2" when two share a role)."""
    oncall = {
        e.actor.person
        for e in timeline.events
        if e.kind in ("page_acknowledged", "page_assigned") and e.actor and e.actor.person
    }
    order: list[str] = []
    for event in timeline.events:
        key = event.actor.person if event.actor else None
        if key and key not in order:
            order.append(key)
    order += [k for k in timeline.people if k not in order]
    base = {key: role_for(timeline.people[key], oncall) for key in order if key in timeline.people}
    totals = Counter(base.values())
    seen: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for key, role in base.items():
        seen[role] += 1
        labels[key] = (
            role if totals[role] == 1 or role.endswith("(bot)") else f"{role} {seen[role]}"
        )
    return labels


@dataclass
class NameScrubber:
    """Replaces every known name, handle and email of a person with their role, in one pass."""

    pattern: re.Pattern[str] | None = None
    roles: dict[str, str] = field(default_factory=dict)
    mentions: bool = False  # replace @handles of people the bundle does not name, too
    # replace listed given names of people the bundle does not name (retro.safety.names),
    # except these words, which the incident uses inside identifiers
    unlisted: frozenset[str] | None = None
    # replace capitalised words where chat puts a person ("thanks X", "X said") that no list
    # holds, except these words, which the incident shows are not names (retro.safety.names)
    not_names: frozenset[str] | None = None
    # lower-case surnames the incident writes only after a given name ("gustavo pellegrini");
    # with them, given names in lower case are replaced too
    surnames: frozenset[str] | None = None
    # a person's things named after them ("the dana-laptop"): group 1 the name, 2 the thing
    owned: re.Pattern[str] | None = None

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if self.owned is not None:
            text = self.owned.sub(
                lambda m: f"{self.roles.get(m.group(1).casefold(), 'a teammate')}'s {m.group(2)}",
                text,
            )
        if self.pattern is not None:
            text = self.pattern.sub(
                lambda m: self.roles.get(m.group(1).casefold(), m.group(0)), text
            )
        if self.mentions:
            text = MENTION.sub(_mention, text)
        if self.unlisted is not None:
            for start, end in reversed(unlisted_names(text, self.unlisted, self.surnames)):
                text = text[:start] + "a teammate" + text[end:]
        if self.not_names is not None:
            for start, end in reversed(slotted(text, self.not_names)):
                text = text[:start] + "a teammate" + text[end:]
        return text


# An @mention that no role replaced: a person outside the timeline's actors, or a handle the
# export did not resolve. Not an email, a URL's user@host, or @here/@channel.
MENTION = re.compile(r"(?<![\w.:/\]\[`-])@([A-Za-z][\w.-]{1,40})(?![\w@-])")
GROUP_MENTIONS = frozenset({"here", "channel", "everyone", "oncall", "on-call"})


def _mention(match: re.Match[str]) -> str:
    handle = match.group(1)
    if handle.casefold() in GROUP_MENTIONS or "." in handle.rstrip(".") and handle.count(".") > 1:
        return match.group(0)
    return "a teammate"


def name_patterns(
    people: dict[str, Person],
    labels: dict[str, str],
    systems: frozenset[str] = frozenset(),
    text: str = "",
) -> NameScrubber:
    """A scrubber for each person's names, handles and emails in free text, and for listed
    given names nobody in `people` has (`systems`: words the incident uses as systems). `text`,
    all the incident's text, tells which short forms of long given names people use."""
    first_names = Counter(
        p.name.split()[0].casefold() for p in people.values() if p.name and not p.is_bot
    )
    roles: dict[str, str] = {}
    short: dict[str, str] = {}
    owners: dict[str, str] = {}
    for key, person in people.items():
        if person.is_bot:
            continue
        role = f"the {labels.get(key, 'responder')}"
        variants = {person.name, person.handle, *person.handles, *person.emails}
        parts = person.name.split() if person.name else []
        if len(parts) > 1:
            first = parts[0]
            if (
                first_names[first.casefold()] == 1
                and len(first) > 2
                and first.casefold() not in COMMON_WORDS
            ):
                variants.add(first)
            if len(parts[-1]) > 3 and parts[-1].casefold() not in COMMON_WORDS:
                variants.add(parts[-1])
            variants.update(_usernames(parts))
            if first_names[first.casefold()] == 1:
                for form in _short_forms(first):
                    short.setdefault(form, role)
        for variant in variants:
            if variant and len(variant) > 2:
                roles.setdefault(variant.casefold(), role)
        if parts:
            for form in _owner_forms(parts[0]):
                owners.setdefault(form, role)
    for form in _used_as_names(short, text, systems):
        roles.setdefault(form, short[form])
    if not roles:
        return NameScrubber(mentions=True, unlisted=systems)
    alternation = "|".join(re.escape(v) for v in sorted(roles, key=len, reverse=True))
    pattern = re.compile(r"(?<![\w.@/-])@?(" + alternation + r")(?![\w@-]|\.\w)", re.IGNORECASE)
    # a system word elsewhere ("marc" in "marc-sandbox" is one), but joined to a thing a
    # person owns it is the person's
    owners |= {v: r for v, r in roles.items() if v.isalpha()}
    things = "|".join(map(re.escape, owned_things()))
    names = "|".join(re.escape(v) for v in sorted(owners, key=len, reverse=True))
    owned = re.compile(
        rf"(?:\b(?:the|a|an|my|our|his|her|their)\s+)?(?<![\w.@/-])({names})-({things})(?![\w-])",
        re.IGNORECASE,
    )
    return NameScrubber(pattern, roles | owners, mentions=True, unlisted=systems, owned=owned)


OWNER_FORM_LEAST = 4


def _owner_forms(first: str) -> set[str]:
    """A given name and its heads of four letters or more, case-folded: "rafa" of "Rafael" in
    "rafa-test", as a person names their own things."""
    low = first.casefold()
    if not low.isalpha() or low in COMMON_WORDS:
        return set()
    return {low[:n] for n in range(OWNER_FORM_LEAST, len(low) + 1)} | {low}


_ADDRESS = re.compile(r"\S*@\S*|https?://\S+")
SHORT_FORM_FROM = 7  # given names this long have short forms: "Seun" for "Oluwaseun"
SHORT_FORM_LEAST = 4


def _short_forms(first: str) -> set[str]:
    """The heads and tails of a long given name that can be its short form ("Alex" and
    "Xander" of "Alexander", "Seun" of "Oluwaseun"), case-folded."""
    low = first.casefold()
    if len(low) < SHORT_FORM_FROM or not low.isalpha():
        return set()
    sizes = range(SHORT_FORM_LEAST, len(low) - 1)
    return {low[:n] for n in sizes} | {low[-n:] for n in sizes}


def _used_as_names(forms: dict[str, str], text: str, systems: frozenset[str]) -> set[str]:
    """The short forms the incident writes only as names: capitalised wherever they stand alone,
    never in lower case (a word: "asia" of "Anastasia" in "asia-east1" or "than"), never a
    system's word or a common one."""
    if not forms or not text:
        return set()
    text = _ADDRESS.sub(" ", text)  # a login spells its owner's name in lower case
    alternation = "|".join(sorted(map(re.escape, forms), key=len, reverse=True))
    capital: set[str] = set()
    other: set[str] = set()
    for m in re.finditer(rf"(?<![^\W\d_])(?:{alternation})(?![^\W\d_])", text, re.IGNORECASE):
        word, start, end = m.group(0), m.start(), m.end()
        alone = (start == 0 or text[start - 1] not in "-_") and (
            end == len(text) or text[end] not in "-_"
        )
        titled = word[0].isupper() and word[1:].islower()
        if titled and alone:
            capital.add(word.casefold())
        elif not titled:
            other.add(word.casefold())  # "asia-east1", "than": a word, not only a name
    return {f for f in capital - other if f not in systems and f not in COMMON_WORDS}


def incident_texts(timeline: Timeline) -> list[str]:
    """The words a timeline holds: event texts, services and string attributes."""
    texts = [*timeline.incident.services]
    for event in timeline.events:
        texts.append(event.text)
        texts.extend(v for v in event.attrs.values() if isinstance(v, str))
    return texts


def scrubber_for(timeline: Timeline, names: bool = False) -> NameScrubber:
    """The one scrubber a draft uses for every text it shows: people as roles, and given names
    nobody in the bundle has as "a teammate" (none of it with names=True)."""
    if names:
        return NameScrubber()
    texts = incident_texts(timeline)
    systems = system_words(texts)
    scrubber = name_patterns(timeline.people, assign_roles(timeline), systems, "\n".join(texts))
    bots = [p.name or "" for p in timeline.people.values() if p.is_bot]
    sources = [s.name for s in timeline.sources]
    scrubber.not_names = not_names(texts, [*bots, *sources, *timeline.incident.services])
    scrubber.surnames = lower_surnames("\n".join(texts), systems)
    return scrubber


def _usernames(parts: list[str]) -> set[str]:
    """Login-style spellings of a name: dana.whitfield, dana_whitfield, dwhitfield, dana.w."""
    first, last = normalize_name(parts[0]), normalize_name(parts[-1])
    if not first or not last:
        return set()
    return {
        f"{first}.{last}",
        f"{first}_{last}",
        f"{first}{last}",
        f"{first[0]}{last}",
        f"{first}.{last[0]}",
    }


def scrub_names(text: str, scrubber: NameScrubber | None) -> str:
    return scrubber(text) if scrubber else text


def known_names(people: dict[str, Person]) -> list[str]:
    """Every human name and handle in the timeline: what a draft must never contain.

    An account known only by one lower-case word, with no full name and no email ("api",
    "courier"), is an integration nobody flagged as a bot, not a person: its word is not
    checked (it would flag every "api" in the draft). Its text is still scrubbed like anyone's.
    """
    names: set[str] = set()
    for person in people.values():
        if person.is_bot:
            continue
        real = bool(person.emails) or len((person.name or "").split()) > 1
        for value in (person.name, person.handle, *person.handles):
            if not value or len(normalize_name(value)) <= 2:
                continue
            if not real and value == value.lower() and " " not in value:
                continue
            names.add(value)
        names.update(person.emails)
    return sorted(names)


FACT_KEYS = (
    "status",
    "resolution",
    "to",
    "from",
    "issuetype",
    "key",
    "customer_update",
    "change",
    "environment",
    "alert_name",
    "alertname",
)


def evidence_rows(
    timeline: Timeline,
    *,
    names: bool = False,
    redactor: Redactor | None = None,
    scrubber: NameScrubber | None = None,
) -> list[EvidenceRow]:
    """Every event as an engine may see it: redacted, people as roles (names=False)."""
    redactor = redactor or Redactor()
    labels = assign_roles(timeline)
    patterns = scrubber or scrubber_for(timeline, names)
    id_of_key = {e.key: e.id for e in timeline.events}
    low_trust = {s for s, i in timeline.source_info.items() if i.low_trust}
    end = timeline.window.end if timeline.window else None
    rows = []
    for event in timeline.events:
        person = event.actor.person if event.actor else None
        if names and person in timeline.people:
            p = timeline.people[person]
            actor = f"@{p.handle}" if p.handle else p.name or labels.get(person, "") or ""
        else:
            bot_name = event.actor.name if event.actor and event.actor.is_bot else None
            actor = labels.get(person or "") or bot_name or ""
            if event.actor is not None and event.actor.is_bot:  # a bot's name is free text
                actor = scrub_names(redactor.redact(actor), patterns)
        raw = event.text
        description = event.attrs.get("description") if event.kind == "ticket_created" else None
        if isinstance(description, str) and description.strip():
            raw = f"{raw}\n{description}"
        text = scrub_names(redactor.redact(sanitize(raw)), patterns)
        facts = {
            k: scrub_names(redactor.redact(sanitize(str(v))), patterns)[:120]
            for k in FACT_KEYS
            if isinstance((v := event.attrs.get(k)), str | int) and str(v).strip()
        }
        rows.append(
            EvidenceRow(
                id=event.id,
                at=event.at,
                source=event.source,
                kind=event.kind,
                actor=sanitize(actor or ""),
                text=text,
                thread=id_of_key.get(event.thread or ""),
                linked=list(event.links),
                duplicate=event.duplicate_of is not None,
                human=not event.is_bot
                and event.kind in ("message", "comment", "note")
                and not (event.actor is not None and event.actor.is_bot),
                low_trust=event.source in low_trust or bool(event.attrs.get("low_trust")),
                other_work=bool(event.attrs.get("other_work")),
                facts=facts,
                # a follow-up filed in the incident tool tells the story too, whenever filed
                later=end is not None and event.at > end and not event.attrs.get("follow_up"),
            )
        )
    return rows


def prepare(
    timeline: Timeline,
    milestones: dict[str, Milestone],
    metrics: Metrics,
    *,
    names: bool = False,
    redactor: Redactor | None = None,
    rows: list[EvidenceRow] | None = None,
    sentences: list[ScoredSentence] | None = None,
    understanding_note: str | None = None,
    scrubber: NameScrubber | None = None,
) -> DraftInput:
    """Build what an engine sees. With names=False (the default) people appear as roles."""
    redactor = redactor or Redactor()
    labels = assign_roles(timeline)
    patterns = scrubber or scrubber_for(timeline, names)
    if rows is None:
        rows = evidence_rows(timeline, names=names, redactor=redactor, scrubber=patterns)
    key_ids = {i for m in milestones.values() for i in m.evidence}
    for row in rows:
        row.key_event = row.id in key_ids
    meta = timeline.incident
    sources = sorted({r.source for r in rows})
    return DraftInput(
        incident_id=scrub_names(redactor.redact(sanitize(meta.id)), patterns),
        title=scrub_names(redactor.redact(sanitize(meta.title or "")), patterns) or None,
        severity=scrub_names(redactor.redact(sanitize(meta.severity)), patterns)
        if meta.severity
        else None,
        services=[scrub_names(redactor.redact(sanitize(s)), patterns) for s in meta.services],
        timezone=meta.timezone,
        rows=rows,
        milestones=milestones,
        metrics=metrics,
        roles=sorted(set(labels.values())),
        source_titles={s: timeline.title_of(s) for s in sources},
        sentences=sentences or [],
        roles_of_sources={
            s: sorted(timeline.source_info[s].roles) for s in sources if s in timeline.source_info
        },
        understanding_note=understanding_note,
    )
