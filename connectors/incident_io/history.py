"""incident.io history import: incidents with timestamps, follow-ups and postmortem documents.

Live mode pages `GET /v2/incidents` (cursor `after`, filtered on `created_at`), reads
`GET /v2/follow_ups` once, pages `GET /v1/postmortem_documents` and fetches each document's
Markdown with `GET /v1/postmortem_documents/{id}/content`. File mode reads the same bodies
saved from the API; a saved content body (`{"markdown": ...}`) is linked to its document by
the document id in its file name.

Times come from the incident's timestamp values, by name: "Impact started" is impact start,
"Reported"/"Detected" detected, "Accepted"/"Acknowledged" acknowledged, "Fixed"/"Mitigated"/
"Stabilised" mitigated, "Resolved" resolved; `created_at` is declared. Declined, merged and
canceled incidents are left out (counted as skipped). A postmortem document is final once its
status is completed or published; its `updated_at` then stands for when it was reviewed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import connectors.incident_io.live as live
from connectors._history import iso, live_range, name_of, saved_bodies, when
from connectors.incident_io.read import LEFT_OUT, is_incident, stamp_milestone
from retro.connector import HistoryQuery, ImportedAction, ImportedIncident, ImportedPostmortem
from retro.errors import BundleError
from retro.models import Progress, no_progress

SOURCE = live.SOURCE
_FOLLOW_UP = {"outstanding": "open", "completed": "done", "not_doing": "wontfix"}
_FINAL = frozenset({"completed", "published", "final", "done"})


class _Found:
    def __init__(self) -> None:
        self.incidents: dict[str, tuple[dict[str, Any], str]] = {}
        self.follow_ups: dict[str, dict[str, dict[str, Any]]] = {}
        self.documents: dict[str, dict[str, Any]] = {}  # doc id -> document
        self.markdown: dict[str, str] = {}  # doc id -> content

    def take(self, body: Any, where: str, query: HistoryQuery) -> None:
        if not isinstance(body, dict):
            query.skip("incident_io: file is not a JSON object")
            return
        incidents = body.get("incidents") or ([body["incident"]] if "incident" in body else [])
        for n, item in enumerate(incidents):
            if is_incident(item):
                self.incidents[str(item["id"])] = (item, f"{where} [{n}]")
            else:
                query.skip("incident_io: list item is not an incident")
        follow_ups = body.get("follow_ups") or ([body["follow_up"]] if "follow_up" in body else [])
        for item in follow_ups:
            if isinstance(item, dict) and item.get("incident_id") and item.get("id"):
                self.follow_ups.setdefault(str(item["incident_id"]), {})[str(item["id"])] = item
        docs = body.get("postmortem_documents") or (
            [body["postmortem_document"]] if "postmortem_document" in body else []
        )
        for entry in docs:
            if isinstance(entry, dict) and entry.get("id"):
                self.documents[str(entry["id"])] = entry
        if isinstance(body.get("markdown"), str):
            name = Path(where.split(":")[0]).stem
            doc_id = next((d for d in self.documents if d in name), name)
            self.markdown[doc_id] = body["markdown"]


def import_history(
    query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
) -> Iterator[ImportedIncident]:
    found = _Found()
    if query.files:
        bodies = list(saved_bodies(query.files))
        # Documents first, so a content body finds the document its file name names.
        for where, body in sorted(
            bodies, key=lambda wb: isinstance(wb[1], dict) and "markdown" in wb[1]
        ):
            found.take(body, where, query)
    else:
        _fetch(found, query, config, progress)
    docs_by_incident: dict[str, dict[str, Any]] = {}
    for entry in found.documents.values():
        if entry.get("incident_id"):
            docs_by_incident[str(entry["incident_id"])] = entry
    for inc_id, (item, where) in found.incidents.items():
        category = str((item.get("incident_status") or {}).get("category") or "")
        if category in LEFT_OUT:
            query.skip(f"incident_io: {category} incident")
            continue
        doc: dict[str, Any] | None = docs_by_incident.get(inc_id)
        record = incident_record(
            item,
            where,
            found.follow_ups.get(inc_id, {}),
            doc,
            found.markdown.get(str(doc["id"]), "") if doc else "",
            query,
        )
        if query.wants(record.times.get("impact_start") or record.times.get("declared")):
            yield record


def _fetch(found: _Found, query: HistoryQuery, config: BaseModel, progress: Progress) -> None:
    cfg = live.config_of(config)
    since, until = live_range(query)
    params = {"created_at[gte]": iso(since), "created_at[lt]": iso(until)}
    with live.client(cfg) as api:
        for page in live.pages(api, "/v2/incidents", "incidents", cfg.page_size, params):
            found.take({"incidents": page}, "GET /v2/incidents", query)
            progress("incident.io incidents", len(found.incidents), None)
        found.take(api.get_object("/v2/follow_ups"), "GET /v2/follow_ups", query)
        path = "/v1/postmortem_documents"
        for page in live.pages(api, path, "postmortem_documents", cfg.page_size):
            found.take({"postmortem_documents": page}, f"GET {path}", query)
        wanted = [
            d
            for d, doc in found.documents.items()
            if str(doc.get("incident_id")) in found.incidents
        ]
        for n, doc_id in enumerate(wanted):
            progress("incident.io postmortems", n, len(wanted))
            body = api.get_object(f"{path}/{doc_id}/content")
            if isinstance(body.get("markdown"), str):
                found.markdown[doc_id] = body["markdown"]


def _stamps(item: dict[str, Any], where: str, rec: str) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    created = when(item.get("created_at"), where=where, record=rec, field_name="created_at")
    if created is not None:
        out["declared"] = created
    for stamp in item.get("incident_timestamp_values") or []:
        if not isinstance(stamp, dict):
            continue
        name = str((stamp.get("incident_timestamp") or {}).get("name") or "")
        value = (stamp.get("value") or {}).get("value")
        milestone = stamp_milestone(name)
        at = when(value, where=where, record=rec, field_name=name) if milestone else None
        if milestone == "declared" and at is not None:
            out[milestone] = at  # a timestamp for it says better than the creation
        elif milestone and at is not None:
            out.setdefault(milestone, at)
    if "reported" in out:  # with no alerts to read, the report is the detection
        out.setdefault("detected", out["reported"])
        del out["reported"]
    return out


def _field_values(item: dict[str, Any], word: str) -> list[str]:
    out: list[str] = []
    for entry in item.get("custom_field_entries") or []:
        field = (entry or {}).get("custom_field") or {}
        if word not in str(field.get("name") or "").lower():
            continue
        for value in entry.get("values") or []:
            name = (
                name_of(value.get("value_catalog_entry"), "name")
                or name_of(value.get("value_option"), "value")
                or name_of(value.get("value_text"))
            )
            if name and name not in out:
                out.append(name)
    return out


def incident_record(
    item: dict[str, Any],
    where: str,
    follow_ups: dict[str, dict[str, Any]],
    doc: dict[str, Any] | None,
    markdown: str,
    query: HistoryQuery,
) -> ImportedIncident:
    rec = str(item["id"])
    return ImportedIncident(
        source=SOURCE,
        id=rec,
        title=str(item.get("name") or item.get("reference") or rec),
        description=str(item.get("summary") or ""),
        url=item.get("permalink"),
        severity=name_of(item.get("severity"), "name"),
        status=name_of(item.get("incident_status"), "name"),
        services=_field_values(item, "service"),
        teams=_field_values(item, "team"),
        times=_stamps(item, where, rec),
        action_items=[
            a for a in (_follow_up(f, where, query) for f in follow_ups.values()) if a is not None
        ],
        postmortem=_document(doc, markdown, where, query) if doc else None,
        aliases=[item["reference"]] if item.get("reference") else [],
        provenance=where,
    )


def _follow_up(item: dict[str, Any], where: str, query: HistoryQuery) -> ImportedAction | None:
    status = str(item.get("status") or "outstanding")
    if status == "deleted":
        query.skip("incident_io: deleted follow-up")
        return None
    rec = str(item.get("id"))
    return ImportedAction(
        title=str(item.get("title") or item.get("description") or rec)[:300],
        status=_FOLLOW_UP.get(status, "open"),  # type: ignore[arg-type]
        priority=name_of(item.get("priority"), "name"),
        owner=name_of(item.get("assignee_team"), "name"),
        created=when(item.get("created_at"), where=where, record=rec, field_name="created_at"),
        closed=when(item.get("completed_at"), where=where, record=rec, field_name="completed_at")
        if status == "completed"
        else None,
        tracking=name_of(item.get("external_issue_reference"), "issue_permalink", "issue_name")
        or "",
    )


def _document(
    doc: dict[str, Any], markdown: str, where: str, query: HistoryQuery
) -> ImportedPostmortem:
    final = str(doc.get("status") or "").lower() in _FINAL
    reviewed = None
    if final:
        try:
            reviewed = when(
                doc.get("updated_at"),
                where=where,
                record=str(doc.get("id")),
                field_name="updated_at",
            )
        except BundleError:
            query.skip("incident_io: postmortem document with an unreadable updated_at")
    return ImportedPostmortem(
        status="final" if final else "draft",
        reviewed_at=reviewed,
        url=name_of(doc, "document_url"),
        markdown=markdown,
    )
