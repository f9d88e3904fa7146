"""The `openai` draft engine: langchain-openai ChatOpenAI against any OpenAI-compatible endpoint.

Only this module imports langchain and openai, and nothing imports it except lazily (the CLI,
for `--engine openai`), so `retro --help` stays fast.

Structured output uses function calling (`bind_tools` with a named `tool_choice`) and our own
pydantic validation, not `response_format: json_schema`: OpenAI, Azure OpenAI, vLLM (named
tool choice works without extra server flags) and Ollama (tool-capable models) all accept
tools, while json_schema response formats are missing or partial on older Azure API versions
and older local servers, and OpenAI's strict mode rejects optional fields. When a server ignores
the tool and answers in plain content, a JSON object in the content is accepted too.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, TypeVar
from urllib.parse import urlsplit

import openai
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

from retro.config import load_keys
from retro.draft import prompts
from retro.draft.engines.base import DraftInput, Engine
from retro.draft.engines.llm_budget import (
    CompactRow,
    Compression,
    chunk,
    compress,
    rows_block,
    token_counter,
)
from retro.draft.engines.llm_cache import ResponseCache, cache_key, cost_usd
from retro.draft.engines.llm_models import (
    ChunkNotes,
    PostmortemDraft,
    sections,
    to_action,
)
from retro.draft.engines.llm_repair import Repairer
from retro.errors import EngineError, MissingCredential
from retro.models import Postmortem, Progress, no_progress

T = TypeVar("T", bound=BaseModel)
OPENAI_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # Ollama and vLLM accept any key; the OpenAI client needs one
PROMPT_VERSION = "v1"
FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _default_temperature(model: str) -> float | None:
    """0 for determinism; None where the model only accepts its default (o-series, gpt-5)."""
    name = model.lower()
    if re.match(r"^o\d", name) or (name.startswith("gpt-5") and "chat" not in name):
        return None
    return 0.0


class OpenAIEngine(Engine):
    """Drafts with an LLM: compress, map-reduce within a token budget, repair citations."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
        output_retries: int = 2,
        cache: ResponseCache | None = None,
        evidence_share: float = 0.10,
        min_evidence_tokens: int = 3000,
        single_call_tokens: int = 4000,
        chunk_tokens: int = 4000,
        prices: tuple[float, float] | None = None,
    ) -> None:
        self.model = model or os.environ.get("RETRO_MODEL") or "gpt-4o-mini"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY") or load_keys().get("openai")
        if not key:
            if urlsplit(self.base_url).hostname == "api.openai.com":
                raise MissingCredential("OpenAI", "OPENAI_API_KEY", key_name="openai")
            key = PLACEHOLDER_KEY
        self._api_key = key
        self.timeout = timeout
        self.max_retries = max_retries
        self.output_retries = output_retries
        self.cache = cache if cache is not None else ResponseCache()
        self.evidence_share = evidence_share
        self.min_evidence_tokens = min_evidence_tokens
        self.single_call_tokens = single_call_tokens
        self.chunk_tokens = chunk_tokens
        self.prices = prices
        self._chat: ChatOpenAI | None = None
        self._count, self._counter = token_counter(self.model)
        self._reset()

    # -- public -----------------------------------------------------------------------------
    def draft(self, data: DraftInput, *, progress: Progress = no_progress) -> Postmortem:
        """Write the narrative sections; every citation is checked against data.rows."""
        self._reset()
        comp = compress(
            data.rows,
            count=self._count,
            share=self.evidence_share,
            min_budget=self.min_evidence_tokens,
        )
        self._figures.update(
            raw_transcript_tokens=comp.raw_tokens,
            evidence_budget=comp.budget,
            rows=len(data.rows),
            rows_sent=len(comp.rows),
            compression=dict(comp.counts),
            key_events=len(comp.key_ids),
        )
        if comp.kept_tokens <= self.single_call_tokens:
            draft = self._single(data, comp, progress)
        else:
            draft = self._map_reduce(data, comp, progress)
        pm = self._assemble(data, draft)
        repairer = Repairer(self._call, self._count)
        self._figures["repair"] = repairer.run(pm, data)
        self._figures["key_events_kept"] = len(set(comp.key_ids) & self._shown)
        self._figures["prompt_share"] = round(
            self._figures["prompt_tokens"] / max(1, comp.raw_tokens), 4
        )
        progress("draft", 1, 1)
        return pm

    def usage(self) -> dict[str, Any]:
        """Tokens and cost of the last draft; cost_usd is None for a model with no known price."""
        u = self._usage
        if self.prices is not None:
            cost: float | None = round(
                (u["prompt_tokens"] * self.prices[0] + u["completion_tokens"] * self.prices[1])
                / 1_000_000,
                6,
            )
        else:
            cost = cost_usd(self.model, u["prompt_tokens"], u["completion_tokens"])
        return {**u, "cost_usd": cost}

    def figures(self) -> dict[str, Any]:
        """The budget figures of the last draft (raw transcript tokens, prompt tokens, key events).

        `prompt_tokens` counts every prompt the draft needed, answered from the cache or not,
        with the same counter as `raw_transcript_tokens` (see `token_counter`).
        """
        return {**self._figures, "token_counter": self._counter}

    # -- stages -----------------------------------------------------------------------------
    def _common(self, data: DraftInput) -> dict[str, str]:
        first = min((r.at for r in data.rows), default=None)
        milestones = {
            name: {"at": m.at.isoformat() if m.at else None, "evidence": m.evidence}
            for name, m in data.milestones.items()
        }
        block = {"milestones": milestones, "metrics": data.metrics.model_dump()}
        return {
            "incident_id": data.incident_id,
            "title": data.title or data.incident_id,
            "severity": data.severity or "unknown",
            "services": ", ".join(data.services) or "unknown",
            "year": str(first.year) if first else "unknown",
            "milestones": _escape(json.dumps(block, separators=(",", ":"))),
        }

    def _timeline(self, rows: list[CompactRow]) -> str:
        self._shown.update(r.id for r in rows)
        return rows_block(rows)

    def _single(self, data: DraftInput, comp: Compression, progress: Progress) -> PostmortemDraft:
        progress("draft", 0, 1)
        left = comp.counts
        omitted = (
            f"Before this prompt, {left.get('chatter', 0)} chatter rows were left out, "
            f"{left.get('repeats', 0)} repeated rows were folded into the first (rep), and "
            f"{left.get('ranked_out', 0)} lower-ranked rows were left out to fit the budget."
        )
        values = {**self._common(data), "timeline": self._timeline(comp.rows), "omitted": omitted}
        return self._call("draft", "draft.v1.md", values, PostmortemDraft)

    def _map_reduce(
        self, data: DraftInput, comp: Compression, progress: Progress
    ) -> PostmortemDraft:
        common = self._common(data)
        parts = chunk(comp.rows, max_tokens=self.chunk_tokens, count=self._count)
        notes: list[dict[str, Any]] = []
        for i, part in enumerate(parts, start=1):
            progress("draft: map", i - 1, len(parts) + 1)
            values = {
                **common,
                "part": str(i),
                "parts": str(len(parts)),
                "timeline": self._timeline(part),
            }
            out = self._call("map", "map.v1.md", values, ChunkNotes)
            notes.append({"part": i, **out.model_dump()})
        self._figures["map_calls"] = len(parts)
        progress("draft: reduce", len(parts), len(parts) + 1)
        keys = [r for r in comp.rows if r.key]
        values = {
            **common,
            "parts": str(len(parts)),
            "timeline": self._timeline(keys),
            "notes": _escape(json.dumps(notes, ensure_ascii=False, separators=(",", ":"))),
        }
        return self._call("reduce", "reduce.v1.md", values, PostmortemDraft)

    def _assemble(self, data: DraftInput, draft: PostmortemDraft) -> Postmortem:
        ms = data.milestones
        start = ms.get("impact_start") or ms.get("detected")
        end = ms.get("resolved")
        pm = Postmortem(
            incident_id=data.incident_id,
            title=data.title or data.incident_id,
            severity=data.severity,
            services=list(data.services),
            started=start.at if start else None,
            ended=end.at if end else None,
            engine=self.name,
            model=self.model,
            milestones=dict(ms),
            metrics=data.metrics,
            action_items=[to_action(a) for a in draft.action_items],
            open_questions=[q.strip() for q in draft.open_questions if q.strip()],
        )
        for name, claims in sections(draft).items():
            setattr(pm, name, claims)
        return pm

    # -- one structured call ----------------------------------------------------------------
    def _call(self, step: str, template: str, values: dict[str, str], schema: type[T]) -> T:
        """Render a template, answer from the cache or the model, validate; retry bad output."""
        tpl = prompts.load(template)
        if "rules" not in values:
            values = {**values, "rules": prompts.load_text("rules.v1.md")[0].strip()}
        system, user = tpl.render(**values)
        tool = convert_to_openai_tool(schema)
        key = cache_key(
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            schema=tool,
            version=f"{PROMPT_VERSION}:{tpl.digest}",
            method="function_calling",
        )
        self._figures["prompt_tokens"] += (
            self._count(system) + self._count(user) + self._count(json.dumps(tool))
        )
        cached = self._from_cache(key, schema)
        if cached is not None:
            return cached
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(user)]
        error = ""
        for _attempt in range(self.output_retries + 1):
            reply = self._invoke(messages, schema)
            parsed, error = _parse(reply, schema)
            if parsed is not None:
                self.cache.put(
                    key,
                    {"model": self.model, "step": step, "output": parsed.model_dump(mode="json")},
                )
                return parsed
            # Say what was wrong: repeating the identical request at temperature 0 would
            # likely return the identical invalid answer.
            messages = [
                SystemMessage(system),
                HumanMessage(user),
                HumanMessage(
                    f"Your previous answer was invalid ({error}). Call {schema.__name__} "
                    "again with arguments that are valid JSON matching its schema."
                ),
            ]
        raise EngineError(
            f"openai: {self.model} gave invalid {step} output "
            f"{self.output_retries + 1} times ({error})",
            hint="try a larger model, or --engine offline",
        )

    def _from_cache(self, key: str, schema: type[T]) -> T | None:
        hit = self.cache.get(key)
        if hit is None:
            return None
        try:
            out = schema.model_validate(hit["output"])
        except ValidationError:
            return None  # a stale entry from an older schema: ask the model again
        self._usage["cached_calls"] += 1
        return out

    def _invoke(self, messages: list[BaseMessage], schema: type[BaseModel]) -> BaseMessage:
        bound = self._client().bind_tools(
            [schema], tool_choice=schema.__name__, parallel_tool_calls=False
        )
        try:
            reply = bound.invoke(messages)
        except openai.APIStatusError as exc:
            raise _api_error(exc, self.base_url) from None
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise EngineError(
                f"openai: cannot reach {self.base_url} ({_one_line(str(exc), 120)})",
                hint="check --base-url / OPENAI_BASE_URL and that the server is running",
            ) from None
        self._usage["calls"] += 1
        self._add_usage(reply)
        return reply

    def _client(self) -> ChatOpenAI:
        if self._chat is None:
            self._chat = ChatOpenAI(
                model=self.model,
                base_url=self.base_url,
                api_key=self._api_key,  # type: ignore[arg-type]
                temperature=_default_temperature(self.model),
                timeout=self.timeout,
                max_retries=self.max_retries,
                use_responses_api=False,  # generic servers speak chat completions only
            )
        return self._chat

    def _add_usage(self, reply: BaseMessage) -> None:
        meta = getattr(reply, "usage_metadata", None) or {}
        prompt = meta.get("input_tokens")
        completion = meta.get("output_tokens")
        if prompt is None:  # older servers: fall back to the raw usage block
            raw = (reply.response_metadata or {}).get("token_usage") or {}
            prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
        self._usage["prompt_tokens"] += int(prompt or 0)
        self._usage["completion_tokens"] += int(completion or 0)

    def _reset(self) -> None:
        self._usage: dict[str, int] = {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "calls": 0,
            "cached_calls": 0,
        }
        self._figures: dict[str, Any] = {"prompt_tokens": 0, "map_calls": 0}
        self._shown: set[str] = set()


def _escape(text: str) -> str:
    """Keep JSON data from closing a <delimiter> around it."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def _parse(reply: BaseMessage, schema: type[T]) -> tuple[T | None, str]:
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


def _api_error(exc: openai.APIStatusError, base_url: str) -> EngineError:
    body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
    inner: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
    message = _one_line(str(inner.get("message") or exc.message), 160)
    hints = {
        401: "check OPENAI_API_KEY or run `retro keys set openai`",
        403: "the key lacks access to this model; check the project and model permissions",
        404: "check --model and --base-url (Azure: the deployment name and the /openai/v1/ URL)",
        429: "rate limited or out of quota after retries; wait, or check billing",
    }
    return EngineError(
        f"openai: HTTP {exc.status_code} from {base_url}: {message}",
        hint=hints.get(exc.status_code, "retry later, or use --engine offline"),
    )
