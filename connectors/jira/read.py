"""Jira file mode: issue bodies, search bodies, comments and changelog pages, webhooks."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from connectors._support import read_time
from connectors.jira.adf import adf_to_text, as_dict
from retro.connector import Doc, ReadContext
from retro.errors import BundleError
from retro.models import (
    Actor,
    EventKind,
    Provenance,
    TimelineEvent,
)

CHANGE_TYPE = re.compile(r"change|deploy|release", re.IGNORECASE)
DONE_STATUSES = {"done", "deployed", "released", "closed", "completed", "implemented"}
_ISSUE_IN_URL = re.compile(r"/issue/([^/?#]+)/(comment|changelog)")
_MAX_VALUE = 300  # long field values (descriptions) are cut in event text, kept whole in attrs


# --- file mode ---------------------------------------------------------------------------------


def _is_issue(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("key"), str)
        and isinstance(value.get("fields"), dict)
    )


def _is_comment(value: Any) -> bool:
    return isinstance(value, dict) and "body" in value and "created" in value


def _is_history(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("items"), list) and "created" in value


def _shape(data: Any) -> str | None:
    """Which Jira body this is, or None."""
    if isinstance(data, list):
        return "list" if data and all(_is_issue(x) for x in data[:5]) else None
    if not isinstance(data, dict):
        return None
    event = data.get("webhookEvent")
    if isinstance(event, str) and (event.startswith("jira:") or event.startswith("comment_")):
        return "webhook" if _is_issue(data.get("issue")) else None
    if _is_issue(data):
        return "issue"
    issues = data.get("issues")
    if isinstance(issues, list) and issues and _is_issue(issues[0]):
        return "search"
    comments = data.get("comments")
    paged = "startAt" in data or "total" in data or "maxResults" in data
    if isinstance(comments, list) and paged and comments and _is_comment(comments[0]):
        return "comments"
    values = data.get("values")
    if (
        isinstance(values, list)
        and values
        and _is_history(values[0])
        and ("isLast" in data or paged)
    ):
        items = values[0]["items"]
        if not items or (isinstance(items[0], dict) and "field" in items[0]):
            return "changelog"
    return None


def site_of(url: Any) -> str | None:
    """`https://acme.atlassian.net` from any REST `self` URL of that site."""
    if isinstance(url, str) and "/rest/api/" in url:
        return url.split("/rest/api/", 1)[0]
    return None


# Every field of a Jira user object that actor_of reads.
_ACTOR_FIELDS = ("accountId", "name", "key", "displayName", "emailAddress", "accountType")


def actor_of(user: Any) -> Actor | None:
    """An Actor from a Jira user object (Cloud accountId or Server name/key)."""
    if not isinstance(user, dict):
        return None
    ident = user.get("accountId") or user.get("name") or user.get("key")
    name = user.get("displayName")
    if not ident and not name:
        return None
    return Actor(
        source="jira",
        id=str(ident) if ident else None,
        name=name,
        email=user.get("emailAddress") or None,
        is_bot=user.get("accountType") == "app",
    )


def _name(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("name") or value.get("value") or value.get("key")
    return value if isinstance(value, str) else None


def _cut(text: str | None, limit: int = _MAX_VALUE) -> str:
    text = (text or "").replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class _Issue:
    """One issue found in the bundle, with where it was found."""

    key: str
    data: dict[str, Any]
    doc: Doc
    record: str  # e.g. "issues[2]" or "" for a top-level issue

    @property
    def fields(self) -> dict[str, Any]:
        return self.data["fields"]

    @cached_property
    def site(self) -> str | None:
        comment = self.fields.get("comment")
        return site_of(self.data.get("self")) or site_of(
            comment.get("self") if isinstance(comment, dict) else None
        )

    @cached_property
    def issuetype(self) -> str | None:
        return _name(self.fields.get("issuetype"))

    def path(self, suffix: str) -> str:
        return f"{self.record}.{suffix}" if self.record else suffix


@dataclass
class _Index:
    """Issues by key and id across every claimed doc, so bodies without a key can be placed."""

    issues: dict[str, _Issue] = field(default_factory=dict)
    by_id: dict[str, str] = field(default_factory=dict)

    def add(self, issue: _Issue) -> None:
        self.issues.setdefault(issue.key, issue)
        if issue.data.get("id") is not None:
            self.by_id[str(issue.data["id"])] = issue.key

    def resolve(self, ref: str) -> str:
        """A key from a key or numeric id; an unknown id stays as it is."""
        return self.by_id.get(ref, ref)


def claims(doc: Doc) -> bool:
    try:
        return doc.fmt in ("json", "jsonl") and _shape(doc.data) is not None
    except Exception:  # claims must never raise, whatever the file holds
        return False


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    # Index every issue first: comment and changelog bodies name their issue by id, and a
    # history's kind depends on its issue's type, which may sit in another file.
    index = _Index()
    per_doc: list[tuple[Doc, list[_Issue]]] = []
    for doc in docs:
        issues = list(_issues_in(doc, ctx))
        for issue in issues:
            index.add(issue)
        per_doc.append((doc, issues))
    reader = _Reader(ctx, index)
    for doc, issues in per_doc:
        for issue in issues:
            yield from reader.issue(issue)
        yield from reader.extras(doc)


def _issues_in(doc: Doc, ctx: ReadContext) -> Iterator[_Issue]:
    """Every issue body in a doc; malformed entries of a search body or list are rejected."""
    shape = _shape(doc.data)
    if shape == "issue":
        yield _Issue(doc.data["key"], doc.data, doc, "")
    elif shape == "webhook":
        yield _Issue(doc.data["issue"]["key"], doc.data["issue"], doc, "issue")
    elif shape in ("search", "list"):
        items = doc.data["issues"] if shape == "search" else doc.data
        prefix = "issues" if shape == "search" else ""
        for i, item in enumerate(items):
            record = f"{prefix}[{i}]"
            if _is_issue(item):
                yield _Issue(item["key"], item, doc, record)
                continue
            ctx.report.records += 1
            err = BundleError(
                doc.rel,
                "not a Jira issue (needs `key` and a `fields` object)",
                record=record,
                hint="save issues as GET /rest/api/3/issue/<KEY>?expand=changelog returns them",
            )
            ctx.reject(err, reason="malformed issue")


class _Reader:
    """Turns the claimed docs into events, once per event key."""

    def __init__(self, ctx: ReadContext, index: _Index) -> None:
        self.ctx = ctx
        self.index = index
        self.seen: set[str] = set()
        self.bases: dict[str, dict[str, Any]] = {}
        self.actors: dict[tuple[str | None, ...], Actor | None] = {}

    def _actor(self, user: Any) -> Actor | None:
        """actor_of(user), shared by every record of one user: big changelogs repeat authors."""
        if not isinstance(user, dict):
            return None
        key = tuple(map(user.get, _ACTOR_FIELDS))
        try:
            return self.actors[key]  # only keys of str and None are stored, see below
        except KeyError:
            pass
        except TypeError:  # an unhashable value, e.g. a list
            return actor_of(user)
        if not all(v is None or type(v) is str for v in key):
            return actor_of(user)  # odd values: no cache key that is sure to mean the same actor
        actor = self.actors[key] = actor_of(user)
        return actor

    def extras(self, doc: Doc) -> Iterator[TimelineEvent]:
        """Events of bodies that are not issues: webhook changelog, comment and changelog pages."""
        shape = _shape(doc.data)
        if shape == "webhook":
            yield from self._webhook(doc)
        elif shape == "comments":
            yield from self._comments_body(doc)
        elif shape == "changelog":
            yield from self._changelog_body(doc)

    # -- one event, guarded ----------------------------------------------------------------
    def _guard(self, build: Callable[..., TimelineEvent], *args: Any) -> list[TimelineEvent]:
        """Build one event; a bad record is rejected (strict) or counted as skipped (lenient).

        A list of zero or one events rather than a generator: callers `yield from` it, and
        changelogs have enough items for the generator frames to show.
        """
        self.ctx.report.records += 1
        try:
            event = build(*args)
        except BundleError as err:
            self.ctx.reject(err, reason="invalid Jira record")
            return []
        if event.key in self.seen:
            self.ctx.report.skip("duplicate Jira record (same key in another file)")
            return []
        self.seen.add(event.key)
        return [event]

    # -- issues -----------------------------------------------------------------------------
    def issue(self, issue: _Issue) -> Iterator[TimelineEvent]:
        fields = issue.fields
        if fields.get("created"):
            yield from self._guard(self._created, issue)
        else:
            self.ctx.report.records += 1
            self.ctx.report.skip("issue without fields.created (no ticket_created event)")
        changelog = issue.data.get("changelog")
        if isinstance(changelog, dict):
            histories = changelog.get("histories")
            if not isinstance(histories, list):
                yield from self._guard(
                    self._bad, issue.doc, issue.path("changelog"), "histories is not a list"
                )
            else:
                for h, history in enumerate(histories):
                    yield from self._history(
                        issue.key, history, issue.doc, issue.path(f"changelog.histories[{h}]")
                    )
        yield from self._embedded_comments(issue)

    def _embedded_comments(self, issue: _Issue) -> Iterator[TimelineEvent]:
        comment = issue.fields.get("comment")
        # `fields.comment` is {"comments": [...]} in real responses; the v3 OpenAPI example
        # shows a bare list, so accept both.
        if isinstance(comment, dict):
            comments, path = comment.get("comments"), issue.path("fields.comment.comments")
        else:
            comments, path = comment, issue.path("fields.comment")
        if comments is None:
            return
        if not isinstance(comments, list):
            yield from self._guard(self._bad, issue.doc, path, "comments is not a list")
            return
        for c, item in enumerate(comments):
            yield from self._guard(self._comment, issue.key, item, issue.doc, f"{path}[{c}]")

    def _bad(self, doc: Doc, record: str, message: str) -> TimelineEvent:
        raise BundleError(
            doc.rel, message, record=record, hint="save the body Jira returned, unedited"
        )

    def _created(self, issue: _Issue) -> TimelineEvent:
        fields = issue.fields
        at = read_time(
            self.ctx,
            fields.get("created"),
            doc=issue.doc,
            record=issue.path("fields.created"),
            field_name="created",
        )
        summary = fields.get("summary") or ""
        description = adf_to_text(fields.get("description"))
        attrs = self._base_attrs(issue.key) | {
            "summary": summary,
            "priority": _name(fields.get("priority")),
            "status": _name(fields.get("status")),
            "status_category": _name(as_dict(fields.get("status")).get("statusCategory")),
            "resolution": _name(fields.get("resolution")),
            "labels": [x for x in fields.get("labels") or [] if isinstance(x, str)],
            "components": [c for c in (_name(x) for x in fields.get("components") or []) if c],
            "links": _links(fields.get("issuelinks")),
        }
        if description:
            attrs["description"] = description[:4000]
        return TimelineEvent.of(
            key=f"jira:{issue.key}:created",
            at=at,
            source="jira",
            kind="ticket_created",
            actor=self._actor(fields.get("reporter")) or self._actor(fields.get("creator")),
            text=f"{issue.key} created: {summary}" if summary else f"{issue.key} created",
            url=self._url(issue.key),
            provenance=Provenance.of(issue.doc.rel, issue.record or "(issue)"),
            attrs={k: v for k, v in attrs.items() if v not in (None, "", [])},
        )

    def _base_attrs(self, key: str) -> dict[str, Any]:
        """The attrs every event of issue `key` starts with (a new dict each call)."""
        base = self.bases.get(key)
        if base is None:
            base = self.bases[key] = self._issue_attrs(key)
        return dict(base)

    def _issue_attrs(self, key: str) -> dict[str, Any]:
        issue = self.index.issues.get(key)
        if issue is None:
            # A comments page names its issue by numeric id only; without the issue in the
            # bundle that id is all we know.
            return {"issue_id": key} if key.isdigit() else {"key": key}
        project = issue.fields.get("project")
        return {
            "key": key,
            "issuetype": issue.issuetype,
            "project": project.get("key") if isinstance(project, dict) else None,
        }

    def _url(self, key: str, comment_id: str | None = None) -> str | None:
        issue = self.index.issues.get(key)
        site = issue.site if issue else None
        if site is None:
            return None
        url = f"{site}/browse/{key}"
        return f"{url}?focusedCommentId={comment_id}" if comment_id else url

    # -- changelog --------------------------------------------------------------------------
    def _history(self, key: str, history: Any, doc: Doc, record: str) -> Iterator[TimelineEvent]:
        if not _is_history(history):
            yield from self._guard(
                self._bad, doc, record, "changelog history needs `created` and an `items` list"
            )
            return
        for i, item in enumerate(history["items"]):
            yield from self._guard(self._change, key, history, i, item, doc, f"{record}.items[{i}]")

    def _change(
        self, key: str, history: dict[str, Any], i: int, item: Any, doc: Doc, record: str
    ) -> TimelineEvent:
        if not isinstance(item, dict) or not (item.get("field") or item.get("fieldId")):
            raise BundleError(
                doc.rel,
                "changelog item has no `field`",
                record=record,
                hint="each item needs field, fromString and toString",
            )
        at = read_time(
            self.ctx, history.get("created"), doc=doc, record=record, field_name="created"
        )
        field_name = str(item.get("field") or item.get("fieldId"))
        before, after = item.get("fromString"), item.get("toString")
        kind, text = self._classify(key, field_name, before, after)
        attrs = self._base_attrs(key) | {
            "field": field_name,
            "field_id": item.get("fieldId"),
            "from": before,
            "to": after,
            "from_id": item.get("from"),
            "to_id": item.get("to"),
            "history_id": history.get("id"),
        }
        return TimelineEvent.of(
            key=f"jira:{key}:history:{history.get('id', '?')}:{i}",
            at=at,
            source="jira",
            kind=kind,
            actor=self._actor(history.get("author")),
            text=text,
            url=self._url(key),
            provenance=Provenance.of(doc.rel, record),
            attrs={k: v for k, v in attrs.items() if v is not None},
        )

    def _classify(
        self, key: str, field_name: str, before: Any, after: Any
    ) -> tuple[EventKind, str]:
        shown_from = _cut(str(before)) if before not in (None, "") else "∅"
        shown_to = _cut(str(after)) if after not in (None, "") else "∅"
        lowered = field_name.lower()
        if lowered == "status":
            issue = self.index.issues.get(key)
            if (
                issue
                and CHANGE_TYPE.search(issue.issuetype or "")
                and str(after).lower() in DONE_STATUSES
            ):
                summary = issue.fields.get("summary") or issue.issuetype
                return "change_deployed", f"{key} deployed ({shown_from} → {shown_to}): {summary}"
            return "status_change", f"{key} status: {shown_from} → {shown_to}"
        if lowered == "priority":
            return "priority_change", f"{key} priority: {shown_from} → {shown_to}"
        if lowered == "assignee":
            who_from = shown_from if before else "Unassigned"
            who_to = shown_to if after else "Unassigned"
            return "assignee_change", f"{key} assignee: {who_from} → {who_to}"
        if lowered == "resolution":
            # A resolution being set or cleared is part of the ticket's lifecycle, so it sits
            # with status changes rather than with generic field edits.
            return "status_change", f"{key} resolution: {shown_from} → {shown_to}"
        return "field_change", f"{key} {field_name}: {shown_from} → {shown_to}"

    # -- comments ---------------------------------------------------------------------------
    def _comment(self, key: str, item: Any, doc: Doc, record: str) -> TimelineEvent:
        if not isinstance(item, dict) or item.get("id") is None:
            raise BundleError(
                doc.rel,
                "comment has no `id`",
                record=record,
                hint="save comments as GET /rest/api/3/issue/<KEY>/comment returns them",
            )
        at = read_time(self.ctx, item.get("created"), doc=doc, record=record, field_name="created")
        body = adf_to_text(item.get("body"))
        cid = str(item["id"])
        parent = (
            f"jira:{key}:comment:{item['parentId']}" if item.get("parentId") is not None else None
        )
        attrs = self._base_attrs(key) | {"comment_id": cid, "body": body}
        visibility = item.get("visibility")
        if isinstance(visibility, dict) and visibility.get("value"):
            attrs["visibility"] = f"{visibility.get('type')}:{visibility.get('value')}"
        return TimelineEvent.of(
            key=f"jira:{key}:comment:{cid}",
            at=at,
            source="jira",
            kind="comment",
            actor=self._actor(item.get("author")),
            text=f"{_label(key)} comment: {body}",
            url=self._url(key, cid),
            parent=parent,
            thread=parent,
            provenance=Provenance.of(doc.rel, record),
            attrs=attrs,
            edited=bool(item.get("updated")) and item.get("updated") != item.get("created"),
        )

    def _comments_body(self, doc: Doc) -> Iterator[TimelineEvent]:
        for c, item in enumerate(doc.data["comments"]):
            record = f"comments[{c}]"
            match = (
                _ISSUE_IN_URL.search(str(item.get("self", ""))) if isinstance(item, dict) else None
            )
            if match is None:
                self.ctx.report.records += 1
                err = BundleError(
                    doc.rel,
                    "cannot tell which issue this comment belongs to (no `self` URL)",
                    record=record,
                    hint="save comments inside the issue (fields.comment) as `retro harvest` does",
                )
                self.ctx.reject(err, reason="comment without issue")
                continue
            yield from self._guard(
                self._comment, self.index.resolve(match.group(1)), item, doc, record
            )

    def _changelog_body(self, doc: Doc) -> Iterator[TimelineEvent]:
        match = _ISSUE_IN_URL.search(str(doc.data.get("self", "")))
        if match is None:
            self.ctx.report.records += 1
            err = BundleError(
                doc.rel,
                "cannot tell which issue this changelog belongs to (no `self` URL)",
                record="self",
                hint="save the changelog inside the issue (expand=changelog)",
            )
            self.ctx.reject(err, reason="changelog without issue")
            return
        key = self.index.resolve(match.group(1))
        for h, history in enumerate(doc.data["values"]):
            yield from self._history(key, history, doc, f"values[{h}]")

    # -- webhook ----------------------------------------------------------------------------
    def _webhook(self, doc: Doc) -> Iterator[TimelineEvent]:
        data = doc.data
        key = data["issue"]["key"]
        changelog = data.get("changelog")
        if isinstance(changelog, dict) and isinstance(changelog.get("items"), list):
            # The webhook's changelog has the history id but not its time or author: those are
            # the delivery's timestamp and user, which is when and by whom it changed.
            history = {
                "id": changelog.get("id"),
                "created": data.get("timestamp"),
                "author": data.get("user"),
                "items": changelog["items"],
            }
            yield from self._history(key, history, doc, "changelog")
        if isinstance(data.get("comment"), dict):
            yield from self._guard(self._comment, key, data["comment"], doc, "comment")


def _label(key: str) -> str:
    """How event text names an issue: its key, or "issue <id>" when only the id is known."""
    return f"issue {key}" if key.isdigit() else key


def _links(value: Any) -> list[dict[str, Any]]:
    """`fields.issuelinks` as small dicts: key, direction, relation, type, status, issuetype."""
    out: list[dict[str, Any]] = []
    for link in value or []:
        if not isinstance(link, dict):
            continue
        ltype = as_dict(link.get("type"))
        for direction in ("outward", "inward"):
            other = link.get(f"{direction}Issue")
            if not isinstance(other, dict) or not other.get("key"):
                continue
            fields = as_dict(other.get("fields"))
            entry = {
                "key": other["key"],
                "direction": direction,
                "relation": ltype.get(direction),
                "type": ltype.get("name"),
                "summary": fields.get("summary"),
                "status": _name(fields.get("status")),
                "issuetype": _name(fields.get("issuetype")),
            }
            out.append({k: v for k, v in entry.items() if v})
    return out
