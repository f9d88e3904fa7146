"""The openai engine against emulated self-hosted servers that stall, loop and ignore tools.

Each of issue 15's defects has a test here that failed before the fix:
1. unbounded generation (no max_tokens: a looping model filled its context);
2. a fixed 120 s timeout with no flag, environment variable or retro.toml setting;
3. a slow server reported as "cannot reach", and retries queued behind the abandoned request;
4. the schema never reached a model whose chat template drops `tools`.
The emulator's stalls are real (a fraction of a second): timeouts cannot be recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from retro.cli.draft import sample_bundle
from retro.cli.main import cli
from retro.draft.engines import llm_server
from retro.draft.engines.llm import ANSWER_TOKENS, OpenAIEngine
from retro.draft.engines.llm_models import (
    CITES,
    EXAMPLES,
    ChunkNotes,
    CitationRepair,
    PostmortemDraft,
    answer_schema,
    complete_prefix,
    schema_text,
)
from retro.draft.engines.llm_server import context_from_error, known_host, resolve_timeout
from retro.errors import ConfigError, EngineError
from tests.emulators.openai import NEVER, ApiError, OpenAIEmulator
from tests.test_engine_llm import KEY, data_for, good_reply, small_rows, user_text


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RETRO_LLM_TIMEOUT", "RETRO_MODEL", "RETRO_PROMPTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RETRO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no retro.toml from the checkout


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(api_key=KEY) as running:
        assert isinstance(running, OpenAIEmulator)
        yield running


@pytest.fixture
def emu(server: OpenAIEmulator) -> OpenAIEmulator:
    server.reset()
    server.api_key = KEY
    server.responder = good_reply
    llm_server.forget()
    return server


def engine(emu: OpenAIEmulator, **kw: Any) -> OpenAIEngine:
    kw.setdefault("api_key", KEY)
    kw.setdefault("max_retries", 0)
    kw.setdefault("timeout", 10)
    return OpenAIEngine(base_url=emu.url + "/v1", **kw)


def chat_bodies(emu: OpenAIEmulator) -> list[dict[str, Any]]:
    return emu.bodies


# --- defect 1: bounded generation ----------------------------------------------------------------
def test_every_call_sets_max_tokens_and_a_looping_model_is_cut_off(emu: OpenAIEmulator) -> None:
    emu.loop = True  # the model repeats its first claim until something stops it
    eng = engine(emu)
    pm = eng.draft(data_for(small_rows()))
    body = emu.bodies[0]
    assert body["max_tokens"] == ANSWER_TOKENS["draft"]
    assert eng.usage()["completion_tokens"] <= ANSWER_TOKENS["draft"] * len(emu.bodies)
    # The cut-off answer keeps its complete items, and the repeats collapse into one claim.
    assert eng.figures()["cut_answers"] == 1 and len(emu.bodies) == 1
    assert len(pm.summary) == 1 and eng.figures()["repeated_claims"] > 10


def test_max_tokens_fits_each_step_and_the_servers_context(emu: OpenAIEmulator) -> None:
    emu.flavour, emu.context = "llama.cpp", 4096
    emu.queue(
        {"summary": [{"text": "Checkout failed.", "cites": ["E999999"]}]},
        {"fixes": [{"ref": "summary[0]", "cites": []}]},
    )
    eng = engine(emu)
    eng.draft(data_for(small_rows()))
    draft, repair = emu.bodies
    prompt = sum(len(m["content"]) for m in draft["messages"]) // 4
    assert draft["max_tokens"] < 4096 - prompt, "the answer budget leaves room for the prompt"
    assert repair["max_tokens"] == 128 + 40 * 1, "repair is sized by the sentences to fix"
    assert "max_completion_tokens" not in draft, "llama.cpp reads max_tokens"


def test_a_context_overflow_is_retried_once_with_the_room_left(emu: OpenAIEmulator) -> None:
    asked = ANSWER_TOKENS["draft"]
    vllm = (
        f"This model's maximum context length is 4096 tokens. However, you requested "
        f"{asked + 2000} tokens (2000 in the messages, {asked} in the completion)."
    )
    emu.queue(ApiError(400, vllm), good_reply)
    engine(emu).draft(data_for(small_rows()))
    assert [b["max_tokens"] for b in emu.bodies] == [asked, 4096 - 2000 - 16]
    # llama-cpp-python refuses only a prompt that fills the context by itself.
    emu.queue(ApiError(400, "Requested tokens (4100) exceed context window of 4096"))
    with pytest.raises(EngineError, match="leaves no room for an answer") as err:
        engine(emu, model="other").draft(data_for(small_rows()))
    assert "the prompt (4100 tokens)" in str(err.value)
    assert "--n_ctx" in str(err.value) and "OLLAMA_CONTEXT_LENGTH" in str(err.value)


# --- defect 2: the timeout is a setting ----------------------------------------------------------
def test_timeout_resolves_from_flag_env_and_retro_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_timeout() == 600.0, "minutes by default: CPU-served models are slow"
    (tmp_path / "retro.toml").write_text("llm_timeout = 900\n", encoding="utf-8")
    assert resolve_timeout() == 900.0
    monkeypatch.setenv("RETRO_LLM_TIMEOUT", "1200")
    assert resolve_timeout() == 1200.0
    assert resolve_timeout(30) == 30.0
    with pytest.raises(ConfigError, match="not a number of seconds"):
        resolve_timeout("soon")
    monkeypatch.setenv("RETRO_LLM_TIMEOUT", "0")
    with pytest.raises(ConfigError):
        OpenAIEngine(base_url="http://127.0.0.1:9/v1")


def test_a_slow_answer_within_the_timeout_is_waited_for(emu: OpenAIEmulator) -> None:
    emu.stall = 0.6
    pm = engine(emu, timeout=5).draft(data_for(small_rows()))
    assert pm.summary and len(emu.bodies) == 1


def test_generate_cli_takes_llm_timeout_and_names_it_in_the_error(
    emu: OpenAIEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("RETRO_LLM_CACHE", "0")
    emu.flavour, emu.stall = "llama-cpp-python", 1.5
    result = CliRunner().invoke(
        cli,
        [
            "generate",
            "--bundle",
            str(sample_bundle()),
            "--out",
            str(tmp_path / "d.md"),
            "--engine",
            "openai",
            "--base-url",
            emu.url + "/v1",
            "--llm-timeout",
            "0.4",
        ],
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("retro: error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert f"the model server at {emu.url}/v1 did not answer within 0.4 s" in errors[0]
    assert "raise --llm-timeout (RETRO_LLM_TIMEOUT, llm_timeout in retro.toml)" in errors[0]


# --- defect 3: a slow server is slow, not unreachable, and is not hit by blind retries -----------
def test_a_busy_single_slot_server_is_not_retried(emu: OpenAIEmulator) -> None:
    # llama-cpp-python: one slot, and GET /models waits for it like a chat request does.
    emu.flavour, emu.stall = "llama-cpp-python", 1.5
    with pytest.raises(EngineError) as err:
        engine(emu, timeout=0.4, max_retries=2).draft(data_for(small_rows()))
    text = str(err.value)
    assert "did not answer within 0.4 s and was not retried" in text
    assert "still busy" in text and "cannot reach" not in text and "\n" not in text
    assert len(emu.bodies) == 1, "no request queued behind the abandoned one"


def test_a_timeout_is_retried_once_after_the_health_probe_answers(emu: OpenAIEmulator) -> None:
    emu.flavour = "vllm"  # many slots: GET /models answers while a request runs
    emu.stalls.extend([1.0])  # only the first request is slow
    pm = engine(emu, timeout=0.4).draft(data_for(small_rows()))
    assert pm.summary and len(emu.bodies) == 2
    emu.stall = 1.0  # now every request is slow: one retry, then the error says so
    with pytest.raises(EngineError, match=r"twice \(retried once after GET /models answered\)"):
        engine(emu, timeout=0.4, max_retries=3, model="other").draft(data_for(small_rows()))
    assert len(emu.bodies) == 4


def test_a_server_that_never_answers_fails_after_the_timeout(emu: OpenAIEmulator) -> None:
    emu.flavour, emu.stall = "llama-cpp-python", NEVER
    with pytest.raises(EngineError, match="did not answer within 0.3 s"):
        engine(emu, timeout=0.3).draft(data_for(small_rows()))


def test_nothing_listening_is_told_apart_from_a_timeout() -> None:
    with pytest.raises(EngineError) as err:
        OpenAIEngine(base_url="http://127.0.0.1:9/v1", api_key=KEY, timeout=5).draft(
            data_for(small_rows())
        )
    assert str(err.value) == (
        "openai: nothing listens at http://127.0.0.1:9/v1; "
        "start the model server, or fix --base-url (OPENAI_BASE_URL)"
    )


def test_server_errors_are_retried_through_the_retry_policy(
    emu: OpenAIEmulator, waits: list[float]
) -> None:
    emu.queue(ApiError(503, "busy", headers={"Retry-After": "3"}), ApiError(502, "bad gateway"))
    pm = engine(emu, max_retries=2).draft(data_for(small_rows()))
    assert pm.summary and len(emu.bodies) == 3
    assert waits[0] == 3.0 and len(waits) == 2


# --- defect 4: the schema reaches the model, and structured output is probed ---------------------
@pytest.mark.parametrize(
    ("flavour", "output"),
    [
        ("openai", "tools"),  # an unknown server on 127.0.0.1: named tools
        ("vllm", "json_schema"),
        ("ollama", "json_schema"),
        ("llama.cpp", "grammar"),
        ("llama-cpp-python", "grammar"),
    ],
)
def test_the_prompt_carries_the_schema_and_the_probe_picks_structured_output(
    emu: OpenAIEmulator, flavour: str, output: str
) -> None:
    emu.flavour, emu.ignore_tools = flavour, True  # answers in plain content, as small models do
    eng = engine(emu)
    pm = eng.draft(data_for(small_rows()))
    assert pm.summary, "the JSON in plain content was read"
    body = emu.bodies[0]
    user = user_text(body)
    assert "Answer format:" in user and CITES in user, "field descriptions are in the prompt"
    assert json.dumps(EXAMPLES["PostmortemDraft"]["summary"][0], separators=(",", ":")) in user
    schema = answer_schema(PostmortemDraft)
    if output == "tools":
        assert body["tools"][0]["function"]["name"] == "PostmortemDraft"
        assert "response_format" not in body
    elif output == "grammar":
        assert body["response_format"] == {"type": "json_object", "schema": schema}
        assert "tools" not in body
    else:
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema
        assert "tools" not in body
    assert eng.figures()["server"].startswith("unknown" if flavour == "openai" else flavour)


def test_the_grammar_schema_requires_every_section_and_row_shaped_ids() -> None:
    schema = answer_schema(PostmortemDraft)
    assert schema["required"] == list(PostmortemDraft.model_fields)
    claim = schema["$defs"]["DraftClaim"]
    assert claim["properties"]["cites"]["items"]["pattern"] == "^E[0-9A-Za-z]+$"
    assert schema["properties"]["summary"]["maxItems"] == 4
    # The bounds steer generation only: a longer answer still validates.
    PostmortemDraft.model_validate({"summary": [{"text": "x", "cites": ["a"]}] * 9})


def test_the_probe_runs_once_per_base_url_and_not_for_cached_answers(
    emu: OpenAIEmulator,
) -> None:
    emu.flavour = "llama.cpp"
    engine(emu).draft(data_for(small_rows()))
    engine(emu, model="other").draft(data_for(small_rows()))
    probes = [r.path for r in emu.log if r.method == "GET"]
    assert probes.count("/v1/models") == 1 and "/props" in probes
    emu.log.clear()
    llm_server.forget()
    again = engine(emu)
    again.draft(data_for(small_rows()))
    assert emu.log == [] and again.usage()["cached_calls"] == 1, "a cached re-run asks nothing"


def test_urls_instead_of_row_ids_are_dropped_and_counted_per_section(
    emu: OpenAIEmulator,
) -> None:
    emu.cite_urls = True
    emu.queue(good_reply, {"fixes": []})
    eng = engine(emu)
    pm = eng.draft(data_for(small_rows()))
    assert pm.summary == [] and pm.detection == []
    assert eng.dropped_by_section() == {"summary": 1, "detection": 1}


def test_copies_of_the_example_answer_are_dropped(emu: OpenAIEmulator) -> None:
    emu.queue(EXAMPLES["PostmortemDraft"], {"fixes": []})
    eng = engine(emu)
    pm = eng.draft(data_for(small_rows()))
    assert pm.summary == [] and pm.action_items == [] and pm.open_questions == []
    assert eng.figures()["example_copies"] == 2


# --- units ---------------------------------------------------------------------------------------
def test_server_kinds_known_from_the_host_or_the_error_text() -> None:
    info = known_host("https://api.openai.com/v1")
    assert info is not None and info.output == "json_schema" and not info.schema_in_prompt
    assert info.token_param == "max_completion_tokens"
    azure = known_host("https://x.openai.azure.com/openai/v1")
    assert azure is not None and azure.kind == "azure"
    assert known_host("http://127.0.0.1:8080/v1") is None
    llama = "Requested tokens (9000) exceed context window of 8192"
    assert context_from_error(llama) == (8192, 9000)
    vllm = (
        "This model's maximum context length is 8192 tokens. However, you requested 9120 "
        "tokens (6120 in the messages, 3000 in the completion)."
    )
    assert context_from_error(vllm) == (8192, 6120)
    server = "request (9120 tokens) exceeds the available context size (8192 tokens), try again"
    assert context_from_error(server) == (8192, 9120)
    assert context_from_error("model not found") is None


def test_complete_prefix_keeps_the_complete_items_of_a_cut_answer() -> None:
    cut = '{"summary": [{"text": "a", "cites": ["E1"]}, {"text": "b}", "cites": ["E2"]}, {"te'
    assert json.loads(complete_prefix(cut) or "") == {
        "summary": [{"text": "a", "cites": ["E1"]}, {"text": "b}", "cites": ["E2"]}]
    }
    assert complete_prefix('{"summary": [{"text": "a"') is None
    assert complete_prefix("no json") is None
    assert complete_prefix('{"a": 1}') == '{"a": 1}'


def test_every_example_validates_and_every_schema_renders() -> None:
    for model in (PostmortemDraft, ChunkNotes, CitationRepair):
        model.model_validate(EXAMPLES[model.__name__])
        text = schema_text(model)
        assert model.__name__ in text and "//" in text
    assert "[row id, at most 4]" in schema_text(PostmortemDraft)


def test_a_server_that_rejects_response_format_is_asked_with_a_tool(emu: OpenAIEmulator) -> None:
    emu.flavour = "vllm"
    emu.queue(ApiError(400, "response_format type json_schema is not supported"), good_reply)
    pm = engine(emu).draft(data_for(small_rows()))
    first, second = emu.bodies
    assert "response_format" in first and "tools" not in first
    assert second["tools"][0]["function"]["name"] == "PostmortemDraft" and pm.summary


def test_reasoning_models_get_room_to_think(emu: OpenAIEmulator) -> None:
    engine(emu, model="o3-mini").draft(data_for(small_rows()))
    assert emu.bodies[0]["max_tokens"] == 4 * ANSWER_TOKENS["draft"]
    assert "temperature" not in emu.bodies[0]
