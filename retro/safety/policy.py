"""Safety policy: what counts as blame, counterfactual or vague wording, or an instruction to a
model. Decided here, in one place, from data/policy.v1.yaml, and used by the engines, the
draft pipeline, the LLM output check and `retro check`, so that they never disagree.
(Secrets and personal data are `retro.safety.redact`'s job.)

Rules are narrow: each carries examples it must match and counter-examples it must not, checked
when the file is loaded. For chat, `leave_out` adds the sentence classifier's judgement
(retro.understand), so a blaming or instructing message in words no rule knows is also kept
out of the draft.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml

from retro.errors import ConfigError

CLASSES = (
    "blame",
    "counterfactual",
    "vague",
    "model_instruction",
    "verifiable",
    "team_words",
    "person_verbs",
)
# Classifier probability (blame or model_instruction) above which a person's chat message is
# left out without a rule match. `python bench/leave_out.py` measures it per sentence on the
# corpus, where 0.4 looked better (recall 0.60 against 0.40 at 0.86 precision); but a message
# goes when any of its sentences reaches the cut, and on the gated and development cases 0.4
# left out 24 messages, most of them not blame: declarations ("Taking incident command.
# Calling this SEV1"), statements of cause, plans. At 0.7, 8, nearly all blame or instructions.
LEAVE_OUT_P = 0.7
REASONS = {"blame": "blame wording", "model_instruction": "instruction to a model"}


@cache
def rules() -> dict[str, tuple[re.Pattern[str], ...]]:
    """Every class's compiled patterns, each checked against its examples."""
    text = (resources.files("retro.safety") / "data" / "policy.v1.yaml").read_text("utf-8")
    raw: Any = yaml.safe_load(text)
    out: dict[str, tuple[re.Pattern[str], ...]] = {}
    for name in CLASSES:
        entry = raw.get(name) if isinstance(raw, dict) else None
        if not isinstance(entry, dict) or not entry.get("patterns"):
            raise ConfigError(f"policy.v1.yaml: `{name}` has no patterns", hint="reinstall retro")
        flags = 0 if entry.get("case_sensitive") else re.IGNORECASE
        try:
            compiled = tuple(re.compile(p, flags) for p in entry["patterns"])
        except re.error as exc:
            raise ConfigError(
                f"policy.v1.yaml: a `{name}` pattern does not compile ({exc})"
            ) from None
        for example in entry.get("examples") or []:
            if not any(p.search(example) for p in compiled):
                raise ConfigError(
                    f"policy.v1.yaml: `{name}` does not match its example {example!r}"
                )
        for counter in entry.get("counter_examples") or []:
            if any(p.search(counter) for p in compiled):
                raise ConfigError(
                    f"policy.v1.yaml: `{name}` matches its counter-example {counter!r}"
                )
        out[name] = compiled
    return out


def find(name: str, text: str) -> re.Match[str] | None:
    """The first match of class `name` in text, or None."""
    for pattern in rules()[name]:
        if m := pattern.search(text):
            return m
    return None


def blame(text: str) -> re.Match[str] | None:
    return find("blame", text)


def counterfactual(text: str) -> re.Match[str] | None:
    return find("counterfactual", text)


def vague(text: str) -> re.Match[str] | None:
    return find("vague", text)


def instruction(text: str) -> re.Match[str] | None:
    return find("model_instruction", text)


@lru_cache(maxsize=65536)
def unsafe(text: str) -> str | None:
    """Why text must not be asserted in a draft (blame or an instruction to a model), or None."""
    if instruction(text):
        return "model_instruction"
    if blame(text):
        return "blame"
    return None


def leave_out(sentences: list[tuple[str, Mapping[str, float]]]) -> str | None:
    """Why a chat message (its sentences with label scores) stays out of the draft, or None.

    A rule match decides; otherwise the classifier must be confident (LEAVE_OUT_P).
    """
    for text, scores in sentences:
        if reason := unsafe(text):
            return reason
        for label in ("model_instruction", "blame"):
            if scores.get(label, 0.0) >= LEAVE_OUT_P:
                return label
    return None
