"""The `openai` draft engine: langchain-openai ChatOpenAI against any OpenAI-compatible endpoint.

Only this module imports langchain and openai, and nothing imports it except lazily (the CLI,
for `--engine openai`), so `retro --help` stays fast.

Structured output is chosen per server by probing the endpoint once (`llm_server.probe`):
`response_format` with a JSON schema on OpenAI, Azure, vLLM and Ollama, a JSON-schema grammar
on llama.cpp's servers, and a named tool elsewhere. Except on OpenAI and Azure, which hand the
schema to the model, the schema and an example answer are also written into the prompt,
because small local models' chat templates drop `tools` and a grammar constrains the shape
without showing the model what the fields mean. A JSON object in plain content is accepted
from any server, and an answer cut off at `max_tokens` keeps its complete items.

Every call is bounded: `max_tokens` sized per step (`ANSWER_TOKENS`), and a timeout
(`--llm-timeout`, `RETRO_LLM_TIMEOUT`, `llm_timeout` in retro.toml; 600 s by default, since a
CPU-served model needs minutes). Retries go through retro.retry: 429 and 5xx as everywhere; a
timed-out call at most once, and only when a short health probe shows the server is free,
because a local server keeps working on the abandoned request and a blind retry queues behind it.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import openai
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
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
    EXAMPLE_TEXTS,
    ChunkNotes,
    PostmortemDraft,
    answer_block,
    answer_digest,
    answer_schema,
    complete_prefix,
    first_of_each,
    parse_reply,
    raw_answer,
    sections,
    to_action,
)
from retro.draft.engines.llm_repair import Repairer
from retro.draft.engines.llm_server import (
    PROBE_TIMEOUT,
    ServerInfo,
    context_from_error,
    forget_output,
    health,
    is_refused,
    probe,
    refused,
    resolve_timeout,
    timed_out,
)
from retro.draft.grounding import Grounding
from retro.errors import EngineError, MissingCredential
from retro.models import Claim, Postmortem, Progress, no_progress
from retro.retry import RETRIED_STATUSES, Retryable, RetryPolicy, retry_after

T = TypeVar("T", bound=BaseModel)
OPENAI_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"  # Ollama and vLLM accept any key; the OpenAI client needs one
PROMPT_VERSION = "v1"
# The most tokens each step's answer needs: a full draft is about 35 claims of ~45 tokens plus
# 8 action items of ~90; notes from one chunk up to 25 facts and 8 follow-ups. Repair needs
# about 40 tokens per sentence to fix (see `_answer_tokens`).
ANSWER_TOKENS = {"draft": 3000, "reduce": 3000, "map": 1600, "repair": 1600}
MIN_ANSWER_TOKENS = 256
FORMAT_WORDS = re.compile(
    r"response_format|json_schema|grammar", re.IGNORECASE
)  # below this a server's context is too small to be worth a call


class _TimedOut(Exception):
    """A model call got no answer within the timeout."""


class _FormatRefused(Exception):
    """The server rejected the response_format it was sent."""


class _ContextFull(Exception):
    """The server refused a call whose prompt and answer budget exceed its context."""

    def __init__(self, context: int, prompt: int, message: str) -> None:
        super().__init__(message)
        self.context, self.prompt, self.message = context, prompt, message


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
        timeout: float | str | None = None,
        max_retries: int = 2,
        output_retries: int = 2,
        cache: ResponseCache | None = None,
        evidence_share: float = 0.10,
        min_evidence_tokens: int = 3000,
        single_call_tokens: int = 4000,
        chunk_tokens: int = 4000,
        answer_tokens: dict[str, int] | None = None,
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
        self.timeout = resolve_timeout(timeout)
        self.max_retries = max_retries
        self.output_retries = output_retries
        self.cache = cache if cache is not None else ResponseCache()
        self.evidence_share = evidence_share
        self.min_evidence_tokens = min_evidence_tokens
        self.single_call_tokens = single_call_tokens
        self.chunk_tokens = chunk_tokens
        self.answer_tokens = {**ANSWER_TOKENS, **(answer_tokens or {})}
        self.prices = prices
        self._chat: ChatOpenAI | None = None
        self._info: ServerInfo | None = None
        self._count, self._counter = token_counter(self.model)
        self._reset()

    # -- public -----------------------------------------------------------------------------
    def draft(self, data: DraftInput, *, progress: Progress = no_progress) -> Postmortem:
        """Write the narrative sections; every citation is checked against data.rows."""
        self._reset()
        grounding = Grounding(data)
        comp = compress(
            data.rows,
            count=self._count,
            share=self.evidence_share,
            min_budget=self.min_evidence_tokens,
            grounding=grounding,
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
        repairer = Repairer(self._call, self._count, grounding=grounding)
        self._figures["repair"] = repairer.run(pm, data)
        for name, n in self._figures["repair"].get("dropped_by_section", {}).items():
            self._dropped[name] = self._dropped.get(name, 0) + n
        self._figures["key_events_kept"] = len(set(comp.key_ids) & self._shown)
        self._figures["prompt_share"] = round(
            self._figures["prompt_tokens"] / max(1, comp.raw_tokens), 4
        )
        if self._info is not None:
            self._figures["server"] = self._info.describe()
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
        with the same counter as `raw_transcript_tokens` (see `token_counter`): the messages,
        the answer-format block and the schema, whichever way the server is asked.
        """
        return {**self._figures, "token_counter": self._counter}

    def dropped_by_section(self) -> dict[str, int]:
        """Claims of the last draft dropped per section: uncited, unknown ids, example copies."""
        return dict(self._dropped)

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
            action_items=[
                to_action(a)
                for a in first_of_each(draft.action_items, lambda a: a.title)
                if a.title not in EXAMPLE_TEXTS
            ],
            open_questions=[
                q.strip()
                for q in first_of_each(draft.open_questions, lambda q: q)
                if q.strip() and q not in EXAMPLE_TEXTS
            ],
        )
        for name, claims in sections(draft).items():
            setattr(pm, name, self._distinct(name, claims))
        return pm

    def _distinct(self, name: str, claims: list[Claim]) -> list[Claim]:
        """A section's claims without copies of the prompt's example or of each other.

        A small model may copy the example answer (that is not evidence), and one stuck in a
        loop writes the same sentence until max_tokens stops it.
        """
        kept: list[Claim] = []
        seen: set[str] = set()
        for claim in claims:
            if claim.text in EXAMPLE_TEXTS:
                self._figures["example_copies"] += 1
                self._dropped[name] = self._dropped.get(name, 0) + 1
            elif claim.text.casefold() in seen:
                self._figures["repeated_claims"] += 1
            else:
                seen.add(claim.text.casefold())
                kept.append(claim)
        return kept

    # -- one structured call ----------------------------------------------------------------
    def _call(self, step: str, template: str, values: dict[str, str], schema: type[T]) -> T:
        """Render a template, answer from the cache or the model, validate; retry bad output."""
        tpl = prompts.load(template)
        if "rules" not in values:
            values = {**values, "rules": prompts.load_text("rules.v1.md")[0].strip()}
        system, user = tpl.render(**values)
        structured = answer_schema(schema)
        key = cache_key(
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            schema=structured,
            version=f"{PROMPT_VERSION}:{tpl.digest}:{answer_digest()}",
            method="structured",
        )
        block = answer_block("json", schema)
        self._figures["prompt_tokens"] += sum(
            self._count(t) for t in (system, user, block, json.dumps(structured))
        )
        cached = self._from_cache(key, schema)
        if cached is not None:
            return cached
        info = self._server()
        if info.schema_in_prompt:
            user = user.rstrip() + "\n\n" + answer_block(_block_kind(info), schema)
        budget = self._answer_tokens(step, values)
        if info.context:  # leave room for the prompt in the server's context
            room = info.context - int(1.2 * self._count(system + user)) - 64
            budget = min(budget, max(room, MIN_ANSWER_TOKENS))
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(user)]
        error = ""
        for _attempt in range(self.output_retries + 1):
            reply, budget = self._invoke(messages, schema, budget)
            parsed, error = self._parse(reply, schema)
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
                    f"Your previous answer was invalid ({error}). Answer again with one "
                    f"{schema.__name__} object that is valid JSON matching its schema, with "
                    "fewer and shorter items if it was cut off."
                ),
            ]
        raise EngineError(
            f"openai: {self.model} gave invalid {step} output "
            f"{self.output_retries + 1} times ({error})",
            hint="try a larger model, or --engine offline",
        )

    def _answer_tokens(self, step: str, values: dict[str, str]) -> int:
        """The max_tokens of a step: a fixed budget, or ~40 tokens per sentence to repair.

        Reasoning models (o-series, gpt-5) spend completion tokens on thinking first: four times.
        """
        if step == "repair":
            sentences = values.get("claims", "").count("\n") + 1
            budget = min(self.answer_tokens["repair"], 128 + 40 * sentences)
        else:
            budget = self.answer_tokens.get(step, self.answer_tokens["draft"])
        return budget * 4 if _default_temperature(self.model) is None else budget

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

    def _server(self) -> ServerInfo:
        """What the endpoint is, probed on the first call that is not answered from the cache."""
        if self._info is None:
            self._info = probe(self.base_url, self._api_key, timeout=self._probe_timeout)
        return self._info

    @property
    def _probe_timeout(self) -> float:
        return min(PROBE_TIMEOUT, self.timeout)

    # -- the request, its retries and errors ------------------------------------------------
    def _invoke(
        self, messages: list[BaseMessage], schema: type[BaseModel], budget: int
    ) -> tuple[BaseMessage, int]:
        """One answer, and the max_tokens it was asked with.

        429 and 5xx answers and dropped connections are retried by retro.retry. A timeout is
        retried at most once, and only when the server answers a short health probe; a call
        that overflows the server's context is retried once with the room that is left.
        """
        policy = RetryPolicy(retries=self.max_retries, backoff=1.0, max_wait=60.0)
        retried_timeout = shrunk = False
        while True:
            try:
                attempt = functools.partial(self._request, messages, schema, budget)
                return policy.run(attempt, give_up=self._give_up), budget
            except _TimedOut:
                if retried_timeout:
                    raise self._timed_out(retried=True) from None
                if not health(self.base_url, self._api_key, timeout=self._probe_timeout):
                    raise self._timed_out(retried=False) from None
                retried_timeout = True
            except _FormatRefused:
                # An older server that rejects response_format: ask with a named tool instead.
                self._info = forget_output(self._server())
            except _ContextFull as full:
                room = full.context - full.prompt - 16
                if shrunk or room < MIN_ANSWER_TOKENS:
                    raise EngineError(
                        f"openai: the prompt ({full.prompt} tokens) leaves no room for an "
                        f"answer in the {full.context}-token context of {self.model} at "
                        f"{self.base_url}",
                        hint="start the server with a larger context (llama.cpp: --n_ctx or "
                        "-c; Ollama: OLLAMA_CONTEXT_LENGTH; vLLM: --max-model-len)",
                    ) from None
                budget, shrunk = min(budget, room), True

    def _request(
        self, messages: list[BaseMessage], schema: type[BaseModel], budget: int
    ) -> BaseMessage:
        """One HTTP request; failures become Retryable, _TimedOut, _ContextFull or EngineError."""
        info = self._server()
        runnable: Any = self._client()
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if info.token_param == "max_completion_tokens":
            kwargs["max_tokens"] = budget  # langchain sends it as max_completion_tokens
        else:  # what llama.cpp, Ollama, vLLM and most proxies read
            extra["max_tokens"] = budget
        structured = answer_schema(schema)
        if info.output == "tools":
            runnable = runnable.bind_tools(
                [schema], tool_choice=schema.__name__, parallel_tool_calls=False
            )
        elif info.output == "grammar":  # llama.cpp turns the schema into a grammar
            extra["response_format"] = {"type": "json_object", "schema": structured}
        else:
            extra["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.__name__, "schema": structured, "strict": False},
            }
        if extra:
            kwargs["extra_body"] = extra
        try:
            reply: BaseMessage = runnable.invoke(messages, **kwargs)
        except openai.APITimeoutError:
            raise _TimedOut() from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc, budget) from None
        except openai.APIConnectionError as exc:
            if is_refused(exc):
                raise refused(self.base_url) from None
            raise Retryable(f"the connection dropped ({_one_line(str(exc), 120)})") from None
        self._usage["calls"] += 1
        self._add_usage(reply)
        return reply

    def _status_error(self, exc: openai.APIStatusError, budget: int) -> Exception:
        if exc.status_code in RETRIED_STATUSES:
            headers = exc.response.headers
            ms = retry_after(headers, ("retry-after-ms",))  # OpenAI's, in milliseconds
            wait = ms / 1000 if ms is not None else retry_after(headers)
            return Retryable(
                f"HTTP {exc.status_code}", retry_after=wait, status=exc.status_code, response=exc
            )
        found = context_from_error(_message(exc)) if exc.status_code == 400 else None
        if found is not None:
            return _ContextFull(found[0], found[1], _message(exc))
        refused_format = exc.status_code in (400, 422) and FORMAT_WORDS.search(_message(exc))
        if refused_format and self._server().output != "tools":
            return _FormatRefused(_message(exc))
        return _api_error(exc, self.base_url)

    def _give_up(self, last: Retryable) -> NoReturn:
        if isinstance(last.response, openai.APIStatusError):
            raise _api_error(last.response, self.base_url)
        raise EngineError(
            f"openai: {last.detail} talking to {self.base_url}, {self.max_retries + 1} times",
            hint="check that the server is healthy, or use --engine offline",
        )

    def _timed_out(self, *, retried: bool) -> EngineError:
        return timed_out(
            self.base_url, self.timeout, retried=retried, probe_timeout=self._probe_timeout
        )

    def _client(self) -> ChatOpenAI:
        if self._chat is None:
            self._chat = ChatOpenAI(
                model=self.model,
                base_url=self.base_url,
                api_key=self._api_key,  # type: ignore[arg-type]
                temperature=_default_temperature(self.model),
                # Connecting takes no model time: a long connect wait is a wrong host.
                timeout=openai.Timeout(self.timeout, connect=min(self.timeout, PROBE_TIMEOUT)),
                max_retries=0,  # retries are ours (see _invoke): the SDK's retry timeouts blindly
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

    def _parse(self, reply: BaseMessage, schema: type[T]) -> tuple[T | None, str]:
        """The validated output of a reply, or None and a one-line reason.

        An answer cut off at max_tokens (a looping model) keeps its complete items.
        """
        cut = (reply.response_metadata or {}).get("finish_reason") == "length"
        parsed, error = parse_reply(reply, schema)
        if parsed is not None or not cut:
            return parsed, error
        text = raw_answer(reply)
        salvaged = complete_prefix(text) if text else None
        if salvaged is not None:
            try:
                out = schema.model_validate(json.loads(salvaged))
            except (ValueError, ValidationError):
                out = None
            if out is not None:
                self._figures["cut_answers"] += 1
                return out, ""
        return None, f"the answer was cut off at max_tokens ({error})"

    def _reset(self) -> None:
        self._usage: dict[str, int] = {
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "calls": 0,
            "cached_calls": 0,
        }
        self._figures: dict[str, Any] = {
            "prompt_tokens": 0,
            "map_calls": 0,
            "cut_answers": 0,
            "example_copies": 0,
            "repeated_claims": 0,
        }
        self._shown: set[str] = set()
        self._dropped: dict[str, int] = {}


def _block_kind(info: ServerInfo) -> str:
    return "tools" if info.output == "tools" else "json"


def _escape(text: str) -> str:
    """Keep JSON data from closing a <delimiter> around it."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def _message(exc: openai.APIStatusError) -> str:
    body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
    inner: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else body
    return str(inner.get("message") or exc.message)


def _api_error(exc: openai.APIStatusError, base_url: str) -> EngineError:
    message = _one_line(_message(exc), 160)
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
