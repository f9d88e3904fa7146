"""Drafting engines: evidence in, a cited Postmortem out.

- `base.py`: the Engine interface and the evidence rows every engine reads.
- `offline.py` (with `extract.py` and `actions.py`): the deterministic default; no network.
- `llm.py` (with `llm_models.py`, `llm_budget.py`, `llm_cache.py`, `llm_repair.py`): any
  OpenAI-compatible endpoint through LangChain.
"""

from __future__ import annotations

from typing import Any

from retro.errors import ConfigError

ENGINES = ("offline", "openai")


def make_engine(
    name: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
) -> Any:
    """The chosen engine; the LLM engine (and langchain) is imported only when asked for.

    `timeout` is `--llm-timeout`; unset, the engine reads RETRO_LLM_TIMEOUT, then retro.toml.
    """
    if name == "offline":
        from retro.draft.engines.offline import OfflineEngine

        return OfflineEngine()
    if name == "openai":
        from retro.draft.engines.llm import OpenAIEngine

        return OpenAIEngine(model=model, base_url=base_url, timeout=timeout)
    raise ConfigError(f"unknown engine {name!r}", hint=f"choose one of: {', '.join(ENGINES)}")
