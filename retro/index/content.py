"""What an incident is indexed as: its own words, never the draft's template wording.

A draft repeats the same sentences in every incident ("Customer-facing impact lasted about 23m,
from 09:41 UTC to 10:05 UTC.", "The incident was detected by an automated ... signal"), and
Markdown brings headings, tables, front matter and placeholders ("_None found in the evidence._").
Indexed as they are, they make every pair of drafts look alike. This module keeps what is the
incident's own: its title, what people wrote (quotations without the "The on-call SRE wrote:"
wrapper), services, alert names and the action items people stated.

The template shapes are data (data/boilerplate.v1.yaml, each with an example it must match); the
code only decides what to do with a match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from retro.errors import ConfigError
from retro.index.store.base import Chunk, IncidentRecord, IndexedAction
from retro.models import Claim, Postmortem
from retro.text import split_sentences

BOILERPLATE_FILE = "boilerplate.v1.yaml"
_QUOTATION = re.compile(r"“([^“”]+)”")


@dataclass(frozen=True)
class Template:
    """One sentence shape that carries no incident content; `keep` marks a quotation inside."""

    id: str
    pattern: re.Pattern[str]
    example: str

    @property
    def keeps(self) -> bool:
        return bool({"keep", "quotes"} & set(self.pattern.groupindex))

    def apply(self, sentence: str) -> str | None:
        """None when the sentence does not have this shape; else what of it to keep: the
        `keep` part, the quotations (“…”) inside the `quotes` part, or nothing."""
        match = self.pattern.fullmatch(sentence)
        if match is None:
            return None
        if "quotes" in self.pattern.groupindex:
            return " ".join(q.strip() for q in _QUOTATION.findall(match.group("quotes")))
        return match.group("keep").strip() if self.keeps else ""


@cache
def templates() -> tuple[Template, ...]:
    """The template shapes, validated: every entry compiles and matches its own example."""
    import yaml

    where = f"retro/index/data/{BOILERPLATE_FILE}"
    text = (resources.files("retro.index") / "data" / BOILERPLATE_FILE).read_text("utf-8")
    raw: Any = yaml.safe_load(text)
    entries = raw.get("templates") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where} lists no templates", hint="reinstall retro")
    out = []
    for n, entry in enumerate(entries):
        try:
            tpl = Template(str(entry["id"]), re.compile(entry["pattern"]), str(entry["example"]))
        except (KeyError, TypeError, re.error) as exc:
            raise ConfigError(
                f"{where}: entry {n} is invalid ({exc})",
                hint="each entry needs an id, a pattern and an example",
            ) from exc
        kept = tpl.apply(tpl.example)
        if kept is None or (tpl.keeps and not kept):
            raise ConfigError(
                f"{where}: template {tpl.id!r} does not match its own example",
                hint="fix the pattern or the example",
            )
        out.append(tpl)
    return tuple(out)


def own_words(sentence: str) -> str:
    """The sentence's own content: "" when it is template wording, what a template keeps of it
    (a quotation inside template words), else the sentence unchanged."""
    text = sentence.strip()
    for tpl in templates():
        kept = tpl.apply(text)
        if kept is not None:
            return kept
    return text


# retro.text ends a sentence only after . ! or ?; a draft's quotation may end without one
# ("… began: “v5.31.0 promoted” The incident commander wrote: …").
_AFTER_QUOTE = re.compile(r"(?<=”)\s+(?=[A-Z“])")


def claim_text(text: str) -> str:
    """A text reduced to its own words, sentence by sentence ("" when it is all template)."""
    parts = (s for piece in _AFTER_QUOTE.split(text) for s in split_sentences(piece))
    return " ".join(w for w in map(own_words, parts) if w)


# --- Markdown documents (imported postmortems, corpus texts) ---------------------------------------

_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*(?:\n|\Z)", re.S)
_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_TABLE_ROW = re.compile(r"^\s*\|")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# A line that is all emphasis: a placeholder ("_None found._") or a sub-heading ("**Trigger**").
_PLACEHOLDER = re.compile(r"^\s*(?:[-*+]\s+)?(\*\*|__|[_*])[^_*]+\1\s*$")
_MARKERS = re.compile(r"^\s*(?:>\s*)*(?:[-*+•]\s+|\d{1,3}[.)]\s+)?")
_CITATION = re.compile(r"\s*\[E[0-9a-fA-F]{1,16}\]")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|(?<![\w*])[*_](?=\S)|(?<=\S)[*_](?![\w*]))")


def plain_text(markdown: str) -> str:
    """The prose of a Markdown document: no front matter, headings, tables, code blocks,
    placeholders, citation marks or template sentences; one line per kept sentence."""
    text = _FRONT_MATTER.sub("", markdown.lstrip("\ufeff"))
    text = _COMMENT.sub("", _FENCE.sub("", text))
    kept: list[str] = []
    for line in text.splitlines():
        if (
            not line.strip()
            or _HEADING.match(line)
            or _TABLE_ROW.match(line)
            or _RULE.match(line)
            or _PLACEHOLDER.match(line)
        ):
            continue
        line = _MARKERS.sub("", line)
        line = _EMPHASIS.sub("", _LINK.sub(r"\1", _CITATION.sub("", line))).strip()
        if line and (words := claim_text(line)):
            kept.append(words)
    return "\n".join(kept)


# --- fields of an incident -----------------------------------------------------------------------


def join(parts: Iterable[str]) -> str:
    """Texts joined into one, each ending as a sentence."""
    out = []
    for p in parts:
        p = " ".join(p.split())
        if p:
            out.append(p if p[-1] in ".!?”\"'" else p + ".")
    return " ".join(out)


def context_text(services: Sequence[str], alerts: Sequence[str], actions: Sequence[str]) -> str:
    """Services, alert names and action items as one text, without label words.

    Labels such as "Services:" would be the same in every incident and pull all of them together.
    """
    parts = [", ".join(services), ", ".join(alerts), *actions]
    return join(claim_text(p) for p in parts if p.strip())


PASSAGE_WORDS = 180  # MiniLM reads 256 word pieces; 180 words stay under that for English


def split_passages(text: str, words: int = PASSAGE_WORDS) -> list[str]:
    """Split a long text into passages of at most `words` words."""
    tokens = text.split()
    if not tokens:
        return []
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def chunks_from_fields(fields: dict[str, str]) -> list[Chunk]:
    """One chunk per passage of each non-empty field, in the fields' order."""
    return [
        Chunk(field=name, seq=seq, text=passage)
        for name, text in fields.items()
        for seq, passage in enumerate(split_passages(text))
    ]


