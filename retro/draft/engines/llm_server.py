"""What the server behind `--base-url` is, asked once per base URL, and errors that say the fix.

Self-hosted servers differ in what they honour. Small local models' chat templates drop `tools`
(the model never sees the schema), llama.cpp's servers take a JSON schema as a grammar,
vLLM and Ollama take `response_format` with a JSON schema, and local servers read
`max_tokens` while OpenAI wants `max_completion_tokens`. So before the first model call the
engine probes the endpoint with a few GETs (no generation):

1. the host: api.openai.com and Azure's hosts are known without a request;
2. `GET {base}/models`: vLLM says `owned_by: vllm` and its `max_model_len`, llama.cpp's own
   server `owned_by: llamacpp`, llama-cpp-python's server `owned_by: me`;
3. where that is not decisive, `GET {root}/props` (llama.cpp), `GET {root}/api/version`
   (Ollama) and `GET {root}/version` (vLLM), stopping at the first that answers.

The answer is kept per base URL for the life of the process. A refused connection is reported
here, before any prompt is built, as "nothing listens at URL".

`health` is the short probe the engine makes after a call timed out: llama-cpp-python's server
answers `GET /models` only between generations (it takes the model's lock), so an answer means
the server is free and one retry will not queue behind the abandoned request.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from retro.config import setting
from retro.errors import ConfigError, EngineError

Output = Literal["json_schema", "grammar", "tools"]
DEFAULT_TIMEOUT = 600.0  # seconds; a 7B model on a CPU writes a 3,000-token answer in minutes
PROBE_TIMEOUT = 10.0  # seconds for each probe GET; the model calls get --llm-timeout
TIMEOUT_FLAGS = "raise --llm-timeout (RETRO_LLM_TIMEOUT, llm_timeout in retro.toml)"
CONTEXT_PATTERNS = (
    # vLLM and OpenAI: "maximum context length is 8192 tokens. However, you requested 9120
    # tokens (6120 in the messages, 3000 in the completion)"
    re.compile(
        r"maximum context length is (?P<ctx>\d+) tokens.*?(?P<prompt>\d+) in the messages",
        re.DOTALL,
    ),
    # OpenAI: "maximum context length is 128000 tokens. However, your messages resulted in 130000"
    re.compile(
        r"maximum context length is (?P<ctx>\d+) tokens.*?messages resulted in (?P<prompt>\d+)",
        re.DOTALL,
    ),
    # llama-cpp-python, when the prompt alone does not fit (a longer answer just stops at the
    # end of the context): "Requested tokens (9120) exceed context window of 8192"
    re.compile(r"Requested tokens \((?P<prompt>\d+)\) exceed context window of (?P<ctx>\d+)"),
    # llama.cpp's server: "request (9120 tokens) exceeds the available context size (8192 tokens)"
    re.compile(r"\((?P<prompt>\d+) tokens\) exceeds the available context size \((?P<ctx>\d+)"),
)


def resolve_timeout(value: float | str | None = None) -> float:
    """The call timeout in seconds: the flag, RETRO_LLM_TIMEOUT, llm_timeout, then 600."""
    raw = setting("llm_timeout", value, env="RETRO_LLM_TIMEOUT", default=DEFAULT_TIMEOUT)
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(
            f"llm timeout {raw!r} is not a number of seconds above 0",
            hint="set --llm-timeout, RETRO_LLM_TIMEOUT or llm_timeout in retro.toml, e.g. 900",
        )
    return seconds


@dataclass(frozen=True)
class ServerInfo:
    """What one endpoint is and how to ask it for structured output."""

    base_url: str
    kind: str  # openai, azure, vllm, ollama, llama.cpp, llama-cpp-python, unknown
    output: Output  # response_format json_schema, a llama.cpp grammar, or named tools
    schema_in_prompt: bool  # the model may never see a schema sent beside the prompt
    token_param: str = "max_tokens"  # the field that bounds the answer
    context: int | None = None  # the server's context in tokens, when it says
    version: str | None = None

    def describe(self) -> str:
        ctx = f", context {self.context}" if self.context else ""
        ver = f" {self.version}" if self.version else ""
        return f"{self.kind}{ver} ({self.output}{ctx})"


_cache: dict[str, ServerInfo] = {}
_lock = threading.Lock()


def root_of(base_url: str) -> str:
    """The server root: the base URL without a trailing /v1."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def known_host(base_url: str) -> ServerInfo | None:
    """OpenAI and Azure OpenAI, known from the host alone."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "api.openai.com":
        return ServerInfo(base_url, "openai", "json_schema", False, "max_completion_tokens")
    if host.endswith((".openai.azure.com", ".cognitiveservices.azure.com", ".ai.azure.com")):
        return ServerInfo(base_url, "azure", "json_schema", False, "max_completion_tokens")
    return None


def probe(base_url: str, api_key: str, *, timeout: float = PROBE_TIMEOUT) -> ServerInfo:
    """The server's kind and structured-output method, probed once per base URL."""
    with _lock:
        if base_url in _cache:
            return _cache[base_url]
    info = known_host(base_url) or _probe(base_url, api_key, timeout)
    with _lock:
        _cache[base_url] = info
    return info


