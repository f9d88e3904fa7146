"""Redact secrets and personal data from text before it leaves the machine.

Every finding becomes `[REDACTED:<kind>]` and is counted per kind. The rules live in
retro.safety.patterns (secrets) and retro.safety.personal (personal data); this module runs them, cheaply: one substring test per needle tells which
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
    MARKER_PREFIX,
    MARKER_RE,
    SCHEME,
    Lowered,
    Prefilter,
    Rule,
    is_directory,
    is_placeholder,
    label_kind,
    label_test,
    marker,
    value_passes,
)
from retro.safety.personal import EMAIL, PERSON_NEAR_EMAIL, PERSONAL, USER_LOGIN, RuleLike

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

# A needle is tested only when its gate character is in the line: punctuation first (a line
# without "_" skips every "ghp_"), else its rarest letter (a line without "k" skips "token").
_GATES = "_-.@+:/" + "zqjxkvbywgpfmucdlhrsnioate"
# (gate char -> root needles, needle -> longer needles containing it, needle -> rules, always)
NeedleIndex = tuple[
    tuple[tuple[str, tuple[str, ...]], ...],
    dict[str, tuple[str, ...]],
    dict[str, tuple[int, ...]],
    tuple[int, ...],
]


@functools.lru_cache(maxsize=32)
def _needle_index(needles: tuple[tuple[str, ...] | None, ...]) -> NeedleIndex:
    """Which needles to test: roots first, grouped by a gate character; a longer needle is
    only tested when a root inside it is present ("sk-ant-" only after "sk"). A rule whose
    needles are None is gated by words instead, and is never in `always`."""
    every = {n for ns in needles if ns for n in ns}
    roots = sorted(n for n in every if not any(m != n and m in n for m in every))
    gated: dict[str, list[str]] = {}
    for root in roots:
        gated.setdefault(next((g for g in _GATES if g in root), ""), []).append(root)
    longer = {r: tuple(n for n in every if n != r and r in n) for r in every}
    rules = {n: tuple(i for i, ns in enumerate(needles) if ns and n in ns) for n in every}
    always = tuple(i for i, ns in enumerate(needles) if ns is not None and not ns)
    order = tuple((g, tuple(rs)) for g, rs in gated.items())
    return order, longer, rules, always


class Redactor:
    """Replaces secrets and personal data with `[REDACTED:<kind>]` and counts what it replaced."""

    def __init__(
        self, *, extra_patterns: dict[str, str] | None = None, keep_emails: bool = False
    ) -> None:
        extras = tuple(_compile_extra(k, p) for k, p in (extra_patterns or {}).items())
        email = () if keep_emails else (PERSON_NEAR_EMAIL, EMAIL, USER_LOGIN)
        self._rules: tuple[RuleLike, ...] = (*extras, *BUILTIN_HEAD, *email, *PERSONAL)
        self._index = _needle_index(
            tuple(None if rule.words else rule.needles for rule in self._rules)
        )
        # rules gated by whole words ("customer", "regards,"): one split of the line serves all
        self._worded = tuple((i, rule.words) for i, rule in enumerate(self._rules) if rule.words)
        self._all_words = frozenset().union(*(words for _, words in self._worded))
        # each distinct prefilter gets a slot, so a pass evaluates it at most once
        self._prefilters: list[Prefilter] = []
        self._slots: list[int] = []
        for rule in self._rules:
            pre = rule.prefilter
            if pre is not None and pre not in self._prefilters:
                self._prefilters.append(pre)
            self._slots.append(-1 if pre is None else self._prefilters.index(pre))
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
        found: set[int] | None = None
        for gate, roots in gated:
            if gate not in low:
                continue
            for root in roots:
                if root in low:
                    found = found or set()
                    found.update(rules[root])
                    found.update(i for n in longer[root] if n in low for i in rules[n])
        if self._worded and (present := self._all_words.intersection(low.split())):
            for i, words in self._worded:
                if not words.isdisjoint(present):
                    found = found or set()
                    found.add(i)
        order = always if found is None else sorted(found.union(always))
        hits: list[bool | None] = [None] * len(self._prefilters)  # rules share prefilters
        for i in order:
            rule, slot = self._rules[i], self._slots[i]
            if slot >= 0:
                hit = hits[slot]
                if hit is None:
                    pre = self._prefilters[slot]
                    on = low if isinstance(pre, Lowered) else text
                    hit = hits[slot] = pre.search(on) is not None
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
        test = label_test(key) if key else None
        if test is None or not text or is_placeholder(text) or is_directory(key or "", text):
            return text
        scheme = SCHEME.match(text)
        head = scheme.group(0) if scheme else ""
        rest = text[len(head) :]
        if not rest or MARKER_RE.fullmatch(rest) or not value_passes(test[1], rest):
            return text
        kind = test[0]
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
