"""What the LLM is asked to return, and how it becomes a Postmortem.

Every field has a description: the schema is sent as the function's parameters or the
response format, and written into the prompt itself for servers that may drop either
(`schema_text`), so the descriptions are part of the prompt (as in Netflix Dispatch's
`ai/models.py`). Lists default to empty so that a small model that leaves out a section still
validates. `maxItems` and the id pattern are in the schema only (never enforced on validation):
a server that turns the schema into a grammar cannot loop inside one list or cite a URL.
`EXAMPLES` holds one example answer per schema, with placeholder ids that never match a row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, ValidationError, WithJsonSchema

from retro.draft import prompts
from retro.models import ActionItem, ActionType, Claim, Priority

CITES = "Ids of the timeline rows that support this, exactly as written in the rows, e.g. E1a2b3"
INLINE_CITE = re.compile(r"\s*\[((?:E[0-9A-Za-z]+)(?:\s*,\s*E[0-9A-Za-z]+)*)\]")
ROW_ID = "^E[0-9A-Za-z]+$"
ANSWERS = {"tools": "answer.tools.v1.md", "json": "answer.json.v1.md"}
FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
T = TypeVar("T", bound=BaseModel)
U = TypeVar("U")
# A row id as the schema describes it; validation accepts any string (the citation check
# decides what is valid), the pattern only steers a grammar away from URLs and free text.
RowId = Annotated[str, WithJsonSchema({"type": "string", "pattern": ROW_ID})]


def _most(n: int) -> dict[str, Any]:
    return {"maxItems": n}


Aspect = Literal[
    "impact",
    "detection",
    "response",
    "recovery",
    "root_cause",
    "trigger",
    "contributing_factor",
    "went_well",
    "went_poorly",
    "got_lucky",
    "other",
]


class DraftClaim(BaseModel):
    """One factual sentence and the rows behind it."""

    text: str = Field(
        description="One blameless factual sentence; people as roles; no ids inside the text"
    )
    cites: list[RowId] = Field(
        default_factory=list, description=CITES + "; at least one", json_schema_extra=_most(4)
    )


class DraftAction(BaseModel):
    """One follow-up action item."""

    title: str = Field(description="Imperative, specific title, e.g. 'Add a canary stage to X'")
    type: ActionType = Field(
        description="investigate, prevent, mitigate, repair, detect or process"
    )
    priority: Priority = Field(description="P0 (urgent), P1 (soon) or P2 (later)")
    owner: str = Field(description="A role or team such as 'the payments team'; never a name")
    end_state: str = Field(
        description="A verifiable end state: how anyone can tell the item is done"
    )
    origin: Literal["stated", "gap"] = Field(
        description="stated: someone proposed it during the incident; gap: the evidence shows it"
    )
    cites: list[RowId] = Field(default_factory=list, description=CITES, json_schema_extra=_most(4))


class PostmortemDraft(BaseModel):
    """The narrative sections of a blameless postmortem, every sentence cited."""

    summary: list[DraftClaim] = Field(
        default_factory=list,
        description="Two to four sentences: what happened, the impact, how it was detected and resolved",
        json_schema_extra=_most(4),
    )
    impact: list[DraftClaim] = Field(
        default_factory=list,
        description="Who and what was affected and for how long, with figures from the rows",
        json_schema_extra=_most(4),
    )
    detection: list[DraftClaim] = Field(
        default_factory=list,
        description="How and when the problem was noticed: alert, page or report",
        json_schema_extra=_most(3),
    )
    response: list[DraftClaim] = Field(
        default_factory=list,
        description="What responders did, in order, until mitigation",
        json_schema_extra=_most(6),
    )
    recovery: list[DraftClaim] = Field(
        default_factory=list,
        description="How service was restored and confirmed healthy",
        json_schema_extra=_most(4),
    )
    root_cause: list[DraftClaim] = Field(
        default_factory=list,
        description="The underlying cause as far as the evidence shows; empty if unknown",
        json_schema_extra=_most(3),
    )
    trigger: list[DraftClaim] = Field(
        default_factory=list,
        description="The change or event that set the incident off; empty if unknown",
        json_schema_extra=_most(2),
    )
    contributing_factors: list[DraftClaim] = Field(
        default_factory=list,
        description="Conditions that made it worse or slower to fix",
        json_schema_extra=_most(4),
    )
    went_well: list[DraftClaim] = Field(
        default_factory=list, description="What went well", json_schema_extra=_most(4)
    )
    went_poorly: list[DraftClaim] = Field(
        default_factory=list, description="What went poorly", json_schema_extra=_most(4)
    )
    got_lucky: list[DraftClaim] = Field(
        default_factory=list, description="Where we got lucky", json_schema_extra=_most(3)
    )
    action_items: list[DraftAction] = Field(
        default_factory=list,
        description="Stated follow-ups plus items for gaps the evidence shows",
        json_schema_extra=_most(8),
    )
    open_questions: list[str] = Field(
        default_factory=list,
        description="What the evidence cannot explain, as questions for the review meeting",
        json_schema_extra=_most(5),
    )


class NoteFact(BaseModel):
    """One fact noted from a part of the timeline."""

    aspect: Aspect = Field(description="Which postmortem section the fact belongs to")
    text: str = Field(description="One short blameless sentence; people as roles")
    cites: list[RowId] = Field(default_factory=list, description=CITES, json_schema_extra=_most(4))


class NoteFollowUp(BaseModel):
    """A follow-up someone proposed during the incident."""

    text: str = Field(description="What was proposed, as an imperative phrase")
    owner: str = Field(default="", description="The role or team that offered or was asked")
    cites: list[RowId] = Field(default_factory=list, description=CITES, json_schema_extra=_most(4))


class ChunkNotes(BaseModel):
    """Compact notes from one part of a long incident timeline."""

    facts: list[NoteFact] = Field(
        default_factory=list, description="Facts, in time order", json_schema_extra=_most(25)
    )
    follow_ups: list[NoteFollowUp] = Field(
        default_factory=list,
        description="Follow-ups people stated in this part",
        json_schema_extra=_most(8),
    )
    open_questions: list[str] = Field(
        default_factory=list,
        description="What this part leaves unexplained",
        json_schema_extra=_most(5),
    )


class RepairFix(BaseModel):
    """New citations for one sentence."""

    ref: str = Field(description="The ref of the sentence, exactly as given, e.g. summary[0]")
    cites: list[RowId] = Field(
        default_factory=list,
        description="Valid ids that support the sentence; empty if none does",
        json_schema_extra=_most(4),
    )


class CitationRepair(BaseModel):
    """Citation fixes for the listed sentences."""

    fixes: list[RepairFix] = Field(default_factory=list, description="One fix per sentence")


CLAIM_SECTIONS: tuple[str, ...] = (
    "summary",
    "impact",
    "detection",
    "response",
    "recovery",
    "root_cause",
    "trigger",
    "contributing_factors",
    "went_well",
    "went_poorly",
    "got_lucky",
)


def split_inline(text: str, cites: list[str]) -> tuple[str, list[str]]:
    """Move `[E1a2b3]` markers a model left inside the text into the citation list."""
    found: list[str] = []
    for match in INLINE_CITE.finditer(text):
        found.extend(part.strip() for part in match.group(1).split(","))
    clean = INLINE_CITE.sub("", text).strip()
    return clean, _unique([c.strip().strip("[]") for c in cites] + found)


def _unique(ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        if i:
            seen.setdefault(i, None)
    return list(seen)


def to_claim(c: DraftClaim) -> Claim:
    text, cites = split_inline(c.text, c.cites)
    return Claim(text=text, citations=cites)


def to_action(a: DraftAction) -> ActionItem:
    title, cites = split_inline(a.title, a.cites)
    return ActionItem(
        title=title,
        type=a.type,
        priority=a.priority,
        owner=a.owner,
        end_state=split_inline(a.end_state, [])[0],
        citations=cites,
        origin=a.origin,
    )


def sections(draft: PostmortemDraft) -> dict[str, list[Claim]]:
    """The claim sections of a draft as Postmortem claims."""
    return {name: [to_claim(c) for c in getattr(draft, name)] for name in CLAIM_SECTIONS}


# --- the schema and an example, in the prompt ---------------------------------------------------
_CLAIM = {"text": "The example service returned errors to 7% of requests.", "cites": ["E1a2b3"]}
EXAMPLES: dict[str, dict[str, Any]] = {
    "PostmortemDraft": {
        "summary": [_CLAIM],
        "impact": [],
        "detection": [{"text": "An alert on the example error rate fired.", "cites": ["E4d5e6"]}],
        "response": [],
        "recovery": [],
        "root_cause": [],
        "trigger": [],
        "contributing_factors": [],
        "went_well": [],
        "went_poorly": [],
        "got_lucky": [],
        "action_items": [
            {
                "title": "Add a canary stage to example-service deploys",
                "type": "prevent",
                "priority": "P1",
                "owner": "the example team",
                "end_state": "example-service deploys reach 5% of pods before the rest",
                "origin": "stated",
                "cites": ["E7f8a9"],
            }
        ],
        "open_questions": ["Why did the example deploy pass review?"],
    },
    "ChunkNotes": {
        "facts": [{"aspect": "impact", **_CLAIM}],
        "follow_ups": [
            {
                "text": "Add an example canary stage",
                "owner": "the example team",
                "cites": ["E7f8a9"],
            }
        ],
        "open_questions": ["What changed in the example config?"],
    },
    "CitationRepair": {"fixes": [{"ref": "summary[0]", "cites": ["E1a2b3"]}]},
}
EXAMPLE_TEXTS = frozenset(
    text
    for example in EXAMPLES.values()
    for value in example.values()
    if isinstance(value, list)
    for item in value
    for text in ([item.get("text"), item.get("title")] if isinstance(item, dict) else [item])
    if isinstance(text, str)
)


def answer_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every property required, for response formats and grammars.

    A grammar treats optional properties as skippable, and a small model skips them: `{}` is a
    valid PostmortemDraft. Required properties make it write each section, if only as `[]`.
    """
    return _require_all(model.model_json_schema())


