"""Action items from what people said they would do, and from gaps the evidence shows.

A stated follow-up is any sentence the understanding layer labels `follow_up` ("we need to …",
"TODO: …", "can someone file a ticket to …"), a line under a follow-ups heading, or a reply in
a thread that collects follow-ups. Its title is the work it asks for (retro.understand.lexicon
strips the framing); its type, priority, owner and end state come from what it says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from retro.draft.engines.base import DraftInput, EvidenceRow, ScoredSentence
from retro.draft.engines.compose import strip_record_prefix
from retro.models import ActionItem, Claim
from retro.safety import policy
from retro.text import overlap
from retro.understand.cues import scores as cue_scores
from retro.understand.lexicon import (
    action_type,
    agreed_proposal,
    carried_subject,
    collects_follow_ups,
    continued_title,
    follow_up_title,
    full_name,
    gap_title,
    identifiers,
    lexicon,
    marker_split,
    names_follow_ups,
    opens_another,
    owner_in,
    proposes,
    refers_back,
    requirement_subject,
    short_names,
    states_wish,
)

ACTIVE = 2.0  # while the impact lasts, requests are mostly about the response itself: more proof
HEADING_WORDS = 20  # a line this short that ends in ":" before two list lines introduces them
# What a line under a follow-ups heading may still be: a part of the story told again.
_STORY = frozenset(
    {"impact", "cause", "trigger", "investigation", "recovery", "mitigation", "resolution"}
)
STORY_SURE = 0.5
LISTED = 0.5  # a line under a follow-ups heading needs less: the heading said what it is
SAME_ITEM = 0.5  # word overlap above which two titles are one item
_DEFAULT_OWNER = {
    "detect": "the observability owners",
    "prevent": "the service owner team",
    "mitigate": "the service owner team",
    "repair": "the service owner team",
    "process": "the incident process owner",
    "investigate": "the incident commander",
}


def stated(data: DraftInput, causes: list[Claim], same: SameItem | None = None) -> list[ActionItem]:
    """Every follow-up people stated, one item per distinct piece of work."""
    items: list[ActionItem] = []
    by_id = {r.id: r for r in data.rows}
    mitigated = data.milestones.get("mitigated")
    calm = mitigated.at if mitigated and mitigated.at else None
    done = data.milestones.get("resolved")
    over = done.at if done and done.at else None
    detected = data.milestones.get("detected")
    began = detected.at if detected and detected.at else None
    collecting = _collecting_threads(data, calm)
    systems = _system_names(data)
    last_subject: dict[str, str] = {}  # the last system a requirement named, per thread
    for row_id, sentences in _rows_with_sentences(data):
        row = by_id[row_id]
        if row.kind not in ("message", "comment", "note", "ticket_created") or _filed(row, calm):
            continue
        if row.other_work:
            continue  # a chore a search export brings in asks nothing of this incident
        if row.kind == "message" and not row.human:
            continue
        if began is not None and row.at < began - timedelta(minutes=5):
            continue  # written before the incident: a plan, not a follow-up
        # a reply in a thread opened to collect follow-ups ("follow-ups while it's fresh, in
        # thread pls") proposes later work, in whatever words, like a line under a heading
        threaded = row.thread is not None and row.thread in collecting
        in_list = named_list = False
        active = calm is not None and row.at < calm
        stated_here = False  # a sentence of this message already gave an item
        for i, s in enumerate(sentences):
            heading = (
                s.text.rstrip().endswith(":")
                # while the impact lasts, a list is options for the response ("Options as I
                # see them:") unless its heading names it as later work
                and (not active or _framed_as_later(s.text))
                and (
                    (len(s.text.split()) <= 6 and s.has("follow_up", 1.5))
                    # a longer line that introduces a list ("For the retro, things we should do:")
                    or (
                        len(s.text.split()) <= HEADING_WORDS
                        and (s.has("follow_up") or names_follow_ups().search(s.text) is not None)
                        and sum(_is_bullet_like(t.text) for t in sentences[i + 1 : i + 3]) >= 2
                    )
                )
            )
            if heading:
                in_list = True
                # "Action items:", "Follow-ups before we lose them:": the heading names them
                named_list = names_follow_ups().search(s.text) is not None
                continue
            if in_list and not _is_bullet_like(s.text):
                in_list = named_list = False
            factor = LISTED if in_list else ACTIVE if active and not _marked(s.text) else 1.0
            # "cachekeeper swapped a quarter of the pool. needs a cap": the requirement is the
            # sentence before's subject's
            subject = carried_subject(s.text, sentences[i - 1].text) if i else None
            if subject:
                s = s.model_copy(update={"text": f"{subject} {s.text.strip()}"})
            wish = (
                (over is not None and row.at >= over and _wish(s))
                or (in_list and subject is not None and states_wish(s.text))
                or (threaded and _wish(s))
                or (named_list and _named_list_line(s, sentences[i + 1 : i + 2]))
            )
            if not wish and (not s.has("follow_up", factor) or (s.has("question") and not in_list)):
                continue
            if not (in_list or threaded or _marked(s.text)) and _aside(s):
                continue
            if stated_here and not (
                in_list or threaded or wish or _another(s.text) or _own_line(row.text, s.text)
            ):
                # "TODO: health checks must not run only from the cloud that hit us. Use a
                # second provider.": the item's detail, not a second item
                continue
            if not in_list and not wish and not _marked(s.text):
                # said while the impact lasts, a bare imperative ("keep the new zone", "post
                # each site as it answers") steers the response; later work is framed as
                # such ("we need to", "going forward", "file a ticket to": a follow-up cue)
                if active and not _framed_as_later(s.text):
                    continue
                if s.p("mitigation") > s.p("follow_up"):
                    continue  # reads more as a step of the response than as later work
            text = strip_record_prefix(s.text)
            if not in_list and not _marked(text) and _LABELLED.match(text):
                continue  # "Plan: 1) grow the volume", "Customer comms: …": a note, not work
            for piece in _pieces(text):
                item = _item(piece, s, row, data, causes, systems, listed=in_list)
                if item is None:
                    continue
                # "and show the host list first" after "capctl needs a floor", in a thread
                # or list of follow-ups: the same system's work
                key = row.thread or row.id
                subject = last_subject.get(key) if (threaded or in_list) else None
                title = continued_title(piece, item.title, subject) if subject else None
                if title is not None:
                    item = item.model_copy(update={"title": title})
                if (named := requirement_subject(item.title)) is not None:
                    last_subject[key] = named
                items.append(item)
                stated_here = True
    items += _agreed_proposals(data, calm, causes, systems)
    # the team's filed follow-ups come last, so that their wording wins over chat's (a later
    # restatement gives a merged item its title)
    filed: dict[str, str] = {}  # the row of each filed ticket, and the tool that holds it
    for row in data.rows:
        if _filed(row, calm):
            item = _filed_item(row, data, causes)
            if item is not None:
                items.append(item)
                filed[row.id] = row.source
    # speech-to-text is never alone: a follow-up only a call transcript states ("like forty,
    # and do a clean stop first") stands when chat, a ticket or a note says it too
    return [
        item
        for item in _dedupe(_join_references(items, same), same, filed)
        if not all(by_id[c].low_trust for c in item.citations if c in by_id)
    ]


AGREE_WITHIN = timedelta(minutes=10)


def _agreed_proposals(
    data: DraftInput,
    calm: datetime | None,
    causes: list[Claim],
    systems: dict[str, str],
) -> list[ActionItem]:
    """Once the impact is over, a question that proposes work ("should we add cluster DNS to
    the load test?") whose first answer from someone else agrees ("+1", "yes please") is a
    follow-up, citing both."""
    if calm is None:
        return []
    chat = sorted(
        (r for r in data.rows if r.kind == "message" and r.human and r.at >= calm),
        key=lambda r: r.at,
    )
    out = []
    for n, row in enumerate(chat):
        question = next((s.text for s in data.sentences_of(row.id) if s.text.endswith("?")), None)
        if question is None or proposes(question) is None:
            continue
        answer = None
        for r in chat[n + 1 :]:
            if r.at - row.at > AGREE_WITHIN:
                break
            if r.actor != row.actor and r.source == row.source and r.thread in (row.thread, row.id):
                answer = r
                break
        if answer is None or policy.unsafe(question) or policy.unsafe(answer.text):
            continue
        if (title := agreed_proposal(question, answer.text)) is None:
            continue
        title = full_name(title, systems)
        kind = action_type(title)
        out.append(
            ActionItem(
                title=title,
                type=kind,  # type: ignore[arg-type]
                priority=_priority(kind, title, data, causes),  # type: ignore[arg-type]
                owner=_default_owner(kind),
                end_state=end_state(title, kind),
                citations=[row.id, answer.id],
                origin="stated",
            )
        )
    return out


def _join_references(items: list[ActionItem], same: SameItem | None) -> list[ActionItem]:
    """A title that points back at something said before ("write that policy, due Oct 3",
    "add a test for it") restates an earlier item: it joins the closest one (its citations
    added, its title left), and with no item before it, it is left out (too thin to act on)."""
    test = same or _same_words
    kept: list[ActionItem] = []
    for item in items:
        if not refers_back(item.title):
            kept.append(item)
            continue
        if kept:
            closest = max(
                kept, key=lambda k: (test(k.title, item.title) or 0.0, overlap(k.title, item.title))
            )
            closest.citations = list(dict.fromkeys(closest.citations + item.citations))
    return kept


_LABELLED = re.compile(r"^\s*[\w /&+-]{1,30}:\s+\S")


def _named_list_line(s: ScoredSentence, following: list[ScoredSentence]) -> bool:
    """A line under a heading that names follow-ups is one, whatever it scores, unless the
    classifier is sure it tells the story ("cachekeeper swapped a quarter of the pool"), a
    requirement after it is about it ("… needs a cap"), or it is a field ("Postmortem owner:
    Dana")."""
    if following and carried_subject(following[0].text, s.text) is not None:
        return False
    if _field_note(s.text):
        return False
    return not (s.top() in _STORY and s.p(s.top()) >= STORY_SURE)


def _field_note(text: str) -> bool:
    """A labelled field with a short value ("Postmortem owner: Dana", "Review: Thursday"):
    a note of who or when, not work."""
    m = _LABELLED.match(text)
    return m is not None and len(text[text.index(":") + 1 :].split()) <= 3


# Follow-ups the team filed in its incident tool (incident.io follow-ups, Rootly action items):
# structured evidence, taken as they are written.
FILED_TYPES = frozenset({"follow-up", "action item"})
# Tracker tickets of these types filed once the impact was over are follow-ups too; filed
# while it lasted they are mostly the response's own tasks, and go through their sentences.
LATER_TYPES = frozenset({"task", "sub-task", "subtask", "story", "improvement"})
# A status or resolution that says the team decided against the work (letters only, so that
# Jira's "Won't Do", "Won't Fix" and incident.io's "not_doing" all read the same)
NOT_DOING = frozenset(
    {"notdoing", "cancelled", "canceled", "declined", "rejected", "wontfix", "wontdo", "duplicate"}
)


def _filed(row: EvidenceRow, calm: datetime | None = None) -> bool:
    if row.kind != "ticket_created":
        return False
    kind = row.facts.get("issuetype", "").casefold()
    # a ticket filed in the days after the incident (kept for its follow-up work) is one as
    # its summary says, whatever its type: its description explains it, it asks for no more
    return (
        kind in FILED_TYPES
        or (kind in LATER_TYPES and calm is not None and row.at >= calm and not row.other_work)
        or row.later
    )


def _letters(value: str) -> str:
    return "".join(c for c in value.casefold() if c.isalpha())


def _filed_item(row: EvidenceRow, data: DraftInput, causes: list[Claim]) -> ActionItem | None:
    if any(_letters(row.facts.get(k, "")) in NOT_DOING for k in ("status", "resolution")):
        return None  # the team decided against it
    title = strip_record_prefix(row.text.split("\n", 1)[0]).strip()
    if not title or policy.unsafe(title):
        return None
    title = follow_up_title(title) or title[0].upper() + title[1:]
    kind = action_type(title)
    return ActionItem(
        title=title,
        type=kind,  # type: ignore[arg-type]
        priority=_priority(kind, title, data, causes),  # type: ignore[arg-type]
        owner=_default_owner(kind),
        end_state=end_state(title, kind),
        citations=[row.id],
        origin="stated",
    )


# What a requirement said after the resolution must not read as first: a report of the state.
_NOT_WISH = frozenset({"recovery", "resolution", "status_update", "question", "went_well", "lucky"})


def _wish(s: ScoredSentence) -> bool:
    """Once the incident is resolved, a requirement on a system ("the dry run should list each
    id") is later work in any words, even where the classifier scores it low. Between the
    mitigation and the resolution the team still works ("the replica needs to catch up"):
    measured, counting from the mitigation took development-set precision 53% -> 49%."""
    return states_wish(s.text) and s.top() not in _NOT_WISH and not s.has("question")


def _aside(s: ScoredSentence) -> bool:
    """A sentence the classifier reads more as off-topic than as a follow-up ("docs.example.io
    also OK"): chatter, not work, whatever words it shares with requests."""
    return s.has("off_topic") and s.p("off_topic") > s.p("follow_up")


def _another(text: str) -> bool:
    """Said as a further item: marked, framed as later work, or led by "also", "and", …
    (lexicon `follow_up.another_leads`)."""
    return _marked(text) or _framed_as_later(text) or opens_another(text)


def _own_line(text: str, sentence: str) -> bool:
    """The sentence starts a line of the message (a line of a list, bulleted or not)."""
    head = re.escape(sentence.strip()[:24])
    return re.search(rf"(?:^|\n)[ \t]*(?:[-*•·‣◦]|\d+[.)])?[ \t]*\W{{0,3}}{head}", text) is not None


def _framed_as_later(text: str) -> bool:
    """Said as later work: a follow-up cue ("we need to", "going forward") or a line that names
    follow-ups, action items or next steps."""
    return bool(cue_scores(text).get("follow_up")) or names_follow_ups().search(text) is not None


def _collecting_threads(data: DraftInput, calm: datetime | None) -> set[str]:
    """Ids of the chat messages, written once the impact was over, that open a thread to
    collect follow-ups: short, and naming follow-ups or next steps as such (not "I'll follow
    up with the vendor")."""
    return {
        row.id
        for row in data.rows
        if row.kind == "message"
        and row.human
        and row.thread is None
        and (calm is None or row.at >= calm)
        and len(row.text.split()) <= HEADING_WORDS
        and collects_follow_ups(row.text)
    }


def _is_bullet_like(text: str) -> bool:
    """A list item under a heading: short, no question, not a sentence of its own story."""
    return len(text.split()) <= 30 and not text.rstrip().endswith("?")


def implied(data: DraftInput) -> list[ActionItem]:
    """Work implied by a missing safeguard people named ("nothing alerts on fd usage")."""
    items: list[ActionItem] = []
    for s in data.sentences:
        if not (s.has("contributing", 0.7) or s.has("cause", 0.7) or s.has("follow_up", 0.7)):
            continue
        title = gap_title(s.text)
        if title is None or policy.vague(title):
            continue
        kind = action_type(title)
        items.append(
            ActionItem(
                title=title,
                type=kind,  # type: ignore[arg-type]
                priority="P1",
                owner=_default_owner(kind),
                end_state=end_state(title, kind),
                citations=[s.row_id],
                origin="gap",
            )
        )
    return _dedupe(items)


def _rows_with_sentences(data: DraftInput) -> list[tuple[str, list[ScoredSentence]]]:
    grouped: dict[str, list[ScoredSentence]] = {}
    for s in data.sentences:
        grouped.setdefault(s.row_id, []).append(s)
    return list(grouped.items())


def _marked(text: str) -> bool:
    """Written as a follow-up on purpose ("TODO:", "follow-up:", "action item:")."""
    return marker_split().search(text) is not None and bool(
        _pieces(text)[0] != text or marker_split().match(text)
    )


def _pieces(text: str) -> list[str]:
    """Two markers in one sentence ("action item: X. action item: Y") are two items."""
    parts = [p.strip() for p in marker_split().split(text) if p.strip()]
    return parts or [text]


def _item(
    text: str,
    s: ScoredSentence,
    row: EvidenceRow,
    data: DraftInput,
    causes: list[Claim],
    systems: dict[str, str],
    *,
    listed: bool = False,
) -> ActionItem | None:
    if policy.unsafe(text) or policy.counterfactual(text):
        return None
    title = follow_up_title(text, listed=listed)
    if title is None or policy.vague(title.split(" ", 1)[0]):
        return None
    title = full_name(title, systems)
    kind = action_type(title)
    return ActionItem(
        title=title,
        type=kind,  # type: ignore[arg-type]
        priority=_priority(kind, title, data, causes),  # type: ignore[arg-type]
        owner=_owner(text, row, kind),
        end_state=end_state(title, kind),
        citations=[row.id],
        origin="stated",
    )


def _system_names(data: DraftInput) -> dict[str, str]:
    """Short names of the incident's systems: its services and the identifiers three rows or
    more name."""
    seen: dict[str, int] = {}
    for row in data.rows:
        for name in identifiers(row.text):
            seen[name] = seen.get(name, 0) + 1
    return short_names([*data.services, *(n for n, k in seen.items() if k >= 3)])


def _priority(kind: str, title: str, data: DraftInput, causes: list[Claim]) -> str:
    """P0 when it addresses the stated cause of a severe incident; P1 for work that prevents,
    detects or limits a repeat; P2 for process work and investigations."""
    severe = (data.severity or "").strip().upper() in (
        "SEV0",
        "SEV1",
        "SEV-1",
        "SEV-0",
        "P0",
        "P1",
        "CRITICAL",
    )
    addresses = any(overlap(title, c.text, how="containment") >= 0.34 for c in causes)
    if kind in ("prevent", "repair", "mitigate") and addresses and severe:
        return "P0"
    if kind in ("prevent", "detect", "mitigate", "repair") or addresses:
        return "P1"
    return "P2"


def _owner(text: str, row: EvidenceRow, kind: str) -> str:
    """Who said they would do it, a team the sentence names, or the usual owner of such work."""
    who = owner_in(text)
    if who == "self" and row.actor and row.human:
        return row.actor.removeprefix("the ")
    if who and who != "self":
        return who
    return _default_owner(kind)


def _default_owner(kind: str) -> str:
    return _DEFAULT_OWNER.get(kind, "the service owner team").removeprefix("the ")


# What makes an end state checkable, per type of work; "done" is said before it.
_CHECK = {
    "detect": " live, and a test shows it pages the on-call when it should.",
    "process": ", reviewed, and linked from the on-call runbook.",
    "mitigate": ", and has been exercised in a drill or game day.",
    "repair": ", and the change is verified in production.",
}
_CHECK_PREVENT = ", and a test shows the failure mode of this incident is blocked."


def end_state(title: str, kind: str) -> str:
    """A check anyone can make, built from what the item says (lexicon `end_states`)."""
    table = lexicon()["end_states"]
    title = title.rstrip(".")
    words = title.split(" ")
    lead, rest = words[0].casefold(), " ".join(words[1:])
    if " ".join(words[:2]).casefold() in table["in_place"]:  # "set up X"
        lead, rest = " ".join(words[:2]).casefold(), " ".join(words[2:])
    if kind == "investigate":
        return f"The findings on {rest or title} are written up and linked from this postmortem."
    check = _CHECK.get(kind, _CHECK_PREVENT)
    detect = kind == "detect"
    thing = rest[:1].upper() + rest[1:]
    if detect and rest and lead in table["detect_leads"]:  # "Alert on X": an alert on X
        done = f"{table['detect_leads'][lead]} {rest} is"
    elif rest and lead in table["in_place"]:
        done = f"{thing} is" if detect else f"{thing} is in place"
    elif rest and lead in table["participles"]:
        done = f"{thing} is {table['participles'][lead]}" + (" and" if detect else "")
    else:  # led by another word: quoted whole, so its meaning is never turned around
        done = f"“{title}” is done" + (" and" if detect else "")
    return done + check


# How close two titles are when they name one piece of work, None when they name two.
SameItem = Callable[[str, str], float | None]


def _same_words(a: str, b: str) -> float | None:
    score = overlap(a, b)
    return score if score >= SAME_ITEM else None


def _dedupe(
    items: list[ActionItem], same_item: SameItem | None = None, filed: dict[str, str] | None = None
) -> list[ActionItem]:
    """One item per piece of work: a later restatement adds its citations to the first and
    gives it its title.

    `same_item` tells two titles for one piece of work apart from two pieces, and how close
    they are (word overlap by default; the offline engine passes sentence-vector similarity).
    """
    test = same_item or _same_words
    tickets = filed or {}
    kept: list[ActionItem] = []
    for item in items:
        # the closest earlier item, not the first close one: two filed tickets that each
        # restate one chat request go to their own request; two tickets the team filed apart
        # are two pieces of work, however alike their words
        own = _tickets(item, tickets)
        scored = [
            (score, i)
            for i, k in enumerate(kept)
            if not _apart(own, _tickets(k, tickets)) and (score := test(k.title, item.title))
        ]
        if not scored:
            kept.append(item)
            continue
        same = kept[max(scored)[1]]
        same.citations = list(dict.fromkeys(same.citations + item.citations))
        # the later restatement is usually the considered one (the list at the end)
        same.title, same.type, same.end_state = item.title, item.type, item.end_state
    return kept


def _tickets(item: ActionItem, filed: dict[str, str]) -> dict[str, set[str]]:
    """The filed tickets an item cites, by the tool that holds them."""
    out: dict[str, set[str]] = {}
    for row_id in item.citations:
        if (source := filed.get(row_id)) is not None:
            out.setdefault(source, set()).add(row_id)
    return out


def _apart(a: dict[str, set[str]], b: dict[str, set[str]]) -> bool:
    """Two tickets one tool holds for two pieces of work (a Jira ticket and an incident.io
    follow-up may well restate each other; two Jira tickets do not)."""
    return any(b.get(source, set()) - ids for source, ids in a.items() if source in b)


def gap(
    kind: str, priority: str, title: str, owner: str, cites: list[str], end: str | None = None
) -> ActionItem:
    return ActionItem(
        title=title,
        type=kind,  # type: ignore[arg-type]
        priority=priority,  # type: ignore[arg-type]
        owner=owner,
        end_state=end or end_state(title, kind),
        citations=cites,
        origin="gap",
    )


def merge(
    stated_items: list[ActionItem], gaps: list[ActionItem], same: SameItem | None = None
) -> list[ActionItem]:
    """Stated items first; a gap item that repeats a stated one is dropped."""
    out = list(stated_items)
    for g in gaps:
        if same is not None and any(same(g.title, s.title) is not None for s in out):
            continue
        if all(overlap(g.title, s.title) < 0.34 for s in out):
            out.append(g)
    return out
