"""Redact secrets and personal data from text before it leaves the machine.

Every finding becomes `[REDACTED:<kind>]` and is counted per kind. The rules live in
retro.redact_patterns; this module runs them, cheaply: one substring test per needle tells which
rules can match a line. Redaction repeats until nothing changes, so redacting redacted text is a
no-op. See docs/redaction.md for the kinds, the deliberate non-redactions and extra patterns.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from retro.errors import ConfigError
from retro.safety.patterns import (
    BUILTIN_HEAD,
    BUILTIN_TAIL,
    EMAIL,
    MARKER_PREFIX,
    MARKER_RE,
    PERSON_NEAR_EMAIL,
    SCHEME,
    LabelledRule,
    Rule,
    high_entropy,
    is_directory,
    is_placeholder,
    label_kind,
    marker,
)

__all__ = [
    "MARKER_PREFIX",
    "MARKER_RE",
    "Redactor",
    "label_kind",
    "marker",
    "redact_mapping",
    "redact_text",
]

_KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MAX_PASSES = 4

_GATES = "_-.@+:"  # punctuation inside many needles; a line without "_" skips every "ghp_"
# (gate char -> root needles, needle -> longer needles containing it, needle -> rules, always)
NeedleIndex = tuple[
    tuple[tuple[str, tuple[str, ...]], ...],
    dict[str, tuple[str, ...]],
    dict[str, tuple[int, ...]],
    tuple[int, ...],
]


@functools.lru_cache(maxsize=32)
def _needle_index(needles: tuple[tuple[str, ...], ...]) -> NeedleIndex:
    """Which needles to test: roots first, grouped by a punctuation gate; a longer needle is
    only tested when a root inside it is present ("sk-ant-" only after "sk")."""
    every = {n for ns in needles for n in ns}
    roots = sorted(n for n in every if not any(m != n and m in n for m in every))
    gated: dict[str, list[str]] = {}
    for root in roots:
        gated.setdefault(next((g for g in _GATES if g in root), ""), []).append(root)
    longer = {r: tuple(n for n in every if n != r and r in n) for r in every}
    rules = {n: tuple(i for i, ns in enumerate(needles) if n in ns) for n in every}
    always = tuple(i for i, ns in enumerate(needles) if not ns)
    return tuple((g, tuple(rs)) for g, rs in gated.items()), longer, rules, always


class Redactor:
    """Replaces secrets and personal data with `[REDACTED:<kind>]` and counts what it replaced."""

    def __init__(
        self, *, extra_patterns: dict[str, str] | None = None, keep_emails: bool = False
    ) -> None:
        extras = tuple(_compile_extra(k, p) for k, p in (extra_patterns or {}).items())
        email = () if keep_emails else (PERSON_NEAR_EMAIL, EMAIL)
        self._rules: tuple[Rule | LabelledRule, ...] = (
            *extras,
            *BUILTIN_HEAD,
            *email,
            *BUILTIN_TAIL,
        )
        self._index = _needle_index(tuple(rule.needles for rule in self._rules))
        self._counts: Counter[str] = Counter()

    def redact(self, text: str) -> str:
        """Replace findings with [REDACTED:<kind>] and count them."""
        for _ in range(_MAX_PASSES):
            # a replacement can expose a neighbour (a phone number glued to a token), so repeat
            # until nothing changes; text without findings costs a single pass
            new = self._pass(text)
            if new == text:
                break
            text = new
        return text

    def _pass(self, text: str) -> str:
        gated, longer, rules, always = self._index
        low = text.lower()
        active = set(always)
        for gate, roots in gated:
            if gate not in low:  # "" is in every string
                continue
            for root in roots:
                if root in low:
                    active.update(rules[root])
                    active.update(i for n in longer[root] if n in low for i in rules[n])
        prefiltered: dict[int, bool] = {}  # rules share prefilters; redaction adds no hits
        for i in sorted(active):
            rule = self._rules[i]
            if (pre := rule.prefilter) is not None:
                hit = prefiltered.get(id(pre))
                if hit is None:
                    hit = prefiltered[id(pre)] = pre.search(text) is not None
                if not hit:
                    continue
            text = rule.apply(text, self._counts)
        return text

    @property
    def counts(self) -> dict[str, int]:
        """Kind -> number of findings redacted so far, across calls."""
        return dict(self._counts)

    def redact_mapping(self, obj: Any) -> Any:
        """A copy of a JSON-like value with every string redacted; keys are kept as labels."""
        return self._walk(obj, None)

    def _walk(self, obj: Any, key: str | None) -> Any:
        if isinstance(obj, str):
            return self._redact_field(key, obj)
        if isinstance(obj, Mapping):
            return {k: self._walk(v, k if isinstance(k, str) else None) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v, key) for v in obj]
        if isinstance(obj, tuple):
            return tuple(self._walk(v, key) for v in obj)
        return obj

    def _redact_field(self, key: str | None, value: str) -> str:
        """A string value: its key is a label, so {"password": "hunter2"} is caught too."""
        if key is not None and key.lower() == "private_key" and "-----BEGIN" in value:
            self._counts["gcp_key"] += 1
            return marker("gcp_key")
        text = self.redact(value)
        kind = label_kind(key) if key else None
        if kind is None or not text or is_placeholder(text) or is_directory(key or "", text):
            return text
        scheme = SCHEME.match(text)
        head = scheme.group(0) if scheme else ""
        rest = text[len(head) :]
        if not rest or MARKER_RE.fullmatch(rest):
            return text
        if kind == "generic_secret" and not high_entropy(rest):
            return text
        self._counts[kind] += 1
        return head + marker(kind)


def _compile_extra(kind: str, pattern: str) -> Rule:
    if not _KIND_NAME.fullmatch(kind):
        raise ConfigError(
            f"redaction kind {kind!r} is not a valid name",
            hint="use lowercase letters, digits and _ (e.g. customer_id)",
        )
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"redaction pattern for {kind!r} is not a valid regular expression: {exc}",
            hint="check the escaping; a group named `secret` limits what is replaced",
        ) from exc
    return Rule(kind, compiled, guard_markers=True)


def redact_text(text: str) -> tuple[str, dict[str, int]]:
    """Redact one text with the default rules; returns the text and its counts."""
    redactor = Redactor()
    return redactor.redact(text), redactor.counts


def redact_mapping(obj: Any, *, redactor: Redactor | None = None) -> Any:
    """Redact every string value in a JSON-like dict/list (e.g. a request body); returns a copy."""
    return (redactor or Redactor()).redact_mapping(obj)
