"""Opsgenie history import: incidents (and, when asked, alerts) for the reliability report.

Live mode lists `GET /v1/incidents` and `GET /v2/alerts` with a `createdAt` query per window
(offset pagination through `paging.next`; Opsgenie refuses offsets past 20,000, so windows are
kept small) and keeps each record once by id. An alert's acknowledge and close times live only
in its detail body (`report.ackTime` / `closeTime`, milliseconds after creation), so live mode
reads `GET /v2/alerts/{id}` for each alert. File mode reads the same bodies saved from the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from connectors._history import live_range, name_of, saved_bodies, times, when, windows
from connectors._support import JsonClient
from connectors.opsgenie import live
from connectors.opsgenie.read import SOURCE, is_alert, is_incident
from retro.connector import HistoryQuery, ImportedIncident
from retro.models import Progress, no_progress

WINDOW_DAYS = 30
KINDS = ("incidents", "alerts")
_END_TYPES = ("IncidentResolved", "IncidentClosed")


def import_history(
    query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
) -> Iterator[ImportedIncident]:
    what = set(query.what or ["incidents"])
    found = _from_files(query) if query.files else _from_api(query, config, what, progress)
    for record in found.values():
        if record.kind + "s" in what and query.wants(record.times.get("detected")):
            yield record


def _from_api(
    query: HistoryQuery, config: BaseModel, what: set[str], progress: Progress
) -> dict[str, ImportedIncident]:
    cfg = live._config(config)
    since, until = live_range(query)
    found: dict[str, ImportedIncident] = {}
    spans = windows(since, until, WINDOW_DAYS)
    with live._client(cfg) as api:
        for n, (start, end) in enumerate(spans):
            progress("opsgenie", n, len(spans))
            window = f"createdAt >= {_ms(start)} AND createdAt < {_ms(end)}"
            where = f"{window} AND ({query.filter})" if query.filter else window
            if "incidents" in what:
                for item in _list(api, "/v1/incidents", where, cfg.page_size):
                    if is_incident(item):
                        found[f"i:{item['id']}"] = incident_record(item, "GET /v1/incidents")
            if "alerts" in what:
                for item in _list(api, "/v2/alerts", where, cfg.page_size):
                    if not is_alert(item):
                        continue
                    body = api.get(f"/v2/alerts/{item['id']}", params={"identifierType": "id"})
                    data = body.get("data")
                    detail: dict[str, Any] = data if isinstance(data, dict) else item
                    found[f"a:{item['id']}"] = alert_record(detail, f"GET /v2/alerts/{item['id']}")
    return found


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _list(api: JsonClient, path: str, query: str, size: int) -> list[Any]:
    params = {"query": query, "limit": str(size), "sort": "createdAt", "order": "asc"}
    items, _ = live._all_pages(api, path, params)
    return items


def _from_files(query: HistoryQuery) -> dict[str, ImportedIncident]:
    found: dict[str, ImportedIncident] = {}
    for where, body in saved_bodies(query.files):
        data = body.get("data") if isinstance(body, dict) and "data" in body else body
        items = data if isinstance(data, list) else [data]
        for n, item in enumerate(items):
            at = f"{where} [{n}]" if isinstance(data, list) else where
            if is_incident(item):
                found[f"i:{item['id']}"] = incident_record(item, at)
            elif is_alert(item):
                found[f"a:{item['id']}"] = alert_record(item, at)
            else:
                query.skip("opsgenie: record is neither an incident nor an alert")
    return found


def incident_record(item: dict[str, Any], where: str) -> ImportedIncident:
    rec = str(item["id"])
    stamps = times(
        {
            "impact_start": item.get("impactStartDate"),
            "detected": item.get("createdAt"),
            "impact_end": item.get("impactEndDate"),
        },
        where=where,
        record=rec,
    )
    ends = [
        when(t.get("eventTime"), where=where, record=rec, field_name="eventTime")
        for t in item.get("timelines") or []
        if isinstance(t, dict) and t.get("type") in _END_TYPES
    ]
    ended = min((t for t in ends if t is not None), default=None)
    if ended is not None:
        stamps["resolved"] = ended
    elif "impact_end" in stamps and item.get("status") in ("resolved", "closed"):
        stamps["resolved"] = stamps["impact_end"]
    tiny = item.get("tinyId")
    return ImportedIncident(
        source=SOURCE,
        id=rec,
        title=str(item.get("message") or rec),
        description=str(item.get("description") or ""),
        url=name_of(item.get("links"), "web"),
        severity=item.get("priority"),
        priority=item.get("priority"),
        status=item.get("status"),
        services=[str(s) for s in item.get("impactedServices") or [] if s],
        teams=[item["ownerTeam"]] if item.get("ownerTeam") else [],
        times=stamps,
        aliases=[f"#{tiny}", str(tiny)] if tiny else [],
        provenance=where,
    )


def alert_record(item: dict[str, Any], where: str) -> ImportedIncident:
    rec = str(item["id"])
    stamps = times({"detected": item.get("createdAt")}, where=where, record=rec)
    raw = item.get("report")
    report: dict[str, Any] = raw if isinstance(raw, dict) else {}
    created = stamps.get("detected")
    for key, name in (("ackTime", "acknowledged"), ("closeTime", "resolved")):
        value = report.get(key)
        if created is not None and isinstance(value, int | float) and value >= 0:
            stamps[name] = created + timedelta(milliseconds=value)
    tiny = item.get("tinyId")
    teams = [str(r["id"]) for r in item.get("responders") or [] if r.get("type") == "team"]
    return ImportedIncident(
        source=SOURCE,
        id=rec,
        kind="alert",
        title=str(item.get("message") or rec),
        description=str(item.get("description") or ""),
        severity=item.get("priority"),
        priority=item.get("priority"),
        status=item.get("status"),
        services=[str(item["source"])] if item.get("source") else [],
        teams=teams,
        times=stamps,
        aliases=[a for a in (str(tiny) if tiny else "", str(item.get("alias") or "")) if a],
        provenance=where,
    )
