"""Action items for the offline engine: follow-ups stated in the incident, and evidence gaps."""

from __future__ import annotations

import re

from retro.draft.engines.base import DraftInput, EvidenceRow
from retro.draft.engines.extract import FOLLOW_UP, Sentence, sentences, usable
from retro.models import ActionItem, ActionType, Priority
from retro.safety.policy import VAGUE

_TYPE_RULES: tuple[tuple[re.Pattern[str], ActionType], ...] = tuple(
    (re.compile(p, re.IGNORECASE), t)  # type: ignore[misc]
    for p, t in (
        (
            r"\b(alert\w*|monitor\w*|dashboard|page (on|when)|detect\w*|synthetic|probe|slo|burn.?rate|metric)\b",
            "detect",
        ),
        (
            r"\b(runbook|playbook|process|escalat\w+|on-?call|training|drill|comms|communicat\w+|status page|checklist|document\w*)\b",
            "process",
        ),
        (
            r"\b(canary|validat\w+|guard\w*|limit\w*|test\w*|lint\w*|review|approval|block\w*|prevent\w*|protect\w*|"
            r"automat\w+|expir\w+|renew\w*|rotat\w+|backup|quota|capacity|rate.?limit)\b",
            "prevent",
        ),
        (
            r"\b(why|root cause|understand|figure out|investigat\w+|analy[sz]\w+|determine)\b",
            "investigate",
        ),
        (
            r"\b(roll ?back|failover|fail over|scale|circuit breaker|feature flag|kill switch|fallback)\b",
            "mitigate",
        ),
        (r"\b(fix|repair|patch|restore|clean ?up|migrate|upgrade|replace)\b", "repair"),
    )
)
_OWNER_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), owner)
    for p, owner in (
        (r"\b(database|db|postgres|mysql|replica|query|index|backup|restore)\b", "database team"),
        (r"\b(network|dns|bgp|load balancer|partition|vpc|firewall)\b", "network team"),
        (r"\b(cert\w*|tls|ssl|credential\w*|secret|token|key rotation)\b", "security team"),
        (r"\b(canary|deploy\w*|pipeline|ci|cd|rollout|release|config change)\b", "platform team"),
        (r"\b(alert\w*|monitor\w*|dashboard|slo|paging|page|on-?call|escalat\w+)\b", "SRE team"),
        (r"\b(status page|comms|communicat\w+|customer|support)\b", "incident management lead"),
    )
)
_END_STATES: dict[str, str] = {
    "detect": "An alert for this failure mode pages the on-call within 5 minutes of onset, shown by a test firing in staging.",
    "prevent": "The safeguard is enforced for every change to the affected service, and a test change that breaks it is blocked.",
    "process": "The updated runbook or process is merged, linked from the on-call guide, and used in the next game day.",
    "investigate": "A written finding that answers the question is linked from this postmortem and reviewed with the team.",
    "mitigate": "The mitigation can be applied in under 5 minutes by the on-call, shown in a drill.",
    "repair": "The fix is deployed to production and a check confirms the faulty state is gone.",
}
_LEADS = (
    (
        re.compile(
            r"^(?:we (?:really )?need (?:to )?|we should |let'?s |we(?:'ll| will) |next time,? we |going forward,? we )",
            re.I,
        ),
        "",
    ),
    (re.compile(r"^(?:action items?|ai|follow[- ]?ups?|todo|to-do)\s*[:\-]\s*", re.I), ""),
    (re.compile(r"^(?:file|open|create) a ticket (?:to|for) ", re.I), ""),
)


def classify(text: str) -> ActionType:
    for pattern, kind in _TYPE_RULES:
        if pattern.search(text):
            return kind
    return "prevent"


def owner_for(text: str, services: list[str]) -> str:
    for pattern, owner in _OWNER_RULES:
        if pattern.search(text):
            return owner
    return f"{services[0]} team" if services else "owning service team"


def _fileable(title: str) -> bool:
    """A title that can be filed: no quoted paste, no redaction marker, no question."""
    return not re.search(r"\[REDACTED|[“”\"]|\bpasting\b|\?\s*$", title, re.IGNORECASE)


def title_from(sentence: str) -> str | None:
    """An imperative title from a stated follow-up, or None when it is too vague to file."""
    match = FOLLOW_UP.search(sentence)
    if not match:
        return gap_title(sentence)
    text = sentence[match.start() :]
    for pattern, repl in _LEADS:
        text = pattern.sub(repl, text).strip()
    text = re.sub(r"^(an?)\s", r"add \1 ", text, flags=re.I)  # "we need a canary" -> add a canary
    text = re.split(r"(?<=[a-z0-9)])[.!?;](\s|$)", text)[0].strip(" .,:;")
    return _finish(text)


