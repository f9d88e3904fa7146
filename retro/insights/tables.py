"""The report's tables, one function each; report.py assembles them."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from retro.insights.facts import ActionFact, IncidentFacts
from retro.insights.repeats import Pair
from retro.insights.report import ALL, METRICS, Table, impact_minutes, metric_value, stats

DEFINITIONS = {
    "incidents": "Incidents that started in the range (impact start, else detection or "
    "declaration) and match the filters; each period counts an incident once.",
    "customer_impact_minutes": "Impact start to the end of customer impact, else to "
    "mitigation, else to resolution; only incidents with a known impact start.",
    "repeat_rate": "Share of the period's incidents that have an earlier incident whose cause "
    "matches (the similarity index's threshold), listing the pairs.",
    "open_at_recurrence": "Action items of the earlier incident that were still open when the "
    "later one started: open now, or closed after that time. Items closed at an unknown time "
    "are counted apart (`unknown_items`).",
    "completion_rate": "Closed action items (done, wontfix, skipped) over all action items; "
    "proposed, approved, open and in-progress items count as not closed.",
    "overdue": "Open action items whose due date is before the report's as-of date.",
    "days_to_close": "Incident resolution to the item's close date (from the table's Closed "
    "column, the drafts' git history, or the vendor); median over items with both.",
    "coverage": "Incidents that have a postmortem (a draft, or a document in the vendor's "
    "tool), by severity; final ones have front-matter status final (or the vendor's).",
    "days_to_review": "Resolution to the date the postmortem became final (front matter "
    "`reviewed_at`, else git history, else the vendor's publish date).",
}


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def incidents_table(kept: list[IncidentFacts], period: dict[str, str]) -> Table:
    cols = ["id", "title", "period", "started", "severity", "services", "teams", "source"]
    cols += [m.name + "_min" for m in METRICS] + ["customer_impact_min", "postmortem"]
    rows = []
    for inc in kept:
        row: dict[str, Any] = {
            "id": inc.id,
            "title": inc.title,
            "period": period[inc.id],
            "started": inc.start.strftime("%Y-%m-%dT%H:%M:%SZ") if inc.start else None,
            "severity": inc.severity,
            "services": ", ".join(inc.services),
            "teams": ", ".join(inc.teams),
            "source": "draft" + ("+" + "+".join(inc.imported_from) if inc.imported_from else "")
            if inc.origin == "draft"
            else f"imported:{inc.origin}",
        }
        for m in METRICS:
            value = metric_value(inc, m)
            row[m.name + "_min"] = _minutes(value[0]) if value else None
        row["customer_impact_min"] = _minutes(impact_minutes(inc))
        row["postmortem"] = (inc.status or "yes") if inc.has_postmortem else "none"
        rows.append(row)
    return Table("incidents", "Incidents", cols, rows)


def times_table(kept: list[IncidentFacts], period: dict[str, str], periods: list[str]) -> Table:
    cols = ["period", "metric", "n", "median_min", "p90_min", "mean_min"]
    cols += ["inferred", "edited", "imported", "from_detection"]
    rows = []
    known: dict[tuple[str, str], list[tuple[float, str, bool]]] = {}  # (period, metric) -> values
    for inc in kept:
        for m in METRICS:
            v = metric_value(inc, m)
            if v is not None:
                known.setdefault((period[inc.id], m.name), []).append(v)
                known.setdefault((ALL, m.name), []).append(v)
    for label in [*periods, ALL]:
        for m in METRICS:
            values = known.get((label, m.name), [])
            s = stats([v[0] for v in values])
            who = Counter(v[1] for v in values)
            rows.append(
                {
                    "period": label,
                    "metric": m.name,
                    "n": s["n"],
                    "median_min": s["median"],
                    "p90_min": s["p90"],
                    "mean_min": s["mean"],
                    "inferred": who["inferred"],
                    "edited": who["edited"],
                    "imported": who["imported"],
                    "from_detection": sum(1 for v in values if v[2]),
                }
            )
    note = (
        "Minutes. Median and p90 lead; the mean is beside them only (one long incident moves "
        "it). inferred/edited/imported: who set the times behind each value."
    )
    return Table("time_to_x", "Time to detect, acknowledge, mitigate and resolve", cols, rows, note)


def severity_table(kept: list[IncidentFacts], period: dict[str, str], periods: list[str]) -> Table:
    counts: Counter[tuple[str, str]] = Counter()
    for inc in kept:
        counts[(period[inc.id], inc.severity or "unknown")] += 1
        counts[(ALL, inc.severity or "unknown")] += 1
    severities = sorted({s for _, s in counts})
    rows = [
        {"period": p, "severity": s, "incidents": counts[(p, s)]}
        for p in [*periods, ALL]
        for s in severities
        if counts[(p, s)]
    ]
    return Table("by_severity", "Incidents by severity", ["period", "severity", "incidents"], rows)


def service_table(kept: list[IncidentFacts], period: dict[str, str], periods: list[str]) -> Table:
    counts: Counter[tuple[str, str]] = Counter()
    for inc in kept:
        for service in inc.services or ["unknown"]:
            counts[(period[inc.id], service)] += 1
            counts[(ALL, service)] += 1
    rows = [
        {"period": p, "service": s, "incidents": n}
        for (p, s), n in sorted(counts.items(), key=lambda kv: (kv[0][0] == ALL, kv[0][0], -kv[1]))
    ]
    note = "An incident that touched several services counts once for each."
    return Table(
        "by_service", "Incidents by service", ["period", "service", "incidents"], rows, note
    )


def impact_table(kept: list[IncidentFacts], period: dict[str, str], periods: list[str]) -> Table:
    rows = []
    for label in [*periods, ALL]:
        values = [
            v
            for v in (impact_minutes(i) for i in kept if label == ALL or period[i.id] == label)
            if v is not None
        ]
        s = stats(values)
        rows.append(
            {
                "period": label,
                "incidents_with_impact": len(values),
                "impact_min": round(sum(values), 1),
                "median_min": s["median"],
                "p90_min": s["p90"],
            }
        )
    cols = ["period", "incidents_with_impact", "impact_min", "median_min", "p90_min"]
    return Table("customer_impact", "Customer-impact minutes", cols, rows)


def repeat_tables(
    kept: list[IncidentFacts],
    period: dict[str, str],
    periods: list[str],
    pairs: list[Pair] | None,
) -> list[Table]:
    ids = {i.id for i in kept}
    by_id = {i.id: i for i in kept}
    mine = [p for p in pairs or [] if p.later in ids]
    later = {p.later for p in mine}
    rate_rows = []
    for label in [*periods, ALL]:
        group = {i.id for i in kept if label == ALL or period[i.id] == label}
        repeats = len(group & later)
        rate_rows.append(
            {
                "period": label,
                "incidents": len(group),
                "repeats": repeats,
                "rate_pct": round(100 * repeats / len(group), 1) if group else None,
                "with_open_items": sum(1 for p in mine if p.later in group and p.open_items),
            }
        )
    note = "" if pairs is not None else "Repeat detection was not run (--no-repeats or no vectors)."
    rate = Table(
        "repeat_rate",
        "Repeat-incident rate",
        ["period", "incidents", "repeats", "rate_pct", "with_open_items"],
        rate_rows,
        note,
    )
    pair_rows = [
        {
            "incident": p.later,
            "title": by_id[p.later].title,
            "earlier": p.earlier,
            "score": p.score,
            "shared_services": ", ".join(p.shared),
            "open_at_recurrence": len(p.open_items),
            "open_items": "; ".join(p.open_items),
            "unknown_items": p.unknown_items,
        }
        for p in mine
    ]
    cols = ["incident", "title", "earlier", "score", "shared_services"]
    cols += ["open_at_recurrence", "open_items", "unknown_items"]
    return [rate, Table("repeat_pairs", "Repeat incidents", cols, pair_rows)]


def actions_table(kept: list[IncidentFacts], as_of: datetime) -> Table:
    groups: dict[tuple[str, str], list[tuple[IncidentFacts, ActionFact]]] = defaultdict(list)
    for inc in kept:
        for item in inc.actions:
            key = (item.owner or "unassigned", item.priority or "-")
            groups[key].append((inc, item))
            groups[(ALL, ALL)].append((inc, item))
    rows = []
    for (owner, priority), entries in sorted(groups.items(), key=lambda kv: kv[0] == (ALL, ALL)):
        items = [e[1] for e in entries]
        closed = [i for i in items if i.is_closed]
        overdue = [i for i in items if not i.is_closed and i.due is not None and i.due < as_of]
        days = []
        for inc, item in entries:
            start = inc.times.get("resolved") or inc.start
            if item.is_closed and item.closed and start and item.closed >= start:
                days.append((item.closed - start).total_seconds() / 86400)
        rows.append(
            {
                "owner": owner,
                "priority": priority,
                "total": len(items),
                "closed": len(closed),
                "open": len(items) - len(closed),
                "overdue": len(overdue),
                "completion_pct": round(100 * len(closed) / len(items), 1) if items else None,
                "median_days_to_close": round(statistics.median(days), 1) if days else None,
                "n_days_to_close": len(days),
            }
        )
    cols = ["owner", "priority", "total", "closed", "open", "overdue", "completion_pct"]
    cols += ["median_days_to_close", "n_days_to_close"]
    note = f"Status as the drafts' action tables hold it (`retro sync-actions` writes it from Jira), or the vendor's; overdue as of {as_of:%Y-%m-%d}."
    return Table("action_items", "Action-item follow-through", cols, rows, note)


def coverage_table(kept: list[IncidentFacts]) -> Table:
    groups: dict[str, list[IncidentFacts]] = defaultdict(list)
    for inc in kept:
        groups[inc.severity or "unknown"].append(inc)
        groups[ALL].append(inc)
    rows = []
    for severity in sorted(groups, key=lambda s: (s == ALL, s)):
        incs = groups[severity]
        with_pm = [i for i in incs if i.has_postmortem]
        final = [i for i in with_pm if i.is_final]
        days = []
        for i in final:
            resolved = i.times.get("resolved")
            if i.reviewed_at and resolved and i.reviewed_at >= resolved:
                days.append((i.reviewed_at - resolved).total_seconds() / 86400)
        s = stats(days)
        rows.append(
            {
                "severity": severity,
                "incidents": len(incs),
                "with_postmortem": len(with_pm),
                "coverage_pct": round(100 * len(with_pm) / len(incs), 1) if incs else None,
                "final": len(final),
                "median_days_to_review": s["median"],
                "p90_days_to_review": s["p90"],
                "n_days_to_review": s["n"],
                "review_date_unknown": sum(1 for i in final if i.reviewed_at is None),
            }
        )
    cols = ["severity", "incidents", "with_postmortem", "coverage_pct", "final"]
    cols += ["median_days_to_review", "p90_days_to_review", "n_days_to_review"]
    cols += ["review_date_unknown"]
    return Table("coverage", "Postmortem coverage and time to a reviewed postmortem", cols, rows)