def forget_output(info: ServerInfo) -> ServerInfo:
    """The server asked with named tools from now on (it rejected response_format)."""
    tools = replace(info, output="tools")
    with _lock:
        _cache[info.base_url] = tools
    return tools


def forget(base_url: str | None = None) -> None:
    """Drop the probed answer for one base URL, or all (tests; a server restarted as another)."""
    with _lock:
        if base_url is None:
            _cache.clear()
        else:
            _cache.pop(base_url, None)


def _get(client: httpx.Client, url: str) -> Any:
    """The JSON of a GET, or None for any answer that is not a 200 JSON body."""
    try:
        response = client.get(url)
    except httpx.ConnectError as exc:
        if _refused(exc):
            raise
        return None
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _probe(base_url: str, api_key: str, timeout: float) -> ServerInfo:
    headers = {"Authorization": f"Bearer {api_key}"}
    root = root_of(base_url)
    with httpx.Client(headers=headers, timeout=timeout) as client:
        try:
            models = _get(client, f"{base_url}/models")
        except httpx.ConnectError:
            raise refused(base_url) from None
        entries = models.get("data") if isinstance(models, dict) else None
        first: dict[str, Any] = entries[0] if entries and isinstance(entries[0], dict) else {}
        owner = str(first.get("owned_by") or "").lower()
        if owner == "vllm" or "max_model_len" in first:
            version = _get(client, f"{root}/version")
            return ServerInfo(
                base_url,
                "vllm",
                "json_schema",
                True,
                context=_int(first.get("max_model_len")),
                version=_str(version, "version"),
            )
        props = _get(client, f"{root}/props")
        if owner == "llamacpp" or (
            isinstance(props, dict) and "default_generation_settings" in props
        ):
            settings = (
                props.get("default_generation_settings", {}) if isinstance(props, dict) else {}
            )
            ctx = _int(settings.get("n_ctx")) or _int((props or {}).get("n_ctx"))
            return ServerInfo(base_url, "llama.cpp", "grammar", True, context=ctx)
        if owner == "me":  # llama-cpp-python's server names no owner
            return ServerInfo(base_url, "llama-cpp-python", "grammar", True)
        ollama = _get(client, f"{root}/api/version")
        if isinstance(ollama, dict) and "version" in ollama:
            version = _str(ollama, "version")
            # Ollama's OpenAI endpoint takes a JSON-schema response_format from 0.5.0 on.
            output: Output = "json_schema" if _at_least(version, (0, 5, 0)) else "tools"
            return ServerInfo(base_url, "ollama", output, True, version=version)
        version_info = _get(client, f"{root}/version")
        if isinstance(version_info, dict) and "version" in version_info and entries:
            return ServerInfo(
                base_url, "vllm", "json_schema", True, version=_str(version_info, "version")
            )
    # Anything else: named tools, with the schema and an example in the prompt as well, and
    # JSON in plain content accepted, for servers whose chat template drops the tools.
    return ServerInfo(base_url, "unknown", "tools", True)


def health(base_url: str, api_key: str, *, timeout: float) -> bool:
    """True when `GET {base}/models` answers within `timeout` seconds (the server is free)."""
    try:
        response = httpx.get(
            f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )
    except httpx.HTTPError:
        return False
    return response.status_code < 500


def context_from_error(message: str) -> tuple[int, int] | None:
    """(context, prompt tokens) from a server's "the request exceeds the context" error."""
    for pattern in CONTEXT_PATTERNS:
        match = pattern.search(message)
        if match is not None:
            return int(match.group("ctx")), int(match.group("prompt"))
    return None


def refused(base_url: str) -> EngineError:
    return EngineError(
        f"openai: nothing listens at {base_url}",
        hint="start the model server, or fix --base-url (OPENAI_BASE_URL)",
    )


def timed_out(base_url: str, timeout: float, *, retried: bool, probe_timeout: float) -> EngineError:
    """The error for a call that did not answer in time, saying whether it was retried."""
    if retried:
        what = (
            f"did not answer within {timeout:g} s, twice (retried once after GET /models answered)"
        )
    else:
        what = (
            f"did not answer within {timeout:g} s and was not retried: it is still busy "
            f"(GET /models did not answer within {probe_timeout:g} s), and a retry would "
            "queue behind the abandoned request"
        )
    return EngineError(
        f"openai: the model server at {base_url} {what}",
        hint=f"{TIMEOUT_FLAGS}, or use a smaller model or a faster server",
    )


def _refused(exc: BaseException) -> bool:
    """True for 'connection refused' (nothing listens), as opposed to DNS or TLS failures."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "refused" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def is_refused(exc: BaseException) -> bool:
    """True when an exception (of any client) comes from a refused connection."""
    return _refused(exc)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "", 0) else None
    except (TypeError, ValueError):
        return None


def _str(data: Any, key: str) -> str | None:
    return str(data[key]) if isinstance(data, dict) and data.get(key) else None


def _at_least(version: str | None, wanted: tuple[int, ...]) -> bool:
    if not version:
        return False
    parts = [int(p) for p in re.findall(r"\d+", version)[: len(wanted)]]
    return tuple(parts) >= wanted
