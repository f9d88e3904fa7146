"""The on-disk LLM response cache and the price table.

A response is stored as one JSON file named by the sha256 of (model, prompt messages, output
schema, prompt version). The base URL, the key and the way the server is asked for structured
output (tools, response_format, a grammar) are not part of the key, so the same prompt against
a different endpoint serving the same model hits the cache, and a cached re-run needs no probe.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from retro.config import user_dir
from retro.files import write_atomic

# USD per 1M tokens (input, output), from OpenAI's public price list. Prices change: treat the
# cost as an estimate, and pass `prices=` for other models (Azure deployments, local servers).
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o1": (15.00, 60.00),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}
DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_for(model: str) -> tuple[float, float] | None:
    """The (input, output) price of a model, ignoring a date suffix; None when unknown."""
    name = DATED.sub("", model.strip().lower())
    return PRICES.get(name)


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    price = price_for(model)
    if price is None:
        return None
    return round((prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000, 6)


def default_cache_dir() -> Path:
    """`$RETRO_CACHE_DIR/llm`, else `<user dir>/cache/llm`."""
    root = os.environ.get("RETRO_CACHE_DIR")
    return (Path(root).expanduser() if root else user_dir() / "cache") / "llm"


def cache_key(
    *, model: str, messages: list[dict[str, str]], schema: dict[str, Any], version: str, method: str
) -> str:
    payload = {
        "model": model,
        "messages": messages,
        "schema": schema,
        "version": version,
        "method": method,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A folder of `<key>.json` files; disabled, every lookup misses and nothing is written.

    `enabled=None` reads RETRO_LLM_CACHE: "0" turns the cache off.
    """

    def __init__(self, folder: Path | None = None, *, enabled: bool | None = None) -> None:
        self.folder = folder or default_cache_dir()
        if enabled is None:
            enabled = os.environ.get("RETRO_LLM_CACHE", "1").strip() not in ("0", "false", "no")
        self.enabled = enabled

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None  # a missing or half-written entry is a miss, never an error
        return data if isinstance(data, dict) and "output" in data else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        path = self._path(key)
        # Atomic, so a concurrent reader never sees half a file; a cache entry needs no fsync.
        write_atomic(path, json.dumps(entry, ensure_ascii=False, indent=1), fsync=False)
