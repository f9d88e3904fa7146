"""An OpenAI-compatible chat completions server with scripted replies.

Answers `POST /v1/chat/completions` (and `/chat/completions`, as Ollama and vLLM also serve
it) in the real response shape: `id`, `object: "chat.completion"`, `choices[0].message` with
`tool_calls` when the request sent `tools`, `finish_reason`, and `usage`. `GET /v1/models` lists
the models. A wrong bearer key gets a 401 in OpenAI's error shape.

Replies come from a queue (`emu.queue(...)`) and, once it is empty, from `emu.responder`, a
function of the request body. A reply is a dict (sent as JSON arguments or content), a str
(sent verbatim, so tests can script invalid JSON), an `ApiError`, or a callable that takes the
request body and returns one of those. Every chat request body is kept in `emu.bodies`.

It can also behave as the real self-hosted servers did with a small model on a CPU:
- `flavour` is the server it answers the probe endpoints as: "openai" (the default),
  "vllm" (`owned_by: vllm`, `max_model_len`, `/version`), "ollama" (`/api/version`),
  "llama.cpp" (llama.cpp's own server: `owned_by: llamacpp`, `/props` with `n_ctx`) or
  "llama-cpp-python" (`owned_by: me`; `GET /v1/models` waits for the model's one slot);
- `stall`: seconds before a chat answer (`NEVER`: not until the emulator stops); `stalls`, a
  queue of the same per request. The server keeps "working" on a request its client
  abandoned, as llama.cpp does;
- `slots`: requests served at once (llama.cpp: 1); the others queue behind them;
- `loop`: the model never stops writing: the answer repeats its first list's first item until
  `max_tokens` (or, when the request sets none, until `context` is full) with
  `finish_reason: "length"`;
- `ignore_tools`: plain content even when `tools` were sent (small models' chat templates);
- `cite_urls`: every `cites` list in an answer holds URLs instead of row ids.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.emulators.base import Emulator, Request, Response


@dataclass
class ApiError:
    """An OpenAI error answer, e.g. ApiError(429, "Rate limit reached", "rate_limit_exceeded")."""

    status: int
    message: str
    code: str | None = None
    type: str = "invalid_request_error"
    headers: dict[str, str] | None = None


Reply = dict[str, Any] | str | ApiError | Callable[[dict[str, Any]], Any]
NEVER = math.inf
URLS = ["https://status.example.com/incidents/42", "https://grafana.example.com/d/checkout"]
SCHEMA_NAMES = {
    # what identifies each answer schema when a request names none (llama.cpp's json_object)
    "fixes": "CitationRepair",
    "facts": "ChunkNotes",
    "summary": "PostmortemDraft",
}


def tool_name(body: dict[str, Any]) -> str | None:
    """The answer the request asks for: the named tool, or the response format's schema."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return str(choice.get("function", {}).get("name"))
    tools = body.get("tools") or []
    if tools:
        return str(tools[0]["function"]["name"])
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return str(fmt["json_schema"]["name"])
    props = (fmt.get("schema") or {}).get("properties", {})
    return next((name for key, name in SCHEMA_NAMES.items() if key in props), None)


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _with_urls(value: Any) -> Any:
    """The answer with every cites list replaced by URLs (what a small model wrote)."""
    if isinstance(value, dict):
        return {k: URLS[:] if k == "cites" else _with_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_urls(v) for v in value]
    return value