# A follow-up said as a wish about something ("rank should shed load", "the dash needs a
# cold-cache number") becomes an instruction; so does a plain gap ("nothing alerts on X").
_SUBJECT = r"(?P<subj>(?:the |our |a |an )?[\w./-]+(?: [\w./-]+){0,3}?)"
_NOT_SUBJECTS = frozenset({"we", "you", "i", "it", "this", "that", "they", "he", "she", "someone"})
_WISHES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), repl)
    for p, repl in (
        (
            rf"^{_SUBJECT} (?:should|must|(?:has|have|needs?) to) be (?P<rest>.+)$",
            "Ensure {subj} is {rest}",
        ),
        (
            rf"^{_SUBJECT} (?:shouldn'?t|should not|must not|mustn'?t|(?:really )?(?:can'?t|cannot))"
            r" (?P<rest>.+)$",
            "Ensure {subj} cannot {rest}",
        ),
        (rf"^{_SUBJECT} (?:should|must) (?!have\b)(?P<rest>.+)$", "Make {subj} {rest}"),
        (
            rf"^{_SUBJECT} (?:only exists in (?:my|our|his|her|their|someone'?s) heads?|"
            r"(?:isn'?t|is not|wasn'?t|was not|never got) (?:written down|documented))(?P<rest>)",
            "Document {subj}",
        ),
        (rf"^{_SUBJECT} (?:needs?|has|have) to (?P<rest>.+)$", "Make {subj} {rest}"),
        (
            rf"^{_SUBJECT} needs? (?P<rest>(?:a|an|the|more|some|its own|their own) [^,]+)",
            "Add {rest} to {subj}",
        ),
    )
)
_SELF_LEAD = re.compile(
    r"^(?:i'?ll|i will|i can|i'?m going to|someone (?:should|needs to)|somebody should|we could)\s+",
    re.I,
)
_GAPS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.I)
    for p in (
        r"\bnothing (?:alerts|pages) (?:us )?on (?P<what>[^.,;!?]{3,60})",
        r"\bwe (?:export|collect|have|record|track|emit|scrape) (?P<what>[\w./-]+(?: [\w./-]+){0,3})"
        r" (?:and|but) (?:nothing|nobody|no one|no alert) (?:looks at|watches|alerts on|checks|uses) it\b",
        r"\bno (?:alert|alerting|paging) (?:at all )?(?:on|for) (?P<what>[^.,;!?]{3,60})",
    )
)
_TRAILING = re.compile(
    r"(?:,[^,]{0,40}\bor (?:whatever|something(?: like that)?)|,? (?:if possible|i guess|imo|tbh|pls|please|too|as well))$",
    re.I,
)
_PRONOUN_ONLY = re.compile(
    r"^\w+(?: \w+)? (?:it|that|this|them|those|these)(?: (?:regularly|again|too|properly|asap|first|more often))?$",
    re.I,
)


def gap_title(sentence: str) -> str | None:
    """An "Alert on X" title from a gap someone pointed out ("nothing alerts on X"), else None."""
    for pattern in _GAPS:
        if match := pattern.search(sentence):
            what = re.sub(r"^(?:the|our|any) ", "", match.group("what").strip(), flags=re.I)
            return _finish(f"Alert on {what}")
    return None


# "we've never restored one of those dumps": the thing never done is the follow-up.
_NEVER_DONE = re.compile(
    r"^we(?:'ve| have)? (?:also |still )?never (?P<verb>load[- ]tested|tested|restored|practi[cs]ed|"
    r"rehearsed|drilled|exercised|verified|validated|tried) (?P<rest>.+)$",
    re.I,
)
_NEVER_VERBS = {
    "restored": "Test restoring",
    "tried": "Try",
    "verified": "Verify",
    "validated": "Validate",
}


def _rewrite(text: str) -> str:
    """Wishes, self-assignments and things never done as instructions; other text unchanged."""
    text = _SELF_LEAD.sub("", text)
    if never := _NEVER_DONE.match(text):
        verb = never.group("verb").casefold()
        lead = _NEVER_VERBS.get(verb) or re.sub(r"e?d$", "", verb).replace("-", " ").capitalize()
        if verb in ("practiced", "practised", "rehearsed", "exercised"):
            lead = verb[:-1].capitalize()
        return f"{lead} {never.group('rest')} regularly"
    for pattern, repl in _WISHES:
        match = pattern.match(text)
        if match and match.group("subj").casefold() not in _NOT_SUBJECTS:
            subj = match.group("subj")
            if subj[1:2].islower():  # "The dash", capitalised as a sentence start: "the dash"
                subj = subj[0].lower() + subj[1:]
            return repl.format(subj=subj, rest=match.group("rest").strip())
    return text


def _finish(text: str) -> str | None:
    """The filing-ready form of a title, or None when it is too vague or not a follow-up."""
    text = _TRAILING.sub("", _rewrite(text.strip(" .,:;"))).strip(" .,:;")
    words = text.split()
    if (
        len(words) < 3
        or VAGUE.search(text)
        or _PRONOUN_ONLY.match(text)
        or re.search(r"\bnow$", text, re.I)  # work in progress, reported as it happens
    ):
        return None
    text = " ".join(words[:18])
    return text[0].upper() + text[1:]


