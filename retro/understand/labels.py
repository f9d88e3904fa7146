"""The label set, read from data/labels.v1.yaml."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from retro.errors import ConfigError

DATA = "retro.understand"


def data_text(name: str) -> str:
    """A file of retro/understand/data/, from the installed package."""
    return (resources.files(DATA) / "data" / name).read_text(encoding="utf-8")


@cache
def label_info() -> dict[str, dict[str, str]]:
    """Label name -> {description, example}, in the file's order."""
    raw: Any = yaml.safe_load(data_text("labels.v1.yaml"))
    labels = raw.get("labels") if isinstance(raw, dict) else None
    if not isinstance(labels, dict) or not labels:
        raise ConfigError(
            "retro/understand/data/labels.v1.yaml has no labels", hint="reinstall retro"
        )
    return {str(k): {str(a): str(b) for a, b in dict(v).items()} for k, v in labels.items()}


@cache
def labels() -> tuple[str, ...]:
    return tuple(label_info())