def _require_all(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _require_all(v) for k, v in node.items() if k != "title"}
        if isinstance(node.get("properties"), dict):
            out["properties"] = {k: _require_all(v) for k, v in node["properties"].items()}
            out["required"] = list(node["properties"])
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_require_all(v) for v in node]
    return node


def schema_text(model: type[BaseModel]) -> str:
    """The schema as compact, commented JSON-like lines: half the JSON schema's tokens."""
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    blocks = [_object_text(model.__name__, schema, defs)]
    blocks += [_object_text(name, body, defs) for name, body in defs.items()]
    return "\n".join(blocks)


def _object_text(name: str, node: dict[str, Any], defs: dict[str, Any]) -> str:
    head = f"{name} = {{" + (f"  // {node['description']}" if node.get("description") else "")
    lines = [head]
    for key, prop in node.get("properties", {}).items():
        note = prop.get("description", "")
        lines.append(f'  "{key}": {_type_text(prop, defs)},' + (f"  // {note}" if note else ""))
    lines.append("}")
    return "\n".join(lines)


def _type_text(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    if "enum" in prop:
        return " | ".join(json.dumps(v) for v in prop["enum"])
    if prop.get("type") == "array":
        inner = _type_text(prop.get("items", {}), defs)
        most = f", at most {prop['maxItems']}" if "maxItems" in prop else ""
        return f"[{inner}{most}]"
    if prop.get("pattern") == ROW_ID:
        return "row id"
    return str(prop.get("type", "any"))


def example_text(model: type[BaseModel]) -> str:
    """The example answer for a schema as one line of JSON."""
    return json.dumps(EXAMPLES[model.__name__], ensure_ascii=False, separators=(",", ":"))


def answer_block(kind: str, model: type[BaseModel]) -> str:
    """The answer-format block (`answer.json` or `answer.tools`): schema lines and an example."""
    name = ANSWERS[kind]
    text, _origin = prompts.load_text(name)
    values = {"name": model.__name__, "schema": schema_text(model), "example": example_text(model)}
    return prompts.fill(text.strip(), values, name)


def answer_digest() -> str:
    """A digest of the answer-format templates, part of every cache key."""
    texts = [prompts.load_text(name)[0] for name in ANSWERS.values()]
    return hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()[:16]


# --- answers cut off at max_tokens ---------------------------------------------------------------
def complete_prefix(text: str) -> str | None:
    """A truncated JSON object cut back to its last complete list item, closed; None if none.

    A small model that loops is stopped by max_tokens mid-item; what it wrote before that item
    is still valid JSON once the open lists and objects are closed.
    """
    start = text.find("{")
    if start < 0:
        return None
    stack: list[str] = []
    best: tuple[int, list[str]] | None = None
    in_string = escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return text[start : i + 1]
            if stack[-1] == "]":  # a complete item of a list ends here
                best = (i + 1, list(stack))
    if best is None:
        return None
    end, open_ = best
    return text[start:end] + "".join(reversed(open_))


# --- replies -------------------------------------------------------------------------------------
def raw_answer(reply: Any) -> str:
    """The text a reply's JSON is in: a tool call's raw arguments, else the content."""
    for call in getattr(reply, "invalid_tool_calls", None) or []:
        if call.get("args"):
            return str(call["args"])
    return reply.content if isinstance(reply.content, str) else ""


def parse_reply(reply: Any, schema: type[T]) -> tuple[T | None, str]:
    """The validated output of a reply, or None and a one-line reason."""
    calls = getattr(reply, "tool_calls", None) or []
    if calls:
        args: Any = calls[0].get("args")
    elif getattr(reply, "invalid_tool_calls", None):
        return None, "the function arguments were not valid JSON"
    else:
        content = reply.content if isinstance(reply.content, str) else ""
        text = FENCE.sub("", content.strip())
        start, end = text.find("{"), text.rfind("}")
        try:
            args = json.loads(text[start : end + 1]) if start >= 0 else None
        except json.JSONDecodeError:
            args = None
        if args is None:
            return None, "no function call and no JSON object in the reply"
    try:
        return schema.model_validate(args), ""
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        return None, _one_line(
            f"{exc.error_count()} schema error(s), first at {where}: {err['msg']}"
        )


def first_of_each(items: list[U], key: Callable[[U], str]) -> list[U]:
    """Items in order without repeats (by key, ignoring case): a looping model repeats itself."""
    seen: set[str] = set()
    out: list[U] = []
    for item in items:
        k = key(item).strip().casefold()
        if k not in seen:
            seen.add(k)
            out.append(item)
    return out


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
