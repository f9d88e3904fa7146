"""Reading Statuspage incidents (Manage API v1 and a public page's API v2) into timeline events.

Each `incident_updates` entry is one `status_page_update` event at its `display_at`, the time
the page shows. Its text leads with the state, as the page does ("Identified - We found …").
Per incident, the earliest update is marked `attrs["customer_update"] = "first"` and the last
`resolved` update `"resolved"`, so "time to first customer update" can be computed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

from retro.connector import Doc, ReadContext, shape_error
from retro.errors import BundleError
from retro.models import Provenance, TimelineEvent

SOURCE: Final = "statuspage"
_HINT = "export the Statuspage API response body unchanged (see docs/connectors/statuspage.md)"
MAINTENANCE = frozenset({"scheduled", "in_progress", "verifying", "completed"})
# An update posted this long after the time it displays was back-filled, not shown live.
BACKFILL = timedelta(minutes=10)


# --- recognizing documents -----------------------------------------------------------------------


def is_incident(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and bool(obj.get("id"))
        and isinstance(obj.get("incident_updates"), list)
        and "status" in obj
        and "name" in obj
    )


def _is_page(obj: Any) -> bool:
    return isinstance(obj, dict) and bool(obj.get("id")) and "url" in obj and "name" in obj


def classify(data: Any) -> str | None:
    """ "incidents" (a list or a public-API body), "incident" (one), or None."""
    if isinstance(data, list):
        return "incidents" if data and all(is_incident(i) for i in data[:50]) else None
    if not isinstance(data, dict):
        return None
    if is_incident(data):
        return "incident"
    for key in ("incidents", "scheduled_maintenances"):
        items = data.get(key)
        if isinstance(items, list) and items and all(is_incident(i) for i in items[:50]):
            return "incidents"
    # A quiet page's body: no incidents, but the page object says it is a Statuspage answer.
    if _is_page(data.get("page")) and any(
        data.get(k) == [] for k in ("incidents", "scheduled_maintenances")
    ):
        return "incidents"
    return None


def incidents_of(data: Any) -> list[dict[str, Any]] | None:
    """The incidents a body holds (a list, a public-API body, or one incident), or None."""
    name = classify(data)
    if name is None:
        return None
    return [rec for rec, _ in records_of(data, name) if is_incident(rec)]


def records_of(data: Any, name: str) -> list[tuple[Any, str]]:
    if name == "incident":
        return [(data, "incident")]
    if isinstance(data, list):
        return [(rec, f"[{i}]") for i, rec in enumerate(data)]
    out = []
    for key in ("incidents", "scheduled_maintenances"):
        out += [(rec, f"{key}[{i}]") for i, rec in enumerate(data.get(key) or [])]
    return out


# --- reading ---------------------------------------------------------------------------------------


def _components(update: dict[str, Any]) -> list[str]:
    return [
        f"{c.get('name')}: {c.get('new_status')}"
        for c in update.get("affected_components") or []
        if isinstance(c, dict) and c.get("name")
    ]


def _state(status: str) -> str:
    return status.replace("_", " ").capitalize()


class Reader:
    """Turns incidents into update events, keyed by update id so re-exports merge."""

    def __init__(self, ctx: ReadContext) -> None:
        self.ctx = ctx
        self.events: dict[str, TimelineEvent] = {}

    def time(self, value: Any, doc: Doc, record: str, name: str) -> datetime:
        return self.ctx.time(value, doc=doc, record=record, field_name=name)

    def incident(self, doc: Doc, rec: Any, record: str, page: dict[str, Any]) -> None:
        if not is_incident(rec):
            raise shape_error(doc, record, "not an incident with incident_updates", _HINT)
        updates = []
        for i, upd in enumerate(rec["incident_updates"]):
            where = f"{record}.incident_updates[{i}]"
            if not isinstance(upd, dict) or not upd.get("id"):
                raise shape_error(doc, where, "update has no id", _HINT)
            shown = self.time(
                upd.get("display_at") or upd.get("created_at"), doc, where, "display_at"
            )
            posted = self.time(upd.get("created_at") or shown, doc, where, "created_at")
            updates.append((shown, posted, upd, where))
        updates.sort(key=lambda u: (u[0], u[1], str(u[2]["id"])))
        maintenance = str(rec.get("status")) in MAINTENANCE or bool(rec.get("scheduled_for"))
        resolved = [u for u in updates if u[2].get("status") == "resolved"]
        base = self._incident_attrs(doc, rec, record, page, maintenance)
        for n, (shown, posted, upd, where) in enumerate(updates):
            marks = []
            if not maintenance and n == 0:
                marks.append("first")
            if not maintenance and resolved and upd is resolved[-1][2]:
                marks.append("resolved")
            status = str(upd.get("status") or "update")
            body = " ".join(str(upd.get("body") or "").split())
            attrs = {
                **base,
                "status": status,
                "first_public": n == 0,
                "customer_update": marks[0] if marks else None,
                "customer_update_marks": marks,
                "update_id": str(upd["id"]),
                "display_at": shown.isoformat().replace("+00:00", "Z"),
                "posted_at": posted.isoformat().replace("+00:00", "Z"),
                "backfilled": posted - shown > BACKFILL or None,
                "components": _components(upd),
                "notified_subscribers": upd.get("deliver_notifications"),
            }
            self.add(
                TimelineEvent.of(
                    key=f"statuspage:{rec['id']}:update:{upd['id']}",
                    at=shown,
                    source=SOURCE,
                    kind="status_page_update",
                    provenance=Provenance.of(doc.rel, where),
                    text=f"{_state(status)} - {body}" if body else _state(status),
                    url=rec.get("shortlink") or None,
                    attrs={k: v for k, v in attrs.items() if v not in (None, "", [], {})},
                )
            )
        if not updates:
            self.ctx.report.skip("incident without updates: nothing was posted")

    def _incident_attrs(
        self, doc: Doc, rec: dict[str, Any], record: str, page: dict[str, Any], maintenance: bool
    ) -> dict[str, Any]:
        started = rec.get("started_at")
        return {
            "incident_id": str(rec["id"]),
            "incident_name": rec.get("name"),
            "incident_status": rec.get("status"),
            "impact": rec.get("impact_override") or rec.get("impact"),
            "page_id": rec.get("page_id") or page.get("id"),
            "page_name": page.get("name"),
            "incident_started_at": (
                self.time(started, doc, record, "started_at").isoformat().replace("+00:00", "Z")
                if started
                else None
            ),
            "maintenance": maintenance or None,
        }

    def add(self, event: TimelineEvent) -> None:
        held = self.events.get(event.key)
        if held is not None:  # the same update in two bodies (a summary and an incidents list)
            self.ctx.report.skip("update repeated in another body")
            if held.provenance.file <= event.provenance.file:
                return
        self.events[event.key] = event


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
        page = doc.data.get("page") if isinstance(doc.data, dict) else None
        for rec, record in records_of(doc.data, name):
            ctx.report.records += 1
            try:
                reader.incident(doc, rec, record, page if isinstance(page, dict) else {})
            except BundleError as err:
                ctx.reject(err, reason="invalid Statuspage record")
    yield from sorted(reader.events.values(), key=lambda e: (e.at, e.key))