def _looping(text: str, limit_chars: int) -> str:
    """The answer as a model stuck in a loop writes it, cut at limit_chars."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    head, unit = "", text + " "
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, list) and value:
                head = "{" + json.dumps(key) + ": ["
                unit = json.dumps(value[0]) + ", "
                break
    out = head + unit * (limit_chars // max(1, len(unit)) + 1)
    return out[:limit_chars]


class OpenAIEmulator(Emulator):
    """A scripted stand-in for api.openai.com, Azure's v1 endpoint, vLLM, Ollama or llama.cpp."""

    def __init__(
        self,
        *,
        api_key: str = "sk-test-emulator",
        models: tuple[str, ...] = (),
        flavour: str = "openai",
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = models or ("gpt-4o-mini", "gpt-4o")
        self.flavour = flavour
        self.script: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], Any] | None = None
        self.bodies: list[dict[str, Any]] = []
        self.ignore_tools = False  # plain content even when tools were sent
        self.cite_urls = False  # URLs where row ids belong
        self.loop = False  # write until max_tokens, or until the context is full
        self.context = 8192  # tokens, for `loop` without max_tokens and for the probe endpoints
        self.stall = 0.0  # seconds before each chat answer; NEVER: until stop()
        self.stalls: deque[float] = deque()  # per request, in order, before `stall` applies
        self.slots: int | None = None  # requests served at once; None: no limit
        self._count = 0
        self._count_lock = threading.Lock()
        self._released = threading.Event()
        self._slot_lock = threading.Lock()
        self._slot: threading.Semaphore | None = None
        for prefix in ("/v1", ""):
            self.route("POST", f"{prefix}/chat/completions", self._chat)
            self.route("GET", f"{prefix}/models", self._models)
        self.route("GET", "/props", self._props)
        self.route("GET", "/api/version", self._ollama_version)
        self.route("GET", "/version", self._vllm_version)

    def stop(self) -> None:
        self._released.set()  # stalled handlers answer now, to a client long gone
        super().stop()

    def reset(self) -> None:
        """Back to a plain, fast server that follows instructions (for module-scoped fixtures)."""
        self.script.clear()
        self.bodies.clear()
        self.log.clear()
        self.ignore_tools = self.cite_urls = self.loop = False
        self.stall, self.slots, self.flavour, self.context = 0.0, None, "openai", 8192
        self.stalls.clear()
        with self._slot_lock:
            self._slot = None

    def queue(self, *replies: Reply) -> None:
        """Answer the next chat requests with these replies, in order."""
        self.script.extend(replies)

    # -- handlers ---------------------------------------------------------------------------
    def _authorized(self, req: Request) -> bool:
        return req.headers.get("authorization", "") == f"Bearer {self.api_key}"

    def _unauthorized(self, req: Request) -> Response:
        given = req.headers.get("authorization", "").removeprefix("Bearer ")
        shown = (given[:6] + "*" * 4) if given else "(none)"
        return ApiErrorResponse.of(
            ApiError(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_api_key",
            )
        )

    def _semaphore(self) -> threading.Semaphore | None:
        slots = 1 if self.slots is None and self.flavour == "llama-cpp-python" else self.slots
        with self._slot_lock:
            if slots is None:
                self._slot = None
            elif self._slot is None:
                self._slot = threading.Semaphore(slots)
            return self._slot

    def _models(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized(req)
        owner = {"vllm": "vllm", "llama.cpp": "llamacpp", "llama-cpp-python": "me"}
        data: list[dict[str, Any]] = []
        for m in self.models:
            entry: dict[str, Any] = {"id": m, "object": "model", "created": 1715367049}
            entry["owned_by"] = owner.get(
                self.flavour, "library" if self.flavour == "ollama" else "system"
            )
            if self.flavour == "vllm":
                entry.update(root=m, max_model_len=self.context)
            data.append(entry)
        slot = self._semaphore() if self.flavour == "llama-cpp-python" else None
        if slot is not None:  # llama-cpp-python lists its models under the model's lock
            with slot:
                return 200, {"object": "list", "data": data}, {}
        return 200, {"object": "list", "data": data}, {}

    def _props(self, req: Request) -> Response:
        if self.flavour != "llama.cpp":
            return self.not_found(req)
        settings = {"n_ctx": self.context, "temperature": 0.8}
        return 200, {"default_generation_settings": settings, "total_slots": 1}, {}

    def _ollama_version(self, req: Request) -> Response:
        return (200, {"version": "0.6.2"}, {}) if self.flavour == "ollama" else self.not_found(req)

    def _vllm_version(self, req: Request) -> Response:
        return (200, {"version": "0.8.5"}, {}) if self.flavour == "vllm" else self.not_found(req)

    def _chat(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized(req)
        body = req.json() or {}
        with self._count_lock:
            self.bodies.append(body)
            self._count += 1
            n = self._count
            reply: Any = self.script.popleft() if self.script else self.responder
            stall = self.stalls.popleft() if self.stalls else self.stall
        slot = self._semaphore()
        if slot is not None:
            slot.acquire()  # queue behind the requests being served, abandoned or not
        try:
            if stall:
                self._released.wait(None if stall == NEVER else stall)
            while callable(reply):
                reply = reply(body)
        finally:
            if slot is not None:
                slot.release()
        if reply is None:
            return ApiErrorResponse.of(ApiError(500, "emulator: no scripted reply", "no_reply"))
        if isinstance(reply, ApiError):
            return ApiErrorResponse.of(reply)
        return 200, self._completion(body, reply, n), {}

    def _completion(self, body: dict[str, Any], reply: dict[str, Any] | str, n: int) -> Any:
        if self.cite_urls and isinstance(reply, dict):
            reply = _with_urls(reply)
        text = reply if isinstance(reply, str) else json.dumps(reply)
        prompt = _estimate_tokens(json.dumps(body.get("messages", [])))
        finish = "stop"
        if self.loop:
            limit = body.get("max_tokens") or body.get("max_completion_tokens")
            limit = min(int(limit), self.context - prompt) if limit else self.context - prompt
            text, finish = _looping(text, 4 * max(1, limit)), "length"
        name = None if self.ignore_tools else tool_name(body) if body.get("tools") else None
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if name:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{n:06d}",
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            ]
            finish = "tool_calls" if finish == "stop" else finish
        completion = _estimate_tokens(text)
        return {
            "id": f"chatcmpl-emu{n:06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.models[0]),
            "system_fingerprint": "fp_emulator",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
            },
        }


class ApiErrorResponse:
    """Builds OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""

    @staticmethod
    def of(err: ApiError) -> Response:
        body = {
            "error": {"message": err.message, "type": err.type, "param": None, "code": err.code}
        }
        return err.status, body, dict(err.headers or {})