FOLLOW_UP_ROOT = re.compile(
    r"\b(follow[- ]?ups?|action items?|postmortem items?|to-?dos?|next steps)\b", re.I
)
_LIST_HEAD = re.compile(r"\b(follow[- ]?ups?|action items?|next steps|to-?dos?)\s*:", re.I)
_BULLET = re.compile(r"(?:^|\n|\s)(?:[-*•]|\d+[.)])\s+(?=\S)")
_LEAD_NOISE = re.compile(r"^(and|also|plus|then|ok|\+1)\b[\s:,-]*", re.I)
# A reply that opens with a hedge reports a hunch ("pretty sure reimage does the same"), not
# something to file.
_HEDGE = re.compile(r"^(pretty sure|i think|i guess|not sure|probably|i suspect|fwiw)\b", re.I)
_ACK_ONLY = re.compile(r"^(\+1|agreed|yes|yep|ack|noted|same|thanks|thank you|done|ok)\b", re.I)


def imperative(text: str) -> str | None:
    """A filing-ready title from a follow-up written as a bare phrase ("load test pool settings")."""
    text = _LEAD_NOISE.sub("", text.strip(" -*•.:;")).strip()
    text = re.sub(
        r"^(?:it'?s |also )?worth (?:asking|checking|understanding|finding out) (why|whether|how)\b",
        r"Determine \1",
        text,
        flags=re.I,
    )
    if (gap := gap_title(text)) is not None:
        return gap
    for pattern, repl in _LEADS:
        text = pattern.sub(repl, text).strip()
    text = re.split(r"(?<=[a-z0-9)])[.!?;](\s|$)", text)[0].strip(" .,:;")
    if _ACK_ONLY.match(text) or _HEDGE.match(text) or text.endswith("?"):
        return None
    return _finish(text)


def _candidates(data: DraftInput) -> list[tuple[str, EvidenceRow]]:
    """(title, row) for each follow-up: cue phrases, replies in a follow-ups thread, listed items."""
    roots = {r.id for r in data.rows if r.kind == "message" and FOLLOW_UP_ROOT.search(r.text)}
    out: list[tuple[str, EvidenceRow]] = []
    for row in data.rows:
        if not usable(row):
            continue
        if (head := _LIST_HEAD.search(row.text)) is not None:
            for item in _BULLET.split(row.text[head.end() :])[1:]:
                if (title := imperative(item.split("\n")[0])) is not None:
                    out.append((title, row))
        previous = ""
        for sent in sentences(row):
            title = title_from(sent.text)
            if title is None and FOLLOW_UP.search(sent.text) and _NEVER_DONE.match(previous):
                # "we've never load tested fleetd. we should do that regularly."
                title = _finish(previous)
            if title is None and row.thread in roots and row.id not in roots:
                title = imperative(sent.text)
            if title is not None:
                out.append((title, row))
                break
            previous = sent.text
    return out


def stated(data: DraftInput) -> list[ActionItem]:
    """Follow-ups that responders stated during or right after the incident."""
    items: list[ActionItem] = []
    for title, row in _candidates(data):
        if not _fileable(title) or any(_similar(title, i.title) for i in items):
            continue
        kind = classify(title)
        items.append(
            ActionItem(
                title=title,
                type=kind,
                priority="P1" if kind != "process" else "P2",
                owner=owner_for(title, data.services),
                end_state=_END_STATES[kind],
                citations=[row.id],
                origin="stated",
            )
        )
    return items[:10]


def _similar(a: str, b: str) -> bool:
    wa = {w for w in re.findall(r"[a-z]+", a.casefold()) if len(w) > 3}
    wb = {w for w in re.findall(r"[a-z]+", b.casefold()) if len(w) > 3}
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= 0.5


def gap(
    kind: ActionType,
    priority: Priority,
    title: str,
    owner: str,
    cites: list[str],
    end: str | None = None,
) -> ActionItem:
    return ActionItem(
        title=title,
        type=kind,
        priority=priority,
        owner=owner,
        end_state=end or _END_STATES[kind],
        citations=cites,
        origin="gap",
    )


def merge(stated_items: list[ActionItem], gaps: list[ActionItem]) -> list[ActionItem]:
    """Stated items first; a gap item that a stated one already covers is left out."""
    out = list(stated_items)
    for item in gaps:
        if not any(i.type == item.type and _shares_topic(i.title, item.title) for i in out):
            out.append(item)
    return out


_TOPICS = (
    "canary",
    "alert",
    "runbook",
    "escalat",
    "page",
    "backup",
    "cert",
    "expir",
    "capacity",
    "disk",
    "pool",
    "rollback",
    "dedup",
    "noise",
    "threshold",
    "root cause",
    "trigger",
)


def _shares_topic(a: str, b: str) -> bool:
    la, lb = a.casefold(), b.casefold()
    return any(t in la and t in lb for t in _TOPICS) or _similar(a, b)


def first_sentence(rows: list[EvidenceRow], pattern: re.Pattern[str]) -> Sentence | None:
    for row in rows:
        for sent in sentences(row):
            if pattern.search(sent.text):
                return sent
    return None
