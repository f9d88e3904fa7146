"""Reading Sentry issues (API 0 bodies and integration webhooks) into timeline events.

Error onset is evidence for impact start, so it gets its own kind: `error_spike`, an error
tracker saw errors start (`firstSeen`), come back (a `set_regression` activity) or surge (a
`set_escalating` activity) at that time. Its attrs say which (`onset`), with the issue's
`first_seen`, `last_seen`, `count`, `user_count`, `status` and `substatus`. Comments on the issue
are `comment` events; other activity (resolved, assigned, ignored, …) is `other` or
`assignee_change`, never a status change, since an error issue is not the incident.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from connectors._support import Collector
from retro.connector import Doc, ReadContext, shape_error
from retro.errors import BundleError
from retro.models import Actor, EventKind, Provenance, TimelineEvent

SOURCE: Final = "sentry"
_HINT = "export the Sentry API response body unchanged (see docs/connectors/sentry.md)"
ONSETS = {
    "first_seen": "first_seen",
    "set_regression": "regression",
    "set_escalating": "escalating",
}
ACTIVITY_KINDS: dict[str, EventKind] = {
    "note": "comment",
    "assigned": "assignee_change",
    "unassigned": "assignee_change",
}
RANK_LIST, RANK_DETAIL = 1, 2


# --- recognizing documents -----------------------------------------------------------------------


def is_issue(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj.get("id"))
        and "shortId" in obj
        and "firstSeen" in obj
        and "lastSeen" in obj
    )


def classify(data: Any) -> str | None:
    """ "issues" (a list), "issue" (one, maybe with activity), "webhook", or None."""
    if isinstance(data, list):
        return "issues" if data and all(is_issue(i) for i in data[:50]) else None
    if not isinstance(data, dict):
        return None
    if is_issue(data):
        return "issue"
    inner = data.get("data")
    if (
        isinstance(data.get("action"), str)
        and isinstance(inner, dict)
        and is_issue(inner.get("issue"))
    ):
        return "webhook"
    return None


def records_of(data: Any, name: str) -> list[tuple[Any, str]]:
    if name == "issues":
        return [(rec, f"[{i}]") for i, rec in enumerate(data)]
    if name == "webhook":
        return [(data["data"]["issue"], "data.issue")]
    return [(data, "issue")]


# --- reading ---------------------------------------------------------------------------------------


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


class Reader:
    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.out = Collector(ctx)

    def time(self, value: Any, doc: Doc, record: str, name: str) -> datetime:
        return self.ctx.time(value, doc=doc, record=record, field_name=name)

    def emit(self, doc: Doc, record: str, rank: int, **kw: Any) -> None:
        attrs = {k: v for k, v in kw.pop("attrs", {}).items() if v not in (None, "", [], {})}
        event = TimelineEvent.of(
            source=SOURCE, provenance=Provenance.of(doc.rel, record), attrs=attrs, **kw
        )
        self.out.add(event, rank)

    def issue(self, doc: Doc, rec: Any, record: str, rank: int) -> None:
        if not is_issue(rec):
            raise shape_error(doc, record, "not a Sentry issue (id, shortId, firstSeen)", _HINT)
        first = self.time(rec["firstSeen"], doc, record, "firstSeen")
        last = self.time(rec["lastSeen"], doc, record, "lastSeen") if rec["lastSeen"] else None
        project = rec.get("project") if isinstance(rec.get("project"), dict) else {}
        base = {
            "issue_id": str(rec["id"]),
            "short_id": rec.get("shortId"),
            "issue_title": rec.get("title"),
            "project": project.get("slug") or project.get("name"),
            "culprit": rec.get("culprit"),
            "level": rec.get("level"),
            "status": rec.get("status"),
            "substatus": rec.get("substatus"),
            "priority": rec.get("priority"),
            "first_seen": _iso(first),
            "last_seen": _iso(last),
            "count": _count(rec.get("count")),
            "user_count": _count(rec.get("userCount")),
            "first_release": (rec.get("firstRelease") or {}).get("version"),
            "unhandled": rec.get("isUnhandled"),
        }
        where = f" in {base['project']}" if base["project"] else ""
        self.emit(
            doc,
            record,
            rank,
            key=f"sentry:issue:{rec['id']}:first_seen",
            at=first,
            kind="error_spike",
            text=f"New error{where}: {rec.get('title') or rec.get('shortId')}",
            url=rec.get("permalink") or None,
            attrs={**base, "onset": "first_seen", "onset_at": _iso(first)},
            is_bot=True,
        )
        for i, act in enumerate(rec.get("activity") or []):
            self.activity(doc, f"{record}.activity[{i}]", act, rec, base)

    def activity(
        self, doc: Doc, record: str, act: Any, rec: dict[str, Any], base: dict[str, Any]
    ) -> None:
        if not isinstance(act, dict) or not act.get("type"):
            raise shape_error(doc, record, "activity has no type", _HINT)
        atype = str(act["type"])
        at = self.time(act.get("dateCreated"), doc, record, "dateCreated")
        data: dict[str, Any] = act["data"] if isinstance(act.get("data"), dict) else {}
        user: dict[str, Any] = act["user"] if isinstance(act.get("user"), dict) else {}
        actor = None
        if user:
            uid, name, email = str(user.get("id")), user.get("name"), user.get("email")
            actor = Actor(source=SOURCE, id=uid, name=name, email=email)
        title = rec.get("title") or rec.get("shortId")
        if atype == "first_seen":  # the issue's own firstSeen already made this event
            return
        attrs = {**base, "activity": atype, "activity_id": act.get("id"), "activity_data": data}
        key = f"sentry:issue:{rec['id']}:activity:{act.get('id') or f'{atype}:{at:%Y%m%dT%H%M%S}'}"
        if atype in ONSETS:
            what = "Error regressed" if atype == "set_regression" else "Error escalating"
            text, kind = f"{what}: {title}", "error_spike"
            attrs.update(onset=ONSETS[atype], onset_at=_iso(at), release=data.get("version"))
        elif atype == "note":
            text, kind = str(data.get("text") or ""), "comment"
        else:
            verb = atype.removeprefix("set_").replace("_", " ")
            text, kind = f"Sentry issue {verb}: {title}", ACTIVITY_KINDS.get(atype, "other")
        self.emit(
            doc,
            record,
            RANK_DETAIL,
            key=key,
            at=at,
            kind=kind,
            text=text,
            actor=actor,
            url=rec.get("permalink"),
            attrs=attrs,
            is_bot=actor is None,
        )


def claims(doc: Doc) -> bool:
    """True when this connector recognizes the document by its content."""
    if doc.fmt != "json":
        return False
    try:
        return classify(doc.data) is not None
    except Exception:  # claims must never raise, whatever the file holds
        return False


def read_bundle(docs: list[Doc], ctx: ReadContext) -> Iterator[TimelineEvent]:
    """Turn the claimed documents into events; count what is skipped in ctx.report."""
    reader = Reader(ctx)
    for doc in docs:
        name = classify(doc.data)
        if name is None:
            continue
        if name == "webhook":  # a webhook carries no time for its action: only the issue is read
            ctx.report.skip(f"webhook action `{doc.data['action']}` has no time of its own")
        rank = RANK_DETAIL if name == "issue" else RANK_LIST
        for rec, record in records_of(doc.data, name):
            ctx.report.records += 1
            try:
                reader.issue(doc, rec, record, rank)
            except BundleError as err:
                ctx.reject(err, reason="invalid Sentry record")
    yield from reader.out.sorted()
