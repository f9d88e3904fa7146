"""The reliability report: time to detect/acknowledge/mitigate/resolve, incident counts,
customer impact, repeat incidents, action-item follow-through and postmortem coverage.

`build_report` takes the loaded incidents (sources.load) and returns a `Report`: named tables
of plain rows, which the renderers write as Markdown, CSV, JSON and HTML. Definitions are in
`METRICS` and docs/report.md; every figure is a median with its p90 and n, with the mean
beside it (trend claims on means are noisy).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from retro.insights.facts import IncidentFacts
from retro.insights.repeats import Pair

GroupBy = Literal["month", "quarter"]
ALL = "all"


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    start: tuple[str, ...]  # the first of these present is the start
    end: str
    definition: str


METRICS: tuple[Metric, ...] = (
    Metric(
        "time_to_detect",
        "Time to detect",
        ("impact_start",),
        "detected",
        "Impact start to detection (the first alert, page or report). Needs both times.",
    ),
    Metric(
        "time_to_acknowledge",
        "Time to acknowledge",
        ("detected",),
        "acknowledged",
        "Detection to the first acknowledgement by a responder (page ack, or work started).",
    ),
    Metric(
        "time_to_mitigate",
        "Time to mitigate",
        ("impact_start", "detected", "declared"),
        "mitigated",
        "Impact start to mitigation (customers no longer affected). Where impact start is "
        "unknown (most pager records), from detection, else from declaration; such values "
        "are counted in `from_detection`.",
    ),
    Metric(
        "time_to_resolve",
        "Time to resolve",
        ("impact_start", "detected", "declared"),
        "resolved",
        "Impact start to resolution (the incident closed). Same fallback as time to mitigate.",
    ),
)


class Filters(BaseModel):
    """Which incidents the report covers: started in [since, until), of these severities,
    services and teams (any match; empty means all)."""

    since: datetime | None = None
    until: datetime | None = None
    severities: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)

    def keeps(self, inc: IncidentFacts) -> bool:
        start = inc.start
        if self.since and (start is None or start < self.since):
            return False
        if self.until and (start is None or start >= self.until):
            return False
        if self.severities and (inc.severity or "").casefold() not in _fold(self.severities):
            return False
        if self.services and not _fold(inc.services) & _fold(self.services):
            return False
        return not (self.teams and not _fold(inc.teams) & _fold(self.teams))


def _fold(values: list[str]) -> set[str]:
    return {v.casefold() for v in values}


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""


class Report(BaseModel):
    generated_at: datetime
    as_of: datetime
    group_by: GroupBy
    filters: Filters
    sources: list[str] = Field(default_factory=list)
    skipped: dict[str, int] = Field(default_factory=dict)
    incidents: int = 0
    imported: int = 0
    periods: list[str] = Field(default_factory=list)
    definitions: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    tables: dict[str, Any] = Field(default_factory=dict)

    def table(self, name: str) -> Table:
        raw = self.tables[name]
        return raw if isinstance(raw, Table) else Table(**raw)


def period_of(at: datetime | None, group_by: GroupBy) -> str:
    if at is None:
        return "unknown"
    if group_by == "quarter":
        return f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    return f"{at.year}-{at.month:02d}"


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, Excel's PERCENTILE.INC)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median": None, "p90": None, "mean": None}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 1),
        "p90": round(percentile(values, 0.9), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def metric_value(inc: IncidentFacts, m: Metric) -> tuple[float, str, bool] | None:
    """(minutes, who set it: inferred/edited/imported, start fell back) of one incident."""
    end = inc.times.get(m.end)
    start_name = next((s for s in m.start if s in inc.times), None)
    if end is None or start_name is None:
        return None
    minutes = (end - inc.times[start_name]).total_seconds() / 60
    if minutes < 0:
        return None
    who = {inc.origins.get(start_name, "inferred"), inc.origins.get(m.end, "inferred")}
    origin = "edited" if "edited" in who else "imported" if "imported" in who else "inferred"
    return minutes, origin, start_name != m.start[0]


def impact_minutes(inc: IncidentFacts) -> float | None:
    """Customer impact: impact start to impact end, else to mitigation, else to resolution."""
    start = inc.times.get("impact_start")
    end = next(
        (inc.times[n] for n in ("impact_end", "mitigated", "resolved") if n in inc.times), None
    )
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 60


def build_report(
    incidents: list[IncidentFacts],
    *,
    filters: Filters | None = None,
    group_by: GroupBy = "month",
    pairs: list[Pair] | None = None,
    as_of: datetime | None = None,
    sources: list[str] | None = None,
    skipped: dict[str, int] | None = None,
    notes: list[str] | None = None,
) -> Report:
    """The report over the incidents the filters keep; `pairs` are repeats over all of them."""
    filters = filters or Filters()
    now = datetime.now(UTC)
    as_of = as_of or now
    kept = sorted(
        (i for i in incidents if filters.keeps(i)),
        key=lambda i: (i.start or datetime.max.replace(tzinfo=UTC), i.id),
    )
    period = {i.id: period_of(i.start, group_by) for i in kept}
    periods = sorted(set(period.values()))
    from retro.insights import tables

    report = Report(
        generated_at=now,
        as_of=as_of,
        group_by=group_by,
        filters=filters,
        sources=sources or [],
        skipped=dict(skipped or {}),
        incidents=len(kept),
        imported=sum(1 for i in kept if i.imported_from),
        periods=periods,
        definitions={m.name: m.definition for m in METRICS} | tables.DEFINITIONS,
        notes=list(notes or []),
    )
    built = [
        tables.incidents_table(kept, period),
        tables.times_table(kept, period, periods),
        tables.severity_table(kept, period, periods),
        tables.service_table(kept, period, periods),
        tables.impact_table(kept, period, periods),
        *tables.repeat_tables(kept, period, periods, pairs),
        tables.actions_table(kept, as_of),
        tables.coverage_table(kept),
    ]
    report.tables = {t.name: t for t in built}
    return report
