"""The JQL subset the Jira emulator understands: clauses joined by AND, ORDER BY.

Supported: `field = v`, `field != v`, `field in (a, b)`, `field not in (a, b)`, `field ~ "text"`
for project, key/issuekey, labels, status, statusCategory, issuetype/type, priority, assignee,
reporter, component, text, summary, description. Anything else raises JqlError, which the
emulator answers with Jira's 400 shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>!=|!~|~|=|\(|\)|,)'
    r"|(?P<word>[^\s=!~(),\"']+))"
)
FIELDS = {
    "project",
    "key",
    "issuekey",
    "labels",
    "status",
    "statuscategory",
    "issuetype",
    "type",
    "priority",
    "assignee",
    "reporter",
    "component",
    "text",
    "summary",
    "description",
}


class JqlError(ValueError):
    """The query is outside the subset or malformed."""


@dataclass
class Clause:
    field: str
    op: str  # "=", "!=", "in", "not in", "~"
    values: list[str]


@dataclass
class Query:
    clauses: list[Clause]
    order_by: str | None = None
    descending: bool = False


def _tokens(jql: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(jql):
        match = _TOKEN.match(jql, pos)
        if match is None or match.end() == pos:
            if jql[pos:].strip() == "":
                break
            raise JqlError(f"Error in the JQL Query: unexpected character at position {pos}.")
        pos = match.end()
        text = match.group("str") or match.group("op") or match.group("word")
        if text is not None:
            out.append(text)
    return out


def _unquote(token: str) -> str:
    if token[:1] in "\"'" and token[-1:] == token[:1]:
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def parse(jql: str) -> Query:
    """Parse the supported subset; raise JqlError otherwise."""
    tokens = _tokens(jql)
    query = Query(clauses=[])
    i = 0
    while i < len(tokens):
        word = tokens[i].lower()
        if word == "order" and i + 1 < len(tokens) and tokens[i + 1].lower() == "by":
            rest = tokens[i + 2 :]
            if not rest:
                raise JqlError("Error in the JQL Query: expecting a field name after 'order by'.")
            query.order_by = rest[0].lower()
            query.descending = len(rest) > 1 and rest[1].lower() == "desc"
            return query
        if word == "and":
            i += 1
            continue
        if word == "or":
            raise JqlError("Error in the JQL Query: OR is not supported by this emulator.")
        clause, i = _clause(tokens, i)
        query.clauses.append(clause)
    return query


def _clause(tokens: list[str], i: int) -> tuple[Clause, int]:
    name = _unquote(tokens[i]).lower()
    if name not in FIELDS:
        raise JqlError(
            f"Field '{tokens[i]}' does not exist or you do not have permission to view it."
        )
    if i + 2 > len(tokens):
        raise JqlError(f"Error in the JQL Query: expecting an operator after '{tokens[i]}'.")
    op = tokens[i + 1].lower()
    i += 2
    if op == "not" and i < len(tokens) and tokens[i].lower() == "in":
        op, i = "not in", i + 1
    if op in ("in", "not in"):
        if i >= len(tokens) or tokens[i] != "(":
            raise JqlError("Error in the JQL Query: expecting '(' after IN.")
        values: list[str] = []
        i += 1
        while i < len(tokens) and tokens[i] != ")":
            if tokens[i] != ",":
                values.append(_unquote(tokens[i]))
            i += 1
        if i >= len(tokens):
            raise JqlError("Error in the JQL Query: expecting ')'.")
        return Clause(name, op, values), i + 1
    if op not in ("=", "!=", "~"):
        raise JqlError(f"Error in the JQL Query: the operator '{op}' is not supported.")
    if i >= len(tokens):
        raise JqlError("Error in the JQL Query: expecting a value.")
    return Clause(name, op, [_unquote(tokens[i])]), i + 1


def matches(query: Query, values_of: Callable[[str], list[str]]) -> bool:
    """True when every clause holds; values_of(field) gives the issue's values, lowercased."""
    return all(_holds(c, values_of(c.field)) for c in query.clauses)


def _holds(clause: Clause, have: list[str]) -> bool:
    wanted = [v.lower() for v in clause.values]
    if clause.op == "~":
        return any(wanted[0] in h for h in have)
    hit = any(w in have for w in wanted)
    return hit if clause.op in ("=", "in") else not hit


def sort_key(order_by: str | None) -> Callable[[Any], Any] | None:
    """Only `created` and `key` orders are honoured; others keep insertion order."""
    if order_by == "created":
        return lambda issue: issue.created
    if order_by in ("key", "issuekey"):
        return lambda issue: (issue.project, issue.number)
    return None
