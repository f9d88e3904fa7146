"""Shared test set-up: tests import helpers from this folder, and nothing reaches the network."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_user_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys, caches and the default index go to a temp folder, never the real user directory."""
    if "RETRO_USER_PATH" not in os.environ or not os.environ["RETRO_USER_PATH"].startswith(
        str(tmp_path_factory.getbasetemp())
    ):
        monkeypatch.setenv("RETRO_USER_PATH", str(tmp_path_factory.mktemp("retro-user")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv("RETRO_DATABASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retry waits are recorded, never slept: every client's retries go through retro.retry."""
    import retro.retry

    recorded: list[float] = []
    monkeypatch.setattr(retro.retry, "sleep", recorded.append)
    return recorded
