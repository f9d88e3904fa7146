"""PagerDuty history import: incident records for the reliability report (`retro import`).

Live mode lists `GET /incidents` and `GET /log_entries?is_overview=true` (acknowledgements)
window by window: the API wants a since/until range of at most 180 days, and classic offset
pagination stops at offset 10,000, so a window whose `total` is larger is cut in half until
each fits. Records are keyed by incident id, so overlapping windows and a second import never
add an incident twice. File mode reads the same list bodies saved from the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from connectors._history import iso, items_of, live_range, name_of, saved_bodies, when, windows
from connectors._support import JsonClient
from connectors.pagerduty import live
from connectors.pagerduty.read import SOURCE, is_incident
from retro.connector import HistoryQuery, ImportedIncident
from retro.errors import ConnectorError
from retro.models import Progress, no_progress

WINDOW_DAYS = 90
OFFSET_CAP = 10_000  # classic pagination: offset + limit may not pass this
_MIN_SPAN = timedelta(minutes=10)  # windows are not cut smaller than this


def import_history(
    query: HistoryQuery, config: BaseModel, progress: Progress = no_progress
) -> Iterator[ImportedIncident]:
    if query.files:
        yield from _from_files(query)
        return
    cfg = live._config(config)
    since, until = live_range(query)
    with live._client(cfg) as api:
        incidents: dict[str, tuple[dict[str, Any], str]] = {}
        acks: dict[str, datetime] = {}
        spans = windows(since, until, WINDOW_DAYS)
        for n, (start, end) in enumerate(spans):
            progress("pagerduty incidents", n, len(spans))
            for item in _listed(api, cfg, "/incidents", "incidents", start, end):
                if is_incident(item):
                    incidents[str(item["id"])] = (item, f"GET /incidents ({iso(start)}..)")
                else:
                    query.skip("pagerduty: list item is not an incident")
            for entry in _listed(api, cfg, "/log_entries", "log_entries", start, end):
                _note_ack(entry, acks, "GET /log_entries")
        progress("pagerduty incidents", len(spans), len(spans))
    for inc_id, (item, where) in incidents.items():
        record = incident_record(item, where, acks.get(inc_id))
        if query.wants(record.times.get("detected")):
            yield record


def _listed(
    api: JsonClient, cfg: live.PagerDutyConfig, path: str, key: str, start: datetime, end: datetime
) -> list[Any]:
    """Every item of one list over [start, end), halving the window past the offset cap."""
    extra = [("since", iso(start)), ("until", iso(end)), ("time_zone", "UTC")]
    if key == "log_entries":
        extra.append(("is_overview", "true"))
    first = api.get(path, params=[("limit", "1"), ("offset", "0"), ("total", "true"), *extra])
    total = first.get("total")
    if isinstance(total, int) and total >= OFFSET_CAP - cfg.page_size and end - start > _MIN_SPAN:
        middle = start + (end - start) / 2
        return _listed(api, cfg, path, key, start, middle) + _listed(
            api, cfg, path, key, middle, end
        )
    return live._pages(api, cfg, path, key, extra)


def _note_ack(entry: Any, acks: dict[str, datetime], where: str) -> None:
    """Keep the first acknowledgement time of each incident."""
    if not isinstance(entry, dict) or entry.get("type") != "acknowledge_log_entry":
        return
    inc = (entry.get("incident") or {}).get("id")
    at = when(entry.get("created_at"), where=where, record=str(entry.get("id")), field_name="at")
    if inc and at is not None and (inc not in acks or at < acks[inc]):
        acks[str(inc)] = at


def _from_files(query: HistoryQuery) -> Iterator[ImportedIncident]:
    incidents: dict[str, tuple[dict[str, Any], str]] = {}
    acks: dict[str, datetime] = {}
    for where, body in saved_bodies(query.files):
        entries = items_of(body, "log_entries")
        if isinstance(body, dict) and is_incident(body.get("incident")):
            incidents[str(body["incident"]["id"])] = (body["incident"], where)
            continue
        listed = items_of(body, "incidents")
        if listed is not None and all(is_incident(i) for i in listed):
            for n, item in enumerate(listed):
                incidents[str(item["id"])] = (item, f"{where} [{n}]")
        elif entries is not None and all(_is_log(e) for e in entries):
            for entry in entries:
                _note_ack(entry, acks, where)
        else:
            query.skip("pagerduty: file is not an incidents or log_entries body")
    for inc_id, (item, where) in incidents.items():
        record = incident_record(item, where, acks.get(inc_id))
        if query.wants(record.times.get("detected")):
            yield record


def _is_log(obj: Any) -> bool:
    return isinstance(obj, dict) and str(obj.get("type") or "").endswith("_log_entry")


def incident_record(item: dict[str, Any], where: str, ack: datetime | None) -> ImportedIncident:
    """One REST v2 incident as a history record."""
    rec = str(item["id"])
    created = when(item.get("created_at"), where=where, record=rec, field_name="created_at")
    if created is None:
        raise ConnectorError(SOURCE, f"{where}: incident {rec} has no created_at")
    times = {"detected": created}
    acked = [a.get("at") for a in item.get("acknowledgements") or [] if isinstance(a, dict)]
    first_ack = min(
        (t for t in (when(a, where=where, record=rec, field_name="ack") for a in acked) if t),
        default=None,
    )
    if ack is not None or first_ack is not None:
        times["acknowledged"] = min(t for t in (ack, first_ack) if t is not None)
    resolved = item.get("resolved_at") or (
        item.get("last_status_change_at") if item.get("status") == "resolved" else None
    )
    resolved_at = when(resolved, where=where, record=rec, field_name="resolved_at")
    if resolved_at is not None:
        times["resolved"] = resolved_at
    title = str(item.get("title") or item.get("summary") or rec)
    description = str(item.get("description") or "")
    number = item.get("incident_number")
    return ImportedIncident(
        source=SOURCE,
        id=rec,
        title=title,
        description="" if description == title else description,
        url=item.get("html_url"),
        severity=name_of(item.get("priority"), "summary", "name"),
        priority=item.get("urgency"),
        status=item.get("status"),
        services=[s for s in [name_of(item.get("service"), "summary", "name")] if s],
        teams=[t for t in (name_of(x, "summary", "name") for x in item.get("teams") or []) if t],
        times=times,
        aliases=[f"#{number}", str(number)] if number is not None else [],
        provenance=where,
    )