_ALERT_PREFIX = re.compile(
    r"^(?:Alert (?:#\S+ )?(?:triggered|resolved|created|closed)(?: by [^:]+)?"
    r"|Incident #\d+ (?:triggered|created))\s*:\s*"
)
_STATE_TAGS = re.compile(r"^(?:\[[A-Za-z:0-9 ]+\]\s*)+")


def alert_name(text: str) -> str:
    """An alert's name as an event shows it: "[FIRING] HighErrorRate: summary" -> HighErrorRate."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = _STATE_TAGS.sub("", _ALERT_PREFIX.sub("", first)).strip()
    return first.split(":", 1)[0].strip()[:80]


def alert_names(pm: Postmortem) -> list[str]:
    """Names of the alerts and pages that fired, in first-seen order."""
    names: dict[str, None] = {}
    for row in pm.timeline:
        if row.get("kind") in ("alert_firing", "page_triggered"):
            name = alert_name(str(row.get("text") or ""))
            if name:
                names.setdefault(name, None)
    return list(names)


def _claims(items: Iterable[Claim]) -> list[str]:
    return [t for c in items if (t := claim_text(c.text))]


def postmortem_chunks(pm: Postmortem) -> list[Chunk]:
    """The texts indexed for a postmortem: its own words in summary, impact, root cause,
    contributing factors and context (services, alerts, the action items people stated)."""
    fields = {
        "summary": join([pm.title, *_claims(pm.summary)]),
        "impact": join([*_claims(pm.impact), *_claims(pm.detection)]),
        "contributing": join(_claims(pm.contributing_factors)),
        "context": context_text(
            pm.services,
            alert_names(pm),
            [a.title for a in pm.action_items if a.origin != "gap"],
        ),
    }
    # One vector per root-cause and trigger claim: a mixed passage dilutes the match.
    causes = _claims([*pm.root_cause, *pm.trigger])
    roots = [
        Chunk(field="root_cause", seq=i, text=" ".join(t.split()[:PASSAGE_WORDS]))
        for i, t in enumerate(causes)
    ]
    return roots + chunks_from_fields(fields)


def postmortem_record(
    pm: Postmortem, *, source: str = "", url: str | None = None
) -> IncidentRecord:
    """The record kept for a postmortem: enough to explain a match and warn about repeats."""
    return IncidentRecord(
        id=pm.incident_id,
        title=pm.title,
        url=url,
        started=pm.started,
        severity=pm.severity,
        services=list(pm.services),
        source=source,
        root_cause=" ".join(c.text for c in pm.root_cause),
        action_items=[
            IndexedAction(title=a.title, status=a.status, tracking=a.tracking)
            for a in pm.action_items
        ],
    )


def corpus_chunks(record: IncidentRecord, text: str, fields: dict[str, str]) -> list[Chunk]:
    """Chunks of a corpus record: its named fields if any, else its title and text.

    Texts may be Markdown (an imported postmortem document); only their prose is indexed.
    """
    named = {k: plain_text(v) for k, v in fields.items()}
    named = {k: v for k, v in named.items() if v.strip()}
    body = plain_text(text)
    # A title made from the text's first sentence is not said twice.
    title = "" if body.startswith(record.title.rstrip(" …")) else record.title
    if named:
        if "summary" in named or not body:
            named["summary"] = join([record.title, named.get("summary", "")])
        else:
            named = {"text": join([title, body]), **named}
        return chunks_from_fields(named)
    return chunks_from_fields({"text": join([title, body])})
