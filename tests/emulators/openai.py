"""An OpenAI-compatible chat completions server with scripted replies.

Answers `POST /v1/chat/completions` (and `/chat/completions`, as Ollama and vLLM also serve
it) in the real response shape: `id`, `object: "chat.completion"`, `choices[0].message` with
`tool_calls` when the request sent `tools`, `finish_reason`, and `usage`. `GET /v1/models` lists
the models. A wrong bearer key gets a 401 in OpenAI's error shape.

Replies come from a queue (`emu.queue(...)`) and, once it is empty, from `emu.responder`, a
function of the request body. A reply is a dict (sent as JSON arguments or content), a str
(sent verbatim, so tests can script invalid JSON), an `ApiError`, or a callable that takes the
request body and returns one of those. Every chat request body is kept in `emu.bodies`.
"""

from __future__ import annotations

import json
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


def tool_name(body: dict[str, Any]) -> str | None:
    """The function the request asks for: tool_choice's name, else the first tool's."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return str(choice.get("function", {}).get("name"))
    tools = body.get("tools") or []
    return str(tools[0]["function"]["name"]) if tools else None


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class OpenAIEmulator(Emulator):
    """A scripted stand-in for api.openai.com, Azure's v1 endpoint, Ollama or vLLM."""

    def __init__(self, *, api_key: str = "sk-test-emulator", models: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.api_key = api_key
        self.models = models or ("gpt-4o-mini", "gpt-4o")
        self.script: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], Any] | None = None
        self.bodies: list[dict[str, Any]] = []
        # Some local servers ignore `tools` and answer in plain content; tests can mimic that.
        self.ignore_tools = False
        self._count = 0
        self._count_lock = threading.Lock()
        for prefix in ("/v1", ""):
            self.route("POST", f"{prefix}/chat/completions", self._chat)
            self.route("GET", f"{prefix}/models", self._models)

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

    def _models(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized(req)
        data = [
            {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
            for m in self.models
        ]
        return 200, {"object": "list", "data": data}, {}

    def _chat(self, req: Request) -> Response:
        if not self._authorized(req):
            return self._unauthorized(req)
        body = req.json() or {}
        with self._count_lock:
            self.bodies.append(body)
            self._count += 1
            n = self._count
            reply: Any = self.script.popleft() if self.script else self.responder
        while callable(reply):
            reply = reply(body)
        if reply is None:
            return ApiErrorResponse.of(ApiError(500, "emulator: no scripted reply", "no_reply"))
        if isinstance(reply, ApiError):
            return ApiErrorResponse.of(reply)
        return 200, self._completion(body, reply, n), {}

    def _completion(self, body: dict[str, Any], reply: dict[str, Any] | str, n: int) -> Any:
        text = reply if isinstance(reply, str) else json.dumps(reply)
        name = None if self.ignore_tools else tool_name(body)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
        if name:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{n:06d}",
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            ]
            finish = "tool_calls"
        prompt = _estimate_tokens(json.dumps(body.get("messages", [])))
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
