"""Rules kept as data: cue patterns per label (data/cues.v1.yaml), validated when loaded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from retro.errors import ConfigError
from retro.understand.labels import data_text, labels


@dataclass(frozen=True)
class Cue:
    label: str
    weight: float
    pattern: re.Pattern[str]
    example: str


def parse(text: str, source: str = "cues.v1.yaml") -> tuple[Cue, ...]:
    """Cues from YAML text; every entry is checked: known label, weight 0..1, a pattern that
    compiles, and an example it matches."""
    raw: Any = yaml.safe_load(text)
    entries = raw.get("cues") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no `cues` list")
    known = set(labels())
    out: list[Cue] = []
    for n, entry in enumerate(entries):
        where = f"{source} cue {n + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: not a mapping")
        label, weight = entry.get("label"), entry.get("weight")
        pattern, example = entry.get("pattern"), entry.get("example")
        if label not in known:
            raise ConfigError(f"{where}: unknown label {label!r}", hint=f"one of {sorted(known)}")
        if not isinstance(weight, int | float) or not 0 < float(weight) <= 1:
            raise ConfigError(f"{where}: weight must be a number in (0, 1]")
        if not isinstance(pattern, str) or not isinstance(example, str) or not example.strip():
            raise ConfigError(f"{where}: needs a `pattern` and an `example` sentence")
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise ConfigError(f"{where}: pattern does not compile ({exc})") from None
        if not compiled.search(example):
            raise ConfigError(
                f"{where}: its example does not match its pattern: {example!r}",
                hint="fix the pattern or the example",
            )
        out.append(Cue(str(label), float(weight), compiled, example))
    return tuple(out)


@cache
def cues() -> tuple[Cue, ...]:
    """The packaged cues, loaded and validated once."""
    return parse(data_text("cues.v1.yaml"))


@cache
def _by_label(table: tuple[Cue, ...]) -> tuple[tuple[re.Pattern[str], tuple[Cue, ...]], ...]:
    """Each label's cues behind one combined pattern: a sentence that matches none of a
    label's cues costs one search, not one per cue."""
    groups: dict[str, list[Cue]] = {}
    for cue in table:
        groups.setdefault(cue.label, []).append(cue)
    return tuple(
        (
            re.compile("|".join(f"(?:{c.pattern.pattern})" for c in group), re.IGNORECASE),
            tuple(group),
        )
        for group in groups.values()
    )


def scores(text: str, table: tuple[Cue, ...] | None = None) -> dict[str, float]:
    """Per label, the strongest matching cue's weight plus a little for each further match,
    capped at 1."""
    out: dict[str, float] = {}
    for combined, group in _by_label(table if table is not None else cues()):
        if not combined.search(text):
            continue
        for cue in group:
            if cue.pattern.search(text):
                held = out.get(cue.label, 0.0)
                out[cue.label] = min(1.0, max(held, cue.weight) + (0.1 if held else 0.0))
    return out
