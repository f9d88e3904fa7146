"""The report's charts, as data: one `Chart` each, drawn by Chart.js in the HTML page and as
Mermaid `xychart-beta` / `pie` blocks in the Markdown (which GitHub renders)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retro.insights.report import ALL, METRICS, Report

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]


@dataclass
class Series:
    label: str
    values: list[float | None]


@dataclass
class Chart:
    id: str
    title: str
    kind: str  # bar, stacked, line, hbar
    labels: list[str]
    series: list[Series] = field(default_factory=list)
    y_label: str = ""

    def chartjs(self) -> dict[str, Any]:
        """The Chart.js configuration."""
        kind = "line" if self.kind == "line" else "bar"
        datasets = []
        for n, s in enumerate(self.series):
            color = PALETTE[n % len(PALETTE)]
            datasets.append(
                {
                    "label": s.label,
                    "data": s.values,
                    "backgroundColor": color,
                    "borderColor": color,
                    "spanGaps": True,
                    "tension": 0,
                }
            )
        stacked = self.kind == "stacked"
        scales: dict[str, Any] = {
            "x": {"stacked": stacked},
            "y": {
                "stacked": stacked,
                "beginAtZero": True,
                "title": {"display": bool(self.y_label), "text": self.y_label},
            },
        }
        options: dict[str, Any] = {
            "responsive": True,
            "maintainAspectRatio": False,
            "animation": False,
            "interaction": {"mode": "index", "intersect": False},
            "plugins": {"title": {"display": True, "text": self.title}},
            "scales": scales,
        }
        if self.kind == "hbar":
            options["indexAxis"] = "y"
        return {
            "type": kind,
            "data": {"labels": self.labels, "datasets": datasets},
            "options": options,
        }

    def mermaid(self) -> str:
        """A Mermaid block GitHub renders: xychart-beta bars/lines (one series per line)."""
        keep = [
            i for i in range(len(self.labels)) if any(s.values[i] is not None for s in self.series)
        ]
        if self.kind == "line":  # Mermaid draws no gaps: leave out the periods with no value
            chart = Chart(
                self.id,
                self.title,
                self.kind,
                [self.labels[i] for i in keep],
                [Series(s.label, [s.values[i] for i in keep]) for s in self.series],
                self.y_label,
            )
        else:
            chart = self
        return chart._mermaid()

    def _mermaid(self) -> str:
        if not self.labels or not self.series:
            return ""
        labels = ", ".join(f'"{lab}"' for lab in self.labels)
        values = [v for s in self.series for v in s.values if v is not None]
        top = max(values, default=1) or 1
        lines = [
            "```mermaid",
            "xychart-beta",
            f'    title "{self.title}"',
            f"    x-axis [{labels}]",
        ]
        lines.append(f'    y-axis "{self.y_label or "count"}" 0 --> {_ceil(top * 1.1)}')
        if self.kind == "stacked":  # Mermaid cannot stack: draw the total, list parts in a legend
            totals = [sum(s.values[i] or 0 for s in self.series) for i in range(len(self.labels))]
            lines.append(f"    bar [{', '.join(_num(v) for v in totals)}]")
        else:
            mark = "line" if self.kind == "line" else "bar"
            for s in self.series:
                lines.append(f"    {mark} [{', '.join(_num(v) for v in s.values)}]")
        lines.append("```")
        if self.kind == "stacked":
            lines.append(f"Bars: total of {', '.join(s.label for s in self.series)}.")
        elif len(self.series) > 1:
            mark = "Lines" if self.kind == "line" else "Bars"
            lines.append(f"{mark}, in order: {', '.join(s.label for s in self.series)}.")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return "0" if value is None else f"{value:g}"


def _ceil(value: float) -> str:
    return f"{max(1.0, float(int(value) + 1)):g}"


def build_charts(report: Report) -> list[Chart]:
    periods = report.periods
    charts: list[Chart] = []
    sev = report.table("by_severity").rows
    severities = sorted({r["severity"] for r in sev})
    counts = {(r["period"], r["severity"]): r["incidents"] for r in sev}
    charts.append(
        Chart(
            "incidents",
            f"Incidents per {report.group_by} by severity",
            "stacked",
            periods,
            [Series(s, [counts.get((p, s), 0) for p in periods]) for s in severities],
            "incidents",
        )
    )
    times = report.table("time_to_x").rows
    by = {(r["period"], r["metric"]): r for r in times}
    charts.append(
        Chart(
            "resolve_trend",
            f"Time to resolve per {report.group_by} (minutes)",
            "line",
            periods,
            [
                Series(
                    f"median {name.split('_')[-1]}", [by[(p, name)]["median_min"] for p in periods]
                )
                for name in ("time_to_resolve", "time_to_mitigate")
            ]
            + [Series("p90 resolve", [by[(p, "time_to_resolve")]["p90_min"] for p in periods])],
            "minutes",
        )
    )
    charts.append(
        Chart(
            "ttx",
            "Time to detect, acknowledge, mitigate, resolve (all, minutes)",
            "bar",
            [m.label for m in METRICS],
            [
                Series(stat, [by[(ALL, m.name)][f"{stat}_min"] for m in METRICS])
                for stat in ("median", "p90")
            ],
            "minutes",
        )
    )
    rate = {r["period"]: r for r in report.table("repeat_rate").rows}
    charts.append(
        Chart(
            "repeats",
            f"Repeat-incident rate per {report.group_by} (%)",
            "line",
            periods,
            [Series("repeat rate %", [rate[p]["rate_pct"] for p in periods])],
            "%",
        )
    )
    actions = [r for r in report.table("action_items").rows if r["owner"] != ALL]
    owners = sorted({r["owner"] for r in actions})
    agg = {o: {"closed": 0, "open": 0, "overdue": 0} for o in owners}
    for r in actions:
        agg[r["owner"]]["closed"] += r["closed"]
        agg[r["owner"]]["open"] += r["open"] - r["overdue"]
        agg[r["owner"]]["overdue"] += r["overdue"]
    charts.append(
        Chart(
            "actions",
            "Action items by owner team",
            "stacked",
            owners,
            [Series(k, [agg[o][k] for o in owners]) for k in ("closed", "open", "overdue")],
            "items",
        )
    )
    cov = [r for r in report.table("coverage").rows if r["severity"] != ALL]
    charts.append(
        Chart(
            "coverage",
            "Postmortem coverage by severity (%)",
            "bar",
            [r["severity"] for r in cov],
            [
                Series("with a postmortem %", [r["coverage_pct"] for r in cov]),
                Series(
                    "final %",
                    [
                        round(100 * r["final"] / r["incidents"], 1) if r["incidents"] else None
                        for r in cov
                    ],
                ),
            ],
            "%",
        )
    )
    services = [r for r in report.table("by_service").rows if r["period"] == ALL][:10]
    charts.append(
        Chart(
            "services",
            "Incidents by service (top 10)",
            "hbar",
            [r["service"] for r in services],
            [Series("incidents", [r["incidents"] for r in services])],
            "incidents",
        )
    )
    return charts
