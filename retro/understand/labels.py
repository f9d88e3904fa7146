"""The label set, read from data/labels.v1.yaml."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class SectionSupport:
    """data/sections.v1.yaml: which labels a cited sentence needs for a claim of each section."""

    relaxed: float
    checked_kinds: frozenset[str]
    uninformative: frozenset[str]
    sections: dict[str, frozenset[str]]
    prompt_tags: tuple[str, ...]


@cache
def section_support() -> SectionSupport:
    """The section -> labels table, validated against the label set and the draft's sections."""
    from retro.models import CLAIM_FIELDS

    where = "retro/understand/data/sections.v1.yaml"
    raw: Any = yaml.safe_load(data_text("sections.v1.yaml"))
    known = set(labels())
    if not isinstance(raw, dict) or not isinstance(raw.get("sections"), dict):
        raise ConfigError(f"{where} has no sections", hint="reinstall retro")
    uninformative = frozenset(raw.get("uninformative") or [])
    informative = frozenset(known - uninformative)
    sections: dict[str, frozenset[str]] = {}
    for name in CLAIM_FIELDS:
        value = raw["sections"].get(name)
        if value is None:
            raise ConfigError(f"{where} names no labels for section {name!r}", hint="add it")
        sections[name] = informative if value == "any" else frozenset(value)
    tags = tuple(raw.get("prompt_tags") or [])
    unknown = (set().union(*sections.values()) | uninformative | set(tags)) - known
    if unknown:
        raise ConfigError(f"{where} names unknown labels: {sorted(unknown)}", hint="fix the file")
    return SectionSupport(
        relaxed=float(raw.get("relaxed", 0.5)),
        checked_kinds=frozenset(raw.get("checked_kinds") or []),
        uninformative=uninformative,
        sections=sections,
        prompt_tags=tags,
    )
