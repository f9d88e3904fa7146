"""Rootly history import: incidents with their action items and retrospectives.

Live mode pages `GET /v1/incidents` (JSON:API, `page[number]`/`page[size]`, filtered to the
time range on `started_at`, services and groups included), then each incident's
`GET /v1/incidents/{id}/action_items`, and `GET /v1/post_mortems` once. File mode reads the
same bodies saved from the API, and links action items and retrospectives to their incident by
`incident_id`.

Times: `started_at` is impact start, `detected_at`, `acknowledged_at`, `mitigated_at` and
`resolved_at` are those milestones, and `created_at` (when the incident was opened in Rootly)
is declared. A retrospective is final once `published_at` is set (status `published`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

import connectors.rootly.live as live
from connectors._history import iso, live_range, name_of, saved_bodies, times, when
from connectors.rootly.read import incident_of
from retro.connector import HistoryQuery, ImportedAction, ImportedIncident, ImportedPostmortem
from retro.models import Progress, no_progress

SOURCE = live.SOURCE
_STATUS = {"open": "open", "in_progress": "in_progress", "cancelled": "wontfix", "done": "done"}


class _Found:
    def __init__(self) -> None:
        self.incidents: dict[str, tuple[dict[str, Any], str]] = {}
        self.names: dict[tuple[str, str], str] = {}  # (type, id) -> name, from `included`
        self.actions: dict[str, dict[str, dict[str, Any]]] = {}  # incident id -> id -> item
        self.retros: dict[str, dict[str, Any]] = {}  # incident id -> newest post mortem

    def take(self, body: Any, where: str, query: HistoryQuery) -> None:
        if not isinstance(body, dict) or "data" not in body:
            query.skip("rootly: file is not a JSON:API body")
            return
        for inc in body.get("included") or []:
            if isinstance(inc, dict) and isinstance(inc.get("attributes"), dict):
                name = inc["attributes"].get("name")
                if name:
                    self.names[(str(inc.get("type")), str(inc.get("id")))] = str(name)
        items = body["data"] if isinstance(body["data"], list) else [body["data"]]
        for n, item in enumerate(items):
            kind = item.get("type") if isinstance(item, dict) else None
            attrs = item.get("attributes") if isinstance(item, dict) else None
            if not isinstance(attrs, dict) or not item.get("id"):
                query.skip("rootly: resource without id or attributes")
            elif kind == "incidents":
                self.incidents[str(item["id"])] = (item, f"{where} [{n}]")
            elif kind == "incident_action_items" and (owner := incident_of(item)):
                self.actions.setdefault(str(owner), {})[str(item["id"])] = item
            elif kind == "incident_post_mortems" and attrs.get("incident_id"):
                self.retros[str(attrs["incident_id"])] = item
            elif kind not in ("incident_events", "incident_retrospective_steps"):
                query.skip(f"rootly: {kind} records are not imported")


def import_history(
    query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
) -> Iterator[ImportedIncident]:
    found = _Found()
    if query.files:
        for where, body in saved_bodies(query.files):
            found.take(body, where, query)
    else:
        _fetch(found, query, config, progress)
    for inc_id, (item, where) in found.incidents.items():
        record = incident_record(
            item, where, found.names, found.actions.get(inc_id, {}), found.retros.get(inc_id)
        )
        if query.wants(record.times.get("impact_start") or record.times.get("declared")):
            yield record


def _fetch(found: _Found, query: HistoryQuery, config: BaseModel, progress: Progress) -> None:
    cfg = live.config_of(config)
    since, until = live_range(query)
    params = {
        "include": "services,groups",
        "filter[started_at][gte]": iso(since),
        "filter[started_at][lt]": iso(until),
        "sort": "created_at",
    }
    with live.client(cfg) as api:
        for n, body in enumerate(live.pages(api, "/v1/incidents", cfg.page_size, params)):
            found.take(body, f"GET /v1/incidents page {n + 1}", query)
            progress("rootly incidents", len(found.incidents), None)
        ids = list(found.incidents)
        for n, inc_id in enumerate(ids):
            progress("rootly action items", n, len(ids))
            path = f"/v1/incidents/{inc_id}/action_items"
            for body in live.pages(api, path, cfg.page_size):
                found.take(body, f"GET {path}", query)
        for body in live.pages(api, "/v1/post_mortems", cfg.page_size):
            found.take(body, "GET /v1/post_mortems", query)


def _related(item: dict[str, Any], rel: str, names: dict[tuple[str, str], str]) -> list[str]:
    data = ((item.get("relationships") or {}).get(rel) or {}).get("data") or []
    out = []
    for ref in data if isinstance(data, list) else [data]:
        if isinstance(ref, dict):
            name = names.get((str(ref.get("type")), str(ref.get("id"))))
            if name:
                out.append(name)
    return out


def incident_record(
    item: dict[str, Any],
    where: str,
    names: dict[tuple[str, str], str],
    actions: dict[str, dict[str, Any]],
    retro: dict[str, Any] | None,
) -> ImportedIncident:
    rec = str(item["id"])
    attrs = item["attributes"]
    stamps = times(
        {
            "impact_start": attrs.get("started_at"),
            "declared": attrs.get("created_at"),
            "detected": attrs.get("detected_at"),
            "acknowledged": attrs.get("acknowledged_at"),
            "mitigated": attrs.get("mitigated_at"),
            "resolved": attrs.get("resolved_at"),
        },
        where=where,
        record=rec,
    )
    severity = attrs.get("severity")
    sev_name = (
        name_of(((severity or {}).get("data") or {}).get("attributes"), "name")
        if isinstance(severity, dict)
        else name_of(severity)
    )
    seq = attrs.get("sequential_id")
    return ImportedIncident(
        source=SOURCE,
        id=rec,
        title=str(attrs.get("title") or rec),
        description=str(attrs.get("summary") or ""),
        url=attrs.get("url"),
        severity=sev_name,
        status=attrs.get("status"),
        services=_related(item, "services", names),
        teams=_related(item, "groups", names),
        times=stamps,
        action_items=[_action(a, where) for a in actions.values()],
        postmortem=_retro(retro, where) if retro else None,
        aliases=[a for a in (str(seq) if seq is not None else "", attrs.get("slug") or "") if a],
        provenance=where,
    )


def _action(item: dict[str, Any], where: str) -> ImportedAction:
    attrs = item["attributes"]
    rec = str(item.get("id"))
    status = _STATUS.get(str(attrs.get("status") or "open"), "open")
    return ImportedAction(
        title=str(attrs.get("summary") or attrs.get("description") or rec)[:300],
        status=status,  # type: ignore[arg-type]
        priority=attrs.get("priority"),
        created=when(attrs.get("created_at"), where=where, record=rec, field_name="created_at"),
        due=when(attrs.get("due_date"), where=where, record=rec, field_name="due_date"),
        # Rootly states no completion time; `completed_at` is read if a body carries one.
        closed=when(attrs.get("completed_at"), where=where, record=rec, field_name="completed_at"),
        tracking=str(attrs.get("jira_issue_key") or attrs.get("url") or ""),
    )


def _retro(item: dict[str, Any], where: str) -> ImportedPostmortem:
    attrs = item.get("attributes") or {}
    rec = str(item.get("id"))
    published = when(attrs.get("published_at"), where=where, record=rec, field_name="published_at")
    final = published is not None or str(attrs.get("status")) == "published"
    return ImportedPostmortem(
        status="final" if final else "draft",
        reviewed_at=published,
        url=attrs.get("url"),
        markdown=str(attrs.get("content") or ""),
    )
